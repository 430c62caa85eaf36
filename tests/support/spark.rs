//! A real Spark application: `spark-submit examples/spark_job.py` with the
//! telemetry jar, shared by the tests that run one.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct SparkRun {
    pub success: bool,
    pub output: String,
    pub log: String,
}

/// `spark-submit examples/spark_job.py` with the telemetry jar and plugin, the
/// given confs, Spark's log in a file (log4j2 file appender), and -Xcheck:jni.
pub fn spark_submit(master: &str, confs: &[(&str, String)], env: &[(&str, &str)]) -> SparkRun {
    spark_submit_with(master, confs, None, env)
}

/// As `spark_submit`, with `--properties-file` too: Spark reads it as
/// `java.util.Properties` does, so `\uXXXX` there gives any character
/// whatever the locale (a command-line argument goes through it).
pub fn spark_submit_with(
    master: &str,
    confs: &[(&str, String)],
    properties_file: Option<&Path>,
    env: &[(&str, &str)],
) -> SparkRun {
    let spark_home = PathBuf::from(super::required_env("SPARK_HOME"));
    let python = super::required_env("PYSPARK_PYTHON");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = super::temp_dir("spark-log").join("spark.log");
    let mut cmd = Command::new(spark_home.join("bin/spark-submit"));
    cmd.current_dir(root)
        .env("PYSPARK_PYTHON", &python)
        .env("SPARK_HOME", &spark_home)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .args(["--master", master, "--jars"])
        .arg(super::jar())
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
    if let Some(file) = properties_file {
        cmd.arg("--properties-file").arg(file);
    }
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
pub fn spark_home_version() -> String {
    let jars = PathBuf::from(super::required_env("SPARK_HOME")).join("jars");
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
