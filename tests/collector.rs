//! `tispark-telemetry collect`, run as built, on loopback with a real SQLite
//! file: what real Spark applications' reports become in `fleet --json`,
//! what is refused and how, what a stalled client gets, a burst from many
//! clients, and the database left by a SIGKILL in the middle of one.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::collector_process::{
    collect_command, ended_within, head, post, read_response, Server, BIN, PATH,
};
use support::names_in;
use support::spark::{spark_home_version, spark_submit};
use tispark_telemetry::report::Report;

/// A report built by the library, for host `n`, with these settings.
fn report(n: usize, engines: &str, streaming: bool) -> String {
    let streaming = streaming.to_string();
    support::fake_report::fake_report(
        n,
        1_795_000_000 + n as u64,
        &[
            ("spark.tispark.isolation_read_engines", engines),
            ("spark.tispark.coprocess.streaming", &streaming),
        ],
    )
}

fn tool(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN).args(args).output().expect("run tool");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn fleet_json(db: &Path) -> serde_json::Value {
    let out = tool(&["fleet", "--json", "--db", db.to_str().unwrap()]);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn export(db: &Path) -> String {
    String::from_utf8(tool(&["export", "--db", db.to_str().unwrap()]).stdout).unwrap()
}

fn counts(pairs: &[(serde_json::Value, u64)]) -> serde_json::Value {
    pairs
        .iter()
        .map(|(v, c)| serde_json::json!({"value": v, "count": c}))
        .collect()
}

// ---- real Spark applications ----

#[test]
fn reports_of_real_spark_applications_appear_in_the_fleet_with_the_right_counts() {
    let server = Server::start("spark");
    let host_a = support::temp_dir("collector-spark-a");
    let host_b = support::temp_dir("collector-spark-b");
    let app = |state: &Path, settings: &[(&'static str, &str)]| {
        let mut confs: Vec<(&str, String)> = vec![
            ("spark.tispark.telemetry.enable", "true".into()),
            ("spark.tispark.telemetry.url", server.url()),
            (
                "spark.tispark.telemetry.state_dir",
                state.display().to_string(),
            ),
        ];
        confs.extend(settings.iter().map(|(k, v)| (*k, v.to_string())));
        let run = spark_submit("local[2]", &confs, &[]);
        let logged = support::logged_reports(&run.log);
        assert_eq!(logged.len(), 1, "{}", run.log);
        logged[0].clone()
    };
    // Host A: first TiFlash with streaming, then TiKV and TiFlash without; host B: the defaults.
    let a1 = app(
        &host_a,
        &[
            ("spark.tispark.isolation_read_engines", "tiflash"),
            ("spark.tispark.coprocess.streaming", "true"),
        ],
    );
    let b = app(&host_b, &[]);
    let a2 = app(
        &host_a,
        &[("spark.tispark.isolation_read_engines", "tikv,tiflash")],
    );

    // Stored byte for byte as the driver logged (and sent) them, in order.
    assert_eq!(export(&server.db), format!("{a1}\n{b}\n{a2}\n"));

    let fleet = fleet_json(&server.db);
    let spark = spark_home_version();
    let id =
        |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap()["track_id"].clone();
    let facts: serde_json::Value = serde_json::from_str(&a2).unwrap();
    assert_eq!(fleet["reports"], 3);
    assert_eq!(fleet["track_ids"], 2);
    assert_eq!(fleet["spark_version"], counts(&[(spark.clone().into(), 2)]));
    assert_eq!(fleet["tispark_version"], counts(&[("UNKNOWN".into(), 2)]));
    assert_eq!(fleet["tidb_version"], counts(&[("UNKNOWN".into(), 2)]));
    assert_eq!(
        fleet["read_engine"],
        counts(&[("tikv".into(), 1), ("tikv,tiflash".into(), 1)])
    );
    assert_eq!(fleet["streaming"], counts(&[(false.into(), 2)]));
    assert_eq!(fleet["os"], counts(&[(facts["hardware"]["os"].clone(), 2)]));
    assert_eq!(
        fleet["cpu_cores"],
        counts(&[(facts["hardware"]["cpu"]["logicalCores"].clone(), 2)])
    );
    let hosts = fleet["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2);
    // Host A reported last, twice; host B once.
    assert_eq!(hosts[0]["track_id"], id(&a1));
    assert_eq!(id(&a1), id(&a2));
    assert_eq!(hosts[0]["reports"], 2);
    assert_eq!(hosts[0]["read_engine"], "tikv,tiflash");
    assert_eq!(hosts[0]["streaming"], false);
    assert_eq!(hosts[1]["track_id"], id(&b));
    assert_eq!(hosts[1]["reports"], 1);
    assert_eq!(hosts[1]["read_engine"], "tikv");

    // The window: all three were received within the last hour.
    assert_eq!(
        fleet_json_since(&server.db, "1h")["reports"],
        3,
        "everything was received within the hour"
    );
}

/// What a client sent is shown escaped in the fleet's table: a report whose
/// track id and versions hold an escape sequence and a line break cannot
/// colour the terminal or add a row of its own.
#[test]
fn the_fleet_table_escapes_what_clients_sent() {
    let server = Server::start("fleet-escaped");
    let mut v: serde_json::Value = serde_json::from_str(&report(1, "tikv", false)).unwrap();
    v["track_id"] = "trkid_\u{1b}[31mred\nforged".into();
    v["instance"]["spark_version"] = "3.5\r7".into();
    let (status, _) = server.post(serde_json::to_string(&v).unwrap().as_bytes());
    assert_eq!(status, 200);
    let out = tool(&["fleet", "--db", server.db.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(
            "1 reports from 1 track ids (everything stored); the newest report of each track id:\n"
        ),
        "{text}"
    );
    assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
    let row = text
        .lines()
        .find(|l| l.contains("trkid_"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains("trkid_\\u{1b}[31mred\\nforged") && row.contains("3.5\\r7"),
        "{row}"
    );
    assert!(!text.contains("\nforged"), "{text}");
}

fn fleet_json_since(db: &Path, since: &str) -> serde_json::Value {
    let out = tool(&[
        "fleet",
        "--json",
        "--since",
        since,
        "--db",
        db.to_str().unwrap(),
    ]);
    serde_json::from_slice(&out.stdout).unwrap()
}

// ---- what is refused ----

#[test]
fn anything_but_one_report_of_the_librarys_schema_is_refused_and_not_stored() {
    let server = Server::start("refused");
    let good = report(1, "tiflash", true);
    let v: serde_json::Value = serde_json::from_str(&good).unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = v.clone();
        edit(&mut v);
        serde_json::to_string(&v).unwrap()
    };
    let cases: Vec<(String, u16, &str)> = vec![
        (
            "{\"track_id\":".into(),
            400,
            "EOF while parsing a value at line 1 column 12",
        ),
        (
            with(&|v| v["time"] = "yesterday".into()),
            400,
            "invalid type: string \"yesterday\", expected u64",
        ),
        (
            with(&|v| v["hardware"]["cpu"]["logicalCores"] = 2.5.into()),
            400,
            "invalid type: floating point `2.5`, expected usize",
        ),
        (
            with(&|v| v["instance"]["hostname"] = "db1".into()),
            400,
            "unknown field `hostname`, expected one of `tispark_version`, `tidb_version`, `spark_version`",
        ),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("hardware");
            }),
            400,
            "missing field `hardware`",
        ),
        (
            with(&|v| v["configuration"]["spark.tispark.pd.addresses"] = "pd0:2379".into()),
            400,
            "configuration: unknown field \"spark.tispark.pd.addresses\"",
        ),
        (
            with(&|v| {
                v["configuration"]
                    .as_object_mut()
                    .unwrap()
                    .remove("spark.tispark.show_rowid");
            }),
            400,
            "configuration: missing field `spark.tispark.show_rowid`",
        ),
        (
            with(&|v| v["configuration"]["spark.tispark.coprocess.streaming"] = "yes".into()),
            400,
            "configuration: `spark.tispark.coprocess.streaming` must be a boolean",
        ),
        (
            format!("{good}{good}"),
            400,
            "trailing characters at line 1 column ",
        ),
        (
            serde_json::to_string_pretty(&v).unwrap(),
            400,
            "the report must be one line of JSON, as the library sends it",
        ),
        (
            "x".repeat(64 * 1024 + 1),
            413,
            "the body is larger than 65536 bytes",
        ),
    ];
    for (body, status, why) in &cases {
        let (got, text) = server.post(body.as_bytes());
        assert_eq!(got, *status, "{why}: {text}");
        assert!(
            text.starts_with(why) && text.ends_with('\n') && text.lines().count() == 1,
            "{why}: {text:?}"
        );
    }

    // A body over the cap without a length announced up front (chunked).
    let mut stream = server.connect();
    stream
        .write_all(
            format!(
                "POST {PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let chunk = "y".repeat(32 * 1024);
    for _ in 0..3 {
        let sent = write!(stream, "{:x}\r\n{chunk}\r\n", chunk.len());
        if sent.is_err() {
            break; // the server may close before reading it all
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let (got, text) = read_response(&mut stream).unwrap();
    assert_eq!(
        (got, text.as_str()),
        (413, "the body is larger than 65536 bytes\n")
    );

    // A body cut short: the client closes its side before the announced length.
    let mut stream = server.connect();
    let mut request = head(good.len()).into_bytes();
    request.extend_from_slice(&good.as_bytes()[..good.len() / 2]);
    stream.write_all(&request).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let (got, text) = read_response(&mut stream).unwrap();
    assert_eq!(
        (got, text.as_str()),
        (400, "the body was not received whole\n")
    );

    // Other paths and methods.
    let mut stream = server.connect();
    stream
        .write_all(
            format!("GET {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let (got, _) = read_response(&mut stream).unwrap();
    assert_eq!(got, 405);
    let mut stream = server.connect();
    stream.write_all(b"not http at all\r\n\r\n").unwrap();
    let (got, _) = read_response(&mut stream).unwrap();
    assert_eq!(got, 400);

    // Still serving; only the good report is stored.
    assert_eq!(server.post(good.as_bytes()), (200, "stored\n".to_string()));
    assert_eq!(export(&server.db), format!("{good}\n"));
}

#[test]
fn a_client_that_stalls_is_cut_and_does_not_hold_up_others() {
    let server = Server::start("stall");
    // Headers and no body; headers begun and never finished.
    let mut no_body = server.connect();
    no_body.write_all(head(500).as_bytes()).unwrap();
    let mut half_head = server.connect();
    half_head
        .write_all(format!("POST {PATH} HTTP/1.1\r\nHost: x\r\n").as_bytes())
        .unwrap();

    // Others are served meanwhile.
    let good = report(2, "tikv", false);
    assert_eq!(server.post(good.as_bytes()), (200, "stored\n".to_string()));

    // The server closes both (the head within 5 s, the whole exchange within
    // 10 s) without a word, and nothing is stored from them.
    for (what, stream) in [("no body", &mut no_body), ("half a head", &mut half_head)] {
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        assert_eq!(String::from_utf8_lossy(&rest), "", "{what}");
    }
    assert_eq!(export(&server.db), format!("{good}\n"));
}

// ---- load, and being killed ----

/// `clients` threads each POST `per_client` distinct reports; the bodies
/// answered 200. A thread stops at its first failure to connect or read.
fn burst(
    port: u16,
    clients: usize,
    per_client: usize,
    stored: &Arc<AtomicUsize>,
) -> BTreeSet<String> {
    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let accepted = accepted.clone();
            let stored = stored.clone();
            std::thread::spawn(move || {
                for i in 0..per_client {
                    let body = report(c * per_client + i, "tiflash", i % 2 == 0);
                    match post(port, body.as_bytes()) {
                        Ok((200, _)) => {
                            accepted.lock().unwrap().insert(body);
                            stored.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok((status, text)) => panic!("{status}: {text}"),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    Arc::try_unwrap(accepted).unwrap().into_inner().unwrap()
}

#[test]
fn a_burst_of_2000_reports_from_50_clients_is_stored_whole() {
    let server = Server::start("burst");
    let stored = Arc::new(AtomicUsize::new(0));
    let accepted = burst(server.port, 50, 40, &stored);
    assert_eq!(accepted.len(), 2000);
    let exported: BTreeSet<String> = export(&server.db).lines().map(str::to_string).collect();
    assert_eq!(exported, accepted);
    let fleet = fleet_json(&server.db);
    assert_eq!(fleet["reports"], 2000);
    assert_eq!(fleet["track_ids"], 2000);
    assert_eq!(
        fleet["streaming"],
        counts(&[(false.into(), 1000), (true.into(), 1000)])
    );
    assert_eq!(fleet["cpu_cores"], counts(&[(8.into(), 2000)]));
}

#[test]
fn killed_with_sigkill_mid_burst_the_database_holds_every_report_answered_200() {
    let mut server = Server::start("sigkill");
    let stored = Arc::new(AtomicUsize::new(0));
    let port = server.port;
    let counter = stored.clone();
    let firing = std::thread::spawn(move || burst(port, 50, 200, &counter));
    // Midway: once 1,000 of the 10,000 have been answered 200.
    while stored.load(Ordering::SeqCst) < 1000 {
        std::thread::yield_now();
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let accepted = firing.join().unwrap();
    assert!(
        accepted.len() >= 1000 && accepted.len() < 10_000,
        "{}",
        accepted.len()
    );

    let conn = rusqlite::Connection::open(&server.db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let exported: BTreeSet<String> = export(&server.db).lines().map(str::to_string).collect();
    assert!(
        accepted.is_subset(&exported),
        "{} answered 200 but missing",
        accepted.difference(&exported).count()
    );
    // Every stored row is one of the reports sent, whole.
    for line in &exported {
        serde_json::from_str::<Report>(line).unwrap();
    }

    // The collector starts again on the same file and goes on storing.
    let again = Server::start_on(server.db.clone());
    let more = report(99_999, "tikv", false);
    assert_eq!(again.post(more.as_bytes()), (200, "stored\n".to_string()));
    assert_eq!(fleet_json(&again.db)["reports"], exported.len() + 1);
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_stops() {
    let mut server = Server::start("sigterm");
    let good = report(3, "tikv", false);
    let mut stream = server.connect();
    let head = head(good.len()).replace("Connection: close\r\n", "Expect: 100-continue\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server asks for the body: the request is in flight.
    let mut line = [0u8; 25];
    stream.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"HTTP/1.1 100 Continue\r\n\r\n");

    let pid = server.child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    stream.write_all(good.as_bytes()).unwrap();
    let (status, text) = read_response(&mut stream).unwrap();
    assert_eq!((status, text.as_str()), (200, "stored\n"));

    let exit = server.child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
    let mut rest = String::new();
    server.stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "stopped; every report answered 200 is stored\n");
    assert!(TcpStream::connect(("127.0.0.1", server.port)).is_err());
    assert_eq!(export(&server.db), format!("{good}\n"));
}

// ---- the database: its bound, its retention, its path ----

/// A report of about 61 KiB (its OS name long), as one client sent them by
/// the thousand: within the 64 KiB a body may have.
fn big_report(n: usize) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&report(n, "tikv", false)).unwrap();
    v["hardware"]["os"] = "x".repeat(60_000).into();
    serde_json::to_string(&v).unwrap()
}

const FULL: &str = "the collector's database is full: it would grow past its bound of 1048576 \
                    bytes (--max-db-size); the report was not stored\n";

/// Past `--max-db-size` a report is answered 507 with one line why and not
/// stored; everything answered 200 before stays, also when the collector
/// starts again on the same file; a larger bound makes room again.
#[test]
fn past_the_size_bound_a_report_is_answered_507_and_nothing_stored_is_lost() {
    let dir = support::temp_dir("collector-bound");
    let db = dir.join("reports.db");
    let server = Server::start_with(db.clone(), &["--max-db-size", "1MiB"]);
    let mut accepted = Vec::new();
    let first_refused = (0..40)
        .find(|&n| {
            let body = big_report(n);
            let (status, text) = server.post(body.as_bytes());
            if status == 200 {
                accepted.push(body);
                false
            } else {
                assert_eq!((status, text.as_str()), (507, FULL));
                true
            }
        })
        .expect("1 MiB holds fewer than 40 reports of 61 KiB");
    // 1 MiB is 256 pages of 4 KiB: 16 reports of 15 pages, and SQLite's own.
    assert_eq!(first_refused, 16);
    // Full stays full: nothing stored is dropped to make room.
    for n in 100..103 {
        assert_eq!(
            server.post(big_report(n).as_bytes()),
            (507, FULL.to_string())
        );
    }
    let stored = format!("{}\n", accepted.join("\n"));
    assert_eq!(export(&db), stored);
    server.stop();
    assert!(
        std::fs::metadata(&db).unwrap().len() <= 1 << 20,
        "{}",
        std::fs::metadata(&db).unwrap().len()
    );

    // Started again with the same bound: still full, still whole.
    let again = Server::start_with(db.clone(), &["--max-db-size", "1MiB"]);
    assert_eq!(
        again.post(big_report(200).as_bytes()),
        (507, FULL.to_string())
    );
    again.stop();
    assert_eq!(export(&db), stored);

    // A larger bound: stored again, after everything that was.
    let larger = Server::start_with(db.clone(), &["--max-db-size", "2MiB"]);
    let more = big_report(300);
    assert_eq!(larger.post(more.as_bytes()), (200, "stored\n".to_string()));
    larger.stop();
    assert_eq!(export(&db), format!("{stored}{more}\n"));

    // Back to 1 MiB, now over it: said on stderr; the file does not grow.
    let pages: u64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    assert!(pages * 4096 > 1 << 20, "{pages}");
    let mut command = collect_command(&db, &["--max-db-size", "1MiB"]);
    command.stderr(Stdio::piped());
    let mut over = Server::spawn(command, db.clone());
    assert_eq!(
        over.post(big_report(400).as_bytes()),
        (507, FULL.to_string())
    );
    let mut stderr = over.child.stderr.take().unwrap();
    let port = over.port;
    over.stop();
    let mut said = String::new();
    stderr.read_to_string(&mut said).unwrap();
    assert_eq!(
        said,
        format!(
            "tispark-telemetry: warning: the database {} is already {} bytes, more than \
             --max-db-size (1048576 bytes): it does not grow, and a report that does not fit \
             in its free pages is answered 507\n\
             tispark-telemetry: warning: no --token-file: anyone who can reach \
             http://127.0.0.1:{}/api/v1/tispark/report may write reports\n",
            db.display(),
            pages * 4096,
            port
        )
    );
    assert_eq!(export(&db), format!("{stored}{more}\n"));
}

/// A disk that fills before the bound: `507` saying so, and what was stored
/// before is whole. The database is on a tmpfs of 512 KiB mounted in a
/// private mount namespace of the collector's (`unshare -m`, as root).
#[test]
fn a_full_disk_is_answered_507_and_nothing_stored_is_lost() {
    let dir = support::temp_dir("collector-disk-full");
    let db = dir.join("reports.db");
    let mut command = Command::new("unshare");
    command
        .args(["-m", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=512k,mode=0700 tmpfs "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(&dir)
        .arg(BIN)
        .args(["collect", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db);
    let server = Server::spawn(command, db.clone());
    let mut accepted = Vec::new();
    let refused = (0..20)
        .find_map(|n| {
            let body = big_report(n);
            match server.post(body.as_bytes()) {
                (200, _) => {
                    accepted.push(body);
                    None
                }
                refused => Some(refused),
            }
        })
        .expect("512 KiB holds fewer than 20 reports of 61 KiB");
    assert_eq!(
        refused,
        (
            507,
            "the disk that holds the collector's database is full; the report was not stored\n"
                .to_string()
        )
    );
    assert!(accepted.len() >= 3, "{}", accepted.len());
    // Exported from within the collector's mount namespace.
    let exported = Command::new("nsenter")
        .args([
            "-m",
            "-t",
            &server.child.id().to_string(),
            BIN,
            "export",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(exported.status.success(), "{exported:?}");
    assert_eq!(
        String::from_utf8(exported.stdout).unwrap(),
        format!("{}\n", accepted.join("\n"))
    );
    // Nothing of it outside the namespace.
    assert_eq!(names_in(&dir), Vec::<String>::new());
}

/// Reports that arrive together are committed together; when they do not all
/// fit, those that do are stored and only the others refused.
#[test]
fn at_the_size_bound_a_burst_stores_what_fits_and_refuses_only_the_rest() {
    let db = support::temp_dir("collector-bound-burst").join("reports.db");
    let server = Server::start_with(db.clone(), &["--max-db-size", "1MiB"]);
    let port = server.port;
    let answers: Vec<(u16, String, String)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..30)
            .map(|n| {
                s.spawn(move || {
                    let body = big_report(n);
                    let (status, text) = post(port, body.as_bytes()).unwrap();
                    (status, text, body)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let stored: BTreeSet<String> = answers
        .iter()
        .filter(|(status, _, _)| *status == 200)
        .map(|(_, _, body)| body.clone())
        .collect();
    // As many as one at a time (above); every other one refused, and why.
    assert_eq!(stored.len(), 16);
    for (status, text, _) in answers.iter().filter(|(status, _, _)| *status != 200) {
        assert_eq!((*status, text.as_str()), (507, FULL));
    }
    let exported: BTreeSet<String> = export(&db).lines().map(str::to_string).collect();
    assert_eq!(exported, stored);
}

/// `--retain`: a report received longer ago is deleted; a newer one is kept.
#[test]
fn reports_older_than_retain_are_deleted() {
    let db = support::temp_dir("collector-retain").join("reports.db");
    let server = Server::start_with(db.clone(), &["--retain", "1s"]);
    let old = report(1, "tikv", false);
    assert_eq!(server.post(old.as_bytes()), (200, "stored\n".to_string()));
    assert_eq!(export(&db), format!("{old}\n"));
    // Received at second t, it is older than 1 s once the clock reads t + 2.
    std::thread::sleep(Duration::from_millis(2100));
    let new = report(2, "tiflash", true);
    assert_eq!(server.post(new.as_bytes()), (200, "stored\n".to_string()));
    assert_eq!(export(&db), format!("{new}\n"));
}

/// `collect` with these options, expected to refuse to start: its exit code
/// and stderr (killed after 10 s if it runs instead, and the test fails).
fn collect_refused(db: &Path, options: &[&str]) -> (Option<i32>, String) {
    let (code, _, stderr) = ended_within(
        &mut collect_command(db, options),
        Duration::from_secs(10),
        &format!("collect --db {db:?} started instead of refusing"),
    );
    (code, stderr)
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// The state directory's rules, for the database: a file or directory that
/// another user owns or may write is refused (exit 1, one line saying how to
/// fix it) and left exactly as it was.
#[test]
fn a_database_another_user_owns_or_may_write_is_refused_and_left_alone() {
    use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
    let set_mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    let root = support::temp_dir("collector-db-shared");

    // A sticky directory open to all (as /tmp), where another user (uid
    // 65534) made the database first, open to all.
    let sticky = root.join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    set_mode(&sticky, 0o1777);
    let planted = sticky.join("reports.db");
    std::fs::write(&planted, b"").unwrap();
    chown(&planted, Some(65534), Some(65534)).unwrap();
    set_mode(&planted, 0o666);
    assert_eq!(
        collect_refused(&planted, &[]),
        (
            Some(1),
            format!(
                "tispark-telemetry: error: the directory {} is writable by other users (mode \
                 1777); keep the database in a directory of your own\n",
                sticky.display()
            )
        )
    );
    assert_eq!(names_in(&sticky), ["reports.db"]);
    assert_eq!(std::fs::metadata(&planted).unwrap().uid(), 65534);
    assert_eq!(std::fs::metadata(&planted).unwrap().len(), 0);

    // The same file in a directory of this user's: its owner is refused.
    let ours = root.join("ours");
    std::fs::create_dir(&ours).unwrap();
    let theirs = ours.join("reports.db");
    std::fs::write(&theirs, b"").unwrap();
    chown(&theirs, Some(65534), Some(65534)).unwrap();
    set_mode(&theirs, 0o600);
    assert_eq!(
        collect_refused(&theirs, &[]),
        (
            Some(1),
            format!(
                "tispark-telemetry: error: the file {} belongs to uid 65534, not to this user \
                 (uid 0); use a database file of your own\n",
                theirs.display()
            )
        )
    );
    assert_eq!(names_in(&ours), ["reports.db"]);

    // This user's file, that others may write.
    chown(&theirs, Some(0), Some(0)).unwrap();
    set_mode(&theirs, 0o666);
    assert_eq!(
        collect_refused(&theirs, &[]),
        (
            Some(1),
            format!(
                "tispark-telemetry: error: the file {} is writable by other users (mode 0666); \
                 make it private with `chmod 600 {}`\n",
                theirs.display(),
                theirs.display()
            )
        )
    );
    assert_eq!(mode(&theirs), 0o666);
    assert_eq!(names_in(&ours), ["reports.db"]);

    // This user's directory, that its group may write.
    set_mode(&theirs, 0o600);
    set_mode(&ours, 0o775);
    assert_eq!(
        collect_refused(&theirs, &[]),
        (
            Some(1),
            format!(
                "tispark-telemetry: error: the directory {} is writable by other users (mode \
                 0775); make it private with `chmod go-w {}`\n",
                ours.display(),
                ours.display()
            )
        )
    );
    assert_eq!(mode(&ours), 0o775);
    assert_eq!(names_in(&ours), ["reports.db"]);
}

/// Nothing is created or opened through a symbolic link: not the database
/// (a dangling link, or one to a database of this user's), not SQLite's
/// `-wal` beside it.
#[test]
fn a_database_is_never_created_or_opened_through_a_link() {
    let root = support::temp_dir("collector-db-link");
    let dir = root.join("db");
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    let db = dir.join("reports.db");
    let link_refused = |path: &Path| {
        (
            Some(1),
            format!(
                "tispark-telemetry: error: {} is a symbolic link, which is not followed: name \
                 the database file itself\n",
                path.display()
            ),
        )
    };

    // A dangling link: its target is not created.
    std::os::unix::fs::symlink(elsewhere.join("target.db"), &db).unwrap();
    assert_eq!(collect_refused(&db, &[]), link_refused(&db));
    assert_eq!(names_in(&elsewhere), Vec::<String>::new());
    assert_eq!(names_in(&dir), ["reports.db"]);

    // A link to a database: refused too, the database untouched.
    let real = Server::start_on(elsewhere.join("real.db"));
    let kept = report(1, "tikv", false);
    assert_eq!(real.post(kept.as_bytes()), (200, "stored\n".to_string()));
    real.stop();
    let before = std::fs::read(elsewhere.join("real.db")).unwrap();
    std::fs::remove_file(&db).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("real.db"), &db).unwrap();
    assert_eq!(collect_refused(&db, &[]), link_refused(&db));
    assert_eq!(std::fs::read(elsewhere.join("real.db")).unwrap(), before);
    assert_eq!(names_in(&elsewhere), ["real.db"]);

    // A `-wal` link beside a new database: refused before SQLite follows
    // it, and before the database is created.
    std::fs::remove_file(&db).unwrap();
    let wal = dir.join("reports.db-wal");
    std::os::unix::fs::symlink(elsewhere.join("wal"), &wal).unwrap();
    assert_eq!(collect_refused(&db, &[]), link_refused(&wal));
    assert_eq!(names_in(&elsewhere), ["real.db"]);
    assert_eq!(names_in(&dir), ["reports.db-wal"]);
}

/// Whatever the umask: a missing directory is created 0700, the database
/// 0600 from the first byte, and SQLite's `-wal` and `-shm` 0600.
#[test]
fn a_new_database_and_its_directory_are_private_whatever_the_umask() {
    use std::os::unix::process::CommandExt;
    let root = support::temp_dir("collector-db-new");
    let dir = root.join("a/b");
    let db = dir.join("reports.db");
    let mut command = collect_command(&db, &[]);
    // SAFETY: umask is async-signal-safe and cannot fail.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let server = Server::spawn(command, db.clone());
    let good = report(1, "tikv", false);
    assert_eq!(server.post(good.as_bytes()), (200, "stored\n".to_string()));
    assert_eq!(mode(&root.join("a")), 0o700);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(
        names_in(&dir),
        ["reports.db", "reports.db-shm", "reports.db-wal"]
    );
    for name in names_in(&dir) {
        assert_eq!(mode(&dir.join(&name)), 0o600, "{name}");
    }
    server.stop();
    assert_eq!(export(&db), format!("{good}\n"));
}

// ---- what fleet and export show ----

/// Every column of the fleet's table, and every value counted, escaped as a
/// log line is (`tispark_telemetry::log_line::escaped`), for a character
/// that `\u{1b}` alone would miss: an 8-bit CSI, and a right-to-left
/// override, which would reverse what follows it on the line (issue 18,
/// item 8). A report whose every string holds it is refused raw and stored
/// escaped, as the library writes it; `fleet --json` writes it as a JSON
/// escape.
#[test]
fn every_column_of_the_fleet_table_escapes_a_c1_control_and_a_bidi_override() {
    for (name, c) in [
        ("an 8-bit CSI (U+009B)", '\u{9b}'),
        ("a right-to-left override (U+202E)", '\u{202e}'),
    ] {
        let server = Server::start("fleet-escape-all");
        let mut v: serde_json::Value = serde_json::from_str(&report(1, "tikv", false)).unwrap();
        v["track_id"] = format!("trkid_{c}1").into();
        v["instance"]["spark_version"] = format!("3.5{c}1").into();
        v["instance"]["tispark_version"] = format!("3.3{c}0").into();
        v["instance"]["tidb_version"] = format!("v7{c}5").into();
        v["configuration"]["spark.tispark.isolation_read_engines"] = format!("tikv{c}31m").into();
        v["hardware"]["os"] = format!("Debian{c}").into();
        let (status, why) = server.post(serde_json::to_string(&v).unwrap().as_bytes());
        assert_eq!(status, 400, "{name}: {why}");
        let (status, why) = server.post(tispark_telemetry::log_line::json(&v).unwrap().as_bytes());
        assert_eq!(status, 200, "{name}: {why}");

        let json = tool(&["fleet", "--json", "--db", server.db.to_str().unwrap()]).stdout;
        let json = String::from_utf8(json).unwrap();
        assert!(!json.contains(c), "{name}: {json:?}");
        let escape = format!("\\u{:04x}", c as u32);
        assert!(
            json.contains(&format!("\"Debian{escape}\"")),
            "{name}: {json}"
        );

        let out = tool(&["fleet", "--db", server.db.to_str().unwrap()]);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains(c), "{name}: {text:?}");
        let e = format!("\\u{{{:x}}}", c as u32);
        for shown in [
            format!("\"3.5{e}1\""),
            format!("\"3.3{e}0\""),
            format!("\"v7{e}5\""),
            format!("\"tikv{e}31m\""),
            format!("\"Debian{e}\""),
        ] {
            assert!(
                text.contains(&format!("\n       1  {shown}\n")),
                "{name}: {shown}: {text}"
            );
        }
        let row = text.lines().last().unwrap();
        for shown in [
            format!("trkid_{e}1"),
            format!("3.5{e}1"),
            format!("3.3{e}0"),
            format!("v7{e}5"),
            format!("tikv{e}31m"),
        ] {
            assert!(row.contains(&shown), "{name}: {shown}: {row}");
        }
        assert!(row.ends_with(&format!("  tikv{e}31m")), "{name}: {row}");
    }
}

/// `received` is the collector's clock when the report arrived, not the
/// report's own `time` (a fixed day in November 2026) nor 0.
#[test]
fn the_stored_time_is_when_the_report_arrived() {
    let server = Server::start("received");
    let before = tispark_telemetry::report::unix_now();
    assert_eq!(
        server.post(report(7, "tikv", false).as_bytes()),
        (200, "stored\n".to_string())
    );
    let after = tispark_telemetry::report::unix_now();
    let fleet = fleet_json(&server.db);
    let received = fleet["hosts"][0]["received"].as_u64().unwrap();
    assert!(
        (before..=after).contains(&received),
        "{before} <= {received} <= {after}"
    );
    let utc =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(received))
            .to_string();
    assert_eq!(fleet["hosts"][0]["received_utc"], utc.as_str());
}

/// Stores one report for each `(host, age in seconds)`, in that order, then
/// sets their `received` to that long ago (the collector stamps "now").
fn stored_at(name: &str, reports: &[(usize, u64)]) -> PathBuf {
    let server = Server::start(name);
    for &(host, _) in reports {
        let (status, _) = server.post(report(host, "tikv", false).as_bytes());
        assert_eq!(status, 200);
    }
    let db = server.db.clone();
    server.stop();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let now = tispark_telemetry::report::unix_now() as i64;
    for (i, &(_, age)) in reports.iter().enumerate() {
        let changed = conn
            .execute(
                "UPDATE reports SET received = ?1 WHERE id = ?2",
                rusqlite::params![now - age as i64, i as i64 + 1],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    db
}

fn track_id(host: usize) -> String {
    format!("trkid_00000000-0000-4000-8000-{host:012}")
}

/// `--since` counts the reports received in the window and nothing before it;
/// the newest report of each track id is taken within the window.
#[test]
fn fleet_since_counts_only_the_reports_received_in_the_window() {
    let hour = 3600;
    // Host 1 three hours ago and a minute inside the hour; host 2 a minute
    // outside it; host 3 just now.
    let db = stored_at(
        "since",
        &[(1, 3 * hour), (2, hour + 60), (1, hour - 60), (3, 0)],
    );
    let hosts = |fleet: &serde_json::Value| -> Vec<(String, u64)> {
        fleet["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["track_id"].as_str().unwrap().to_string(),
                    h["reports"].as_u64().unwrap(),
                )
            })
            .collect()
    };

    let before = tispark_telemetry::report::unix_now();
    let last_hour = fleet_json_since(&db, "1h");
    let after = tispark_telemetry::report::unix_now();
    let since = last_hour["since"].as_u64().unwrap();
    assert!((before - hour..=after - hour).contains(&since), "{since}");
    assert_eq!(last_hour["reports"], 2);
    assert_eq!(last_hour["track_ids"], 2);
    assert_eq!(hosts(&last_hour), [(track_id(3), 1), (track_id(1), 1)]);

    let two_hours = fleet_json_since(&db, "2h");
    assert_eq!(two_hours["reports"], 3);
    assert_eq!(
        hosts(&two_hours),
        [(track_id(3), 1), (track_id(1), 1), (track_id(2), 1)]
    );

    let all = fleet_json(&db);
    assert_eq!(all["since"], 0);
    assert_eq!(all["reports"], 4);
    assert_eq!(
        hosts(&all),
        [(track_id(3), 1), (track_id(1), 2), (track_id(2), 1)]
    );
}

/// Counts are most first, then by value, numbers by their value: 8 cores
/// before 16 when as many hosts have each (docs/collector.md).
#[test]
fn fleet_counts_are_most_first_then_by_value_numbers_as_numbers() {
    let server = Server::start("fleet-order");
    let cores = [16, 4, 32, 8, 32, 16, 8, 32];
    for (n, cores) in cores.iter().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(&report(n, "tikv", false)).unwrap();
        v["hardware"]["cpu"]["logicalCores"] = (*cores).into();
        let (status, _) = server.post(serde_json::to_string(&v).unwrap().as_bytes());
        assert_eq!(status, 200);
    }
    assert_eq!(
        fleet_json(&server.db)["cpu_cores"],
        counts(&[(32.into(), 3), (8.into(), 2), (16.into(), 2), (4.into(), 1)])
    );
    let text =
        String::from_utf8(tool(&["fleet", "--db", server.db.to_str().unwrap()]).stdout).unwrap();
    assert!(
        text.contains("\nCPU cores\n       3  32\n       2  8\n       2  16\n       1  4\n"),
        "{text}"
    );
}

/// `export` of a database that does not exist: exit 1 and one line, nothing
/// on stdout, and no file created; of a FIFO: the same, at once.
#[test]
fn export_of_a_missing_database_or_a_fifo_fails_at_once_and_creates_nothing() {
    let dir = support::temp_dir("export-missing");
    let db = dir.join("reports.db");
    let out = Command::new(BIN)
        .args(["export", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "tispark-telemetry: error: the database {} cannot be used (it does not exist)\n",
            db.display()
        )
    );
    assert_eq!(names_in(&dir), Vec::<String>::new());

    // A FIFO, which SQLite's open would wait on for a writer: refused at once.
    let fifo = dir.join("fifo.db");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (code, _, stderr) = ended_within(
        Command::new(BIN).args(["export", "--db"]).arg(&fifo),
        Duration::from_secs(10),
        &format!("export --db {fifo:?} waits on the FIFO"),
    );
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "tispark-telemetry: error: the database {} cannot be used (it is not a regular \
             file)\n",
            fifo.display()
        )
    );
}

/// `export | head -1`: the reader goes away after one line; export stops
/// there and exits 0 without a word (no "Broken pipe").
#[test]
fn export_into_a_pipe_closed_after_one_line_exits_0_quietly() {
    let server = Server::start("export-head");
    // Far more than the pipe and export's buffer hold: export is still
    // writing when the reader goes.
    let first = big_report(0);
    assert_eq!(server.post(first.as_bytes()).0, 200);
    for n in 1..20 {
        assert_eq!(server.post(big_report(n).as_bytes()).0, 200);
    }
    let mut child = Command::new(BIN)
        .args(["export", "--db"])
        .arg(&server.db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, format!("{first}\n"));
    // The reader is dropped: the pipe is closed.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// A host whose facts are as large as a host can make them (a 64 KiB
/// `/etc/os-release`, 1,700 block devices of long names) and a conf whose
/// strings are all at their bound, in characters JSON writes as six bytes:
/// the report the library builds there is one its own collector stores.
#[test]
fn the_largest_report_a_host_can_give_the_library_is_stored() {
    let root = support::temp_dir("huge-host");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("proc")).unwrap();
    let name = "\u{9b}".repeat(20_000); // 40 KB of UTF-8, 120 KB as JSON escapes
    let release = format!("NAME=\"{name}\"\nVERSION_ID=\"{name}\"\n");
    let end = release
        .char_indices()
        .map(|(at, _)| at)
        .take_while(|&at| at < 64 * 1024)
        .last()
        .unwrap();
    let release = &release[..end];
    std::fs::write(root.join("etc/os-release"), release).unwrap();
    std::fs::write(
        root.join("proc/meminfo"),
        "MemTotal:       16384000 kB\nMemAvailable:    8192000 kB\n",
    )
    .unwrap();
    for i in 0..1_700 {
        let dir = root.join(format!("sys/block/d{i:04}"));
        std::fs::create_dir_all(&dir).unwrap();
        let devname = format!("{}{i:04}", "\u{9b}".repeat(27));
        std::fs::write(
            dir.join("uevent"),
            format!("DEVTYPE=disk\nDEVNAME={devname}\n"),
        )
        .unwrap();
        std::fs::write(dir.join("size"), "18446744073709551\n").unwrap();
    }
    let hardware = tispark_telemetry::host_facts::gather_from(&root);
    assert_eq!(hardware.disks.len(), 1_700, "the fake host is read whole");
    // Whole, these facts alone are far over what the collector takes.
    let whole = tispark_telemetry::log_line::json(&hardware).unwrap();
    assert!(whole.len() > 4 * 64 * 1024, "{} bytes", whole.len());

    let mut conf: std::collections::HashMap<String, String> =
        tispark_telemetry::conf::REPORTED_KEYS
            .iter()
            .map(|(k, _)| (k.to_string(), "\u{9b}".repeat(300)))
            .collect();
    let snapshot = tispark_telemetry::conf::Snapshot::read(&mut conf).unwrap();
    let facts = tispark_telemetry::report::Facts {
        track_id: "trkid_1b4e28ba-2fa1-41d2-883f-0016d3cca427".into(),
        time: tispark_telemetry::report::unix_now(),
        hardware,
        tispark_version: Some("\u{9b}".repeat(5_000)),
        tidb_version: Some("\u{9b}".repeat(5_000)),
        spark_version: Some("\u{9b}".repeat(5_000)),
    };
    let (report, _) = Report::assemble(&snapshot, facts);
    assert_eq!(report.hardware.disks.len(), 128);
    let body = report.to_json();
    assert!(body.len() > 40 * 1024, "{} bytes", body.len());

    let server = Server::start("huge-host");
    assert_eq!(server.post(body.as_bytes()).0, 200);
    assert_eq!(export(&server.db), format!("{body}\n"));
}
