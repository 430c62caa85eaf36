//! The Java API in a real JVM (JNI invocation, -Xcheck:jni), loading the
//! native library out of the packaged jar as a Spark driver would.

mod support;

use jni::objects::{JObject, JValue};
use std::time::{Duration, Instant};
use support::collector::{Behaviour, Collector};
use support::jvm::{self, isolated};

const ENABLE: &str = "spark.tispark.telemetry.enable";
const URL: &str = "spark.tispark.telemetry.url";
const STATE: &str = "spark.tispark.telemetry.state_dir";

fn child_env(collector: &Collector) -> Vec<(&'static str, String)> {
    vec![
        ("TT_URL", collector.url("/api/v1/tispark/report")),
        (
            "TT_STATE",
            support::temp_dir("jvm-state").display().to_string(),
        ),
    ]
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap()
}

#[test]
fn report_with_a_map_conf_posts_the_report_once_and_returns_at_once() {
    let collector = Collector::start(Behaviour::Accept);
    let run = isolated(
        "report_with_a_map_conf_posts_the_report_once_and_returns_at_once",
        &child_env(&collector),
        || {
            let vm = jvm::start_jvm(&[]);
            let mut env = vm.attach_current_thread().unwrap();
            let (url, state) = (var("TT_URL"), var("TT_STATE"));
            let conf = jvm::java_map(&mut env, &[(ENABLE, "true"), (URL, &url), (STATE, &state)]);
            let start = Instant::now();
            jvm::report(&mut env, &conf, Some("3.1.0"));
            println!("REPORT_RETURNED_MS={}", start.elapsed().as_millis());
            assert!(
                jvm::flush(&mut env, 10_000),
                "the report was still in flight after 10 s"
            );
            let left =
                jvm::wait_no_threads_named("tispark-telemetry-sender", Duration::from_secs(2));
            println!("SENDER_THREADS_LEFT={left}");
        },
    )
    .map(|r| {
        r.assert_clean();
        r
    });
    let Some(run) = run else { return };
    let received = collector.wait_for(1, Duration::from_secs(5));
    assert_eq!(received.len(), 1, "{}", run.output);
    let post = &received[0];
    assert_eq!(post.method, "POST");
    assert_eq!(post.path, "/api/v1/tispark/report");
    assert_eq!(post.header("content-type"), Some("application/json"));
    support::assert_schema(&post.body);
    let v: serde_json::Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(v["instance"]["tispark_version"], "3.1.0");
    assert_eq!(
        v["instance"]["spark_version"], "UNKNOWN",
        "no Spark on this JVM's class path"
    );
    assert_eq!(
        run.value("SENDER_THREADS_LEFT").as_deref(),
        Some("0"),
        "{}",
        run.output
    );
    // The first call loads the library; even so it returns long before a send could finish.
    let returned_ms: u64 = run.value("REPORT_RETURNED_MS").unwrap().parse().unwrap();
    assert!(returned_ms < 2_000, "report() blocked for {returned_ms} ms");
}

#[test]
fn report_called_from_many_threads_sends_one_report() {
    let collector = Collector::start(Behaviour::Accept);
    let Some(run) = isolated(
        "report_called_from_many_threads_sends_one_report",
        &child_env(&collector),
        || {
            let vm = jvm::start_jvm(&[]);
            let (url, state) = (var("TT_URL"), var("TT_STATE"));
            std::thread::scope(|s| {
                for _ in 0..16 {
                    s.spawn(|| {
                        let mut env = vm.attach_current_thread().unwrap();
                        let conf = jvm::java_map(
                            &mut env,
                            &[(ENABLE, "true"), (URL, &url), (STATE, &state)],
                        );
                        jvm::report(&mut env, &conf, None);
                    });
                }
            });
            let mut env = vm.attach_current_thread().unwrap();
            assert!(jvm::flush(&mut env, 10_000));
        },
    ) else {
        return;
    };
    run.assert_clean();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(collector.received().len(), 1, "{}", run.output);
}

