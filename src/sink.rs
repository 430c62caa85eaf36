//! Where a report goes and how it gets there: one HTTP(S) POST with hard
//! deadlines and no retry, or one JSON line appended to a local file
//! (`file://…`, nothing on the network).

use std::fmt;
use std::io::Write;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Deadline for the TCP (and proxy) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Deadline for the whole request, from start to the response's status line.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Redirects followed at most (a redirect loop ends here).
pub const MAX_REDIRECTS: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    Http(url::Url),
    File(PathBuf),
}

impl Sink {
    pub fn parse(url: &str) -> Result<Sink, String> {
        let parsed = url::Url::parse(url.trim())
            .map_err(|e| format!("the telemetry URL {} is not a valid URL ({e})", redact(url)))?;
        match parsed.scheme() {
            "http" | "https" if parsed.host_str().is_some() => Ok(Sink::Http(parsed)),
            "file" => parsed.to_file_path().map(Sink::File).map_err(|_| {
                format!(
                    "the telemetry URL {} does not name a local file",
                    redact(url)
                )
            }),
            _ => Err(format!(
                "the telemetry URL {} is neither http(s)://host/… nor file:///path",
                redact(url)
            )),
        }
    }
}

/// The URL without user name, password, query or fragment: safe to log.
impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::Http(url) => {
                let mut shown = url.clone();
                let _ = shown.set_username("");
                let _ = shown.set_password(None);
                shown.set_query(None);
                shown.set_fragment(None);
                write!(f, "{}", crate::log_line::shown(shown.as_str()))
            }
            // Escaped: a control character in the path cannot forge a log line.
            Sink::File(path) => write!(
                f,
                "file://{}",
                crate::log_line::shown(&path.to_string_lossy())
            ),
        }
    }
}

/// A URL as it may be logged: without user name, password, query or
/// fragment, control characters escaped. A URL that does not parse is never
/// echoed: at most its scheme and host, when they can be told apart.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(u) if u.has_host() => Sink::Http(u).to_string(),
        Ok(u) if u.scheme() == "file" => crate::log_line::quoted(u.path()),
        _ => scheme_and_host(url.trim()),
    }
}

/// `scheme://host` of a URL that does not parse, or a placeholder.
fn scheme_and_host(url: &str) -> String {
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '[' | ']'))
    };
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit('@').next().unwrap_or("");
        let host = match host_port.rsplit_once(':') {
            Some((h, _)) if !h.ends_with(']') || h.starts_with('[') => h,
            _ => host_port,
        };
        if plain(scheme) && plain(host) {
            return format!("{scheme}://{host}/… (not shown: it does not parse)");
        }
    }
    "(not shown: it does not parse)".to_string()
}

/// How a delivery ended; the audit trail records it as `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// POSTed; the endpoint answered 2xx.
    Sent,
    /// Appended to a `file://` sink.
    Written,
    /// Not delivered (or not acknowledged): see `error`.
    Failed,
    /// The application ended while the report was being delivered: it may
    /// or may not have arrived (JVM shutdown waits only the flush bound).
    #[serde(rename = "not_confirmed")]
    NotConfirmed,
}

/// What happened to one delivery. Its log line never contains "Telemetry report",
/// so that `grep "Telemetry report" spark.log | tail -n 1` stays the report itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub delivery: Delivery,
    /// The endpoint's answer when it was sent.
    pub http_status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    pub elapsed: Duration,
    /// Where the report went in the end, redacted, when the endpoint
    /// redirected it (always within its own origin).
    pub redirected_to: Option<String>,
}

impl Outcome {
    /// Not delivered, and why; nothing was sent.
    pub fn failed(why: String, elapsed: Duration) -> Outcome {
        Outcome {
            delivery: Delivery::Failed,
            http_status: None,
            error: Some(why),
            elapsed,
            redirected_to: None,
        }
    }

    pub fn is_success(&self) -> bool {
        matches!(self.delivery, Delivery::Sent | Delivery::Written)
    }

