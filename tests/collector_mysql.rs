//! `tispark-telemetry collect --db mysql://…`, run as built, storing into a
//! real MySQL-protocol server (MariaDB, as TiDB would be): what is stored and
//! read back by `fleet` and `export`, the password's rules, the schema's
//! version, two collectors on one database under a burst from 50 clients
//! (one of them SIGKILLed in the middle), and a real Spark application's
//! report in `fleet --json`.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::collector_process::{collect_command, post, Server, BIN};
use support::mariadb::{MariaDb, PASSWORD};

const ENV: &str = "TISPARK_TELEMETRY_DB_PASSWORD";

/// `collect` on `url`, the password from a file.
fn collector(db: &MariaDb, url: &str, options: &[&str]) -> Server {
    let file = db.password_file(&support::temp_dir("password"));
    let mut args = vec!["--db-password-file", file.to_str().unwrap()];
    args.extend_from_slice(options);
    Server::spawn(collect_command(Path::new(url), &args), PathBuf::from(url))
}

/// `tispark-telemetry ARGS` with the password in the environment.
fn tool(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN)
        .args(args)
        .env(ENV, PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn export(url: &str) -> String {
    String::from_utf8(tool(&["export", "--db", url]).stdout).unwrap()
}

fn fleet_json(url: &str) -> serde_json::Value {
    serde_json::from_slice(&tool(&["fleet", "--json", "--db", url]).stdout).unwrap()
}

/// A failing run: its exit code and its stderr. One still running after
/// 60 s (a `collect` that should have refused to start) is killed, and fails
/// the test.
fn refused(args: &[&str], env: Option<&str>) -> (Option<i32>, String) {
    let mut command = Command::new(BIN);
    command.args(args).env_remove(ENV);
    if let Some(password) = env {
        command.env(ENV, password);
    }
    let (code, stdout, stderr) = support::collector_process::ended_within(
        &mut command,
        Duration::from_secs(60),
        &format!("{args:?} still runs after 60 s"),
    );
    assert_eq!(stdout, "");
    (code, stderr)
}

/// `GET /metrics` on the page's address: its text.
fn get_metrics(port: u16) -> String {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (status, body) = support::collector_process::read_response(&mut stream).unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn report(n: usize) -> String {
    support::fake_report::fake_report(n, 1_795_000_000 + n as u64, &[])
}

#[test]
fn reports_are_stored_in_mariadb_and_read_back_by_fleet_export_and_metrics() {
    let db = MariaDb::start();
    let url = db.database("fleet");
    let server = collector(&db, &url, &[]);
    let (a1, b, a2) = (report(1), report(2), report(1).replace("1795", "1796"));
    for body in [&a1, &b, &a2] {
        assert_eq!(server.post(body.as_bytes()), (200, "stored\n".to_string()));
    }
    // Not a report: refused and not stored.
    assert_eq!(server.post(b"{}").0, 400);

    assert_eq!(export(&url), format!("{a1}\n{b}\n{a2}\n"));
    let fleet = fleet_json(&url);
    assert_eq!(fleet["reports"], 3);
    assert_eq!(fleet["track_ids"], 2);
    assert_eq!(
        db.sql("SELECT version FROM fleet.schema_version"),
        "1\n",
        "the schema's version"
    );
    let metrics = get_metrics(server.ui_port);
    for line in [
        "tispark_telemetry_collector_reports_stored_total 3",
        "tispark_telemetry_collector_database_reports 3",
        "tispark_telemetry_collector_database_track_ids 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}: {metrics}");
    }
    server.stop();
    // A second start on the same schema: nothing created twice, nothing lost.
    let again = collector(&db, &url, &[]);
    assert_eq!(again.post(b.as_bytes()).0, 200);
    again.stop();
    assert_eq!(export(&url), format!("{a1}\n{b}\n{a2}\n{b}\n"));
}

#[test]
fn the_password_is_never_on_the_command_line_and_a_wrong_one_is_refused() {
    let db = MariaDb::start();
    let url = db.database("secrets");
    // An empty database is not a collector's until `collect` made it so.
    let (code, stderr) = refused(&["export", "--db", &url], Some(PASSWORD));
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "tispark-telemetry: error: the database {url} cannot be used (it has no table \
             schema_version: it is not a collector's database; `collect` makes one)\n"
        )
    );
    collector(&db, &url, &[]).stop();
    let port = db.port;
    let in_user_info = format!("mysql://tt:{}@127.0.0.1:{port}/secrets", "s3cret");
    let in_query = format!("mysql://tt@127.0.0.1:{port}/secrets?password={}", "s3cret");
    for (command, with_password) in [
        ("collect", &in_user_info),
        ("fleet", &in_user_info),
        ("export", &in_user_info),
        ("export", &in_query),
    ] {
        let mut args = vec![command, "--db", with_password];
        if command == "collect" {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        let (code, stderr) = refused(&args, None);
        assert_eq!(code, Some(1));
        assert_eq!(
            stderr,
            "tispark-telemetry: error: --db must not hold the password (it would be on the \
             command line, in the process list and in shell history): give it with \
             --db-password-file PATH or the environment variable TISPARK_TELEMETRY_DB_PASSWORD\n"
        );
    }
    // No password, a wrong one: the server's refusal, the URL without a password.
    for env in [None, Some("wrong")] {
        let (code, stderr) = refused(&["export", "--db", &url], env);
        assert_eq!(code, Some(1));
        let prefix = format!("tispark-telemetry: error: the database {url} cannot be used (");
        assert!(
            stderr.starts_with(&prefix) && stderr.contains("Access denied for user 'tt'"),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    // A password file that other users may read is refused.
    let dir = support::temp_dir("password");
    let file = db.password_file(&dir);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o604)).unwrap();
    let (code, stderr) = refused(
        &[
            "export",
            "--db",
            &url,
            "--db-password-file",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "tispark-telemetry: error: the password file {f} cannot be used (other users may \
             read it (mode 0604): make it private with `chmod 600 {f}`)\n",
            f = file.display()
        )
    );
    // The right one, from the file (its newline cut): an empty export.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new(BIN)
        .args(["export", "--db", &url, "--db-password-file"])
        .arg(&file)
        .env_remove(ENV)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out);
    assert_eq!(out.stdout, b"");
}

