//! The command-line tool, run as built, against a real spark-defaults.conf
//! (comments, blank lines, `key value`, `key=value` and `key:value` lines) in
//! a fresh directory, with a clean environment: what an operator sees on
//! stdout, stderr, in the exit code and in the files.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::collector::{Behaviour, Collector};
use tispark_telemetry::conf::Snapshot;
use tispark_telemetry::pipeline::{self, Destination, ReportInput};
use tispark_telemetry::report::Report;

const BIN: &str = env!("CARGO_BIN_EXE_tispark-telemetry");
const ENABLE: &str = "spark.tispark.telemetry.enable";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// Failed with `code` and exactly one line on stderr.
    fn assert_failed(&self, code: i32) {
        assert_eq!(
            self.code, code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert_eq!(self.stderr.lines().count(), 1, "{}", self.stderr);
        assert!(
            self.stderr.starts_with("tispark-telemetry: error: "),
            "{}",
            self.stderr
        );
    }

    fn assert_ok(&self) {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
    }
}

/// A host: a home, a state directory and a Spark configuration file, all in a fresh directory.
struct Host {
    root: PathBuf,
    conf: PathBuf,
    state: PathBuf,
}

impl Host {
    fn new(name: &str) -> Host {
        let root = support::temp_dir(&format!("cli-{name}"));
        Host {
            conf: root.join("conf/spark-defaults.conf"),
            state: root.join("state"),
            root,
        }
    }

    /// The operator's file, with `switch` (a line or nothing) before the last comment.
    fn write_conf(&self, switch: &str, url: &str) -> String {
        let text = format!(
            "\
# Default system properties included when running spark-submit.
# This is useful for setting default environmental settings.

# Example:
# spark.master                     spark://master:7077
spark.master                     local[2]
spark.eventLog.enabled=true
spark.serializer:org.apache.spark.serializer.KryoSerializer
   spark.driver.memory    5g
! a comment in the other style

spark.tispark.isolation_read_engines=tiflash
spark.tispark.index.scan_concurrency   12
spark.tispark.tikv.jks_key_password = not-to-be-sent
spark.tispark.telemetry.url {url}
spark.tispark.telemetry.state_dir={state}
{switch}# the end
",
            state = self.state.display()
        );
        std::fs::create_dir_all(self.conf.parent().unwrap()).unwrap();
        std::fs::write(&self.conf, &text).unwrap();
        text
    }

