//! The collector's fleet page and `/metrics` (`collect --ui`), run as built
//! on loopback: the page as Debian's Chromium renders it (headless, reaching
//! nothing but loopback) says what `fleet --json` says, shows what clients
//! sent escaped, and fetches nothing; `/metrics` counts what was stored and
//! refused, and what the database holds.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::collector_process::{connect_from, head, post_from, read_response, Server, BIN, PATH};
use tispark_telemetry::sink::CONNECT_TIMEOUT;

/// Host `n`'s report with these instance, hardware and settings values.
fn report(n: usize, spark: &str, os: &str, cores: u64, engines: &str, streaming: bool) -> String {
    let streaming = streaming.to_string();
    let body = support::fake_report::fake_report(
        n,
        1_795_000_000 + n as u64,
        &[
            ("spark.tispark.isolation_read_engines", engines),
            ("spark.tispark.coprocess.streaming", &streaming),
        ],
    );
    let mut v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["instance"]["spark_version"] = spark.into();
    v["hardware"]["os"] = os.into();
    v["hardware"]["cpu"]["logicalCores"] = cores.into();
    // As the library writes it: C1 and bidi controls as JSON escapes.
    tispark_telemetry::log_line::json(&v).unwrap()
}

/// A value a client sent that must reach the page as text, never as markup
/// or a raw control: markup, quotes, a right-to-left override, an 8-bit CSI.
const HOSTILE_OS: &str = "<script>alert(1)</script>\"'&\u{202e}x\u{9b}y";

/// Six hosts, seven reports: host 1 reports twice, first as Spark 3.4.0.
fn post_the_fleet(server: &Server) {
    let bodies = [
        report(1, "3.4.0", "Debian GNU/Linux", 8, "tikv", false),
        report(2, "3.5.1", "Debian GNU/Linux", 8, "tikv", false),
        report(3, "3.5.1", "Ubuntu", 16, "tikv,tiflash", true),
        report(4, "3.3.2", "Ubuntu", 4, "tiflash", false),
        report(5, "3.5.1", HOSTILE_OS, 16, "tikv", false),
        report(6, "3.4.0", "Debian GNU/Linux", 8, "tikv", true),
        report(1, "3.5.1", "Debian GNU/Linux", 8, "tikv", false),
    ];
    for body in &bodies {
        let (status, text) = server.post(body.as_bytes());
        assert_eq!((status, text.as_str()), (200, "stored\n"));
    }
}

