//! The library's `log` records, captured per thread, for tests that run the
//! pipeline in-process (no JVM): what an operator would see in the log.

use log::Level;
use std::sync::Mutex;
use std::thread::ThreadId;

/// Log records, each with the thread that logged it (tests may share a process).
static RECORDS: Mutex<Vec<(ThreadId, Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if record.target().starts_with("tispark_telemetry") {
            RECORDS.lock().unwrap().push((
                std::thread::current().id(),
                record.level(),
                record.args().to_string(),
            ));
        }
    }
    fn flush(&self) {}
}

/// The records this thread logged while `f` ran.
pub fn logged_during<T>(f: impl FnOnce() -> T) -> (T, Vec<(Level, String)>) {
    if log::set_logger(&Capture).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
    let me = std::thread::current().id();
    RECORDS.lock().unwrap().retain(|(t, ..)| *t != me);
    let out = f();
    let mine = RECORDS
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, ..)| *t == me)
        .map(|(_, level, text)| (*level, text.clone()))
        .collect();
    (out, mine)
}

/// One report, as the driver's sender thread builds, logs, delivers and
/// records it (`pipeline::report_and_deliver`) for a conf turning telemetry
/// on to `url` with `state` as the state directory: the outcome, and what
/// this thread logged meanwhile.
pub fn report_as_driver(
    url: &str,
    state: &std::path::Path,
) -> (tispark_telemetry::sink::Outcome, Vec<(Level, String)>) {
    use tispark_telemetry::pipeline::{self, Destination, ReportInput};
    let mut conf: std::collections::HashMap<String, String> = [
        ("spark.tispark.telemetry.enable", "true".to_string()),
        ("spark.tispark.telemetry.url", url.to_string()),
        (
            "spark.tispark.telemetry.state_dir",
            state.display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let snapshot = tispark_telemetry::conf::Snapshot::read(&mut conf).unwrap();
    let plan = Destination::new(&snapshot).unwrap();
    let request = ReportInput {
        snapshot,
        spark_version: Some("3.5.7".into()),
        tispark_version: None,
    };
    logged_during(|| pipeline::report_and_deliver(&request, &plan))
}