    /// What Spark reads from that file, as the driver would be given it.
    fn spark_conf(&self, url: &str, enable: &str) -> HashMap<String, String> {
        [
            ("spark.master", "local[2]"),
            ("spark.eventLog.enabled", "true"),
            (
                "spark.serializer",
                "org.apache.spark.serializer.KryoSerializer",
            ),
            ("spark.driver.memory", "5g"),
            ("spark.tispark.isolation_read_engines", "tiflash"),
            ("spark.tispark.index.scan_concurrency", "12"),
            ("spark.tispark.tikv.jks_key_password", "not-to-be-sent"),
            ("spark.tispark.telemetry.url", url),
            (
                "spark.tispark.telemetry.state_dir",
                &self.state.display().to_string(),
            ),
            (ENABLE, enable),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn conf_text(&self) -> String {
        std::fs::read_to_string(&self.conf).unwrap()
    }

    /// Runs the tool with `--conf` this host's file, HOME in this host, and only `env` besides.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let conf = self.conf.display().to_string();
        let mut all = vec!["--conf", conf.as_str()];
        all.extend_from_slice(args);
        let home = self.home();
        let mut vars = vec![("HOME", home.as_str())];
        vars.extend_from_slice(env);
        run_bare(&all, &vars)
    }

    fn home(&self) -> String {
        self.root.join("home").display().to_string()
    }
}

/// Runs the tool with exactly these arguments and environment variables.
fn run_bare(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run tispark-telemetry");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const NOWHERE: &str = "http://127.0.0.1:9/api/v1/tispark/report";

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ---- enable / disable ----

#[test]
fn enable_rewrites_a_key_value_switch_in_place_and_keeps_every_other_byte() {
    let host = Host::new("enable-inplace");
    let before = host.write_conf("spark.tispark.telemetry.enable   false\n", NOWHERE);
    let run = host.run(&["enable"], &[]);
    run.assert_ok();
    assert!(run.stdout.contains("line 17 rewritten"), "{}", run.stdout);
    let expected = before.replace(
        "spark.tispark.telemetry.enable   false\n",
        "spark.tispark.telemetry.enable   true\n",
    );
    assert_eq!(host.conf_text(), expected);

    host.run(&["disable"], &[]).assert_ok();
    assert_eq!(
        host.conf_text(),
        before,
        "disable undoes enable byte for byte"
    );
    assert_eq!(
        files_in(host.conf.parent().unwrap()),
        ["spark-defaults.conf"]
    );
}

#[test]
fn enable_and_disable_rewrite_the_key_equals_and_key_colon_forms_in_place() {
    for (off, on) in [
        (
            "spark.tispark.telemetry.enable=false\n",
            "spark.tispark.telemetry.enable=true\n",
        ),
        (
            "spark.tispark.telemetry.enable: yes\n",
            "spark.tispark.telemetry.enable: true\n",
        ),
    ] {
        let host = Host::new("enable-forms");
        let before = host.write_conf(off, NOWHERE);
        host.run(&["enable"], &[]).assert_ok();
        assert_eq!(host.conf_text(), before.replace(off, on));
        host.run(&["disable"], &[]).assert_ok();
        let off_again = on.replace("true", "false");
        assert_eq!(host.conf_text(), before.replace(off, &off_again));
    }
}

#[test]
fn enable_adds_the_switch_at_the_end_when_it_is_absent() {
    let host = Host::new("enable-append");
    let before = host.write_conf("", NOWHERE);
    let run = host.run(&["enable"], &[]);
    run.assert_ok();
    assert!(run.stdout.contains("added as line 18"), "{}", run.stdout);
    assert_eq!(
        host.conf_text(),
        format!("{before}spark.tispark.telemetry.enable true\n")
    );
    let status = host.run(&["status", "--json"], &[]).json();
    assert_eq!(status["enabled"], true);
}

#[test]
fn enable_on_a_file_without_a_final_newline_adds_one_first() {
    let host = Host::new("enable-no-newline");
    std::fs::create_dir_all(host.conf.parent().unwrap()).unwrap();
    std::fs::write(&host.conf, "spark.master local[2]").unwrap();
    host.run(&["enable"], &[]).assert_ok();
    assert_eq!(
        host.conf_text(),
        "spark.master local[2]\nspark.tispark.telemetry.enable true\n"
    );
}

#[test]
fn enable_creates_a_missing_file_and_its_directory() {
    let host = Host::new("enable-create");
    assert!(!host.conf.parent().unwrap().exists());
    let run = host.run(&["enable"], &[]);
    run.assert_ok();
    assert!(run.stdout.contains("a new file"), "{}", run.stdout);
    assert_eq!(host.conf_text(), "spark.tispark.telemetry.enable true\n");
}

#[test]
fn disable_on_a_missing_file_writes_the_switch_off_explicitly() {
    let host = Host::new("disable-create");
    host.run(&["disable"], &[]).assert_ok();
    assert_eq!(host.conf_text(), "spark.tispark.telemetry.enable false\n");
    let status = host.run(&["status", "--json"], &[]).json();
    assert_eq!(status["enabled"], false);
    assert_eq!(status["enable_value"], "false");
}

#[test]
fn enable_twice_leaves_the_file_as_it_is() {
    let host = Host::new("enable-twice");
    host.write_conf("spark.tispark.telemetry.enable TRUE\n", NOWHERE);
    let before = std::fs::metadata(&host.conf).unwrap().modified().unwrap();
    let text = host.conf_text();
    let run = host.run(&["enable"], &[]);
    run.assert_ok();
    assert!(run.stdout.contains("already true"), "{}", run.stdout);
    assert_eq!(host.conf_text(), text);
    assert_eq!(
        std::fs::metadata(&host.conf).unwrap().modified().unwrap(),
        before
    );
}

#[cfg(unix)]
#[test]
fn enable_through_a_symbolic_link_rewrites_the_file_it_points_to() {
    let host = Host::new("enable-symlink");
    let real = host.root.join("real.conf");
    std::fs::write(&real, "spark.master local[2]\n").unwrap();
    std::fs::create_dir_all(host.conf.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&real, &host.conf).unwrap();
    host.run(&["enable"], &[]).assert_ok();
    assert!(std::fs::symlink_metadata(&host.conf)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(&real).unwrap(),
        "spark.master local[2]\nspark.tispark.telemetry.enable true\n"
    );
}

#[test]
fn enable_says_when_an_environment_variable_keeps_telemetry_off() {
    let host = Host::new("enable-env");
    host.write_conf("", NOWHERE);
    let run = host.run(&["enable"], &[("DO_NOT_TRACK", "1")]);
    run.assert_ok();
    assert!(
        run.stdout.contains("stays off") && run.stdout.contains("DO_NOT_TRACK"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_file_that_cannot_be_parsed_safely_is_refused_and_left_untouched() {
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "not UTF-8",
            b"spark.master local[2]\nspark.app.name caf\xe9\nspark.tispark.telemetry.enable false\n",
            "line 2 is not UTF-8",
        ),
        (
            "defined twice",
            b"spark.tispark.telemetry.enable false\n# later\nspark.tispark.telemetry.enable=true\n",
            "lines 1, 3",
        ),
        (
            "a dangling continuation",
            b"spark.master local[2]\nspark.driver.extraJavaOptions -Da=b \\\n",
            "line 2, the last, ends with a line continuation",
        ),
        (
            "a malformed unicode escape",
            b"spark.app.name \\u00zz\n",
            "malformed \\uXXXX escape",
        ),
    ];
    for (what, bytes, why) in cases {
        for command in ["enable", "disable"] {
            let host = Host::new("refuse");
            std::fs::create_dir_all(host.conf.parent().unwrap()).unwrap();
            std::fs::write(&host.conf, bytes).unwrap();
            let run = host.run(&[command], &[]);
            run.assert_failed(3);
            assert!(run.stderr.contains(why), "{what}: {}", run.stderr);
            assert!(
                run.stderr.contains("left as it is"),
                "{what}: {}",
                run.stderr
            );
            assert_eq!(std::fs::read(&host.conf).unwrap(), bytes, "{what}");
            assert_eq!(
                files_in(host.conf.parent().unwrap()),
                ["spark-defaults.conf"],
                "{what}: no temporary file is left"
            );
        }
    }
}

#[test]
fn a_comment_after_an_empty_continuation_is_refused_not_read_as_false() {
    // Issue 8: Java 9 and later read the `!` line as a comment, so Spark reads
    // the switch on line 4 (true); Java 8, as this tool did, reads line 4 as
    // part of line 3, so Spark 3.x on Java 8 reads false. `disable` said
    // "already false"; now nobody guesses.
    let host = Host::new("empty-continuation");
    let text = "spark.tispark.telemetry.enable false\n\\\n! note \\\nspark.tispark.telemetry.enable true\n";
    std::fs::create_dir_all(host.conf.parent().unwrap()).unwrap();
    std::fs::write(&host.conf, text).unwrap();
    let why = "line 3 is read differently by Java 8 and by later Java (a `\\` continuation next \
               to a comment), and Spark may run on either; remove that `\\` or the comment";
    for command in ["status", "disable", "enable"] {
        let run = host.run(&[command], &[]);
        run.assert_failed(3);
        assert_eq!(
            run.stderr,
            format!(
                "tispark-telemetry: error: {} cannot be parsed safely, so it is left as it is: \
                 {why}\n",
                host.conf.display()
            ),
            "{command}"
        );
        assert_eq!(run.stdout, "", "{command}");
    }
    assert_eq!(host.conf_text(), text);
}

// ---- status ----

#[test]
fn status_says_off_by_default_and_creates_nothing() {
    let host = Host::new("status-default");
    host.write_conf("", NOWHERE);
    let run = host.run(&["status"], &[]);
    run.assert_ok();
    assert!(
        run.stdout
            .contains("Telemetry:     off (spark.tispark.telemetry.enable is unset or false)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Track id:      none yet"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Last report:   none recorded"),
        "{}",
        run.stdout
    );
    assert!(!host.state.exists(), "status must not create state");
}

#[test]
fn status_explains_an_invalid_switch_value() {
    let host = Host::new("status-invalid");
    host.write_conf("spark.tispark.telemetry.enable yes\n", NOWHERE);
    let status = host.run(&["status", "--json"], &[]).json();
    assert_eq!(status["enabled"], false);
    assert_eq!(status["enable_value"], "yes");
    assert!(
        status["reason"]
            .as_str()
            .unwrap()
            .contains("is not true or false"),
        "{status}"
    );
}

/// An error is one line on stderr whatever a path or value in it holds: its
/// control characters are escaped, as in the driver's log (a terminal would
/// otherwise obey an escape sequence, and a carriage return hide the start).
#[test]
fn errors_on_stderr_escape_control_characters() {
    let dir = support::temp_dir("stderr-escaped");
    let db = format!("{}/x\u{1b}[31my\rz\nw/reports.db", dir.display());
    let run = run_bare(&["fleet", "--db", &db], &[]);
    run.assert_failed(1);
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stderr.contains('\r'),
        "{:?}",
        run.stderr
    );
    let shown = format!(
        "tispark-telemetry: error: the database {}/x\\u{{1b}}[31my\\rz\\nw/reports.db cannot be used",
        dir.display()
    );
    assert!(run.stderr.starts_with(&shown), "{:?}", run.stderr);
}

/// A warning of the library reaches stderr as one line of the tool's: here a
/// state directory that cannot be created (under a regular file).
#[test]
fn preview_says_on_stderr_why_the_state_directory_cannot_be_used() {
    let host = Host::new("preview-warns");
    let file = host.root.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let state = file.join("state");
    host.write_conf(
        &format!(
            "spark.tispark.telemetry.enable true\nspark.tispark.telemetry.state_dir={}\n",
            state.display()
        ),
        NOWHERE,
    );
    let run = host.run(&["preview"], &[]);
    run.assert_ok();
    let id = run.json()["track_id"].as_str().unwrap().to_string();
    assert_eq!(
        run.stderr,
        format!(
            "tispark-telemetry: warning: Telemetry uses the track id \"{id}\" because the \
             directory \"{}\" cannot be created (Not a directory (os error 20)): neither the \
             track id nor the audit trail can be kept there.\n",
            state.display()
        )
    );
}

/// `enable` names the file it changed escaped, as a log line would.
#[test]
fn enable_names_the_file_escaped() {
    let dir = support::temp_dir("enable-escaped");
    let conf = dir.join("sp\u{1b}[31mark\r.conf");
    let run = run_bare(&["--conf", conf.to_str().unwrap(), "enable"], &[]);
    run.assert_ok();
    assert_eq!(
        run.stdout,
        format!(
            "Set spark.tispark.telemetry.enable true in {}/sp\\u{{1b}}[31mark\\r.conf (a new file).\n",
            dir.display()
        )
    );
    assert!(conf.exists());
}

/// `status` shows each fact on one line, escaped: a state directory named
/// with an escape sequence and a carriage return in the configuration.
#[test]
fn status_text_escapes_control_characters() {
    let host = Host::new("status-escaped");
    host.write_conf(
        &format!(
            "spark.tispark.telemetry.state_dir={}/st\\u001b[31mate\\rx\n",
            host.root.display()
        ),
        NOWHERE,
    );
    let run = host.run(&["status"], &[]);
    run.assert_ok();
    assert!(
        run.stdout
            .starts_with(&format!("Configuration: {}\n", host.conf.display())),
        "{}",
        run.stdout
    );
    let missing = Host::new("status-missing");
    let shown = missing.run(&["status"], &[]).stdout;
    assert!(
        shown.starts_with(&format!(
            "Configuration: {} (does not exist: nothing in it is set)\n",
            missing.conf.display()
        )),
        "{shown}"
    );
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stdout.contains('\r'),
        "{:?}",
        run.stdout
    );
    let state = format!("{}/st\\u{{1b}}[31mate\\rx", host.root.display());
    assert!(
        run.stdout.contains(&format!("\nState:         {state}\n")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("\nAudit trail:   {state}/audit.jsonl (")),
        "{}",
        run.stdout
    );
}

#[test]
fn status_json_reflects_the_environment_overrides() {
    let host = Host::new("status-env");
    host.write_conf("spark.tispark.telemetry.enable=true\n", NOWHERE);
    let on = host.run(&["status", "--json"], &[]).json();
    assert_eq!(on["enabled"], true, "{on}");
    assert_eq!(on["env_override"], serde_json::Value::Null);

    for var in ["TISPARK_TELEMETRY_DISABLED", "DO_NOT_TRACK"] {
        let run = host.run(&["status", "--json"], &[(var, "1")]);
        run.assert_ok();
        let off = run.json();
        assert_eq!(off["enabled"], false, "{var}: {off}");
        assert_eq!(off["env_override"], var);
        assert_eq!(off["enable_value"], "true");
        let reason = off["reason"].as_str().unwrap();
        assert!(
            reason.contains(var) && reason.contains("overrides"),
            "{reason}"
        );

        let text = host.run(&["status"], &[(var, "1")]).stdout;
        assert!(
            text.contains(&format!("the environment variable {var} is set")),
            "{text}"
        );
    }
    let zero = host
        .run(&["status", "--json"], &[("DO_NOT_TRACK", "0")])
        .json();
    assert_eq!(zero["enabled"], true, "DO_NOT_TRACK=0 does not disable");
}

#[test]
fn status_json_has_every_documented_field() {
    let host = Host::new("status-fields");
    host.write_conf("", "https://user:secret@collector.example/report?token=t");
    let status = host.run(&["status", "--json"], &[]).json();
    let mut keys: Vec<&str> = status
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "audit_error",
            "audit_file",
            "conf_file",
            "conf_file_exists",
            "enable_value",
            "enabled",
            "endpoint",
            "endpoint_error",
            "env_override",
            "last_report",
            "reason",
            "reports_recorded",
            "state_dir",
            "state_dir_note",
            "track_id"
        ]
    );
    assert_eq!(status["endpoint"], "https://collector.example/report");
    assert_eq!(status["conf_file"], host.conf.display().to_string());
    assert_eq!(status["state_dir"], host.state.display().to_string());
    assert_eq!(
        status["audit_file"],
        host.state.join("audit.jsonl").display().to_string()
    );
}