    /// Where the report went: the final URL of a redirect, or the sink.
    pub fn destination(&self, sink: &Sink) -> String {
        self.redirected_to
            .clone()
            .unwrap_or_else(|| sink.to_string())
    }

    /// One line for the log.
    pub fn describe(&self, sink: &Sink) -> String {
        let ms = self.elapsed.as_millis();
        let to = self.destination(sink);
        let via = match &self.redirected_to {
            Some(_) => format!(" (redirected from {sink})"),
            None => String::new(),
        };
        match self.delivery {
            Delivery::Written => format!("Telemetry written to {sink} in {ms} ms."),
            Delivery::Sent => format!(
                "Telemetry sent to {to}{via}: HTTP {} in {ms} ms.",
                self.http_status.unwrap_or_default()
            ),
            Delivery::Failed => format!(
                "Failed to report telemetry to {to}{via} after {ms} ms: {}. It is not retried.",
                self.error.as_deref().unwrap_or("unknown")
            ),
            Delivery::NotConfirmed => format!(
                "The telemetry report to {to} is not confirmed: {}. It may not have \
                 arrived; it is not retried.",
                self.error.as_deref().unwrap_or("unknown")
            ),
        }
    }
}

/// The HTTP client of one destination (see [`http_client`]).
#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
}

/// The HTTP client: deadlines, bounded redirects within the endpoint's own
/// origin (scheme, host and port: a report never goes anywhere else), no
/// `Referer`, proxies from the usual environment variables (`HTTPS_PROXY`,
/// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`; through a proxy the report always
/// goes in a `CONNECT` tunnel), an extra trusted CA bundle when given, and
/// host names resolved on the calling thread ([`ResolveOnThisThread`]). The
/// platform's trust store (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or the
/// distribution's bundle) is read only for an `https` sink: a plain-http or
/// file sink sets up no TLS roots (redirects stay within the sink's origin,
/// so never to https).
pub fn http_client(sink: &Sink, extra_ca_pem: Option<&[u8]>) -> Result<HttpClient, String> {
    let mut roots = Vec::new();
    if let Some(pem) = extra_ca_pem {
        roots =
            certificates(pem).map_err(|e| format!("the CA bundle cannot be read as PEM ({e})"))?;
        if roots.is_empty() {
            return Err("the CA bundle holds no certificate".to_string());
        }
    }
    let proxy = match sink {
        Sink::Http(url) => {
            if url.scheme() == "https" {
                roots.extend(platform_roots());
            }
            proxy_from_env(url, |k| std::env::var(k).ok())?
        }
        Sink::File(_) => None,
    };
    Ok(HttpClient {
        agent: agent(Tls::roots(roots), proxy, CONNECT_TIMEOUT),
    })
}

/// What a connection trusts, and the client certificate it shows (PD's mutual TLS).
pub(crate) struct Tls {
    roots: Vec<ureq::tls::Certificate<'static>>,
    client: Option<ureq::tls::ClientCert>,
}

impl Tls {
    pub(crate) fn roots(roots: Vec<ureq::tls::Certificate<'static>>) -> Tls {
        Tls {
            roots,
            client: None,
        }
    }

    /// The roots and a client certificate chain with its key. The pair is
    /// checked here, so that a key that does not fit is an error, not a
    /// failure inside the TLS handshake.
    pub(crate) fn with_client(
        roots: Vec<ureq::tls::Certificate<'static>>,
        chain: Vec<ureq::tls::Certificate<'static>>,
        key: ureq::tls::PrivateKey<'static>,
    ) -> Result<Tls, String> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let der_chain: Vec<CertificateDer<'static>> = chain
            .iter()
            .map(|c| CertificateDer::from(c.der().to_vec()))
            .collect();
        let der_key = PrivateKeyDer::try_from(key.der().to_vec()).map_err(|e| e.to_string())?;
        rustls::ClientConfig::builder_with_provider(crypto())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_client_auth_cert(der_chain, der_key)
            .map_err(|e| e.to_string())?;
        Ok(Tls {
            roots,
            client: Some(ureq::tls::ClientCert::new_with_certs(&chain, key)),
        })
    }
}

