//! The JNI boundary: the native methods of
//! `com.pingcap.tispark.telemetry.NativeTelemetry`. Java owns the JVM side
//! (reading the conf's values, the JVM-wide claim, the Spark version, the
//! thread and the flush) and hands over plain strings; this side owns the
//! decision, the report, delivery, the audit trail and the notice. Rust calls
//! into Java only to log (`java_log`). Each entry point is one `guarded`
//! call: a Rust error becomes one WARN line, a panic is caught, a Java
//! exception raised on the way is cleared, and the method returns its
//! "nothing happened" value. Nothing ever crosses into the JVM as a crash or
//! an exception.

mod java_log;

use crate::conf::{self, Decision};
use crate::pipeline;
use jni::objects::{JClass, JObject, JObjectArray, JString};
use jni::sys::{jboolean, jint, jobjectArray, JNI_FALSE, JNI_TRUE};
use jni::JNIEnv;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn guarded<'local, T>(
    env: &mut JNIEnv<'local>,
    fallback: T,
    f: impl FnOnce(&mut JNIEnv<'local>) -> Result<T, String>,
) -> T {
    let result = catch_unwind(AssertUnwindSafe(|| f(env)));
    // Only a JNI operation of ours can have raised it (out of memory, say):
    // cleared, so that nothing is thrown into the caller.
    if env.exception_check().unwrap_or(false) {
        let _ = env.exception_clear();
        log::debug!("A Java exception was cleared at the telemetry boundary.");
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

/// `static native boolean nativeDecide(String enableValue)`: the switch rule
/// and the environment's off switches. True when on; otherwise one WARN for a
/// value that is not a boolean, a DEBUG line for off.
#[no_mangle]
pub extern "system" fn Java_com_pingcap_tispark_telemetry_NativeTelemetry_nativeDecide<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    enable_value: JString<'local>,
) -> jboolean {
    let on = guarded(&mut env, false, |env| {
        let value = java_string(env, &enable_value)?;
        Ok(match conf::decide(value.as_deref(), conf::process_env) {
            Decision::On => true,
            off @ Decision::OffInvalid(_) => {
                log::warn!("Telemetry is {}.", off.explain());
                false
            }
            off => {
                log::debug!("Telemetry is {}.", off.explain());
                false
            }
        })
    });
    to_jboolean(on)
}

/// `static native String[] nativeKeys()`: the conf keys the Java side reads
/// for [`nativeReport`], in this order. Nothing else is ever read.
#[no_mangle]
pub extern "system" fn Java_com_pingcap_tispark_telemetry_NativeTelemetry_nativeKeys<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
) -> jobjectArray {
    guarded(&mut env, std::ptr::null_mut(), |env| {
        let keys: Vec<&str> = conf::keys_read().collect();
        let array = env
            .new_object_array(keys.len() as i32, "java/lang/String", JObject::null())
            .map_err(|e| e.to_string())?;
        for (i, key) in keys.iter().enumerate() {
            let s = env.new_string(key).map_err(|e| e.to_string())?;
            env.set_object_array_element(&array, i as i32, &s)
                .map_err(|e| e.to_string())?;
            env.delete_local_ref(s).map_err(|e| e.to_string())?;
        }
        Ok(array.into_raw())
    })
}

/// `static native boolean nativeReport(String[] values, String sparkVersion,
/// String tisparkVersion)`, called on the Java side's sender thread once it
/// has claimed the JVM: the values of [`nativeKeys`], in order. Builds, logs
/// and delivers the report right here. True when it was delivered
/// (successfully or not).
#[no_mangle]
pub extern "system" fn Java_com_pingcap_tispark_telemetry_NativeTelemetry_nativeReport<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    values: JObjectArray<'local>,
    spark_version: JString<'local>,
    tispark_version: JString<'local>,
) -> jboolean {
    let delivered = guarded(&mut env, false, |env| {
        let values = java_strings(env, &values)?;
        let expected = conf::keys_read().count();
        if values.len() != expected {
            return Err(format!(
                "the Java side passed {} conf values for {expected} keys",
                values.len()
            ));
        }
        let input = pipeline::ReportInput {
            snapshot: conf::Snapshot::from_values(values),
            spark_version: java_string(env, &spark_version)?,
            tispark_version: java_string(env, &tispark_version)?,
        };
        let start = std::time::Instant::now();
        let prepared = pipeline::prepare(&input.snapshot, conf::process_env);
        log::debug!(
            "Telemetry decided and its destination set up in {} µs.",
            start.elapsed().as_micros()
        );
        let destination = match (prepared.decision, prepared.destination) {
            (Decision::On, Ok(destination)) => destination,
            (Decision::On, Err(why)) => return Err(why),
            (off, _) => {
                log::debug!("Telemetry is {}.", off.explain());
                return Ok(false);
            }
        };
        pipeline::report_and_deliver(&input, &destination);
        Ok(true)
    });
    to_jboolean(delivered)
}

/// `static native boolean nativeUnconfirmed(long waitedMillis)`, called by
/// the shutdown hook when it stopped waiting for the sender: a report in
/// flight is said (WARN) and recorded (audit trail) to be not confirmed.
#[no_mangle]
pub extern "system" fn Java_com_pingcap_tispark_telemetry_NativeTelemetry_nativeUnconfirmed<
    'local,
>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    waited_millis: jni::sys::jlong,
) -> jboolean {
    let waited = std::time::Duration::from_millis(u64::try_from(waited_millis).unwrap_or(0));
    to_jboolean(guarded(&mut env, false, |_| {
        Ok(pipeline::unconfirmed(waited))
    }))
}

fn to_jboolean(b: bool) -> jboolean {
    if b {
        JNI_TRUE
    } else {
        JNI_FALSE
    }
}

fn java_string(env: &mut JNIEnv, s: &JString) -> Result<Option<String>, String> {
    if s.is_null() {
        return Ok(None);
    }
    // In its own frame: the jni crate's get_string makes local refs of its own.
    env.with_local_frame(4, |env| -> jni::errors::Result<Option<String>> {
        Ok(Some(env.get_string(s)?.into()))
    })
    .map_err(|e| format!("a string from the Java side cannot be read ({e})"))
}

fn java_strings(env: &mut JNIEnv, array: &JObjectArray) -> Result<Vec<Option<String>>, String> {
    if array.is_null() {
        return Err("the Java side passed no conf values".to_string());
    }
    let len = env
        .get_array_length(array)
        .map_err(|e| format!("the conf values cannot be read ({e})"))?;
    (0..len)
        .map(|i| {
            let element = env
                .get_object_array_element(array, i)
                .map_err(|e| format!("the conf values cannot be read ({e})"))?;
            let value = java_string(env, &JString::from(element))?;
            Ok(value)
        })
        .collect()
}
