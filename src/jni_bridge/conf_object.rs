//! Reads Spark conf values from the Java object the caller hands over: a
//! `java.util.Map`, or anything with `String get(String, String)` (a
//! `SparkConf`). Each read is one JNI call in its own local frame; a Java
//! exception thrown by the object is cleared and becomes an `Err`.

use crate::conf::ConfSource;
use jni::objects::{JMethodID, JObject, JString, JValue};
use jni::signature::ReturnType;
use jni::JNIEnv;

enum Shape {
    Map,
    Getter(JMethodID),
}

pub struct JavaConf<'a, 'local> {
    env: &'a mut JNIEnv<'local>,
    object: &'a JObject<'local>,
    shape: Shape,
}

impl<'a, 'local> JavaConf<'a, 'local> {
    pub fn new(env: &'a mut JNIEnv<'local>, object: &'a JObject<'local>) -> Result<Self, String> {
        if object.is_null() {
            return Err(
                "NativeTelemetry.report was given null instead of a SparkConf or a java.util.Map"
                    .into(),
            );
        }
        let is_map = env
            .is_instance_of(object, "java/util/Map")
            .map_err(|e| jni_error(env, e))?;
        if is_map {
            return Ok(JavaConf {
                env,
                object,
                shape: Shape::Map,
            });
        }
        let found = env.with_local_frame(4, |env| -> jni::errors::Result<_> {
            let class = env.get_object_class(object)?;
            Ok(env.get_method_id(
                &class,
                "get",
                "(Ljava/lang/String;Ljava/lang/String;)Ljava/lang/String;",
            ))
        });
        match found {
            Ok(Ok(method)) => Ok(JavaConf {
                env,
                object,
                shape: Shape::Getter(method),
            }),
            Ok(Err(_)) | Err(_) => {
                clear_exception(env);
                let name = class_name(env, object).unwrap_or_else(|| "an object".into());
                Err(format!(
                    "NativeTelemetry.report was given {name}, which is neither a SparkConf, a java.util.Map, \
                     nor has String get(String, String)"
                ))
            }
        }
    }
}

impl ConfSource for JavaConf<'_, '_> {
    fn get(&mut self, key: &str) -> Result<Option<String>, String> {
        let object = self.object;
        let shape = &self.shape;
        let read = self
            .env
            .with_local_frame(8, |env| -> jni::errors::Result<Option<String>> {
                let jkey = env.new_string(key)?;
                let value = match shape {
                    Shape::Map => env
                        .call_method(
                            object,
                            "get",
                            "(Ljava/lang/Object;)Ljava/lang/Object;",
                            &[JValue::Object(&jkey)],
                        )?
                        .l()?,
                    Shape::Getter(method) => unsafe {
                        env.call_method_unchecked(
                            object,
                            *method,
                            ReturnType::Object,
                            &[
                                JValue::Object(&jkey).as_jni(),
                                JValue::Object(&JObject::null()).as_jni(),
                            ],
                        )?
                        .l()?
                    },
                };
                if value.is_null() {
                    return Ok(None);
                }
                let text = if env.is_instance_of(&value, "java/lang/String")? {
                    JString::from(value)
                } else {
                    JString::from(
                        env.call_method(&value, "toString", "()Ljava/lang/String;", &[])?
                            .l()?,
                    )
                };
                if text.is_null() {
                    return Ok(None);
                }
                let text: String = env.get_string(&text)?.into();
                Ok(Some(text))
            });
        read.map_err(|e| {
            format!(
                "reading {key} from the Spark conf failed: {}",
                jni_error(self.env, e)
            )
        })
    }
}

/// Describes a JNI error; when it is a Java exception, clears it and names it.
pub fn jni_error(env: &mut JNIEnv, e: jni::errors::Error) -> String {
    match take_exception(env) {
        Some(ex) => ex,
        None => e.to_string(),
    }
}

/// Clears a pending Java exception, returning its `toString()`.
pub fn take_exception(env: &mut JNIEnv) -> Option<String> {
    if !env.exception_check().unwrap_or(false) {
        return None;
    }
    let throwable = env.exception_occurred().ok();
    let _ = env.exception_clear();
    let throwable = throwable?;
    let text = env.with_local_frame(4, |env| -> jni::errors::Result<String> {
        let s = env
            .call_method(&throwable, "toString", "()Ljava/lang/String;", &[])?
            .l()?;
        Ok(env.get_string(&JString::from(s))?.into())
    });
    clear_exception(env);
    let _ = env.delete_local_ref(throwable);
    Some(text.unwrap_or_else(|_| "a Java exception".into()))
}

fn clear_exception(env: &mut JNIEnv) {
    if env.exception_check().unwrap_or(false) {
        let _ = env.exception_clear();
    }
}

fn class_name(env: &mut JNIEnv, object: &JObject) -> Option<String> {
    let name = env.with_local_frame(8, |env| -> jni::errors::Result<String> {
        let class = env
            .call_method(object, "getClass", "()Ljava/lang/Class;", &[])?
            .l()?;
        let name = env
            .call_method(&class, "getName", "()Ljava/lang/String;", &[])?
            .l()?;
        Ok(env.get_string(&JString::from(name))?.into())
    });
    clear_exception(env);
    name.ok().map(|n| format!("a {n}"))
}
