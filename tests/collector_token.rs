//! Only the fleet may write: `tispark-telemetry collect --token-file`, run as
//! built on loopback, stores a report only with the token as the password of
//! HTTP Basic credentials, which the library sends from the user info of
//! `spark.tispark.telemetry.url`; the token shows in no log line, audit
//! trail entry, `status`, `preview` or collector output.

mod support;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::collector_process::{collect_command, ended_within, Server, BIN, PATH};

const TOKEN: &str = "tt-0123456789abcdef.TOKEN_~";

fn token_file(dir: &Path, content: &str, mode: u32) -> PathBuf {
    let file = dir.join("token");
    std::fs::write(&file, content).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    file
}

/// The collector with `options`, its stderr kept for the test.
fn start(name: &str, options: &[&str]) -> Server {
    let db = support::temp_dir(name).join("reports.db");
    let mut command = collect_command(&db, options);
    command.stderr(Stdio::piped());
    Server::spawn(command, db)
}

/// What the collector wrote on stderr, once it is stopped.
fn stderr_after_stop(mut server: Server) -> String {
    let mut stderr = server.child.stderr.take().unwrap();
    let _ = server.child.kill();
    let _ = server.child.wait();
    let mut text = String::new();
    stderr.read_to_string(&mut text).unwrap();
    text
}

/// One POST with these extra header lines: the status and the answer.
fn post_with(port: u16, extra: &str, body: &str) -> (u16, String) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    support::collector_process::read_response(&mut stream).unwrap()
}

