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

/// In the child: a conf turning telemetry on, to the parent's collector and state dir.
fn enabled_conf<'l>(env: &mut jni::JNIEnv<'l>) -> JObject<'l> {
    let (url, state) = (var("TT_URL"), var("TT_STATE"));
    jvm::java_map(env, &[(ENABLE, "true"), (URL, &url), (STATE, &state)])
}

/// In the parent: the child ran cleanly and the collector got exactly one report.
fn assert_one_report(collector: &Collector, run: &jvm::ChildRun) {
    run.assert_clean();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(collector.received().len(), 1, "{}", run.output);
}

#[test]
fn report_with_a_map_conf_posts_the_report_once_and_returns_at_once() {
    let collector = Collector::start(Behaviour::Accept);
    let run = isolated(&child_env(&collector), || {
        let vm = jvm::start_jvm(&[]);
        let mut env = vm.attach_current_thread().unwrap();
        let conf = enabled_conf(&mut env);
        let start = Instant::now();
        jvm::report(&mut env, &conf, Some("3.1.0"));
        println!("REPORT_RETURNED_MS={}", start.elapsed().as_millis());
        assert!(
            jvm::flush(&mut env, 10_000),
            "the report was still in flight after 10 s"
        );
        let left = jvm::wait_no_threads_named("tispark-telemetry-sender", Duration::from_secs(2));
        println!("SENDER_THREADS_LEFT={left}");
    })
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
    // The sender thread loads the library and sends: the call returns long before that.
    let returned_ms: u64 = run.value("REPORT_RETURNED_MS").unwrap().parse().unwrap();
    assert!(returned_ms < 2_000, "report() blocked for {returned_ms} ms");
}

#[test]
fn report_called_from_many_threads_sends_one_report() {
    let collector = Collector::start(Behaviour::Accept);
    let Some(run) = isolated(&child_env(&collector), || {
        let vm = jvm::start_jvm(&[]);
        let (url, state) = (var("TT_URL"), var("TT_STATE"));
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    let mut env = vm.attach_current_thread().unwrap();
                    let conf =
                        jvm::java_map(&mut env, &[(ENABLE, "true"), (URL, &url), (STATE, &state)]);
                    jvm::report(&mut env, &conf, None);
                });
            }
        });
        let mut env = vm.attach_current_thread().unwrap();
        assert!(jvm::flush(&mut env, 10_000));
    }) else {
        return;
    };
    assert_one_report(&collector, &run);
}

#[test]
fn two_class_loaders_in_one_jvm_send_one_report() {
    let collector = Collector::start(Behaviour::Accept);
    let Some(run) = isolated(&child_env(&collector), || {
        // The jar is not on the class path: each loader loads its own classes and library copy.
        let vm = jvm::start_jvm_without_the_jar(&[]);
        let mut env = vm.attach_current_thread().unwrap();
        let (url, state) = (var("TT_URL"), var("TT_STATE"));
        for _ in 0..2 {
            let conf = [
                (ENABLE, "true"),
                (URL, url.as_str()),
                (STATE, state.as_str()),
            ];
            report_through_a_new_class_loader(&mut env, &conf);
        }
    }) else {
        return;
    };
    assert_one_report(&collector, &run);
}

