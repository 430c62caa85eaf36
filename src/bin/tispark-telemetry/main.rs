//! `tispark-telemetry`: the operator's view of TiSpark's telemetry on a host,
//! for one Spark configuration file (`spark-defaults.conf`) and the library's
//! state directory: `status`, `enable`, `disable`, `reset`, `preview`,
//! `completions`; and the receiving end of reports: `collect`, `fleet`, `export`.
//!
//! - `args`: the command line (clap) and the help texts.
//! - `conf_io`: the file read bounded, and rewritten without exposing it.
//! - `status`: what is on and why, and the last report from the audit trail.
//!
//! The rest is the library's (feature `cli`, never in the jar's library):
//! reading `spark-defaults.conf` as Spark does and setting one key in it
//! (`tispark_telemetry::spark_defaults`), and the collector
//! (`tispark_telemetry::collector`: the server, what it accepts, its SQLite
//! store, the fleet's summaries). Everything about telemetry itself (the
//! decision, the state directory, the report) is the library's too, the code
//! the Spark driver runs.

mod args;
mod conf_io;
mod status;

use args::{Command, Parsed, NAME};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tispark_telemetry::collector::{fleet, server, store, token};
use tispark_telemetry::conf::{self, Snapshot, ENABLE_KEY};
use tispark_telemetry::spark_defaults::{Change, ConfFile};
use tispark_telemetry::{log_line, pipeline, state};

/// Why the command did not do what was asked; each is one line on stderr.
#[derive(Debug)]
enum Failure {
    /// Exit code 1: something failed (I/O, an unusable endpoint, …).
    Failed(String),
    /// Exit code 2: the command line is wrong, or no configuration file is named
    /// for a command that changes one.
    Usage(String),
    /// Exit code 3: the configuration file cannot be parsed, or rewritten,
    /// safely (hard links, an extended attribute the copy cannot be given);
    /// it was not changed.
    Refused(String),
}

fn main() -> ExitCode {
    if log::set_logger(&StderrLog).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let result = args::parse(std::env::args_os().skip(1))
        .map_err(Failure::Usage)
        .and_then(run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Failed(why)) => fail(1, &why),
        Err(Failure::Usage(why)) => fail(2, &format!("{why} (see `{NAME} --help`)")),
        Err(Failure::Refused(why)) => fail(3, &why),
    }
}

fn fail(code: u8, why: &str) -> ExitCode {
    // One line whatever a path, URL or conf value in it holds (a usage
    // error is one line already, see args::one_line).
    eprintln!("{NAME}: error: {}", log_line::escaped(why));
    ExitCode::from(code)
}

/// A path as the tool prints it: escaped and cut as every value shown is (`log_line::shown`).
fn shown(path: &Path) -> String {
    log_line::shown(&path.display().to_string())
}

fn run(parsed: Parsed) -> Result<(), Failure> {
    let cli = match parsed {
        Parsed::Print(text) => {
            print(&text);
            return Ok(());
        }
        Parsed::Run(cli) => cli,
    };
    match cli.command {
        Command::Completions { shell } => print_bytes(&args::completions(shell)),
        Command::Collect {
            listen,
            ui,
            db,
            db_password_file,
            max_db_size,
            retain,
            token_file,
        } => {
            let bounds = store::Bounds {
                max_size: max_db_size,
                retain,
            };
            let token = token_file
                .map(|path| token::Token::read(&path))
                .transpose()
                .map_err(Failure::Failed)?;
            let db =
                store::Location::new(&db, db_password_file.as_deref()).map_err(Failure::Failed)?;
            server::run(&listen, &ui, &db, bounds, token).map_err(Failure::Failed)?
        }
        Command::Fleet {
            db,
            db_password_file,
            since,
            json,
        } => {
            let db =
                store::Location::new(&db, db_password_file.as_deref()).map_err(Failure::Failed)?;
            let fleet = fleet::gather(&db, fleet::window_start(since)).map_err(Failure::Failed)?;
            if json {
                print(&format!("{}\n", fleet.to_json()));
            } else {
                print(&fleet.to_text());
            }
        }
        Command::Export {
            db,
            db_password_file,
        } => {
            let db =
                store::Location::new(&db, db_password_file.as_deref()).map_err(Failure::Failed)?;
            fleet::print_export(&db).map_err(Failure::Failed)?
        }
        Command::Status { json } => {
            let path = find_conf(cli.conf);
            let loaded = load_if_named(path.as_deref())?;
            let status = status::gather(path.as_deref(), loaded.exists, &loaded.file.values());
            if json {
                print(&format!("{}\n", status.to_json()));
            } else {
                print(&status.to_text());
            }
        }
        Command::Enable => set_switch(&conf_path(cli.conf)?, true)?,
        Command::Disable => set_switch(&conf_path(cli.conf)?, false)?,
        Command::Reset => reset(find_conf(cli.conf).as_deref())?,
        Command::Preview {
            spark_version,
            tispark_version,
        } => preview(&conf_path(cli.conf)?, spark_version, tispark_version)?,
    }
    Ok(())
}

