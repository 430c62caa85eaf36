//! `collect`: the receiving end. An HTTP/1.1 server (hyper, on one
//! current-thread tokio runtime) that takes `POST /api/v1/tispark/report`,
//! checks the body against the library's schema ([`crate::intake`]) and stores
//! it ([`crate::store`]) before answering 200.
//!
//! The network is not trusted, so every resource is bounded: at most
//! [`MAX_CONNECTIONS`] connections at once (more wait in the kernel's
//! backlog), one request per connection, headers within [`HEADER_DEADLINE`]
//! and at most 16 KiB, the whole exchange within [`CONNECTION_DEADLINE`], a
//! body of at most [`intake::MAX_BODY`], and a write queue as long as the
//! connection cap. Ctrl-C or SIGTERM stops accepting, lets the requests in
//! flight finish (for at most [`DRAIN`]), commits and closes the database.

use crate::intake;
use crate::store::{self, Job, Writer};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

/// Where the library sends reports.
pub const PATH: &str = "/api/v1/tispark/report";
pub const MAX_CONNECTIONS: usize = 256;
pub const HEADER_DEADLINE: Duration = Duration::from_secs(5);
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
pub const DRAIN: Duration = Duration::from_secs(10);
/// Request line and headers; hyper's smallest buffer.
const MAX_HEAD: usize = 16 * 1024;

pub fn run(listen: &str, db: &Path, bounds: store::Bounds) -> Result<(), String> {
    let conn = store::open_write(db, bounds)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server's runtime ({e})"))?;
    let writer_thread = runtime.block_on(async {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen} ({e})"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {listen} ({e})"))?;
        let stop = stop_signal()?;
        let (writer, thread) = Writer::start(conn, MAX_CONNECTIONS)
            .map_err(|e| format!("cannot start the database writer ({e})"))?;
        say(&format!(
            "collecting reports at http://{addr}{PATH} into {}; Ctrl-C or SIGTERM stops",
            db.display()
        ));
        serve(listener, writer, stop).await;
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

async fn serve(listener: TcpListener, writer: Writer, stop: impl std::future::Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            _ = &mut stop => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    eprintln!("tispark-telemetry: warning: accept failed ({e})");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let writer = writer.clone();
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_DEADLINE)
            .keep_alive(false)
            .max_buf_size(MAX_HEAD)
            .serve_connection(
                TokioIo::new(stream),
                service_fn(move |req| answer(req, writer.clone())),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client too slow or stalled is cut here, whatever it was doing.
            let _ = tokio::time::timeout(CONNECTION_DEADLINE, conn).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

async fn answer(
    req: Request<Incoming>,
    writer: Writer,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, text) = match receive(req, &writer).await {
        Ok(()) => (StatusCode::OK, "stored".to_string()),
        Err(refused) => refused,
    };
    let mut response = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

type Refused = (StatusCode, String);

async fn receive(req: Request<Incoming>, writer: &Writer) -> Result<(), Refused> {
    if req.uri().path() != PATH {
        return Err((
            StatusCode::NOT_FOUND,
            format!("not found: reports are sent to POST {PATH}"),
        ));
    }
    if req.method() != Method::POST {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            format!("reports are sent to POST {PATH}"),
        ));
    }
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
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
                    "the body was not received whole".to_string(),
                )
            }
        })?
        .to_bytes();
    let report = intake::validate(&body).map_err(|why| (StatusCode::BAD_REQUEST, why))?;
    let (done, stored) = oneshot::channel();
    let job = Job {
        received: tispark_telemetry::report::unix_now(),
        track_id: report.track_id,
        body: body.to_vec(),
        done,
    };
    let busy = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the collector is busy; send the report again later".to_string(),
        )
    };
    writer.submit(job).map_err(|_| busy())?;
    match stored.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(store::NotStored::Full(why))) => Err((StatusCode::INSUFFICIENT_STORAGE, why)),
        Ok(Err(store::NotStored::Failed(why))) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the report could not be stored ({})",
                why.replace('\n', " ")
            ),
        )),
        Err(_) => Err(busy()),
    }
}