#[test]
fn status_says_when_the_endpoint_is_unusable() {
    let host = Host::new("status-bad-url");
    host.write_conf("spark.tispark.telemetry.enable true\n", "ftp://x/y");
    let status = host.run(&["status", "--json"], &[]).json();
    assert_eq!(status["enabled"], false);
    assert!(
        status["endpoint_error"]
            .as_str()
            .unwrap()
            .contains("telemetry URL"),
        "{status}"
    );
}

#[test]
fn status_shows_the_last_report_from_the_audit_trail() {
    let ok = Collector::start(Behaviour::Accept);
    let host = Host::new("status-last");
    let url = ok.url("/api/v1/tispark/report");
    host.write_conf("spark.tispark.telemetry.enable true\n", &url);
    deliver_in_process(&host.spark_conf(&url, "true"));

    let status = host.run(&["status", "--json"], &[]).json();
    let last = &status["last_report"];
    assert_eq!(last["outcome"], "sent", "{status}");
    assert_eq!(last["http_status"], 200);
    assert_eq!(last["destination"], url);
    assert!(last["time"].is_u64() && last["time_utc"].as_str().unwrap().ends_with('Z'));
    assert_eq!(status["reports_recorded"], 1);
    assert!(status["track_id"].as_str().unwrap().starts_with("trkid_"));

    // Then a failed one: status shows the newest, with its reason.
    let refusing = Collector::start(Behaviour::Status(503));
    let url = refusing.url("/r");
    deliver_in_process(&host.spark_conf(&url, "true"));
    let text = host.run(&["status"], &[]).stdout;
    let line = text
        .lines()
        .find(|l| l.starts_with("Last report:"))
        .unwrap();
    assert!(
        line.contains(&format!("to {url}: failed:")) && line.contains("503"),
        "{text}"
    );
    assert!(text.contains("(2 of at most 10 reports kept)"), "{text}");
}

#[test]
fn status_reads_a_corrupt_audit_trail_without_failing() {
    let host = Host::new("status-corrupt");
    host.write_conf("", NOWHERE);
    std::fs::create_dir_all(&host.state).unwrap();
    std::fs::write(host.state.join("audit.jsonl"), "garbage\n").unwrap();
    let run = host.run(&["status", "--json"], &[]);
    run.assert_ok();
    let status = run.json();
    assert!(
        status["audit_error"]
            .as_str()
            .unwrap()
            .contains("not an audit entry"),
        "{status}"
    );
    assert_eq!(status["last_report"], serde_json::Value::Null);
}

// ---- reset ----

#[test]
fn reset_prints_a_new_track_id_that_status_then_shows() {
    let host = Host::new("reset");
    host.write_conf("", NOWHERE);
    let first = host.run(&["reset"], &[]);
    first.assert_ok();
    let id = track_id_in(&first.stdout);
    let second = track_id_in(&host.run(&["reset"], &[]).stdout);
    assert_ne!(id, second);
    let status = host.run(&["status", "--json"], &[]).json();
    assert_eq!(status["track_id"], second);
    assert_eq!(
        std::fs::read_to_string(host.state.join("track_id")).unwrap(),
        second
    );
}

#[test]
fn reset_uses_the_state_directory_of_the_environment_when_the_file_names_none() {
    let host = Host::new("reset-env");
    std::fs::create_dir_all(host.conf.parent().unwrap()).unwrap();
    std::fs::write(&host.conf, "spark.master local[2]\n").unwrap();
    let elsewhere = host.root.join("env-state");
    let run = host.run(
        &["reset"],
        &[(
            "TISPARK_TELEMETRY_STATE_DIR",
            &elsewhere.display().to_string(),
        )],
    );
    run.assert_ok();
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("track_id")).unwrap(),
        track_id_in(&run.stdout)
    );
}

fn track_id_in(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("trkid_"))
        .unwrap_or_else(|| panic!("no track id in {text:?}"))
        .trim_end_matches(',')
        .to_string()
}

// ---- preview ----

/// Sends one report through the library, as the driver does, in this process.
fn deliver_in_process(conf: &HashMap<String, String>) {
    let mut source = conf.clone();
    let snapshot = Snapshot::read(&mut source).unwrap();
    let plan = Destination::new(&snapshot).unwrap();
    let request = ReportInput {
        snapshot,
        spark_version: Some("3.5.7".into()),
        tispark_version: Some("3.1.0".into()),
    };
    pipeline::report_and_deliver(&request, &plan);
}

#[test]
fn preview_prints_exactly_the_body_the_collector_receives() {
    let collector = Collector::start(Behaviour::Accept);
    let host = Host::new("preview-equal");
    let url = collector.url("/api/v1/tispark/report");
    host.write_conf("spark.tispark.telemetry.enable true\n", &url);
    let run = host.run(
        &[
            "preview",
            "--spark-version",
            "3.5.7",
            "--tispark-version",
            "3.1.0",
        ],
        &[],
    );
    run.assert_ok();
    assert_eq!(run.stderr, "");
    assert_eq!(run.stdout.lines().count(), 1);
    let previewed = run.stdout.trim_end();
    support::assert_schema(previewed);

    deliver_in_process(&host.spark_conf(&url, "true"));
    let received = collector.wait_for(1, Duration::from_secs(5));
    assert_eq!(received.len(), 1);
    let sent = &received[0].body;

    // Two facts are of the moment they are read: the time, and the memory
    // available. With those two taken from what was sent, the preview must
    // serialize to the very same bytes.
    let sent_report: Report = serde_json::from_str(sent).unwrap();
    let mut preview: Report = serde_json::from_str(previewed).unwrap();
    assert!(sent_report.time >= preview.time);
    let total = |memory: &str| memory.rsplit('/').next().unwrap().to_string();
    assert_eq!(
        total(&preview.hardware.memory),
        total(&sent_report.hardware.memory)
    );
    preview.time = sent_report.time;
    preview.hardware.memory = sent_report.hardware.memory.clone();
    assert_eq!(&preview.to_json(), sent);
    // That includes the host's track id, kept between the preview and the report.
    assert!(previewed.contains(&sent_report.track_id));
}

#[test]
fn preview_sends_nothing_and_records_nothing() {
    let collector = Collector::start(Behaviour::Accept);
    let host = Host::new("preview-quiet");
    host.write_conf(
        "spark.tispark.telemetry.enable true\n",
        &collector.url("/r"),
    );
    host.run(&["preview"], &[]).assert_ok();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(collector.connections(), 0);
    assert!(!host.state.join("audit.jsonl").exists());
    let status = host.run(&["status", "--json"], &[]).json();
    assert_eq!(status["last_report"], serde_json::Value::Null);
    // The track id it showed is the one the first report will carry.
    assert!(status["track_id"].as_str().unwrap().starts_with("trkid_"));
}

