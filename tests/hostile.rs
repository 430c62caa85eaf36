//! A hostile or broken host, in a real JVM (-Xcheck:jni) loading the packaged
//! jar: broken state files, a state directory others can write, a CA bundle
//! that is a device, a collector that redirects elsewhere, a URL holding
//! secrets, values holding newlines. In each case the driver's call returns
//! at once, the JVM runs on, and what the operator sees is one honest line.

mod support;

use std::path::Path;
use std::time::Duration;
use support::collector::{Behaviour, Collector};
use support::jvm::report_in_jvm;

const REPORT_PATH: &str = "/api/v1/tispark/report";
const APP_ID: &str = "local-1795545079000";

fn conf(url: String, state: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("spark.tispark.telemetry.enable", "true".into()),
        ("spark.tispark.telemetry.url", url),
        (
            "spark.tispark.telemetry.state_dir",
            state.display().to_string(),
        ),
        ("spark.app.id", APP_ID.into()),
    ]
}

fn track_id(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["track_id"].as_str().unwrap().to_string()
}

fn audit_destinations(state: &Path) -> Vec<String> {
    std::fs::read_to_string(state.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["destination"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_dangling_track_id_link_does_not_crash_the_driver() {
    let c = Collector::start(Behaviour::Accept);
    let state = support::temp_dir("dangling");
    std::os::unix::fs::symlink("/nonexistent-nfs/track_id", state.join("track_id")).unwrap();
    let Some(run) = report_in_jvm(&conf(c.url(REPORT_PATH), &state), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("symbolic link, which is not followed); it is replaced");
    let received = c.wait_for(1, Duration::from_secs(5));
    assert_eq!(received.len(), 1, "{}", run.output);
    let id = track_id(&received[0].body);
    assert!(id.starts_with("trkid_"), "{id}");
    assert_eq!(
        std::fs::read_to_string(state.join("track_id")).unwrap(),
        id,
        "the link is replaced by a private file holding the new id"
    );
}

#[test]
fn a_ca_bundle_that_is_a_device_is_refused_at_once() {
    let c = Collector::start(Behaviour::Accept);
    let state = support::temp_dir("ca-device");
    let mut conf = conf(c.url(REPORT_PATH), &state);
    conf.push(("spark.tispark.telemetry.ca_file", "/dev/zero".into()));
    let Some(run) = report_in_jvm(&conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning(r#"the CA bundle "/dev/zero" (spark.tispark.telemetry.ca_file) cannot be read (it is not a regular file)"#);
    assert!(run.number("SEND_MS") < 2_000, "{}", run.output);
    assert_eq!(c.connections(), 0);
}

#[test]
fn a_state_directory_others_can_write_is_refused_and_the_report_uses_the_app_id() {
    use std::os::unix::fs::PermissionsExt;
    let c = Collector::start(Behaviour::Accept);
    let state = support::temp_dir("world-writable");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let Some(run) = report_in_jvm(&conf(c.url(REPORT_PATH), &state), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    let w = run.one_warning("is writable by other users (mode 0777)");
    assert!(
        w.contains(&format!("chmod 700 {:?}", state.display().to_string())),
        "{w}"
    );
    let received = c.wait_for(1, Duration::from_secs(5));
    assert_eq!(track_id(&received[0].body), format!("appid_{APP_ID}"));
    let left: Vec<_> = std::fs::read_dir(&state).unwrap().flatten().collect();
    assert!(left.is_empty(), "nothing is written there: {left:?}");
}

#[test]
fn state_written_by_the_driver_is_private() {
    use std::os::unix::fs::MetadataExt;
    let c = Collector::start(Behaviour::Accept);
    let state = support::temp_dir("private").join("state");
    let Some(run) = report_in_jvm(&conf(c.url(REPORT_PATH), &state), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&state).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600, "{:?}", entry.path());
        names.push(entry.file_name().to_string_lossy().to_string());
    }
    names.sort();
    assert_eq!(names, [".audit.lock", "audit.jsonl", "track_id"]);
}

#[test]
fn a_redirect_to_another_origin_is_not_followed_and_the_trail_says_so() {
    let elsewhere = Collector::start(Behaviour::Accept);
    let target: &'static str = Box::leak(elsewhere.url("/collect?k=v").into_boxed_str());
    let c = Collector::start(Behaviour::RedirectTo(target));
    let state = support::temp_dir("redirect-away");
    let url = format!("{}?api_key=SECRET-KEY", c.url(REPORT_PATH));
    let Some(run) = report_in_jvm(&conf(url, &state), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    let w = run.one_warning(&format!(
        "the endpoint redirected to another origin ({}), where the report is not sent",
        elsewhere.url("/collect")
    ));
    assert!(!w.contains("SECRET-KEY"), "{w}");
    assert_eq!(c.received().len(), 1);
    assert_eq!(
        elsewhere.connections(),
        0,
        "nothing goes to the other origin"
    );
    assert_eq!(audit_destinations(&state), [c.url(REPORT_PATH)]);
}

#[test]
fn a_redirect_within_the_origin_sends_no_referer_and_the_trail_names_where_it_went() {
    let c = Collector::start(Behaviour::MovedWithin("/final"));
    let state = support::temp_dir("redirect-within");
    let url = format!("{}?api_key=SECRET-KEY", c.url(REPORT_PATH));
    let Some(run) = report_in_jvm(&conf(url, &state), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    assert!(run.warnings().is_empty(), "{}", run.output);
    let received = c.wait_for(2, Duration::from_secs(5));
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].path, "/final");
    assert_eq!(received[1].body, received[0].body);
    for r in &received {
        assert_eq!(r.header("referer"), None, "{:?}", r.headers);
    }
    assert_eq!(audit_destinations(&state), [c.url("/final")]);
}

#[test]
fn an_unparsable_url_is_never_echoed() {
    let state = support::temp_dir("bad-url");
    let url = "https://user:PASSWORD@collector.example:99999/r?token=SECRET".to_string();
    let Some(run) = report_in_jvm(&conf(url, &state), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    let w = run.one_warning(
        "the telemetry URL https://collector.example/… (not shown: it does not parse) is not a \
         valid URL (invalid port number)",
    );
    for secret in ["PASSWORD", "SECRET"] {
        assert!(!run.output.contains(secret), "{secret} in: {w}");
    }
}

#[test]
fn a_newline_in_a_path_cannot_forge_a_log_line() {
    let state = support::temp_dir("forge");
    let forged = format!(
        "{}/x\nWARN Telemetry: Telemetry report: {{\"forged\":1}}\u{1b}[2J",
        state.display()
    );
    let mut conf = conf("http://127.0.0.1:9/r".into(), &state);
    conf.push(("spark.tispark.telemetry.ca_file", forged));
    let Some(run) = report_in_jvm(&conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    let w = run.one_warning("cannot be read");
    assert!(
        w.contains(r#"/x\nWARN Telemetry: Telemetry\u{20}report: {\"forged\":1}\u{1b}[2J""#),
        "{w}"
    );
    assert!(!run.output.contains("Telemetry report"), "{}", run.output);
    assert!(!run.output.contains('\u{1b}'), "{}", run.output);
}

/// In a child: a JVM with Spark's logging (log4j2 writing `TT_LOG`, our
/// logger at INFO) and these options, and a conf turning telemetry on.
fn logging_jvm_child(
    options: &[&str],
    then: impl FnOnce(&mut jni::JNIEnv, &jni::objects::JObject),
) {
    let var = |k: &str| std::env::var(k).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = vec![
        format!("-Djava.class.path={}", var("TT_CP")),
        format!(
            "-Dlog4j.configurationFile={}",
            root.join("examples/log4j2.properties").display()
        ),
        format!("-Dtispark.example.log={}", var("TT_LOG")),
    ];
    all.extend(options.iter().map(|o| o.to_string()));
    let vm = support::jvm::start_jvm_without_the_jar(&all);
    let mut env = vm.attach_current_thread().unwrap();
    let (url, state) = (var("TT_URL"), var("TT_STATE"));
    let pd = std::env::var("TT_PD").unwrap_or_default();
    let mut pairs = vec![
        ("spark.tispark.telemetry.enable", "true"),
        ("spark.tispark.telemetry.url", url.as_str()),
        ("spark.tispark.telemetry.state_dir", state.as_str()),
    ];
    if !pd.is_empty() {
        pairs.push(("spark.tispark.pd.addresses", pd.as_str()));
    }
    let conf = support::jvm::java_map(&mut env, &pairs);
    then(&mut env, &conf);
}

/// The parent's side of `logging_jvm_child`: the child's environment, and where its log goes.
fn logging_jvm_env(c: &Collector, name: &str) -> (Vec<(&'static str, String)>, std::path::PathBuf) {
    let dir = support::temp_dir(name);
    let log = dir.join("spark.log");
    let env = vec![
        ("TT_URL", c.url(REPORT_PATH)),
        ("TT_STATE", dir.join("state").display().to_string()),
        ("TT_LOG", log.display().to_string()),
        ("TT_CP", support::jvm::spark_logging_class_path()),
    ];
    (env, log)
}

#[test]
fn a_driver_with_a_small_thread_stack_logs_the_report_before_sending_it() {
    let c = Collector::start(Behaviour::Accept);
    let (env, log) = logging_jvm_env(&c, "small-stack");
    let run = support::jvm::isolated(&env, || {
        logging_jvm_child(&["-Xss136k"], |env, conf| {
            support::jvm::report(env, conf, None);
            assert!(support::jvm::flush(env, 10_000));
        })
    });
    let Some(run) = run else { return };
    run.assert_clean();
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let logged = support::logged_reports(&log);
    assert_eq!(logged.len(), 1, "{log}\n{}", run.output);
    let received = c.wait_for(1, Duration::from_secs(5));
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, logged[0]);
}

#[test]
fn a_report_whose_line_the_log_no_longer_takes_is_not_sent() {
    let c = Collector::start(Behaviour::Accept);
    // PD never answers: the sender reaches the report line only after PD's
    // 2 s deadline, surely after the JVM began to exit (the flush waits up to 10 s).
    let pd = Collector::start(Behaviour::Silent);
    let (mut env, _) = logging_jvm_env(&c, "log-shut");
    env.push(("TT_PD", pd.addr.to_string()));
    let run = support::jvm::isolated(&env, || {
        logging_jvm_child(&["-Dtispark.telemetry.flush.millis=10000"], |env, conf| {
            // The application ends at once: log4j2 stops its loggers and the
            // JVM exits, while the sender is still on its way to the report line.
            env.call_static_method(
                "org/apache/logging/log4j/LogManager",
                "shutdown",
                "()V",
                &[],
            )
            .unwrap();
            support::jvm::report(env, conf, None);
            env.call_static_method(
                "java/lang/System",
                "exit",
                "(I)V",
                &[jni::objects::JValue::Int(0)],
            )
            .unwrap();
        })
    });
    let Some(run) = run else { return };
    run.assert_clean();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.connections(), 0, "nothing sent: {}", run.output);
    let said: Vec<&str> = run
        .output
        .lines()
        .filter_map(|l| l.find("TiSpark telemetry: ").map(|at| &l[at..]))
        .collect();
    assert_eq!(
        said,
        [
            "TiSpark telemetry: nothing was sent, because the report could not be written to the \
          log first (the JVM's logger did not take the line: logging failed or has been shut \
          down)."
        ],
        "{}",
        run.output
    );
}

/// Runs `cmd` as the other local user, `nobody` (uid 65534).
fn as_nobody(script: &str) {
    assert_eq!(
        std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .ok(),
        Some(0),
        "this test runs as root, to act as a second user (setpriv, uid 65534)"
    );
    let status = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .status()
        .expect("setpriv (util-linux) runs a command as another user");
    assert!(status.success(), "as nobody: {script}");
}

#[test]
fn a_state_directory_prepared_by_another_user_is_refused_and_its_links_are_not_followed() {
    use std::os::unix::fs::PermissionsExt;
    let c = Collector::start(Behaviour::Accept);
    // A shared, sticky, world-writable parent, as /tmp is.
    let shared = support::temp_dir("shared-tmp");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = support::temp_dir("victim").join("victim");
    std::fs::write(&victim, "the driver user's file\n").unwrap();
    let state = shared.join("state");
    // The other user takes the state directory's name first and plants links.
    as_nobody(&format!(
        "mkdir -m 777 '{s}' && ln -s '{v}' '{s}/track_id' && ln -s '{v}' '{s}/audit.jsonl' \
         && ln -s '{v}' '{s}/.audit.lock'",
        s = state.display(),
        v = victim.display()
    ));
    let Some(run) = report_in_jvm(&conf(c.url(REPORT_PATH), &state), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("belongs to uid 65534, not to this user (uid 0)");
    let received = c.wait_for(1, Duration::from_secs(5));
    assert_eq!(track_id(&received[0].body), format!("appid_{APP_ID}"));
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "the driver user's file\n"
    );
    assert_eq!(
        std::fs::read_dir(&state).unwrap().count(),
        3,
        "nothing added"
    );
}

#[test]
fn the_command_line_preview_survives_a_dangling_track_id_link() {
    let state = support::temp_dir("cli-dangling");
    std::os::unix::fs::symlink("/nonexistent-nfs/track_id", state.join("track_id")).unwrap();
    let conf = support::temp_dir("cli-conf").join("spark-defaults.conf");
    std::fs::write(
        &conf,
        format!("spark.tispark.telemetry.state_dir {}\n", state.display()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tispark-telemetry"))
        .args(["preview", "--conf"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let stored = std::fs::read_to_string(state.join("track_id")).unwrap();
    assert_eq!(track_id(printed.trim_end()), stored);
}