#[test]
fn two_class_loaders_in_one_jvm_send_one_report() {
    let collector = Collector::start(Behaviour::Accept);
    let Some(run) = isolated(
        "two_class_loaders_in_one_jvm_send_one_report",
        &child_env(&collector),
        || {
            // The jar is not on the class path: each loader loads its own classes and library copy.
            let vm = jni::JavaVM::new(
                jni::InitArgsBuilder::new()
                    .version(jni::JNIVersion::V8)
                    .option("-Xcheck:jni")
                    .build()
                    .unwrap(),
            )
            .unwrap();
            let mut env = vm.attach_current_thread().unwrap();
            let (url, state) = (var("TT_URL"), var("TT_STATE"));
            let jar = env
                .new_string(support::jar().display().to_string())
                .unwrap();
            for _ in 0..2 {
                let file = env
                    .new_object(
                        "java/io/File",
                        "(Ljava/lang/String;)V",
                        &[JValue::Object(&jar)],
                    )
                    .unwrap();
                let uri = env
                    .call_method(&file, "toURI", "()Ljava/net/URI;", &[])
                    .unwrap()
                    .l()
                    .unwrap();
                let url_obj = env
                    .call_method(&uri, "toURL", "()Ljava/net/URL;", &[])
                    .unwrap()
                    .l()
                    .unwrap();
                let urls = env.new_object_array(1, "java/net/URL", &url_obj).unwrap();
                let loader = env
                    .new_object(
                        "java/net/URLClassLoader",
                        "([Ljava/net/URL;Ljava/lang/ClassLoader;)V",
                        &[JValue::Object(&urls), JValue::Object(&JObject::null())],
                    )
                    .unwrap();
                let name = env
                    .new_string("com.pingcap.tispark.telemetry.NativeTelemetry")
                    .unwrap();
                let class = env
                    .call_method(
                        &loader,
                        "loadClass",
                        "(Ljava/lang/String;)Ljava/lang/Class;",
                        &[JValue::Object(&name)],
                    )
                    .unwrap()
                    .l()
                    .unwrap();
                let class = jni::objects::JClass::from(class);
                let conf =
                    jvm::java_map(&mut env, &[(ENABLE, "true"), (URL, &url), (STATE, &state)]);
                env.call_static_method(
                    &class,
                    "report",
                    "(Ljava/lang/Object;)V",
                    &[JValue::Object(&conf)],
                )
                .unwrap();
                jvm::assert_no_exception(&mut env);
                let done = env
                    .call_static_method(&class, "flush", "(J)Z", &[JValue::Long(10_000)])
                    .unwrap()
                    .z()
                    .unwrap();
                assert!(done);
            }
        },
    ) else {
        return;
    };
    run.assert_clean();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(collector.received().len(), 1, "{}", run.output);
}

#[test]
fn telemetry_off_or_invalid_switch_opens_no_connection() {
    let collector = Collector::start(Behaviour::Accept);
    let Some(run) = isolated(
        "telemetry_off_or_invalid_switch_opens_no_connection",
        &child_env(&collector),
        || {
            let vm = jvm::start_jvm(&[]);
            let mut env = vm.attach_current_thread().unwrap();
            let (url, state) = (var("TT_URL"), var("TT_STATE"));
            for value in [
                None,
                Some("false"),
                Some(" FALSE "),
                Some("yes"),
                Some("1"),
                Some(""),
                Some("garbage"),
            ] {
                let mut pairs = vec![(URL, url.as_str()), (STATE, state.as_str())];
                if let Some(v) = value {
                    pairs.push((ENABLE, v));
                }
                env.with_local_frame(32, |env| -> jni::errors::Result<()> {
                    let conf = jvm::java_map(env, &pairs);
                    jvm::report(env, &conf, None);
                    Ok(())
                })
                .unwrap();
            }
            assert!(jvm::flush(&mut env, 1_000));
            println!(
                "SENDER_THREADS={}",
                jvm::threads_named("tispark-telemetry-sender")
            );
        },
    ) else {
        return;
    };
    run.assert_clean();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(collector.connections(), 0, "{}", run.output);
    assert_eq!(run.value("SENDER_THREADS").as_deref(), Some("0"));
    // Without slf4j on the class path, warnings go to stderr: one per invalid value, naming it.
    for v in ["\\\"yes\\\"", "\\\"1\\\"", "\\\"garbage\\\"", "\\\"\\\""] {
        let v = v.replace('\\', "");
        assert!(
            run.output
                .lines()
                .any(|l| l.contains("WARN") && l.contains(ENABLE) && l.contains(&v)),
            "no WARN for {v}:\n{}",
            run.output
        );
    }
    assert!(!run.output.contains("Telemetry report:"), "{}", run.output);
}

#[test]
fn null_or_wrong_type_conf_is_one_warning_and_no_exception() {
    let collector = Collector::start(Behaviour::Accept);
    let Some(run) = isolated(
        "null_or_wrong_type_conf_is_one_warning_and_no_exception",
        &child_env(&collector),
        || {
            let vm = jvm::start_jvm(&[]);
            let mut env = vm.attach_current_thread().unwrap();
            jvm::report(&mut env, &JObject::null(), None);
            let not_a_conf = env.new_object("java/lang/Object", "()V", &[]).unwrap();
            jvm::report(&mut env, &not_a_conf, None);
        },
    ) else {
        return;
    };
    run.assert_clean();
    assert!(run.output.contains("was given null"), "{}", run.output);
    assert!(
        run.output.contains("was given a java.lang.Object"),
        "{}",
        run.output
    );
    assert_eq!(collector.connections(), 0);
}

