//! The collector's embedded store: one SQLite file (WAL mode) per `--db
//! PATH`, checked like the library's state (this user's, private, never
//! through a link), bounded by `--max-db-size`. [`super::store`] chooses it
//! or [`super::mysql_store`] by the `--db` it is given.

use super::store::{Bounds, Job, NotStored, Row};
use crate::files;
use crate::report::unix_now;
use rusqlite::{params, Connection, ErrorCode, OpenFlags};
use std::path::Path;
use std::time::Duration;

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

/// The files SQLite keeps beside the database (`-journal` only outside WAL
/// mode, for instance left by another program).
const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The SQLite database open for writing, with its bounds.
pub struct Database {
    pub(super) conn: Connection,
    bounds: Bounds,
}

/// Opens (creating it if needed) the database for writing. The rules of the
/// library's state directory apply: the database's directory (created 0700
/// when missing) and the database and SQLite's files beside it must belong
/// to this user and be writable by no one else, none of them may be a
/// symbolic link, and a new database is created 0600 from the first byte
/// (SQLite gives its `-wal` and `-shm` files the database's mode). What is
/// checked cannot change before SQLite opens it: only this user (or root)
/// may write in that directory.
pub fn open_write(path: &Path, bounds: Bounds) -> Result<Database, String> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Err(format!(
            "the database {} must name a file (in UTF-8)",
            path.display()
        ));
    };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => files::private_dir(dir)?,
        Err(e) => {
            return Err(format!(
                "the directory {} cannot be examined ({e})",
                dir.display()
            ))
        }
        Ok(meta) if !meta.is_dir() => return Err(format!("{} is not a directory", dir.display())),
        Ok(meta) => not_shared(dir, &meta)?,
    }
    // SQLite's files first, so that a refusal leaves nothing created.
    for suffix in SIDE_FILES {
        ours_if_there(&dir.join(format!("{name}{suffix}")))?;
    }
    if !ours_if_there(path)? {
        files::create_private(dir, name, b"")
            .map_err(|e| format!("cannot create {} ({e})", path.display()))?;
        ours_if_there(path)?;
    }
    // No SQLITE_OPEN_CREATE: the file checked above is the one opened.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| cannot_open(path, &e))?;
    // WAL: readers (fleet, export) never block the collector. NORMAL: a
    // commit is in the WAL file before it returns, so a report answered 200
    // survives the collector being killed (an OS crash may lose the last
    // commits, never corrupt the file). journal_size_limit: the WAL file is
    // cut back to 4 MiB after each checkpoint (every 1,000 pages).
    conn.pragma_update(None, "journal_mode", "WAL")
        .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
        .and_then(|()| conn.pragma_update(None, "journal_size_limit", 4 << 20))
        .and_then(|()| conn.busy_timeout(Duration::from_secs(5)))
        .and_then(|()| conn.execute_batch(SCHEMA))
        .map_err(|e| cannot_open(path, &e))?;
    let page_size: u64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .map_err(|e| cannot_open(path, &e))? as u64;
    let max_pages = (bounds.max_size / page_size).max(1);
    // SQLite keeps the larger of this and the pages the file already has.
    let kept: i64 = conn
        .pragma_update_and_check(None, "max_page_count", max_pages as i64, |r| r.get(0))
        .map_err(|e| cannot_open(path, &e))?;
    if kept as u64 > max_pages {
        eprintln!(
            "tispark-telemetry: warning: {}",
            crate::log_line::escaped(&format!(
                "the database {} is already {} bytes, more than --max-db-size ({} bytes): it \
                 does not grow, and a report that does not fit in its free pages is answered 507",
                path.display(),
                kept as u64 * page_size,
                bounds.max_size
            ))
        );
    }
    let mut db = Database { conn, bounds };
    db.sweep().map_err(|e| cannot_open(path, &e))?;
    Ok(db)
}

/// Whether `file` exists; `Err` when it is a symbolic link, not a regular
/// file, or [`not_shared`] refuses it.
fn ours_if_there(file: &Path) -> Result<bool, String> {
    let meta = match std::fs::symlink_metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("{} cannot be examined ({e})", file.display())),
        Ok(meta) => meta,
    };
    if meta.file_type().is_symlink() {
        return Err(format!(
            "{} is a symbolic link, which is not followed: name the database file itself",
            file.display()
        ));
    }
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", file.display()));
    }
    not_shared(file, &meta)?;
    Ok(true)
}