/// `--conf`, else `$SPARK_CONF_DIR/spark-defaults.conf`, else
/// `$SPARK_HOME/conf/spark-defaults.conf`, absolute; `None` when none of
/// them is given.
fn find_conf(given: Option<PathBuf>) -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let path = given
        .or_else(|| var("SPARK_CONF_DIR").map(|dir| PathBuf::from(dir).join("spark-defaults.conf")))
        .or_else(|| {
            var("SPARK_HOME").map(|home| PathBuf::from(home).join("conf/spark-defaults.conf"))
        })?;
    Some(std::path::absolute(&path).unwrap_or(path))
}

/// [`find_conf`], for the commands that need a file: none is a usage error.
fn conf_path(given: Option<PathBuf>) -> Result<PathBuf, Failure> {
    find_conf(given).ok_or_else(|| {
        Failure::Usage(
            "no configuration file: pass --conf PATH, or set SPARK_CONF_DIR or SPARK_HOME".into(),
        )
    })
}

struct Loaded {
    exists: bool,
    file: ConfFile,
}

/// The file, parsed; an empty configuration when it does not exist.
fn load(path: &Path) -> Result<Loaded, Failure> {
    parse(path, conf_io::read(path).map_err(Failure::Failed)?.as_ref())
}

/// [`load`]; with no file named, an empty configuration (the defaults).
fn load_if_named(path: Option<&Path>) -> Result<Loaded, Failure> {
    match path {
        Some(path) => load(path),
        None => Ok(Loaded {
            exists: false,
            file: ConfFile::default(),
        }),
    }
}

/// The file read from `path` (`None`: there is none), parsed.
fn parse(path: &Path, contents: Option<&conf_io::Contents>) -> Result<Loaded, Failure> {
    let Some(contents) = contents else {
        return Ok(Loaded {
            exists: false,
            file: ConfFile::default(),
        });
    };
    let file = ConfFile::parse(&contents.bytes).map_err(|why| {
        Failure::Refused(format!(
            "{} cannot be parsed safely, so it is left as it is: {why}",
            path.display()
        ))
    })?;
    Ok(Loaded { exists: true, file })
}

fn snapshot_of(file: &ConfFile) -> Snapshot {
    let mut values = file.values();
    Snapshot::read(&mut values).unwrap_or_default()
}

