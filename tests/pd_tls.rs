//! `instance.tidb_version` on TLS clusters: PD asked over https as TiSpark
//! asks it (`spark.tispark.tikv.tls_enable`, the cluster CA, the client
//! certificate and key as PEM files, `spark.tispark.host_mapping`), against a
//! PD mock on loopback that speaks PD's status API and requires a client
//! certificate. None of the TLS settings' values may reach the report, the
//! log or the audit trail.

mod support;

use log::Level;
use std::path::Path;
use support::collector::{Behaviour, Collector};
use support::logs::logged_during;
use support::tls::{cluster_pki, tls_conf, ClusterPki, PemFiles};
use tispark_telemetry::pipeline::{self, Destination, ReportInput};

const PD_STATUS: &str = r#"{"build_ts":"2024-01-01 00:00:00","version":"v7.5.1","git_hash":"abc","start_timestamp":1700000000}"#;

fn write_pems(dir: &Path, ca_pem: &str, chain_pem: &str, key_pem: &str) -> PemFiles {
    let files = PemFiles {
        ca: dir.join("CA-SECRET-PATH-31a7.pem"),
        chain: dir.join("CHAIN-SECRET-PATH-8c2d.pem"),
        key: dir.join("KEY-SECRET-PATH-f00d.pem"),
    };
    std::fs::write(&files.ca, ca_pem).unwrap();
    std::fs::write(&files.chain, chain_pem).unwrap();
    std::fs::write(&files.key, key_pem).unwrap();
    files
}

fn own_pems(dir: &Path, pki: &ClusterPki) -> PemFiles {
    write_pems(dir, &pki.ca_pem, &pki.client_cert_pem, &pki.client_key_pem)
}

fn request(conf: &[(&str, String)]) -> ReportInput {
    support::tls::enabled_request(conf)
}

/// The tidb_version `preview` reports for this conf, and what was logged.
fn reported_tidb_version(
    conf: Vec<(&'static str, String)>,
    state: &Path,
) -> (String, Vec<(Level, String)>) {
    let mut conf = conf;
    conf.push((
        "spark.tispark.telemetry.state_dir",
        state.display().to_string(),
    ));
    let (json, log) = logged_during(|| pipeline::preview(&request(&conf)));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    (
        report["instance"]["tidb_version"]
            .as_str()
            .unwrap()
            .to_string(),
        log,
    )
}

fn warnings(log: &[(Level, String)]) -> Vec<String> {
    log.iter()
        .filter(|(l, _)| *l == Level::Warn)
        .map(|(_, t)| t.clone())
        .collect()
}

#[test]
fn a_tls_cluster_reports_pds_version_over_https_with_the_client_certificate() {
    let dir = support::temp_dir("pd-tls");
    let pki = cluster_pki();
    let pd = Collector::start_tls(Behaviour::Json(PD_STATUS), pki.pd_server.clone());
    let pems = own_pems(&dir, &pki);
    let (version, log) =
        reported_tidb_version(tls_conf(&pd.addr.to_string(), &pems), &dir.join("state"));
    assert_eq!(version, "v7.5.1", "{log:?}");
    assert_eq!(warnings(&log), Vec::<String>::new());
    let received = pd.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "GET");
    assert_eq!(received[0].path, "/pd/api/v1/status");
}

