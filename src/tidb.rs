//! The TiDB version, asked of PD (`GET /pd/api/v1/status`, field `version`)
//! on the first configured PD address, within a short deadline, the way
//! TiSpark asks it: over https when `spark.tispark.tikv.tls_enable` is true,
//! trusting only the cluster's CA and presenting the client certificate
//! (PEM files named by `spark.tispark.tikv.*`), and with
//! `spark.tispark.host_mapping` applied to PD's host. PD is inside the
//! cluster's network: it is asked directly, never through the HTTP(S) proxy
//! of the environment (as TiSpark's own PD client does).
//!
//! None of these settings' values (paths, mappings, addresses) is ever put
//! into an error message: a failure names the key, never its value.

use crate::conf::{parse_bool, Snapshot};
use crate::files::{self, Links};
use crate::http::{self, tls::Tls};
use std::time::Duration;

/// PD is asked once; a slow PD costs at most this.
pub const PD_TIMEOUT: Duration = Duration::from_secs(2);

/// TiSpark's switch for TLS to PD and TiKV.
pub const TLS_ENABLE_KEY: &str = "spark.tispark.tikv.tls_enable";
/// The cluster's CA certificate, PEM.
pub const TRUST_CERT_KEY: &str = "spark.tispark.tikv.trust_cert_collection";
/// The client certificate (chain), PEM.
pub const KEY_CERT_CHAIN_KEY: &str = "spark.tispark.tikv.key_cert_chain";
/// The client certificate's private key, PEM.
pub const KEY_FILE_KEY: &str = "spark.tispark.tikv.key_file";
/// TiSpark's switch for JKS keystores instead of PEM files.
pub const JKS_ENABLE_KEY: &str = "spark.tispark.tikv.jks_enable";
/// `host:mapped;host:mapped`, applied to PD's host.
pub const HOST_MAPPING_KEY: &str = "spark.tispark.host_mapping";

/// The keys read to reach PD. The JKS paths and passwords are never read:
/// a JKS keystore cannot be used here (see docs/fidelity.md).
pub const PD_CONNECTION_KEYS: [&str; 6] = [
    TLS_ENABLE_KEY,
    TRUST_CERT_KEY,
    KEY_CERT_CHAIN_KEY,
    KEY_FILE_KEY,
    JKS_ENABLE_KEY,
    HOST_MAPPING_KEY,
];

/// A PEM file is a few KiB; anything over this is refused.
const PEM_LIMIT: u64 = 1024 * 1024;

/// How to reach PD: its status URL, and the TLS material when TLS is on.
pub struct PdConnection {
    pub url: url::Url,
    tls: Option<Tls>,
}

impl PdConnection {
    /// The connection to the PD at `pd_address` under the snapshot's TLS and
    /// host-mapping settings. An error names the setting at fault, not its value.
    pub fn new(pd_address: &str, snapshot: &Snapshot) -> Result<PdConnection, String> {
        let tls_on = switch(snapshot, TLS_ENABLE_KEY)?;
        let mut url = status_url(pd_address, tls_on)?;
        if let Some(mapping) = snapshot.get(HOST_MAPPING_KEY) {
            let mapping = host_mapping(mapping)?;
            let mapped = url
                .host_str()
                .and_then(|h| mapping.iter().find(|(from, _)| from == h))
                .map(|(_, to)| to.clone());
            if let Some(to) = mapped {
                url.set_host(Some(&to)).map_err(|_| {
                    format!("{HOST_MAPPING_KEY} maps PD's host to a name that is not a host")
                })?;
            }
        }
        let tls = if tls_on {
            Some(pem_tls(snapshot)?)
        } else {
            None
        };
        Ok(PdConnection { url, tls })
    }

    /// The client (no proxy, no redirect, PD's deadline for everything) and the URL.
    fn client(self) -> Result<(reqwest::Client, url::Url), String> {
        // As TiSpark: with TLS on, the cluster's CA is the only one trusted.
        // The platform's trust store is read only for a PD asked over https
        // without the cluster's own CA.
        let tls = match self.tls {
            Some(tls) => tls,
            None if self.url.scheme() == "https" => Tls::roots(http::trust_store::platform_roots()),
            None => Tls::roots(Vec::new()),
        };
        let client = http::client(&tls, None, PD_TIMEOUT, PD_TIMEOUT, http::Redirects::None)?;
        Ok((client, self.url))
    }
}

