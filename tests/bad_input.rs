//! Careless configuration and a damaged state directory, in a real JVM: a
//! defined result, one WARN naming what is wrong, never an exception, and the
//! report still goes out wherever it still can.

mod support;

use std::time::Duration;
use support::collector::{Behaviour, Collector};
use support::jvm::report_in_jvm;

fn conf(c: &Collector, state_dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("spark.tispark.telemetry.enable", " TRUE ".into()),
        ("spark.tispark.telemetry.url", c.url("/r")),
        (
            "spark.tispark.telemetry.state_dir",
            state_dir.display().to_string(),
        ),
    ]
}

fn received_json(c: &Collector) -> serde_json::Value {
    let received = c.wait_for(1, Duration::from_secs(2));
    assert_eq!(received.len(), 1);
    support::assert_schema(&received[0].body);
    serde_json::from_str(&received[0].body).unwrap()
}

#[test]
fn unparsable_typed_values_are_reported_as_defaults_with_a_warning_each() {
    let c = Collector::start(Behaviour::Accept);
    let mut conf = conf(&c, &support::temp_dir("bad-typed"));
    conf.push(("spark.tispark.index.scan_batch_size", "lots".into()));
    conf.push(("spark.tispark.coprocess.streaming", "yes".into()));
    let Some(run) = report_in_jvm(&conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    let warnings = run.warnings();
    assert_eq!(warnings.len(), 2, "{}", run.output);
    assert!(warnings
        .iter()
        .any(|w| w.contains("spark.tispark.index.scan_batch_size=\"lots\"")));
    assert!(warnings
        .iter()
        .any(|w| w.contains("spark.tispark.coprocess.streaming=\"yes\"")));
    let v = received_json(&c);
    assert_eq!(
        v["configuration"]["spark.tispark.index.scan_batch_size"],
        20000
    );
    assert_eq!(
        v["configuration"]["spark.tispark.coprocess.streaming"],
        false
    );
}

#[test]
fn huge_and_non_ascii_values_are_reported_intact_or_cut_to_256_characters() {
    let c = Collector::start(Behaviour::Accept);
    let mut conf = conf(&c, &support::temp_dir("bad-huge"));
    conf.push((
        "spark.tispark.isolation_read_engines",
        "tiflash,引擎,\u{1F680}".into(),
    ));
    conf.push((
        "spark.tispark.type.unsupported_mysql_types",
        "x".repeat(1 << 20),
    ));
    let Some(run) = report_in_jvm(&conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("spark.tispark.type.unsupported_mysql_types");
    let v = received_json(&c);
    assert_eq!(
        v["configuration"]["spark.tispark.isolation_read_engines"],
        "tiflash,引擎,\u{1F680}"
    );
    assert_eq!(
        v["configuration"]["spark.tispark.type.unsupported_mysql_types"],
        "x".repeat(256)
    );
}

#[test]
fn an_unwritable_state_dir_falls_back_to_the_application_id() {
    let c = Collector::start(Behaviour::Accept);
    let not_a_dir = support::temp_dir("bad-state").join("state");
    std::fs::write(&not_a_dir, "a file where the directory should be").unwrap();
    let mut conf = conf(&c, &not_a_dir);
    conf.push(("spark.app.id", "local-1764000000000".into()));
    let Some(run) = report_in_jvm(&conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("appid_local-1764000000000");
    assert_eq!(received_json(&c)["track_id"], "appid_local-1764000000000");
}

#[test]
fn a_corrupt_track_id_file_is_replaced_with_a_warning() {
    let c = Collector::start(Behaviour::Accept);
    let dir = support::temp_dir("bad-id");
    std::fs::write(dir.join("track_id"), [0xff, 0x00, 0x13, 0x37]).unwrap();
    let Some(run) = report_in_jvm(&conf(&c, &dir), &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("corrupt");
    let id = received_json(&c)["track_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("trkid_"));
    assert_eq!(
        std::fs::read_to_string(dir.join("track_id")).unwrap(),
        id,
        "the new id is kept"
    );
}

/// Runs the child with a file size limit of zero: every write fails, as on a full disk.
const FULL_DISK: [&str; 4] = ["bash", "-c", "ulimit -f 0; exec \"$@\"", "full-disk"];

#[test]
fn a_full_disk_where_the_library_is_extracted_is_one_warning_and_the_jvm_runs_on() {
    let c = Collector::start(Behaviour::Accept);
    let conf = conf(&c, &support::temp_dir("full-extract"));
    // A temporary directory of its own: the library is not in this user's
    // cache there yet, so it has to be written.
    let options = [format!(
        "-Dtispark.telemetry.native.tmpdir={}",
        support::temp_dir("full-extract-tmp").display()
    )];
    let Some(run) = support::jvm::report_in_jvm_under(&FULL_DISK, &options, &conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("native library cannot be loaded");
    assert_eq!(c.connections(), 0);
}

#[test]
fn a_full_state_dir_still_sends_the_report_with_the_application_id() {
    let c = Collector::start(Behaviour::Accept);
    let mut conf = conf(&c, &support::temp_dir("full-state").join("state"));
    conf.push(("spark.app.id", "app-20261124000000-0001".into()));
    // The library is loaded from the build (extracting it would need the disk too).
    let lib = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/release/libtispark_telemetry.so");
    let options = [format!("-Dtispark.telemetry.native.path={}", lib.display())];
    let Some(run) = support::jvm::report_in_jvm_under(&FULL_DISK, &options, &conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    run.one_warning("cannot be written");
    assert_eq!(
        received_json(&c)["track_id"],
        "appid_app-20261124000000-0001"
    );
}

#[test]
fn a_noexec_temp_dir_is_one_warning_that_names_the_fix() {
    let c = Collector::start(Behaviour::Accept);
    let conf = conf(&c, &support::temp_dir("noexec-state"));
    let noexec = support::temp_dir("noexec-mount");
    // A private mount namespace with a noexec tmpfs where the library is extracted.
    let script = format!(
        "mount -t tmpfs -o noexec,size=16m tmpfs {} && exec \"$@\"",
        noexec.display()
    );
    let wrapper = ["unshare", "-m", "bash", "-c", script.as_str(), "noexec"];
    let options = [format!(
        "-Dtispark.telemetry.native.tmpdir={}",
        noexec.display()
    )];
    let Some(run) = support::jvm::report_in_jvm_under(&wrapper, &options, &conf, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    let w = run.one_warning("native library cannot be loaded");
    assert!(w.contains("-Dtispark.telemetry.native.tmpdir="), "{w}");
    assert_eq!(c.connections(), 0);
}

/// Every value a WARN echoes is cut: a 5,000,000-character switch, typed
/// value or CA bundle path gives a line of a few hundred characters that
/// shows the value's start and says how long it was.
#[test]
fn huge_values_are_echoed_cut_to_256_characters_with_their_length() {
    let huge = |start: &str| format!("{start}{}", "x".repeat(5_000_000 - start.len()));
    let cut = |start: &str| {
        format!(
            "\"{start}{}…\" (5000000 characters)",
            "x".repeat(256 - start.len())
        )
    };
    let c = Collector::start(Behaviour::Accept);
    let state = support::temp_dir("bad-echo");

    // The switch: off, one WARN.
    let mut off = conf(&c, &state);
    off[0].1 = huge("yes");
    let Some(run) = report_in_jvm(&off, &[]) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();
    let warning = run.one_warning("spark.tispark.telemetry.enable=");
    assert!(
        warning.contains(&cut("yes")),
        "{}",
        &warning[..warning.len().min(2000)]
    );
    assert!(warning.len() < 600, "a {}-byte line", warning.len());
    assert_eq!(c.connections(), 0);

    // A typed value: the default is reported, one WARN; a CA bundle path: nothing sent, one WARN.
    for (key, value) in [
        ("spark.tispark.index.scan_batch_size", huge("lots")),
        ("spark.tispark.telemetry.ca_file", huge("/missing/")),
    ] {
        let mut conf = conf(&c, &state);
        conf.push((key, value.clone()));
        let Some(run) = report_in_jvm(&conf, &[]) else {
            return;
        };
        run.assert_returned_at_once_and_left_nothing();
        let warning = run.one_warning(key);
        assert!(
            warning.contains(&cut(&value[..value.find('x').unwrap()])),
            "{}",
            &warning[..warning.len().min(2000)]
        );
        assert!(warning.len() < 1000, "a {}-byte line", warning.len());
    }
    assert_eq!(
        c.received().len(),
        1,
        "only the typed value's report is sent"
    );
}