#[test]
fn preview_shows_only_the_reported_keys() {
    let host = Host::new("preview-keys");
    host.write_conf("spark.tispark.telemetry.enable true\n", NOWHERE);
    let run = host.run(&["preview"], &[]);
    run.assert_ok();
    for secret in [
        "not-to-be-sent",
        "jks",
        "spark.master",
        "state_dir",
        "127.0.0.1",
    ] {
        assert!(
            !run.stdout.contains(secret),
            "{secret} leaked: {}",
            run.stdout
        );
    }
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        v["configuration"]["spark.tispark.isolation_read_engines"],
        "tiflash"
    );
    assert_eq!(
        v["configuration"]["spark.tispark.index.scan_concurrency"],
        12
    );
}

#[test]
fn preview_of_a_configuration_that_is_off_says_so_on_stderr() {
    let host = Host::new("preview-off");
    host.write_conf("", NOWHERE);
    let run = host.run(&["preview"], &[("DO_NOT_TRACK", "1")]);
    run.assert_ok();
    support::assert_schema(run.stdout.trim_end());
    assert!(
        run.stderr.contains("DO_NOT_TRACK") && run.stderr.contains("if it were on"),
        "{}",
        run.stderr
    );
}

#[test]
fn preview_takes_the_spark_version_from_spark_home() {
    let host = Host::new("preview-spark-home");
    host.write_conf("", NOWHERE);
    let spark_home = host.root.join("spark");
    std::fs::create_dir_all(spark_home.join("jars")).unwrap();
    for jar in ["spark-sql_2.12-3.5.7.jar", "spark-core_2.12-3.4.2.jar"] {
        std::fs::write(spark_home.join("jars").join(jar), b"").unwrap();
    }
    let run = host.run(
        &["preview"],
        &[("SPARK_HOME", &spark_home.display().to_string())],
    );
    run.assert_ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["instance"]["spark_version"], "3.4.2");
    assert_eq!(v["instance"]["tispark_version"], "UNKNOWN");
}

#[test]
fn preview_of_an_unusable_endpoint_fails_with_the_reason() {
    let host = Host::new("preview-bad-url");
    host.write_conf("spark.tispark.telemetry.enable true\n", "gopher://x");
    let run = host.run(&["preview"], &[]);
    run.assert_failed(1);
    assert!(
        run.stderr.contains("nothing would be sent"),
        "{}",
        run.stderr
    );
}

// ---- the file, help and errors ----

#[test]
fn the_default_file_is_spark_conf_dir_then_spark_home() {
    let host = Host::new("default-file");
    let conf_dir = host.root.join("conf-dir");
    let spark_home = host.root.join("spark-home");
    let home = host.home();
    let conf_dir_s = conf_dir.display().to_string();
    let spark_home_s = spark_home.display().to_string();

    let run = run_bare(
        &["enable"],
        &[
            ("HOME", &home),
            ("SPARK_CONF_DIR", &conf_dir_s),
            ("SPARK_HOME", &spark_home_s),
        ],
    );
    run.assert_ok();
    assert!(conf_dir.join("spark-defaults.conf").is_file());
    assert!(!spark_home.exists());

    run_bare(
        &["enable"],
        &[("HOME", &home), ("SPARK_HOME", &spark_home_s)],
    )
    .assert_ok();
    assert!(spark_home.join("conf/spark-defaults.conf").is_file());

    let run = run_bare(&["enable"], &[("HOME", &home)]);
    run.assert_failed(2);
    assert!(
        run.stderr.contains("--conf") && run.stderr.contains("SPARK_CONF_DIR"),
        "{}",
        run.stderr
    );
}

#[test]
fn status_without_any_configuration_file_says_off_by_default_and_where_it_looked() {
    let host = Host::new("status-no-conf");
    let home = host.home();
    let run = run_bare(&["status"], &[("HOME", &home)]);
    run.assert_ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "Configuration: none (looked for --conf, $SPARK_CONF_DIR/spark-defaults.conf, \
             $SPARK_HOME/conf/spark-defaults.conf: none is set)",
            "Telemetry:     off by default: no Spark configuration file sets \
             spark.tispark.telemetry.enable (none is named; point this tool at one with \
             --conf PATH, or set SPARK_CONF_DIR or SPARK_HOME)",
        ],
        "{}",
        run.stdout
    );
    assert_eq!(
        lines[3],
        format!("State:         {home}/.local/state/tispark-telemetry")
    );
    assert_eq!(run.stderr, "");
    let json = run_bare(&["status", "--json"], &[("HOME", &home)]).json();
    assert_eq!(json["conf_file"], serde_json::Value::Null);
    assert_eq!(json["enabled"], false);
    assert!(
        !host.root.join("home").exists(),
        "status must not create state"
    );
}

#[test]
fn reset_without_any_configuration_file_uses_the_default_state_directory() {
    let host = Host::new("reset-no-conf");
    let home = host.home();
    let run = run_bare(&["reset"], &[("HOME", &home)]);
    run.assert_ok();
    let dir = format!("{home}/.local/state/tispark-telemetry");
    let id = track_id_in(&run.stdout);
    assert_eq!(
        run.stdout,
        format!("New track id {id}, stored in {dir}; later reports carry it.\n")
    );
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/track_id")).unwrap(),
        id
    );

    let xdg = host.root.join("xdg").display().to_string();
    let run = run_bare(&["reset"], &[("HOME", &home), ("XDG_STATE_HOME", &xdg)]);
    run.assert_ok();
    let id = track_id_in(&run.stdout);
    assert_eq!(
        std::fs::read_to_string(format!("{xdg}/tispark-telemetry/track_id")).unwrap(),
        id
    );
}

#[test]
fn a_mistyped_command_or_option_gets_a_suggestion() {
    let run = run_bare(&["stauts"], &[]);
    run.assert_failed(2);
    assert_eq!(
        run.stderr,
        "tispark-telemetry: error: unrecognized subcommand 'stauts'; did you mean 'status'? \
         (see `tispark-telemetry --help`)\n"
    );
    let run = run_bare(&["status", "--jsno"], &[]);
    run.assert_failed(2);
    assert_eq!(
        run.stderr,
        "tispark-telemetry: error: unexpected argument '--jsno' found; did you mean '--json'? \
         (see `tispark-telemetry --help`)\n"
    );
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let run = run_bare(&["completions", shell], &[]);
        run.assert_ok();
        assert_eq!(run.stderr, "");
        for command in [
            "status",
            "enable",
            "disable",
            "reset",
            "preview",
            "completions",
        ] {
            assert!(run.stdout.contains(command), "{shell}: {command}");
        }
        let conf = if shell == "fish" { "-l conf" } else { "--conf" };
        assert!(run.stdout.contains(conf), "{shell}");
    }
    let bash = run_bare(&["completions", "bash"], &[]).stdout;
    assert!(
        bash.contains("complete -F _tispark__telemetry")
            && bash.ends_with("tispark-telemetry\nfi\n"),
        "{bash}"
    );
    let run = run_bare(&["completions", "tcsh"], &[]);
    run.assert_failed(2);
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["help"],
        &["status", "--help"],
        &["enable", "--help"],
        &["disable", "-h"],
        &["reset", "--help"],
        &["preview", "--help"],
        &["help", "status"],
    ] {
        let run = run_bare(args, &[]);
        run.assert_ok();
        assert!(run.stdout.contains("Usage: tispark-telemetry"), "{args:?}");
        let named = args.iter().find(|a| !a.starts_with('-') && **a != "help");
        if let Some(command) = named {
            assert!(
                run.stdout.contains(&format!("] {command}")),
                "{args:?}: {}",
                run.stdout
            );
        }
    }
    let version = run_bare(&["--version"], &[]);
    version.assert_ok();
    assert!(version.stdout.starts_with("tispark-telemetry "));
}

#[test]
fn wrong_usage_is_one_line_and_exit_code_2() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["status", "--yaml"],
        &["enable", "now"],
        &["--conf"],
    ] {
        let run = run_bare(args, &[("HOME", "/nonexistent")]);
        run.assert_failed(2);
        assert!(run.stderr.contains("--help"), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "");
    }
}

