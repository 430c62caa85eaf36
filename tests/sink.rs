//! The sinks and the PD lookup, in Rust, against real HTTP servers on loopback.

mod support;

use std::time::Duration;
use support::collector::{Behaviour, Collector};
use tispark_telemetry::sink::{self, Sink};

fn deliver(url: &str, body: &str) -> sink::Outcome {
    let sink = Sink::parse(url).unwrap();
    let client = sink::http_client(&sink, None).unwrap();
    sink::deliver(&client, &sink, body)
}

#[test]
fn an_http_sink_posts_the_body_as_json_once() {
    let c = Collector::start(Behaviour::Accept);
    let outcome = deliver(&c.url("/api/v1/tispark/report"), r#"{"k":"v"}"#);
    assert_eq!(outcome.http_status, Some(200));
    assert_eq!(outcome.delivery, sink::Delivery::Sent);
    let received = c.wait_for(1, Duration::from_secs(1));
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].body, r#"{"k":"v"}"#);
    assert_eq!(received[0].header("content-type"), Some("application/json"));
    assert!(received[0]
        .header("user-agent")
        .unwrap()
        .starts_with("tispark-telemetry/"));
}

#[test]
fn a_non_2xx_answer_is_a_failure_that_names_the_status() {
    let c = Collector::start(Behaviour::Status(503));
    let outcome = deliver(&c.url("/r"), "{}");
    assert_eq!(outcome.delivery, sink::Delivery::Failed);
    let why = outcome.error.clone().unwrap();
    assert!(why.contains("503"), "{why}");
    let line = outcome.describe(&Sink::parse(&c.url("/r")).unwrap());
    assert!(
        line.starts_with("Failed to report telemetry to http://127.0.0.1:"),
        "{line}"
    );
    assert!(
        !line.contains("Telemetry report"),
        "the grep idiom must find only the report: {line}"
    );
}

#[test]
fn credentials_in_the_url_are_sent_but_never_shown() {
    let c = Collector::start(Behaviour::Status(500));
    let url = format!("http://user:hunter2@{}/r?token=abc", c.addr);
    let outcome = deliver(&url, "{}");
    let line = outcome.describe(&Sink::parse(&url).unwrap());
    assert!(
        !line.contains("hunter2") && !line.contains("token=abc"),
        "{line}"
    );
    let received = c.wait_for(1, Duration::from_secs(1));
    assert!(received[0]
        .header("authorization")
        .is_some_and(|a| a.starts_with("Basic ")));
}

fn tidb_version(pd: &str) -> Result<String, String> {
    tispark_telemetry::tidb::tidb_version(pd, &Default::default())
}

#[test]
fn pd_status_gives_the_tidb_version() {
    let pd = Collector::start(Behaviour::Json(
        r#"{"build_ts":"2024-01-01 00:00:00","version":"v8.1.0","git_hash":"abc","start_timestamp":1}"#,
    ));
    assert_eq!(tidb_version(&pd.addr.to_string()), Ok("v8.1.0".to_string()));
    assert_eq!(
        tidb_version(&format!("http://{}/", pd.addr)),
        Ok("v8.1.0".to_string())
    );
    let asked = pd.received();
    assert_eq!(asked[0].path, "/pd/api/v1/status");
}

