//! Promises of README.md and docs/ that no other test would catch breaking
//! (issue 18, items 12 and 13), checked through the library's public API,
//! without a JVM: exact values on this host where they are knowable (its
//! disks, its memory, the time), and each read cap at its exact boundary.

mod support;

use support::tls::{tls_conf, PemFiles};

use log::Level;
use serde_json::value::RawValue;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::collector::{Behaviour, Collector};
use support::logs::logged_during;
use tispark_telemetry::audit::{self, Delivery, Entry};
use tispark_telemetry::pipeline::{self, Destination, ReportInput};
use tispark_telemetry::sink::{self, Sink};
use tispark_telemetry::{host_facts, state};

const MIB: usize = 1024 * 1024;
const PD_STATUS: &str = r#"{"build_ts":"2024-01-01 00:00:00","version":"v7.5.1","git_hash":"abc","start_timestamp":1700000000}"#;
const UNKNOWN_PREFIX: &str = "The TiDB version is reported as UNKNOWN: PD did not tell it (";

fn request(conf: &[(&str, String)]) -> ReportInput {
    support::tls::enabled_request(conf)
}

fn state_conf(state: &Path) -> (&'static str, String) {
    (
        "spark.tispark.telemetry.state_dir",
        state.display().to_string(),
    )
}

fn warnings(log: &[(Level, String)]) -> Vec<String> {
    log.iter()
        .filter(|(l, _)| *l == Level::Warn)
        .map(|(_, t)| t.clone())
        .collect()
}

/// The body `preview` builds for this conf (in a fresh state directory), and the log.
fn preview(conf: &[(&str, String)]) -> (serde_json::Value, Vec<(Level, String)>) {
    let mut conf = conf.to_vec();
    conf.push(state_conf(&support::temp_dir("promises-state")));
    let (json, log) = logged_during(|| pipeline::preview(&request(&conf)));
    (serde_json::from_str(&json).unwrap(), log)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `text` padded with PEM comment lines (outside any block, which PEM
/// readers skip) before it, to exactly `len` bytes.
fn padded_to(text: &str, len: usize) -> Vec<u8> {
    assert!(text.len() + 2 <= len);
    let mut out = "#".repeat(len - text.len() - 1);
    out.push('\n');
    out.push_str(text);
    assert_eq!(out.len(), len);
    out.into_bytes()
}

/// Runs `f` on another thread; fails the test if it takes more than `limit`
/// (a writer stuck on a lock or a FIFO would otherwise hang the test).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still running after {limit:?}: it waits without bound"))
}

// ---------------------------------------------------------------------------
// The report's facts: the time, this host's memory and disks.

#[test]
fn the_reports_time_and_the_trails_time_are_now() {
    let dir = support::temp_dir("promises-time");
    let sink_file = dir.join("reports.jsonl");
    let conf = [
        state_conf(&dir.join("state")),
        (
            "spark.tispark.telemetry.url",
            format!("file://{}", sink_file.display()),
        ),
    ];
    let request = request(&conf);
    let plan = Destination::new(&request.snapshot).unwrap();
    let before = unix_now();
    let outcome = pipeline::report_and_deliver(&request, &plan);
    let after = unix_now();
    assert_eq!(outcome.delivery, Delivery::Written, "{outcome:?}");
    let sent: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&sink_file).unwrap().trim_end()).unwrap();
    let time = sent["time"].as_u64().unwrap();
    assert!(
        (before..=after).contains(&time),
        "the report's time {time} is not now ({before}..={after})"
    );
    let trail = audit::read(&dir.join("state")).unwrap();
    assert_eq!(trail.len(), 1);
    assert!(
        (before..=after).contains(&trail[0].time),
        "the trail's time {} is not now ({before}..={after})",
        trail[0].time
    );
}