#[test]
fn a_database_of_a_newer_schema_is_refused() {
    let db = MariaDb::start();
    let url = db.database("newer");
    collector(&db, &url, &[]).stop();
    db.sql("UPDATE newer.schema_version SET version = 2");
    let why = format!(
        "tispark-telemetry: error: the database {url} has schema version 2, which a newer \
         collector made; this one knows version 1: use a tispark-telemetry at least as new\n"
    );
    assert_eq!(
        refused(
            &["collect", "--listen", "127.0.0.1:0", "--db", &url],
            Some(PASSWORD)
        ),
        (Some(1), why.clone())
    );
    assert_eq!(
        refused(&["fleet", "--db", &url], Some(PASSWORD)),
        (Some(1), why)
    );
}

#[test]
fn retain_deletes_old_reports_from_mariadb() {
    let db = MariaDb::start();
    let url = db.database("retain");
    let server = collector(&db, &url, &[]);
    let (old, new) = (report(1), report(2));
    assert_eq!(server.post(old.as_bytes()).0, 200);
    server.stop();
    // Received 400 days ago.
    db.sql("UPDATE retain.reports SET received = UNIX_TIMESTAMP() - 400 * 86400");
    let server = collector(&db, &url, &["--retain", "365d"]);
    assert_eq!(server.post(new.as_bytes()).0, 200);
    server.stop();
    assert_eq!(export(&url), format!("{new}\n"));
}

/// 2,000 reports (each body unique) from 50 clients, spread over the
/// collectors' ports: per body, whether it was answered 200.
fn burst(
    ports: &[u16],
    reports: usize,
    clients: usize,
    after: Option<(usize, Box<dyn FnOnce() + Send>)>,
) -> (Vec<String>, BTreeMap<String, bool>) {
    let bodies: Vec<String> = (0..reports).map(report).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(Mutex::new(BTreeMap::new()));
    let ok = Arc::new(AtomicUsize::new(0));
    let after = Arc::new(Mutex::new(after));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            let (next, answered, ok, after, bodies) = (&next, &answered, &ok, &after, &bodies);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= reports || start.elapsed() > Duration::from_secs(300) {
                    return;
                }
                let port = ports[i % ports.len()];
                let stored = matches!(post(port, bodies[i].as_bytes()), Ok((200, _)));
                answered.lock().unwrap().insert(bodies[i].clone(), stored);
                if stored {
                    let n = ok.fetch_add(1, Ordering::SeqCst) + 1;
                    let mut after = after.lock().unwrap();
                    if after.as_ref().is_some_and(|(at, _)| n >= *at) {
                        (after.take().unwrap().1)();
                    }
                }
            });
        }
    });
    let answered = Arc::try_unwrap(answered).unwrap().into_inner().unwrap();
    assert_eq!(
        answered.len(),
        reports,
        "every report was sent within 300 s"
    );
    (bodies, answered)
}

