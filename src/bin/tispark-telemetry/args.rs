//! The command line, declared with clap: `tispark-telemetry [--conf PATH]
//! <command> [options]`, `--help` on every command and `help <command>`,
//! typo suggestions, and `completions <shell>`. `--conf` may stand before or
//! after the command. A mistake becomes one line for stderr (exit code 2).

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

pub const NAME: &str = "tispark-telemetry";

/// tispark-telemetry: see and control TiSpark's telemetry on this host.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = NAME,
    version,
    override_usage = "tispark-telemetry [--conf PATH] <COMMAND> [OPTIONS]",
    subcommand_value_name = "COMMAND",
    after_help = "\
Exit codes: 0 done; 1 failed (the error is on stderr); 2 wrong usage, or no
configuration file named where one is needed; 3 the configuration file cannot
be parsed safely (it is left as it is)."
)]
pub struct Cli {
    /// The Spark configuration file. Default: $SPARK_CONF_DIR/spark-defaults.conf,
    /// else $SPARK_HOME/conf/spark-defaults.conf
    #[arg(long, global = true, value_name = "PATH")]
    pub conf: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Whether telemetry is on and why, the track id, the endpoint, the last report
    ///
    /// Whether telemetry is on for the configuration and why (the key
    /// spark.tispark.telemetry.enable, or an environment variable
    /// TISPARK_TELEMETRY_DISABLED / DO_NOT_TRACK that overrides it), the track
    /// id this host would use (none is created), the endpoint, the state
    /// directory, and the last report this host sent, from the audit trail:
    /// when, where, and the outcome. Changes nothing. With no configuration
    /// file named anywhere, it says that telemetry is off by default.
    #[command(
        verbatim_doc_comment,
        override_usage = "tispark-telemetry [--conf PATH] status [--json]"
    )]
    Status {
        /// The same, as one JSON object (see the README for its fields)
        #[arg(long)]
        json: bool,
    },
    /// Set spark.tispark.telemetry.enable to true in the configuration file
    ///
    /// Set spark.tispark.telemetry.enable to true in the configuration file: its
    /// line is rewritten in place, or added at the end; every other line is kept
    /// byte for byte. The file (and its directory) is created when missing, and
    /// written atomically, with its owner, group and mode from the first byte (a
    /// new file: 0600). A file that cannot be parsed safely (not UTF-8, a
    /// malformed \u escape or one that is half a surrogate pair, a `\` next to a
    /// comment that Java 8 reads otherwise than later Java, the key defined more
    /// than once, a dangling `\` continuation where the key would be added) is
    /// left as it is, with exit code 3. A symbolic link to no file, a file this
    /// user may not write, anything but a regular file, or a file over 1 MiB:
    /// exit code 1. Environment variables TISPARK_TELEMETRY_DISABLED=1 or
    /// DO_NOT_TRACK=1 still win over the file where they are set.
    #[command(
        verbatim_doc_comment,
        override_usage = "tispark-telemetry [--conf PATH] enable"
    )]
    Enable,
    /// Set spark.tispark.telemetry.enable to false in the configuration file
    ///
    /// Set spark.tispark.telemetry.enable to false in the configuration file,
    /// with the same rules as `enable`: in place or added at the end, every
    /// other line kept, created when missing, written atomically, an unparsable
    /// file refused (exit code 3).
    #[command(
        verbatim_doc_comment,
        override_usage = "tispark-telemetry [--conf PATH] disable"
    )]
    Disable,
    /// Give this host a new random track id
    ///
    /// Replace this host's track id (in the state directory named by the
    /// configuration file, TISPARK_TELEMETRY_STATE_DIR, XDG_STATE_HOME or HOME)
    /// with a new random one, and print it. Later reports carry the new id.
    /// Needs no configuration file: without one, the state directory comes
    /// from the environment.
    #[command(
        verbatim_doc_comment,
        override_usage = "tispark-telemetry [--conf PATH] reset"
    )]
    Reset,
    /// Print the exact JSON this host would send, sending nothing
    ///
    /// Print the exact JSON this host would send for the configuration file,
    /// built by the same code as the driver's report. Nothing is sent and
    /// nothing is added to the audit trail. Like the driver, it uses this host's
    /// track id (storing one if there is none yet, so that the id shown is the
    /// one that will be sent) and, when spark.tispark.pd.addresses is set, asks
    /// PD for the TiDB version. The Spark and TiSpark versions come from the
    /// running application; here they are given by the options, the Spark
    /// version otherwise read from $SPARK_HOME/jars.
    #[command(
        verbatim_doc_comment,
        override_usage = "tispark-telemetry [--conf PATH] preview [OPTIONS]"
    )]
    Preview {
        /// The Spark version to show (default: from $SPARK_HOME/jars, else UNKNOWN)
        #[arg(long, value_name = "V")]
        spark_version: Option<String>,
        /// The TiSpark version to show (default: UNKNOWN, as with the Spark plugin)
        #[arg(long, value_name = "V")]
        tispark_version: Option<String>,
    },
    /// Receive reports: an HTTP server storing each valid report in a SQLite file
    ///
    /// Receive reports: an HTTP/1.1 server that accepts POST of reports at
    /// /api/v1/tispark/report (where the library sends them; point
    /// spark.tispark.telemetry.url at http://ADDR/api/v1/tispark/report) and
    /// stores each in the SQLite database PATH (created if missing; WAL mode),
    /// with the time received, before answering 200. A body that is not exactly
    /// one report of the library's schema is refused with 400 and one line
    /// saying why; a body over 64 KiB with 413; a report that would take the
    /// database past --max-db-size with 507 (nothing stored is ever dropped to
    /// make room; --retain does, by age). Every connection is taken; a
    /// request not in whole within 5 s is cut, and so, for room, is the oldest
    /// of an address with 64 being received (limits: docs/collector.md).
    /// On its own address (--ui, loopback by default) it serves the fleet page
    /// at / (the counts of `fleet --since 30d` as charts; no script, nothing
    /// fetched from elsewhere) and Prometheus metrics at /metrics.
    /// Ctrl-C or SIGTERM stops it, after the requests in flight are answered.
    /// The database and its directory must belong to this user and be
    /// writable by no one else; a new one is created 0600 (its directory
    /// 0700), never through a symbolic link. --db mysql://USER@HOST:PORT/DB
    /// stores into TiDB (or MySQL, MariaDB) instead: several collectors may
    /// share it; the password from --db-password-file or
    /// TISPARK_TELEMETRY_DB_PASSWORD; --max-db-size is for a file only.
    #[command(
        verbatim_doc_comment,
        override_usage = "tispark-telemetry collect --listen ADDR --db PATH|URL [--db-password-file PATH] [--ui ADDR] [--max-db-size SIZE] [--retain DURATION] [--token-file PATH]"
    )]
    Collect {
        /// The address to listen on, e.g. 0.0.0.0:8080 (port 0: any free port;
        /// the first line printed names it)
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// The address of the fleet page (GET /) and of its metrics (GET
        /// /metrics), apart from the reports' (the second line printed names it)
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        ui: String,
        /// The database file, or mysql://USER@HOST:PORT/DATABASE: TiDB (or
        /// MySQL, MariaDB), which several collectors may share
        #[arg(long, value_name = "PATH|URL")]
        db: PathBuf,
        /// The password of --db mysql://...: the first line of this file
        /// (readable by no other user), else the environment variable
        /// TISPARK_TELEMETRY_DB_PASSWORD; never in the URL
        #[arg(long, value_name = "PATH")]
        db_password_file: Option<PathBuf>,
        /// The database's largest size: bytes, or with KiB, MiB, GiB, TiB
        /// (at least 1MiB)
        #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
        max_db_size: u64,
        /// Delete reports received longer ago than this: 30d, 12weeks, 1y
        /// (default: keep every report)
        #[arg(long, value_name = "DURATION", value_parser = parse_retain)]
        retain: Option<std::time::Duration>,
        /// Store only reports that carry this file's token as the password
        /// of HTTP Basic credentials (spark.tispark.telemetry.url =
        /// https://reporter:TOKEN@host/…); others get 401. The file: one token
        /// of at least 16 characters A-Z a-z 0-9 - . _ ~, closed to other users
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
    },
    /// What the collected reports say: versions, settings, OS, CPUs by track id
    ///
    /// What the collected reports say: the number of reports and of distinct
    /// track ids in the window, then, over the newest report of each track id,
    /// counts by Spark, TiSpark and TiDB version, read engines
    /// (spark.tispark.isolation_read_engines), streaming
    /// (spark.tispark.coprocess.streaming), OS and CPU cores (logical), and
    /// that newest report of each track id, newest first. --json: the same as
    /// one JSON object (fields: docs/collector.md).
    #[command(
        verbatim_doc_comment,
        override_usage = "tispark-telemetry fleet --db PATH|URL [--db-password-file PATH] [--since DURATION] [--json]"
    )]
    Fleet {
        /// The collector's database file, or mysql://USER@HOST:PORT/DATABASE
        #[arg(long, value_name = "PATH|URL")]
        db: PathBuf,
        /// The password of --db mysql://...: the first line of this file
        /// (readable by no other user), else the environment variable
        /// TISPARK_TELEMETRY_DB_PASSWORD; never in the URL
        #[arg(long, value_name = "PATH")]
        db_password_file: Option<PathBuf>,
        /// Only reports received in this last span of time: 30m, 24h, 7d, 2weeks
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        /// As one JSON object, for scripts
        #[arg(long)]
        json: bool,
    },
    /// Write every stored report as JSON lines, byte for byte as received
    ///
    /// Write every stored report on stdout, oldest first, each body byte for
    /// byte as it was received, one a line (JSON lines).
    #[command(
        verbatim_doc_comment,
        override_usage = "tispark-telemetry export --db PATH|URL [--db-password-file PATH]"
    )]
    Export {
        /// The collector's database file, or mysql://USER@HOST:PORT/DATABASE
        #[arg(long, value_name = "PATH|URL")]
        db: PathBuf,
        /// The password of --db mysql://...: the first line of this file
        /// (readable by no other user), else the environment variable
        /// TISPARK_TELEMETRY_DB_PASSWORD; never in the URL
        #[arg(long, value_name = "PATH")]
        db_password_file: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    ///
    /// Print the completion script for a shell on stdout. For example:
    ///   tispark-telemetry completions bash > /etc/bash_completion.d/tispark-telemetry
    ///   tispark-telemetry completions zsh > "${fpath[1]}/_tispark-telemetry"
    ///   tispark-telemetry completions fish > ~/.config/fish/completions/tispark-telemetry.fish
    #[command(
        verbatim_doc_comment,
        override_usage = "tispark-telemetry completions <SHELL>"
    )]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