/// A boolean switch, absent = false; a value that is not a boolean is an
/// error (TiSpark fails on it too).
fn switch(snapshot: &Snapshot, key: &str) -> Result<bool, String> {
    match snapshot.get(key) {
        None => Ok(false),
        Some(raw) => parse_bool(raw).ok_or_else(|| format!("{key} is not true or false")),
    }
}

/// `<scheme>://<host:port>/pd/api/v1/status`. With TLS on the scheme is
/// https whatever the address says, as TiSpark builds it from host and port.
fn status_url(pd_address: &str, tls_on: bool) -> Result<url::Url, String> {
    let address = pd_address.trim_end_matches('/');
    let base = if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    };
    let mut url = url::Url::parse(&format!("{base}/pd/api/v1/status"))
        .map_err(|e| format!("the PD address is not usable ({e})"))?;
    if tls_on && url.scheme() != "https" {
        let port = url.port_or_known_default();
        url.set_scheme("https")
            .map_err(|()| "the PD address is not usable for https".to_string())?;
        url.set_port(port)
            .map_err(|()| "the PD address is not usable for https".to_string())?;
    }
    Ok(url)
}

/// TiSpark's `UriHostMapping`: `host:mapped` pairs separated by `;` (an
/// empty value maps nothing). A pair without `:`, or a host named twice, is
/// an error, as it is in TiSpark.
pub fn host_mapping(value: &str) -> Result<Vec<(String, String)>, String> {
    let invalid = || format!("{HOST_MAPPING_KEY} is not a list of host:mapped pairs");
    if value.is_empty() {
        return Ok(Vec::new());
    }
    // Java's split: trailing empty parts are dropped.
    let mut entries: Vec<&str> = value.split(';').collect();
    while entries.len() > 1 && entries.last() == Some(&"") {
        entries.pop();
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for entry in entries {
        let mut parts = entry.split(':');
        let from = parts.next().unwrap_or_default();
        let to = parts.next().ok_or_else(invalid)?;
        if out.iter().any(|(f, _)| f == from) {
            return Err(invalid());
        }
        out.push((from.to_string(), to.to_string()));
    }
    Ok(out)
}

/// The CA, client certificate and key of TiSpark's PEM settings. All three
/// are needed, as in TiSpark.
fn pem_tls(snapshot: &Snapshot) -> Result<Tls, String> {
    if switch(snapshot, JKS_ENABLE_KEY)? {
        return Err(format!(
            "{JKS_ENABLE_KEY} is true, and a JKS keystore cannot be read by the native library \
             (set {TRUST_CERT_KEY}, {KEY_CERT_CHAIN_KEY} and {KEY_FILE_KEY} to PEM files)"
        ));
    }
    let ca = http::tls::certificates(&read_pem(snapshot, TRUST_CERT_KEY)?)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("the file named by {TRUST_CERT_KEY} holds no PEM certificate"))?;
    let not_a_pair = || {
        format!(
            "the files named by {KEY_CERT_CHAIN_KEY} and {KEY_FILE_KEY} are not a PEM \
             certificate and its private key"
        )
    };
    let chain = http::tls::certificates(&read_pem(snapshot, KEY_CERT_CHAIN_KEY)?)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(not_a_pair)?;
    let key = http::tls::private_key(&read_pem(snapshot, KEY_FILE_KEY)?).ok_or_else(not_a_pair)?;
    Tls::with_client(ca, chain, key).map_err(|_| not_a_pair())
}

fn read_pem(snapshot: &Snapshot, key: &str) -> Result<Vec<u8>, String> {
    let path = snapshot
        .get(key)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| format!("{TLS_ENABLE_KEY} is true but {key} is not set"))?;
    files::read_bounded(std::path::Path::new(path), PEM_LIMIT, Links::Follow)
        .map_err(|e| format!("the file named by {key} cannot be read ({e})"))
}

/// The cluster version PD reports at `pd_address`, reached as the
/// snapshot's TLS and host-mapping settings say (none: plain http, or the
/// address's own scheme), or why it could not be had.
pub fn tidb_version(pd_address: &str, snapshot: &Snapshot) -> Result<String, String> {
    ask(PdConnection::new(pd_address, snapshot)?)
}

/// Largest status PD's answer may be.
const STATUS_LIMIT: usize = 64 * 1024;

