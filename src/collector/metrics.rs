//! `GET /metrics` on the page's address (`collect --ui`): what the collector
//! has done since it started (reports stored, refused by reason) and what its
//! database holds (reports, distinct track ids, bytes on disk), in
//! Prometheus' text format (version 0.0.4). The names and their meaning are
//! in docs/collector.md.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why the intake did not store a report: the `reason` label of
/// `tispark_telemetry_collector_reports_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 404: another path.
    NotFound,
    /// 405: another method than POST.
    Method,
    /// 401: without the token (`collect --token-file`).
    Unauthorized,
    /// 413: a body over 64 KiB.
    TooLarge,
    /// 400: the body was cut short.
    Incomplete,
    /// 400: not one report of the library's schema.
    Invalid,
    /// 503: the write queue is full.
    Busy,
    /// 507: the database is at --max-db-size or the disk is full.
    Full,
    /// 500: the database refused the write.
    Failed,
}

impl Refusal {
    pub const ALL: [Refusal; 9] = [
        Refusal::NotFound,
        Refusal::Method,
        Refusal::Unauthorized,
        Refusal::TooLarge,
        Refusal::Incomplete,
        Refusal::Invalid,
        Refusal::Busy,
        Refusal::Full,
        Refusal::Failed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotFound => "not_found",
            Refusal::Method => "method",
            Refusal::Unauthorized => "unauthorized",
            Refusal::TooLarge => "too_large",
            Refusal::Incomplete => "incomplete",
            Refusal::Invalid => "invalid",
            Refusal::Busy => "busy",
            Refusal::Full => "full",
            Refusal::Failed => "failed",
        }
    }
}

/// What the intake answered since the collector started.
#[derive(Default)]
pub struct Counters {
    stored: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
}

impl Counters {
    pub fn stored(&self) {
        self.stored.fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// What the database holds when `/metrics` is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub reports: u64,
    pub track_ids: u64,
    /// The database file and SQLite's files beside it.
    pub bytes: u64,
}

/// The text of `/metrics`.
pub fn render(counters: &Counters, held: Held) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    metric(
        "tispark_telemetry_collector_reports_stored_total",
        "counter",
        "Reports stored and answered 200 since this collector started.",
        &[(String::new(), counters.stored.load(Ordering::Relaxed))],
    );
    let refused: Vec<(String, u64)> = Refusal::ALL
        .iter()
        .map(|why| {
            (
                format!("{{reason=\"{}\"}}", why.label()),
                counters.refused[*why as usize].load(Ordering::Relaxed),
            )
        })
        .collect();
    metric(
        "tispark_telemetry_collector_reports_refused_total",
        "counter",
        "Requests to the intake answered without storing a report since this collector \
         started, by reason: not_found 404, method 405, unauthorized 401, too_large 413, incomplete 400 (body \
         cut short), invalid 400 (not a report), busy 503, full 507, failed 500.",
        &refused,
    );
    metric(
        "tispark_telemetry_collector_database_reports",
        "gauge",
        "Reports in the database.",
        &[(String::new(), held.reports)],
    );
    metric(
        "tispark_telemetry_collector_database_track_ids",
        "gauge",
        "Distinct track ids (hosts) among the reports in the database.",
        &[(String::new(), held.track_ids)],
    );
    metric(
        "tispark_telemetry_collector_database_bytes",
        "gauge",
        "Bytes on disk of the database file and SQLite's -wal, -shm and -journal files beside it.",
        &[(String::new(), held.bytes)],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_sample() {
        let counters = Counters::default();
        counters.stored();
        counters.refused(Refusal::Invalid);
        counters.refused(Refusal::Invalid);
        counters.refused(Refusal::Failed);
        let text = render(
            &counters,
            Held {
                reports: 5,
                track_ids: 2,
                bytes: 4096,
            },
        );
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "tispark_telemetry_collector_reports_stored_total 1",
                "tispark_telemetry_collector_reports_refused_total{reason=\"not_found\"} 0",
                "tispark_telemetry_collector_reports_refused_total{reason=\"method\"} 0",
                "tispark_telemetry_collector_reports_refused_total{reason=\"unauthorized\"} 0",
                "tispark_telemetry_collector_reports_refused_total{reason=\"too_large\"} 0",
                "tispark_telemetry_collector_reports_refused_total{reason=\"incomplete\"} 0",
                "tispark_telemetry_collector_reports_refused_total{reason=\"invalid\"} 2",
                "tispark_telemetry_collector_reports_refused_total{reason=\"busy\"} 0",
                "tispark_telemetry_collector_reports_refused_total{reason=\"full\"} 0",
                "tispark_telemetry_collector_reports_refused_total{reason=\"failed\"} 1",
                "tispark_telemetry_collector_database_reports 5",
                "tispark_telemetry_collector_database_track_ids 2",
                "tispark_telemetry_collector_database_bytes 4096",
            ]
        );
    }
}
