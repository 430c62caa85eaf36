//! The TiDB version, asked of PD (`GET /pd/api/v1/status`, field `version`)
//! on the first configured PD address, within a short deadline. PD is inside
//! the cluster's network: it is asked directly, never through the HTTP(S)
//! proxy of the environment (as TiSpark's own PD client does).

use std::time::Duration;

/// PD is asked once; a slow PD costs at most this.
pub const PD_TIMEOUT: Duration = Duration::from_secs(2);

/// The cluster version PD reports, or why it could not be had.
pub async fn tidb_version(pd_address: &str) -> Result<String, String> {
    let base = if pd_address.contains("://") {
        pd_address.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", pd_address.trim_end_matches('/'))
    };
    let url = reqwest::Url::parse(&format!("{base}/pd/api/v1/status"))
        .map_err(|e| format!("the PD address is not usable ({e})"))?;
    let client = reqwest::Client::builder()
        // The platform's trust store is read only for a PD asked over https.
        .tls_built_in_native_certs(url.scheme() == "https")
        .no_proxy()
        .dns_resolver(std::sync::Arc::new(crate::sink::ResolveOnThisThread))
        .connect_timeout(PD_TIMEOUT)
        .timeout(PD_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("no HTTP client for PD ({})", crate::sink::error_chain(&e)))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| crate::sink::error_chain(&e.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("PD answered HTTP {}", response.status()));
    }
    let bytes = read_limited(response, 64 * 1024).await?;
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

async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| crate::sink::error_chain(&e))?
    {
        out.extend_from_slice(&chunk);
        if out.len() > limit {
            return Err(format!("PD's status is larger than {limit} bytes"));
        }
    }
    Ok(out)
}
