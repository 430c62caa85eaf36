//! The HTTP client the report and the PD request share: reqwest on a tokio
//! runtime of the calling thread alone, with rustls (ring) and our roots,
//! hard deadlines, no retry, and host names resolved on that thread.
//!
//! - [`tls`]: the rustls configuration (roots, PD's client certificate).
//! - [`trust_store`]: the platform's trust store, read bounded.
//! - [`proxy`]: the proxy of the environment.

pub(crate) mod proxy;
pub(crate) mod tls;
pub(crate) mod trust_store;

use std::error::Error as StdError;
use std::future::Future;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration;

/// Deadline for the TCP (and proxy) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Deadline for the whole request, redirects included, from start to the
/// response's status line.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Redirects followed at most (a redirect loop ends here).
pub const MAX_REDIRECTS: usize = 3;

/// Which redirects a client follows.
pub(crate) enum Redirects {
    /// None: a 3xx is the answer (PD).
    None,
    /// At most [`MAX_REDIRECTS`], within the first URL's origin (scheme,
    /// host and port): 307 and 308 repeat the POST with its body; 301, 302
    /// and 303 go on with a GET without body, as HTTP clients do.
    WithinOrigin,
}

/// A client that follows only the redirects given, connects within
/// `connect`, ends everything (redirects included) within `total`, sends no
/// `Referer`, keeps no connection, resolves on the calling thread, trusts
/// exactly `tls`'s roots, and uses `proxy` or none (the environment is never
/// read by reqwest itself: [`proxy`] reads it, by the documented rules).
pub(crate) fn client(
    tls: &tls::Tls,
    proxy: Option<reqwest::Proxy>,
    connect: Duration,
    total: Duration,
    redirects: Redirects,
) -> Result<reqwest::Client, String> {
    let policy = match redirects {
        Redirects::None => reqwest::redirect::Policy::none(),
        Redirects::WithinOrigin => reqwest::redirect::Policy::custom(within_origin),
    };
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls.config()?)
        .no_proxy()
        .connect_timeout(connect)
        .timeout(total)
        .redirect(policy)
        .referer(false)
        .pool_max_idle_per_host(0)
        .dns_resolver(Arc::new(ResolveOnThisThread))
        .user_agent(concat!("tispark-telemetry/", env!("CARGO_PKG_VERSION")));
    if let Some(proxy) = proxy {
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(|e| describe(&e))
}

/// The redirect rule of [`Redirects::WithinOrigin`].
fn within_origin(attempt: reqwest::redirect::Attempt) -> reqwest::redirect::Action {
    let previous = attempt.previous();
    if previous.len() > MAX_REDIRECTS {
        return attempt.error(RedirectRefused::TooMany);
    }
    if previous
        .first()
        .is_some_and(|first| first.origin() != attempt.url().origin())
    {
        // Not to another host, port or scheme (so never from https to
        // plain http): the operator chose where reports go.
        let to = crate::sink::redact(attempt.url().as_str());
        return attempt.error(RedirectRefused::OtherOrigin(to));
    }
    attempt.follow()
}

/// Why a redirect was not followed.
#[derive(Debug)]
enum RedirectRefused {
    TooMany,
    /// Where it pointed, redacted.
    OtherOrigin(String),
}

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedirectRefused::TooMany => write!(f, "more than {MAX_REDIRECTS} redirects"),
            RedirectRefused::OtherOrigin(to) => write!(
                f,
                "the endpoint redirected to another origin ({to}), where the report is not sent"
            ),
        }
    }
}

impl StdError for RedirectRefused {}

/// Runs `request` to its end on a tokio runtime of this thread alone (no
/// worker, no blocking pool: the resolver runs here too), dropped when it
/// ends, with every task of it: no thread outlives the send.
pub(crate) fn on_this_thread<F: Future>(request: F) -> Result<F::Output, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("the HTTP client could not start ({e})"))?;
    Ok(runtime.block_on(request))
}

