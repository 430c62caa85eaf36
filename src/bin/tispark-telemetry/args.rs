//! The command line: `tispark-telemetry [--conf PATH] <command> [options]`,
//! with `--help` on every command. `--conf` may stand before or after the
//! command.

use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// `--conf PATH`; `None`: the default spark-defaults.conf.
    pub conf: Option<PathBuf>,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Status {
        json: bool,
    },
    Enable,
    Disable,
    Reset,
    Preview {
        spark_version: Option<String>,
        tispark_version: Option<String>,
    },
    /// Print this help text and succeed.
    Help(&'static str),
    Version,
}

pub const MAIN_HELP: &str = "\
tispark-telemetry: see and control TiSpark's telemetry on this host.

Usage: tispark-telemetry [--conf PATH] <COMMAND> [OPTIONS]

Commands:
  status    Whether telemetry is on for the configuration and why, the track id,
            the endpoint, and the last report this host sent
  enable    Set spark.tispark.telemetry.enable to true in the configuration file
  disable   Set spark.tispark.telemetry.enable to false in the configuration file
  reset     Give this host a new random track id
  preview   Print the exact JSON this host would send, sending nothing
  help      Print this help, or a command's (`help status`)

Options:
  --conf PATH    The Spark configuration file. Default: $SPARK_CONF_DIR/spark-defaults.conf,
                 else $SPARK_HOME/conf/spark-defaults.conf
  -h, --help     Print help (also after a command: `status --help`)
  -V, --version  Print the version

Exit codes: 0 done; 1 failed (the error is on stderr); 2 wrong usage, or no
configuration file named; 3 the configuration file cannot be parsed safely
(it is left as it is).
";

pub const STATUS_HELP: &str = "\
Whether telemetry is on for the configuration and why (the key
spark.tispark.telemetry.enable, or an environment variable
TISPARK_TELEMETRY_DISABLED / DO_NOT_TRACK that overrides it), the track id this
host would use (none is created), the endpoint, the state directory, and the
last report this host sent, from the audit trail: when, where, and the outcome.
Changes nothing.

Usage: tispark-telemetry [--conf PATH] status [--json]

Options:
  --json       The same, as one JSON object (see the README for its fields)
  --conf PATH  The Spark configuration file (see `tispark-telemetry --help`)
  -h, --help   Print help
";

pub const ENABLE_HELP: &str = "\
Set spark.tispark.telemetry.enable to true in the configuration file: its line
is rewritten in place, or added at the end; every other line is kept byte for
byte. The file (and its directory) is created when missing, and written
atomically, with its owner, group and mode from the first byte (a new file:
0600). A file that cannot be parsed safely (not UTF-8, a malformed \\u escape
or one that is half a surrogate pair, a `\\` next to a comment that Java 8
reads otherwise than later Java, the key defined more than once, a dangling
`\\` continuation where the key would be added) is left as it is, with exit
code 3. A symbolic link to no file, a file this user may not write,
anything but a regular file, or a file over 1 MiB: exit code 1.
Environment variables TISPARK_TELEMETRY_DISABLED=1 or DO_NOT_TRACK=1 still
win over the file where they are set.

Usage: tispark-telemetry [--conf PATH] enable

Options:
  --conf PATH  The Spark configuration file (see `tispark-telemetry --help`)
  -h, --help   Print help
";

pub const DISABLE_HELP: &str = "\
Set spark.tispark.telemetry.enable to false in the configuration file, with
the same rules as `enable`: in place or added at the end, every other line
kept, created when missing, written atomically, an unparsable file refused
(exit code 3).

Usage: tispark-telemetry [--conf PATH] disable

Options:
  --conf PATH  The Spark configuration file (see `tispark-telemetry --help`)
  -h, --help   Print help
";

pub const RESET_HELP: &str = "\
Replace this host's track id (in the state directory named by the
configuration file, TISPARK_TELEMETRY_STATE_DIR, XDG_STATE_HOME or HOME) with a
new random one, and print it. Later reports carry the new id.

Usage: tispark-telemetry [--conf PATH] reset

Options:
  --conf PATH  The Spark configuration file (see `tispark-telemetry --help`)
  -h, --help   Print help
";

pub const PREVIEW_HELP: &str = "\
Print the exact JSON this host would send for the configuration file, built by
the same code as the driver's report. Nothing is sent and nothing is added to
the audit trail. Like the driver, it uses this host's track id (storing one if
there is none yet, so that the id shown is the one that will be sent) and, when
spark.tispark.pd.addresses is set, asks PD for the TiDB version. The Spark and
TiSpark versions come from the running application; here they are given by the
options, the Spark version otherwise read from $SPARK_HOME/jars.

Usage: tispark-telemetry [--conf PATH] preview [OPTIONS]

Options:
  --spark-version V    The Spark version to show (default: from $SPARK_HOME/jars, else UNKNOWN)
  --tispark-version V  The TiSpark version to show (default: UNKNOWN, as with the Spark plugin)
  --conf PATH          The Spark configuration file (see `tispark-telemetry --help`)
  -h, --help           Print help
";

fn help_of(command: &str) -> Option<&'static str> {
    Some(match command {
        "status" => STATUS_HELP,
        "enable" => ENABLE_HELP,
        "disable" => DISABLE_HELP,
        "reset" => RESET_HELP,
        "preview" => PREVIEW_HELP,
        "help" => MAIN_HELP,
        _ => return None,
    })
}

