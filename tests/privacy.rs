//! Only the listed keys and host facts leave the machine: secrets planted in
//! the conf and the environment appear nowhere the report goes. (The real
//! Spark variant, with the HTTP endpoint and Spark's log, is in spark.rs.)

mod support;

use support::jvm::report_in_jvm;

#[test]
fn planted_secrets_never_reach_the_local_sink_or_the_state_dir() {
    let state = support::temp_dir("privacy-state");
    let sink = support::temp_dir("privacy-sink").join("reports.jsonl");
    let mut conf = vec![
        ("spark.tispark.telemetry.enable", "true".to_string()),
        (
            "spark.tispark.telemetry.url",
            format!("file://{}", sink.display()),
        ),
        (
            "spark.tispark.telemetry.state_dir",
            state.display().to_string(),
        ),
        (
            "spark.tispark.pd.addresses",
            "127.0.0.1:1,PD-SECRET-HOST:2379".to_string(),
        ),
    ];
    conf.extend(support::SECRETS.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, String)> = support::ENV_SECRETS
        .iter()
        .map(|(k, v)| (*k, v.to_string()))
        .collect();
    let Some(run) = report_in_jvm(&conf, &env) else {
        return;
    };
    run.assert_returned_at_once_and_left_nothing();

    let written = std::fs::read_to_string(&sink).unwrap();
    assert_eq!(written.lines().count(), 1);
    support::assert_schema(written.trim_end());
    support::assert_no_secrets(
        "the local sink",
        &written,
        &["PD-SECRET-HOST", "127.0.0.1:1"],
    );
    let mut files = 0;
    for entry in std::fs::read_dir(&state).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        support::assert_no_secrets("the state dir", &text, &["PD-SECRET-HOST", "127.0.0.1:1"]);
        files += 1;
    }
    assert!(files >= 1, "the track id is kept in the state dir");
}