/// Resolves host names with the system resolver on the thread that sends,
/// inside the request's future, so that telemetry never has more than its
/// one thread (reqwest's own resolver runs each look-up on a thread of a
/// pool). The cost: a system resolver that hangs holds the telemetry thread
/// past the deadlines above until it gives up (its own timeouts,
/// `/etc/resolv.conf`); the driver never waits for that thread, and JVM
/// shutdown waits for it at most the flush bound.
#[derive(Debug)]
pub(crate) struct ResolveOnThisThread;

impl reqwest::dns::Resolve for ResolveOnThisThread {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            #[cfg(test)]
            tests::RESOLVED_ON
                .lock()
                .unwrap()
                .push((name.as_str().to_string(), std::thread::current().id()));
            // The port is reqwest's to set.
            let unresolved =
                |why: String| -> Box<dyn StdError + Send + Sync> { Box::new(Unresolved(why)) };
            let addrs: Vec<_> = (name.as_str(), 0)
                .to_socket_addrs()
                .map_err(|e| unresolved(e.to_string()))?
                .collect();
            if addrs.is_empty() {
                return Err(unresolved("no address".to_string()));
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A host name the system resolver has no address for.
#[derive(Debug)]
struct Unresolved(String);

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the host name could not be resolved ({})", self.0)
    }
}

impl StdError for Unresolved {}

/// `404 Not Found`: the code and its reason, as HTTP names it.
pub(crate) fn describe_status(status: reqwest::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// Every cause of `e`, outermost first, looking inside I/O errors too (a
/// TLS alert reaches reqwest as an `io::Error` that wraps rustls's).
fn causes<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        out.push(err);
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => err.source(),
        };
    }
    out
}

/// Why a request failed, in words; never a URL (the caller names it,
/// redacted). The proxy's and TLS's own words are kept as any other error's
/// text: escaped where they are shown (the log bridge, the tool's stderr and
/// status, the audit trail's JSON), not here.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let chain = causes(e);
    let find =
        |f: &dyn Fn(&(dyn StdError + 'static)) -> Option<String>| chain.iter().find_map(|c| f(*c));
    if let Some(why) = find(&|c| c.downcast_ref::<RedirectRefused>().map(|r| r.to_string())) {
        return why;
    }
    if e.is_timeout() {
        return if e.is_connect() {
            "timed out while connecting".to_string()
        } else {
            "timed out before the endpoint answered".to_string()
        };
    }
    if let Some(why) = find(&|c| {
        c.downcast_ref::<rustls::Error>()
            .map(|t| format!("TLS: {t}"))
    }) {
        return why;
    }
    if let Some(why) = find(&|c| c.downcast_ref::<Unresolved>().map(|u| u.to_string())) {
        return why;
    }
    // The proxy's answer to CONNECT other than 200 (hyper-util's
    // `TunnelError`, which it does not export: known by its words; one with
    // a cause is a failure to reach the proxy, told below).
    if let Some(why) = find(&|c| {
        let text = c.to_string();
        let refused = match text.strip_prefix("tunnel error: ")? {
            "unsuccessful" => "it answered other than 200",
            "proxy authorization required" => "it asks for authorization: 407",
            other => other,
        };
        c.source()
            .is_none()
            .then(|| format!("the proxy refused to open a tunnel ({refused})"))
    }) {
        return why;
    }
    if let Some(why) = find(&|c| {
        c.downcast_ref::<std::io::Error>()
            .map(|io| format!("connection error: {io}"))
    }) {
        return why;
    }
    // reqwest's own words name the URL: only the causes below them.
    let below: Vec<String> = chain.iter().skip(1).map(|c| c.to_string()).collect();
    if below.is_empty() {
        "the request failed".to_string()
    } else {
        below.join(": ")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    /// Each look-up of [`super::ResolveOnThisThread`]: the name and the
    /// thread it ran on.
    pub(crate) static RESOLVED_ON: std::sync::Mutex<Vec<(String, std::thread::ThreadId)>> =
        std::sync::Mutex::new(Vec::new());
}