#[test]
fn telemetry_off_or_invalid_switch_opens_no_connection() {
    let cases = [
        (None, None),
        (Some("false"), None),
        (Some(" FALSE "), None),
        (Some("yes"), Some("\"yes\"")),
        (Some("1"), Some("\"1\"")),
        (Some(""), Some("\"\"")),
        (Some("garbage"), Some("\"garbage\"")),
    ];
    for (i, (value, warned)) in cases.into_iter().enumerate() {
        let collector = Collector::start(Behaviour::Accept);
        let state = support::temp_dir("jvm-off").display().to_string();
        let mut conf = vec![(URL, collector.url("/r")), (STATE, state)];
        if let Some(v) = value {
            conf.push((ENABLE, v.to_string()));
        }
        // A report() is called twice: the first decision stands, one WARN at most.
        let env = [("TT_CASE", i.to_string()), ("TT_CALLS", "2".to_string())];
        let Some(run) = jvm::report_in_jvm(&conf, &env) else {
            return;
        };
        run.assert_returned_at_once_and_left_nothing();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(collector.connections(), 0, "{value:?}: {}", run.output);
        assert!(!run.output.contains("Telemetry report:"), "{}", run.output);
        match warned {
            // Without slf4j on the class path, warnings go to stderr.
            Some(shown) => assert!(run.one_warning(ENABLE).contains(shown), "{}", run.output),
            None => assert!(run.warnings().is_empty(), "{value:?}: {}", run.output),
        }
    }
}

#[test]
fn null_or_wrong_type_conf_is_one_warning_and_no_exception() {
    for (case, says) in [
        ("null", "was given null"),
        ("object", "was given a java.lang.Object"),
    ] {
        let collector = Collector::start(Behaviour::Accept);
        let mut env = child_env(&collector);
        env.push(("TT_CASE", case.to_string()));
        let Some(run) = isolated(&env, || {
            let vm = jvm::start_jvm(&[]);
            let mut env = vm.attach_current_thread().unwrap();
            let conf = match var("TT_CASE").as_str() {
                "null" => JObject::null(),
                _ => env.new_object("java/lang/Object", "()V", &[]).unwrap(),
            };
            for _ in 0..2 {
                jvm::report(&mut env, &conf, None);
                assert!(jvm::flush(&mut env, 5_000));
            }
        }) else {
            return;
        };
        run.assert_clean();
        run.one_warning(says);
        assert_eq!(collector.connections(), 0);
    }
}