/// `Err` when `meta` (of `path`, the database's directory or one of its
/// files) belongs to another user or another user may write it, saying how
/// to fix it: the state directory's rule ([`files::private_dir`]), without
/// changing a mode.
fn not_shared(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let (kind, own) = if meta.is_dir() {
        ("directory", "keep the database in a directory of your own")
    } else {
        ("file", "use a database file of your own")
    };
    let me = files::effective_uid();
    if meta.uid() != me {
        return Err(format!(
            "the {kind} {} belongs to uid {}, not to this user (uid {me}); {own}",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        let fix = match (meta.is_dir(), mode & 0o1000 != 0) {
            // Sticky: shared on purpose, as /tmp is.
            (true, true) => own.to_string(),
            (true, false) => format!("make it private with `chmod go-w {}`", path.display()),
            (false, _) => format!("make it private with `chmod 600 {}`", path.display()),
        };
        return Err(format!(
            "the {kind} {} is writable by other users (mode {mode:04o}); {fix}",
            path.display()
        ));
    }
    Ok(())
}

impl Database {
    /// Deletes the reports older than `--retain`; their pages are reused,
    /// the file does not shrink.
    pub(super) fn sweep(&mut self) -> rusqlite::Result<usize> {
        let Some(retain) = self.bounds.retain else {
            return Ok(0);
        };
        let cutoff = unix_now().saturating_sub(retain.as_secs());
        self.conn.execute(
            "DELETE FROM reports WHERE received < ?1",
            params![cutoff as i64],
        )
    }

    /// Why a report of `len` bytes did not fit (SQLITE_FULL): the bound, or
    /// the disk.
    fn full(&self, len: usize) -> String {
        let pragma = |name: &str| {
            self.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
                .unwrap_or(0)
                .max(0) as u64
        };
        let (pages, max_pages, page_size) = (
            pragma("page_count"),
            pragma("max_page_count"),
            pragma("page_size").max(512),
        );
        // The report's pages, and one for each b-tree it may split.
        let needed = (len as u64).div_ceil(page_size) + 2;
        if pages + needed > max_pages {
            format!(
                "the collector's database is full: it would grow past its bound of {} bytes \
                 (--max-db-size); the report was not stored",
                self.bounds.max_size
            )
        } else {
            "the disk that holds the collector's database is full; the report was not stored"
                .to_string()
        }
    }
}

/// Opens an existing database read-only: a regular file (a FIFO would block
/// SQLite's open), never created.
pub fn open_read(path: &Path) -> Result<Connection, String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(cannot_open(path, &files::ReadError::NotFound))
        }
        Err(e) => return Err(cannot_open(path, &e)),
        Ok(meta) if !meta.is_file() => {
            return Err(cannot_open(path, &files::ReadError::NotRegular))
        }
        Ok(_) => {}
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| cannot_open(path, &e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| cannot_open(path, &e))?;
    // A file that is not this collector's database is said to be so now.
    conn.query_row("SELECT count(*) FROM reports", [], |_| Ok(()))
        .map_err(|e| cannot_open(path, &e))?;
    Ok(conn)
}

fn cannot_open(path: &Path, e: &dyn std::fmt::Display) -> String {
    format!("the database {} cannot be used ({e})", path.display())
}

/// Commits `batch` in one transaction. When it does not fit (the bound or a
/// full disk), nothing of it was written: each report is then tried alone,
/// so that those that fit are stored and only the others refused. Nothing
/// already stored is ever deleted to make room.
pub(super) fn store(db: &mut Database, batch: &[Job]) -> Vec<Result<(), NotStored>> {
    match insert(&mut db.conn, batch) {
        Ok(()) => vec![Ok(()); batch.len()],
        Err(e) if is_full(&e) => batch
            .iter()
            .map(
                |job| match insert(&mut db.conn, std::slice::from_ref(job)) {
                    Ok(()) => Ok(()),
                    Err(e) if is_full(&e) => Err(NotStored::Full(db.full(job.body.len()))),
                    Err(e) => Err(NotStored::Failed(e.to_string())),
                },
            )
            .collect(),
        Err(e) => vec![Err(NotStored::Failed(e.to_string())); batch.len()],
    }
}

fn is_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::DiskFull)
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

pub(super) fn sqlite_reports_since(
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
        let bounds = Bounds {
            max_size: 1 << 20,
            retain: None,
        };
        let db = open_write(&db, bounds).unwrap();
        db.conn
            .execute(
                "INSERT INTO reports (received, track_id, body) VALUES (1, 't', x'7b7d')",
                [],
            )
            .unwrap();
        for name in ["reports.db", "reports.db-wal", "reports.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name)).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
    }
}

/// [`held`] of a SQLite file: the bytes of it and of SQLite's files beside it.
pub(super) fn sqlite_held(path: &Path) -> Result<crate::collector::metrics::Held, String> {
    let conn = open_read(path)?;
    let (reports, track_ids) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT track_id) FROM reports",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )
        .map_err(|e| cannot_open(path, &e))?;
    let name = path.as_os_str().to_owned();
    let size = |file: &Path| {
        std::fs::symlink_metadata(file)
            .ok()
            .filter(|m| m.is_file())
            .map_or(0, |m| m.len())
    };
    let bytes = size(path)
        + SIDE_FILES
            .iter()
            .map(|suffix| {
                let mut side = name.clone();
                side.push(suffix);
                size(Path::new(&side))
            })
            .sum::<u64>();
    Ok(crate::collector::metrics::Held {
        reports: reports.max(0) as u64,
        track_ids: track_ids.max(0) as u64,
        bytes,
    })
}