fn basic(credentials: &str) -> String {
    use base64::Engine as _;
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

fn tool(args: &[&str], home: &Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("HOME", home)
        .env_remove("TISPARK_TELEMETRY_STATE_DIR")
        .env_remove("XDG_STATE_HOME")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_report_without_the_token_is_401_and_not_stored_and_the_token_is_shown_nowhere() {
    let dir = support::temp_dir("token");
    let file = token_file(&dir, &format!("{TOKEN}\n"), 0o600);
    let server = start("token", &["--token-file", file.to_str().unwrap()]);
    let report = support::fake_report::fake_report(1, 1_795_000_000, &[]);

    // Without credentials, with the wrong password, with the token as the user name.
    let refused = "this collector stores only reports that carry its token: HTTP Basic \
                   credentials whose password is it (spark.tispark.telemetry.url = \
                   https://reporter:TOKEN@host/…)\n";
    for extra in [
        String::new(),
        basic("reporter:tt-0123456789abcdef.TOKEN_"),
        basic(&format!("{TOKEN}:x")),
        format!("Authorization: Bearer {TOKEN}\r\n"),
    ] {
        assert_eq!(
            post_with(server.port, &extra, &report),
            (401, refused.to_string()),
            "{extra}"
        );
    }
    assert_eq!(server.exported(), Vec::<String>::new());

    // The library, as a driver sends: the user info of the URL as Basic credentials.
    let state = dir.join("state");
    let url = format!("http://reporter:{TOKEN}@127.0.0.1:{}{PATH}", server.port);
    let (outcome, records) = support::logs::report_as_driver(&url, &state);
    assert_eq!(outcome.http_status, Some(200), "{outcome:?}");
    let stored = server.exported();
    assert_eq!(stored.len(), 1);
    let logged: Vec<&String> = records.iter().map(|(_, text)| text).collect();
    assert!(
        logged.contains(&&format!("Telemetry report: {}", stored[0])),
        "{logged:?}"
    );
    assert!(
        logged.contains(&&format!(
            "Telemetry sent to http://127.0.0.1:{}{PATH}: HTTP 200 in {} ms.",
            server.port,
            outcome.elapsed.as_millis()
        )),
        "{logged:?}"
    );
    let trail = std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
    let entries = tispark_telemetry::audit::read(&state).unwrap();
    assert_eq!(
        entries[0].destination,
        format!("http://127.0.0.1:{}{PATH}", server.port)
    );

    // The operator's tool, on a spark-defaults.conf naming that URL.
    let home = dir.join("home");
    let conf_dir = dir.join("conf");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let defaults = conf_dir.join("spark-defaults.conf");
    std::fs::write(
        &defaults,
        format!(
            "spark.tispark.telemetry.enable true\nspark.tispark.telemetry.url {url}\n\
             spark.tispark.telemetry.state_dir {}\n",
            state.display()
        ),
    )
    .unwrap();
    let conf_arg = defaults.to_str().unwrap();
    let status = tool(&["--conf", conf_arg, "status"], &home);
    assert!(
        status.contains(&format!("http://127.0.0.1:{}{PATH}", server.port)),
        "{status}"
    );
    let shown = [
        status,
        tool(&["--conf", conf_arg, "status", "--json"], &home),
        tool(&["--conf", conf_arg, "preview"], &home),
    ];
    let metrics = metrics(server.ui_port);
    assert!(
        metrics.contains(
            "tispark_telemetry_collector_reports_refused_total{reason=\"unauthorized\"} 4\n"
        ),
        "{metrics}"
    );
    let collector_said = stderr_after_stop(server);
    assert_eq!(
        collector_said, "",
        "with a token the collector warns of nothing"
    );
    for (place, text) in logged
        .iter()
        .map(|t| ("log", t.as_str()))
        .chain([("trail", trail.as_str()), ("collector", &collector_said)])
        .chain(shown.iter().map(|s| ("tool", s.as_str())))
        .chain(stored.iter().map(|s| ("stored", s.as_str())))
    {
        assert!(
            !text.contains(TOKEN),
            "the token shows in the {place}: {text}"
        );
        assert!(
            !text.contains("reporter"),
            "the user shows in the {place}: {text}"
        );
    }
}

fn metrics(port: u16) -> String {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    support::collector_process::read_response(&mut stream)
        .unwrap()
        .1
}

#[test]
fn without_a_token_file_the_collector_says_once_that_anyone_may_write() {
    let server = start("no-token", &[]);
    let port = server.port;
    let report = support::fake_report::fake_report(2, 1_795_000_000, &[]);
    assert_eq!(post_with(port, "", &report).0, 200);
    assert_eq!(server.exported(), [report]);
    assert_eq!(
        stderr_after_stop(server),
        format!(
            "tispark-telemetry: warning: no --token-file: anyone who can reach \
             http://127.0.0.1:{port}{PATH} may write reports\n"
        )
    );
}

/// `collect --token-file token`, expected to refuse to start: its exit code
/// and stderr (a collector that starts instead fails the test after 30 s).
fn refused_at_start(db: &Path, token: &Path) -> (Option<i32>, String) {
    let (code, _, stderr) = ended_within(
        &mut collect_command(db, &["--token-file", token.to_str().unwrap()]),
        std::time::Duration::from_secs(30),
        "collect started with a token file it should refuse",
    );
    (code, stderr)
}

#[test]
fn a_token_file_others_may_read_or_a_weak_token_is_refused_at_start() {
    let dir = support::temp_dir("token-refused");
    let cases = [
        (
            format!("{TOKEN}\n"),
            0o604,
            "is open to other users (mode 0604); make it private with `chmod 600`",
        ),
        (
            format!("{TOKEN}\n"),
            0o640,
            "is open to other users (mode 0640); make it private with `chmod 600`",
        ),
        (
            "short-token\n".to_string(),
            0o600,
            "must hold one token of at least 16 characters A-Z a-z 0-9 - . _ ~ (e.g. \
             `openssl rand -hex 32`), and nothing else",
        ),
        (
            format!("{TOKEN} and more\n"),
            0o600,
            "must hold one token of at least 16 characters",
        ),
    ];
    // Another user's file (nobody's), private to that user: not ours to trust.
    let theirs = dir.join("theirs");
    std::fs::write(&theirs, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let (code, stderr) = refused_at_start(&dir.join("reports.db"), &theirs);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("belongs to uid 65534, not to this user (uid 0) or root"),
        "{stderr}"
    );
    for (content, mode, says) in cases {
        let file = token_file(&dir, &content, mode);
        let db = dir.join("reports.db");
        let (code, stderr) = refused_at_start(&db, &file);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "tispark-telemetry: error: the token file \"{}\" ",
                file.display()
            )) && stderr.contains(says),
            "{stderr}"
        );
        assert!(!stderr.contains(TOKEN), "{stderr}");
        assert!(!db.exists(), "nothing is created when the token is refused");
    }
}
