//! A real JVM for the tests, through the `jni` crate's invocation API, with
//! `-Xcheck:jni`.
//!
//! A process can create one JVM only, and some scenarios end theirs, so a
//! test that needs a JVM runs in two processes, and reads top to bottom:
//!
//! ```text
//! #[test]
//! fn some_behaviour() {
//!     let collector = Collector::start(Behaviour::Accept);     // parent: servers, files
//!     let Some(run) = isolated(&env, || { /* child: start the JVM, call the API */ })
//!     else { return };                                          // the child stops here
//!     run.assert_clean();                                       // parent: what it printed,
//!     assert_eq!(collector.received().len(), 1);                //   what the servers got
//! }
//! ```
//!
//! `isolated` re-runs this test binary for just this test (its name comes from
//! the test's thread, which libtest names after it), with `env` set; in that
//! child the closure runs and `isolated` returns `None`. `report_in_jvm` is
//! the common scenario (one `report(map)` and a flush) with the conf given.

use jni::objects::{JObject, JValue};
use jni::{InitArgsBuilder, JNIEnv, JNIVersion, JavaVM};
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "TT_JVM_CHILD";

pub struct ChildRun {
    pub success: bool,
    pub output: String,
    pub elapsed: Duration,
}

impl ChildRun {
    /// The child passed and the JVM's JNI checker found nothing to warn about.
    pub fn assert_clean(&self) {
        assert!(self.success, "the JVM child failed:\n{}", self.output);
        for bad in [
            "WARNING in native method",
            "FATAL ERROR in native method",
            "JNI local refs",
        ] {
            assert!(
                !self.output.contains(bad),
                "-Xcheck:jni complained ({bad}):\n{}",
                self.output
            );
        }
    }

    /// The value printed by the child as `KEY=value`.
    pub fn value(&self, key: &str) -> Option<String> {
        let marker = format!("{key}=");
        self.output.lines().find_map(|l| {
            let at = l.find(&marker)?;
            l[at + marker.len()..]
                .split_whitespace()
                .next()
                .map(str::to_string)
        })
    }
}

/// In the parent: runs this same test in a child process with `env`, and
/// returns what happened. In the child: runs `scenario` and returns `None`.
pub fn isolated(env: &[(&str, String)], scenario: impl FnOnce()) -> Option<ChildRun> {
    isolated_under(&[], env, scenario)
}

/// The running test's name: libtest runs each test on a thread named after it.
fn this_test() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .expect("called from a #[test], whose thread is named after it")
        .to_string()
}

/// As `isolated`, with the child started through `wrapper` (a command that
/// ends by running its arguments, e.g. `bash -c 'ulimit -f 0; exec "$@"' _`).
pub fn isolated_under(
    wrapper: &[&str],
    env: &[(&str, String)],
    scenario: impl FnOnce(),
) -> Option<ChildRun> {
    let test_name = this_test();
    let test_name = test_name.as_str();
    if std::env::var(CHILD_ENV).as_deref() == Ok(test_name) {
        scenario();
        return None;
    }
    let start = Instant::now();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let out = cmd
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test_name)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run the test binary as a child");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(ChildRun {
        success: out.status.success(),
        output,
        elapsed: start.elapsed(),
    })
}

/// Starts the JVM of this (child) process with the telemetry jar on its class path.
pub fn start_jvm(extra_options: &[String]) -> JavaVM {
    let mut options = vec![format!("-Djava.class.path={}", super::jar().display())];
    options.extend_from_slice(extra_options);
    start_jvm_without_the_jar(&options)
}

/// Starts the JVM of this (child) process, under -Xcheck:jni, with only these options.
pub fn start_jvm_without_the_jar(options: &[String]) -> JavaVM {
    let mut args = InitArgsBuilder::new()
        .version(JNIVersion::V8)
        .option("-Xcheck:jni");
    for o in options {
        args = args.option(o);
    }
    JavaVM::new(args.build().expect("JVM options"))
        .expect("start a JVM through JNI invocation (is a JDK installed? set JAVA_HOME to it)")
}