fn crypto() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// An agent that follows no redirect itself, treats every status as an
/// answer, connects within `connect`, and resolves on this thread. Its TLS
/// roots are always the given ones (none at all for plain http).
pub(crate) fn agent(tls: Tls, proxy: Option<ureq::Proxy>, connect: Duration) -> ureq::Agent {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::new_with_certs(&tls.roots))
        .client_cert(tls.client)
        .unversioned_rustls_crypto_provider(crypto())
        .build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .proxy(proxy)
        .timeout_connect(Some(connect))
        .max_redirects(0)
        .http_status_as_error(false)
        .save_redirect_history(false)
        .max_idle_connections(0)
        .user_agent(concat!("tispark-telemetry/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::new(),
        ResolveOnThisThread,
    )
}

/// The certificates of a PEM bundle (other items, such as keys, are skipped).
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| describe(&e))? {
            out.push(c);
        }
    }
    Ok(out)
}

/// The most one file of the platform's trust store may hold (Debian's bundle
/// is about 220 KB).
#[cfg(not(target_os = "macos"))]
const STORE_FILE_LIMIT: u64 = 4 << 20;
/// The most entries of one certificate directory looked at.
#[cfg(not(target_os = "macos"))]
const STORE_DIR_ENTRIES: usize = 10_000;

/// The platform's trust store, found where OpenSSL (and rustls-native-certs)
/// look: `SSL_CERT_FILE` and `SSL_CERT_DIR` when either is set, else the
/// distribution's bundle and certificate directories (openssl-probe's list).
/// Each file is read as every file here is (`files::read_bounded`): a regular
/// file only, at most 4 MiB, opened without blocking; a link is followed (a
/// certificate directory is made of them). rustls-native-certs itself is not
/// used: it reads a FIFO or a file of any size. What cannot be read is left
/// out (an https endpoint it would have vouched for then fails with a
/// certificate error).
#[cfg(not(target_os = "macos"))]
pub(crate) fn platform_roots() -> Vec<ureq::tls::Certificate<'static>> {
    let (file, dirs) = store_paths();
    let mut seen = std::collections::HashSet::new();
    let mut roots = Vec::new();
    if let Some(file) = &file {
        read_store_file(file, &mut seen, &mut roots);
    }
    for dir in &dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.take(STORE_DIR_ENTRIES).flatten() {
            read_store_file(&entry.path(), &mut seen, &mut roots);
        }
    }
    roots.sort_unstable_by(|a, b| a.der().cmp(b.der()));
    roots.dedup_by(|a, b| a.der() == b.der());
    log::debug!(
        "The platform's trust store: {} certificates, from {} and {}.",
        roots.len(),
        file.as_deref()
            .map_or("no bundle".to_string(), |f| f.display().to_string()),
        if dirs.is_empty() {
            "no directory".to_string()
        } else {
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        }
    );
    roots
}

/// On macOS the platform's store is the Keychain, not files: read through
/// rustls-native-certs (macOS libraries are built elsewhere, see
/// docs/platforms.md).
#[cfg(target_os = "macos")]
pub(crate) fn platform_roots() -> Vec<ureq::tls::Certificate<'static>> {
    rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect()
}

/// The trust store's bundle and directories: the environment's when it names
/// either (`SSL_CERT_DIR` a `:`-separated list), else what openssl-probe
/// finds on this host.
#[cfg(not(target_os = "macos"))]
fn store_paths() -> (Option<PathBuf>, Vec<PathBuf>) {
    let file = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let dirs: Vec<PathBuf> = std::env::var_os("SSL_CERT_DIR")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if file.is_some() || !dirs.is_empty() {
        return (file, dirs);
    }
    let probed = openssl_probe::probe();
    (probed.cert_file, probed.cert_dir)
}

