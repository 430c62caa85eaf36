//! What happens once telemetry is on: build the report, log it, deliver it,
//! log the outcome and record it in the audit trail, all on the calling thread
//! (in the driver, the Java side's `tispark-telemetry-sender` thread, which
//! JVM shutdown waits for at most the flush bound, 2 s by default). The command-line `preview` builds its
//! report here too, through [`preview`].

use crate::conf::{Snapshot, CA_FILE_KEY, ENABLE_KEY, STATE_DIR_KEY};
use crate::files::{self, Links};
use crate::report::{Facts, Report};
use crate::sink::{self, Outcome, Sink};
use crate::{audit, host_facts, state, tidb};
use once_cell::sync::OnceCell;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// With this set to `enable`, `enabled` or `true` (TiUP's spellings for
/// `TIUP_CLUSTER_DEBUG`), the report is printed to stderr too, whatever the log level.
pub const DEBUG_ENV: &str = "TISPARK_TELEMETRY_DEBUG";

/// Whether a value of [`DEBUG_ENV`] asks for the report on stderr (any case, spaces ignored).
pub fn debug_requested(value: &str) -> bool {
    ["enable", "enabled", "true"]
        .iter()
        .any(|on| value.trim().eq_ignore_ascii_case(on))
}

/// A CA bundle is a few hundred KiB at most; a larger file is refused.
pub const CA_BUNDLE_LIMIT: u64 = 1024 * 1024;

/// Writes one line, as it is, into the host's log at a level and says whether
/// the log took it. Set by the JNI bridge (Spark's log through slf4j);
/// without one, the line goes to the `log` crate and counts as written.
pub type LineWriter = fn(log::Level, &str) -> Result<(), String>;

static LINE_WRITER: OnceCell<LineWriter> = OnceCell::new();

/// Installs the writer of the lines whose delivery matters (once per loaded library).
pub fn set_line_writer(writer: LineWriter) {
    let _ = LINE_WRITER.set(writer);
}

/// Writes `line` (already safe to log) at `level`; `Err` when the log did not take it.
fn write_line(level: log::Level, line: &str) -> Result<(), String> {
    match LINE_WRITER.get() {
        Some(write) => write(level, line),
        None => {
            log::log!(level, "{line}");
            Ok(())
        }
    }
}

/// Logs `Telemetry report: <body>`: the report is sent only when this succeeded.
/// The body holds no character a log line must not hold (`log_line::json`).
fn log_report_line(body: &str) -> Result<(), String> {
    write_line(log::Level::Info, &format!("Telemetry report: {body}"))
}

/// The report being delivered, from its line in the log to its outcome: what
/// JVM shutdown records as not confirmed when it stops waiting for it.
struct InFlight {
    dir: Option<PathBuf>,
    sink: Sink,
    body: String,
    started: std::time::Instant,
}

static IN_FLIGHT: Mutex<Option<InFlight>> = Mutex::new(None);

fn in_flight() -> std::sync::MutexGuard<'static, Option<InFlight>> {
    IN_FLIGHT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Called when JVM shutdown stopped waiting for the sender after `waited`:
/// if a report is being delivered, says at WARN (on stderr when the log no
/// longer takes lines) that it is not confirmed, and records it so in the
/// audit trail. The sender's own outcome, if it still comes, replaces that
/// entry. False when no report was in flight.
pub fn unconfirmed(waited: Duration) -> bool {
    // On a thread of its own, waited for at most UNCONFIRMED_WAIT: the trail's
    // write (a lock, an fsync, perhaps on NFS) must not hold JVM shutdown.
    let (done, said) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("tispark-telemetry-unconfirmed".into())
        .spawn(move || {
            let _ = done.send(say_unconfirmed(waited));
        });
    spawned.is_ok() && said.recv_timeout(UNCONFIRMED_WAIT).unwrap_or(true)
}

/// How long JVM shutdown waits for [`unconfirmed`]'s line and trail entry.
const UNCONFIRMED_WAIT: Duration = Duration::from_millis(500);

fn say_unconfirmed(waited: Duration) -> bool {
    let guard = in_flight();
    let Some(flight) = guard.as_ref() else {
        return false;
    };
    let outcome = Outcome {
        delivery: sink::Delivery::NotConfirmed,
        http_status: None,
        error: Some(format!(
            "the application ended {} ms into its delivery, and JVM shutdown waits at most \
             {} ms for it (-D{})",
            flight.started.elapsed().as_millis(),
            waited.as_millis(),
            crate::names::FLUSH_MILLIS_PROPERTY
        )),
        elapsed: flight.started.elapsed(),
        redirected_to: None,
    };
    let line = crate::log_line::defused(&outcome.describe(&flight.sink));
    if write_line(log::Level::Warn, &line).is_err() {
        eprintln!("WARN Telemetry: {line}");
    }
    record_in_audit_trail(
        flight.dir.as_deref(),
        &flight.sink,
        &outcome,
        &flight.body,
        false,
    );
    true
}