#[test]
fn the_host_mapping_is_applied_to_pds_address() {
    let dir = support::temp_dir("pd-tls-map");
    let pki = cluster_pki();
    let pd = Collector::start_tls(Behaviour::Json(PD_STATUS), pki.pd_server.clone());
    let pems = own_pems(&dir, &pki);
    // A name no resolver knows, mapped to loopback, where PD's certificate is valid.
    let address = format!("pd-0.mapped-secret-7e1b.invalid:{}", pd.addr.port());
    let mut conf = tls_conf(&address, &pems);
    conf.push((
        "spark.tispark.host_mapping",
        "pd-0.mapped-secret-7e1b.invalid:127.0.0.1".to_string(),
    ));
    let (version, log) = reported_tidb_version(conf, &dir.join("state"));
    assert_eq!(version, "v7.5.1", "{log:?}");
    assert_eq!(pd.received().len(), 1);

    // The same over plain http: the mapping holds without TLS too.
    let plain = Collector::start(Behaviour::Json(PD_STATUS));
    let conf = vec![
        (
            "spark.tispark.pd.addresses",
            format!("pd-0.mapped-secret-7e1b.invalid:{}", plain.addr.port()),
        ),
        (
            "spark.tispark.host_mapping",
            "other:10.9.9.9;pd-0.mapped-secret-7e1b.invalid:127.0.0.1".to_string(),
        ),
    ];
    let (version, log) = reported_tidb_version(conf, &dir.join("state"));
    assert_eq!(version, "v7.5.1", "{log:?}");
}

#[test]
fn a_client_certificate_pd_does_not_trust_gives_unknown() {
    let dir = support::temp_dir("pd-tls-foreign");
    let pki = cluster_pki();
    let stranger = cluster_pki();
    let pd = Collector::start_tls(Behaviour::Json(PD_STATUS), pki.pd_server.clone());
    let pems = write_pems(
        &dir,
        &pki.ca_pem,
        &stranger.client_cert_pem,
        &stranger.client_key_pem,
    );
    let (version, log) =
        reported_tidb_version(tls_conf(&pd.addr.to_string(), &pems), &dir.join("state"));
    assert_eq!(version, "UNKNOWN");
    let warned = warnings(&log);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].starts_with("The TiDB version is reported as UNKNOWN: PD did not tell it ("),
        "{warned:?}"
    );
    assert_eq!(
        pd.received().len(),
        0,
        "PD answered a client it does not trust"
    );
}

#[test]
fn a_pd_certificate_from_another_ca_gives_unknown() {
    let dir = support::temp_dir("pd-tls-ca");
    let pki = cluster_pki();
    let stranger = cluster_pki();
    let pd = Collector::start_tls(Behaviour::Json(PD_STATUS), stranger.pd_server.clone());
    let pems = own_pems(&dir, &pki);
    let (version, log) =
        reported_tidb_version(tls_conf(&pd.addr.to_string(), &pems), &dir.join("state"));
    assert_eq!(version, "UNKNOWN");
    assert_eq!(warnings(&log).len(), 1, "{log:?}");
    assert_eq!(pd.received().len(), 0);
}

#[test]
fn without_tls_enable_a_tls_pd_is_not_reached() {
    let dir = support::temp_dir("pd-tls-off");
    let pki = cluster_pki();
    let pd = Collector::start_tls(Behaviour::Json(PD_STATUS), pki.pd_server.clone());
    let pems = own_pems(&dir, &pki);
    let mut conf = tls_conf(&pd.addr.to_string(), &pems);
    conf[1].1 = "false".to_string();
    let (version, _) = reported_tidb_version(conf, &dir.join("state"));
    assert_eq!(version, "UNKNOWN");
    assert_eq!(pd.received().len(), 0);
}