/// A `java.util.HashMap<String, String>` with these entries.
pub fn java_map<'l>(env: &mut JNIEnv<'l>, pairs: &[(&str, &str)]) -> JObject<'l> {
    let map = env.new_object("java/util/HashMap", "()V", &[]).unwrap();
    for (k, v) in pairs {
        let k = env.new_string(k).unwrap();
        let v = env.new_string(v).unwrap();
        env.call_method(
            &map,
            "put",
            "(Ljava/lang/Object;Ljava/lang/Object;)Ljava/lang/Object;",
            &[JValue::Object(&k), JValue::Object(&v)],
        )
        .unwrap();
    }
    map
}

pub const API: &str = "com/pingcap/tispark/telemetry/NativeTelemetry";

/// `NativeTelemetry.report(conf, version)`; panics if it threw.
pub fn report(env: &mut JNIEnv, conf: &JObject, tispark_version: Option<&str>) {
    let version = match tispark_version {
        Some(v) => JObject::from(env.new_string(v).unwrap()),
        None => JObject::null(),
    };
    let result = env.call_static_method(
        API,
        "report",
        "(Ljava/lang/Object;Ljava/lang/String;)V",
        &[JValue::Object(conf), JValue::Object(&version)],
    );
    assert_no_exception(env);
    result.unwrap();
}

/// `NativeTelemetry.flush(ms)`.
pub fn flush(env: &mut JNIEnv, millis: i64) -> bool {
    let done = env
        .call_static_method(API, "flush", "(J)Z", &[JValue::Long(millis)])
        .unwrap()
        .z()
        .unwrap();
    assert_no_exception(env);
    done
}

pub fn assert_no_exception(env: &mut JNIEnv) {
    if env.exception_check().unwrap() {
        env.exception_describe().unwrap();
        env.exception_clear().unwrap();
        panic!("a Java exception escaped the telemetry API");
    }
}

/// Threads of this process whose name starts with `prefix` (Linux truncates names to 15 bytes).
pub fn threads_named(prefix: &str) -> usize {
    let short: String = prefix.chars().take(15).collect();
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim_end() == short)
                })
                .count()
        })
        .unwrap_or(0)
}

