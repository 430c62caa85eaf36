//! The collector's database, whichever it is: one row per report received,
//! with the body byte for byte as it arrived and the time it did. `--db PATH`
//! is a SQLite file ([`super::sqlite_store`]), `--db mysql://…` a
//! MySQL-protocol server, TiDB ([`super::mysql_store`]), both behind
//! [`Location`], [`Store`] and [`Reader`]. `collect` writes through
//! [`Writer`], one thread that commits whatever has queued up in one
//! transaction and only then lets the requests answer 200; `fleet` and
//! `export` read through [`reader`].

use super::mysql_store;
use super::sqlite_store::{
    self, open_read, open_write, sqlite_held, sqlite_reports_since, Database,
};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How large the database may grow, and how long a report is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Bytes: the database file never grows past it (SQLite's `max_page_count`).
    pub max_size: u64,
    /// Reports received longer ago are deleted; `None`: every report is kept.
    pub retain: Option<Duration>,
}

/// Where the reports are: a SQLite file, or a database on a MySQL-protocol
/// server (TiDB).
#[derive(Clone)]
pub enum Location {
    File(PathBuf),
    Mysql(mysql_store::Server),
}

impl Location {
    /// `--db`: `mysql://USER@HOST:PORT/DATABASE` names a server (its password
    /// from `password_file`, else the environment), anything else a file.
    pub fn new(db: &Path, password_file: Option<&Path>) -> Result<Location, String> {
        let scheme = db
            .to_str()
            .and_then(|s| s.trim_start().split_once("://"))
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        match (scheme.as_deref(), db.to_str()) {
            (Some("mysql"), Some(url)) => {
                mysql_store::Server::new(url.trim(), password_file).map(Location::Mysql)
            }
            // Another scheme is no file name either, and may hold a password: never shown.
            (Some(_), _) => Err(
                "--db names a file, or a server as mysql://USER@HOST:PORT/DATABASE; this one \
                 is neither (it is not shown: it may hold a password)"
                    .to_string(),
            ),
            _ if password_file.is_some() => Err(
                "--db-password-file is for a database on a server (--db mysql://...), not a file"
                    .to_string(),
            ),
            _ => Ok(Location::File(db.to_path_buf())),
        }
    }

    /// As shown to a person (a URL never holds a password).
    pub fn shown(&self) -> String {
        match self {
            Location::File(path) => path.display().to_string(),
            Location::Mysql(server) => server.url().to_string(),
        }
    }
}

/// A database open for writing: what [`Writer`] writes to.
pub enum Store {
    Sqlite(Database),
    Mysql(mysql_store::Database),
}

/// Opens the database at `location` for writing ([`open_write`] for a file;
/// `bounds.max_size` applies to a file only).
pub fn open(location: &Location, bounds: Bounds) -> Result<Store, String> {
    match location {
        Location::File(path) => open_write(path, bounds).map(Store::Sqlite),
        Location::Mysql(server) => mysql_store::open_write(server, bounds.retain).map(Store::Mysql),
    }
}

/// A database open for reading.
pub enum Reader {
    Sqlite(Connection),
    Mysql(mysql::Conn),
}

/// Opens the database at `location` for reading ([`open_read`] for a file).
pub fn reader(location: &Location) -> Result<Reader, String> {
    match location {
        Location::File(path) => open_read(path).map(Reader::Sqlite),
        Location::Mysql(server) => mysql_store::open_read(server).map(Reader::Mysql),
    }
}

/// Why a report was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotStored {
    /// The database is at `--max-db-size`, or the disk is full (507).
    Full(String),
    /// The database refused the write (500).
    Failed(String),
}

/// One report to store, and where to say whether it was.
pub struct Job {
    pub received: u64,
    pub track_id: String,
    pub body: Vec<u8>,
    pub done: tokio::sync::oneshot::Sender<Result<(), NotStored>>,
}

/// The writing thread's queue. Bounded: a full queue is answered 503, never
/// buffered without limit.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::SyncSender<Job>,
}

/// Most reports committed in one transaction.
const BATCH: usize = 256;

/// How often, at most, reports past `--retain` are deleted (before a batch).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl Writer {
    /// Starts the writing thread; it ends, after committing everything queued,
    /// when every [`Writer`] is dropped.
    pub fn start(
        mut db: Store,
        capacity: usize,
    ) -> std::io::Result<(Writer, std::thread::JoinHandle<()>)> {
        let (queue, jobs) = mpsc::sync_channel::<Job>(capacity);
        let thread = std::thread::Builder::new()
            .name("collector-writer".into())
            .spawn(move || {
                let mut swept = Instant::now();
                while let Ok(first) = jobs.recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match jobs.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    if swept.elapsed() >= SWEEP_EVERY {
                        swept = Instant::now();
                        let swept = match &mut db {
                            Store::Sqlite(db) => db.sweep().map(drop).map_err(|e| e.to_string()),
                            Store::Mysql(db) => db.sweep(),
                        };
                        if let Err(e) = swept {
                            eprintln!(
                                "tispark-telemetry: warning: reports older than --retain \
                                 could not be deleted ({})",
                                crate::log_line::escaped(&e)
                            );
                        }
                    }
                    let outcomes = match &mut db {
                        Store::Sqlite(db) => sqlite_store::store(db, &batch),
                        Store::Mysql(db) => db.store(&batch),
                    };
                    for (job, outcome) in batch.into_iter().zip(outcomes) {
                        let _ = job.done.send(outcome);
                    }
                }
                // Fold the WAL back into the database file on a clean stop.
                if let Store::Sqlite(db) = db {
                    let _ = db.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
                }
            })?;
        Ok((Writer { queue }, thread))
    }

    /// Queues a report; `Err` gives it back when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        self.queue.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(job) | mpsc::TrySendError::Disconnected(job) => job,
        })
    }
}

/// A stored report.
pub struct Row {
    pub received: u64,
    pub body: Vec<u8>,
}

/// Every report received at or after `since` (unix seconds), oldest first.
pub fn reports_since(
    reader: &mut Reader,
    since: u64,
    each: impl FnMut(Row) -> Result<(), String>,
) -> Result<(), String> {
    match reader {
        Reader::Sqlite(conn) => sqlite_reports_since(conn, since, each),
        Reader::Mysql(conn) => mysql_store::reports_since(conn, since, each),
    }
}

/// What `/metrics` says of the database at `location`: its reports, their
/// distinct track ids, and its bytes.
pub fn held(location: &Location) -> Result<crate::collector::metrics::Held, String> {
    match location {
        Location::File(path) => sqlite_held(path),
        Location::Mysql(server) => mysql_store::held(server),
    }
}