/// One request on a fresh connection: the status, the head and the body.
fn request(port: u16, raw: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn get(port: u16, path: &str) -> (u16, String, String) {
    request(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

fn fleet_json(db: &Path, since: &str) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["fleet", "--json", "--since", since, "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out);
    serde_json::from_slice(&out.stdout).unwrap()
}

// ---- a bounded run of Debian's Chromium ----

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs `command`, killed if it is not done within `limit`.
fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{CHROMIUM} cannot run ({e}): `apt-get install chromium` (scripts/prerequisites.sh --nextest does)"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).unwrap();
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        stderr.read_to_end(&mut v).unwrap();
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("chromium did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Headless Chromium on `url` with these extra options, in a fresh profile,
/// its own traffic off and every host name but 127.0.0.1 unresolvable (the page is named
/// by its loopback address): it can reach nothing but loopback.
fn chromium(url: &str, options: &[String]) -> Output {
    let profile = support::temp_dir("chromium-profile");
    let mut command = Command::new(CHROMIUM);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(options)
        .arg(url)
        .env("HOME", &profile);
    let out = run_bounded(command, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ---- reading the rendered DOM ----

/// The element start tags of `dom` that have attribute `name`, each as its
/// attributes (values unescaped).
fn tags_with(dom: &str, name: &str) -> Vec<BTreeMap<String, String>> {
    let mut found = Vec::new();
    let mut rest = dom;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let end = rest.find('>').unwrap();
        let tag = attributes(&rest[..end]);
        if tag.contains_key(name) {
            found.push(tag);
        }
    }
    found
}

/// The attributes of a start tag's text (`tr data-count="2" …`).
fn attributes(tag: &str) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    let mut rest = tag.split_once(' ').map_or("", |(_, r)| r);
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim().to_string();
        let value_end = rest[eq + 2..].find('"').unwrap();
        let value = &rest[eq + 2..eq + 2 + value_end];
        attrs.insert(name, unescape(value));
        rest = &rest[eq + 2 + value_end + 1..];
    }
    attrs
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The `(value, count)` rows of the split `field` in the rendered DOM.
fn split_in_dom(dom: &str, field: &str) -> Vec<(String, u64)> {
    let start = dom
        .find(&format!("data-split=\"{field}\""))
        .unwrap_or_else(|| panic!("no split {field}"));
    let section = &dom[start..start + dom[start..].find("</section>").unwrap()];
    tags_with(section, "data-count")
        .into_iter()
        .map(|t| (t["data-value"].clone(), t["data-count"].parse().unwrap()))
        .collect()
}

/// A count's value as the page shows it: a string as it is (printable test
/// values; the hostile one is checked on its own), anything else as JSON.
fn shown(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

const SPLITS: [&str; 7] = [
    "spark_version",
    "tispark_version",
    "tidb_version",
    "read_engine",
    "streaming",
    "os",
    "cpu_cores",
];

/// Chromium renders the page from the running collector; the numbers in the
/// DOM are `fleet --json`'s (totals, each day, every split, in its order),
/// what a client sent is text (no element of its markup, no raw control),
/// nothing outside the page is fetched, and the screenshot is a 1280×2000
/// PNG with something drawn in it.
#[test]
fn chromium_shows_the_fleet_as_fleet_json_counts_it() {
    let server = Server::start("page");
    post_the_fleet(&server);
    let url = format!("http://127.0.0.1:{}/", server.ui_port);

    // What the collector serves: one document, its policy forbidding any load.
    let (status, head, html) = get(server.ui_port, "/");
    assert_eq!(status, 200);
    assert!(
        head.contains("\r\ncontent-type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains(
            "\r\ncontent-security-policy: default-src 'none'; style-src 'unsafe-inline';"
        ),
        "{head}"
    );
    for fetches in [
        "src=", "href=", "url(", "<script", "<link", "@import", "<img", "<iframe",
    ] {
        assert!(!html.contains(fetches), "{fetches} in the page");
    }
    assert!(!html.contains('\u{202e}') && !html.contains('\u{9b}'));
    // The only `http` in it is SVG's namespace, which is a name, not a load.
    assert_eq!(
        html.matches("http").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );

    let fleet = fleet_json(&server.db, "30d");
    let out = chromium(&url, &["--dump-dom".to_string()]);
    let dom = String::from_utf8(out.stdout).unwrap();
    assert!(dom.contains("<h1>TiSpark fleet</h1>"), "{dom}");

    let totals: BTreeMap<String, u64> = tags_with(&dom, "data-total")
        .into_iter()
        .map(|t| t["data-total"].clone())
        .zip(dom.match_indices("data-total=").map(|(at, _)| {
            let text = &dom[at + dom[at..].find('>').unwrap() + 1..];
            text[..text.find('<').unwrap()].parse().unwrap()
        }))
        .collect();
    assert_eq!(totals["reports"], 7);
    assert_eq!(totals["track_ids"], 6);
    assert_eq!(fleet["reports"], totals["reports"]);
    assert_eq!(fleet["track_ids"], totals["track_ids"]);

    // Every day of the window is drawn; those with reports are fleet's days.
    let days = tags_with(&dom, "data-day");
    assert_eq!(
        days.len(),
        31,
        "the window's 30 days and today, or 31 and today"
    );
    let counted: Vec<serde_json::Value> = days
        .iter()
        .filter(|d| d["data-reports"] != "0")
        .map(|d| {
            serde_json::json!({
                "day": d["data-day"],
                "reports": d["data-reports"].parse::<u64>().unwrap(),
                "track_ids": d["data-track-ids"].parse::<u64>().unwrap(),
            })
        })
        .collect();
    let fleet_days: Vec<serde_json::Value> = fleet["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_json::json!({"day": d["day"], "reports": d["reports"], "track_ids": d["track_ids"]}))
        .collect();
    assert_eq!(counted, fleet_days);
    let today = &tispark_telemetry::log_line::utc(tispark_telemetry::report::unix_now())[..10];
    assert_eq!(
        counted,
        [serde_json::json!({"day": today, "reports": 7, "track_ids": 6})]
    );

    for field in SPLITS {
        let in_dom = split_in_dom(&dom, field);
        let in_fleet: Vec<(String, u64)> = fleet[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (shown(&c["value"]), c["count"].as_u64().unwrap()))
            .map(|(v, c)| {
                // The hostile OS name, as every value shown to a person.
                let v = if v == HOSTILE_OS {
                    tispark_telemetry::log_line::shown(&v)
                } else {
                    v
                };
                (v, c)
            })
            .collect();
        assert_eq!(in_dom, in_fleet, "{field}");
    }
    let pairs = |p: &[(&str, u64)]| -> Vec<(String, u64)> {
        p.iter().map(|(v, c)| (v.to_string(), *c)).collect()
    };
    assert_eq!(
        split_in_dom(&dom, "spark_version"),
        pairs(&[("3.5.1", 4), ("3.3.2", 1), ("3.4.0", 1)])
    );
    assert_eq!(
        split_in_dom(&dom, "cpu_cores"),
        pairs(&[("8", 3), ("16", 2), ("4", 1)])
    );
    assert_eq!(
        split_in_dom(&dom, "os"),
        pairs(&[
            ("Debian GNU/Linux", 3),
            ("Ubuntu", 2),
            ("<script>alert(1)</script>\"'&\\u{202e}x\\u{9b}y", 1)
        ])
    );
    assert_eq!(
        split_in_dom(&dom, "streaming"),
        pairs(&[("false", 4), ("true", 2)])
    );

    // The client's markup is text: no script element, the controls escaped.
    assert!(!dom.contains("<script"), "{dom}");
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    assert!(!dom.contains('\u{202e}') && !dom.contains('\u{9b}'));

    // The screenshot: a PNG of the window's size, not a blank one.
    let shot = support::temp_dir("page-shot").join("fleet.png");
    chromium(
        &url,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".to_string(),
            "--hide-scrollbars".to_string(),
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 2000));
    assert!(png.len() > 30_000, "{} bytes: nearly blank", png.len());
    server.stop();
}

/// The page's address serves `GET /` and `GET /metrics` and nothing else,
/// never a report; the intake's address never serves the page.
#[test]
fn the_page_address_serves_the_page_and_metrics_only() {
    let server = Server::start("page-only");
    for path in ["/index.html", PATH, "/metrics/", "/favicon.ico"] {
        let (status, _, _) = get(server.ui_port, path);
        assert_eq!(status, 404, "{path}");
    }
    let body = report(1, "3.5.1", "Debian GNU/Linux", 8, "tikv", false);
    let (status, _, _) = request(server.ui_port, &format!("{}{body}", head(body.len())));
    assert_eq!(status, 404);
    let post_page = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(request(server.ui_port, &post_page).0, 405);
    let (status, _, _) = get(server.port, "/");
    assert_eq!(status, 404);
    let (status, _, _) = get(server.port, "/metrics");
    assert_eq!(status, 404);
    assert_eq!(server.exported(), Vec::<String>::new());
    server.stop();
}

// ---- /metrics ----

/// `/metrics` parsed as Prometheus' text format: each sample's name with
/// its labels, and its value.
fn metrics(port: u16) -> BTreeMap<String, u64> {
    let (status, head, text) = get(port, "/metrics");
    assert_eq!(status, 200);
    assert!(
        head.contains("\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    let mut samples = BTreeMap::new();
    let mut described = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            described.push(name.to_string());
        } else if line.starts_with("# HELP ") {
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let name = series.split('{').next().unwrap();
            assert!(described.iter().any(|d| d == name), "{line}: no TYPE");
            assert!(
                samples
                    .insert(series.to_string(), value.parse().unwrap())
                    .is_none(),
                "{line} twice"
            );
        }
    }
    samples
}

fn files_size(db: &Path) -> u64 {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(PathBuf::from(name)).map_or(0, |m| m.len())
        })
        .sum()
}

/// Known good and bad requests; `/metrics` then says exactly how many were
/// stored and refused by each reason, how many reports and track ids the
/// database holds, and its size on disk.
#[test]
fn metrics_count_what_was_stored_and_refused_and_what_the_database_holds() {
    let server = Server::start("metrics");
    post_the_fleet(&server);
    let good = report(9, "3.5.1", "Debian GNU/Linux", 8, "tikv", false);
    let refused: [(&str, u16, String); 6] = [
        (
            "not_found",
            404,
            format!("{}{good}", head(good.len()).replace(PATH, "/elsewhere")),
        ),
        (
            "method",
            405,
            format!("{}{good}", head(good.len()).replace("POST", "PUT")),
        ),
        ("invalid", 400, format!("{}{{}}", head(2))),
        ("invalid", 400, format!("{}not json", head(8))),
        (
            "too_large",
            413,
            head(tispark_telemetry::collector::intake::MAX_BODY + 1),
        ),
        (
            "method",
            405,
            format!("GET {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        ),
    ];
    for (reason, status, raw) in &refused {
        let mut stream = server.connect();
        stream.write_all(raw.as_bytes()).unwrap();
        let (got, text) = read_response(&mut stream).unwrap();
        assert_eq!(got, *status, "{reason}: {text}");
    }
    // A body cut short: announced whole, half sent, then the write side closed.
    let mut stream = server.connect();
    stream
        .write_all(format!("{}{}", head(good.len()), &good[..good.len() / 2]).as_bytes())
        .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_response(&mut stream).unwrap().0, 400);

    let m = metrics(server.ui_port);
    let refused_by = |reason: &str| {
        m[&format!("tispark_telemetry_collector_reports_refused_total{{reason=\"{reason}\"}}")]
    };
    assert_eq!(m["tispark_telemetry_collector_reports_stored_total"], 7);
    assert_eq!(refused_by("not_found"), 1);
    assert_eq!(refused_by("method"), 2);
    assert_eq!(refused_by("invalid"), 2);
    assert_eq!(refused_by("too_large"), 1);
    assert_eq!(refused_by("incomplete"), 1);
    for reason in ["unauthorized", "busy", "full", "failed"] {
        assert_eq!(refused_by(reason), 0, "{reason}");
    }
    assert_eq!(m["tispark_telemetry_collector_database_reports"], 7);
    assert_eq!(m["tispark_telemetry_collector_database_track_ids"], 6);
    assert_eq!(
        m["tispark_telemetry_collector_database_bytes"],
        files_size(&server.db)
    );
    assert!(files_size(&server.db) > 0);
    assert_eq!(m.len(), 13);

    // Stopped and started again on the same database: the counters start
    // over, what the database holds does not.
    let db = server.db.clone();
    server.stop();
    let again = Server::start_on(db.clone());
    let m = metrics(again.ui_port);
    assert_eq!(m["tispark_telemetry_collector_reports_stored_total"], 0);
    assert_eq!(m["tispark_telemetry_collector_database_reports"], 7);
    assert_eq!(m["tispark_telemetry_collector_database_track_ids"], 6);
    assert_eq!(
        m["tispark_telemetry_collector_database_bytes"],
        files_size(&db)
    );
    again.stop();
}

// ---- the page's address under stalling clients ----

/// The page's address has the intake's bounds, counted apart: 300 requests
/// stalled on it from one address (a head begun, never ended) neither keep
/// a driver's report (from another address) from being stored within the
/// library's deadlines, nor the metrics asked from a third address from
/// being answered; and each stalled one is closed, unanswered, within 5 s
/// of its connection (the test allows 3 s more).
#[test]
fn stalled_clients_of_the_page_hold_neither_the_intake_nor_the_page() {
    let server = Server::start("page-stalled");
    let first = Instant::now();
    let stalled: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = connect_from(Ipv4Addr::LOCALHOST, server.ui_port, CONNECT_TIMEOUT).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            s
        })
        .collect();
    let body = report(1, "3.5.1", "Debian GNU/Linux", 8, "tikv", false);
    let (status, text) =
        post_from(Ipv4Addr::new(127, 0, 0, 2), server.port, body.as_bytes()).unwrap();
    assert_eq!((status, text.as_str()), (200, "stored\n"));
    let mut asking =
        connect_from(Ipv4Addr::new(127, 0, 0, 3), server.ui_port, CONNECT_TIMEOUT).unwrap();
    asking
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    asking
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (status, text) = read_response(&mut asking).unwrap();
    assert_eq!(status, 200);
    assert!(
        text.contains("\ntispark_telemetry_collector_reports_stored_total 1\n"),
        "{text}"
    );
    let deadline = first + Duration::from_secs(5 + 3);
    for (n, mut s) in stalled.into_iter().enumerate() {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        s.set_read_timeout(Some(left)).unwrap();
        let mut byte = [0u8; 1];
        match s.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => panic!("stalled request {n} was answered"),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("stalled request {n} still open after {:?}", first.elapsed())
            }
            Err(_) => {} // reset: closed
        }
    }
    server.stop();
}
