//! Rust `log` records into the JVM's logging: each record becomes a call of
//! `TelemetryLog.log(int level, String message)`, which writes it through
//! slf4j to the logger `com.pingcap.tispark.telemetry.Telemetry` (Spark's own
//! log). Java tells the maximum enabled level once, so disabled records cost
//! nothing. Only this crate's records pass (never the `jni` crate's, which
//! would recurse, nor the HTTP stack's). A record that cannot be delivered is
//! dropped silently: logging must never hurt the host.

use jni::objects::{GlobalRef, JClass, JStaticMethodID, JValue};
use jni::signature::{Primitive, ReturnType};
use jni::{JNIEnv, JavaVM};
use once_cell::sync::OnceCell;
use std::cell::Cell;

const CRATE_TARGET: &str = "tispark_telemetry";

struct Bridge {
    vm: JavaVM,
    class: GlobalRef,
    method: JStaticMethodID,
}

static BRIDGE: OnceCell<Bridge> = OnceCell::new();

thread_local! {
    static IN_LOG: Cell<bool> = const { Cell::new(false) };
}

/// Installs the bridge once per loaded library; later calls only update the
/// level. `log_class` is `TelemetryLog`, looked up by the Java caller so that
/// the application's class loader is the one that found it.
pub fn install(env: &mut JNIEnv, log_class: &JClass, max_level: i32) -> jni::errors::Result<()> {
    if BRIDGE.get().is_none() {
        let method = env.get_static_method_id(log_class, "log", "(ILjava/lang/String;)V")?;
        let bridge = Bridge {
            vm: env.get_java_vm()?,
            class: env.new_global_ref(log_class)?,
            method,
        };
        if BRIDGE.set(bridge).is_ok() {
            let _ = log::set_logger(&JavaLogger);
        }
    }
    log::set_max_level(level_filter(max_level));
    Ok(())
}

fn level_filter(max_level: i32) -> log::LevelFilter {
    match max_level {
        i32::MIN..=0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

struct JavaLogger;

impl log::Log for JavaLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level() && metadata.target().starts_with(CRATE_TARGET)
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) || IN_LOG.with(|f| f.replace(true)) {
            return;
        }
        if let Some(bridge) = BRIDGE.get() {
            let _ = bridge.write(record.level() as i32, &record.args().to_string());
        }
        IN_LOG.with(|f| f.set(false));
    }

    fn flush(&self) {}
}

impl Bridge {
    fn write(&self, level: i32, message: &str) -> jni::errors::Result<()> {
        // Records come from Java threads (the driver's, the sender), already attached: this
        // is a look-up. Any other thread is attached once, as a daemon, never holding up exit.
        let mut env = self.vm.attach_current_thread_as_daemon()?;
        env.with_local_frame(4, |env| -> jni::errors::Result<()> {
            // Keep an exception the caller left pending: save it, log, put it back.
            let pending = if env.exception_check()? {
                let e = env.exception_occurred()?;
                env.exception_clear()?;
                Some(e)
            } else {
                None
            };
            let text = env.new_string(message)?;
            let class: &JClass = self.class.as_obj().into();
            let result = unsafe {
                env.call_static_method_unchecked(
                    class,
                    self.method,
                    ReturnType::Primitive(Primitive::Void),
                    &[JValue::Int(level).as_jni(), JValue::Object(&text).as_jni()],
                )
            };
            if result.is_err() && env.exception_check()? {
                env.exception_clear()?;
            }
            if let Some(e) = pending {
                env.throw(e)?;
            }
            Ok(())
        })
    }
}
