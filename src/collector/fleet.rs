//! `fleet` and `export`: what the collector's database holds. `fleet` counts
//! the reports and track ids in a window, then tallies the newest report of
//! each track id (one per host) by versions, read engine, streaming, OS and
//! CPU cores; `export` writes every stored body as received, one a line.
//! The `--json` fields are documented in docs/collector.md.

use super::store;
use crate::log_line::escaped;
use crate::report::Report;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

pub const READ_ENGINES_KEY: &str = "spark.tispark.isolation_read_engines";
pub const STREAMING_KEY: &str = "spark.tispark.coprocess.streaming";

#[derive(Debug, Serialize)]
pub struct Fleet {
    /// Start of the window, unix seconds (0: everything stored).
    pub since: u64,
    pub since_utc: String,
    pub reports: u64,
    pub track_ids: u64,
    /// Each day (UTC) of the window with a report received, oldest first.
    pub days: Vec<Day>,
    /// Each: the values seen in the newest report of every track id, with how
    /// many track ids have it, most first.
    pub spark_version: Vec<Count>,
    pub tispark_version: Vec<Count>,
    pub tidb_version: Vec<Count>,
    pub read_engine: Vec<Count>,
    pub streaming: Vec<Count>,
    pub os: Vec<Count>,
    pub cpu_cores: Vec<Count>,
    /// The newest report of each track id, newest first.
    pub hosts: Vec<Host>,
}

#[derive(Debug, Serialize)]
pub struct Count {
    pub value: serde_json::Value,
    pub count: u64,
}

/// The reports received on one day (UTC), and from how many track ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    /// `2026-12-05`
    pub day: String,
    /// Its first second, unix seconds.
    pub start: u64,
    pub reports: u64,
    pub track_ids: u64,
}

pub const DAY: u64 = 86_400;

/// The day (UTC) of `start`, a multiple of [`DAY`]: `2026-12-05`.
pub fn day_name(start: u64) -> String {
    crate::log_line::utc(start)[..10].to_string()
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// The position of that report in the database: what "newest" means.
    #[serde(skip)]
    row: u64,
    pub track_id: String,
    pub received: u64,
    pub received_utc: String,
    pub reports: u64,
    pub spark_version: String,
    pub tispark_version: String,
    pub tidb_version: String,
    pub read_engine: serde_json::Value,
    pub streaming: serde_json::Value,
    pub os: String,
    pub cpu_cores: usize,
}

/// Reads the window `[since, now]` of the database.
pub fn gather(db: &store::Location, since: u64) -> Result<Fleet, String> {
    let mut conn = store::reader(db)?;
    let mut reports = 0u64;
    let mut newest: BTreeMap<String, Host> = BTreeMap::new();
    let mut days: BTreeMap<u64, (u64, BTreeSet<String>)> = BTreeMap::new();
    store::reports_since(&mut conn, since, |row| {
        // Every stored body passed the same check when it came in.
        let report: Report = serde_json::from_slice(&row.body)
            .map_err(|e| format!("a stored report cannot be read ({e})"))?;
        reports += 1;
        let day = days.entry(row.received / DAY).or_default();
        day.0 += 1;
        if !day.1.contains(&report.track_id) {
            day.1.insert(report.track_id.clone());
        }
        let earlier = newest.get(&report.track_id).map_or(0, |h| h.reports);
        let conf = &report.configuration;
        let host = Host {
            row: reports,
            received: row.received,
            received_utc: crate::log_line::utc(row.received),
            reports: earlier + 1,
            spark_version: report.instance.spark_version,
            tispark_version: report.instance.tispark_version,
            tidb_version: report.instance.tidb_version,
            read_engine: conf.get(READ_ENGINES_KEY).cloned().unwrap_or_default(),
            streaming: conf.get(STREAMING_KEY).cloned().unwrap_or_default(),
            os: report.hardware.os,
            cpu_cores: report.hardware.cpu.logical_cores,
            track_id: report.track_id,
        };
        newest.insert(host.track_id.clone(), host);
        Ok(())
    })?;
    let mut hosts: Vec<Host> = newest.into_values().collect();
    hosts.sort_by_key(|h| std::cmp::Reverse(h.row));
    let tally = |value: &dyn Fn(&Host) -> serde_json::Value| {
        let mut counts: Vec<(String, Count)> = Vec::new();
        for host in &hosts {
            let v = value(host);
            let key = v.to_string();
            match counts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, c)) => c.count += 1,
                None => counts.push((key, Count { value: v, count: 1 })),
            }
        }
        counts.sort_by(|(_, a), (_, b)| {
            b.count
                .cmp(&a.count)
                .then_with(|| by_value(&a.value, &b.value))
        });
        counts.into_iter().map(|(_, c)| c).collect::<Vec<_>>()
    };
    Ok(Fleet {
        since,
        since_utc: crate::log_line::utc(since),
        reports,
        track_ids: hosts.len() as u64,
        days: days
            .into_iter()
            .map(|(day, (reports, ids))| Day {
                day: day_name(day * DAY),
                start: day * DAY,
                reports,
                track_ids: ids.len() as u64,
            })
            .collect(),
        spark_version: tally(&|h| h.spark_version.clone().into()),
        tispark_version: tally(&|h| h.tispark_version.clone().into()),
        tidb_version: tally(&|h| h.tidb_version.clone().into()),
        read_engine: tally(&|h| h.read_engine.clone()),
        streaming: tally(&|h| h.streaming.clone()),
        os: tally(&|h| h.os.clone().into()),
        cpu_cores: tally(&|h| h.cpu_cores.into()),
        hosts,
    })
}

