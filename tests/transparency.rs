//! What the library tells an operator about itself, driven in this process
//! through `pipeline::report_and_deliver` (the code the sender thread runs)
//! against a loopback collector: the audit trail in the state directory and
//! the first-time notice in the log.

mod support;

use log::Level;
use std::path::Path;
use std::time::Duration;
use support::collector::{Behaviour, Collector};
use tispark_telemetry::audit::{self, Delivery};

/// One report, as the driver sends it, for this conf: what was logged.
fn deliver(url: &str, state: &Path) -> Vec<(Level, String)> {
    support::logs::report_as_driver(url, state).1
}

fn notices(records: &[(Level, String)]) -> Vec<&(Level, String)> {
    records
        .iter()
        .filter(|(_, text)| text.contains("for the first time on this host"))
        .collect()
}

#[test]
fn a_sent_report_is_in_the_audit_trail_byte_for_byte_with_a_redacted_destination() {
    let collector = Collector::start(Behaviour::Accept);
    let state = support::temp_dir("audit-sent");
    let url = format!(
        "http://operator:secret@{}/api/v1/tispark/report?token=abc",
        collector.addr
    );
    deliver(&url, &state);
    let received = collector.wait_for(1, Duration::from_secs(5));
    assert_eq!(received.len(), 1);

    let text = std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        !text.contains("secret") && !text.contains("token"),
        "{text}"
    );
    let entries = audit::read(&state).unwrap();
    let entry = &entries[0];
    assert_eq!(entry.report.get(), received[0].body);
    assert_eq!(entry.outcome, Delivery::Sent);
    assert_eq!(entry.http_status, Some(200));
    assert_eq!(entry.error, None);
    assert_eq!(
        entry.destination,
        format!("http://{}/api/v1/tispark/report", collector.addr)
    );
    let sent: serde_json::Value = serde_json::from_str(&received[0].body).unwrap();
    assert!(entry.time >= sent["time"].as_u64().unwrap());
}

#[test]
fn a_failed_delivery_is_recorded_with_the_reason() {
    let refusing = Collector::start(Behaviour::Status(500));
    let state = support::temp_dir("audit-failed");
    deliver(&refusing.url("/r"), &state);
    // A port nobody listens on: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    deliver(&format!("http://127.0.0.1:{port}/r"), &state);

    let entries = audit::read(&state).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].outcome, Delivery::Failed);
    assert!(
        entries[0].error.as_deref().unwrap().contains("500"),
        "{:?}",
        entries[0]
    );
    assert_eq!(entries[1].outcome, Delivery::Failed);
    assert!(entries[1].error.is_some());
    assert_eq!(entries[1].http_status, None);
}

#[test]
fn a_file_sink_delivery_is_recorded_as_written() {
    let state = support::temp_dir("audit-file");
    let sink = state.join("reports/r.jsonl");
    deliver(&format!("file://{}", sink.display()), &state);
    let entries = audit::read(&state).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].outcome, Delivery::Written);
    assert_eq!(entries[0].destination, format!("file://{}", sink.display()));
    assert_eq!(
        format!("{}\n", entries[0].report.get()),
        std::fs::read_to_string(&sink).unwrap()
    );
}

#[test]
fn the_trail_keeps_only_the_last_ten_reports() {
    let collector = Collector::start(Behaviour::Accept);
    let state = support::temp_dir("audit-bound");
    for _ in 0..12 {
        deliver(&collector.url("/r"), &state);
    }
    let received = collector.wait_for(12, Duration::from_secs(5));
    let entries = audit::read(&state).unwrap();
    assert_eq!(entries.len(), audit::MAX_ENTRIES);
    let bodies: Vec<&str> = entries.iter().map(|e| e.report.get()).collect();
    let last_ten: Vec<&str> = received[2..].iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, last_ten);
}

