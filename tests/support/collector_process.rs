//! The operator's collector (`tispark-telemetry collect`, as built) as a
//! child process on loopback, and the raw HTTP/1.1 a client speaks to it:
//! shared by the tests of what it stores and refuses (tests/collector.rs)
//! and of clients that try to starve it (tests/collector_abuse.rs).
//! (tests/support/collector.rs is another thing: a fake collector in-process.)

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use tispark_telemetry::sink::{CONNECT_TIMEOUT, TOTAL_TIMEOUT};

pub const BIN: &str = env!("CARGO_BIN_EXE_tispark-telemetry");
pub const PATH: &str = "/api/v1/tispark/report";

/// The collector as a child process, listening on a free port of 127.0.0.1;
/// killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    /// Where the fleet page and the metrics are served (`--ui`).
    pub ui_port: u16,
    pub db: PathBuf,
    /// The rest of its stdout, after the lines saying where it listens.
    pub stdout: BufReader<ChildStdout>,
}

impl Server {
    /// On a new database in a fresh directory.
    pub fn start(name: &str) -> Server {
        Server::start_on(super::temp_dir(&format!("collector-{name}")).join("reports.db"))
    }

    pub fn start_on(db: PathBuf) -> Server {
        Server::start_with(db, &[])
    }

    /// With these options after `--db PATH`.
    pub fn start_with(db: PathBuf, options: &[&str]) -> Server {
        Server::spawn(collect_command(&db, options), db)
    }

    /// Runs `command` (a `collect` on `db`, set up as the test needs: see
    /// `collect_command`) and waits for the line saying where it listens.
    pub fn spawn(mut command: Command, db: PathBuf) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("run tispark-telemetry collect");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let prefix = "collecting reports at http://127.0.0.1:";
        let expected_end = format!("{PATH} into {}; Ctrl-C or SIGTERM stops\n", db.display());
        assert!(
            first.starts_with(prefix) && first.ends_with(&expected_end),
            "{first:?}"
        );
        let port = first[prefix.len()..]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // The second: where the fleet page and the metrics are (`--ui`).
        let mut second = String::new();
        stdout.read_line(&mut second).unwrap();
        let ui_prefix = "the fleet page at http://127.0.0.1:";
        let ui_port = second
            .strip_prefix(ui_prefix)
            .and_then(|rest| rest.split('/').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("{second:?}"));
        assert_eq!(
            second,
            format!(
                "{ui_prefix}{ui_port}/ and its metrics at http://127.0.0.1:{ui_port}/metrics\n"
            )
        );
        Server {
            child,
            port,
            ui_port,
            db,
            stdout,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{PATH}", self.port)
    }

    pub fn post(&self, body: &[u8]) -> (u16, String) {
        post(self.port, body).unwrap_or_else(|e| panic!("POST failed: {e}"))
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        // Far beyond the server's own deadlines: only a broken server hits it.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream
    }

    /// SIGTERM, and the collector's clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id() as libc::pid_t;
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        assert_eq!(self.child.wait().unwrap().code(), Some(0));
    }

    /// Every stored body, oldest first (`export`).
    pub fn exported(&self) -> Vec<String> {
        let out = Command::new(BIN)
            .args(["export", "--db"])
            .arg(&self.db)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tispark-telemetry collect` on a free port of loopback.
pub fn collect_command(db: &Path, options: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["collect", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .args(options);
    command
}

/// The head of a POST of a body of `length` bytes to the collector's path.
pub fn head(length: usize) -> String {
    format!(
        "POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )
}

/// One POST on a fresh connection: the status code and the response body.
pub fn post(port: u16, body: &[u8]) -> std::io::Result<(u16, String)> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    exchange(stream, body)
}

/// What a driver does, from `source` (a loopback address): connect within
/// 2 s, have the answer within 5 s of starting (`sink::CONNECT_TIMEOUT`,
/// `TOTAL_TIMEOUT`). The status and the body of the answer.
pub fn post_from(source: Ipv4Addr, port: u16, body: &[u8]) -> std::io::Result<(u16, String)> {
    let start = Instant::now();
    let stream = connect_from(source, port, CONNECT_TIMEOUT)?;
    let left = TOTAL_TIMEOUT
        .checked_sub(start.elapsed())
        .ok_or(ErrorKind::TimedOut)?;
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))?;
    exchange(stream, body)
}

fn exchange(mut stream: TcpStream, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut request = head(body.len()).into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request)?;
    read_response(&mut stream)
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
}

/// A connection to the collector from `source` (a loopback address), made
/// within `deadline` as a driver's is.
pub fn connect_from(source: Ipv4Addr, port: u16, deadline: Duration) -> std::io::Result<TcpStream> {
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((source, 0)))?;
            let to = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let stream = tokio::time::timeout(deadline, socket.connect(to))
                .await
                .map_err(|_| std::io::Error::new(ErrorKind::TimedOut, "connect deadline"))??;
            let stream = stream.into_std()?;
            stream.set_nonblocking(false)?;
            Ok(stream)
        })
    })
}

/// Reads the answer to the end: its status code and body.
pub fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut response = Vec::new();
    // A server that answers before reading the whole body (413) closes with
    // bytes unread, so a reset may follow its answer: the answer counts.
    let read = stream.read_to_end(&mut response);
    match (parse_response(&response), read) {
        (Some(answer), _) => Ok(answer),
        (None, Err(e)) => Err(e),
        (None, Ok(_)) => Err(std::io::Error::other(format!(
            "not an HTTP response: {:?}",
            String::from_utf8_lossy(&response)
        ))),
    }
}

fn parse_response(response: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Runs `command` to its end, expected within `within` (a command that should
/// refuse at once): its exit code, stdout and stderr. One still running then
/// is killed and the test fails with `otherwise`: it never hangs.
pub fn ended_within(
    command: &mut Command,
    within: Duration,
    otherwise: &str,
) -> (Option<i32>, String, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the command");
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{otherwise}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