#[test]
fn a_missing_native_library_is_one_warning_and_spark_runs_on() {
    let collector = Collector::start(Behaviour::Accept);
    let Some(run) = isolated(&child_env(&collector), || {
        let vm = jvm::start_jvm(&[
            "-Dtispark.telemetry.native.path=/nonexistent/libtispark_telemetry.so".into(),
        ]);
        let mut env = vm.attach_current_thread().unwrap();
        let conf = enabled_conf(&mut env);
        for _ in 0..2 {
            jvm::report(&mut env, &conf, None);
            assert!(jvm::flush(&mut env, 5_000));
        }
        println!("AFTER_REPORT=ok");
    }) else {
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
    let Some(run) = isolated(&child_env(&collector), || {
        // As on a platform the jar carries no library for (say, Linux on RISC-V).
        let vm = jvm::start_jvm(&["-Dtispark.telemetry.native.platform=linux-riscv64".into()]);
        let mut env = vm.attach_current_thread().unwrap();
        let conf = enabled_conf(&mut env);
        for _ in 0..2 {
            jvm::report(&mut env, &conf, None);
            assert!(jvm::flush(&mut env, 5_000));
        }
        println!(
            "SENDER_THREADS={}",
            jvm::wait_no_threads_named("tispark-telemetry-sender", Duration::from_secs(2))
        );
        println!("AFTER_REPORT=ok");
    }) else {
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
    let env = child_env(&collector);
    let state = std::path::PathBuf::from(&env[1].1);
    let Some(run) = isolated(&env, || {
        let vm = jvm::start_jvm(&[]);
        let mut env = vm.attach_current_thread().unwrap();
        let conf = enabled_conf(&mut env);
        jvm::report(&mut env, &conf, None);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        println!("EXIT_CALLED_AT_MS={}", now.as_millis());
        let _ = env.call_static_method("java/lang/System", "exit", "(I)V", &[JValue::Int(0)]);
        unreachable!("System.exit returned");
    }) else {
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

    // The log says the report may not have arrived, once, and the trail keeps it so.
    let unconfirmed: Vec<&str> = run
        .output
        .lines()
        .filter(|l| l.contains("not confirmed"))
        .collect();
    let url = collector.url("/api/v1/tispark/report");
    assert_eq!(unconfirmed.len(), 1, "{}", run.output);
    assert!(
        unconfirmed[0].starts_with(&format!(
            "WARN Telemetry: The telemetry report to {url} is not confirmed: the application \
             ended "
        )) && unconfirmed[0].ends_with(
            " ms into its delivery, and JVM shutdown waits at most 2000 ms for it \
             (-Dtispark.telemetry.flush.millis). It may not have arrived; it is not retried."
        ),
        "{}",
        unconfirmed[0]
    );
    let entries = tispark_telemetry::audit::read(&state).unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        entries[0].outcome,
        tispark_telemetry::audit::Delivery::NotConfirmed
    );
    assert_eq!(entries[0].destination, url);
    assert_eq!(entries[0].http_status, None);
    let report: serde_json::Value = serde_json::from_str(entries[0].report.get()).unwrap();
    assert!(report["track_id"].as_str().unwrap().starts_with("trkid_"));
}

/// A fresh `URLClassLoader` over the jar (no parent but the bootstrap loader),
/// its own `NativeTelemetry`, one `report` and one `flush` through it.
fn report_through_a_new_class_loader(env: &mut jni::JNIEnv, conf: &[(&str, &str)]) {
    env.with_local_frame(32, |env| -> jni::errors::Result<()> {
        let jar = env.new_string(support::jar().display().to_string())?;
        let file = env.new_object(
            "java/io/File",
            "(Ljava/lang/String;)V",
            &[JValue::Object(&jar)],
        )?;
        let uri = env
            .call_method(&file, "toURI", "()Ljava/net/URI;", &[])?
            .l()?;
        let url = env
            .call_method(&uri, "toURL", "()Ljava/net/URL;", &[])?
            .l()?;
        let urls = env.new_object_array(1, "java/net/URL", &url)?;
        let loader = env.new_object(
            "java/net/URLClassLoader",
            "([Ljava/net/URL;Ljava/lang/ClassLoader;)V",
            &[JValue::Object(&urls), JValue::Object(&JObject::null())],
        )?;
        let name = env.new_string("com.pingcap.tispark.telemetry.NativeTelemetry")?;
        let class = env
            .call_method(
                &loader,
                "loadClass",
                "(Ljava/lang/String;)Ljava/lang/Class;",
                &[JValue::Object(&name)],
            )?
            .l()?;
        let class = jni::objects::JClass::from(class);
        let map = jvm::java_map(env, conf);
        env.call_static_method(
            &class,
            "report",
            "(Ljava/lang/Object;)V",
            &[JValue::Object(&map)],
        )?;
        jvm::assert_no_exception(env);
        assert!(env
            .call_static_method(&class, "flush", "(J)Z", &[JValue::Long(10_000)])?
            .z()?);
        env.call_method(&loader, "close", "()V", &[])?;
        Ok(())
    })
    .unwrap();
}

fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

#[test]
fn repeated_class_loader_load_and_report_cycles_do_not_grow_native_memory() {
    let collector = Collector::start(Behaviour::Accept);
    let Some(run) = isolated(&child_env(&collector), || {
        let vm = jvm::start_jvm_without_the_jar(&["-Xms64m".into(), "-Xmx64m".into()]);
        let mut env = vm.attach_current_thread().unwrap();
        let (url, state) = (var("TT_URL"), var("TT_STATE"));
        let conf = [
            (ENABLE, "true"),
            (URL, url.as_str()),
            (STATE, state.as_str()),
        ];
        let gc = |env: &mut jni::JNIEnv| {
            env.call_static_method("java/lang/System", "gc", "()V", &[])
                .unwrap();
        };
        for _ in 0..5 {
            report_through_a_new_class_loader(&mut env, &conf);
        }
        gc(&mut env);
        println!("RSS_BEFORE_KIB={}", resident_kib());
        for i in 0..100 {
            report_through_a_new_class_loader(&mut env, &conf);
            if i % 20 == 19 {
                gc(&mut env);
            }
        }
        gc(&mut env);
        println!("RSS_AFTER_KIB={}", resident_kib());
    }) else {
        return;
    };
    run.assert_clean();
    let growth = run.number("RSS_AFTER_KIB") as i64 - run.number("RSS_BEFORE_KIB") as i64;
    // A library copy pinned per cycle would cost megabytes each; 100 cycles stay well inside this.
    assert!(
        growth < 16 * 1024,
        "resident memory grew by {growth} KiB over 100 cycles:\n{}",
        run.output
    );
    assert_eq!(collector.wait_for(1, Duration::from_secs(2)).len(), 1);
}

/// A JVM whose conf turns telemetry on, with PD at `TT_PD`: the scenario the
/// administrator's off switches must silence.
fn report_with_telemetry_and_pd_on() {
    let vm = jvm::start_jvm(&[]);
    let mut env = vm.attach_current_thread().unwrap();
    let (url, state, pd) = (var("TT_URL"), var("TT_STATE"), var("TT_PD"));
    let conf = jvm::java_map(
        &mut env,
        &[
            (ENABLE, "true"),
            (URL, &url),
            (STATE, &state),
            ("spark.tispark.pd.addresses", &pd),
        ],
    );
    jvm::report(&mut env, &conf, Some("3.1.0"));
    assert!(jvm::flush(&mut env, 10_000));
    println!(
        "SENDER_THREADS={}",
        jvm::wait_no_threads_named("tispark-telemetry-sender", Duration::from_secs(2))
    );
}

/// With `var` set to 1 nothing is collected or sent: no connection to PD or
/// to the endpoint, no thread, nothing stored. The same child with `var`
/// empty (the control) asks PD and posts the report.
fn an_environment_off_switch_stops_all_network_traffic(var: &'static str) {
    let run_with = |value: &str, collector: &Collector| {
        let mut env = child_env(collector);
        env.push(("TT_PD", collector.addr.to_string()));
        env.push(("TISPARK_TELEMETRY_DEBUG", "enable".into()));
        // The parent's own environment must not decide the control run.
        for v in tispark_telemetry::conf::DISABLE_ENV_VARS {
            env.push((v, String::new()));
        }
        env.push((var, value.to_string()));
        let state = env
            .iter()
            .find(|(k, _)| *k == "TT_STATE")
            .unwrap()
            .1
            .clone();
        isolated(&env, report_with_telemetry_and_pd_on).map(|run| (run, state))
    };

    let control = Collector::start(Behaviour::Accept);
    let Some((run, _)) = run_with("", &control) else {
        return;
    };
    run.assert_clean();
    let received = control.wait_for(2, Duration::from_secs(5));
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/pd/api/v1/status", "/api/v1/tispark/report"],
        "{}",
        run.output
    );
    let debug_printed = support::logged_reports(&run.output);
    assert_eq!(
        debug_printed,
        [received[1].body.clone()],
        "TISPARK_TELEMETRY_DEBUG=enable"
    );

    let silenced = Collector::start(Behaviour::Accept);
    let (run, state) = run_with("1", &silenced).unwrap();
    run.assert_clean();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(silenced.connections(), 0, "{}", run.output);
    assert_eq!(run.value("SENDER_THREADS").as_deref(), Some("0"));
    assert!(!run.output.contains("Telemetry report"), "{}", run.output);
    let stored: Vec<_> = std::fs::read_dir(&state).unwrap().flatten().collect();
    assert!(stored.is_empty(), "nothing is stored: {stored:?}");
}

#[test]
fn tispark_telemetry_disabled_stops_all_network_traffic() {
    an_environment_off_switch_stops_all_network_traffic("TISPARK_TELEMETRY_DISABLED");
}

#[test]
fn do_not_track_stops_all_network_traffic() {
    an_environment_off_switch_stops_all_network_traffic("DO_NOT_TRACK");
}