/// `enable` / `disable`.
fn set_switch(path: &Path, on: bool) -> Result<(), Failure> {
    // Through a symbolic link, the file it points to is rewritten (not replaced by a copy).
    let target = conf_io::rewrite_target(path).map_err(Failure::Failed)?;
    // From before the read until after the rename: a writer that takes the
    // directory's lock (or held the file's) loses nothing to this rewrite.
    let until = std::time::Instant::now() + conf_io::LOCK_WAIT;
    let _dir_lock = conf_io::lock_dir(&target, until).map_err(Failure::Failed)?;
    let original = conf_io::read_locked(&target, until).map_err(Failure::Failed)?;
    let loaded = parse(&target, original.as_ref())?;
    let value = if on { "true" } else { "false" };
    let lines = loaded.file.lines_defining(ENABLE_KEY);
    let current = loaded.file.values().get(ENABLE_KEY).cloned();
    if lines.len() == 1 && current.as_deref().and_then(conf::parse_bool) == Some(on) {
        print(&format!(
            "{ENABLE_KEY} is already {value} in {} (line {}); the file is unchanged.\n",
            shown(&target),
            lines[0]
        ));
    } else {
        let (text, change) = loaded.file.set(ENABLE_KEY, value).map_err(|why| {
            Failure::Refused(format!("{} is left as it is: {why}", target.display()))
        })?;
        if let Some(original) = &original {
            conf_io::check_one_name(&target, &original.meta).map_err(Failure::Refused)?;
            conf_io::check_writable(&target).map_err(Failure::Failed)?;
        }
        conf_io::replace(&target, original.as_ref(), text.as_bytes()).map_err(|e| match e {
            conf_io::NotDone::Failed(why) => Failure::Failed(why),
            conf_io::NotDone::Refused(why) => Failure::Refused(why),
        })?;
        let how = match change {
            Change::Appended { .. } if !loaded.exists => "a new file".to_string(),
            Change::Appended { line } => format!("added as line {line}"),
            Change::Replaced { line } => format!("line {line} rewritten"),
        };
        print(&format!(
            "Set {ENABLE_KEY} {value} in {} ({how}).\n",
            shown(&target)
        ));
    }
    if on {
        if let Some(var) = conf::disabled_by_env(conf::process_env) {
            print(&format!(
                "Note: telemetry stays off wherever {var} is set, as it is in this environment.\n"
            ));
        }
    }
    Ok(())
}

/// `reset`: with no configuration file, the state directory comes from the
/// environment, as the library resolves it when the conf names none.
fn reset(path: Option<&Path>) -> Result<(), Failure> {
    let snapshot = snapshot_of(&load_if_named(path)?.file);
    let dir = pipeline::state_dir(&snapshot).ok_or_else(|| {
        Failure::Failed(
            "there is no state directory (HOME is unset): set TISPARK_TELEMETRY_STATE_DIR \
             or spark.tispark.telemetry.state_dir"
                .into(),
        )
    })?;
    let id = state::reset_track_id(&dir).map_err(|e| {
        Failure::Failed(format!(
            "the track id cannot be stored in {} ({e})",
            dir.display()
        ))
    })?;
    print(&format!(
        "New track id {id}, stored in {}; later reports carry it.\n",
        shown(&dir)
    ));
    Ok(())
}

fn preview(
    path: &Path,
    spark_version: Option<String>,
    tispark_version: Option<String>,
) -> Result<(), Failure> {
    let file = load(path)?.file;
    let snapshot = snapshot_of(&file);
    // The same decision and check of the endpoint and CA bundle the driver makes.
    let prepared = pipeline::prepare(&snapshot, conf::process_env);
    if let Err(why) = prepared.destination {
        return Err(Failure::Failed(format!(
            "with this configuration nothing would be sent: {why}"
        )));
    }
    let decision = prepared.decision;
    if !decision.is_on() {
        eprintln!(
            "{NAME}: telemetry is {}; this is what it would send if it were on.",
            log_line::escaped(&decision.explain())
        );
    }
    let request = pipeline::ReportInput {
        snapshot,
        spark_version: spark_version.or_else(spark_version_of_spark_home),
        tispark_version,
    };
    let body = pipeline::preview(&request);
    print(&format!("{body}\n"));
    Ok(())
}

/// The version in `$SPARK_HOME/jars/spark-core_<scala>-<version>.jar`.
fn spark_version_of_spark_home() -> Option<String> {
    let home = std::env::var_os("SPARK_HOME").filter(|v| !v.is_empty())?;
    std::fs::read_dir(Path::new(&home).join("jars"))
        .ok()?
        .flatten()
        .find_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let rest = name.strip_prefix("spark-core_")?.strip_suffix(".jar")?;
            let (_scala, version) = rest.split_once('-')?;
            version
                .starts_with(|c: char| c.is_ascii_digit())
                .then(|| version.to_string())
        })
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print(text: &str) {
    print_bytes(text.as_bytes());
}

fn print_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

/// The library's warnings (a conf value replaced by its default, a corrupt
/// track id file, …), one line each on stderr.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn && metadata.target().starts_with("tispark_telemetry")
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            // Escaped as the JVM's log bridge escapes: one line, whatever a
            // path, URL or conf value in it holds.
            eprintln!(
                "{NAME}: warning: {}",
                log_line::escaped(&record.args().to_string())
            );
        }
    }

    fn flush(&self) {}
}
