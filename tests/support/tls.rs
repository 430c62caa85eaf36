//! Certificates made at test time: a private CA and an endpoint certificate
//! for 127.0.0.1 signed by it, as a rustls server configuration.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;

pub struct TestPki {
    /// The CA certificate, PEM: what a corporate CA bundle would hold.
    pub ca_pem: String,
    /// The endpoint's configuration: certificate for 127.0.0.1 signed by the CA.
    pub server: Arc<rustls::ServerConfig>,
}

pub fn test_pki() -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tispark-telemetry test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, private)
    .unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}

/// A TLS cluster's certificates as TiSpark's PEM settings name them: the
/// cluster CA, a client certificate and key signed by it, and PD's server
/// configuration, which requires a client certificate from that CA.
pub struct ClusterPki {
    /// `spark.tispark.tikv.trust_cert_collection`.
    pub ca_pem: String,
    /// `spark.tispark.tikv.key_cert_chain`.
    pub client_cert_pem: String,
    /// `spark.tispark.tikv.key_file` (PKCS#8, as TiSpark reads it).
    pub client_key_pem: String,
    /// PD: certificate for 127.0.0.1 and localhost, client certificates required.
    pub pd_server: Arc<rustls::ServerConfig>,
}

fn ca(name: &str) -> (String, Vec<u8>, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec(), Issuer::new(params, key))
}

pub fn cluster_pki() -> ClusterPki {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (ca_pem, ca_der, issuer) = ca("tidb cluster test CA");

    let server_key = KeyPair::generate().unwrap();
    let server_cert =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "tispark");
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der)).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let pd_server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    ClusterPki {
        ca_pem,
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
        pd_server: Arc::new(pd_server),
    }
}

/// The PEM files of a cluster, under names that must never be seen elsewhere.
pub struct PemFiles {
    pub ca: std::path::PathBuf,
    pub chain: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// The conf of a TLS cluster whose PD is at `pd`, with these files.
pub fn tls_conf(pd: &str, pems: &PemFiles) -> Vec<(&'static str, String)> {
    vec![
        ("spark.tispark.pd.addresses", pd.to_string()),
        ("spark.tispark.tikv.tls_enable", "true".to_string()),
        (
            "spark.tispark.tikv.trust_cert_collection",
            pems.ca.display().to_string(),
        ),
        (
            "spark.tispark.tikv.key_cert_chain",
            pems.chain.display().to_string(),
        ),
        (
            "spark.tispark.tikv.key_file",
            pems.key.display().to_string(),
        ),
    ]
}

/// What the sender hands the library for this conf with telemetry on
/// (Spark 3.5.7, TiSpark 3.2.3).
pub fn enabled_request(conf: &[(&str, String)]) -> tispark_telemetry::pipeline::ReportInput {
    let mut map: std::collections::HashMap<String, String> = conf
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    map.insert("spark.tispark.telemetry.enable".into(), "true".into());
    tispark_telemetry::pipeline::ReportInput {
        snapshot: tispark_telemetry::conf::Snapshot::read(&mut map).unwrap(),
        spark_version: Some("3.5.7".into()),
        tispark_version: Some("3.2.3".into()),
    }
}
