//! The audit trail: each report that was delivered or attempted (HTTP POST or
//! file sink), with where it went, when, how it ended and its exact body, kept
//! in the state directory as `audit.jsonl` so that an administrator can see
//! afterwards what left the host. Only the last few are kept.
//!
//! One JSON object per line, oldest first:
//! `{"time":…,"destination":"…","outcome":"sent"|"written"|"failed"|"not_confirmed","http_status":200|null,
//! "error":null|"…","elapsed_ms":…,"report":{…the body, byte for byte…}}`.
//!
//! The file is rewritten whole (temp file + rename) under an advisory lock, so
//! that a crash never leaves it torn and two drivers of the same host
//! finishing together do not lose an entry (a writer that waits more than
//! `LOCK_WAIT` goes ahead without the lock: a lost entry is better than a
//! stuck sender). A file that is not a valid trail is
//! replaced, with a warning for the log; it is never an error for Spark.

use crate::files::{self, Links, ReadError};
use crate::sink::{self, Sink};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file name in the state directory.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// At most this many entries are kept (the newest).
pub const MAX_ENTRIES: usize = 10;
/// And at most this many bytes, except that the newest entry is always kept.
pub const MAX_BYTES: usize = 64 * 1024;
/// The advisory lock taken while the trail is rewritten.
const LOCK_FILE: &str = ".audit.lock";
/// How long a writer waits for another one before writing anyway.
const LOCK_WAIT: Duration = Duration::from_millis(500);

pub use crate::sink::Delivery;

/// One delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Unix seconds when the delivery ended.
    pub time: u64,
    /// The endpoint or file, without credentials, query or fragment.
    pub destination: String,
    pub outcome: Delivery,
    /// The endpoint's answer on success; `None` for a file or a failure.
    pub http_status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    pub elapsed_ms: u64,
    /// The body that was delivered, byte for byte.
    pub report: Box<RawValue>,
}

impl Entry {
    /// The entry for `body` delivered to `sink` with `outcome`. `None` when the
    /// body is not JSON (a report always is).
    pub fn new(sink: &Sink, outcome: &sink::Outcome, body: &str) -> Option<Entry> {
        let report = RawValue::from_string(body.to_string()).ok()?;

        Some(Entry {
            time: crate::report::unix_now(),
            destination: outcome.destination(sink),
            outcome: outcome.delivery,
            http_status: outcome.http_status,
            error: outcome.error.clone(),
            elapsed_ms: u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX),
            report,
        })
    }
}

/// The trail's path in a state directory.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(AUDIT_FILE)
}

/// True when no report was ever recorded in `dir` (or there is no state
/// directory to remember one in): the first time telemetry runs on this host.
pub fn never_reported(dir: Option<&Path>) -> bool {
    dir.is_none_or(|d| std::fs::symlink_metadata(path(d)).is_err())
}

/// A trail is written within [`MAX_BYTES`] plus one entry; a file larger
/// than this is not a trail this library wrote, and is not read.
pub const READ_LIMIT: u64 = 1024 * 1024;

/// The entries, oldest first; empty when there is no trail. `Err` says why
/// the file is not a valid trail (or not a small regular file).
pub fn read(dir: &Path) -> Result<Vec<Entry>, String> {
    let file = path(dir);
    match files::read_bounded(&file, READ_LIMIT, Links::Refuse) {
        Ok(bytes) => {
            parse(&bytes).map_err(|why| format!("{} {why}", crate::log_line::quoted_path(&file)))
        }
        Err(ReadError::NotFound) => Ok(Vec::new()),
        Err(e) => Err(format!(
            "{} cannot be used ({e})",
            crate::log_line::quoted_path(&file)
        )),
    }
}

fn parse(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                format!(
                    "has a line that is not an audit entry (line {}: {e})",
                    i + 1
                )
            })
        })
        .collect()
}

/// Appends `entry`, keeping the last [`MAX_ENTRIES`] within [`MAX_BYTES`].
/// `Ok(Some(warning))` when a corrupt trail had to be replaced.
pub fn record(dir: &Path, entry: &Entry) -> Result<Option<String>, String> {
    files::private_dir(dir)?;
    let _lock = lock::acquire(&dir.join(LOCK_FILE), LOCK_WAIT);
    let (mut entries, warning) = match read(dir) {
        Ok(entries) => (entries, None),
        Err(why) => (
            Vec::new(),
            Some(format!(
                "The telemetry audit trail {why}; it is replaced by a new one."
            )),
        ),
    };
    // The real outcome of a report that JVM shutdown recorded as not
    // confirmed (the sender finished after all) takes that entry's place.
    if entry.outcome != Delivery::NotConfirmed {
        if let Some(at) = entries.iter().rposition(|e| {
            e.outcome == Delivery::NotConfirmed && e.report.get() == entry.report.get()
        }) {
            entries.remove(at);
        }
    }
    entries.push(entry.clone());
    let text = render_bounded(&entries);
    files::write_private(dir, AUDIT_FILE, text.as_bytes()).map_err(|e| {
        format!(
            "{} cannot be written ({e})",
            crate::log_line::quoted_path(&path(dir))
        )
    })?;
    Ok(warning)
}

