//! A real Spark application (local mode, the pinned pyspark's Spark) with the
//! telemetry jar: what the operator sees in Spark's log and what the
//! endpoint receives.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::collector::{Behaviour, Collector};

struct SparkRun {
    success: bool,
    output: String,
    log: String,
}

/// `spark-submit examples/spark_job.py` with the telemetry jar and plugin, the
/// given confs, Spark's log in a file (log4j2 file appender), and -Xcheck:jni.
fn spark_submit(master: &str, confs: &[(&str, String)], env: &[(&str, &str)]) -> SparkRun {
    let spark_home = PathBuf::from(support::required_env("SPARK_HOME"));
    let python = support::required_env("PYSPARK_PYTHON");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = support::temp_dir("spark-log").join("spark.log");
    let mut cmd = Command::new(spark_home.join("bin/spark-submit"));
    cmd.current_dir(root)
        .env("PYSPARK_PYTHON", &python)
        .env("SPARK_HOME", &spark_home)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .args(["--master", master, "--jars"])
        .arg(support::jar())
        .args([
            "--conf",
            "spark.plugins=com.pingcap.tispark.telemetry.TelemetryPlugin",
        ])
        .args(["--conf", "spark.ui.enabled=false"])
        .arg("--driver-java-options")
        .arg(format!(
            "-Xcheck:jni -Dlog4j.configurationFile={} -Dtispark.example.log={}",
            root.join("examples/log4j2.properties").display(),
            log.display()
        ));
    for (k, v) in confs {
        cmd.arg("--conf").arg(format!("{k}={v}"));
    }
    cmd.envs(env.iter().copied()).arg("examples/spark_job.py");
    let out = cmd.output().expect("run spark-submit");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let run = SparkRun {
        success: out.status.success(),
        output,
        log,
    };
    assert!(
        run.success,
        "spark-submit failed:\n{}\n--- log ---\n{}",
        run.output, run.log
    );
    assert!(
        run.output
            .contains("job result: sum(0..100000) = 4999950000"),
        "{}",
        run.output
    );
    assert!(
        !run.output.contains("WARNING in native method"),
        "-Xcheck:jni:\n{}",
        run.output
    );
    run
}

/// The version of the Spark at SPARK_HOME, from its core jar's name
/// (`jars/spark-core_2.13-4.0.5.jar`).
fn spark_home_version() -> String {
    let jars = PathBuf::from(support::required_env("SPARK_HOME")).join("jars");
    std::fs::read_dir(&jars)
        .unwrap_or_else(|e| panic!("{}: {e}", jars.display()))
        .flatten()
        .find_map(|f| {
            let name = f.file_name().to_string_lossy().to_string();
            let rest = name.strip_prefix("spark-core_")?.strip_suffix(".jar")?;
            rest.split_once('-')
                .map(|(_scala, version)| version.to_string())
        })
        .unwrap_or_else(|| panic!("no spark-core jar in {}", jars.display()))
}

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
    confs.push(("spark.tispark.isolation_read_engines", "tiflash".into()));
    confs.push(("spark.tispark.coprocess.streaming", "true".into()));
    let run = spark_submit("local[2]", &confs, &[]);

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
        "tiflash"
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
}
