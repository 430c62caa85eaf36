//! A hostile network: each fault against a real local server or socket, in a
//! real JVM. In every case the driver's call returns at once, the send ends
//! within its deadline, one WARN says what failed, nothing is retried, and no
//! telemetry thread is left behind.

mod support;

use std::time::Duration;
use support::collector::{Behaviour, Collector};
use support::jvm::report_in_jvm;

const REPORT_PATH: &str = "/api/v1/tispark/report";

fn conf(url: String) -> Vec<(&'static str, String)> {
    vec![
        ("spark.tispark.telemetry.enable", "true".into()),
        ("spark.tispark.telemetry.url", url),
        (
            "spark.tispark.telemetry.state_dir",
            support::temp_dir("faults-state").display().to_string(),
        ),
    ]
}

#[test]
fn connection_refused_is_one_warning() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}{REPORT_PATH}");
    let Some(run) = report_in_jvm(&conf(url), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    let w = run.one_warning("Failed to report telemetry");
    assert!(w.to_lowercase().contains("refused"), "{w}");
}

#[test]
fn an_endpoint_that_never_answers_is_cut_off_at_the_total_deadline() {
    let c = Collector::start(Behaviour::Silent);
    let Some(run) = report_in_jvm(&conf(c.url(REPORT_PATH)), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("timed out");
    let send_ms = run.number("SEND_MS");
    assert!(
        (4_500..8_000).contains(&send_ms),
        "the 5 s deadline should end the send: {send_ms} ms"
    );
    assert_eq!(c.received().len(), 1, "no retry");
}

#[test]
fn http_500_is_one_warning_and_no_retry() {
    let c = Collector::start(Behaviour::Status(500));
    let Some(run) = report_in_jvm(&conf(c.url(REPORT_PATH)), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("HTTP 500");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.received().len(), 1, "no retry");
}

#[test]
fn a_redirect_loop_stops_after_a_few_hops() {
    let c = Collector::start(Behaviour::RedirectLoop);
    let Some(run) = report_in_jvm(&conf(c.url(REPORT_PATH)), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("redirect");
    let hops = c.received().len();
    assert!(
        hops <= 1 + tispark_telemetry::sink::MAX_REDIRECTS,
        "{hops} requests"
    );
}

#[test]
fn a_response_body_of_many_megabytes_is_not_read() {
    let c = Collector::start(Behaviour::HugeBody(256 << 20));
    let Some(run) = report_in_jvm(&conf(c.url(REPORT_PATH)), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    assert!(
        run.warnings().is_empty(),
        "a 200 is a success:\n{}",
        run.output
    );
    assert_eq!(c.received().len(), 1);
}

#[test]
fn an_untrusted_tls_certificate_is_one_warning() {
    let pki = support::tls::test_pki();
    let c = Collector::start_tls(Behaviour::Accept, pki.server);
    let url = format!("https://127.0.0.1:{}{REPORT_PATH}", c.addr.port());
    let Some(run) = report_in_jvm(&conf(url), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    let w = run.one_warning("Failed to report telemetry");
    assert!(w.to_lowercase().contains("certificate"), "{w}");
    assert!(
        c.received().is_empty(),
        "nothing may be sent to an untrusted endpoint"
    );
}

#[test]
fn a_custom_ca_bundle_makes_a_corporate_endpoint_trusted() {
    let pki = support::tls::test_pki();
    let c = Collector::start_tls(Behaviour::Accept, pki.server);
    let bundle = support::temp_dir("ca").join("corporate-ca.pem");
    std::fs::write(&bundle, &pki.ca_pem).unwrap();
    let mut conf = conf(format!("https://127.0.0.1:{}{REPORT_PATH}", c.addr.port()));
    conf.push((
        "spark.tispark.telemetry.ca_file",
        bundle.display().to_string(),
    ));
    let Some(run) = report_in_jvm(&conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    assert!(run.warnings().is_empty(), "{}", run.output);
    let received = c.wait_for(1, Duration::from_secs(2));
    assert_eq!(received.len(), 1);
    support::assert_schema(&received[0].body);
}

#[test]
fn an_unreadable_ca_bundle_is_one_warning_and_nothing_sent() {
    let c = Collector::start(Behaviour::Accept);
    let mut conf = conf(c.url(REPORT_PATH));
    conf.push((
        "spark.tispark.telemetry.ca_file",
        "/nonexistent/ca.pem".into(),
    ));
    let Some(run) = report_in_jvm(&conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("spark.tispark.telemetry.ca_file");
    assert_eq!(c.connections(), 0);
}

#[test]
fn an_unresolvable_host_is_one_warning() {
    let url = "http://telemetry.invalid/api/v1/tispark/report".to_string();
    let Some(run) = report_in_jvm(&conf(url), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("Failed to report telemetry to http://telemetry.invalid/");
}

#[test]
fn a_malformed_url_is_one_warning_and_starts_nothing() {
    for (i, url) in ["http//missing-colon", "ftp://example.com/x", "http://"]
        .into_iter()
        .enumerate()
    {
        let Some(run) = report_in_jvm(&conf(url.into()), &[("TT_CASE", i.to_string())]) else {
            return;
        };
        run.assert_returned_at_once_and_left_nothing();
        run.one_warning("telemetry URL");
    }
}

#[test]
fn an_unreachable_pd_reports_unknown_tidb_version_and_still_sends() {
    let pd = Collector::start(Behaviour::Silent);
    let c = Collector::start(Behaviour::Accept);
    let mut conf = conf(c.url(REPORT_PATH));
    conf.push((
        "spark.tispark.pd.addresses",
        format!("{},127.0.0.1:1", pd.addr),
    ));
    let Some(run) = report_in_jvm(&conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("TiDB version is reported as UNKNOWN");
    let send_ms = run.number("SEND_MS");
    assert!(
        send_ms < 4_000,
        "PD's 2 s deadline should bound the wait: {send_ms} ms"
    );
    let received = c.wait_for(1, Duration::from_secs(2));
    assert_eq!(received.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(v["instance"]["tidb_version"], "UNKNOWN");
    assert_eq!(
        pd.received().len(),
        1,
        "PD is asked once, on the first address only"
    );
}

#[test]
fn a_reachable_pd_gives_the_tidb_version() {
    let pd = Collector::start(Behaviour::Json(
        r#"{"build_ts":"2023-12-01 03:52:23","version":"v7.5.0","git_hash":"5f1a4c0","start_timestamp":1701400000}"#,
    ));
    let c = Collector::start(Behaviour::Accept);
    let mut conf = conf(c.url(REPORT_PATH));
    conf.push(("spark.tispark.pd.addresses", pd.addr.to_string()));
    let Some(run) = report_in_jvm(&conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    assert!(run.warnings().is_empty(), "{}", run.output);
    let asked = pd.received();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (asked[0].method.as_str(), asked[0].path.as_str()),
        ("GET", "/pd/api/v1/status")
    );
    let v: serde_json::Value =
        serde_json::from_str(&c.wait_for(1, Duration::from_secs(2))[0].body).unwrap();
    assert_eq!(v["instance"]["tidb_version"], "v7.5.0");
}

#[test]
fn the_http_proxy_from_the_environment_is_used() {
    let proxy = Collector::start(Behaviour::Accept);
    let url = "http://telemetry.invalid/api/v1/tispark/report";
    let env = [
        ("HTTP_PROXY", format!("http://{}", proxy.addr)),
        ("NO_PROXY", String::new()),
    ];
    let Some(run) = report_in_jvm(&conf(url.to_string()), &env) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    assert!(run.warnings().is_empty(), "{}", run.output);
    // An http endpoint's request is forwarded to the proxy as it is
    // (reqwest tunnels only https: docs/security.md).
    let received = proxy.wait_for(1, Duration::from_secs(2));
    let asked: Vec<(&str, &str)> = received
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        asked,
        [("POST", "http://telemetry.invalid/api/v1/tispark/report")]
    );
    support::assert_schema(&received[0].body);
}

#[test]
fn the_https_proxy_from_the_environment_is_asked_to_tunnel() {
    let proxy = Collector::start(Behaviour::Status(403));
    let url = "https://telemetry.invalid/api/v1/tispark/report".to_string();
    let env = [
        ("HTTPS_PROXY", format!("http://{}", proxy.addr)),
        ("NO_PROXY", String::new()),
    ];
    let Some(run) = report_in_jvm(&conf(url), &env) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    // The proxy refuses the tunnel: the failure is one WARN, and nothing went direct.
    run.one_warning("Failed to report telemetry to https://telemetry.invalid/");
    let received = proxy.wait_for(1, Duration::from_secs(2));
    assert_eq!(received.len(), 1);
    assert_eq!(
        (received[0].method.as_str(), received[0].path.as_str()),
        ("CONNECT", "telemetry.invalid:443")
    );
}

#[test]
fn a_redirect_from_https_to_plain_http_is_refused() {
    let plain = Collector::start(Behaviour::Accept);
    let target: &'static str = Box::leak(plain.url(REPORT_PATH).into_boxed_str());
    let pki = support::tls::test_pki();
    let tls = Collector::start_tls(Behaviour::RedirectTo(target), pki.server);
    let bundle = support::temp_dir("downgrade-ca").join("ca.pem");
    std::fs::write(&bundle, &pki.ca_pem).unwrap();
    let mut conf = conf(format!(
        "https://127.0.0.1:{}{REPORT_PATH}",
        tls.addr.port()
    ));
    conf.push((
        "spark.tispark.telemetry.ca_file",
        bundle.display().to_string(),
    ));
    let Some(run) = report_in_jvm(&conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("the endpoint redirected to another origin (http://127.0.0.1:");
    assert_eq!(tls.received().len(), 1);
    assert_eq!(
        plain.connections(),
        0,
        "the report must not go out in clear text"
    );
}

#[test]
fn pd_is_asked_directly_not_through_the_environments_proxy() {
    let proxy = Collector::start(Behaviour::Accept);
    let pd = Collector::start(Behaviour::Json(r#"{"version":"v7.1.0"}"#));
    let mut conf = conf("http://telemetry.invalid/api/v1/tispark/report".into());
    conf.push(("spark.tispark.pd.addresses", pd.addr.to_string()));
    let env = [
        ("HTTP_PROXY", format!("http://{}", proxy.addr)),
        ("NO_PROXY", String::new()),
    ];
    let Some(run) = report_in_jvm(&conf, &env) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    assert!(run.warnings().is_empty(), "{}", run.output);
    assert_eq!(pd.received().len(), 1, "PD asked directly");
    let through_proxy = proxy.wait_for(1, Duration::from_secs(2));
    let asked: Vec<(&str, &str)> = through_proxy
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        asked,
        [("POST", "http://telemetry.invalid/api/v1/tispark/report")],
        "only the report goes through the proxy"
    );
    let v: serde_json::Value = serde_json::from_str(&through_proxy[0].body).unwrap();
    assert_eq!(v["instance"]["tidb_version"], "v7.1.0");
}