/// What the driver hands over once telemetry is on.
#[derive(Debug, Clone)]
pub struct ReportInput {
    pub snapshot: Snapshot,
    pub spark_version: Option<String>,
    pub tispark_version: Option<String>,
}

/// Everything that is decided before anything is gathered: where the report
/// goes and with which client. Fails on a bad URL or CA bundle.
pub struct Destination {
    pub sink: Sink,
    pub client: sink::HttpClient,
}

impl Destination {
    pub fn new(snapshot: &Snapshot) -> Result<Destination, String> {
        let sink = Sink::parse(&snapshot.url())?;
        let ca = match snapshot
            .get(CA_FILE_KEY)
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            Some(path) => Some(
                files::read_bounded(Path::new(path), CA_BUNDLE_LIMIT, Links::Follow).map_err(
                    |e| {
                        format!(
                            "the CA bundle {} ({CA_FILE_KEY}) cannot be read ({e})",
                            crate::log_line::quoted_path(Path::new(path))
                        )
                    },
                )?,
            ),
            None => None,
        };
        let client =
            sink::http_client(&sink, ca.as_deref()).map_err(|e| format!("{e} ({CA_FILE_KEY})"))?;
        Ok(Destination { sink, client })
    }
}

/// What is decided before anything is gathered: on or off and why, and where
/// the report would go. The JNI path, the command-line `status` and `preview`
/// all start here.
pub struct Prepared {
    pub decision: crate::conf::Decision,
    /// The destination and its client, or why nothing can be sent.
    pub destination: Result<Destination, String>,
}

/// Decides from the conf's switch and the environment, and checks the destination.
pub fn prepare(snapshot: &Snapshot, env: impl Fn(&str) -> Option<String>) -> Prepared {
    Prepared {
        decision: crate::conf::decide(snapshot.get(ENABLE_KEY), env),
        destination: Destination::new(snapshot),
    }
}

/// The state directory (track id, audit trail) for this conf and the process environment.
pub fn state_dir(snapshot: &Snapshot) -> Option<PathBuf> {
    state::resolve_dir(snapshot.get(STATE_DIR_KEY), crate::conf::process_env)
}

/// The one INFO line logged the first time telemetry runs on a host: what is
/// collected, where it goes, and how to turn it off. It never contains the
/// words the report line is found by.
pub fn first_time_notice(sink: &Sink, dir: Option<&Path>) -> String {
    let kept = match dir {
        Some(d) => format!(
            "and each delivery is recorded in {}",
            audit::path(d).display()
        ),
        None => "and no audit trail can be kept (no state directory)".to_string(),
    };
    let settings = crate::conf::REPORTED_KEYS.len();
    format!(
        "TiSpark telemetry is on for the first time on this host. Once per application it \
         delivers to {sink}: a random id for this host, the OS, CPU, memory and disk sizes, \
         the TiSpark, TiDB and Spark versions and {settings} TiSpark settings (no host name, \
         address, user name, path or other setting). The exact JSON is logged at INFO \
         before it leaves, {kept}. To turn it off: {ENABLE_KEY}=false \
         (`tispark-telemetry disable`), or TISPARK_TELEMETRY_DISABLED=1 or DO_NOT_TRACK=1 \
         in the driver's environment."
    )
}

/// Builds the report exactly as it will be sent. The driver and the
/// command-line `preview` both come here. Warnings are logged.
pub fn build_report(request: &ReportInput) -> Report {
    build_report_in(request, state_dir(&request.snapshot).as_deref()).0
}

/// [`build_report`] with the state directory already resolved, also telling
/// whether a WARN about that directory was logged (so that one broken
/// directory is one WARN, not two).
fn build_report_in(request: &ReportInput, dir: Option<&Path>) -> (Report, bool) {
    let snapshot = &request.snapshot;
    let track = state::track_id(dir, snapshot.app_id());
    if let Some(w) = &track.warning {
        log::warn!("{w}");
    }
    let tidb_version = match snapshot.first_pd_address() {
        None => None,
        Some(pd) => match tidb::tidb_version(pd, snapshot) {
            Ok(v) => Some(v),
            Err(e) => {
                log::warn!("The TiDB version is reported as UNKNOWN: PD did not tell it ({e}).");
                None
            }
        },
    };
    let facts = Facts {
        track_id: track.id,
        time: crate::report::unix_now(),
        hardware: host_facts::gather(),
        tispark_version: request.tispark_version.clone(),
        tidb_version,
        spark_version: request.spark_version.clone(),
    };
    let (report, warnings) = Report::assemble(snapshot, facts);
    for w in warnings {
        log::warn!("{w}");
    }
    (report, track.warning.is_some())
}

