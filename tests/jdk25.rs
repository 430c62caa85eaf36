//! Java 24 and later (JEP 472): `System.load` from the class path prints the
//! JVM's four-line "restricted method" warning unless the driver runs with
//! `--enable-native-access=ALL-UNNAMED`, and under
//! `--illegal-native-access=deny` throws. The jar in a real JDK 25 (the
//! `java` launcher, a small main class, -Xcheck:jni, Spark's logging jars
//! with our logger at INFO): `TT_JDK25_JAVA`, provisioned by
//! `scripts/jdk25.sh` (run by `scripts/test.sh`).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::collector::{Behaviour, Collector};

const REPORT_PATH: &str = "/api/v1/tispark/report";

/// One report from `main`, then a flush; prints what the test reads. (The
/// API through method handles: `compile_java` compiles without the jar, and
/// reflection would resolve every method, SparkConf's too.)
const MAIN_JAVA: &str = include_str!("java/Jdk25Main.java");

struct Run {
    stdout: String,
    stderr: String,
    /// The telemetry logger's lines in the log file (log4j2, INFO and up).
    log: Vec<String>,
}

/// `java [option] -Xcheck:jni -cp <jar, Main, Spark's logging jars> Jdk25Main`
/// against collector `c`, with a fresh temporary directory for the library.
fn run_main(java: &str, classes: &Path, option: Option<&str>, c: &Collector) -> Run {
    let dir = support::temp_dir("jdk25");
    let log = dir.join("driver.log");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let class_path = format!(
        "{}:{}",
        support::jvm::spark_logging_class_path(),
        classes.display()
    );
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut cmd = Command::new("timeout");
    cmd.args(["60", java]).args(option).args([
        "-Xcheck:jni",
        "-cp",
        &class_path,
        &format!(
            "-Dlog4j.configurationFile={}",
            root.join("examples/log4j2.properties").display()
        ),
        &format!("-Dtispark.example.log={}", log.display()),
        &format!("-Dtispark.telemetry.native.tmpdir={}", tmp.display()),
        "Jdk25Main",
        &c.url(REPORT_PATH),
        &dir.join("state").display().to_string(),
    ]);
    let out = cmd.output().expect("run timeout and the JDK 25's java");
    let run = Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        log: std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" Telemetry: "))
            .map(str::to_string)
            .collect(),
    };
    assert!(out.status.success(), "{option:?}: {out:?}");
    assert_eq!(
        run.stdout, "FLUSHED=true\nJAVA_SPEC=25\n",
        "{option:?}: {}",
        run.stderr
    );
    for bad in ["WARNING in native method", "FATAL ERROR in native method"] {
        assert!(!run.stderr.contains(bad), "{option:?}: {}", run.stderr);
    }
    run
}

/// The log's message after `<level> Telemetry: `, for each line of that level.
fn messages<'a>(run: &'a Run, level: &str) -> Vec<&'a str> {
    let marker = format!(" {level} Telemetry: ");
    run.log
        .iter()
        .filter_map(|l| l.split_once(marker.as_str()).map(|(_, m)| m))
        .collect()
}

/// The report was logged, delivered once, with no telemetry warning.
fn assert_delivered(run: &Run, c: &Collector) {
    assert_eq!(messages(run, "WARN"), Vec::<&str>::new(), "{:?}", run.log);
    let logged = support::logged_reports(&run.log.join("\n"));
    assert_eq!(logged.len(), 1, "{:?}", run.log);
    let received = c.wait_for(1, Duration::from_secs(5));
    assert_eq!(received.len(), 1, "{:?}\n{}", run.log, run.stderr);
    assert_eq!(received[0].body, logged[0]);
}

#[test]
fn on_jdk_25_the_flag_silences_the_jvm_and_a_refusal_is_one_warning_naming_it() {
    let java = support::required_env("TT_JDK25_JAVA");
    let classes = support::jvm::compile_java(&[("Jdk25Main.java", MAIN_JAVA)]);
    let jar = support::jar();
    let jar = std::fs::canonicalize(&jar).unwrap();

    // Without the flag: the JVM's own warning, once (the library cannot
    // silence it), naming our loader; the report still goes.
    let c = Collector::start(Behaviour::Accept);
    let run = run_main(&java, &classes, None, &c);
    assert_delivered(&run, &c);
    assert_eq!(
        run.stderr,
        format!(
            "WARNING: A restricted method in java.lang.System has been called\n\
             WARNING: java.lang.System::load has been called by \
             com.pingcap.tispark.telemetry.NativeLoader in an unnamed module (file:{})\n\
             WARNING: Use --enable-native-access=ALL-UNNAMED to avoid a warning for callers \
             in this module\n\
             WARNING: Restricted methods will be blocked in a future release unless native \
             access is enabled\n\n",
            jar.display()
        )
    );

    // With it: not a word from the JVM, and the report goes.
    let c = Collector::start(Behaviour::Accept);
    let run = run_main(
        &java,
        &classes,
        Some("--enable-native-access=ALL-UNNAMED"),
        &c,
    );
    assert_eq!(run.stderr, "");
    assert_delivered(&run, &c);

    // Refused: one WARN naming the flag, no INFO blaming the cache, nothing sent.
    let c = Collector::start(Behaviour::Accept);
    let run = run_main(&java, &classes, Some("--illegal-native-access=deny"), &c);
    assert_eq!(run.stderr, "");
    assert_eq!(
        messages(&run, "WARN"),
        vec![format!(
            "Telemetry is off for this application: this JVM refuses native access to the \
             jar's classes (java.lang.IllegalCallerException: Illegal native access from an \
             unnamed module (file:{})). Start the driver's JVM with \
             --enable-native-access=ALL-UNNAMED (spark.driver.extraJavaOptions, or \
             spark-submit --driver-java-options).",
            jar.display()
        )],
        "{:?}",
        run.log
    );
    assert_eq!(run.log.len(), 1, "{:?}", run.log);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.connections(), 0);
}