fn ask(connection: PdConnection) -> Result<String, String> {
    let (client, url) = connection.client()?;
    let bytes = http::on_this_thread(async move {
        let mut response = client
            .get(url)
            .send()
            .await
            .map_err(|e| http::describe(&e))?;
        if !response.status().is_success() {
            return Err(format!(
                "PD answered HTTP {}",
                http::describe_status(response.status())
            ));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("PD's status could not be read ({})", http::describe(&e)))?
        {
            if bytes.len() + chunk.len() > STATUS_LIMIT {
                return Err(format!("PD's status is larger than {STATUS_LIMIT} bytes"));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    })??;
    let status: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("PD's status is not JSON ({e})"))?;
    match status
        .get("version")
        .and_then(|v| v.as_str())
        .map(str::trim)
    {
        Some(v) if !v.is_empty() => Ok(v.chars().take(64).collect()),
        _ => Err("PD's status has no version".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn snapshot(pairs: &[(&str, &str)]) -> Snapshot {
        let mut map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Snapshot::read(&mut map).unwrap()
    }

    #[test]
    fn host_mapping_is_tisparks() {
        assert_eq!(host_mapping(""), Ok(vec![]));
        assert_eq!(
            host_mapping("pd0:10.0.0.1;pd1:10.0.0.2;"),
            Ok(vec![
                ("pd0".to_string(), "10.0.0.1".to_string()),
                ("pd1".to_string(), "10.0.0.2".to_string())
            ])
        );
        assert_eq!(
            host_mapping("a:b:c"),
            Ok(vec![("a".to_string(), "b".to_string())])
        );
        for bad in ["a", "a:b;;c:d", "a:b;a:c", ";"] {
            let e = host_mapping(bad).unwrap_err();
            assert_eq!(
                e,
                "spark.tispark.host_mapping is not a list of host:mapped pairs"
            );
        }
    }

    #[test]
    fn the_url_follows_tls_and_host_mapping() {
        let url = |pd: &str, pairs: &[(&str, &str)]| {
            PdConnection::new(pd, &snapshot(pairs)).map(|c| c.url.to_string())
        };
        assert_eq!(
            url("pd0:2379", &[(HOST_MAPPING_KEY, "pd0:127.0.0.1")]).unwrap(),
            "http://127.0.0.1:2379/pd/api/v1/status"
        );
        assert_eq!(
            url("pd9:2379/", &[(HOST_MAPPING_KEY, "pd0:127.0.0.1")]).unwrap(),
            "http://pd9:2379/pd/api/v1/status"
        );
        assert_eq!(
            url("http://pd0:80", &[(TLS_ENABLE_KEY, "false")]).unwrap(),
            "http://pd0/pd/api/v1/status"
        );
        assert_eq!(
            url("pd0:2379", &[(TLS_ENABLE_KEY, "maybe")]).err(),
            Some("spark.tispark.tikv.tls_enable is not true or false".to_string())
        );
        assert_eq!(
            url("pd0:2379", &[(TLS_ENABLE_KEY, "true")]).err(),
            Some(
                "spark.tispark.tikv.tls_enable is true but \
                 spark.tispark.tikv.trust_cert_collection is not set"
                    .to_string()
            )
        );
        assert_eq!(
            url(
                "pd0:2379",
                &[(TLS_ENABLE_KEY, "true"), (JKS_ENABLE_KEY, "TRUE")]
            )
            .err(),
            Some(
                "spark.tispark.tikv.jks_enable is true, and a JKS keystore cannot be read by \
                 the native library (set spark.tispark.tikv.trust_cert_collection, \
                 spark.tispark.tikv.key_cert_chain and spark.tispark.tikv.key_file to PEM files)"
                    .to_string()
            )
        );
        assert_eq!(
            url(
                "pd0:2379",
                &[
                    (TLS_ENABLE_KEY, "true"),
                    (TRUST_CERT_KEY, "/nonexistent/SECRET-ca.pem")
                ]
            )
            .err(),
            Some(
                "the file named by spark.tispark.tikv.trust_cert_collection cannot be read \
                 (it does not exist)"
                    .to_string()
            )
        );
    }

    #[test]
    fn with_tls_the_scheme_is_https_on_the_same_port() {
        assert_eq!(
            status_url("pd0:2379", true).unwrap().as_str(),
            "https://pd0:2379/pd/api/v1/status"
        );
        assert_eq!(
            status_url("http://pd0", true).unwrap().as_str(),
            "https://pd0:80/pd/api/v1/status"
        );
        assert_eq!(
            status_url("https://pd0:2379/", false).unwrap().as_str(),
            "https://pd0:2379/pd/api/v1/status"
        );
    }
}
