//! Where a report goes and how it gets there: one HTTP(S) POST with hard
//! deadlines and no retry, or one JSON line appended to a local file
//! (`file://…`, nothing on the network).

use std::fmt;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
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
    Http(reqwest::Url),
    File(PathBuf),
}

impl Sink {
    pub fn parse(url: &str) -> Result<Sink, String> {
        let parsed = reqwest::Url::parse(url.trim())
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
                write!(f, "{shown}")
            }
            // Debug-escaped: a control character in the path cannot forge a log line.
            Sink::File(path) => write!(f, "file://{}", path.to_string_lossy().escape_debug()),
        }
    }
}

/// A URL as it may be logged: without user name, password, query or
/// fragment, control characters escaped. A URL that does not parse is never
/// echoed: at most its scheme and host, when they can be told apart.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url.trim()) {
        Ok(u) if u.has_host() => Sink::Http(u).to_string(),
        Ok(u) if u.scheme() == "file" => format!("{:?}", u.path()),
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
        self.delivery != Delivery::Failed
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
        }
    }
}

/// The HTTP client: deadlines, bounded redirects within the endpoint's own
/// origin (scheme, host and port: a report never goes anywhere else), no
/// `Referer`, proxies from the usual
/// environment variables (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`),
/// an extra trusted CA bundle when given, and host names resolved on the
/// calling thread ([`ResolveOnThisThread`]). The platform's trust store
/// (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or the distribution's bundle) is read
/// only for an `https` sink: a plain-http or file sink sets up no TLS roots
/// (redirects stay within the sink's origin, so never to https).
pub fn http_client(sink: &Sink, extra_ca_pem: Option<&[u8]>) -> Result<reqwest::Client, String> {
    let https = matches!(sink, Sink::Http(url) if url.scheme() == "https");
    let mut builder = reqwest::Client::builder()
        .tls_built_in_native_certs(https)
        .dns_resolver(std::sync::Arc::new(ResolveOnThisThread))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .referer(false)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let first = attempt.previous().first().map(reqwest::Url::origin);
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if first.is_some_and(|o| o != attempt.url().origin()) {
                // Not to another host, port or scheme (so never from https
                // to plain http): the operator chose where reports go.
                let elsewhere = redact(attempt.url().as_str());
                attempt.error(format!(
                    "the endpoint redirected to another origin ({elsewhere}), where the \
                     report is not sent"
                ))
            } else {
                attempt.follow()
            }
        }))
        .user_agent(concat!("tispark-telemetry/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = extra_ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("the CA bundle cannot be read as PEM ({e})"))?;
        if certs.is_empty() {
            return Err("the CA bundle holds no certificate".to_string());
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| format!("the HTTP client cannot be built ({})", error_chain(&e)))
}

/// Resolves host names with the system resolver on the thread that sends, so
/// that telemetry never has more than its one thread: reqwest's default
/// resolver runs each look-up on a thread of tokio's blocking pool, a second
/// thread while the report is sent. The cost: a system resolver that hangs
/// holds the telemetry thread past the deadlines above until it gives up
/// (its own timeouts, `/etc/resolv.conf`); the driver never waits for that
/// thread, and JVM shutdown waits for it at most the flush bound.
pub struct ResolveOnThisThread;

impl reqwest::dns::Resolve for ResolveOnThisThread {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port in.
            let addrs: Vec<SocketAddr> = (host.as_str(), 0).to_socket_addrs()?.collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Delivers `body` once. Never panics, never retries, always within the deadlines.
pub async fn deliver(client: &reqwest::Client, sink: &Sink, body: &str) -> Outcome {
    let start = Instant::now();
    let (result, redirected_to) = match sink {
        Sink::File(path) => (append_line(path, body).map(|()| None), None),
        Sink::Http(url) => post(client, url.clone(), body.to_string()).await,
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
async fn post(
    client: &reqwest::Client,
    url: reqwest::Url,
    body: String,
) -> (Result<Option<u16>, String>, Option<String>) {
    let sent = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        // The URL is named by the caller, redacted; reqwest's copy may hold credentials.
        Err(e) => return (Err(error_chain(&e.without_url())), None),
    };
    let status = response.status();
    let redirected_to = (response.url() != &url).then(|| redact(response.url().as_str()));
    // The response body is not read: a huge or endless body costs nothing.
    drop(response);
    let result = if status.is_success() {
        Ok(Some(status.as_u16()))
    } else {
        Err(format!("the endpoint answered HTTP {status}"))
    };
    (result, redirected_to)
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

/// An error with its causes, `a: b: c`, without repeating itself.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let path =
            std::env::temp_dir().join(format!("tt-sink-{}/r.jsonl", uuid::Uuid::new_v4().simple()));
        let sink = Sink::File(path.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = http_client(&sink, None).unwrap();
        for body in ["{\"a\":1}", "{\"a\":2}"] {
            let outcome = rt.block_on(deliver(&client, &sink, body));
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