#[test]
fn the_cpu_is_this_hosts_as_proc_cpuinfo_says() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let values = |key: &str| -> Vec<String> {
        cpuinfo
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == key).then(|| v.trim().to_string())
            })
            .collect()
    };
    let models = values("model name");
    assert!(!models.is_empty(), "this host's cpuinfo names its model");
    let mut cores: Vec<(String, String)> = values("physical id")
        .into_iter()
        .zip(values("core id"))
        .collect();
    cores.sort();
    cores.dedup();
    let cpu = host_facts::gather().cpu;
    assert_eq!(cpu.model, models[0]);
    assert_eq!(cpu.logical_cores, values("processor").len());
    assert_eq!(cpu.physical_cores, cores.len());
}

/// `/proc/meminfo`'s value of `key`, in bytes.
fn meminfo_bytes(meminfo: &str, key: &str) -> u64 {
    let line = meminfo
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/meminfo"));
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// `828.1 MiB` (as OSHI formats) back to bytes, and the unit's size.
fn parse_formatted(text: &str) -> (f64, f64) {
    let (number, unit) = text.split_once(' ').unwrap();
    let scale = match unit {
        "bytes" | "byte" => 1u64,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => panic!("unit {other}"),
    } as f64;
    (number.parse::<f64>().unwrap() * scale, scale)
}

#[test]
fn memory_is_this_hosts_as_proc_meminfo_says() {
    let before = std::fs::read_to_string("/proc/meminfo").unwrap();
    let memory = host_facts::gather().memory;
    let after = std::fs::read_to_string("/proc/meminfo").unwrap();
    assert!(
        before.len() > 1024,
        "a real host's meminfo: {} bytes",
        before.len()
    );
    let (available, total) = memory
        .strip_prefix("Available: ")
        .and_then(|m| m.split_once('/'))
        .unwrap_or_else(|| panic!("{memory}"));
    // The total does not change: exactly MemTotal, formatted as OSHI formats it.
    assert_eq!(
        total,
        host_facts::format_bytes(meminfo_bytes(&before, "MemTotal:"))
    );
    // What is available moves: within 10 % of either reading (and of one unit's rounding).
    let (shown, unit) = parse_formatted(available);
    let near = |bytes: u64| (shown - bytes as f64).abs() <= 0.1 * bytes as f64 + 0.05 * unit;
    let (a, b) = (
        meminfo_bytes(&before, "MemAvailable:"),
        meminfo_bytes(&after, "MemAvailable:"),
    );
    assert!(
        a > 0 && (near(a) || near(b)),
        "{memory}: MemAvailable {a} / {b}"
    );
}

/// A meminfo of exactly 64 KiB (its values last) is read whole; one byte
/// more and it is not read at all (as OSHI reads an unreadable file: 0 and 0).
#[test]
fn a_meminfo_of_64_kib_is_read_and_one_byte_more_is_not() {
    for (len, expected) in [
        (64 * 1024, "Available: 828.1 MiB/16 GiB"),
        (64 * 1024 + 1, "Available: 0 bytes/0 bytes"),
    ] {
        let root = support::temp_dir("promises-meminfo");
        std::fs::create_dir_all(root.join("proc")).unwrap();
        let values = "MemTotal:       16777216 kB\nMemAvailable:     847974 kB\n";
        let mut text = String::new();
        while text.len() + values.len() + 40 < len {
            text.push_str("Padding:               0 kB\n");
        }
        let filler = len - values.len() - text.len() - "Filler:  kB\n".len();
        text.push_str(&format!("Filler: {} kB\n", "0".repeat(filler)));
        text.push_str(values);
        assert_eq!(text.len(), len);
        std::fs::write(root.join("proc/meminfo"), &text).unwrap();
        assert_eq!(
            host_facts::gather_from(&root).memory,
            expected,
            "meminfo of {len} bytes"
        );
    }
}

#[test]
fn the_disks_are_this_hosts_block_devices_as_lsblk_lists_them() {
    let disks: Vec<(String, u64)> = host_facts::gather()
        .disks
        .into_iter()
        .map(|d| (d.name, d.size))
        .collect();
    // lsblk: every block device of /sys/block (no partitions, kernel names) but loop
    // (major 7) and ram (major 1) devices, whatever its type (disk, rom, lvm, raid).
    let out = std::process::Command::new("lsblk")
        .args(["-d", "-b", "-n", "-e", "1,7", "-o", "KNAME,SIZE"])
        .output()
        .expect("run lsblk (util-linux)");
    assert!(out.status.success());
    let mut listed: Vec<(String, u64)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (name, size) = l.split_once(' ').unwrap();
            (format!("/dev/{name}"), size.trim().parse().unwrap())
        })
        .collect();
    assert!(!listed.is_empty(), "this host has disks");
    let mut reported = disks.clone();
    reported.sort();
    listed.sort();
    assert_eq!(reported, listed, "as reported: {disks:?}");
}

