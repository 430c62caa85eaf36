//! `collect`: the receiving end. An HTTP/1.1 server (hyper, on one
//! current-thread tokio runtime) that takes `POST /api/v1/tispark/report`,
//! checks the body against the library's schema ([`super::intake`]) and stores
//! it ([`super::store`]) before answering 200. On a second address (`--ui`)
//! it serves the fleet page ([`super::page`]) at `GET /` and
//! [`super::metrics`] at `GET /metrics`, and nothing else.
//!
//! The network is not trusted, so every resource is bounded, and what is
//! bounded is what stalls, not what arrives: every connection is accepted at
//! once (the kernel's backlog never fills), one request per connection, the
//! whole request (head of at most 16 KiB, body of at most
//! [`intake::MAX_BODY`]) within [`REQUEST_DEADLINE`] of its connection's
//! accept, the whole exchange within [`CONNECTION_DEADLINE`]. At most
//! [`MAX_UNFINISHED`] requests are being received at once, at most
//! [`MAX_UNFINISHED_PER_ADDRESS`] of them from one address (see
//! [`Receiving::admit`]); a connection beyond either bound is still taken,
//! and the request cut to make room for it is the oldest one being received
//! from its own address when that one is at its bound, otherwise from the
//! address that has the most. The write queue is as long as
//! [`MAX_UNFINISHED`]; a request received whole when it is full is answered
//! 503. Both addresses have these bounds, each its own. Ctrl-C or SIGTERM
//! stops accepting, lets the requests in flight finish
//! (for at most [`DRAIN`]), commits and closes the database.

use super::metrics::{self, Counters, Refusal};
use super::stalls::{Receiving, Source, Unfinished};
use super::store::{self, Job, Writer};
use super::token::Token;
use super::{fleet, intake, page};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

/// Where the library sends reports.
pub const PATH: &str = "/api/v1/tispark/report";
/// Requests being received (head and body not yet in) at once, from anyone.
pub const MAX_UNFINISHED: usize = 256;
/// Requests being received at once from one address (an IPv6 address: its
/// /64), which is also one cluster of drivers behind NAT.
pub const MAX_UNFINISHED_PER_ADDRESS: usize = 64;
/// From a connection's accept to its request's last byte of body.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// From a connection's accept to its close, answer included.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
pub const DRAIN: Duration = Duration::from_secs(10);
/// Request line and headers; hyper's smallest buffer.
const MAX_HEAD: usize = 16 * 1024;

/// Runs the collector until Ctrl-C or SIGTERM. With a `token`, only a
/// request carrying it is stored (401 otherwise); without one, the first
/// lines say that anyone who reaches the address may write.
pub fn run(
    listen: &str,
    ui: &str,
    db: &store::Location,
    bounds: store::Bounds,
    token: Option<Token>,
) -> Result<(), String> {
    raise_fd_limit();
    let conn = store::open(db, bounds)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server's runtime ({e})"))?;
    let writer_thread = runtime.block_on(async {
        let (listener, addr) = bind(listen).await?;
        let (ui_listener, ui_addr) = bind(ui).await?;
        let stop = stop_signal()?;
        let (writer, thread) = Writer::start(conn, MAX_UNFINISHED)
            .map_err(|e| format!("cannot start the database writer ({e})"))?;
        say(&format!(
            "collecting reports at http://{addr}{PATH} into {}; Ctrl-C or SIGTERM stops",
            crate::log_line::escaped(&db.shown())
        ));
        say(&format!(
            "the fleet page at http://{ui_addr}/ and its metrics at http://{ui_addr}/metrics"
        ));
        if token.is_none() {
            eprintln!(
                "tispark-telemetry: warning: no --token-file: anyone who can reach \
                 http://{addr}{PATH} may write reports"
            );
        }
        let counters = Arc::new(Counters::default());
        let intake = Role::Intake {
            writer,
            counters: counters.clone(),
            token: token.map(Arc::new),
        };
        let page = Role::Ui(Arc::new(Ui {
            db: db.clone(),
            counters,
            reading: Arc::new(Semaphore::new(MAX_PAGE_READS)),
        }));
        // Both stop at the first signal.
        let (stopped, on_stop) = tokio::sync::watch::channel(false);
        let stopping = async move {
            stop.await;
            let _ = stopped.send(true);
        };
        let until = |mut on_stop: tokio::sync::watch::Receiver<bool>| async move {
            let _ = on_stop.wait_for(|stopped| *stopped).await;
        };
        tokio::join!(
            stopping,
            serve(listener, intake, until(on_stop.clone())),
            serve(ui_listener, page, until(on_stop)),
        );
        Ok::<_, String>(thread)
    })?;
    // Connections still open after the drain are dropped with the runtime,
    // and with them the last handles on the writer, which then finishes.
    drop(runtime);
    writer_thread
        .join()
        .map_err(|_| "the database writer failed".to_string())?;
    say("stopped; every report answered 200 is stored");
    Ok(())
}

