//! How many reports a second `tispark-telemetry collect` stores on this
//! machine, into SQLite and into MariaDB (the MySQL protocol, as TiDB): the
//! built binary on loopback with a fresh SQLite file or MariaDB database
//! per round (MariaDB started for the run as tests/collector_mysql.rs does),
//! `TT_BENCH_COLLECTOR_CLIENTS` clients (default 50) each POSTing
//! `TT_BENCH_COLLECTOR_REPORTS` distinct reports (default 100), one
//! connection per report, as the library sends them. Prints the median of
//! `TT_BENCH_COLLECTOR_ROUNDS` rounds (default 5) with the slowest and
//! fastest, for each store. Figures, not a test: nothing fails on a slow number, but every
//! report must be answered 200 and be in the database afterwards.
//!
//! `bash scripts/bench.sh` runs it after the overhead benchmark; alone:
//! `cargo bench --bench collector`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "../tests/support/fake_report.rs"]
mod fake_report;

#[path = "../tests/support/mariadb.rs"]
#[allow(dead_code)]
mod mariadb;

/// A directory of the run's, which the `mysql` user may reach
/// (`mariadb` asks for it).
fn temp_dir(name: &str) -> PathBuf {
    let dir = bench_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bench_dir() -> PathBuf {
    std::env::temp_dir().join(format!("tt-bench-collector-{}", std::process::id()))
}

const BIN: &str = env!("CARGO_BIN_EXE_tispark-telemetry");
const PATH: &str = "/api/v1/tispark/report";
const PASSWORD_ENV: &str = "TISPARK_TELEMETRY_DB_PASSWORD";

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let clients = size("TT_BENCH_COLLECTOR_CLIENTS", 50);
    let per_client = size("TT_BENCH_COLLECTOR_REPORTS", 100);
    let rounds = size("TT_BENCH_COLLECTOR_ROUNDS", 5);
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let bodies: Vec<Vec<String>> = (0..clients)
        .map(|c| {
            (0..per_client)
                .map(|i| report(c * per_client + i))
                .collect()
        })
        .collect();
    let sqlite: Vec<f64> = (0..rounds)
        .map(|round| one_round(dir.join(format!("round-{round}.db")).as_os_str(), &bodies))
        .collect();
    let mariadb = mariadb::MariaDb::start();
    let mysql: Vec<f64> = (0..rounds)
        .map(|round| {
            one_round(
                OsStr::new(&mariadb.database(&format!("round{round}"))),
                &bodies,
            )
        })
        .collect();
    drop(mariadb);
    let _ = std::fs::remove_dir_all(&dir);
    for (store, mut rates) in [("SQLite", sqlite), ("MariaDB", mysql)] {
        rates.sort_by(f64::total_cmp);
        println!(
            "collector ({store}): {:.0} reports/s stored (median of {rounds} rounds of {} reports \
             from {clients} concurrent clients, one connection each; slowest {:.0}, fastest {:.0})",
            rates[rates.len() / 2],
            clients * per_client,
            rates[0],
            rates[rates.len() - 1]
        );
    }
}

/// Reports stored per second, from the first connection to the last 200,
/// into `db` (a file, or a MariaDB URL whose password is in the environment).
fn one_round(db: &OsStr, bodies: &[Vec<String>]) -> f64 {
    let mut child = Command::new(BIN)
        .args(["collect", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .env(PASSWORD_ENV, mariadb::PASSWORD)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run tispark-telemetry collect");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port: u16 = first
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for list in bodies {
            scope.spawn(move || {
                for body in list {
                    let status = post(port, body.as_bytes());
                    assert_eq!(status, 200);
                }
            });
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    let exported = Command::new(BIN)
        .args(["export", "--db"])
        .arg(db)
        .env(PASSWORD_ENV, mariadb::PASSWORD)
        .output()
        .unwrap();
    let stored = exported.stdout.iter().filter(|b| **b == b'\n').count();
    let sent: usize = bodies.iter().map(Vec::len).sum();
    assert_eq!(stored, sent, "every report answered 200 is stored");
    sent as f64 / seconds
}

fn post(port: u16, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut request = format!(
        "POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    String::from_utf8_lossy(&response)
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A report as the library builds it, for host `n`.
fn report(n: usize) -> String {
    fake_report::fake_report(n, 1_795_000_000, &[])
}
