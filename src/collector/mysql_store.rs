//! The collector's store on a MySQL-protocol server: TiDB, for a fleet that
//! needs more than one collector or keeps its reports for years (any MySQL
//! or MariaDB server works the same). `--db mysql://USER@HOST:PORT/DATABASE`;
//! the password from `--db-password-file` or `TISPARK_TELEMETRY_DB_PASSWORD`,
//! never from the command line. Several collectors may write one database:
//! each report is inserted once, in a transaction committed before it is
//! answered 200. Only SQL that TiDB supports (docs/collector.md).

use super::store::{Job, NotStored, Row};
use crate::files;
use crate::report::unix_now;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, TxOpts, Value};
use std::path::Path;
use std::time::Duration;

/// The schema this code writes and reads; a database with a higher one was
/// made by a newer collector and is refused, one with a lower one (none yet)
/// would be migrated.
pub const SCHEMA_VERSION: u32 = 1;

/// The environment variable that may hold the password.
pub const PASSWORD_ENV: &str = "TISPARK_TELEMETRY_DB_PASSWORD";

/// The largest password file read.
const MAX_PASSWORD_FILE: u64 = 4096;

/// Bytes of report bodies in one INSERT statement (well under MySQL's and
/// MariaDB's 16 MiB and TiDB's 64 MiB `max_allowed_packet`).
const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// Reports deleted by `--retain` in one statement (TiDB bounds a
/// transaction's size).
const SWEEP_ROWS: usize = 10_000;

/// How long connecting, and any one read or write of the connection, may take.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS schema_version (
        id      TINYINT NOT NULL PRIMARY KEY,
        version INT     NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS reports (
        id       BIGINT     NOT NULL AUTO_INCREMENT PRIMARY KEY,
        received BIGINT     NOT NULL,
        track_id BLOB       NOT NULL,
        body     MEDIUMBLOB NOT NULL,
        KEY reports_by_received (received)
    )",
    // The first collector to get here writes the version; the others' are ignored.
    "INSERT IGNORE INTO schema_version (id, version) VALUES (1, 1)",
];

/// Where the database is: the URL as given (without a password, which it
/// may not hold) and the options to connect with.
#[derive(Clone)]
pub struct Server {
    url: String,
    opts: Opts,
}

impl Server {
    /// `url`: `mysql://USER@HOST[:PORT]/DATABASE[?socket=PATH]`. The password:
    /// the file's content (one trailing newline cut), else the environment's.
    pub fn new(url: &str, password_file: Option<&Path>) -> Result<Server, String> {
        // Not shown when it does not parse: it might hold a password.
        let parsed = url::Url::parse(url).map_err(|e| format!("--db is not a URL ({e})"))?;
        if parsed.password().is_some() || parsed.query_pairs().any(|(key, _)| key == "password") {
            return Err(
                "--db must not hold the password (it would be on the command line, \
                 in the process list and in shell history): give it with --db-password-file \
                 PATH or the environment variable TISPARK_TELEMETRY_DB_PASSWORD"
                    .to_string(),
            );
        }
        let shown = parsed.to_string();
        let opts = Opts::from_url(url).map_err(|e| format!("--db {shown} is refused ({e})"))?;
        if opts.get_db_name().is_none_or(str::is_empty) {
            return Err(format!(
                "--db {shown} names no database: mysql://USER@HOST:PORT/DATABASE"
            ));
        }
        let password = match password_file {
            Some(path) => Some(read_password(path)?),
            None => std::env::var(PASSWORD_ENV).ok(),
        };
        let opts = OptsBuilder::from_opts(opts)
            .pass(password)
            // Connect where the URL says, not to a socket the server names.
            .prefer_socket(false)
            .tcp_connect_timeout(Some(NETWORK_TIMEOUT))
            .read_timeout(Some(NETWORK_TIMEOUT))
            .write_timeout(Some(NETWORK_TIMEOUT));
        Ok(Server {
            url: shown,
            opts: opts.into(),
        })
    }

    /// The URL, which never holds the password.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn connect(&self) -> Result<Conn, String> {
        Conn::new(self.opts.clone()).map_err(|e| self.cannot(&e))
    }

    fn cannot(&self, e: &dyn std::fmt::Display) -> String {
        format!("the database {} cannot be used ({e})", self.url)
    }
}