/// The page's address (`--ui`): `GET /` and `GET /metrics`, read from the
/// database, never written.
struct Ui {
    db: store::Location,
    counters: Arc<Counters>,
    /// Readings of the database for the page at once; others wait (within
    /// their connection's deadline).
    reading: Arc<Semaphore>,
}

/// Readings of the database for `/` and `/metrics` at once.
pub const MAX_PAGE_READS: usize = 2;

/// What a listener's connections are for.
#[derive(Clone)]
enum Role {
    /// `--listen`: reports.
    Intake {
        writer: Writer,
        counters: Arc<Counters>,
        /// `--token-file`: only a request carrying it is stored.
        token: Option<Arc<Token>>,
    },
    /// `--ui`: the fleet page and the metrics.
    Ui(Arc<Ui>),
}

async fn bind(at: &str) -> Result<(TcpListener, std::net::SocketAddr), String> {
    let listener = TcpListener::bind(at)
        .await
        .map_err(|e| format!("cannot listen on {at} ({e})"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {at} ({e})"))?;
    Ok((listener, addr))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Resolves at the first Ctrl-C (SIGINT) or SIGTERM.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM ({e})"))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT ({e})"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Raises the soft limit on open files to the hard limit: every connection
/// is accepted, and each is a descriptor until it is answered or cut (at most
/// [`MAX_UNFINISHED`] being received, as many waiting for the write queue,
/// plus those being answered). Left as it is if that fails.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

async fn serve(listener: TcpListener, role: Role, stop: impl std::future::Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let receiving = Arc::new(Receiving::default());
    tokio::pin!(stop);
    loop {
        // Accepted at once, always: a stalled client holds a request being
        // received here, never a place in the kernel's backlog.
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    eprintln!("tispark-telemetry: warning: accept failed ({e})");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let accepted = tokio::time::Instant::now();
        let source = Source::of(peer.ip());
        let id = receiving.next_id();
        let unfinished = Unfinished {
            receiving: receiving.clone(),
            source,
            id,
        };
        let service = {
            let (role, receiving) = (role.clone(), receiving.clone());
            service_fn(move |req| answer(req, role.clone(), receiving.clone(), source, id))
        };
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(REQUEST_DEADLINE)
            .keep_alive(false)
            .max_buf_size(MAX_HEAD)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        let task = tokio::spawn(async move {
            let unfinished = unfinished;
            tokio::pin!(conn);
            // Cut, whatever it was doing, a client that has not sent its
            // whole request in time (its request is then no longer counted:
            // see `answer`) or that is not done with the exchange in time.
            tokio::select! {
                _ = &mut conn => return,
                _ = tokio::time::sleep_until(accepted + REQUEST_DEADLINE) => {}
            }
            if unfinished.is_received() {
                let _ = tokio::time::timeout_at(accepted + CONNECTION_DEADLINE, conn).await;
            }
        });
        receiving.admit(source, id, task.abort_handle());
        // Let the connections accepted so far read what they were sent before
        // more are taken: a burst of drivers is received, not cut for room.
        tokio::task::yield_now().await;
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

async fn answer(
    req: Request<Incoming>,
    role: Role,
    receiving: Arc<Receiving>,
    source: Source,
    id: u64,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received = || receiving.release(source, id);
    let (status, content_type, text) = match role {
        Role::Intake {
            writer,
            counters,
            token,
        } => {
            let (status, text) = match receive(req, &writer, token.as_deref(), received).await {
                Ok(()) => {
                    counters.stored();
                    (StatusCode::OK, "stored".to_string())
                }
                Err((status, why, text)) => {
                    counters.refused(why);
                    (status, text)
                }
            };
            (status, "text/plain; charset=utf-8", format!("{text}\n"))
        }
        Role::Ui(ui) => {
            // Only the head is read: a body sent with a GET is not.
            received();
            show(req, &ui).await
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"tispark-telemetry\""),
        );
    }
    if content_type.starts_with("text/html") {
        // Nothing but the page itself and its inline style: no script, no
        // request anywhere, not framed.
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
                 form-action 'none'; frame-ancestors 'none'",
            ),
        );
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /` (the fleet page) and `GET /metrics`; anything else is 404 or 405.
async fn show(req: Request<Incoming>, ui: &Arc<Ui>) -> (StatusCode, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let page = match req.uri().path() {
        "/" => true,
        "/metrics" => false,
        _ => {
            return (
                StatusCode::NOT_FOUND,
                TEXT,
                "not found: the fleet page is GET /, the metrics GET /metrics\n".into(),
            )
        }
    };
    if req.method() != Method::GET {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "only GET is answered here\n".into(),
        );
    }
    let Ok(permit) = ui.reading.clone().acquire_owned().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, TEXT, "stopping\n".into());
    };
    let ui2 = ui.clone();
    // SQLite blocks: off the runtime's one thread, which serves the intake.
    // The permit goes with the reading: a connection cut meanwhile does not
    // free a place while its reading still runs.
    let read = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        if page {
            let now = crate::report::unix_now();
            let since = now.saturating_sub(page::WINDOW_DAYS * fleet::DAY);
            fleet::gather(&ui2.db, since).map(|f| page::render(&f, now))
        } else {
            store::held(&ui2.db).map(|held| metrics::render(&ui2.counters, held))
        }
    })
    .await;
    match read {
        Ok(Ok(text)) if page => (StatusCode::OK, "text/html; charset=utf-8", text),
        Ok(Ok(text)) => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            text,
        ),
        Ok(Err(why)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            TEXT,
            format!("{}\n", crate::log_line::escaped(&why)),
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            TEXT,
            "the database could not be read\n".into(),
        ),
    }
}

type Refused = (StatusCode, Refusal, String);

/// `received` is called once the request is in whole (a request refused
/// before that ends its connection).
async fn receive(
    req: Request<Incoming>,
    writer: &Writer,
    token: Option<&Token>,
    received: impl FnOnce(),
) -> Result<(), Refused> {
    if req.uri().path() != PATH {
        return Err((
            StatusCode::NOT_FOUND,
            Refusal::NotFound,
            format!("not found: reports are sent to POST {PATH}"),
        ));
    }
    if req.method() != Method::POST {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            Refusal::Method,
            format!("reports are sent to POST {PATH}"),
        ));
    }
    // Before the body is read: a writer without the token costs a head.
    if let Some(token) = token {
        let authorization = req.headers().get(hyper::header::AUTHORIZATION);
        if !token.admits(authorization.map(|v| v.as_bytes())) {
            return Err((
                StatusCode::UNAUTHORIZED,
                Refusal::Unauthorized,
                "this collector stores only reports that carry its token: HTTP Basic \
                 credentials whose password is it (spark.tispark.telemetry.url = \
                 https://reporter:TOKEN@host/…)"
                    .to_string(),
            ));
        }
    }
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::TooLarge,
            format!("the body is larger than {} bytes", intake::MAX_BODY),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > intake::MAX_BODY as u64) {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), intake::MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    Refusal::Incomplete,
                    "the body was not received whole".to_string(),
                )
            }
        })?
        .to_bytes();
    received();
    let report =
        intake::validate(&body).map_err(|why| (StatusCode::BAD_REQUEST, Refusal::Invalid, why))?;
    let (done, stored) = oneshot::channel();
    let job = Job {
        received: crate::report::unix_now(),
        track_id: report.track_id,
        body: body.to_vec(),
        done,
    };
    let busy = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Busy,
            "the collector is busy; send the report again later".to_string(),
        )
    };
    writer.submit(job).map_err(|_| busy())?;
    match stored.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(store::NotStored::Full(why))) => {
            Err((StatusCode::INSUFFICIENT_STORAGE, Refusal::Full, why))
        }
        Ok(Err(store::NotStored::Failed(why))) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            Refusal::Failed,
            format!(
                "the report could not be stored ({})",
                why.replace('\n', " ")
            ),
        )),
        Err(_) => Err(busy()),
    }
}