/// Adds the certificates of one trust store file, once per file: a
/// certificate directory names each certificate twice (its hash, its name)
/// and often holds the bundle too. Anything but a regular file is never
/// opened (opening a device may do something); a malformed PEM block is
/// skipped, the file's other certificates kept.
#[cfg(not(target_os = "macos"))]
fn read_store_file(
    path: &std::path::Path,
    seen: &mut std::collections::HashSet<(u64, u64)>,
    roots: &mut Vec<ureq::tls::Certificate<'static>>,
) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if !meta.is_file() || !seen.insert((meta.dev(), meta.ino())) {
        return;
    }
    let Ok(pem) = crate::files::read_bounded(path, STORE_FILE_LIMIT, crate::files::Links::Follow)
    else {
        return;
    };
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => roots.push(c.to_owned()),
            Ok(_) | Err(_) => {}
        }
    }
}

/// The proxy for `url` from the environment, as curl and most HTTP clients
/// read it: `HTTPS_PROXY` for https, `HTTP_PROXY` for http, else `ALL_PROXY`
/// (upper case first, then lower case), and none for a host `NO_PROXY`
/// names. A proxy URL that does not parse is an error that never shows it.
fn proxy_from_env(
    url: &url::Url,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<ureq::Proxy>, String> {
    let var = |name: &str| {
        env(name)
            .or_else(|| env(&name.to_ascii_lowercase()))
            .filter(|v| !v.trim().is_empty())
    };
    let scheme_var = if url.scheme() == "https" {
        "HTTPS_PROXY"
    } else {
        "HTTP_PROXY"
    };
    let Some(raw) = var(scheme_var).or_else(|| var("ALL_PROXY")) else {
        return Ok(None);
    };
    let invalid = || {
        format!(
            "the proxy in the environment ({}) is not a usable proxy URL",
            redact(&raw)
        )
    };
    let with_scheme = if raw.contains("://") {
        raw.trim().to_string()
    } else {
        format!("http://{}", raw.trim())
    };
    let parsed = url::Url::parse(&with_scheme).map_err(|_| invalid())?;
    let protocol = ureq::ProxyProtocol::try_from(parsed.scheme()).map_err(|_| invalid())?;
    let mut builder = ureq::Proxy::builder(protocol).host(parsed.host_str().ok_or_else(invalid)?);
    if let Some(port) = parsed.port() {
        builder = builder.port(port);
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    if !parsed.username().is_empty() {
        builder = builder.username(&decode(parsed.username()));
        if let Some(password) = parsed.password() {
            builder = builder.password(&decode(password));
        }
    }
    for host in var("NO_PROXY").unwrap_or_default().split(',') {
        let host = host.trim();
        if !host.is_empty() {
            builder = builder.no_proxy(host);
        }
    }
    builder.build().map(Some).map_err(|_| invalid())
}

/// Resolves host names with the system resolver on the thread that sends, so
/// that telemetry never has more than its one thread (ureq's own resolver
/// starts a thread for each look-up that has a deadline). The cost: a system
/// resolver that hangs holds the telemetry thread past the deadlines above
/// until it gives up (its own timeouts, `/etc/resolv.conf`); the driver never
/// waits for that thread, and JVM shutdown waits for it at most the flush bound.
#[derive(Debug)]
pub struct ResolveOnThisThread;

impl ureq::unversioned::resolver::Resolver for ResolveOnThisThread {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(ureq::Error::HostNotFound);
        };
        let host_port =
            ureq::unversioned::resolver::DefaultResolver::host_and_port(scheme, authority)
                .ok_or(ureq::Error::HostNotFound)?;
        #[cfg(test)]
        tests::RESOLVED_ON
            .lock()
            .unwrap()
            .push((host_port.clone(), std::thread::current().id()));
        let mut out = self.empty();
        for addr in host_port.to_socket_addrs()? {
            if out.try_push(addr).is_err() {
                break; // as many as ureq keeps
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

/// Delivers `body` once. Never panics, never retries, always within the deadlines.
pub fn deliver(client: &HttpClient, sink: &Sink, body: &str) -> Outcome {
    let start = Instant::now();
    let (result, redirected_to) = match sink {
        Sink::File(path) => (append_line(path, body).map(|()| None), None),
        Sink::Http(url) => post(&client.agent, url, body),
    };
    let elapsed = start.elapsed();
    match result {
        Ok(http_status) => Outcome {
            delivery: match sink {
                Sink::File(_) => Delivery::Written,
                Sink::Http(_) => Delivery::Sent,
            },
            http_status,
            error: None,
            elapsed,
            redirected_to,
        },
        Err(why) => Outcome {
            redirected_to,
            ..Outcome::failed(why, elapsed)
        },
    }
}

/// The status (or why it failed), and the final URL when it was redirected.
/// Redirects are followed here, within the first URL's origin and at most
/// [`MAX_REDIRECTS`] times, all within [`TOTAL_TIMEOUT`]: 307 and 308 repeat
/// the POST with its body; 301, 302 and 303 go on with a GET without body, as
/// HTTP clients do. No `Referer` is ever sent.
fn post(
    agent: &ureq::Agent,
    first: &url::Url,
    body: &str,
) -> (Result<Option<u16>, String>, Option<String>) {
    let deadline = Instant::now() + TOTAL_TIMEOUT;
    let mut url = first.clone();
    let mut method_post = true;
    let redirected = |url: &url::Url| (url != first).then(|| redact(url.as_str()));
    for hop in 0..=MAX_REDIRECTS {
        let left = deadline.saturating_duration_since(Instant::now());
        let sent = if method_post {
            agent
                .post(url.as_str())
                .config()
                .timeout_global(Some(left))
                .build()
                .header("content-type", "application/json")
                .send(body.as_bytes())
        } else {
            agent
                .get(url.as_str())
                .config()
                .timeout_global(Some(left))
                .build()
                .call()
        };
        let response = match sent {
            Ok(response) => response,
            Err(e) => return (Err(describe(&e)), redirected(&url)),
        };
        let status = response.status();
        // The response body is never read: a huge or endless body costs nothing.
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        drop(response);
        let code = status.as_u16();
        let Some(location) = location.filter(|_| matches!(code, 301 | 302 | 303 | 307 | 308))
        else {
            let result = if status.is_success() {
                Ok(Some(code))
            } else {
                Err(format!(
                    "the endpoint answered HTTP {}",
                    describe_status(status)
                ))
            };
            return (result, redirected(&url));
        };
        if hop == MAX_REDIRECTS {
            return (
                Err(format!("more than {MAX_REDIRECTS} redirects")),
                redirected(&url),
            );
        }
        let next = match url.join(&location) {
            Ok(next) => next,
            Err(_) => {
                return (
                    Err("the endpoint redirected to a location that does not parse".to_string()),
                    redirected(&url),
                )
            }
        };
        if next.origin() != first.origin() {
            // Not to another host, port or scheme (so never from https
            // to plain http): the operator chose where reports go.
            return (
                Err(format!(
                    "the endpoint redirected to another origin ({}), where the report is not sent",
                    redact(next.as_str())
                )),
                redirected(&url),
            );
        }
        if matches!(code, 301..=303) {
            method_post = false;
        }
        url = next;
    }
    unreachable!("the loop returns by its last hop")
}

/// `404 Not Found`: the code and its reason, as HTTP names it.
pub(crate) fn describe_status(status: ureq::http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// Why a request failed, in words; never a URL (the caller names it, redacted).
pub(crate) fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(ureq::Timeout::Connect) => "timed out while connecting".to_string(),
        ureq::Error::Timeout(ureq::Timeout::Global | ureq::Timeout::PerCall) => {
            "timed out before the endpoint answered".to_string()
        }
        ureq::Error::Timeout(which) => format!("timed out ({which})"),
        ureq::Error::Io(io) => format!("connection error: {io}"),
        ureq::Error::HostNotFound => "the host name could not be resolved".to_string(),
        ureq::Error::ConnectionFailed => "the connection failed".to_string(),
        ureq::Error::Rustls(tls) => format!("TLS: {tls}"),
        // The proxy's own words, as any other error's text: escaped where
        // they are shown (the log bridge, the tool's stderr and status, the
        // audit trail's JSON), not here.
        ureq::Error::ConnectProxyFailed(why) => {
            format!("the proxy refused to open a tunnel ({why})")
        }
        ureq::Error::InvalidProxyUrl => "the proxy URL is not usable".to_string(),
        other => other.to_string(),
    }
}

/// Appends one line to a regular file, created 0600 when missing.
fn append_line(path: &std::path::Path, body: &str) -> Result<(), String> {
    let write = || -> std::io::Result<()> {
        let mut f = crate::files::open_append_private(path)?;
        // One write call for the whole line, so concurrent writers do not interleave.
        f.write_all(format!("{body}\n").as_bytes())
    };
    write().map_err(|e| format!("cannot append to {} ({e})", crate::files::escaped(path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read};

    /// Each look-up of [`ResolveOnThisThread`]: the name and the thread it ran on.
    pub(super) static RESOLVED_ON: std::sync::Mutex<Vec<(String, std::thread::ThreadId)>> =
        std::sync::Mutex::new(Vec::new());

    /// An HTTP server on loopback that takes one request on each of
    /// `answers.len()` connections, answers it, and returns what it was sent
    /// (head and body), request by request.
    fn serve(answers: Vec<&'static str>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for answer in answers {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                (&stream).write_all(answer.as_bytes()).unwrap();
                requests.push(head + &String::from_utf8(body).unwrap());
            }
            requests
        });
        (port, server)
    }

    #[test]
    fn a_failure_after_a_redirect_names_where_it_went_and_where_from() {
        let (port, server) = serve(vec![
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: /b\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
        ]);
        let sink = Sink::parse(&format!("http://127.0.0.1:{port}/a")).unwrap();
        let outcome = deliver(&http_client(&sink, None).unwrap(), &sink, "{}");
        let requests = server.join().unwrap();
        assert!(
            requests[1].starts_with("POST /b HTTP/1.1\r\n"),
            "{requests:?}"
        );
        assert_eq!(outcome.delivery, Delivery::Failed);
        assert_eq!(
            outcome.describe(&sink),
            format!(
                "Failed to report telemetry to http://127.0.0.1:{port}/b (redirected from \
                 http://127.0.0.1:{port}/a) after {} ms: the endpoint answered HTTP 503 Service \
                 Unavailable. It is not retried.",
                outcome.elapsed.as_millis()
            )
        );
    }

    fn proxy_for(url: &str, env: &[(&str, &str)]) -> Result<Option<ureq::Proxy>, String> {
        let env: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        proxy_from_env(&url::Url::parse(url).unwrap(), |k| env.get(k).cloned())
    }

    #[test]
    fn the_proxy_is_the_schemes_then_all_proxy_upper_case_first() {
        let https = "https://collector.example/r";
        let http = "http://collector.example/r";
        let both: &[(&str, &str)] = &[
            ("HTTPS_PROXY", "s.example:1"),
            ("HTTP_PROXY", "h.example:2"),
        ];
        let lower: &[(&str, &str)] =
            &[("https_proxy", "l.example:3"), ("ALL_PROXY", "a.example:4")];
        let upper_wins: &[(&str, &str)] = &[("HTTPS_PROXY", "u.example:5"), ("https_proxy", "x:6")];
        // (endpoint, environment, the proxy's host:port); empty is unset.
        let cases = [
            (https, both, Some("s.example:1")),
            (http, both, Some("h.example:2")),
            (https, lower, Some("l.example:3")),
            (http, lower, Some("a.example:4")),
            (https, upper_wins, Some("u.example:5")),
            (https, &[("HTTPS_PROXY", " ")], None),
            (https, &[], None),
        ];
        for (url, env, expected) in cases {
            let found = proxy_for(url, env)
                .unwrap()
                .map(|p| format!("{}:{}", p.host(), p.port()));
            assert_eq!(found.as_deref(), expected, "{url} {env:?}");
        }
    }

    #[test]
    fn the_proxys_user_and_password_are_decoded_and_never_shown() {
        let p = proxy_for(
            "https://collector.example/r",
            &[("HTTPS_PROXY", "http://us%20er:p%40ss@proxy.example:3128")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.protocol(), ureq::ProxyProtocol::Http);
        assert_eq!((p.host(), p.port()), ("proxy.example", 3128));
        assert_eq!((p.username(), p.password()), (Some("us er"), Some("p@ss")));
        let bad = proxy_for(
            "https://collector.example/r",
            &[("HTTPS_PROXY", "ftp://user:SECRET@proxy.example/")],
        )
        .unwrap_err();
        assert_eq!(
            bad,
            "the proxy in the environment (ftp://proxy.example/) is not a usable proxy URL"
        );
    }

    #[test]
    fn no_proxy_names_the_hosts_reached_directly() {
        let env = [
            ("HTTPS_PROXY", "proxy.example:3128"),
            ("NO_PROXY", "localhost, .internal.example"),
        ];
        let p = proxy_for("https://collector.example/r", &env)
            .unwrap()
            .unwrap();
        let uri = |u: &str| u.parse::<ureq::http::Uri>().unwrap();
        assert!(p.is_no_proxy(&uri("https://localhost/r")));
        assert!(p.is_no_proxy(&uri("https://a.internal.example/r")));
        assert!(!p.is_no_proxy(&uri("https://collector.example/r")));
    }

    #[test]
    fn a_host_name_is_resolved_on_the_sending_thread() {
        let (port, server) = serve(vec!["HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]);
        let sink = Sink::parse(&format!("http://localhost:{port}/r")).unwrap();
        let outcome = deliver(&http_client(&sink, None).unwrap(), &sink, "{\"k\":1}");
        assert_eq!(outcome.http_status, Some(200), "{outcome:?}");
        let request = server.join().unwrap().remove(0);
        assert!(request.starts_with("POST /r HTTP/1.1\r\n"), "{request}");
        assert!(request.ends_with("\r\n\r\n{\"k\":1}"), "{request}");
        assert!(
            !request.to_ascii_lowercase().contains("referer"),
            "{request}"
        );
        // ureq's own resolver would have looked the name up on a thread of its own.
        let name = format!("localhost:{port}");
        let looked_up: Vec<_> = RESOLVED_ON
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, on)| *on)
            .collect();
        assert_eq!(looked_up, vec![std::thread::current().id()]);
    }

    #[test]
    fn parses_http_https_and_file_urls() {
        assert!(matches!(
            Sink::parse("https://telemetry.pingcap.com/api/v1/tispark/report"),
            Ok(Sink::Http(_))
        ));
        assert!(matches!(
            Sink::parse(" http://127.0.0.1:9/x "),
            Ok(Sink::Http(_))
        ));
        assert_eq!(
            Sink::parse("file:///tmp/t.jsonl"),
            Ok(Sink::File(PathBuf::from("/tmp/t.jsonl")))
        );
    }

    #[test]
    fn rejects_malformed_and_unsupported_urls_with_a_reason() {
        for bad in ["", "not a url", "ftp://host/x", "http://", "mailto:a@b"] {
            let err = Sink::parse(bad).unwrap_err();
            assert!(err.contains("telemetry URL"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn shown_url_hides_credentials_and_query() {
        let sink = Sink::parse("https://user:pw@example.com/r?token=abc#f").unwrap();
        assert_eq!(sink.to_string(), "https://example.com/r");
        let err = Sink::parse("ftp://user:pw@example.com/r").unwrap_err();
        assert!(!err.contains("pw"), "{err}");
    }

    #[test]
    fn file_sink_appends_one_line_per_report() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sink/r.jsonl");
        let sink = Sink::File(path.clone());
        let client = http_client(&sink, None).unwrap();
        for body in ["{\"a\":1}", "{\"a\":2}"] {
            let outcome = deliver(&client, &sink, body);
            assert!(outcome.is_success(), "{outcome:?}");
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
    }

    #[test]
    fn a_ca_bundle_without_certificates_is_refused() {
        let sink = Sink::parse("https://collector.example/r").unwrap();
        assert!(http_client(&sink, Some(b"not pem")).is_err());
    }
}