#[test]
fn the_first_time_notice_is_one_info_line_once_per_host() {
    let collector = Collector::start(Behaviour::Accept);
    let url = collector.url("/api/v1/tispark/report");
    let state = support::temp_dir("notice");

    let first = deliver(&url, &state);
    let notice = notices(&first);
    assert_eq!(notice.len(), 1, "{first:?}");
    let (level, text) = notice[0];
    assert_eq!(*level, Level::Info);
    assert!(!text.contains('\n'));
    for part in [
        url.as_str(),
        "spark.tispark.telemetry.enable=false",
        "TISPARK_TELEMETRY_DISABLED=1",
        "DO_NOT_TRACK=1",
        "audit.jsonl",
    ] {
        assert!(text.contains(part), "{part} missing from: {text}");
    }
    // Logged before the report itself.
    let report_at = first
        .iter()
        .position(|(_, t)| t.starts_with("Telemetry report: "))
        .unwrap();
    let notice_at = first.iter().position(|r| r == notice[0]).unwrap();
    assert!(notice_at < report_at);

    let second = deliver(&url, &state);
    assert!(notices(&second).is_empty(), "{second:?}");

    let another_host = support::temp_dir("notice-other");
    assert_eq!(notices(&deliver(&url, &another_host)).len(), 1);
}

#[test]
fn only_the_report_line_contains_the_words_telemetry_report() {
    let collector = Collector::start(Behaviour::Accept);
    let state = support::temp_dir("grep");
    let mut records = deliver(&collector.url("/r"), &state);
    records.extend(deliver("http://127.0.0.1:9/r", &state));
    std::fs::write(state.join("audit.jsonl"), "corrupt\n").unwrap();
    records.extend(deliver(&collector.url("/r"), &state));
    let received = collector.wait_for(2, Duration::from_secs(5));
    let matching: Vec<&String> = records
        .iter()
        .map(|(_, t)| t)
        .filter(|t| t.contains("Telemetry report"))
        .collect();
    assert_eq!(matching.len(), 3, "{records:?}");
    assert_eq!(
        *matching[2],
        format!("Telemetry report: {}", received[1].body)
    );
}

#[test]
fn a_corrupt_audit_trail_is_replaced_with_a_warning_and_the_report_still_goes() {
    let collector = Collector::start(Behaviour::Accept);
    let state = support::temp_dir("audit-corrupt");
    std::fs::write(state.join("audit.jsonl"), b"\xff not a trail\n").unwrap();
    let records = deliver(&collector.url("/r"), &state);
    assert_eq!(collector.wait_for(1, Duration::from_secs(5)).len(), 1);
    let warnings: Vec<&String> = records
        .iter()
        .filter(|(l, _)| *l == Level::Warn)
        .map(|(_, t)| t)
        .collect();
    assert_eq!(warnings.len(), 1, "{records:?}");
    assert!(
        warnings[0].contains("audit trail") && warnings[0].contains("replaced"),
        "{}",
        warnings[0]
    );
    assert_eq!(audit::read(&state).unwrap().len(), 1);
    assert!(
        notices(&records).is_empty(),
        "a trail existed: not the first time"
    );
}

#[test]
fn a_state_directory_that_cannot_be_written_costs_a_warning_not_the_report() {
    let collector = Collector::start(Behaviour::Accept);
    let parent = support::temp_dir("audit-unwritable");
    let not_a_dir = parent.join("state");
    std::fs::write(&not_a_dir, b"a file where the directory should be").unwrap();
    let records = deliver(&collector.url("/r"), &not_a_dir);
    assert_eq!(collector.wait_for(1, Duration::from_secs(5)).len(), 1);
    // One broken directory, one WARN: it names the directory and what is lost.
    let warnings: Vec<_> = records.iter().filter(|(l, _)| *l == Level::Warn).collect();
    assert_eq!(warnings.len(), 1, "{records:?}");
    assert!(
        warnings[0].1.contains("audit trail")
            && warnings[0].1.contains(&*not_a_dir.to_string_lossy()),
        "{records:?}"
    );
}