/// The password file: a regular file (bounded, no FIFO), readable by no one
/// but its owner and group; its content, one trailing newline cut.
fn read_password(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let cannot = |why: &dyn std::fmt::Display| {
        format!(
            "the password file {} cannot be used ({why})",
            path.display()
        )
    };
    let file = files::open_regular(path, files::Links::Follow).map_err(|e| cannot(&e))?;
    let mode = file.metadata().map_err(|e| cannot(&e))?.mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Err(cannot(&format!(
            "other users may read it (mode {mode:04o}): make it private with `chmod 600 {}`",
            path.display()
        )));
    }
    let bytes = files::read_limited(file, MAX_PASSWORD_FILE)
        .map_err(|e| cannot(&e))?
        .ok_or_else(|| cannot(&format!("it is larger than {MAX_PASSWORD_FILE} bytes")))?;
    let mut text = String::from_utf8(bytes).map_err(|_| cannot(&"it is not UTF-8"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// The database open for writing.
pub struct Database {
    server: Server,
    conn: Option<Conn>,
    retain: Option<Duration>,
}

/// Connects, creates the schema when missing (several collectors may do so
/// at once) and refuses a database of a newer schema.
pub fn open_write(server: &Server, retain: Option<Duration>) -> Result<Database, String> {
    let mut conn = server.connect()?;
    for statement in SCHEMA {
        conn.query_drop(statement).map_err(|e| server.cannot(&e))?;
    }
    check_version(server, &mut conn)?;
    let mut db = Database {
        server: server.clone(),
        conn: Some(conn),
        retain,
    };
    db.sweep()?;
    Ok(db)
}

fn check_version(server: &Server, conn: &mut Conn) -> Result<(), String> {
    let version: Option<u32> = conn
        .query_first("SELECT version FROM schema_version WHERE id = 1")
        .map_err(|e| match e {
            // ER_NO_SUCH_TABLE
            mysql::Error::MySqlError(e) if e.code == 1146 => server.cannot(
                &"it has no table schema_version: it is not a collector's database; \
                  `collect` makes one",
            ),
            e => server.cannot(&e),
        })?;
    match version {
        Some(v) if v > SCHEMA_VERSION => Err(format!(
            "the database {} has schema version {v}, which a newer collector made; this one \
             knows version {SCHEMA_VERSION}: use a tispark-telemetry at least as new",
            server.url
        )),
        Some(_) => Ok(()),
        None => Err(server.cannot(&"it has no schema version: it is not a collector's database")),
    }
}

impl Database {
    /// The connection, opened again after one failed (the server restarted,
    /// or the network cut it).
    fn conn(&mut self) -> Result<&mut Conn, String> {
        if self.conn.is_none() {
            self.conn = Some(self.server.connect()?);
        }
        Ok(self.conn.as_mut().expect("just set"))
    }

    /// Deletes the reports older than `--retain`: at most [`SWEEP_ROWS`] a
    /// call (it runs at most once a second, on the writer's thread), so that a
    /// large first sweep does not hold the reports waiting to be stored.
    pub fn sweep(&mut self) -> Result<(), String> {
        let Some(retain) = self.retain else {
            return Ok(());
        };
        let cutoff = unix_now().saturating_sub(retain.as_secs());
        let result = (|| {
            let conn = self.conn()?;
            conn.exec_drop(
                format!("DELETE FROM reports WHERE received < ? LIMIT {SWEEP_ROWS}"),
                (cutoff,),
            )
            .map_err(|e| e.to_string())
        })();
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// Commits `batch` in one transaction; only then may its requests be
    /// answered 200. A failed commit stores none of it.
    pub fn store(&mut self, batch: &[Job]) -> Vec<Result<(), NotStored>> {
        let server = self.server.clone();
        let outcome = match self.conn() {
            Err(why) => Err(NotStored::Failed(why)),
            Ok(conn) => insert(conn, batch).map_err(|e| {
                let why = server.cannot(&e);
                match &e {
                    // "The table is full" (1114), "disk full" (1021): 507.
                    mysql::Error::MySqlError(m) if m.code == 1114 || m.code == 1021 => {
                        NotStored::Full(why)
                    }
                    _ => NotStored::Failed(why),
                }
            }),
        };
        if outcome.is_err() {
            // Whatever the state of the connection, the next batch starts on
            // a new one.
            self.conn = None;
        }
        vec![outcome; batch.len()]
    }
}

fn insert(conn: &mut Conn, batch: &[Job]) -> mysql::Result<()> {
    let mut tx = conn.start_transaction(TxOpts::default())?;
    let mut rest = batch;
    while !rest.is_empty() {
        // At least one report per statement, then as many as fit.
        let mut n = 1;
        let mut bytes = rest[0].body.len();
        while n < rest.len() && bytes + rest[n].body.len() <= MAX_STATEMENT_BYTES {
            bytes += rest[n].body.len();
            n += 1;
        }
        let (now, later) = rest.split_at(n);
        let mut sql = String::from("INSERT INTO reports (received, track_id, body) VALUES ");
        let mut params = Vec::with_capacity(now.len() * 3);
        for (i, job) in now.iter().enumerate() {
            sql.push_str(if i == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
            params.push(Value::from(job.received));
            params.push(Value::from(job.track_id.as_bytes()));
            params.push(Value::from(job.body.as_slice()));
        }
        tx.exec_drop(sql, params)?;
        rest = later;
    }
    tx.commit()
}

/// A connection for reading (`fleet`, `export`, the page).
pub fn open_read(server: &Server) -> Result<Conn, String> {
    let mut conn = server.connect()?;
    check_version(server, &mut conn)?;
    Ok(conn)
}

/// Every report received at or after `since`, in the order received: by
/// `received`, then by `id` (TiDB's AUTO_INCREMENT ids are unique but only
/// ordered within one TiDB server).
pub fn reports_since(
    conn: &mut Conn,
    since: u64,
    mut each: impl FnMut(Row) -> Result<(), String>,
) -> Result<(), String> {
    let rows = conn
        .exec_iter(
            "SELECT received, body FROM reports WHERE received >= ? ORDER BY received, id",
            (since,),
        )
        .map_err(|e| e.to_string())?;
    for row in rows {
        let (received, body): (u64, Vec<u8>) =
            mysql::from_row_opt(row.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        each(Row { received, body })?;
    }
    Ok(())
}

/// What `/metrics` says: reports, distinct track ids, and the bytes the
/// server says the database's tables take (InnoDB's and TiDB's figures are
/// estimates).
pub fn held(server: &Server) -> Result<crate::collector::metrics::Held, String> {
    let mut conn = open_read(server)?;
    let (reports, track_ids): (u64, u64) = conn
        .query_first("SELECT count(*), count(DISTINCT track_id) FROM reports")
        .map_err(|e| server.cannot(&e))?
        .unwrap_or((0, 0));
    let bytes: Option<u64> = conn
        .query_first(
            "SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS UNSIGNED) \
             FROM information_schema.tables WHERE table_schema = DATABASE()",
        )
        .map_err(|e| server.cannot(&e))?;
    Ok(crate::collector::metrics::Held {
        reports,
        track_ids,
        bytes: bytes.unwrap_or(0),
    })
}
