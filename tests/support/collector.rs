//! A real HTTP/1.1 collector on loopback for the tests and the demo: it
//! accepts connections, reads each request in full, records it, and answers
//! as told (or, for fault tests, misbehaves as told).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// 200 with a short body.
    Accept,
    /// This status with a short body.
    Status(u16),
    /// Accept the connection, read the request, never answer.
    Silent,
    /// 302 to the same path, forever.
    RedirectLoop,
    /// 307 (method and body kept) to this URL.
    RedirectTo(&'static str),
    /// 307 to this path on the same server, where it answers 200.
    MovedWithin(&'static str),
    /// 200 with a body of this many bytes.
    HugeBody(usize),
    /// 200 with this JSON body (PD's `/pd/api/v1/status` speaks this way).
    Json(&'static str),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When the body had arrived in full (the wall clock, comparable with
    /// another process's on this machine: the benchmark's time to the wire).
    pub at: std::time::SystemTime,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Collector {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    connections: Arc<AtomicUsize>,
}

impl Collector {
    pub fn start(behaviour: Behaviour) -> Collector {
        Self::start_on("127.0.0.1:0", behaviour)
    }

    pub fn start_on(addr: &str, behaviour: Behaviour) -> Collector {
        Self::start_with(addr, behaviour, None)
    }

    /// An HTTPS endpoint with this server configuration.
    pub fn start_tls(behaviour: Behaviour, tls: Arc<rustls::ServerConfig>) -> Collector {
        Self::start_with("127.0.0.1:0", behaviour, Some(tls))
    }

    fn start_with(
        addr: &str,
        behaviour: Behaviour,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Collector {
        let listener = TcpListener::bind(addr).expect("bind the collector on loopback");
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (r, c) = (received.clone(), connections.clone());
        std::thread::Builder::new()
            .name("test-collector".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    c.fetch_add(1, Ordering::SeqCst);
                    let r = r.clone();
                    let tls = tls.clone();
                    std::thread::spawn(move || {
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                        match tls {
                            None => serve(stream, behaviour, &r),
                            Some(config) => {
                                let Ok(conn) = rustls::ServerConnection::new(config) else {
                                    return;
                                };
                                serve(rustls::StreamOwned::new(conn, stream), behaviour, &r)
                            }
                        }
                    });
                }
            })
            .unwrap();
        Collector {
            addr,
            received,
            connections,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests have arrived or `timeout` passes; returns what arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let end = Instant::now() + timeout;
        while self.received.lock().unwrap().len() < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.received()
    }
}

fn serve<S: Read + Write>(stream: S, behaviour: Behaviour, received: &Mutex<Vec<Received>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        let path = request.path.clone();
        received.lock().unwrap().push(request);
        let response = match behaviour {
            // As an HTTP proxy answers CONNECT: no body, and what follows on
            // the connection is the tunnel (served here as the endpoint).
            Behaviour::Accept if received.lock().unwrap().last().unwrap().method == "CONNECT" => {
                b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec()
            }
            Behaviour::Accept => respond(200, "OK", &[], b"ok"),
            Behaviour::Status(code) => respond(code, "Status", &[], b"status"),
            Behaviour::Silent => {
                std::thread::sleep(Duration::from_secs(60));
                return;
            }
            Behaviour::RedirectLoop => respond(302, "Found", &[("Location", path.as_str())], b""),
            Behaviour::MovedWithin(to) if path == to => respond(200, "OK", &[], b"ok"),
            Behaviour::MovedWithin(to) => {
                respond(307, "Temporary Redirect", &[("Location", to)], b"")
            }
            Behaviour::RedirectTo(url) => {
                respond(307, "Temporary Redirect", &[("Location", url)], b"")
            }
            Behaviour::Json(body) => respond(
                200,
                "OK",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            ),
            Behaviour::HugeBody(n) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nContent-Type: text/plain\r\n\r\n"
                );
                let out = reader.get_mut();
                if out.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = n;
                while left > 0 {
                    let k = left.min(chunk.len());
                    if out.write_all(&chunk[..k]).is_err() {
                        return;
                    }
                    left -= k;
                }
                continue;
            }
        };
        let out = reader.get_mut();
        if out.write_all(&response).is_err() || out.flush().is_err() {
            return;
        }
    }
}

fn respond(code: u16, reason: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

fn read_request<S: Read>(reader: &mut BufReader<S>) -> Option<Received> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: std::time::SystemTime::now(),
    })
}
