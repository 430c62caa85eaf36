//! Promises of the Java side that only a real JVM (-Xcheck:jni, the packaged
//! jar) can show (issue 18, item 13): the flush bound's 10 s clamp, the Java
//! side's own log escaping, the JVM-wide mark's value, and the malformed-URL
//! WARN exactly as docs/failures.md shows it.

mod support;

use jni::objects::{JObject, JString, JValue};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::jvm::{self, isolated};

const ENABLE: &str = "spark.tispark.telemetry.enable";

/// Conf objects of the shape `String get(String, String)` (read on the
/// telemetry thread only), misbehaving as the tests need.
const CONFS_JAVA: &str = r#"
public final class Confs {
    /** A conf whose reads take a minute: the sender is still reading when the JVM exits. */
    public static final class Slow {
        public String get(String key, String def) {
            try {
                Thread.sleep(60_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return "true";
        }
    }

    /** A conf whose reads fail with a message holding controls and the report's words. */
    public static final class Throwing {
        public String get(String key, String def) {
            throw new IllegalArgumentException("bad\nWARN Telemetry: Telemetry report: "
                    + "{\"forged\":1}\u001b[2J\r\t\u007f\u0085\u009b end");
        }
    }
}
"#;

fn var(name: &str) -> String {
    std::env::var(name).unwrap()
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// The classes of [`CONFS_JAVA`], compiled once in the parent.
fn compiled_confs() -> String {
    std::env::var("TT_CLASSES").unwrap_or_else(|_| {
        jvm::compile_java(&[("Confs.java", CONFS_JAVA)])
            .display()
            .to_string()
    })
}

/// The child's JVM, with the jar, the compiled conf classes and these options.
fn start_jvm_with_confs(options: &[&str]) -> jni::JavaVM {
    let mut all = vec![format!(
        "-Djava.class.path={}:{}",
        support::jar().display(),
        var("TT_CLASSES")
    )];
    all.extend(options.iter().map(|o| o.to_string()));
    jvm::start_jvm_without_the_jar(&all)
}

/// `-Dtispark.telemetry.flush.millis=60000` is clamped to 10 s: a JVM whose
/// sender is stuck exits 10 s after `System.exit`, not a minute later.
#[test]
fn the_flush_bound_is_clamped_to_10_seconds() {
    let env = [("TT_CLASSES", compiled_confs())];
    let Some(run) = isolated(&env, || {
        let vm = start_jvm_with_confs(&["-Dtispark.telemetry.flush.millis=60000"]);
        let mut env = vm.attach_current_thread().unwrap();
        let conf = env.new_object("Confs$Slow", "()V", &[]).unwrap();
        jvm::report(&mut env, &conf, None);
        // The sender is inside the conf's get (it starts at once).
        std::thread::sleep(Duration::from_millis(500));
        println!("EXIT_CALLED_AT_MS={}", now_ms());
        let _ = env.call_static_method("java/lang/System", "exit", "(I)V", &[JValue::Int(0)]);
        unreachable!("System.exit returned");
    }) else {
        return;
    };
    let ended = now_ms();
    assert!(run.success, "{}", run.output);
    let called: u128 = run.number("EXIT_CALLED_AT_MS").into();
    let shutdown_ms = ended - called;
    assert!(
        (9_900..12_500).contains(&shutdown_ms),
        "shutdown waited {shutdown_ms} ms for a stuck sender, not the 10 s bound:\n{}",
        run.output
    );
}

/// A record of the Java side's own (here: a conf object's exception) is one
/// line: C0, DEL and C1 controls escaped, the report's words defused.
#[test]
fn the_java_sides_own_records_are_escaped() {
    let env = [("TT_CLASSES", compiled_confs())];
    let Some(run) = isolated(&env, || {
        let vm = start_jvm_with_confs(&[]);
        let mut env = vm.attach_current_thread().unwrap();
        let conf = env.new_object("Confs$Throwing", "()V", &[]).unwrap();
        jvm::report(&mut env, &conf, None);
        assert!(jvm::flush(&mut env, 10_000));
    }) else {
        return;
    };
    run.assert_clean();
    assert_eq!(
        run.warnings(),
        [
            r#"WARN Telemetry: Telemetry is off for this application: bad\nWARN Telemetry: Telemetry\u{20}report: {"forged":1}\u{1b}[2J\r\t\u{7f}\u{85}\u{9b} end"#
        ],
        "{}",
        run.output
    );
    assert!(!run.output.contains("Telemetry report"), "{}", run.output);
}

/// The JVM-wide mark (`tispark.telemetry.reported`) holds the application
/// id, trimmed, or `unknown` when the conf has none, as docs/failures.md says.
#[test]
fn the_jvm_mark_is_the_application_id_or_unknown() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/failures.md")).unwrap();
    assert!(
        doc.contains(
            "the system property `tispark.telemetry.reported` (its value: the application id, \
             or `unknown` when the conf has none)"
        ),
        "docs/failures.md does not say what the mark holds"
    );
    for (app_id, mark) in [
        ("", "unknown"),
        (" local-1764000000000 ", "local-1764000000000"),
    ] {
        let dir = support::temp_dir("promises-mark");
        let env = [
            ("TT_APP_ID", app_id.to_string()),
            (
                "TT_URL",
                format!("file://{}", dir.join("reports.jsonl").display()),
            ),
            ("TT_STATE", dir.join("state").display().to_string()),
        ];
        let Some(run) = isolated(&env, || {
            let vm = jvm::start_jvm(&[]);
            let mut env = vm.attach_current_thread().unwrap();
            let (url, state, app_id) = (var("TT_URL"), var("TT_STATE"), var("TT_APP_ID"));
            let mut pairs = vec![
                (ENABLE, "true"),
                ("spark.tispark.telemetry.url", url.as_str()),
                ("spark.tispark.telemetry.state_dir", state.as_str()),
            ];
            if !app_id.is_empty() {
                pairs.push(("spark.app.id", app_id.as_str()));
            }
            let conf = jvm::java_map(&mut env, &pairs);
            jvm::report(&mut env, &conf, None);
            assert!(jvm::flush(&mut env, 10_000));
            let key = env.new_string("tispark.telemetry.reported").unwrap();
            let value = env
                .call_static_method(
                    "java/lang/System",
                    "getProperty",
                    "(Ljava/lang/String;)Ljava/lang/String;",
                    &[JValue::Object(&JObject::from(key))],
                )
                .unwrap()
                .l()
                .unwrap();
            let shown: String = if value.is_null() {
                "(unset)".into()
            } else {
                env.get_string(&JString::from(value)).unwrap().into()
            };
            println!("MARK={shown}");
        }) else {
            return;
        };
        run.assert_clean();
        assert_eq!(run.value("MARK").as_deref(), Some(mark), "{}", run.output);
        let written = std::fs::read_to_string(dir.join("reports.jsonl")).unwrap();
        assert_eq!(written.lines().count(), 1, "the report was written");
    }
}

/// The WARN for a URL that does not parse, exactly as docs/failures.md shows it.
#[test]
fn a_malformed_url_is_the_one_warning_docs_failures_md_shows() {
    let state = support::temp_dir("promises-bad-url");
    let conf = [
        (ENABLE, "true".to_string()),
        ("spark.tispark.telemetry.url", "not a url".to_string()),
        (
            "spark.tispark.telemetry.state_dir",
            state.display().to_string(),
        ),
    ];
    let Some(run) = jvm::report_in_jvm(&conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    let shown = "Telemetry is off for this application: the telemetry URL (not shown: it does \
                 not parse) is not a valid URL (relative URL without a base).";
    assert_eq!(
        run.warnings(),
        [format!("WARN Telemetry: {shown}")],
        "{}",
        run.output
    );
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/failures.md")).unwrap();
    assert!(
        doc.contains(&format!("`{shown}`")),
        "docs/failures.md does not show the WARN as it is printed: {shown}"
    );
    assert_eq!(
        std::fs::read_dir(&state).map(|d| d.count()).unwrap_or(0),
        0,
        "nothing was built or recorded"
    );
}