// ---------------------------------------------------------------------------
// The configuration block.

#[test]
fn every_setting_left_unset_is_reported_with_tisparks_default() {
    let (report, log) = preview(&[]);
    assert_eq!(warnings(&log), Vec::<String>::new());
    assert_eq!(
        report["configuration"],
        serde_json::json!({
            "spark.tispark.plan.allow_agg_pushdown": false,
            "spark.tispark.plan.allow_index_read": true,
            "spark.tispark.index.scan_batch_size": 20000,
            "spark.tispark.index.scan_concurrency": 5,
            "spark.tispark.request.command.priority": "LOW",
            "spark.tispark.request.isolation.level": "SI",
            "spark.tispark.plan.use_index_scan_first": false,
            "spark.tispark.coprocess.streaming": false,
            "spark.tispark.coprocess.codec_format": "chblock",
            "spark.tispark.type.unsupported_mysql_types": "",
            "spark.tispark.coprocessor.chunk_batch_size": 1024,
            "spark.tispark.show_rowid": false,
            "spark.tispark.isolation_read_engines": "tikv",
            "spark.sql.auth.enable": false,
        })
    );
}

#[test]
fn a_string_setting_of_256_characters_is_reported_whole_and_257_are_cut_with_one_warning() {
    const KEY: &str = "spark.tispark.request.command.priority";
    // Two bytes each: the bound counts characters, not bytes.
    let exact = "é".repeat(256);
    let (report, log) = preview(&[(KEY, exact.clone())]);
    assert_eq!(warnings(&log), Vec::<String>::new());
    assert_eq!(report["configuration"][KEY], exact.as_str());

    let (report, log) = preview(&[(KEY, format!("{exact}x"))]);
    assert_eq!(
        warnings(&log),
        [format!(
            "The value of {KEY} is longer than 256 characters; telemetry reports its first 256."
        )]
    );
    assert_eq!(report["configuration"][KEY], exact.as_str());
}

// ---------------------------------------------------------------------------
// The state directory: the track id and the audit trail.

#[test]
fn a_track_id_file_of_256_bytes_is_read_and_one_byte_more_is_replaced() {
    let id = "trkid_57c09e04-8c5d-4b59-a6e0-4a4e1d3f2b10";
    let dir = support::temp_dir("promises-id-256");
    let file = dir.join("track_id");
    std::fs::write(&file, format!("{id}\n{}", " ".repeat(256 - id.len() - 1))).unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 256);
    let t = state::track_id(Some(&dir), Some("local-1"));
    assert_eq!((t.id.as_str(), t.warning), (id, None));

    std::fs::write(&file, format!("{id}\n{}", " ".repeat(256 - id.len()))).unwrap();
    let t = state::track_id(Some(&dir), Some("local-1"));
    assert_ne!(t.id, id);
    assert!(t.id.starts_with("trkid_"), "{t:?}");
    assert_eq!(
        t.warning.as_deref(),
        Some(
            format!(
                "The telemetry track id file {:?} cannot be used (it is larger than 256 bytes); \
                 it is replaced.",
                file.display().to_string()
            )
            .as_str()
        )
    );
    assert_eq!(state::stored_track_id(&dir), Some(t.id));
}