/// The order of values with equal counts: numbers by their value (8 before
/// 16), strings by their characters, `false` before `true`; values of
/// different types (not in a well-formed report) by type, then as JSON.
fn by_value(a: &serde_json::Value, b: &serde_json::Value) -> std::cmp::Ordering {
    use serde_json::Value;
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    let same_type = match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_u64(), y.as_u64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&y.as_f64().unwrap_or(0.0)),
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    };
    rank(a)
        .cmp(&rank(b))
        .then(same_type)
        .then_with(|| a.to_string().cmp(&b.to_string()))
}

/// A value as the table shows it: a string quoted, anything else as JSON;
/// escaped either way, as every cell of the table.
fn shown_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => format!("\"{}\"", escaped(s)),
        other => escaped(&other.to_string()),
    }
}

impl Fleet {
    pub fn to_json(&self) -> String {
        // Escaped as every line shown to a person is (`log_line`): what clients sent
        // cannot reach the terminal raw.
        crate::log_line::json_pretty(self).expect("a fleet always serializes")
    }

    /// The table for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let window = if self.since == 0 {
            "everything stored".to_string()
        } else {
            format!("since {}", escaped(&self.since_utc))
        };
        let _ = writeln!(
            out,
            "{} reports from {} track ids ({window}); the newest report of each track id:",
            self.reports, self.track_ids
        );
        let groups: [(&str, &Vec<Count>); 7] = [
            ("Spark version", &self.spark_version),
            ("TiSpark version", &self.tispark_version),
            ("TiDB version", &self.tidb_version),
            ("Read engines", &self.read_engine),
            ("Streaming", &self.streaming),
            ("OS", &self.os),
            ("CPU cores", &self.cpu_cores),
        ];
        for (title, counts) in groups {
            let _ = writeln!(out, "\n{title}");
            for c in counts {
                let _ = writeln!(out, "  {:>6}  {}", c.count, shown_value(&c.value));
            }
        }
        if !self.hosts.is_empty() {
            let _ = writeln!(out, "\nTrack ids, newest first");
            let _ = writeln!(
                out,
                "  {:<20}  {:<42}  {:>7}  {:<8}  {:<8}  {:<8}  read engines",
                "last report", "track id", "reports", "Spark", "TiSpark", "TiDB"
            );
            // Every cell escaped (what any client sent, and ours alike), so
            // that a report cannot write an escape sequence, a bidirectional
            // override or a line of its own into the table.
            for h in &self.hosts {
                let engines = match &h.read_engine {
                    serde_json::Value::String(s) => escaped(s),
                    other => escaped(&other.to_string()),
                };
                let _ = writeln!(
                    out,
                    "  {:<20}  {:<42}  {:>7}  {:<8}  {:<8}  {:<8}  {}",
                    escaped(&h.received_utc),
                    escaped(&h.track_id),
                    h.reports,
                    escaped(&h.spark_version),
                    escaped(&h.tispark_version),
                    escaped(&h.tidb_version),
                    engines
                );
            }
        }
        out
    }
}

/// `export`: every stored body, byte for byte, one a line, oldest first.
pub fn export(db: &store::Location, out: &mut impl std::io::Write) -> Result<u64, ExportError> {
    let mut conn = store::reader(db).map_err(ExportError::Db)?;
    let mut n = 0;
    let mut failed = None;
    store::reports_since(&mut conn, 0, |row| {
        out.write_all(&row.body)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| {
                let why = format!("cannot write ({e})");
                failed = Some(e);
                why
            })?;
        n += 1;
        Ok(())
    })
    .map_err(|why| match failed.take() {
        Some(e) => ExportError::Write(e),
        None => ExportError::Db(why),
    })?;
    out.flush().map_err(ExportError::Write)?;
    Ok(n)
}

/// Why `export` stopped.
#[derive(Debug)]
pub enum ExportError {
    /// The database cannot be read.
    Db(String),
    /// Standard output cannot be written.
    Write(std::io::Error),
}

/// Unix seconds of `now - since`.
pub fn window_start(since: Option<std::time::Duration>) -> u64 {
    match since {
        None => 0,
        Some(d) => crate::report::unix_now().saturating_sub(d.as_secs()),
    }
}

pub fn print_export(db: &store::Location) -> Result<(), String> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match export(db, &mut out) {
        Ok(_) => Ok(()),
        // `| head`: a reader that has read enough is not a failure; the rest
        // is not written (nor flushed when `out` is dropped: it goes nowhere).
        Err(ExportError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            let _ = out.into_parts();
            Ok(())
        }
        Err(ExportError::Write(e)) => Err(format!("cannot write ({e})")),
        Err(ExportError::Db(why)) => Err(why),
    }
}
