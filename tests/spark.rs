//! A real Spark application (local mode, the pinned pyspark's Spark) with the
//! telemetry jar: what the operator sees in Spark's log and what the
//! endpoint receives.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::collector::{Behaviour, Collector};
use support::spark::{spark_home_version, spark_submit, spark_submit_with};

fn on(collector: &Collector) -> Vec<(&'static str, String)> {
    vec![
        ("spark.tispark.telemetry.enable", "true".into()),
        (
            "spark.tispark.telemetry.url",
            collector.url("/api/v1/tispark/report"),
        ),
        (
            "spark.tispark.telemetry.state_dir",
            support::temp_dir("spark-state").display().to_string(),
        ),
    ]
}

#[test]
fn telemetry_on_logs_the_report_and_posts_the_same_json_once() {
    let collector = Collector::start(Behaviour::Accept);
    let mut confs = on(&collector);
    confs.push(("spark.tispark.coprocess.streaming", "true".into()));
    // A value holding DEL, C1 controls (U+009B is an 8-bit CSI) and a
    // bidirectional override, as Spark reads it from a properties file.
    let properties = support::temp_dir("spark-properties").join("telemetry.conf");
    std::fs::write(
        &properties,
        "spark.tispark.isolation_read_engines tiflash\\u007f\\u0085\\u009b\\u202e\n",
    )
    .unwrap();
    let run = spark_submit_with("local[2]", &confs, Some(&properties), &[]);

    let logged = support::logged_reports(&run.log);
    assert_eq!(logged.len(), 1, "log:\n{}", run.log);
    let received = collector.wait_for(1, Duration::from_secs(2));
    assert_eq!(received.len(), 1, "log:\n{}", run.log);
    assert_eq!(
        received[0].body, logged[0],
        "the POST body must be exactly the logged JSON"
    );
    assert_eq!(received[0].header("content-type"), Some("application/json"));
    support::assert_schema(&received[0].body);

    let v: serde_json::Value = serde_json::from_str(&logged[0]).unwrap();
    assert_eq!(
        v["configuration"]["spark.tispark.isolation_read_engines"],
        "tiflash\u{7f}\u{85}\u{9b}\u{202e}"
    );
    // Escaped once, inside the JSON: the line is the body, and shows no raw control.
    assert!(
        logged[0].contains(r#""tiflash\u007f\u0085\u009b\u202e""#),
        "{}",
        logged[0]
    );
    assert!(
        !run.log.contains(['\u{7f}', '\u{85}', '\u{9b}', '\u{202e}']),
        "{}",
        run.log
    );
    assert_eq!(
        v["configuration"]["spark.tispark.coprocess.streaming"],
        true
    );
    // The Spark that ran the application, whichever SPARK_HOME that is (scripts/compat.sh).
    assert_eq!(
        v["instance"]["spark_version"].as_str(),
        Some(spark_home_version().as_str())
    );
    // Spark's default layout: "yy/MM/dd HH:mm:ss INFO Telemetry: Telemetry report: {...}"
    assert!(
        run.log
            .lines()
            .any(|l| l.contains(" INFO Telemetry: Telemetry report: {")),
        "{}",
        run.log
    );
    assert!(
        run.log
            .contains("INFO Telemetry: Telemetry sent to http://127.0.0.1:"),
        "{}",
        run.log
    );
    // The operator's idiom shows the report itself.
    let last = run
        .log
        .lines()
        .filter(|l| l.contains("Telemetry report"))
        .last()
        .unwrap();
    assert!(last.ends_with(&logged[0]), "{last}");

    // The first time on this host (a fresh state directory): one notice at INFO.
    let notices: Vec<&str> = run
        .log
        .lines()
        .filter(|l| l.contains("for the first time on this host"))
        .collect();
    assert_eq!(notices.len(), 1, "{}", run.log);
    assert!(
        notices[0].contains(" INFO Telemetry: TiSpark telemetry is on"),
        "{}",
        notices[0]
    );

    // Afterwards the operator's tool shows what left, from the audit trail.
    let state = Path::new(&confs[2].1);
    let entries = tispark_telemetry::audit::read(state).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].report.get(), logged[0]);
    let status = tool_status(state);
    assert_eq!(status["last_report"]["outcome"], "sent", "{status}");
    assert_eq!(status["last_report"]["http_status"], 200);
    assert_eq!(
        status["last_report"]["destination"],
        collector.url("/api/v1/tispark/report")
    );
    assert_eq!(status["track_id"], v["track_id"]);
}

