//! The collector's database: one SQLite file (WAL mode), one row per report
//! received, with the body byte for byte as it arrived and the time it did.
//! `collect` writes through [`Writer`], one thread that commits whatever has
//! queued up in one transaction and only then lets the requests answer 200;
//! `fleet` and `export` read through [`open_read`].

use rusqlite::{params, Connection, OpenFlags};
use std::path::Path;
use std::sync::mpsc;

/// The schema; `received` is unix seconds, `body` the report as it arrived.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reports (
    id       INTEGER PRIMARY KEY,
    received INTEGER NOT NULL,
    track_id TEXT    NOT NULL,
    body     BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_by_received ON reports (received);
";

/// Opens (creating it if needed) the database for writing.
pub fn open_write(path: &Path) -> Result<Connection, String> {
    create_private(path).map_err(|e| format!("cannot create {} ({e})", path.display()))?;
    let conn = Connection::open(path).map_err(|e| cannot_open(path, &e))?;
    // WAL: readers (fleet, export) never block the collector. NORMAL: a
    // commit is in the WAL file before it returns, so a report answered 200
    // survives the collector being killed (an OS crash may lose the last
    // commits, never corrupt the file).
    conn.pragma_update(None, "journal_mode", "WAL")
        .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
        .and_then(|()| conn.busy_timeout(std::time::Duration::from_secs(5)))
        .and_then(|()| conn.execute_batch(SCHEMA))
        .map_err(|e| cannot_open(path, &e))?;
    Ok(conn)
}

/// A new database file is created 0600 from the first byte (SQLite gives its
/// `-wal` and `-shm` files the same mode); an existing one is left as it is.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens an existing database read-only.
pub fn open_read(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| cannot_open(path, &e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| cannot_open(path, &e))?;
    // A file that is not this collector's database is said to be so now.
    conn.query_row("SELECT count(*) FROM reports", [], |_| Ok(()))
        .map_err(|e| cannot_open(path, &e))?;
    Ok(conn)
}

fn cannot_open(path: &Path, e: &rusqlite::Error) -> String {
    format!("the database {} cannot be used ({e})", path.display())
}

/// One report to store, and where to say whether it was.
pub struct Job {
    pub received: u64,
    pub track_id: String,
    pub body: Vec<u8>,
    pub done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// The writing thread's queue. Bounded: a full queue is answered 503, never
/// buffered without limit.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::SyncSender<Job>,
}

/// Most reports committed in one transaction.
const BATCH: usize = 256;

impl Writer {
    /// Starts the writing thread; it ends, after committing everything queued,
    /// when every [`Writer`] is dropped.
    pub fn start(
        mut conn: Connection,
        capacity: usize,
    ) -> std::io::Result<(Writer, std::thread::JoinHandle<()>)> {
        let (queue, jobs) = mpsc::sync_channel::<Job>(capacity);
        let thread = std::thread::Builder::new()
            .name("collector-writer".into())
            .spawn(move || {
                while let Ok(first) = jobs.recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match jobs.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let outcome = insert(&mut conn, &batch).map_err(|e| e.to_string());
                    for job in batch {
                        let _ = job.done.send(outcome.clone());
                    }
                }
                // Fold the WAL back into the database file on a clean stop.
                let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
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

fn insert(conn: &mut Connection, batch: &[Job]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx
            .prepare_cached("INSERT INTO reports (received, track_id, body) VALUES (?1, ?2, ?3)")?;
        for job in batch {
            insert.execute(params![job.received as i64, job.track_id, job.body])?;
        }
    }
    tx.commit()
}

/// A stored report.
pub struct Row {
    pub received: u64,
    pub body: Vec<u8>,
}

/// Every report received at or after `since` (unix seconds), oldest first.
pub fn reports_since(
    conn: &Connection,
    since: u64,
    mut each: impl FnMut(Row) -> Result<(), String>,
) -> Result<(), String> {
    let mut query = conn
        .prepare("SELECT received, body FROM reports WHERE received >= ?1 ORDER BY id")
        .map_err(|e| e.to_string())?;
    let mut rows = query
        .query(params![since as i64])
        .map_err(|e| e.to_string())?;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let received: i64 = row.get(0).map_err(|e| e.to_string())?;
        let body: Vec<u8> = row.get(1).map_err(|e| e.to_string())?;
        each(Row {
            received: received.max(0) as u64,
            body,
        })?;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod private_file_tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_new_database_and_its_wal_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("reports.db");
        let conn = open_write(&db).unwrap();
        conn.execute(
            "INSERT INTO reports (received, track_id, body) VALUES (1, 't', x'7b7d')",
            [],
        )
        .unwrap();
        for name in ["reports.db", "reports.db-wal"] {
            let mode = std::fs::metadata(dir.path().join(name)).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
    }
}