/// The smallest `--max-db-size`: a few reports of the largest size accepted.
pub const MIN_DB_SIZE: u64 = 1 << 20;

/// `--max-db-size`: a number of bytes, with `B`, `KiB`, `MiB`, `GiB` or `TiB`
/// after it (any case, a space between allowed), at least [`MIN_DB_SIZE`].
fn parse_size(text: &str) -> Result<u64, String> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "kib" => 10,
        "mib" => 20,
        "gib" => 30,
        "tib" => 40,
        _ => return Err("a size is a number of bytes, or with KiB, MiB, GiB or TiB".into()),
    };
    let bytes = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or("a size is a number of bytes, or with KiB, MiB, GiB or TiB")?;
    if bytes < MIN_DB_SIZE {
        return Err(format!(
            "the database's size must be at least 1MiB ({MIN_DB_SIZE} bytes)"
        ));
    }
    Ok(bytes)
}

/// `--retain`: a duration of at least one second.
fn parse_retain(text: &str) -> Result<std::time::Duration, String> {
    let retain = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if retain.as_secs() == 0 {
        return Err("reports are kept at least one second".into());
    }
    Ok(retain)
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    Run(Cli),
    /// `--help`, `help …` or `--version`: print this on stdout and succeed.
    Print(String),
}

/// Parses the arguments after the program name. `Err` is one line for stderr.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    let all = std::iter::once(OsString::from(NAME)).chain(args);
    match Cli::try_parse_from(all) {
        Ok(cli) => Ok(Parsed::Run(cli)),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            Ok(Parsed::Print(e.render().to_string()))
        }
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand
            ) =>
        {
            let names: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .filter(|n| n != "help")
                .collect();
            Err(format!("a command is needed: {}", names.join(", ")))
        }
        Err(e) => Err(one_line(&e)),
    }
}

