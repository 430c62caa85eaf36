//! The TLS settings cross the JNI boundary: a real JVM (the packaged jar,
//! -Xcheck:jni) reporting with `spark.tispark.tikv.tls_enable=true` and the
//! PEM settings in its conf gets the TiDB version from a PD mock that
//! requires a client certificate, and none of the settings' values is in
//! the report or the child's output.

mod support;

use std::time::Duration;
use support::collector::{Behaviour, Collector};
use support::jvm::{self, isolated};
use support::tls::cluster_pki;

const PD_STATUS: &str = r#"{"version":"v7.5.1","git_hash":"abc"}"#;

fn var(name: &str) -> String {
    std::env::var(name).unwrap()
}

#[test]
fn a_driver_jvm_on_a_tls_cluster_reports_pds_version() {
    let mut env: Vec<(&str, String)> = Vec::new();
    let mut servers = None;
    if !jvm::in_child() {
        let pki = cluster_pki();
        let dir = support::temp_dir("pd-tls-jvm");
        let pems = [
            ("TT_CA", "CA-SECRET-PATH.pem", pki.ca_pem.as_str()),
            (
                "TT_CHAIN",
                "CHAIN-SECRET-PATH.pem",
                pki.client_cert_pem.as_str(),
            ),
            ("TT_KEY", "KEY-SECRET-PATH.pem", pki.client_key_pem.as_str()),
        ];
        for (var, file, pem) in pems {
            std::fs::write(dir.join(file), pem).unwrap();
            env.push((var, dir.join(file).display().to_string()));
        }
        let pd = Collector::start_tls(Behaviour::Json(PD_STATUS), pki.pd_server.clone());
        let collector = Collector::start(Behaviour::Accept);
        env.push((
            "TT_PD",
            format!("pd-0.mapped-secret.invalid:{}", pd.addr.port()),
        ));
        env.push(("TT_URL", collector.url("/api/v1/tispark/report")));
        env.push(("TT_STATE", dir.join("state").display().to_string()));
        servers = Some((pd, collector));
    }
    let run = isolated(&env, || {
        let vm = jvm::start_jvm(&[]);
        let mut env = vm.attach_current_thread().unwrap();
        let (url, state, pd) = (var("TT_URL"), var("TT_STATE"), var("TT_PD"));
        let (ca, chain, key) = (var("TT_CA"), var("TT_CHAIN"), var("TT_KEY"));
        let conf = jvm::java_map(
            &mut env,
            &[
                ("spark.tispark.telemetry.enable", "true"),
                ("spark.tispark.telemetry.url", &url),
                ("spark.tispark.telemetry.state_dir", &state),
                ("spark.tispark.pd.addresses", &pd),
                ("spark.tispark.tikv.tls_enable", "true"),
                ("spark.tispark.tikv.trust_cert_collection", &ca),
                ("spark.tispark.tikv.key_cert_chain", &chain),
                ("spark.tispark.tikv.key_file", &key),
                (
                    "spark.tispark.host_mapping",
                    "pd-0.mapped-secret.invalid:127.0.0.1",
                ),
            ],
        );
        jvm::report(&mut env, &conf, Some("3.2.3"));
        assert!(jvm::flush(&mut env, 10_000), "still in flight after 10 s");
    });
    let Some(run) = run else { return };
    run.assert_clean();
    let (pd, collector) = servers.unwrap();
    let received = collector.wait_for(1, Duration::from_secs(5));
    assert_eq!(received.len(), 1, "{}", run.output);
    let report: serde_json::Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(
        report["instance"]["tidb_version"], "v7.5.1",
        "{}",
        run.output
    );
    assert_eq!(pd.received().len(), 1);
    for secret in ["SECRET-PATH", "mapped-secret", "127.0.0.1"] {
        assert!(!received[0].body.contains(secret), "{secret} was sent");
        assert!(
            !run.output.contains(secret),
            "{secret} in the log: {}",
            run.output
        );
    }
}