#[test]
fn a_missing_native_library_is_one_warning_and_spark_runs_on() {
    let collector = Collector::start(Behaviour::Accept);
    let Some(run) = isolated(
        "a_missing_native_library_is_one_warning_and_spark_runs_on",
        &child_env(&collector),
        || {
            let vm = jvm::start_jvm(&[
                "-Dtispark.telemetry.native.path=/nonexistent/libtispark_telemetry.so".into(),
            ]);
            let mut env = vm.attach_current_thread().unwrap();
            let (url, state) = (var("TT_URL"), var("TT_STATE"));
            let conf = jvm::java_map(&mut env, &[(ENABLE, "true"), (URL, &url), (STATE, &state)]);
            jvm::report(&mut env, &conf, None);
            jvm::report(&mut env, &conf, None);
            println!("AFTER_REPORT=ok");
        },
    ) else {
        return;
    };
    run.assert_clean();
    assert_eq!(run.value("AFTER_REPORT").as_deref(), Some("ok"));
    let warnings = run
        .output
        .lines()
        .filter(|l| l.contains("native library cannot be loaded"))
        .count();
    assert_eq!(warnings, 1, "{}", run.output);
    assert_eq!(collector.connections(), 0);
}

#[test]
fn a_platform_missing_from_the_jar_is_one_warning_and_spark_runs_on() {
    let collector = Collector::start(Behaviour::Accept);
    let Some(run) = isolated(
        "a_platform_missing_from_the_jar_is_one_warning_and_spark_runs_on",
        &child_env(&collector),
        || {
            // As on a platform the jar carries no library for (say, Linux on RISC-V).
            let vm = jvm::start_jvm(&["-Dtispark.telemetry.native.platform=linux-riscv64".into()]);
            let mut env = vm.attach_current_thread().unwrap();
            let (url, state) = (var("TT_URL"), var("TT_STATE"));
            let conf = jvm::java_map(&mut env, &[(ENABLE, "true"), (URL, &url), (STATE, &state)]);
            jvm::report(&mut env, &conf, None);
            jvm::report(&mut env, &conf, None);
            assert!(jvm::flush(&mut env, 1_000));
            println!(
                "SENDER_THREADS={}",
                jvm::threads_named("tispark-telemetry-sender")
            );
            println!("AFTER_REPORT=ok");
        },
    ) else {
        return;
    };
    run.assert_clean();
    assert_eq!(run.value("AFTER_REPORT").as_deref(), Some("ok"));
    assert_eq!(run.value("SENDER_THREADS").as_deref(), Some("0"));
    let warnings: Vec<&str> = run.output.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.output);
    // It names the platform, where it looked, and what to do.
    for says in [
        "native library cannot be loaded",
        "no native library for linux-riscv64",
        "/native/linux-riscv64/libtispark_telemetry.so",
        "Build the library for this platform",
    ] {
        assert!(
            warnings[0].contains(says),
            "{says:?} not in {}",
            warnings[0]
        );
    }
    assert_eq!(collector.connections(), 0);
}

#[test]
fn jvm_shutdown_waits_for_a_silent_endpoint_no_longer_than_the_flush_bound() {
    let collector = Collector::start(Behaviour::Silent);
    let Some(run) = isolated(
        "jvm_shutdown_waits_for_a_silent_endpoint_no_longer_than_the_flush_bound",
        &child_env(&collector),
        || {
            let vm = jvm::start_jvm(&[]);
            let mut env = vm.attach_current_thread().unwrap();
            let (url, state) = (var("TT_URL"), var("TT_STATE"));
            let conf = jvm::java_map(&mut env, &[(ENABLE, "true"), (URL, &url), (STATE, &state)]);
            jvm::report(&mut env, &conf, None);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            println!("EXIT_CALLED_AT_MS={}", now.as_millis());
            let _ = env.call_static_method("java/lang/System", "exit", "(I)V", &[JValue::Int(0)]);
            unreachable!("System.exit returned");
        },
    ) else {
        return;
    };
    let ended = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(run.success, "{}", run.output);
    let called: u128 = run
        .value("EXIT_CALLED_AT_MS")
        .expect(&run.output)
        .parse()
        .unwrap();
    let shutdown_ms = ended - called;
    // The hook waited for the send in flight, but no longer than the 2 s bound (the rest is
    // JVM teardown and process exit).
    assert!(
        shutdown_ms >= 1_900,
        "shutdown did not wait for the send: {shutdown_ms} ms"
    );
    assert!(
        shutdown_ms < 3_500,
        "shutdown took {shutdown_ms} ms:\n{}",
        run.output
    );
    assert!(collector.received().len() <= 1);
}
