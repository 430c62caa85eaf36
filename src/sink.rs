//! Where a report goes and how it gets there: one HTTP(S) POST with hard
//! deadlines and no retry, or one JSON line appended to a local file
//! (`file://…`, nothing on the network).

use crate::http;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use crate::http::{CONNECT_TIMEOUT, MAX_REDIRECTS, TOTAL_TIMEOUT};

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
    client: reqwest::Client,
}

/// The HTTP client: deadlines ([`CONNECT_TIMEOUT`], [`TOTAL_TIMEOUT`] in
/// all), at most [`MAX_REDIRECTS`] redirects within the endpoint's own origin
/// (scheme, host and port: a report never goes anywhere else), no `Referer`,
/// the proxy of the usual environment variables (`HTTPS_PROXY`, `HTTP_PROXY`,
/// `ALL_PROXY`, `NO_PROXY`: see [`http::proxy`]), an extra trusted CA bundle
/// when given, and host names resolved on the sending thread. The platform's
/// trust store (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or the distribution's
/// bundle) is read only for an `https` sink: a plain-http or file sink sets
/// up no TLS roots (redirects stay within the sink's origin, so never to
/// https).
pub fn http_client(sink: &Sink, extra_ca_pem: Option<&[u8]>) -> Result<HttpClient, String> {
    client_with_env(sink, extra_ca_pem, |k| std::env::var(k).ok())
}

fn client_with_env(
    sink: &Sink,
    extra_ca_pem: Option<&[u8]>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<HttpClient, String> {
    let mut roots = Vec::new();
    if let Some(pem) = extra_ca_pem {
        roots = http::tls::certificates(pem)
            .map_err(|e| format!("the CA bundle cannot be read as PEM ({e})"))?;
        if roots.is_empty() {
            return Err("the CA bundle holds no certificate".to_string());
        }
    }
    let proxy = match sink {
        Sink::Http(url) => {
            if url.scheme() == "https" {
                roots.extend(http::trust_store::platform_roots());
            }
            http::proxy::proxy_from_env(url, env)?
        }
        Sink::File(_) => None,
    };
    let proxy = proxy.map(|p| p.to_reqwest()).transpose()?;
    let client = http::client(
        &http::tls::Tls::roots(roots),
        proxy,
        CONNECT_TIMEOUT,
        TOTAL_TIMEOUT,
        http::Redirects::WithinOrigin,
    )?;
    Ok(HttpClient { client })
}

/// Delivers `body` once. Never panics, never retries, always within the deadlines.
pub fn deliver(client: &HttpClient, sink: &Sink, body: &str) -> Outcome {
    let start = Instant::now();
    let (result, redirected_to) = match sink {
        Sink::File(path) => (append_line(path, body).map(|()| None), None),
        Sink::Http(url) => post(&client.client, url, body),
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

/// The status (or why it failed), and the final URL when it was redirected
/// (within the first URL's origin, see [`http::Redirects::WithinOrigin`]).
/// The response body is never read: a huge or endless body costs nothing.
fn post(
    client: &reqwest::Client,
    first: &url::Url,
    body: &str,
) -> (Result<Option<u16>, String>, Option<String>) {
    // reqwest takes the user name and password out of the URL it sends to.
    let mut plain_first = first.clone();
    let _ = plain_first.set_username("");
    let _ = plain_first.set_password(None);
    let redirected = |url: &url::Url| (*url != plain_first).then(|| redact(url.as_str()));
    let sent = http::on_this_thread(async {
        let response = client
            .post(first.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let location = response.headers().contains_key(reqwest::header::LOCATION);
        Ok::<_, reqwest::Error>((response.status(), response.url().clone(), location))
    });
    let (status, url, location) = match sent {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return (Err(http::describe(&e)), e.url().and_then(redirected)),
        Err(why) => return (Err(why), None),
    };
    let result = if status.is_success() {
        Ok(Some(status.as_u16()))
    } else if location && matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        // A redirect reqwest did not follow: its location does not parse.
        Err("the endpoint redirected to a location that does not parse".to_string())
    } else {
        Err(format!(
            "the endpoint answered HTTP {}",
            http::describe_status(status)
        ))
    };
    (result, redirected(&url))
}

/// Appends one line to a regular file, created 0600 when missing.
fn append_line(path: &std::path::Path, body: &str) -> Result<(), String> {
    let write = || -> std::io::Result<()> {
        let mut f = crate::files::open_append_private(path)?;
        // One write call for the whole line, so concurrent writers do not interleave.
        f.write_all(format!("{body}\n").as_bytes())
    };
    write().map_err(|e| {
        format!(
            "cannot append to {} ({e})",
            crate::log_line::quoted_path(path)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read};

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

    #[test]
    fn no_proxy_names_the_hosts_reached_directly() {
        const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        // The proxy takes one request: the one for the host NO_PROXY does not name.
        let (proxy_port, proxy) = serve(vec![OK]);
        let (direct_port, direct) = serve(vec![OK]);
        let env = move |k: &str| match k {
            "HTTP_PROXY" => Some(format!("127.0.0.1:{proxy_port}")),
            "NO_PROXY" => Some("localhost, .internal.example".to_string()),
            _ => None,
        };
        let send = |url: &str| {
            let sink = Sink::parse(url).unwrap();
            deliver(&client_with_env(&sink, None, env).unwrap(), &sink, "{}")
        };
        let named = send(&format!("http://localhost:{direct_port}/r"));
        assert_eq!(named.http_status, Some(200), "{named:?}");
        // A subdomain of `.internal.example`: directly too, so its name is
        // looked up here (and not found), never handed to the proxy.
        let sub = send("http://a.internal.example/r");
        let why = sub.error.unwrap_or_default();
        assert!(
            why.starts_with("the host name could not be resolved"),
            "{why}"
        );
        let other = send("http://collector.example/r");
        assert_eq!(other.http_status, Some(200), "{other:?}");
        let direct = direct.join().unwrap();
        assert!(direct[0].starts_with("POST /r HTTP/1.1\r\n"), "{direct:?}");
        let proxied = proxy.join().unwrap();
        assert!(
            proxied[0].starts_with("POST http://collector.example/r HTTP/1.1\r\n"),
            "{proxied:?}"
        );
    }

    #[test]
    fn a_proxy_that_refuses_the_tunnel_is_named_and_nothing_goes_direct() {
        let (proxy_port, proxy) = serve(vec![
            "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n",
        ]);
        let env =
            move |k: &str| (k == "HTTPS_PROXY").then(|| format!("http://127.0.0.1:{proxy_port}"));
        let sink = Sink::parse("https://collector.example/r").unwrap();
        let client = client_with_env(&sink, None, env).unwrap();
        let errors: Vec<_> = (0..2)
            .map(|_| deliver(&client, &sink, "{}").error.unwrap_or_default())
            .collect();
        assert_eq!(
            errors,
            [
                "the proxy refused to open a tunnel (it answered other than 200)",
                "the proxy refused to open a tunnel (it asks for authorization: 407)"
            ]
        );
        let asked = proxy.join().unwrap();
        assert!(
            asked
                .iter()
                .all(|r| r.starts_with("CONNECT collector.example:443 HTTP/1.1\r\n")),
            "{asked:?}"
        );
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
        // reqwest's own resolver would have looked the name up on a thread of its own.
        let looked_up: Vec<_> = crate::http::tests::RESOLVED_ON
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == "localhost")
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