#[test]
fn missing_or_unusable_tls_settings_give_unknown_and_name_the_key() {
    let dir = support::temp_dir("pd-tls-settings");
    let pki = cluster_pki();
    let pd = Collector::start_tls(Behaviour::Json(PD_STATUS), pki.pd_server.clone());
    let pems = own_pems(&dir, &pki);
    let prefix = "The TiDB version is reported as UNKNOWN: PD did not tell it (";
    let cases: Vec<(Vec<(&'static str, String)>, String)> = vec![
        (
            {
                let mut c = tls_conf(&pd.addr.to_string(), &pems);
                c.remove(4);
                c
            },
            "spark.tispark.tikv.tls_enable is true but spark.tispark.tikv.key_file is not set"
                .to_string(),
        ),
        (
            {
                let mut c = tls_conf(&pd.addr.to_string(), &pems);
                c[2].1 = dir.join("MISSING-SECRET-CA.pem").display().to_string();
                c
            },
            "the file named by spark.tispark.tikv.trust_cert_collection cannot be read \
             (it does not exist)"
                .to_string(),
        ),
        (
            {
                let mut c = tls_conf(&pd.addr.to_string(), &pems);
                c[4].1 = pems.ca.display().to_string();
                c
            },
            "the files named by spark.tispark.tikv.key_cert_chain and \
             spark.tispark.tikv.key_file are not a PEM certificate and its private key"
                .to_string(),
        ),
        (
            {
                let mut c = tls_conf(&pd.addr.to_string(), &pems);
                c.push(("spark.tispark.tikv.jks_enable", "true".to_string()));
                c.push((
                    "spark.tispark.tikv.jks_key_password",
                    "JKS-SECRET-PASSWORD".to_string(),
                ));
                c
            },
            "spark.tispark.tikv.jks_enable is true, and a JKS keystore cannot be read by the \
             native library (set spark.tispark.tikv.trust_cert_collection, \
             spark.tispark.tikv.key_cert_chain and spark.tispark.tikv.key_file to PEM files)"
                .to_string(),
        ),
        (
            {
                let mut c = tls_conf(&pd.addr.to_string(), &pems);
                c.push((
                    "spark.tispark.host_mapping",
                    "SECRET-HOST-NO-COLON".to_string(),
                ));
                c
            },
            "spark.tispark.host_mapping is not a list of host:mapped pairs".to_string(),
        ),
    ];
    for (conf, why) in cases {
        let (version, log) = reported_tidb_version(conf, &dir.join("state"));
        assert_eq!(version, "UNKNOWN");
        assert_eq!(warnings(&log), [format!("{prefix}{why}).")]);
    }
    assert_eq!(pd.received().len(), 0);
}

#[test]
fn no_tls_setting_reaches_the_report_the_log_or_the_audit_trail() {
    let dir = support::temp_dir("pd-tls-private");
    let pki = cluster_pki();
    let pd = Collector::start_tls(Behaviour::Json(PD_STATUS), pki.pd_server.clone());
    let pems = own_pems(&dir, &pki);
    let state = dir.join("state");
    let sink = dir.join("reports.jsonl");
    let mut conf = tls_conf(
        &format!("pd-0.mapped-secret-7e1b.invalid:{}", pd.addr.port()),
        &pems,
    );
    conf.push((
        "spark.tispark.host_mapping",
        "pd-0.mapped-secret-7e1b.invalid:127.0.0.1".to_string(),
    ));
    conf.push((
        "spark.tispark.tikv.jks_key_password",
        "JKS-SECRET-PASSWORD".to_string(),
    ));
    conf.push((
        "spark.tispark.telemetry.state_dir",
        state.display().to_string(),
    ));
    conf.push((
        "spark.tispark.telemetry.url",
        format!("file://{}", sink.display()),
    ));
    let request = request(&conf);
    let plan = Destination::new(&request.snapshot).unwrap();
    let (outcome, log) = logged_during(|| pipeline::report_and_deliver(&request, &plan));
    assert!(outcome.is_success(), "{:?}", outcome.error);
    let sent = std::fs::read_to_string(&sink).unwrap();
    let report: serde_json::Value = serde_json::from_str(sent.trim()).unwrap();
    assert_eq!(report["instance"]["tidb_version"], "v7.5.1");
    let trail = std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
    let log: String = log.iter().map(|(_, t)| format!("{t}\n")).collect();
    let secrets = [
        "SECRET-PATH",
        "mapped-secret",
        "127.0.0.1",
        "JKS-SECRET",
        "BEGIN",
    ];
    for (place, text) in [("report", &sent), ("log", &log), ("audit trail", &trail)] {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in the {place}: {text}");
        }
    }
}