/// Parses the arguments after the program name. `Err` is one line for stderr.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, String> {
    let mut conf: Option<PathBuf> = None;
    let mut command: Option<String> = None;
    let mut operands: Vec<String> = Vec::new();
    let mut options: Vec<(String, Option<String>)> = Vec::new();
    let mut help = false;
    let mut version = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--conf" {
            let path = args.next().filter(|p| !p.is_empty()).ok_or(NEEDS_PATH)?;
            conf = Some(PathBuf::from(path));
            continue;
        }
        if let Some(path) = arg
            .to_str()
            .and_then(|a| a.strip_prefix("--conf="))
            .map(str::to_string)
        {
            if path.is_empty() {
                return Err(NEEDS_PATH.into());
            }
            conf = Some(PathBuf::from(path));
            continue;
        }
        let arg = arg
            .into_string()
            .map_err(|a| format!("the argument {a:?} is not valid UTF-8"))?;
        match arg.as_str() {
            "-h" | "--help" => help = true,
            "-V" | "--version" => version = true,
            "--json" => options.push((arg, None)),
            "--spark-version" | "--tispark-version" => {
                let value = args
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| format!("{arg} needs a value: {arg} 3.5.1"))?;
                options.push((arg, Some(value)));
            }
            a if a.starts_with("--spark-version=") || a.starts_with("--tispark-version=") => {
                let (name, value) = a.split_once('=').unwrap_or((a, ""));
                options.push((name.to_string(), Some(value.to_string())));
            }
            a if a.starts_with('-') && a != "-" => {
                return Err(format!("unknown option {a}"));
            }
            _ if command.is_none() => command = Some(arg),
            _ => operands.push(arg),
        }
    }
    let command = command.unwrap_or_default();
    if help || command == "help" {
        let topic = if command == "help" {
            operands.first().map(String::as_str).unwrap_or("help")
        } else {
            command.as_str()
        };
        let topic = if topic.is_empty() { "help" } else { topic };
        let text = help_of(topic).ok_or_else(|| unknown_command(topic))?;
        return Ok(Cli {
            conf,
            command: Command::Help(text),
        });
    }
    if version {
        return Ok(Cli {
            conf,
            command: Command::Version,
        });
    }
    if let Some(extra) = operands.first() {
        return Err(format!("unexpected argument {extra:?} after {command}"));
    }
    let allowed: &[&str] = match command.as_str() {
        "status" => &["--json"],
        "preview" => &["--spark-version", "--tispark-version"],
        "enable" | "disable" | "reset" => &[],
        "" => return Err("a command is needed: status, enable, disable, reset or preview".into()),
        other => return Err(unknown_command(other)),
    };
    if let Some((name, _)) = options.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
        return Err(format!("{command} has no option {name}"));
    }
    let value = |name: &str| {
        options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    };
    let command = match command.as_str() {
        "status" => Command::Status {
            json: options.iter().any(|(n, _)| n == "--json"),
        },
        "enable" => Command::Enable,
        "disable" => Command::Disable,
        "reset" => Command::Reset,
        _ => Command::Preview {
            spark_version: value("--spark-version"),
            tispark_version: value("--tispark-version"),
        },
    };
    Ok(Cli { conf, command })
}

const NEEDS_PATH: &str = "--conf needs a path: --conf /path/to/spark-defaults.conf";

fn unknown_command(name: &str) -> String {
    format!("unknown command {name:?}: the commands are status, enable, disable, reset and preview")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Cli, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn conf_may_come_before_or_after_the_command() {
        for args in [
            &["--conf", "/c", "status"][..],
            &["status", "--conf", "/c"],
            &["status", "--conf=/c"],
        ] {
            let cli = parse_str(args).unwrap();
            assert_eq!(cli.conf, Some(PathBuf::from("/c")), "{args:?}");
            assert_eq!(cli.command, Command::Status { json: false });
        }
    }

    #[test]
    fn each_command_and_its_options() {
        assert_eq!(
            parse_str(&["status", "--json"]).unwrap().command,
            Command::Status { json: true }
        );
        assert_eq!(parse_str(&["enable"]).unwrap().command, Command::Enable);
        assert_eq!(parse_str(&["disable"]).unwrap().command, Command::Disable);
        assert_eq!(parse_str(&["reset"]).unwrap().command, Command::Reset);
        assert_eq!(
            parse_str(&[
                "preview",
                "--spark-version",
                "3.5.1",
                "--tispark-version=3.1.0"
            ])
            .unwrap()
            .command,
            Command::Preview {
                spark_version: Some("3.5.1".into()),
                tispark_version: Some("3.1.0".into())
            }
        );
    }

    #[test]
    fn help_everywhere() {
        assert_eq!(
            parse_str(&["--help"]).unwrap().command,
            Command::Help(MAIN_HELP)
        );
        assert!(parse_str(&[]).unwrap_err().contains("command"));
        for (command, text) in [
            ("status", STATUS_HELP),
            ("enable", ENABLE_HELP),
            ("disable", DISABLE_HELP),
            ("reset", RESET_HELP),
            ("preview", PREVIEW_HELP),
        ] {
            assert_eq!(
                parse_str(&[command, "--help"]).unwrap().command,
                Command::Help(text)
            );
            assert_eq!(
                parse_str(&[command, "-h"]).unwrap().command,
                Command::Help(text)
            );
            assert_eq!(
                parse_str(&["help", command]).unwrap().command,
                Command::Help(text)
            );
        }
    }

    #[test]
    fn mistakes_are_one_line_errors() {
        for args in [
            &["frobnicate"][..],
            &["status", "--verbose"],
            &["enable", "--json"],
            &["status", "extra"],
            &["status", "--conf"],
            &["status", "--conf", ""],
            &["status", "--conf="],
            &["preview", "--spark-version"],
            &["help", "nothing"],
        ] {
            let err = parse_str(args).unwrap_err();
            assert!(!err.is_empty() && !err.contains('\n'), "{args:?}: {err}");
        }
    }
}
