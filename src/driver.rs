//! What happens once telemetry is on: build the report off the driver thread,
//! log it, deliver it, log the outcome. Once per process, on one named
//! thread that ends when it is done; `flush` lets JVM shutdown wait for it,
//! for a bounded time.

use crate::conf::{Snapshot, CA_FILE_KEY, STATE_DIR_KEY};
use crate::report::{Facts, Report};
use crate::sink::{self, Outcome, Sink};
use crate::{host_facts, state, tidb};
use once_cell::sync::Lazy;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The name of the one thread telemetry starts.
pub const THREAD_NAME: &str = "tispark-telemetry-sender";
/// With this set to `enable`, the report is printed to stderr too, whatever the log level.
pub const DEBUG_ENV: &str = "TISPARK_TELEMETRY_DEBUG";
/// How long JVM shutdown waits for a report still being sent, by default.
pub const DEFAULT_FLUSH: Duration = Duration::from_secs(2);

/// What the driver hands over once telemetry is on.
#[derive(Debug, Clone)]
pub struct Request {
    pub snapshot: Snapshot,
    pub spark_version: Option<String>,
    pub tispark_version: Option<String>,
}

/// Everything that is decided before anything is gathered: where the report
/// goes and with which client. Fails on a bad URL or CA bundle.
pub struct Plan {
    pub sink: Sink,
    pub client: reqwest::Client,
}

impl Plan {
    pub fn new(snapshot: &Snapshot) -> Result<Plan, String> {
        let sink = Sink::parse(&snapshot.url())?;
        let ca = match snapshot
            .get(CA_FILE_KEY)
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                format!("the CA bundle {path} ({CA_FILE_KEY}) cannot be read ({e})")
            })?),
            None => None,
        };
        let client =
            sink::http_client(ca.as_deref()).map_err(|e| format!("{e} ({CA_FILE_KEY})"))?;
        Ok(Plan { sink, client })
    }
}

/// A current-thread runtime: no pool and no extra thread (host names are
/// resolved on this thread too, see [`sink::ResolveOnThisThread`]).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Should anything ever use tokio's blocking pool, its threads say whose they are.
        .thread_name("tispark-telemetry-pool")
        .build()
}

/// Builds the report exactly as it will be sent. The driver and the
/// command-line `preview` both come here. Warnings are logged.
pub async fn build_report(request: &Request, client: &reqwest::Client) -> Report {
    let snapshot = &request.snapshot;
    let dir = state::resolve_dir(snapshot.get(STATE_DIR_KEY), crate::conf::process_env);
    let track = state::track_id(dir.as_deref(), snapshot.app_id());
    if let Some(w) = &track.warning {
        log::warn!("{w}");
    }
    let tidb_version = match snapshot.first_pd_address() {
        None => None,
        Some(pd) => match tidb::tidb_version(client, pd).await {
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
    report
}

/// Builds, logs and delivers one report; returns the outcome.
pub fn report_and_deliver(request: &Request, plan: &Plan) -> Outcome {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            return Outcome {
                result: Err(format!("no async runtime ({e})")),
                elapsed: Duration::ZERO,
            };
        }
    };
    let outcome = rt.block_on(async {
        let report = build_report(request, &plan.client).await;
        let body = report.to_json();
        log::info!("Telemetry report: {body}");
        if std::env::var(DEBUG_ENV).is_ok_and(|v| v.trim().eq_ignore_ascii_case("enable")) {
            eprintln!("Telemetry report: {body}");
        }
        sink::deliver(&plan.client, &plan.sink, &body).await
    });
    // DNS look-ups still blocked in the OS must not hold this thread.
    rt.shutdown_background();
    if outcome.is_success() {
        log::info!("{}", outcome.describe(&plan.sink));
    } else {
        log::warn!("{}", outcome.describe(&plan.sink));
    }
    outcome
}

static STARTED: AtomicBool = AtomicBool::new(false);
static RUNNING: Lazy<(Mutex<bool>, Condvar)> = Lazy::new(|| (Mutex::new(false), Condvar::new()));

/// Starts the one report of this process on its own thread and returns at
/// once. `Ok(false)` when a report was already started in this process.
pub fn start(request: Request, plan: Plan) -> Result<bool, String> {
    if STARTED.swap(true, Ordering::SeqCst) {
        return Ok(false);
    }
    set_running(true);
    let spawned = std::thread::Builder::new()
        .name(THREAD_NAME.to_string())
        .spawn(move || {
            let _done = DoneOnDrop;
            // A panic here must end this thread only, never the JVM.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                report_and_deliver(&request, &plan)
            }));
        });
    match spawned {
        Ok(_) => Ok(true),
        Err(e) => {
            set_running(false);
            Err(format!("the telemetry thread cannot be started ({e})"))
        }
    }
}

/// Waits until the report of this process is delivered or has failed, at most
/// `timeout`. True when nothing is left running.
pub fn flush(timeout: Duration) -> bool {
    let (lock, cvar) = &*RUNNING;
    let deadline = Instant::now() + timeout;
    let mut running = lock.lock().unwrap_or_else(|p| p.into_inner());
    while *running {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        running = cvar
            .wait_timeout(running, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    true
}

fn set_running(value: bool) {
    let (lock, cvar) = &*RUNNING;
    *lock.lock().unwrap_or_else(|p| p.into_inner()) = value;
    cvar.notify_all();
}

struct DoneOnDrop;
impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        set_running(false);
    }
}