/// Each body in the table, with how many times.
fn stored(db: &MariaDb, name: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in db.sql(&format!("SELECT body FROM {name}.reports")).lines() {
        *counts.entry(line.to_string()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn two_collectors_on_one_database_store_each_report_of_a_burst_exactly_once() {
    let db = MariaDb::start();
    let url = db.database("burst");
    let (a, b) = (collector(&db, &url, &[]), collector(&db, &url, &[]));
    let (bodies, answered) = burst(&[a.port, b.port], 2_000, 50, None);
    let ok = answered.values().filter(|&&stored| stored).count();
    assert_eq!(ok, 2_000, "every report answered 200");
    a.stop();
    b.stop();
    let stored = stored(&db, "burst");
    assert_eq!(stored.len(), 2_000);
    assert!(stored.values().all(|&n| n == 1), "a report stored twice");
    assert!(bodies.iter().all(|body| stored.contains_key(body)));
    // `export` reads them all back, byte for byte.
    let mut exported: Vec<String> = export(&url).lines().map(str::to_string).collect();
    exported.sort();
    let mut sent = bodies.clone();
    sent.sort();
    assert_eq!(exported, sent);
}

#[test]
fn a_collector_killed_mid_burst_loses_nothing_it_answered_200_for() {
    let db = MariaDb::start();
    let url = db.database("killed");
    let a = collector(&db, &url, &[]);
    let b = collector(&db, &url, &[]);
    let pid = b.child.id() as libc::pid_t;
    let (bodies, answered) = burst(
        &[a.port, b.port],
        2_000,
        50,
        Some((
            500,
            Box::new(move || assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0)),
        )),
    );
    a.stop();
    drop(b);
    let stored = stored(&db, "killed");
    let ok = answered.values().filter(|&&stored| stored).count();
    // The killed one's share after the kill was not answered 200.
    assert!((1_000..2_000).contains(&ok), "{ok} answered 200");
    for (body, &was_ok) in &answered {
        let n = stored.get(body).copied().unwrap_or(0);
        if was_ok {
            assert_eq!(n, 1, "a report answered 200 is stored exactly once");
        } else {
            assert!(n <= 1, "a report stored twice");
        }
    }
    assert!(stored.keys().all(|body| bodies.contains(body)));
}

#[test]
fn a_real_spark_applications_report_appears_in_fleet_json_read_from_mariadb() {
    let db = MariaDb::start();
    let url = db.database("spark");
    let server = collector(&db, &url, &[]);
    let state = support::temp_dir("spark-state");
    let confs: Vec<(&str, String)> = vec![
        ("spark.tispark.telemetry.enable", "true".into()),
        ("spark.tispark.telemetry.url", server.url()),
        (
            "spark.tispark.telemetry.state_dir",
            state.display().to_string(),
        ),
    ];
    let run = support::spark::spark_submit("local[2]", &confs, &[]);
    let logged = support::logged_reports(&run.log);
    assert_eq!(logged.len(), 1, "{}", run.log);
    assert_eq!(export(&url), format!("{}\n", logged[0]));
    let sent: serde_json::Value = serde_json::from_str(&logged[0]).unwrap();
    let fleet = fleet_json(&url);
    assert_eq!(fleet["reports"], 1);
    assert_eq!(fleet["track_ids"], 1);
    let host = &fleet["hosts"][0];
    assert_eq!(host["track_id"], sent["track_id"]);
    assert_eq!(
        host["spark_version"],
        support::spark::spark_home_version().as_str()
    );
    assert_eq!(host["os"], sent["hardware"]["os"]);
    server.stop();
}
