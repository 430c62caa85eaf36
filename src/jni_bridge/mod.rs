//! The JNI boundary: the native methods of
//! `com.pingcap.tispark.telemetry.NativeTelemetry`. Each is one `guarded`
//! call: a Rust error becomes one WARN line, a panic is caught, a Java
//! exception raised on the way is cleared, and the method returns its
//! "nothing happened" value. Nothing ever crosses into the JVM as a crash or
//! an exception.

mod conf_object;
mod java_log;

use crate::conf::{self, Decision, Snapshot};
use crate::driver::{self, Plan, Request};
use conf_object::{take_exception, JavaConf};
use jni::objects::{JClass, JObject, JString, JValue};
use jni::sys::{jboolean, jint, JNI_FALSE, JNI_TRUE};
use jni::JNIEnv;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The JVM-wide mark of "this JVM has reported" (its value: the application
/// id): a system property, because it is shared by every class loader that
/// may have loaded its own copy of this library, and `Properties.putIfAbsent`
/// is atomic. The Java side reads
/// it first (`NativeTelemetry.alreadyReported`), so that once it is set a
/// call returns without crossing into native code.
const REPORTED_PROPERTY: &str = "tispark.telemetry.reported";

fn guarded<'local, T>(
    env: &mut JNIEnv<'local>,
    fallback: T,
    f: impl FnOnce(&mut JNIEnv<'local>) -> Result<T, String>,
) -> T {
    let result = catch_unwind(AssertUnwindSafe(|| f(env)));
    if let Some(ex) = take_exception(env) {
        log::debug!("A Java exception was cleared at the telemetry boundary: {ex}");
    }
    match result {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            log::warn!("Telemetry is off for this application: {e}.");
            fallback
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            log::warn!(
                "Telemetry is off for this application: an internal error occurred ({what})."
            );
            fallback
        }
    }
}

/// `static native void nativeInit(Class<?> logClass, int maxLogLevel)`
#[no_mangle]
pub extern "system" fn Java_com_pingcap_tispark_telemetry_NativeTelemetry_nativeInit<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    log_class: JClass<'local>,
    max_level: jint,
) {
    guarded(&mut env, (), |env| {
        java_log::install(env, &log_class, max_level)
            .map_err(|e| format!("the log bridge failed ({e})"))
    })
}

/// `static native boolean nativeReport(Object conf, String tisparkVersion)`,
/// called on the Java side's sender thread: decides, and when telemetry is on
/// builds, logs and delivers the report right here. True when it was delivered
/// (successfully or not); false when telemetry is off or was already reported.
#[no_mangle]
pub extern "system" fn Java_com_pingcap_tispark_telemetry_NativeTelemetry_nativeReport<'local>(
    mut env: JNIEnv<'local>,
    class: JClass<'local>,
    conf: JObject<'local>,
    tispark_version: JString<'local>,
) -> jboolean {
    let started = guarded(&mut env, false, |env| {
        report(env, &class, &conf, &tispark_version)
    });
    if started {
        JNI_TRUE
    } else {
        JNI_FALSE
    }
}

fn report<'local>(
    env: &mut JNIEnv<'local>,
    class: &JClass<'local>,
    conf_object: &JObject<'local>,
    tispark_version: &JString<'local>,
) -> Result<bool, String> {
    let mut source = JavaConf::new(env, conf_object)?;
    // Off is decided on one read, before anything else is looked at.
    let enable = conf::ConfSource::get(&mut source, conf::ENABLE_KEY)?;
    match conf::decide(enable.as_deref(), conf::process_env) {
        Decision::On => {}
        off @ Decision::OffInvalid(_) => {
            log::warn!("Telemetry is {}.", off.explain());
            return Ok(false);
        }
        off => {
            log::debug!("Telemetry is {}.", off.explain());
            return Ok(false);
        }
    }
    let snapshot = Snapshot::read(&mut source)?;
    // The first decision stands for the JVM: claimed before the URL is checked,
    // so later callers (other sessions, other class loaders) do not even load
    // the library again, whatever the outcome.
    if !claim_this_jvm(env, snapshot.app_id().unwrap_or("unknown"))? {
        log::debug!("Telemetry was already reported by this JVM; nothing more is sent.");
        return Ok(false);
    }
    let plan = Plan::new(&snapshot)?;
    let request = Request {
        snapshot,
        spark_version: spark_version(env, class),
        tispark_version: java_string(env, tispark_version),
    };
    driver::report_and_deliver(&request, &plan);
    Ok(true)
}

fn claim_this_jvm(env: &mut JNIEnv, app_id: &str) -> Result<bool, String> {
    let claimed = env.with_local_frame(8, |env| -> jni::errors::Result<bool> {
        let props = env
            .call_static_method(
                "java/lang/System",
                "getProperties",
                "()Ljava/util/Properties;",
                &[],
            )?
            .l()?;
        let key = env.new_string(REPORTED_PROPERTY)?;
        let value = env.new_string(app_id)?;
        let previous = env
            .call_method(
                &props,
                "putIfAbsent",
                "(Ljava/lang/Object;Ljava/lang/Object;)Ljava/lang/Object;",
                &[JValue::Object(&key), JValue::Object(&value)],
            )?
            .l()?;
        Ok(previous.is_null())
    });
    claimed.map_err(|e| {
        format!(
            "the JVM-wide report mark cannot be set: {}",
            conf_object::jni_error(env, e)
        )
    })
}

/// `NativeTelemetry.sparkVersion()`, asked only once telemetry is on.
fn spark_version(env: &mut JNIEnv, class: &JClass) -> Option<String> {
    let version = env.with_local_frame(4, |env| -> jni::errors::Result<Option<String>> {
        let v = env
            .call_static_method(class, "sparkVersion", "()Ljava/lang/String;", &[])?
            .l()?;
        Ok(java_string(env, &JString::from(v)))
    });
    if take_exception(env).is_some() {
        return None;
    }
    version.ok().flatten()
}

fn java_string(env: &mut JNIEnv, s: &JString) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // In its own frame: the jni crate's get_string makes local refs of its own.
    env.with_local_frame(4, |env| -> jni::errors::Result<Option<String>> {
        Ok(env.get_string(s).ok().map(String::from))
    })
    .ok()
    .flatten()
}
