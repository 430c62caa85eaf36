//! `status`: what telemetry does for a configuration on this host, and what
//! it last did. Reads only: nothing is created, changed or sent (not even
//! the state directory's mode, which the next report tightens).

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use tispark_telemetry::conf::{self, Decision, ENABLE_KEY};
use tispark_telemetry::sink::Sink;
use tispark_telemetry::{audit, files, log_line, pipeline, state};

/// Everything `status` shows; `status --json` prints it as is.
#[derive(Debug, Serialize)]
pub struct Status {
    /// `None`: no file is named (no `--conf`, SPARK_CONF_DIR or SPARK_HOME).
    pub conf_file: Option<String>,
    pub conf_file_exists: bool,
    /// Whether an application started with this configuration here would report.
    pub enabled: bool,
    /// Why, in one sentence.
    pub reason: String,
    /// The value of spark.tispark.telemetry.enable in the file, as written.
    pub enable_value: Option<String>,
    /// The environment variable that turns telemetry off whatever the file says.
    pub env_override: Option<&'static str>,
    /// Where reports go, without credentials, query or fragment.
    pub endpoint: Option<String>,
    /// Why nothing could be sent although the switch is on (a bad URL or CA bundle).
    pub endpoint_error: Option<String>,
    pub state_dir: Option<String>,
    /// Why the state directory cannot be used, or what the next report changes in it.
    pub state_dir_note: Option<String>,
    #[serde(skip)]
    pub state_dir_unusable: bool,
    /// The stored track id; `None` until the first report (or preview) stores one.
    pub track_id: Option<String>,
    pub audit_file: Option<String>,
    /// Why the audit trail could not be read (it is replaced at the next report).
    pub audit_error: Option<String>,
    pub reports_recorded: usize,
    pub last_report: Option<LastReport>,
}

/// The newest audit entry, without its body.
#[derive(Debug, Serialize)]
pub struct LastReport {
    pub time: u64,
    pub time_utc: String,
    pub destination: String,
    pub outcome: audit::Delivery,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

/// Where the tool looks for a configuration file when none is named.
pub const WHERE_LOOKED: &str =
    "--conf, $SPARK_CONF_DIR/spark-defaults.conf, $SPARK_HOME/conf/spark-defaults.conf";

pub fn gather(conf_file: Option<&Path>, exists: bool, values: &BTreeMap<String, String>) -> Status {
    let mut source = values.clone();
    let snapshot = conf::Snapshot::read(&mut source).unwrap_or_default();
    let enable_value = values.get(ENABLE_KEY).cloned();
    let prepared = pipeline::prepare(&snapshot, conf::process_env);
    let decision = prepared.decision;
    let env_override = match decision {
        Decision::OffByEnv(var) => Some(var),
        _ => None,
    };
    let endpoint = Sink::parse(&snapshot.url());
    let plan_error = prepared.destination.err();
    let enabled = decision.is_on() && plan_error.is_none();
    let reason = match (&decision, &plan_error) {
        (Decision::On, Some(why)) => {
            format!("off ({ENABLE_KEY}=true, but nothing can be sent: {why})")
        }
        (Decision::OffByEnv(var), _) => {
            let file_says = match &enable_value {
                Some(v) => format!("{ENABLE_KEY}={v} in the file"),
                None => format!("the file, which does not set {ENABLE_KEY}"),
            };
            format!("off (the environment variable {var} is set; it overrides {file_says})")
        }
        (Decision::OffByConf, _) if conf_file.is_none() => format!(
            "off by default: no Spark configuration file sets {ENABLE_KEY} (none is named; \
             point this tool at one with --conf PATH, or set SPARK_CONF_DIR or SPARK_HOME)"
        ),
        (d, _) => d.explain(),
    };
    let dir = pipeline::state_dir(&snapshot);
    let (state_dir_note, state_dir_unusable) = match dir.as_deref().map(state_dir_note) {
        Some(Note::Unusable(why)) => (Some(why), true),
        Some(Note::Open(what)) => (Some(what), false),
        Some(Note::None) | None => (None, false),
    };
    let track_id = dir.as_deref().and_then(state::stored_track_id);
    let (entries, audit_error) = match dir.as_deref().map(audit::read) {
        None => (Vec::new(), None),
        Some(Ok(entries)) => (entries, None),
        Some(Err(why)) => (Vec::new(), Some(why)),
    };
    Status {
        conf_file: conf_file.map(|f| f.display().to_string()),
        conf_file_exists: exists,
        enabled,
        reason,
        enable_value,
        env_override,
        endpoint: endpoint.as_ref().ok().map(Sink::to_string),
        endpoint_error: plan_error,
        state_dir: dir.as_ref().map(|d| d.display().to_string()),
        state_dir_note,
        state_dir_unusable,
        track_id,
        audit_file: dir.as_deref().map(|d| audit::path(d).display().to_string()),
        audit_error,
        reports_recorded: entries.len(),
        last_report: entries.last().map(|e| LastReport {
            time: e.time,
            time_utc: log_line::utc(e.time),
            destination: e.destination.clone(),
            outcome: e.outcome,
            http_status: e.http_status,
            error: e.error.clone(),
            elapsed_ms: e.elapsed_ms,
        }),
    }
}

/// What the library would make of an existing state directory, found
/// without changing it: unusable (another user's, or writable by others), or
/// open to others, which the next report corrects.
fn state_dir_note(dir: &Path) -> Note {
    use std::os::unix::fs::MetadataExt;
    match files::existing_private_dir(dir) {
        Ok(false) => Note::None,
        Err(why) => Note::Unusable(format!(
            "unusable: {why}; reports carry appid_<application id> as their track id and \
             no audit trail is kept"
        )),
        Ok(true) => match std::fs::metadata(dir).map(|m| m.mode() & 0o7777) {
            Ok(mode) if mode & 0o077 != 0 => Note::Open(format!(
                "mode {mode:04o}, open to other users: the next report makes it 0700"
            )),
            _ => Note::None,
        },
    }
}

enum Note {
    None,
    Unusable(String),
    Open(String),
}

impl Status {
    pub fn to_json(&self) -> String {
        // Escaped as every line shown to a person is (`log_line`): what clients sent
        // cannot reach the terminal raw.
        tispark_telemetry::log_line::json_pretty(self).expect("a status always serializes")
    }