/// The body [`report_and_deliver`] would send for `request` now, without
/// sending it or recording anything in the audit trail. Like the driver, it
/// uses (and on first use stores) the host's track id and asks PD when one is
/// configured. Warnings are logged.
pub fn preview(request: &ReportInput) -> String {
    build_report(request).to_json()
}

/// Builds, logs and delivers one report, records it in the audit trail;
/// returns the outcome. The first time on a host, logs [`first_time_notice`].
pub fn report_and_deliver(request: &ReportInput, plan: &Destination) -> Outcome {
    // Where the time to the wire goes, at DEBUG (docs/performance.md).
    let start = std::time::Instant::now();
    let mut phases: Vec<(&str, Duration)> = Vec::with_capacity(5);
    let mark = |name, phases: &mut Vec<(&str, Duration)>| phases.push((name, start.elapsed()));
    let dir = state_dir(&request.snapshot);
    if audit::never_reported(dir.as_deref()) {
        log::info!("{}", first_time_notice(&plan.sink, dir.as_deref()));
    }
    mark("notice", &mut phases);
    let (report, state_warned) = build_report_in(request, dir.as_deref());
    let body = report.to_json();
    mark("built", &mut phases);
    // Every byte that leaves is in the log first: no line, no report.
    if let Err(why) = log_report_line(&body) {
        // The log itself failed, so this goes to stderr; it never says
        // the words the report line is found by.
        let why = crate::log_line::defused(&why);
        eprintln!(
            "TiSpark telemetry: nothing was sent, because the report could not be written \
             to the log first ({why})."
        );
        return Outcome::failed(
            format!("the report could not be logged ({why})"),
            Duration::ZERO,
        );
    }
    if std::env::var(DEBUG_ENV).is_ok_and(|v| debug_requested(&v)) {
        eprintln!("Telemetry report: {body}");
    }
    mark("logged", &mut phases);
    *in_flight() = Some(InFlight {
        dir: dir.clone(),
        sink: plan.sink.clone(),
        body: body.clone(),
        started: std::time::Instant::now(),
    });
    let outcome = sink::deliver(&plan.client, &plan.sink, &body);
    mark("delivered", &mut phases);
    log::debug!(
        "Telemetry timings since the report started: {}.",
        phases
            .iter()
            .map(|(name, at)| format!("{name} {} µs", at.as_micros()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if outcome.is_success() {
        log::info!("{}", outcome.describe(&plan.sink));
    } else {
        log::warn!("{}", outcome.describe(&plan.sink));
    }
    // The outcome is in the log: from here JVM shutdown no longer calls the
    // report unconfirmed (see `unconfirmed`).
    in_flight().take();
    record_in_audit_trail(dir.as_deref(), &plan.sink, &outcome, &body, state_warned);
    outcome
}

/// Records the delivery; a failure is a WARN unless the state directory was
/// already warned about for this report.
fn record_in_audit_trail(
    dir: Option<&Path>,
    sink: &Sink,
    outcome: &Outcome,
    body: &str,
    state_warned: bool,
) {
    let Some(dir) = dir else {
        log::debug!("No telemetry audit trail is kept: there is no state directory.");
        return;
    };
    let Some(entry) = audit::Entry::new(sink, outcome, body) else {
        return;
    };
    match audit::record(dir, &entry) {
        Ok(None) => {}
        Ok(Some(warning)) => log::warn!("{warning}"),
        Err(why) if state_warned => log::debug!("The telemetry audit trail is not kept: {why}."),
        Err(why) => log::warn!("The telemetry audit trail is not kept: {why}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_accepts_tiups_spellings() {
        for on in ["enable", "enabled", "true", " TRUE ", "Enabled"] {
            assert!(debug_requested(on), "{on}");
        }
        for off in ["", "1", "yes", "on", "disable", "false", "enabledx"] {
            assert!(!debug_requested(off), "{off}");
        }
    }

    #[test]
    fn the_first_time_notice_says_what_where_and_how_to_turn_it_off() {
        let sink = Sink::parse("https://u:secret@collector.example/r?k=v").unwrap();
        let notice = first_time_notice(&sink, Some(Path::new("/var/state")));
        assert!(!notice.contains('\n'), "{notice}");
        assert!(!notice.contains("Telemetry report"), "{notice}");
        assert!(!notice.contains("secret"), "{notice}");
        for part in [
            "https://collector.example/r",
            "disk sizes",
            "/var/state/audit.jsonl",
            "spark.tispark.telemetry.enable=false",
            "TISPARK_TELEMETRY_DISABLED=1",
            "DO_NOT_TRACK=1",
        ] {
            assert!(notice.contains(part), "{part} missing: {notice}");
        }
    }
}