/// Waits up to `timeout` for no thread named `prefix` to be left.
pub fn wait_no_threads_named(prefix: &str, timeout: Duration) -> usize {
    let end = Instant::now() + timeout;
    loop {
        let n = threads_named(prefix);
        if n == 0 || Instant::now() >= end {
            return n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

const CONF_ENV: &str = "TT_CONF";

/// One report in a fresh JVM: `NativeTelemetry.report(map)` with these conf
/// entries, then a flush of up to 15 s. The child prints
/// `REPORT_RETURNED_US`, `FLUSHED`, `SEND_MS` and `SENDER_THREADS_LEFT`.
pub fn report_in_jvm(conf: &[(&str, String)], env: &[(&str, String)]) -> Option<ChildRun> {
    report_in_jvm_under(&[], &[], conf, env)
}

/// As `report_in_jvm`, with the child started through `wrapper` and the JVM
/// given `jvm_options`.
pub fn report_in_jvm_under(
    wrapper: &[&str],
    jvm_options: &[String],
    conf: &[(&str, String)],
    env: &[(&str, String)],
) -> Option<ChildRun> {
    let pairs: Vec<(String, String)> = conf
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    // Through a file, written by the parent only (the child computes its own
    // temporary paths): a huge value would not fit in an environment variable.
    let scenario_file = super::temp_dir("jvm-scenario").join("scenario.json");
    if std::env::var_os(CONF_ENV).is_none() {
        let scenario = serde_json::json!({ "conf": pairs, "jvm_options": jvm_options });
        std::fs::write(&scenario_file, scenario.to_string()).unwrap();
    }
    let mut env = env.to_vec();
    env.push((CONF_ENV, scenario_file.display().to_string()));
    isolated_under(wrapper, &env, || {
        let file = std::env::var(CONF_ENV).unwrap();
        let scenario: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let pairs: Vec<(String, String)> =
            serde_json::from_value(scenario["conf"].clone()).unwrap();
        let jvm_options: Vec<String> =
            serde_json::from_value(scenario["jvm_options"].clone()).unwrap();
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let vm = start_jvm(&jvm_options);
        let mut env = vm.attach_current_thread().unwrap();
        let map = java_map(&mut env, &pairs);
        let start = Instant::now();
        report(&mut env, &map, None);
        println!("REPORT_RETURNED_US={}", start.elapsed().as_micros());
        // TT_CALLS=n: the application asks n times, each after the previous has ended.
        let calls: usize = std::env::var("TT_CALLS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        for _ in 1..calls {
            assert!(flush(&mut env, 15_000));
            report(&mut env, &map, None);
        }
        let start = Instant::now();
        println!("FLUSHED={}", flush(&mut env, 15_000));
        println!("SEND_MS={}", start.elapsed().as_millis());
        println!(
            "SENDER_THREADS_LEFT={}",
            wait_no_threads_named("tispark-telemetry-sender", Duration::from_secs(2))
        );
    })
}

impl ChildRun {
    /// The telemetry warnings the child printed (without slf4j they go to stderr).
    /// Each from `WARN Telemetry: ` on: the JVM's own stderr (`-Xcheck:jni`'s
    /// signal-handler check runs on a thread of its own) may share the line.
    pub fn warnings(&self) -> Vec<&str> {
        self.output
            .lines()
            .filter_map(|l| l.find("WARN Telemetry: ").map(|at| &l[at..]))
            .collect()
    }

    /// Exactly one telemetry warning was printed, and it says `says`.
    pub fn one_warning(&self, says: &str) -> &str {
        let warnings = self.warnings();
        assert_eq!(warnings.len(), 1, "expected one WARN:\n{}", self.output);
        assert!(
            warnings[0].contains(says),
            "the WARN should say {says:?}: {}",
            warnings[0]
        );
        warnings[0]
    }

    pub fn number(&self, key: &str) -> u64 {
        self.value(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key}:\n{}", self.output))
    }

    /// The driver's call returned without waiting on the network, the send
    /// ended, and no telemetry thread is left.
    pub fn assert_returned_at_once_and_left_nothing(&self) {
        self.assert_clean();
        let us = self.number("REPORT_RETURNED_US");
        assert!(
            us < 1_000_000,
            "report() took {us} µs: it waited on something\n{}",
            self.output
        );
        assert_eq!(
            self.value("FLUSHED").as_deref(),
            Some("true"),
            "{}",
            self.output
        );
        assert_eq!(self.number("SENDER_THREADS_LEFT"), 0, "{}", self.output);
    }
}

/// True in the child process a test runs its JVM scenario in (see `isolated`):
/// set-up that must happen once, in the parent, is skipped there.
pub fn in_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Compiles Java sources, `(file name, text)`, with the JDK's `javac` into a
/// new directory for a test JVM's class path. A missing `javac` or a compile
/// error fails the test.
pub fn compile_java(sources: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = super::temp_dir("java-classes");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut cmd = Command::new("javac");
    cmd.arg("-nowarn").arg("-d").arg(&dir);
    for (name, text) in sources {
        std::fs::write(src.join(name), text).unwrap();
        cmd.arg(src.join(name));
    }
    let out = cmd
        .output()
        .expect("run javac (a JDK 17 is required: apt-get install openjdk-17-jdk-headless)");
    assert!(
        out.status.success(),
        "javac failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Spark's own logging jars (slf4j over log4j2), for a JVM that logs as a driver does.
pub fn spark_logging_class_path() -> String {
    let jars = std::path::Path::new(&super::required_env("SPARK_HOME")).join("jars");
    let mut path = vec![super::jar().display().to_string()];
    for prefix in [
        "slf4j-api-",
        "log4j-slf4j2-impl-",
        "log4j-api-",
        "log4j-core-",
    ] {
        let jar = std::fs::read_dir(&jars)
            .unwrap()
            .flatten()
            .find(|f| f.file_name().to_string_lossy().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}*.jar in {}", jars.display()));
        path.push(jar.path().display().to_string());
    }
    path.join(":")
}