/// clap's message on one line: its first line, then the suggestion or the
/// possible values it knows of.
fn one_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
    let strings = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    };
    let suggested = [
        ContextKind::SuggestedSubcommand,
        ContextKind::SuggestedArg,
        ContextKind::SuggestedValue,
    ]
    .into_iter()
    // clap lists its candidates least likely first.
    .find_map(|kind| strings(kind).into_iter().last());
    if let Some(s) = suggested {
        line.push_str(&format!("; did you mean '{s}'?"));
    } else if !strings(ContextKind::ValidSubcommand).is_empty() {
        let names = strings(ContextKind::ValidSubcommand);
        line.push_str(&format!("; the commands are {}", names.join(", ")));
    } else if !strings(ContextKind::ValidValue).is_empty() {
        let values = strings(ContextKind::ValidValue);
        line.push_str(&format!("; one of {}", values.join(", ")));
    }
    line
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), NAME, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(OsString::from))
    }

    fn cli(args: &[&str]) -> Cli {
        match parse_str(args) {
            Ok(Parsed::Run(cli)) => cli,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn printed(args: &[&str]) -> String {
        match parse_str(args) {
            Ok(Parsed::Print(text)) => text,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn declaration_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn conf_may_come_before_or_after_the_command() {
        for args in [
            &["--conf", "/c", "status"][..],
            &["status", "--conf", "/c"],
            &["status", "--conf=/c"],
        ] {
            let cli = cli(args);
            assert_eq!(cli.conf, Some(PathBuf::from("/c")), "{args:?}");
            assert_eq!(cli.command, Command::Status { json: false });
        }
    }

    #[test]
    fn each_command_and_its_options() {
        assert_eq!(
            cli(&["status", "--json"]).command,
            Command::Status { json: true }
        );
        assert_eq!(cli(&["enable"]).command, Command::Enable);
        assert_eq!(cli(&["disable"]).command, Command::Disable);
        assert_eq!(cli(&["reset"]).command, Command::Reset);
        assert_eq!(
            cli(&[
                "preview",
                "--spark-version",
                "3.5.1",
                "--tispark-version=3.1.0"
            ])
            .command,
            Command::Preview {
                spark_version: Some("3.5.1".into()),
                tispark_version: Some("3.1.0".into())
            }
        );
        assert_eq!(
            cli(&["completions", "fish"]).command,
            Command::Completions {
                shell: clap_complete::Shell::Fish
            }
        );
    }

    #[test]
    fn help_everywhere() {
        assert!(printed(&["--help"]).contains("Usage: tispark-telemetry [--conf PATH] <COMMAND>"));
        for command in ["status", "enable", "disable", "reset", "preview"] {
            let usage = format!("Usage: tispark-telemetry [--conf PATH] {command}");
            for args in [[command, "--help"], [command, "-h"], ["help", command]] {
                assert!(printed(&args).contains(&usage), "{args:?}");
            }
        }
    }

    #[test]
    fn mistakes_are_one_line_errors() {
        for args in [
            &[][..],
            &["frobnicate"],
            &["status", "--verbose"],
            &["enable", "--json"],
            &["status", "extra"],
            &["status", "--conf"],
            &["status", "--conf", ""],
            &["status", "--conf="],
            &["preview", "--spark-version"],
            &["help", "nothing"],
            &["completions", "tcsh"],
        ] {
            let err = parse_str(args).unwrap_err();
            assert!(!err.is_empty() && !err.contains('\n'), "{args:?}: {err}");
        }
    }

    #[test]
    fn the_page_is_on_loopback_unless_told_otherwise() {
        let ui = |args: &[&str]| match cli(args).command {
            Command::Collect { ui, .. } => ui,
            other => panic!("{other:?}"),
        };
        let base = ["collect", "--listen", "0.0.0.0:8080", "--db", "r.db"];
        assert_eq!(ui(&base), "127.0.0.1:0");
        let args = [&base[..], &["--ui", "10.0.0.1:8081"]].concat();
        assert_eq!(ui(&args), "10.0.0.1:8081");
    }

    #[test]
    fn the_collectors_bounds_and_their_defaults() {
        let collect = |args: &[&str]| match cli(args).command {
            Command::Collect {
                max_db_size,
                retain,
                ..
            } => (max_db_size, retain),
            other => panic!("{other:?}"),
        };
        let base = ["collect", "--listen", "127.0.0.1:0", "--db", "r.db"];
        assert_eq!(collect(&base), (1 << 30, None));
        for (size, bytes) in [
            ("1048576", 1 << 20),
            ("1MiB", 1 << 20),
            ("1 mib", 1 << 20),
            ("2048KiB", 2 << 20),
            ("3GiB", 3 << 30),
            ("2TiB", 2 << 40),
            ("5000000B", 5_000_000),
        ] {
            let args = [&base[..], &["--max-db-size", size]].concat();
            assert_eq!(collect(&args).0, bytes, "{size}");
        }
        let args = [&base[..], &["--retain", "30d"]].concat();
        assert_eq!(
            collect(&args).1,
            Some(std::time::Duration::from_secs(30 * 86400))
        );
        for (option, value, why) in [
            (
                "--max-db-size",
                "1MB",
                "a size is a number of bytes, or with KiB, MiB, GiB or TiB",
            ),
            (
                "--max-db-size",
                "MiB",
                "a size is a number of bytes, or with KiB, MiB, GiB or TiB",
            ),
            (
                "--max-db-size",
                "1.5GiB",
                "a size is a number of bytes, or with KiB, MiB, GiB or TiB",
            ),
            (
                "--max-db-size",
                "20000000TiB",
                "a size is a number of bytes, or with KiB, MiB, GiB or TiB",
            ),
            (
                "--max-db-size",
                "1048575",
                "the database's size must be at least 1MiB (1048576 bytes)",
            ),
            ("--retain", "0s", "reports are kept at least one second"),
        ] {
            let args = [&base[..], &[option, value]].concat();
            assert_eq!(
                parse_str(&args).unwrap_err(),
                format!(
                    "invalid value '{value}' for '{option} <{}>': {why}",
                    if option == "--retain" {
                        "DURATION"
                    } else {
                        "SIZE"
                    }
                ),
            );
        }
    }

    #[test]
    fn a_typo_gets_a_suggestion() {
        assert_eq!(
            parse_str(&["stauts"]).unwrap_err(),
            "unrecognized subcommand 'stauts'; did you mean 'status'?"
        );
        // Two candidates (fleet, collect): the likelier one.
        assert_eq!(
            parse_str(&["colect"]).unwrap_err(),
            "unrecognized subcommand 'colect'; did you mean 'collect'?"
        );
        assert_eq!(
            parse_str(&["status", "--jsno"]).unwrap_err(),
            "unexpected argument '--jsno' found; did you mean '--json'?"
        );
    }
}