/// The newest entries that fit the bounds, oldest first, one line each.
fn render_bounded(entries: &[Entry]) -> String {
    let mut kept: Vec<String> = Vec::new();
    let mut bytes = 0;
    for entry in entries.iter().rev() {
        let Ok(line) = serde_json::to_string(entry) else {
            continue;
        };
        let size = line.len() + 1;
        if !kept.is_empty() && (kept.len() == MAX_ENTRIES || bytes + size > MAX_BYTES) {
            break;
        }
        bytes += size;
        kept.push(line);
    }
    kept.reverse();
    let mut text = kept.join("\n");
    text.push('\n');
    text
}

mod lock {
    use std::fs::{File, OpenOptions, TryLockError};
    use std::path::Path;
    use std::time::{Duration, Instant};

    /// Held while the trail is rewritten; released when dropped (or when the process ends).
    pub struct Held(#[allow(dead_code)] File);

    /// The lock, or `None` when it cannot be had within `wait` (the writer then
    /// goes ahead: a lost entry is better than a stuck sender). The lock file
    /// is created 0600 and never opened through a symbolic link.
    pub fn acquire(path: &Path, wait: Duration) -> Option<Held> {
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
        }
        let file = options.open(path).ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Some(Held(file)),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(_) => {
                    log::debug!(
                        "The telemetry audit lock is busy; the trail is written without it."
                    );
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::temp_dir;
    use std::fs;

    fn http_sink() -> Sink {
        Sink::parse("https://user:pw@collector.example/report?token=t").unwrap()
    }

    fn sent(body: &str) -> Entry {
        let outcome = sink::Outcome {
            delivery: Delivery::Sent,
            http_status: Some(200),
            error: None,
            elapsed: Duration::from_millis(12),
            redirected_to: None,
        };
        Entry::new(&http_sink(), &outcome, body).unwrap()
    }

    #[test]
    fn an_entry_keeps_the_body_byte_for_byte_and_the_destination_redacted() {
        let dir_tmp = temp_dir("entry");
        let dir = dir_tmp.path().to_path_buf();
        let body = r#"{"track_id":"trkid_x","time":1,"configuration":{"k":"a\nb"}}"#;
        record(&dir, &sent(body)).unwrap();
        let text = fs::read_to_string(path(&dir)).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains(&format!("\"report\":{body}")), "{text}");
        assert!(!text.contains("pw") && !text.contains("token"), "{text}");
        let entries = read(&dir).unwrap();
        assert_eq!(entries[0].destination, "https://collector.example/report");
        assert_eq!(entries[0].outcome, Delivery::Sent);
        assert_eq!(entries[0].http_status, Some(200));
        assert_eq!(entries[0].elapsed_ms, 12);
        assert_eq!(entries[0].report.get(), body);
    }

    #[test]
    fn failures_and_file_sinks_are_recorded_with_their_outcome() {
        let failed = sink::Outcome::failed("connection refused".into(), Duration::from_millis(3));
        let e = Entry::new(&http_sink(), &failed, "{}").unwrap();
        assert_eq!(e.outcome, Delivery::Failed);
        assert_eq!(e.error.as_deref(), Some("connection refused"));
        assert_eq!(e.http_status, None);
        let written = sink::Outcome {
            delivery: Delivery::Written,
            http_status: None,
            error: None,
            elapsed: Duration::ZERO,
            redirected_to: None,
        };
        let file = Sink::parse("file:///tmp/r.jsonl").unwrap();
        let e = Entry::new(&file, &written, "{}").unwrap();
        assert_eq!(e.outcome, Delivery::Written);
        assert_eq!(e.destination, "file:///tmp/r.jsonl");
    }

    #[test]
    fn a_late_outcome_replaces_the_same_reports_not_confirmed_entry_only() {
        let dir_tmp = temp_dir("unconfirmed");
        let dir = dir_tmp.path().to_path_buf();
        let unconfirmed = |body: &str| {
            let outcome = sink::Outcome {
                delivery: Delivery::NotConfirmed,
                http_status: None,
                error: Some("the application ended".into()),
                elapsed: Duration::from_millis(2000),
                redirected_to: None,
            };
            Entry::new(&http_sink(), &outcome, body).unwrap()
        };
        record(&dir, &unconfirmed(r#"{"n":1}"#)).unwrap();
        record(&dir, &unconfirmed(r#"{"n":2}"#)).unwrap();
        let text = fs::read_to_string(path(&dir)).unwrap();
        assert!(text.contains(r#""outcome":"not_confirmed""#), "{text}");
        record(&dir, &sent(r#"{"n":2}"#)).unwrap();
        let entries = read(&dir).unwrap();
        let seen: Vec<(Delivery, &str)> = entries
            .iter()
            .map(|e| (e.outcome, e.report.get()))
            .collect();
        assert_eq!(
            seen,
            [
                (Delivery::NotConfirmed, r#"{"n":1}"#),
                (Delivery::Sent, r#"{"n":2}"#)
            ]
        );
    }

    #[test]
    fn only_the_last_entries_are_kept() {
        let dir_tmp = temp_dir("bound");
        let dir = dir_tmp.path().to_path_buf();
        for i in 0..(MAX_ENTRIES + 5) {
            record(&dir, &sent(&format!("{{\"n\":{i}}}"))).unwrap();
        }
        let entries = read(&dir).unwrap();
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert_eq!(entries[0].report.get(), "{\"n\":5}");
        assert_eq!(
            entries[MAX_ENTRIES - 1].report.get(),
            format!("{{\"n\":{}}}", MAX_ENTRIES + 4)
        );
    }

    #[test]
    fn the_trail_stays_within_its_byte_bound_but_keeps_the_newest() {
        let dir_tmp = temp_dir("bytes");
        let dir = dir_tmp.path().to_path_buf();
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_BYTES / 3));
        for _ in 0..5 {
            record(&dir, &sent(&big)).unwrap();
        }
        let size = fs::metadata(path(&dir)).unwrap().len() as usize;
        assert!(size <= MAX_BYTES, "{size}");
        assert_eq!(read(&dir).unwrap().len(), 2);
        let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_BYTES * 2));
        record(&dir, &sent(&huge)).unwrap();
        let entries = read(&dir).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].report.get(), huge);
    }

    #[test]
    fn a_corrupt_trail_is_replaced_with_a_warning() {
        for junk in [&b"not json\n"[..], b"\xff\xfe\n", b"{\"time\":1}\n"] {
            let dir_tmp = temp_dir("corrupt");
            let dir = dir_tmp.path().to_path_buf();
            fs::write(path(&dir), junk).unwrap();
            assert!(read(&dir).is_err());
            let warning = record(&dir, &sent("{}")).unwrap();
            assert!(
                warning.as_deref().unwrap_or("").contains("replaced"),
                "{warning:?}"
            );
            assert_eq!(read(&dir).unwrap().len(), 1);
        }
    }

    #[test]
    fn never_reported_until_the_first_entry() {
        let dir_tmp = temp_dir("first");
        let dir = dir_tmp.path().to_path_buf();
        assert!(never_reported(Some(&dir)));
        assert!(never_reported(None));
        record(&dir, &sent("{}")).unwrap();
        assert!(!never_reported(Some(&dir)));
    }

    #[test]
    fn concurrent_writers_lose_no_entry() {
        let dir_tmp = temp_dir("concurrent");
        let dir = dir_tmp.path().to_path_buf();
        std::thread::scope(|s| {
            for i in 0..8 {
                let dir = &dir;
                s.spawn(move || record(dir, &sent(&format!("{{\"n\":{i}}}"))).unwrap());
            }
        });
        assert_eq!(read(&dir).unwrap().len(), 8);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_as_the_lock_or_the_trail_is_never_followed() {
        use std::os::unix::fs::{symlink, MetadataExt};
        let dir_tmp = temp_dir("planted");
        let dir = dir_tmp.path().to_path_buf();
        let victim_tmp = temp_dir("victim");
        let victim = victim_tmp.path().to_path_buf();
        symlink(victim.join("created-by-lock"), dir.join(LOCK_FILE)).unwrap();
        symlink(victim.join("created-by-trail"), path(&dir)).unwrap();
        let warning = record(&dir, &sent("{}")).unwrap();
        assert!(
            warning.unwrap_or_default().contains("symbolic link"),
            "the planted trail is replaced, with a WARN"
        );
        assert_eq!(
            fs::read_dir(&victim).unwrap().count(),
            0,
            "nothing created there"
        );
        let trail = fs::symlink_metadata(path(&dir)).unwrap();
        assert!(trail.is_file());
        assert_eq!(trail.mode() & 0o777, 0o600);
        assert_eq!(read(&dir).unwrap().len(), 1);
    }

    #[test]
    fn a_huge_trail_is_not_read_and_is_replaced() {
        let dir_tmp = temp_dir("huge");
        let dir = dir_tmp.path().to_path_buf();
        fs::File::create(path(&dir))
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        let why = read(&dir).unwrap_err();
        assert!(why.contains("larger than 1048576 bytes"), "{why}");
        let warning = record(&dir, &sent("{}")).unwrap().unwrap_or_default();
        assert!(warning.contains("replaced"), "{warning}");
        assert_eq!(read(&dir).unwrap().len(), 1);
    }

    #[test]
    fn an_unwritable_directory_is_an_error_not_a_panic() {
        let parent_tmp = temp_dir("ro");
        let parent = parent_tmp.path().to_path_buf();
        let file_in_the_way = parent.join("state");
        fs::write(&file_in_the_way, b"a file").unwrap();
        assert!(record(&file_in_the_way, &sent("{}")).is_err());
    }
}
