//! Rust `log` records into the JVM's logging: each record becomes a call of
//! `TelemetryLog.nativeLog(int level, String message)`, which writes it through
//! slf4j to the logger `com.pingcap.tispark.telemetry.Telemetry` (Spark's own
//! log). Java tells the maximum enabled level once, so disabled records cost
//! nothing. Only this crate's records pass (never the `jni` crate's, which
//! would recurse, nor the HTTP stack's). A record that cannot be delivered is
//! dropped silently: logging must never hurt the host.
//!
//! Every record is one line that no input can forge: its control characters
//! are escaped (`log_line`), and only the report line itself, written by
//! [`write_line`], may contain the words `Telemetry report` that an
//! operator greps for.

use crate::log_line;
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
        let method = env.get_static_method_id(log_class, "nativeLog", "(ILjava/lang/String;)Z")?;
        let bridge = Bridge {
            vm: env.get_java_vm()?,
            class: env.new_global_ref(log_class)?,
            method,
        };
        if BRIDGE.set(bridge).is_ok() {
            let _ = log::set_logger(&JavaLogger);
            crate::pipeline::set_line_writer(write_line);
        }
    }
    log::set_max_level(level_filter(max_level));
    Ok(())
}

fn level_filter(max_level: i32) -> log::LevelFilter {
    use crate::names::{LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_WARN};
    match max_level {
        l if l < LOG_ERROR => log::LevelFilter::Off,
        LOG_ERROR => log::LevelFilter::Error,
        LOG_WARN => log::LevelFilter::Warn,
        LOG_INFO => log::LevelFilter::Info,
        LOG_DEBUG => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// Writes `line` as it is at `level`, whatever the enabled levels, and says
/// whether the log took it (see `TelemetryLog.nativeLog`): the report line
/// (its body holds no character that needs escaping, `log_line::json`, so the
/// log shows the bytes that are sent) and the lines whose delivery matters.
fn write_line(level: log::Level, line: &str) -> Result<(), String> {
    let bridge = BRIDGE
        .get()
        .ok_or_else(|| "the log bridge is not installed".to_string())?;
    match bridge.write(java_level(level), line) {
        Ok(true) => Ok(()),
        Ok(false) => Err(
            "the JVM's logger did not take the line: logging failed or has \
                          been shut down"
                .to_string(),
        ),
        Err(e) => Err(format!("the JVM's logger could not be called ({e})")),
    }
}

fn java_level(level: log::Level) -> i32 {
    use crate::names::{LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_TRACE, LOG_WARN};
    match level {
        log::Level::Error => LOG_ERROR,
        log::Level::Warn => LOG_WARN,
        log::Level::Info => LOG_INFO,
        log::Level::Debug => LOG_DEBUG,
        log::Level::Trace => LOG_TRACE,
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
            let text = log_line::defused(&record.args().to_string());
            let _ = bridge.write(java_level(record.level()), &text);
        }
        IN_LOG.with(|f| f.set(false));
    }

    fn flush(&self) {}
}

impl Bridge {
    /// True when the Java side says the log took the record.
    fn write(&self, level: i32, message: &str) -> jni::errors::Result<bool> {
        // Records come from Java threads (the driver's, the sender), already attached: this
        // is a look-up. Any other thread is attached once, as a daemon, never holding up exit.
        let mut env = self.vm.attach_current_thread_as_daemon()?;
        env.with_local_frame(4, |env| -> jni::errors::Result<bool> {
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
                    ReturnType::Primitive(Primitive::Boolean),
                    &[JValue::Int(level).as_jni(), JValue::Object(&text).as_jni()],
                )
            };
            if result.is_err() && env.exception_check()? {
                env.exception_clear()?;
            }
            if let Some(e) = pending {
                env.throw(e)?;
            }
            Ok(result.and_then(|v| v.z()).unwrap_or(false))
        })
    }
}