/// `tispark-telemetry status --json` for a spark-defaults.conf naming `state` as the state directory.
fn tool_status(state: &Path) -> serde_json::Value {
    let conf = support::temp_dir("tool-conf").join("spark-defaults.conf");
    std::fs::write(
        &conf,
        format!("spark.tispark.telemetry.state_dir {}\n", state.display()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tispark-telemetry"))
        .arg("--conf")
        .arg(&conf)
        .args(["status", "--json"])
        .output()
        .expect("run tispark-telemetry");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn telemetry_off_by_default_logs_nothing_and_opens_no_connection() {
    let collector = Collector::start(Behaviour::Accept);
    let mut confs = on(&collector);
    confs.remove(0);
    let run = spark_submit("local[2]", &confs, &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(collector.connections(), 0);
    assert!(!run.log.contains("Telemetry"), "log:\n{}", run.log);
    assert!(!run.output.contains("Telemetry report"), "{}", run.output);
}

#[test]
fn telemetry_set_false_logs_nothing_and_opens_no_connection() {
    let collector = Collector::start(Behaviour::Accept);
    let mut confs = on(&collector);
    confs[0].1 = "false".into();
    let run = spark_submit("local[2]", &confs, &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(collector.connections(), 0);
    assert!(!run.log.contains("Telemetry"), "log:\n{}", run.log);
}

#[test]
fn plugin_sessions_and_concurrent_api_calls_give_one_report() {
    let collector = Collector::start(Behaviour::Accept);
    let run = spark_submit(
        "local[2]",
        &on(&collector),
        &[("TT_SESSIONS", "4"), ("TT_API_CALLS", "8")],
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(collector.received().len(), 1, "log:\n{}", run.log);
    assert_eq!(
        support::logged_reports(&run.log).len(),
        1,
        "log:\n{}",
        run.log
    );
}

#[test]
fn a_file_url_appends_the_report_locally_and_uses_no_network() {
    let collector = Collector::start(Behaviour::Accept);
    let sink = support::temp_dir("file-sink").join("reports.jsonl");
    let mut confs = on(&collector);
    confs[1].1 = format!("file://{}", sink.display());
    let run = spark_submit("local[2]", &confs, &[]);
    let written = std::fs::read_to_string(&sink).unwrap_or_default();
    let logged = support::logged_reports(&run.log);
    assert_eq!(
        written.lines().collect::<Vec<_>>(),
        logged,
        "log:\n{}",
        run.log
    );
    assert_eq!(logged.len(), 1);
    assert_eq!(collector.connections(), 0);
    let status = tool_status(Path::new(&confs[2].1));
    assert_eq!(status["last_report"]["outcome"], "written", "{status}");
    assert_eq!(
        status["last_report"]["destination"],
        format!("file://{}", sink.display())
    );
}

#[test]
fn local_cluster_executors_send_nothing_only_the_driver_reports() {
    let collector = Collector::start(Behaviour::Accept);
    let run = spark_submit("local-cluster[2,1,1024]", &on(&collector), &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(collector.received().len(), 1, "log:\n{}", run.log);
    assert_eq!(support::logged_reports(&run.log).len(), 1);
}

#[test]
fn planted_secrets_never_appear_in_the_log_line_the_post_or_the_state_dir() {
    let pd = Collector::start(Behaviour::Json(
        r#"{"version":"v7.5.0","git_hash":"x","start_timestamp":1}"#,
    ));
    let collector = Collector::start(Behaviour::Accept);
    let mut confs = on(&collector);
    let state_dir = PathBuf::from(&confs[2].1);
    let pd_address = format!("127.0.0.1:{}", pd.addr.port());
    confs.push(("spark.tispark.pd.addresses", pd_address.clone()));
    confs.extend(support::SECRETS.iter().map(|(k, v)| (*k, v.to_string())));
    let run = spark_submit("local[2]", &confs, &support::ENV_SECRETS);
    let logged = support::logged_reports(&run.log);
    assert_eq!(logged.len(), 1, "log:\n{}", run.log);
    let received = collector.wait_for(1, Duration::from_secs(2));
    assert_eq!(received.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(v["instance"]["tidb_version"], "v7.5.0", "PD was asked");

    let mut places = vec![("the POST body", received[0].body.clone())];
    places.extend(
        run.log
            .lines()
            .filter(|l| l.contains(" Telemetry: "))
            .map(|l| ("the log", l.to_string())),
    );
    for entry in std::fs::read_dir(&state_dir).unwrap().flatten() {
        places.push((
            "the state dir",
            std::fs::read_to_string(entry.path()).unwrap_or_default(),
        ));
    }
    for (place, text) in &places {
        support::assert_no_secrets(place, text, &[pd_address.as_str()]);
    }
}

/// The operator's idiom, `grep "Telemetry report" spark.log | tail -n 1`.
fn last_report_line(log: &str) -> Option<&str> {
    log.lines()
        .filter(|l| l.contains("Telemetry report"))
        .last()
}

#[test]
fn values_holding_newlines_cannot_forge_the_report_line() {
    let dir = support::temp_dir("spark-forge");
    let forged = "Telemetry report: {\"forged\":true}";
    // A file sink whose path holds the report's words and an escape sequence
    // (a URL cannot hold a newline: the URL parser drops it): the report is
    // written, and the log shows the path escaped.
    let sink = dir.join(format!("r {forged}\u{1b}[2J.jsonl"));
    let mut confs = vec![
        ("spark.tispark.telemetry.enable", "true".to_string()),
        (
            "spark.tispark.telemetry.url",
            format!("file://{}", sink.display()),
        ),
        (
            "spark.tispark.telemetry.state_dir",
            dir.join("state").display().to_string(),
        ),
    ];
    let run = spark_submit("local[2]", &confs, &[]);
    let written = std::fs::read_to_string(&sink).unwrap();
    let last = last_report_line(&run.log).unwrap();
    assert_eq!(
        last.split_once("Telemetry report: ").unwrap().1,
        written.trim_end(),
        "{}",
        run.log
    );
    assert!(!run.log.contains('\u{1b}'), "{}", run.log);
    assert!(
        run.log
            .contains(r#"r Telemetry\u{20}report: {"forged":true}\u{1b}[2J.jsonl in "#),
        "{}",
        run.log
    );

    // A CA bundle path holding a forged report: nothing is sent, and the
    // grep finds nothing at all.
    let collector = Collector::start(Behaviour::Accept);
    confs[1].1 = collector.url("/api/v1/tispark/report");
    confs.push((
        "spark.tispark.telemetry.ca_file",
        format!("/nonexistent\n{forged}"),
    ));
    confs[2].1 = dir.join("state2").display().to_string();
    let run = spark_submit("local[2]", &confs, &[]);
    assert_eq!(last_report_line(&run.log), None, "{}", run.log);
    assert!(
        run.log
            .contains(r#"the CA bundle "/nonexistent\nTelemetry\u{20}report: {\"forged\":true}""#),
        "{}",
        run.log
    );
    assert_eq!(collector.connections(), 0);
}