/// An entry whose line in the trail is exactly `line_len` bytes (without its newline).
fn entry_of_line_length(line_len: usize) -> Entry {
    let make = |pad: usize| Entry {
        time: 1_764_000_000,
        destination: "file:///var/tmp/reports.jsonl".into(),
        outcome: Delivery::Written,
        http_status: None,
        error: None,
        elapsed_ms: 3,
        report: RawValue::from_string(format!("{{\"pad\":\"{}\"}}", "x".repeat(pad))).unwrap(),
    };
    let overhead = serde_json::to_string(&make(0)).unwrap().len();
    let entry = make(line_len - overhead);
    assert_eq!(serde_json::to_string(&entry).unwrap().len(), line_len);
    entry
}

/// Two entries that take exactly 64 KiB with their newlines are both kept,
/// in a file of exactly 65536 bytes; one byte more and the older is dropped.
#[test]
fn the_trail_holds_exactly_64_kib() {
    let newest = entry_of_line_length(20_000 - 1);
    for (older_len, kept) in [(65_536 - 20_000, 2), (65_536 - 20_000 + 1, 1)] {
        let dir = support::temp_dir("promises-trail-64k");
        let older = entry_of_line_length(older_len - 1);
        assert_eq!(audit::record(&dir, &older).unwrap(), None);
        assert_eq!(audit::record(&dir, &newest).unwrap(), None);
        let size = std::fs::metadata(dir.join("audit.jsonl")).unwrap().len();
        let entries = audit::read(&dir).unwrap();
        assert_eq!(entries.len(), kept, "{older_len} + 20000 bytes");
        assert_eq!(
            entries.last().unwrap().report.get(),
            newest.report.get(),
            "the newest is always kept"
        );
        let expected_size = if kept == 2 { 65_536 } else { 20_000 };
        assert_eq!(size, expected_size, "{older_len} + 20000 bytes");
    }
}

fn failed_entry() -> Entry {
    let sink = Sink::parse("https://collector.example/r").unwrap();
    let outcome = sink::Outcome::failed("connection refused".into(), Duration::from_millis(7));
    Entry::new(&sink, &outcome, r#"{"k":1}"#).unwrap()
}

#[test]
fn a_fifo_planted_as_the_trails_lock_does_not_hold_the_writer() {
    let dir = support::temp_dir("promises-lock-fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(dir.join(".audit.lock"))
        .status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let d = dir.clone();
    let (result, took) = within(Duration::from_secs(10), move || {
        let start = Instant::now();
        (audit::record(&d, &failed_entry()), start.elapsed())
    });
    assert_eq!(result, Ok(None));
    assert!(took < Duration::from_millis(400), "it waited {took:?}");
    assert_eq!(audit::read(&dir).unwrap().len(), 1);
}

#[test]
fn a_lock_held_past_its_bound_delays_the_writer_half_a_second_not_forever() {
    let dir = support::temp_dir("promises-lock-held");
    let held = std::fs::File::create(dir.join(".audit.lock")).unwrap();
    held.lock().unwrap();
    let d = dir.clone();
    let (result, took) = within(Duration::from_secs(10), move || {
        let start = Instant::now();
        (audit::record(&d, &failed_entry()), start.elapsed())
    });
    assert_eq!(result, Ok(None));
    assert!(
        (Duration::from_millis(490)..Duration::from_millis(1500)).contains(&took),
        "the writer waited {took:?} for a lock held by another, not the 500 ms bound"
    );
    assert_eq!(
        audit::read(&dir).unwrap().len(),
        1,
        "written without the lock"
    );
    drop(held);
}

/// The state directory is fine (the track id is kept) but the trail cannot
/// be written: one WARN says so, whatever else happens.
#[test]
fn a_trail_that_cannot_be_written_while_the_id_is_fine_is_one_warning() {
    let dir = support::temp_dir("promises-trail-unwritable");
    let state = dir.join("state");
    std::fs::create_dir_all(state.join("audit.jsonl/in-the-way")).unwrap();
    let sink_file = dir.join("reports.jsonl");
    let conf = [
        state_conf(&state),
        (
            "spark.tispark.telemetry.url",
            format!("file://{}", sink_file.display()),
        ),
    ];
    let request = request(&conf);
    let plan = Destination::new(&request.snapshot).unwrap();
    let (outcome, log) = logged_during(|| pipeline::report_and_deliver(&request, &plan));
    assert_eq!(outcome.delivery, Delivery::Written, "{outcome:?}");
    let sent: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&sink_file).unwrap().trim_end()).unwrap();
    assert_eq!(
        sent["track_id"].as_str(),
        state::stored_track_id(&state).as_deref(),
        "the track id is kept"
    );
    assert_eq!(
        warnings(&log),
        [format!(
            "The telemetry audit trail is not kept: {:?} cannot be written (Is a directory (os \
             error 21)).",
            state.join("audit.jsonl").display().to_string()
        )]
    );
}