#[test]
fn a_pd_without_a_version_or_with_garbage_is_an_error() {
    let pd = Collector::start(Behaviour::Json(r#"{"build_ts":"x"}"#));
    assert!(tidb_version(&pd.addr.to_string())
        .unwrap_err()
        .contains("no version"));
    let pd = Collector::start(Behaviour::Json(r#"{"version":"  "}"#));
    assert_eq!(
        tidb_version(&pd.addr.to_string()),
        Err("PD's status has no version".to_string())
    );
    let pd = Collector::start(Behaviour::Accept);
    assert!(tidb_version(&pd.addr.to_string())
        .unwrap_err()
        .contains("not JSON"));
    let pd = Collector::start(Behaviour::HugeBody(1 << 20));
    assert!(tidb_version(&pd.addr.to_string())
        .unwrap_err()
        .contains("larger than"));
}

#[test]
fn a_307_within_the_origin_repeats_the_post_with_its_body_and_names_where_it_went() {
    let c = Collector::start(Behaviour::MovedWithin("/moved"));
    let outcome = deliver(&c.url("/r"), r#"{"k":1}"#);
    assert_eq!(outcome.http_status, Some(200), "{outcome:?}");
    assert_eq!(
        outcome.redirected_to.as_deref(),
        Some(c.url("/moved").as_str())
    );
    let asked: Vec<(String, String, String)> = c
        .received()
        .into_iter()
        .map(|r| (r.method, r.path, r.body))
        .collect();
    let post = |path: &str| {
        (
            "POST".to_string(),
            path.to_string(),
            r#"{"k":1}"#.to_string(),
        )
    };
    assert_eq!(asked, [post("/r"), post("/moved")]);
    assert!(c.received().iter().all(|r| r.header("referer").is_none()));
}

#[test]
fn a_redirect_loop_ends_after_three_redirects_with_a_get() {
    let c = Collector::start(Behaviour::RedirectLoop);
    let outcome = deliver(&c.url("/r"), "{}");
    assert_eq!(outcome.delivery, sink::Delivery::Failed);
    assert_eq!(outcome.error.as_deref(), Some("more than 3 redirects"));
    // 302 goes on with a GET without body, as HTTP clients do.
    let methods: Vec<String> = c.received().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["POST", "GET", "GET", "GET"]);
}

#[test]
fn a_redirect_to_another_origin_is_refused_before_anything_goes_there() {
    let elsewhere = Collector::start(Behaviour::Accept);
    let target: &'static str = Box::leak(elsewhere.url("/r?key=SECRET").into_boxed_str());
    let c = Collector::start(Behaviour::RedirectTo(target));
    let outcome = deliver(&c.url("/r"), "{}");
    assert_eq!(outcome.delivery, sink::Delivery::Failed);
    assert_eq!(
        outcome.error.as_deref(),
        Some(
            format!(
                "the endpoint redirected to another origin ({}), where the report is not sent",
                elsewhere.url("/r")
            )
            .as_str()
        )
    );
    assert_eq!(outcome.redirected_to, None);
    assert_eq!(elsewhere.connections(), 0);
}

#[test]
fn a_refused_connection_says_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let outcome = deliver(&format!("http://127.0.0.1:{port}/r"), "{}");
    assert_eq!(outcome.delivery, sink::Delivery::Failed);
    let why = outcome.error.unwrap();
    assert!(
        why.starts_with("connection error: Connection refused"),
        "{why}"
    );
}

#[test]
fn an_https_endpoint_is_trusted_through_the_platforms_store() {
    let pki = support::tls::test_pki();
    let c = Collector::start_tls(Behaviour::Accept, pki.server);
    let bundle = support::temp_dir("platform-store").join("ca.pem");
    std::fs::write(&bundle, &pki.ca_pem).unwrap();
    let url = format!("https://127.0.0.1:{}/r", c.addr.port());
    // Not trusted before: the test's CA is in no store.
    assert_eq!(deliver(&url, "{}").delivery, sink::Delivery::Failed);
    // SSL_CERT_FILE names the platform's store, as for OpenSSL: for this
    // process (nextest runs each test in a process of its own).
    std::env::set_var("SSL_CERT_FILE", &bundle);
    let outcome = deliver(&url, "{}");
    assert_eq!(outcome.http_status, Some(200), "{outcome:?}");
}

fn mkfifo(path: &std::path::Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "this test needs mkfifo (coreutils)"
    );
}

/// A FIFO at `path` with a writer waiting to open it: the writer's open
/// returns only once something opens the FIFO for reading.
struct WaitingWriter {
    path: std::path::PathBuf,
    opened: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WaitingWriter {
    fn new(path: &std::path::Path) -> WaitingWriter {
        mkfifo(path);
        let opened = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, o) = (path.to_path_buf(), opened.clone());
        let thread = std::thread::spawn(move || {
            let _w = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            o.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(50));
        WaitingWriter {
            path: path.to_path_buf(),
            opened,
            thread: Some(thread),
        }
    }

    /// Whether anything opened the FIFO for reading yet.
    fn was_opened(&self) -> bool {
        std::thread::sleep(Duration::from_millis(100));
        self.opened.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for WaitingWriter {
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        // Opened for reading here, so that the writer's open returns.
        let _r = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `deliver`, failing the test if it takes longer than 20 s (a read that
/// blocks would otherwise hang the test).
fn deliver_within_20s(url: &str) -> sink::Outcome {
    let (tx, rx) = std::sync::mpsc::channel();
    let url = url.to_string();
    std::thread::spawn(move || tx.send(deliver(&url, "{}")).unwrap());
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the delivery hung on the trust store")
}

/// The platform's trust store is read as every file is: a FIFO (which would
/// block a plain read forever) is never even opened, a file over 4 MiB is
/// left out, and in a certificate directory a link to a regular file is
/// followed, a FIFO never opened, a directory skipped.
#[test]
fn the_platforms_store_is_read_bounded_and_from_regular_files_only() {
    let pki = support::tls::test_pki();
    let c = Collector::start_tls(Behaviour::Accept, pki.server);
    let url = format!("https://127.0.0.1:{}/r", c.addr.port());
    let dir = support::temp_dir("store-bounded");

    let fifo = dir.join("fifo.pem");
    let writer = WaitingWriter::new(&fifo);
    std::env::set_var("SSL_CERT_FILE", &fifo);
    let outcome = deliver_within_20s(&url);
    assert!(!writer.was_opened(), "the FIFO was opened");
    drop(writer);
    assert_eq!(outcome.delivery, sink::Delivery::Failed, "{outcome:?}");
    assert!(
        outcome
            .error
            .as_deref()
            .unwrap_or("")
            .contains("certificate"),
        "{outcome:?}"
    );

    // The CA first, then padding past 4 MiB: trusted only if read whole.
    let padded = dir.join("padded.pem");
    let mut text = pki.ca_pem.clone();
    while text.len() <= 4 << 20 {
        text.push_str(&"# padding\n".repeat(4096));
    }
    std::fs::write(&padded, &text).unwrap();
    std::env::set_var("SSL_CERT_FILE", &padded);
    assert_eq!(deliver_within_20s(&url).delivery, sink::Delivery::Failed);
    // The same CA in a file of 4 MiB is read.
    let exact = dir.join("exact.pem");
    let mut text = pki.ca_pem.clone();
    let pad = (4 << 20) - text.len();
    text.push_str(&"#".repeat(pad - 1));
    text.push('\n');
    assert_eq!(text.len(), 4 << 20);
    std::fs::write(&exact, &text).unwrap();
    std::env::set_var("SSL_CERT_FILE", &exact);
    assert_eq!(deliver_within_20s(&url).http_status, Some(200));

    // A certificate directory as `openssl rehash` makes it: links; in a
    // `:`-separated list whose empty entries are ignored.
    let certs = dir.join("certs");
    std::fs::create_dir(&certs).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let writer = WaitingWriter::new(&certs.join("0000aaaa.0"));
    std::os::unix::fs::symlink(&ca, certs.join("1111bbbb.0")).unwrap();
    std::fs::create_dir(certs.join("2222cccc.0")).unwrap();
    std::env::remove_var("SSL_CERT_FILE");
    std::env::set_var("SSL_CERT_DIR", format!(":{}", certs.display()));
    assert_eq!(deliver_within_20s(&url).http_status, Some(200));
    assert!(!writer.was_opened(), "the FIFO in the directory was opened");
}

/// Every certificate of the store is trusted, however many: two endpoints of
/// two CAs, both in one bundle with a malformed block between them (also
/// named twice in a directory).
#[test]
fn every_certificate_of_the_platforms_store_is_trusted() {
    let (one, two) = (support::tls::test_pki(), support::tls::test_pki());
    let dir = support::temp_dir("store-two");
    let bundle = dir.join("bundle.pem");
    let malformed = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    std::fs::write(&bundle, format!("{}{malformed}{}", one.ca_pem, two.ca_pem)).unwrap();
    let c1 = Collector::start_tls(Behaviour::Accept, one.server);
    let c2 = Collector::start_tls(Behaviour::Accept, two.server);
    let certs = dir.join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::os::unix::fs::symlink(&bundle, certs.join("aaaa0000.0")).unwrap();
    std::os::unix::fs::symlink(&bundle, certs.join("bundle.pem")).unwrap();
    std::env::set_var("SSL_CERT_FILE", &bundle);
    std::env::set_var("SSL_CERT_DIR", &certs);
    for c in [&c1, &c2] {
        let url = format!("https://127.0.0.1:{}/r", c.addr.port());
        assert_eq!(deliver_within_20s(&url).http_status, Some(200), "{url}");
    }
}

#[test]
fn a_pd_named_by_https_without_tls_settings_is_trusted_through_the_platforms_store() {
    let pki = support::tls::test_pki();
    let pd = Collector::start_tls(Behaviour::Json(r#"{"version":"v8.1.0"}"#), pki.server);
    let bundle = support::temp_dir("pd-platform-store").join("ca.pem");
    std::fs::write(&bundle, &pki.ca_pem).unwrap();
    let address = format!("https://127.0.0.1:{}", pd.addr.port());
    assert!(
        tidb_version(&address).is_err(),
        "the test's CA is in no store yet"
    );
    std::env::set_var("SSL_CERT_FILE", &bundle);
    assert_eq!(tidb_version(&address), Ok("v8.1.0".to_string()));
}

#[test]
fn pds_status_may_be_64_kib_and_no_more() {
    let status = |len: usize| -> &'static str {
        let head = r#"{"version":"v8.1.0","pad":""#;
        let pad = "x".repeat(len - head.len() - 2);
        Box::leak(format!("{head}{pad}\"}}").into_boxed_str())
    };
    let pd = Collector::start(Behaviour::Json(status(64 * 1024)));
    assert_eq!(tidb_version(&pd.addr.to_string()), Ok("v8.1.0".to_string()));
    let pd = Collector::start(Behaviour::Json(status(64 * 1024 + 1)));
    assert_eq!(
        tidb_version(&pd.addr.to_string()),
        Err("PD's status is larger than 65536 bytes".to_string())
    );
}