#[test]
fn an_unreadable_file_is_one_line_and_exit_code_1() {
    let host = Host::new("unreadable");
    std::fs::create_dir_all(&host.conf).unwrap(); // a directory where the file should be
    let run = host.run(&["status"], &[]);
    run.assert_failed(1);
    assert!(run.stderr.contains("cannot be read"), "{}", run.stderr);
}

// ---- a private file stays private; what is not a plain writable file is refused ----

const NOBODY: u32 = 65534;

/// The tests below act as root and as a second user; neither is ever skipped.
fn require_root() {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .expect("/proc/self: these tests need Linux")
        .uid();
    assert_eq!(
        uid, 0,
        "this test must run as root: it needs a second user (nobody, uid 65534) and chown"
    );
    let setpriv = Command::new("setpriv").arg("--version").output();
    assert!(
        setpriv.map(|o| o.status.success()).unwrap_or(false),
        "this test needs setpriv (util-linux) to act as the user nobody"
    );
}

/// `program args…` as the user nobody (uid and gid 65534, no other groups).
fn as_nobody(program: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", program]);
    cmd
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// (uid, gid, mode) of the file itself.
fn owner_and_mode(path: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// Runs `cmd` (its environment cleared but for `env`) and fails the test if it takes
/// longer than `limit`: a tool that blocks on a FIFO or reads /dev/zero forever
/// must fail the test, not hang it. Its memory is capped for the same reason.
fn run_within(mut cmd: Command, env: &[(&str, &str)], limit: Duration) -> Run {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// The tool with `args`, its address space capped at 512 MiB, within 10 s.
fn run_bounded(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "ulimit -v 524288 && exec \"$0\" \"$@\"", BIN])
        .args(args);
    run_within(cmd, env, Duration::from_secs(10))
}

#[test]
fn a_second_user_polling_the_directory_never_reads_a_private_file_being_rewritten() {
    require_root();
    let host = Host::new("private-poll");
    let dir = host.conf.parent().unwrap().to_path_buf();
    let secret = "s3cr3t-d41d8cd98f00b204";
    host.write_conf("", NOWHERE);
    let text = format!("{}spark.ssl.keyStorePassword {secret}\n", host.conf_text());
    std::fs::write(&host.conf, &text).unwrap();
    chmod(&host.conf, 0o600);
    chmod(&host.root, 0o755);
    chmod(&dir, 0o755);
    // Proof that the reader runs and can read what it is allowed to.
    std::fs::write(dir.join("public.txt"), "public-marker\n").unwrap();
    chmod(&dir.join("public.txt"), 0o644);
    let stop = host.root.join("stop");

    // As nobody: read every file in the directory (dot files included), over
    // and over, printing each line it could read the first time it sees it.
    let script = r#"
        shopt -s dotglob nullglob
        declare -A seen
        while [ ! -e "$STOP" ]; do
          for f in "$DIR"/*; do
            while IFS= read -r line || [ -n "$line" ]; do
              if [ -n "$line" ] && [ -z "${seen[$line]}" ]; then
                seen[$line]=1
                printf '%s\n' "$line"
              fi
            done 2>/dev/null < "$f"
          done
        done
    "#;
    let mut reader = as_nobody("bash");
    reader
        .args(["-c", script])
        .env_clear()
        .env("DIR", &dir)
        .env("STOP", &stop)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut reader = reader.spawn().expect("start bash as nobody");
    let out = reader.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let collected = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let mut seen = seen.lock().unwrap();
                seen.push_str(&line);
                seen.push('\n');
            }
        })
    };
    // The rewrites start once the reader is seen reading.
    let started = std::time::Instant::now();
    while !seen.lock().unwrap().contains("public-marker") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the reader (bash as nobody) read nothing, so it would prove nothing"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    for i in 0..100 {
        let command = if i % 2 == 0 { "enable" } else { "disable" };
        host.run(&[command], &[]).assert_ok();
    }
    std::fs::write(&stop, "").unwrap();
    let stopped = std::time::Instant::now();
    while reader.try_wait().unwrap().is_none() {
        if stopped.elapsed() > Duration::from_secs(10) {
            let _ = reader.kill();
            let _ = reader.wait();
            panic!("the reader did not stop");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    collected.join().unwrap();
    let seen = seen.lock().unwrap().clone();

    assert!(
        seen.lines().any(|l| l == "public-marker"),
        "the reader (nobody) read nothing, so it proves nothing: {seen:?}"
    );
    assert!(
        !seen.contains(secret),
        "nobody read the private file while it was rewritten:\n{seen}"
    );
    assert_eq!(owner_and_mode(&host.conf), (0, 0, 0o600));
    assert_eq!(
        host.conf_text(),
        format!("{text}spark.tispark.telemetry.enable false\n")
    );
    assert_eq!(files_in(&dir), ["public.txt", "spark-defaults.conf"]);
}

#[test]
fn enable_run_by_root_keeps_the_owner_group_and_mode_of_a_users_file() {
    require_root();
    let host = Host::new("keep-owner");
    let before = host.write_conf("spark.tispark.telemetry.enable false\n", NOWHERE);
    std::os::unix::fs::chown(&host.conf, Some(NOBODY), Some(NOBODY)).unwrap();
    chmod(&host.conf, 0o640);
    host.run(&["enable"], &[]).assert_ok();
    assert_eq!(owner_and_mode(&host.conf), (NOBODY, NOBODY, 0o640));
    assert_eq!(
        host.conf_text(),
        before.replace("enable false", "enable true")
    );
    // The owner can still read and rewrite their own file (in their own directory).
    chmod(&host.root, 0o755);
    std::os::unix::fs::chown(host.conf.parent().unwrap(), Some(NOBODY), Some(NOBODY)).unwrap();
    let conf = host.conf.display().to_string();
    let mut disable = as_nobody(BIN);
    disable.args(["--conf", &conf, "disable"]);
    let run = run_within(disable, &[], Duration::from_secs(10));
    run.assert_ok();
    assert_eq!(host.conf_text(), before);
    assert_eq!(owner_and_mode(&host.conf), (NOBODY, NOBODY, 0o640));
    assert_eq!(
        files_in(host.conf.parent().unwrap()),
        ["spark-defaults.conf"]
    );
}

#[test]
fn a_symbolic_link_that_leads_nowhere_is_refused_and_stays_a_link() {
    let host = Host::new("dangling");
    let dir = host.conf.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let missing = host.root.join("missing.conf");
    std::os::unix::fs::symlink(&missing, &host.conf).unwrap();
    for command in ["enable", "disable"] {
        let run = host.run(&[command], &[]);
        run.assert_failed(1);
        assert_eq!(
            run.stderr,
            format!(
                "tispark-telemetry: error: {} is a symbolic link to {}, which leads to no \
                 existing file; create that file or point the link at the configuration file\n",
                host.conf.display(),
                missing.display()
            )
        );
        assert!(std::fs::symlink_metadata(&host.conf)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_link(&host.conf).unwrap(), missing);
        assert!(!missing.exists());
        assert_eq!(files_in(dir), ["spark-defaults.conf"]);
    }

    // A loop: the link leads to a link that leads back.
    let other = dir.join("other.conf");
    std::fs::remove_file(&host.conf).unwrap();
    std::os::unix::fs::symlink(&other, &host.conf).unwrap();
    std::os::unix::fs::symlink(&host.conf, &other).unwrap();
    let run = host.run(&["enable"], &[]);
    run.assert_failed(1);
    assert_eq!(
        run.stderr,
        format!(
            "tispark-telemetry: error: {} is a symbolic link to {}, and the links lead back to \
             themselves (a loop); point it at the configuration file\n",
            host.conf.display(),
            other.display()
        )
    );
    assert_eq!(std::fs::read_link(&host.conf).unwrap(), other);
    assert_eq!(std::fs::read_link(&other).unwrap(), host.conf);
}

#[test]
fn a_file_its_user_may_not_write_is_refused_although_the_directory_is_writable() {
    require_root();
    let host = Host::new("read-only");
    let dir = host.conf.parent().unwrap();
    let before = host.write_conf("spark.tispark.telemetry.enable true\n", NOWHERE);
    chmod(&host.root, 0o755);
    std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    std::os::unix::fs::chown(&host.conf, Some(NOBODY), Some(NOBODY)).unwrap();
    chmod(&host.conf, 0o444);
    let conf = host.conf.display().to_string();
    let disable = || {
        let mut cmd = as_nobody(BIN);
        cmd.args(["--conf", &conf, "disable"]);
        run_within(cmd, &[], Duration::from_secs(10))
    };

    let run = disable();
    run.assert_failed(1);
    assert_eq!(
        run.stderr,
        format!(
            "tispark-telemetry: error: {conf} is not writable by this user, so it is left as it \
             is (Permission denied (os error 13))\n"
        )
    );
    assert_eq!(run.stdout, "");
    assert_eq!(host.conf_text(), before);
    assert_eq!(owner_and_mode(&host.conf), (NOBODY, NOBODY, 0o444));
    assert_eq!(files_in(dir), ["spark-defaults.conf"]);

    // Once the owner makes it writable, the same command works, as that owner.
    chmod(&host.conf, 0o644);
    disable().assert_ok();
    assert_eq!(
        host.conf_text(),
        before.replace("enable true", "enable false")
    );
    assert_eq!(owner_and_mode(&host.conf), (NOBODY, NOBODY, 0o644));
}

#[test]
fn a_user_who_cannot_give_the_copy_the_files_group_leaves_the_file_as_it_is() {
    require_root();
    let host = Host::new("foreign-group");
    let dir = host.conf.parent().unwrap();
    let before = host.write_conf("spark.tispark.telemetry.enable false\n", NOWHERE);
    chmod(&host.root, 0o755);
    std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    // nobody's file, writable by nobody, but in group root, which nobody is not in.
    std::os::unix::fs::chown(&host.conf, Some(NOBODY), Some(0)).unwrap();
    chmod(&host.conf, 0o640);
    let conf = host.conf.display().to_string();
    let mut enable = as_nobody(BIN);
    enable.args(["--conf", &conf, "enable"]);
    let run = run_within(enable, &[], Duration::from_secs(10));
    run.assert_failed(1);
    assert_eq!(
        run.stderr,
        format!(
            "tispark-telemetry: error: {conf} belongs to uid 65534 gid 0, an owner and group \
             this user cannot give its rewritten copy (Operation not permitted (os error 1)), so \
             it is left as it is; run this as root\n"
        )
    );
    assert_eq!(host.conf_text(), before);
    assert_eq!(owner_and_mode(&host.conf), (NOBODY, 0, 0o640));
    assert_eq!(
        files_in(dir),
        ["spark-defaults.conf"],
        "no temporary file is left"
    );
}

#[test]
fn a_fifo_or_a_device_is_refused_at_once_by_every_command() {
    use std::os::unix::fs::FileTypeExt;
    let host = Host::new("fifo");
    let dir = host.conf.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let made = Command::new("mkfifo").arg(&host.conf).status();
    assert!(
        made.map(|s| s.success()).unwrap_or(false),
        "this test needs mkfifo (coreutils)"
    );
    let home = host.home();
    let fifo = host.conf.display().to_string();
    for (path, what) in [
        (fifo.as_str(), "a FIFO"),
        ("/dev/zero", "a character device"),
    ] {
        for command in ["status", "enable", "disable", "preview", "reset"] {
            let run = run_bounded(&["--conf", path, command], &[("HOME", &home)]);
            run.assert_failed(1);
            assert_eq!(
                run.stderr,
                format!(
                    "tispark-telemetry: error: {path} cannot be read: it is {what}, not a \
                     regular file\n"
                ),
                "{command} {path}"
            );
            assert_eq!(run.stdout, "", "{command} {path}");
        }
    }
    assert!(std::fs::symlink_metadata(&host.conf)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(files_in(dir), ["spark-defaults.conf"]);
}

#[test]
fn a_file_larger_than_one_mib_is_refused() {
    let host = Host::new("too-large");
    let before = host.write_conf("spark.tispark.telemetry.enable false\n", NOWHERE);
    let padding = format!("# {}\n", "x".repeat(1021)); // 1 KiB a line
    let big = format!("{before}{}", padding.repeat(1024));
    std::fs::write(&host.conf, &big).unwrap();
    for command in ["enable", "status"] {
        let run = host.run(&[command], &[]);
        run.assert_failed(1);
        assert_eq!(
            run.stderr,
            format!(
                "tispark-telemetry: error: {} cannot be read: it is larger than 1 MiB, the \
                 limit for a Spark configuration file\n",
                host.conf.display()
            )
        );
    }
    assert_eq!(host.conf_text(), big);
    // Exactly 1 MiB is read.
    let exact = format!(
        "{before}{}",
        "#".repeat((1 << 20) - before.len() - 1) + "\n"
    );
    assert_eq!(exact.len(), 1 << 20);
    std::fs::write(&host.conf, &exact).unwrap();
    host.run(&["status"], &[]).assert_ok();
}

// ---- a rewrite keeps what the file carries, or refuses; a cooperating writer loses nothing ----

/// `getfacl` of `path`: its ACL, or the mode as one when it has none.
fn getfacl(path: &Path) -> String {
    let out = Command::new("getfacl")
        .args(["--omit-header", "--absolute-names"])
        .arg(path)
        .output()
        .expect("this test needs getfacl (Debian's acl package: scripts/prerequisites.sh)");
    assert!(out.status.success(), "getfacl {path:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn setfacl(args: &[&str], path: &Path) {
    let status = Command::new("setfacl")
        .args(args)
        .arg(path)
        .status()
        .expect("this test needs setfacl (Debian's acl package: scripts/prerequisites.sh)");
    assert!(status.success(), "setfacl {args:?} {path:?}");
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut value = vec![0; 64 * 1024];
    match rustix::fs::getxattr(path, name, &mut value[..]) {
        Ok(len) => Some(value[..len].to_vec()),
        Err(rustix::io::Errno::NODATA) => None,
        Err(e) => panic!("getxattr {path:?} {name}: {e}"),
    }
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::setxattr(path, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {path:?} {name}: {e}"));
}

fn inode(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.ino(), m.nlink())
}

/// `cat path` as nobody: its exit code, what it printed and its error.
fn cat_as_nobody(path: &Path) -> Run {
    let mut cat = as_nobody("cat");
    cat.arg(path);
    run_within(cat, &[], Duration::from_secs(10))
}

#[test]
fn enable_and_disable_keep_a_posix_acl_and_every_extended_attribute() {
    require_root();
    let host = Host::new("acl");
    let before = host.write_conf("spark.tispark.telemetry.enable false\n", NOWHERE);
    chmod(&host.root, 0o755);
    chmod(host.conf.parent().unwrap(), 0o755);
    chmod(&host.conf, 0o600);
    // The file is root's and private, but nobody may read it (as spark-submit run as nobody must).
    setfacl(&["-m", "u:nobody:r"], &host.conf);
    set_xattr(&host.conf, "user.managed-by", b"puppet");
    set_xattr(&host.conf, "security.tispark-test", b"label_t");
    let acl = getfacl(&host.conf);
    assert_eq!(
        acl,
        "user::rw-\nuser:nobody:r--\ngroup::---\nmask::r--\nother::---\n\n"
    );
    assert_eq!(cat_as_nobody(&host.conf).stdout, before);

    let run = host.run(&["enable"], &[]);
    run.assert_ok();
    let after = before.replace("enable false", "enable true");
    assert_eq!(host.conf_text(), after);
    assert_eq!(getfacl(&host.conf), acl);
    assert_eq!(owner_and_mode(&host.conf), (0, 0, 0o640));
    // And an ACL alone, without any other attribute, is kept too.
    let alone = Host::new("acl-alone");
    alone.write_conf("spark.tispark.telemetry.enable false\n", NOWHERE);
    chmod(&alone.root, 0o755);
    chmod(alone.conf.parent().unwrap(), 0o755);
    chmod(&alone.conf, 0o600);
    setfacl(&["-m", "u:nobody:r"], &alone.conf);
    alone.run(&["enable"], &[]).assert_ok();
    assert_eq!(getfacl(&alone.conf), acl);
    assert_eq!(
        xattr(&host.conf, "user.managed-by").as_deref(),
        Some(&b"puppet"[..])
    );
    assert_eq!(
        xattr(&host.conf, "security.tispark-test").as_deref(),
        Some(&b"label_t"[..])
    );
    let read = cat_as_nobody(&host.conf);
    read.assert_ok();
    assert_eq!(read.stdout, after);

    host.run(&["disable"], &[]).assert_ok();
    assert_eq!(host.conf_text(), before);
    assert_eq!(getfacl(&host.conf), acl);
    assert_eq!(cat_as_nobody(&host.conf).stdout, before);
    assert_eq!(
        files_in(host.conf.parent().unwrap()),
        ["spark-defaults.conf"]
    );
}

#[test]
fn a_file_without_an_acl_gets_none_from_its_directorys_default_acl() {
    require_root();
    let host = Host::new("default-acl");
    let before = host.write_conf("spark.tispark.telemetry.enable false\n", NOWHERE);
    let dir = host.conf.parent().unwrap();
    chmod(&host.root, 0o755);
    chmod(dir, 0o755);
    chmod(&host.conf, 0o640);
    // New files in the directory would be readable by nobody; this one is not.
    setfacl(&["-d", "-m", "u:nobody:rw"], dir);
    // Another attribute, without an ACL, and larger than 1 KiB.
    let note: Vec<u8> = (0..4000u32).map(|i| b'a' + (i % 26) as u8).collect();
    set_xattr(&host.conf, "user.note", &note);
    let acl = getfacl(&host.conf);
    assert_eq!(acl, "user::rw-\ngroup::r--\nother::---\n\n");
    host.run(&["enable"], &[]).assert_ok();
    assert_eq!(
        host.conf_text(),
        before.replace("enable false", "enable true")
    );
    assert_eq!(getfacl(&host.conf), acl);
    assert_eq!(xattr(&host.conf, "user.note"), Some(note));
    let read = cat_as_nobody(&host.conf);
    assert_eq!(read.code, 1, "{}", read.stderr);
    assert_eq!(read.stdout, "");
}

#[test]
fn an_extended_attribute_the_copy_cannot_be_given_is_refused_and_changes_nothing() {
    require_root();
    let host = Host::new("xattr-refused");
    let dir = host.conf.parent().unwrap();
    let before = host.write_conf("spark.tispark.telemetry.enable false\n", NOWHERE);
    chmod(&host.root, 0o755);
    std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    std::os::unix::fs::chown(&host.conf, Some(NOBODY), Some(NOBODY)).unwrap();
    chmod(&host.conf, 0o644);
    // A label only a privileged process may set (as an SELinux label can be).
    set_xattr(&host.conf, "security.tispark-test", b"label_t");
    let was = inode(&host.conf);
    let conf = host.conf.display().to_string();
    let mut enable = as_nobody(BIN);
    enable.args(["--conf", &conf, "enable"]);
    let run = run_within(enable, &[], Duration::from_secs(10));
    run.assert_failed(3);
    assert_eq!(
        run.stderr,
        format!(
            "tispark-telemetry: error: {conf} has the extended attribute \
             security.tispark-test, which its rewritten copy cannot be given (Operation not \
             permitted (os error 1)), so it is left as it is; set the switch by hand, or run \
             this as root\n"
        )
    );
    assert_eq!(run.stdout, "");
    assert_eq!(host.conf_text(), before);
    assert_eq!(inode(&host.conf), was);
    assert_eq!(
        xattr(&host.conf, "security.tispark-test").as_deref(),
        Some(&b"label_t"[..])
    );
    assert_eq!(
        files_in(dir),
        ["spark-defaults.conf"],
        "no temporary file is left"
    );
}

#[test]
fn a_file_with_a_second_name_is_refused_with_the_fix() {
    let host = Host::new("hard-link");
    let dir = host.conf.parent().unwrap().to_path_buf();
    let before = host.write_conf("spark.tispark.telemetry.enable true\n", NOWHERE);
    let other = host.root.join("spark-defaults.conf.other");
    std::fs::hard_link(&host.conf, &other).unwrap();
    let was = inode(&host.conf);
    assert_eq!(was.1, 2);
    let conf = host.conf.display().to_string();
    let run = host.run(&["disable"], &[]);
    run.assert_failed(3);
    assert_eq!(
        run.stderr,
        format!(
            "tispark-telemetry: error: {conf} has 2 names (hard links): a rewrite would change \
             it under this name only and leave the other names with the old settings, so it is \
             left as it is; make the other names symbolic links to it (`find / -xdev -samefile \
             {conf}` lists them)\n"
        )
    );
    assert_eq!(host.conf_text(), before);
    assert_eq!(std::fs::read_to_string(&other).unwrap(), before);
    assert_eq!(inode(&host.conf), was);
    assert_eq!(inode(&other), was);
    assert_eq!(files_in(&dir), ["spark-defaults.conf"]);
    // Both names still say the same, as status shows through either.
    for name in [&host.conf, &other] {
        let name = name.display().to_string();
        let status = run_bare(
            &["--conf", &name, "status", "--json"],
            &[("HOME", &host.home())],
        );
        assert_eq!(status.json()["enable_value"], "true", "{name}");
    }
    // Asking for what the file already says changes nothing, and is no error.
    let run = host.run(&["enable"], &[]);
    run.assert_ok();
    assert_eq!(inode(&host.conf), was);
}

/// `bash -c script` with `$1`, `$2`… set to `args`, started now.
fn bash(script: &str, args: &[&str]) -> std::process::Child {
    Command::new("bash")
        .args(["-c", script, "bash"])
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start bash")
}

/// Waits (at most `limit`) for `path` to exist.
fn wait_for(path: &Path, limit: Duration) {
    let started = std::time::Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < limit,
            "{path:?} did not appear within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn appends_under_the_directorys_lock_are_never_lost_to_concurrent_rewrites() {
    let host = Host::new("append-race");
    let before = host.write_conf("spark.tispark.telemetry.enable false\n", NOWHERE);
    let dir = host.conf.parent().unwrap().to_path_buf();
    let conf = host.conf.display().to_string();
    let started = host.root.join("appender-started");
    // A cooperating writer: 300 lines, each appended while it holds the
    // directory's lock (flock(1), util-linux), as docs/control.md says.
    let mut appender = bash(
        r#"exec 9<"$1" || exit 1
           : > "$3"
           for i in $(seq 1 300); do
             flock 9 || exit 2
             printf 'spark.appended.%d %d\n' "$i" "$i" >> "$2" || exit 3
             flock -u 9
           done"#,
        &[
            &dir.display().to_string(),
            &conf,
            &started.display().to_string(),
        ],
    );
    wait_for(&started, Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut rewrites = 0;
    let mut appender_done = None;
    // 200 rewrites at least, and on until the appender is done (bounded in time).
    while rewrites < 200 || appender_done.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the rewrites took over 120 s"
        );
        let command = if rewrites % 2 == 0 {
            "enable"
        } else {
            "disable"
        };
        let run = host.run(&[command], &[]);
        run.assert_ok();
        rewrites += 1;
        if appender_done.is_none() {
            appender_done = appender.try_wait().unwrap().map(|_| rewrites);
        }
    }
    let status = appender.wait().unwrap();
    assert!(status.success(), "the appender failed: {status}");
    let during = appender_done.unwrap();
    assert!(
        during >= 20,
        "only {during} rewrites ran while it appended: nothing was raced"
    );
    let text = host.conf_text();
    let appended: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("spark.appended."))
        .collect();
    let expected: Vec<String> = (1..=300)
        .map(|i| format!("spark.appended.{i} {i}"))
        .collect();
    assert_eq!(
        appended.len(),
        300,
        "{} of 300 appended lines kept",
        appended.len()
    );
    assert_eq!(appended, expected);
    let last = if rewrites % 2 == 1 { "true" } else { "false" };
    assert!(
        text.starts_with(&before.replace("enable false", &format!("enable {last}"))),
        "{text}"
    );
    assert_eq!(files_in(&dir), ["spark-defaults.conf"]);
}

#[test]
fn a_rewrite_waits_for_a_writer_that_holds_the_files_lock() {
    let host = Host::new("file-lock");
    let before = host.write_conf("spark.tispark.telemetry.enable false\n", NOWHERE);
    let conf = host.conf.display().to_string();
    let locked = host.root.join("locked");
    // Opens the file, locks it, and writes through what it opened, a second later.
    let mut writer = bash(
        r#"exec 9>>"$1" && flock 9 && : > "$2" && sleep 1 && printf 'spark.late 1\n' >&9"#,
        &[&conf, &locked.display().to_string()],
    );
    wait_for(&locked, Duration::from_secs(10));
    let started = std::time::Instant::now();
    let run = host.run(&["enable"], &[]);
    let waited = started.elapsed();
    run.assert_ok();
    assert!(writer.wait().unwrap().success());
    assert!(
        waited >= Duration::from_millis(500),
        "enable did not wait: {waited:?}"
    );
    assert_eq!(
        host.conf_text(),
        format!(
            "{}spark.late 1\n",
            before.replace("enable false", "enable true")
        )
    );
}

#[test]
fn a_lock_held_too_long_fails_after_five_seconds_and_changes_nothing() {
    let host = Host::new("lock-held");
    let before = host.write_conf("spark.tispark.telemetry.enable false\n", NOWHERE);
    let dir = host.conf.parent().unwrap().to_path_buf();
    let locked = host.root.join("locked");
    let mut holder = bash(
        r#"exec 9<"$1" && flock 9 && : > "$2" && exec sleep 60"#,
        &[&dir.display().to_string(), &locked.display().to_string()],
    );
    wait_for(&locked, Duration::from_secs(10));
    let started = std::time::Instant::now();
    let run = host.run(&["enable"], &[]);
    let waited = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    run.assert_failed(1);
    assert_eq!(
        run.stderr,
        format!(
            "tispark-telemetry: error: {} is locked (flock) by another process for more than \
             5 s, so nothing is changed; run this again once that process is done\n",
            dir.display()
        )
    );
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    assert_eq!(host.conf_text(), before);
    // Once it is let go, the same command works.
    host.run(&["enable"], &[]).assert_ok();
    assert_eq!(
        host.conf_text(),
        before.replace("enable false", "enable true")
    );
}

#[test]
fn a_directory_that_cannot_be_locked_is_said_once_and_the_file_rewritten() {
    require_root();
    let host = Host::new("no-lock");
    let dir = host.conf.parent().unwrap().to_path_buf();
    let before = host.write_conf("spark.tispark.telemetry.enable false\n", NOWHERE);
    chmod(&host.root, 0o755);
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    std::os::unix::fs::chown(&host.conf, Some(NOBODY), Some(NOBODY)).unwrap();
    // nobody may create and rename files in it, not list it: it cannot be opened to lock.
    chmod(&dir, 0o300);
    let conf = host.conf.display().to_string();
    let mut enable = as_nobody(BIN);
    enable.args(["--conf", &conf, "enable"]);
    let run = run_within(enable, &[], Duration::from_secs(10));
    run.assert_ok();
    assert_eq!(
        run.stderr,
        format!(
            "tispark-telemetry: warning: {} cannot be locked (Permission denied (os error 13)); \
             the file is rewritten without that lock\n",
            dir.display()
        )
    );
    assert_eq!(
        run.stdout,
        format!("Set spark.tispark.telemetry.enable true in {conf} (line 17 rewritten).\n")
    );
    assert_eq!(
        host.conf_text(),
        before.replace("enable false", "enable true")
    );
    chmod(&dir, 0o755);
    assert_eq!(files_in(&dir), ["spark-defaults.conf"]);
}

// ---- status reads only; where it finds things ----

/// A configuration file with only `lines`, in a fresh host.
fn host_with(name: &str, lines: &str) -> Host {
    let host = Host::new(name);
    std::fs::create_dir_all(host.conf.parent().unwrap()).unwrap();
    std::fs::write(&host.conf, lines).unwrap();
    host
}

#[test]
fn status_leaves_an_open_state_directory_as_it_is_and_says_the_next_report_closes_it() {
    let host = Host::new("status-0755");
    host.write_conf("", NOWHERE);
    host.run(&["reset"], &[]).assert_ok();
    let id = std::fs::read_to_string(host.state.join("track_id")).unwrap();
    chmod(&host.state, 0o755);
    let run = host.run(&["status"], &[]);
    run.assert_ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[3..5],
        [
            format!(
                "State:         {} (mode 0755, open to other users: the next report makes it \
                 0700)",
                host.state.display()
            ),
            format!("Track id:      {id}"),
        ]
    );
    let json = host.run(&["status", "--json"], &[]).json();
    assert_eq!(
        json["state_dir_note"],
        "mode 0755, open to other users: the next report makes it 0700"
    );
    assert_eq!(json["track_id"], id);
    assert_eq!(
        owner_and_mode(&host.state).2,
        0o755,
        "status changed the mode"
    );
    // The next report (here: reset, through the same library code) closes it.
    host.run(&["reset"], &[]).assert_ok();
    assert_eq!(owner_and_mode(&host.state).2, 0o700);
    let json = host.run(&["status", "--json"], &[]).json();
    assert_eq!(json["state_dir_note"], serde_json::Value::Null);
}

#[test]
fn status_says_why_another_users_state_directory_cannot_be_used() {
    require_root();
    let host = Host::new("status-theirs");
    host.write_conf("", NOWHERE);
    host.run(&["reset"], &[]).assert_ok();
    std::os::unix::fs::chown(&host.state, Some(NOBODY), Some(NOBODY)).unwrap();
    let run = host.run(&["status"], &[]);
    run.assert_ok();
    let state = host.state.display();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[3..5],
        [
            format!(
                "State:         {state} (unusable: the directory \"{state}\" belongs to uid \
                 65534, not to this user (uid 0); use a directory of your own \
                 (spark.tispark.telemetry.state_dir); reports carry appid_<application id> as \
                 their track id and no audit trail is kept)"
            ),
            "Track id:      none (the state directory cannot be used)".to_string(),
        ]
    );
    assert_eq!(owner_and_mode(&host.state), (NOBODY, NOBODY, 0o700));
}

#[test]
fn status_json_conf_file_is_absolute_when_spark_conf_dir_or_spark_home_is_relative() {
    let host = host_with("status-relative", "spark.tispark.telemetry.enable true\n");
    let home = host.home();
    let run_in = |var: &str, value: &str, cwd: &Path| {
        let out = Command::new(BIN)
            .args(["status", "--json"])
            .current_dir(cwd)
            .env_clear()
            .env("HOME", &home)
            .env(var, value)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let conf = host.conf.display().to_string();
    let json = run_in("SPARK_CONF_DIR", "conf", &host.root);
    assert_eq!(json["conf_file"], conf);
    assert_eq!(json["enable_value"], "true");
    // SPARK_HOME=. in the directory that holds conf/.
    let json = run_in("SPARK_HOME", ".", &host.root);
    assert_eq!(json["conf_file"], conf);
    assert_eq!(json["enable_value"], "true");
}

#[test]
fn the_state_directory_is_the_conf_key_then_the_environment_then_xdg_then_home() {
    let host = host_with(
        "state-precedence",
        "spark.tispark.telemetry.state_dir=/from/the/conf\n",
    );
    let bare = host_with("state-precedence-bare", "spark.master local[2]\n");
    let state_dir = |host: &Host, env: &[(&str, &str)]| -> String {
        let conf = host.conf.display().to_string();
        let run = run_bare(&["--conf", &conf, "status", "--json"], env);
        run.assert_ok();
        let json = run.json();
        let text = run_bare(&["--conf", &conf, "status"], env).stdout;
        let dir = json["state_dir"].as_str().unwrap().to_string();
        assert!(
            text.contains(&format!("\nState:         {dir}\n")),
            "{text}"
        );
        dir
    };
    let env = "TISPARK_TELEMETRY_STATE_DIR";
    let all = [
        (env, "/from/the/env"),
        ("XDG_STATE_HOME", "/from/xdg"),
        ("HOME", "/from/home"),
    ];
    // The conf key before the environment variable.
    assert_eq!(state_dir(&host, &all), "/from/the/conf");
    // The environment variable before XDG_STATE_HOME.
    assert_eq!(state_dir(&bare, &all), "/from/the/env");
    // XDG_STATE_HOME before HOME.
    assert_eq!(state_dir(&bare, &all[1..]), "/from/xdg/tispark-telemetry");
    // HOME last.
    assert_eq!(
        state_dir(&bare, &all[2..]),
        "/from/home/.local/state/tispark-telemetry"
    );
    // Empty (or blank) is unset, at each step.
    assert_eq!(
        state_dir(
            &bare,
            &[(env, " "), ("XDG_STATE_HOME", ""), ("HOME", "/from/home")]
        ),
        "/from/home/.local/state/tispark-telemetry"
    );
    let blank = host_with(
        "state-precedence-blank",
        "spark.tispark.telemetry.state_dir=\n",
    );
    assert_eq!(state_dir(&blank, &all), "/from/the/env");
}