    /// The text for a terminal, one fact a line. Each value is escaped as a
    /// log line is (a path or URL from the configuration may hold an escape
    /// sequence or a line break).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut fact = |label: &str, value: &str| {
            let _ = writeln!(
                out,
                "{label:<15}{}",
                tispark_telemetry::log_line::escaped(value)
            );
        };
        fact(
            "Configuration:",
            &match &self.conf_file {
                Some(file) if self.conf_file_exists => file.clone(),
                Some(file) => format!("{file} (does not exist: nothing in it is set)"),
                None => format!("none (looked for {WHERE_LOOKED}: none is set)"),
            },
        );
        fact("Telemetry:", &self.reason);
        fact(
            "Endpoint:",
            &match (&self.endpoint, &self.endpoint_error) {
                (Some(e), None) => e.clone(),
                (Some(e), Some(why)) => format!("{e} (unusable: {why})"),
                (None, Some(why)) => format!("none ({why})"),
                (None, None) => "none".to_string(),
            },
        );
        fact(
            "State:",
            &match (&self.state_dir, &self.state_dir_note) {
                (Some(dir), Some(note)) => format!("{dir} ({note})"),
                (Some(dir), None) => dir.clone(),
                (None, _) => "none (HOME is unset; set TISPARK_TELEMETRY_STATE_DIR or \
                              spark.tispark.telemetry.state_dir)"
                    .to_string(),
            },
        );
        fact(
            "Track id:",
            self.track_id
                .as_deref()
                .unwrap_or(if self.state_dir_unusable {
                    "none (the state directory cannot be used)"
                } else {
                    "none yet (the first report creates one)"
                }),
        );
        let last = match (&self.last_report, &self.audit_error) {
            (_, Some(why)) => format!("unknown: the audit trail {why}"),
            (None, None) => "none recorded".to_string(),
            (Some(r), None) => {
                let how = match (r.outcome, r.http_status, &r.error) {
                    (audit::Delivery::Sent, Some(status), _) => format!("sent, HTTP {status}"),
                    (audit::Delivery::Sent, None, _) => "sent".to_string(),
                    (audit::Delivery::Written, ..) => "written".to_string(),
                    (audit::Delivery::Failed, _, Some(why)) => format!("failed: {why}"),
                    (audit::Delivery::Failed, _, None) => "failed".to_string(),
                    (audit::Delivery::NotConfirmed, ..) => {
                        "not confirmed (the application ended during the delivery)".to_string()
                    }
                };
                format!(
                    "{} to {}: {how} ({} ms)",
                    r.time_utc, r.destination, r.elapsed_ms
                )
            }
        };
        fact("Last report:", &last);
        if let Some(file) = &self.audit_file {
            fact(
                "Audit trail:",
                &format!(
                    "{file} ({} of at most {} reports kept)",
                    self.reports_recorded,
                    audit::MAX_ENTRIES
                ),
            );
        }
        out
    }
}