// ---------------------------------------------------------------------------
// The endpoint: the URL, the CA bundle and its cap.

#[test]
fn a_malformed_url_is_refused_with_the_message_docs_failures_md_shows() {
    let cases = [
        (
            "not a url",
            "the telemetry URL (not shown: it does not parse) is not a valid URL (relative URL \
             without a base)",
        ),
        (
            "https://user:SECRET@collector.example:99999/r?token=SECRET",
            "the telemetry URL https://collector.example/… (not shown: it does not parse) is not \
             a valid URL (invalid port number)",
        ),
        (
            "ftp://collector.example/r",
            "the telemetry URL ftp://collector.example/r is neither http(s)://host/… nor \
             file:///path",
        ),
    ];
    for (url, why) in cases {
        let request = request(&[("spark.tispark.telemetry.url", url.to_string())]);
        assert_eq!(
            Destination::new(&request.snapshot).err().as_deref(),
            Some(why),
            "{url}"
        );
    }
}

/// A CA bundle of exactly 1 MiB (a corporate bundle is hundreds of KiB) is
/// read and trusted; one byte more is refused, naming the bound.
#[test]
fn a_ca_bundle_of_1_mib_is_trusted_and_one_byte_more_is_refused() {
    let pki = support::tls::test_pki();
    let c = Collector::start_tls(Behaviour::Accept, pki.server);
    let dir = support::temp_dir("promises-ca-1mib");
    let bundle = dir.join("corporate-ca.pem");
    let url = format!("https://127.0.0.1:{}/r", c.addr.port());
    let conf = |bundle: &Path| {
        request(&[
            ("spark.tispark.telemetry.url", url.clone()),
            (
                "spark.tispark.telemetry.ca_file",
                bundle.display().to_string(),
            ),
        ])
    };

    std::fs::write(&bundle, padded_to(&pki.ca_pem, MIB)).unwrap();
    let plan = Destination::new(&conf(&bundle).snapshot).unwrap();
    let outcome = sink::deliver(&plan.client, &plan.sink, r#"{"k":1}"#);
    assert_eq!(outcome.http_status, Some(200), "{outcome:?}");
    assert_eq!(c.received().len(), 1);

    std::fs::write(&bundle, padded_to(&pki.ca_pem, MIB + 1)).unwrap();
    assert_eq!(
        Destination::new(&conf(&bundle).snapshot).err(),
        Some(format!(
            "the CA bundle {:?} (spark.tispark.telemetry.ca_file) cannot be read (it is larger \
             than 1048576 bytes)",
            bundle.display().to_string()
        ))
    );
}

// ---------------------------------------------------------------------------
// PD: its files' cap and its trust rules.

/// The cluster's PEM files, each padded to `len` bytes.
fn pems_of(pki: &support::tls::ClusterPki, dir: &Path, len: [usize; 3]) -> PemFiles {
    let files = PemFiles {
        ca: dir.join("ca.pem"),
        chain: dir.join("client.pem"),
        key: dir.join("client-key.pem"),
    };
    std::fs::write(&files.ca, padded_to(&pki.ca_pem, len[0])).unwrap();
    std::fs::write(&files.chain, padded_to(&pki.client_cert_pem, len[1])).unwrap();
    std::fs::write(&files.key, padded_to(&pki.client_key_pem, len[2])).unwrap();
    files
}

/// PD's CA, client certificate and key of exactly 1 MiB each (an RSA-4096
/// key or a chain with intermediates is several KiB) are read; one byte more
/// in any of them is refused, naming the key, not the path.
#[test]
fn pds_pem_files_of_1_mib_are_read_and_one_byte_more_is_refused() {
    let pki = support::tls::cluster_pki();
    let pd = Collector::start_tls(Behaviour::Json(PD_STATUS), pki.pd_server.clone());
    let dir = support::temp_dir("promises-pd-1mib");
    let pems = pems_of(&pki, &dir, [MIB; 3]);
    let (report, log) = preview(&tls_conf(&pd.addr.to_string(), &pems));
    assert_eq!(warnings(&log), Vec::<String>::new());
    assert_eq!(report["instance"]["tidb_version"], "v7.5.1");

    let keys = [
        "spark.tispark.tikv.trust_cert_collection",
        "spark.tispark.tikv.key_cert_chain",
        "spark.tispark.tikv.key_file",
    ];
    for (i, key) in keys.into_iter().enumerate() {
        let mut len = [MIB; 3];
        len[i] += 1;
        let dir = support::temp_dir("promises-pd-1mib-over");
        let pems = pems_of(&pki, &dir, len);
        let (report, log) = preview(&tls_conf(&pd.addr.to_string(), &pems));
        assert_eq!(report["instance"]["tidb_version"], "UNKNOWN");
        assert_eq!(
            warnings(&log),
            [format!(
                "{UNKNOWN_PREFIX}the file named by {key} cannot be read (it is larger than \
                 1048576 bytes))."
            )]
        );
    }
    assert_eq!(pd.received().len(), 1);
}

/// With TLS on, PD is trusted through the cluster's CA only: not the
/// telemetry endpoint's `ca_file`.
#[test]
fn pd_is_trusted_through_the_clusters_ca_only_not_the_telemetry_ca_file() {
    let cluster = support::tls::cluster_pki();
    // A PD whose certificate another CA signed, that asks no client certificate.
    let other = support::tls::test_pki();
    let pd = Collector::start_tls(Behaviour::Json(PD_STATUS), other.server.clone());
    let dir = support::temp_dir("promises-pd-ca");
    let pems = pems_of(&cluster, &dir, [4096; 3]);
    let other_ca = dir.join("other-ca.pem");
    std::fs::write(&other_ca, &other.ca_pem).unwrap();

    let mut conf = tls_conf(&pd.addr.to_string(), &pems);
    conf.push((
        "spark.tispark.telemetry.ca_file",
        other_ca.display().to_string(),
    ));
    let (report, log) = preview(&conf);
    assert_eq!(report["instance"]["tidb_version"], "UNKNOWN");
    assert_eq!(
        warnings(&log),
        [format!(
            "{UNKNOWN_PREFIX}TLS: invalid peer certificate: UnknownIssuer)."
        )]
    );
    assert_eq!(pd.received().len(), 0, "PD was asked without being trusted");

    // The same PD, with its CA as the cluster's: it answers.
    conf[2].1 = other_ca.display().to_string();
    let (report, log) = preview(&conf);
    assert_eq!(warnings(&log), Vec::<String>::new());
    assert_eq!(report["instance"]["tidb_version"], "v7.5.1");
}

/// ... nor the platform's trust store (`SSL_CERT_FILE`, in a child process).
#[test]
fn pd_is_trusted_through_the_clusters_ca_only_not_the_platforms_store() {
    let dir = support::temp_dir("promises-pd-store");
    let other_ca = dir.join("other-ca.pem");
    let child = support::jvm::isolated(
        &[
            ("SSL_CERT_FILE", other_ca.display().to_string()),
            ("TT_DIR", dir.display().to_string()),
        ],
        || {
            let dir = PathBuf::from(std::env::var("TT_DIR").unwrap());
            let cluster = support::tls::cluster_pki();
            let other = support::tls::test_pki();
            std::fs::write(dir.join("other-ca.pem"), &other.ca_pem).unwrap();
            let pd = Collector::start_tls(Behaviour::Json(PD_STATUS), other.server.clone());
            let pems = pems_of(&cluster, &dir, [4096; 3]);
            let (report, log) = preview(&tls_conf(&pd.addr.to_string(), &pems));
            println!("TIDB_VERSION={}", report["instance"]["tidb_version"]);
            println!("PD_ASKED={}", pd.received().len());
            println!("WARNINGS={}", warnings(&log).len());
            for w in warnings(&log) {
                println!("WARN {w}");
            }
            // The endpoint, unlike PD, trusts the platform's store.
            let c = Collector::start_tls(Behaviour::Accept, other.server);
            let sink = Sink::parse(&format!("https://127.0.0.1:{}/r", c.addr.port())).unwrap();
            let client = sink::http_client(&sink, None).unwrap();
            println!(
                "ENDPOINT_STATUS={:?}",
                sink::deliver(&client, &sink, "{}").http_status
            );
        },
    );
    let Some(run) = child else { return };
    assert!(run.success, "{}", run.output);
    assert_eq!(run.value("ENDPOINT_STATUS").as_deref(), Some("Some(200)"));
    assert_eq!(
        run.value("TIDB_VERSION").as_deref(),
        Some("\"UNKNOWN\""),
        "{}",
        run.output
    );
    assert_eq!(run.value("PD_ASKED").as_deref(), Some("0"));
    assert_eq!(
        run.value("WARNINGS").as_deref(),
        Some("1"),
        "{}",
        run.output
    );
    assert!(
        run.output.contains(&format!(
            "WARN {UNKNOWN_PREFIX}TLS: invalid peer certificate: UnknownIssuer)."
        )),
        "{}",
        run.output
    );
}

/// The cluster's client certificate is shown to PD and to nothing else: an
/// endpoint that requires one from the cluster's CA gets no report.
#[test]
fn the_client_certificate_goes_to_pd_alone() {
    let pki = support::tls::cluster_pki();
    let pd = Collector::start_tls(Behaviour::Json(PD_STATUS), pki.pd_server.clone());
    let endpoint = Collector::start_tls(Behaviour::Accept, pki.pd_server.clone());
    let dir = support::temp_dir("promises-client-cert");
    let pems = pems_of(&pki, &dir, [4096; 3]);
    let mut conf = tls_conf(&pd.addr.to_string(), &pems);
    conf.push(state_conf(&dir.join("state")));
    conf.push((
        "spark.tispark.telemetry.ca_file",
        pems.ca.display().to_string(),
    ));
    conf.push((
        "spark.tispark.telemetry.url",
        format!("https://127.0.0.1:{}/r", endpoint.addr.port()),
    ));
    let request = request(&conf);
    let plan = Destination::new(&request.snapshot).unwrap();
    let (outcome, log) = logged_during(|| pipeline::report_and_deliver(&request, &plan));
    let report_line = log
        .iter()
        .find_map(|(_, l)| l.strip_prefix("Telemetry report: "))
        .expect("the report line");
    let report: serde_json::Value = serde_json::from_str(report_line).unwrap();
    assert_eq!(
        report["instance"]["tidb_version"], "v7.5.1",
        "PD got the client certificate"
    );
    assert_eq!(pd.received().len(), 1);
    assert_eq!(outcome.delivery, Delivery::Failed);
    // The endpoint ends the handshake: its alert, or the connection closed
    // under the request, whichever the client meets first.
    let why = outcome.error.unwrap_or_default();
    assert!(
        [
            "TLS: received fatal alert: CertificateRequired",
            "connection error: Broken pipe (os error 32)",
            "connection error: Connection reset by peer (os error 104)",
        ]
        .contains(&why.as_str()),
        "the endpoint asked for a client certificate and got none: {why}"
    );
    assert_eq!(endpoint.received().len(), 0, "the endpoint got the report");
}

/// PD is asked once, where it is: a redirect is not followed.
#[test]
fn pd_is_never_followed_through_a_redirect() {
    let elsewhere = Collector::start(Behaviour::Json(PD_STATUS));
    let target: &'static str =
        Box::leak(format!("http://{}/pd/api/v1/status", elsewhere.addr).into_boxed_str());
    let pd = Collector::start(Behaviour::RedirectTo(target));
    let (report, log) = preview(&[("spark.tispark.pd.addresses", pd.addr.to_string())]);
    assert_eq!(report["instance"]["tidb_version"], "UNKNOWN");
    assert_eq!(
        warnings(&log),
        [format!(
            "{UNKNOWN_PREFIX}PD answered HTTP 307 Temporary Redirect)."
        )]
    );
    assert_eq!(pd.received().len(), 1);
    assert_eq!(elsewhere.connections(), 0, "the redirect was followed");
}

// ---------------------------------------------------------------------------
// The platform's trust store: at most 10,000 entries of a directory.

#[test]
fn a_certificate_directory_is_read_to_its_10000th_entry_and_no_further() {
    let dir = support::temp_dir("promises-store-10000");
    let certs = dir.join("certs");
    std::fs::create_dir(&certs).unwrap();
    for i in 0..10_001 {
        std::fs::write(certs.join(format!("{i:05}.pem")), b"").unwrap();
    }
    let child = support::jvm::isolated(&[("SSL_CERT_DIR", certs.display().to_string())], || {
        let certs = PathBuf::from(std::env::var("SSL_CERT_DIR").unwrap());
        // The directory's own order, which the library reads it in too.
        let order: Vec<PathBuf> = std::fs::read_dir(&certs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(order.len(), 10_001);
        let pki = support::tls::test_pki();
        let c = Collector::start_tls(Behaviour::Accept, pki.server);
        let sink = Sink::parse(&format!("https://127.0.0.1:{}/r", c.addr.port())).unwrap();
        for (name, at) in [("LAST", 10_000), ("10000TH", 9_999)] {
            std::fs::write(&order[at], &pki.ca_pem).unwrap();
            let client = sink::http_client(&sink, None).unwrap();
            let outcome = sink::deliver(&client, &sink, "{}");
            println!(
                "{name}={}",
                outcome
                    .http_status
                    .map_or_else(|| outcome.error.unwrap(), |s| s.to_string())
                    .replace(' ', "_")
            );
            std::fs::write(&order[at], b"").unwrap();
        }
    });
    let Some(run) = child else { return };
    assert!(run.success, "{}", run.output);
    assert_eq!(
        run.value("LAST").as_deref(),
        Some("TLS:_invalid_peer_certificate:_UnknownIssuer"),
        "the 10,001st entry was read:\n{}",
        run.output
    );
    assert_eq!(
        run.value("10000TH").as_deref(),
        Some("200"),
        "{}",
        run.output
    );
}

/// The platform's trust store is read only when something is asked over
/// https without a CA of its own: not for a PD asked over plain http.
#[test]
fn the_platforms_trust_store_is_read_only_for_pd_over_https() {
    let read_the_store = |log: &[(Level, String)]| {
        log.iter()
            .filter(|(_, l)| l.starts_with("The platform's trust store: "))
            .count()
    };
    let plain = Collector::start(Behaviour::Json(PD_STATUS));
    let (report, log) = preview(&[("spark.tispark.pd.addresses", plain.addr.to_string())]);
    assert_eq!(report["instance"]["tidb_version"], "v7.5.1");
    assert_eq!(read_the_store(&log), 0, "{log:?}");

    let pki = support::tls::test_pki();
    let tls = Collector::start_tls(Behaviour::Json(PD_STATUS), pki.server);
    let (_, log) = preview(&[(
        "spark.tispark.pd.addresses",
        format!("https://127.0.0.1:{}", tls.addr.port()),
    )]);
    assert_eq!(read_the_store(&log), 1, "{log:?}");
}
