//! The file reader against the real thing: thousands of generated
//! `spark-defaults.conf` files, read by `java.util.Properties` in one JVM
//! exactly as Spark loads the file (`Utils.getPropertiesFromFile`: UTF-8,
//! `Properties.load`, each value through `Utils.trimExceptCRLF`) and by
//! [`ConfFile`]; any difference fails the test. Every rewrite `set` makes of
//! those files is read back by the JVM too: the switch has the new value and
//! every other key is as it was.
//!
//! Java 8 reads two rare shapes otherwise (see `logical_lines`); the tool
//! refuses those files, so here they are compared as Java 9 and later read
//! them, the only Java at hand.
//!
//! A fixed seed, so a failure is the same on every run. Needs `javac` and
//! `java` (`JAVA_HOME/bin`, else `PATH`); without them the test fails.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use tispark_telemetry::spark_defaults::{ConfFile, Refusal};

const FILES: usize = 4000;
const SEED: u64 = 0x5eed_2026_7e1e_0008;
const KEY: &str = "spark.tispark.telemetry.enable";

/// Reads every file in a bundle as Spark reads a file, one line per file:
/// `NAME OK LONE KEY=VALUE…` (UTF-16 code units in hex; LONE is 1 when some
/// key or value put while loading held an unpaired surrogate) or
/// `NAME ERR EXCEPTION-CLASS`. The bundle is `NAME LENGTH\n` then LENGTH bytes,
/// for each file: one file to write instead of thousands (creating files is
/// what costs here), and the same bytes through the same UTF-8
/// `InputStreamReader` Spark puts over its `FileInputStream`.
const JAVA: &str = include_str!("java/LoadAll.java");

/// What a reader made of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The key/value pairs, as UTF-16 code units.
    Values(BTreeMap<Vec<u16>, Vec<u16>>),
    /// A malformed `\uXXXX` escape: `IllegalArgumentException`; the tool refuses the file.
    Malformed,
    /// A key or value with an unpaired surrogate (`\uD800` alone): Java loads it; the
    /// tool, whose strings cannot hold one, refuses the file.
    Unpaired,
    /// Anything else (another exception, another refusal): always a difference.
    Other(String),
}

/// The tool's reading, as Java 9 and later read (the JVM here is one of
/// those; what Java 8 reads otherwise the tool refuses, counted below).
fn rust_outcome(bytes: &[u8]) -> Outcome {
    match ConfFile::parse_for(bytes, false) {
        Ok(file) => Outcome::Values(
            file.values()
                .into_iter()
                .map(|(k, v)| (k.encode_utf16().collect(), v.encode_utf16().collect()))
                .collect(),
        ),
        Err(Refusal::MalformedEscape { .. }) => Outcome::Malformed,
        Err(Refusal::UnpairedSurrogate { .. }) => Outcome::Unpaired,
        Err(other) => Outcome::Other(format!("refused: {other}")),
    }
}

fn java_outcome(line: &str) -> (String, Outcome) {
    let mut words = line.split(' ');
    let name = words.next().unwrap().to_string();
    let outcome = match words.next() {
        Some("ERR") => match words.next() {
            Some("java.lang.IllegalArgumentException") => Outcome::Malformed,
            other => Outcome::Other(format!("exception {other:?}")),
        },
        Some("OK") if words.next() == Some("1") => Outcome::Unpaired,
        Some("OK") => Outcome::Values(
            words
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (units(k), units(v))
                })
                .collect(),
        ),
        other => panic!("unexpected output from the JVM: {other:?} in {line:?}"),
    };
    (name, outcome)
}

fn units(hex: &str) -> Vec<u16> {
    (0..hex.len())
        .step_by(4)
        .map(|i| u16::from_str_radix(&hex[i..i + 4], 16).unwrap())
        .collect()
}

fn show(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Values(map) => {
            let pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{:?}={:?}",
                        String::from_utf16_lossy(k),
                        String::from_utf16_lossy(v)
                    )
                })
                .collect();
            format!("{{{}}}", pairs.join(", "))
        }
        other => format!("{other:?}"),
    }
}

/// xorshift64*: small, deterministic, good enough to pick fragments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
}

const BLANKS: &[&str] = &[" ", "\t", "\u{c}"];
const ENDINGS: &[&str] = &["\n", "\r\n", "\r"];

/// Anything at all, from the characters that matter to the format.
const SOUP: &[&str] = &[
    " ", "\t", "\u{c}", "=", ":", "\\", "\\", "\\", "#", "!", "a", "k", "u", "0", "D", "8", "F",
    "t", "n", "é", "😀", "\u{feff}", "\\u", "\\u00", "\\uD83D", "\\uDE00", "\\u0041", "\r", "\n",
    "\r\n", "true", "false", KEY, "\\\n", "\\\r\n", "\\\r",
];

const KEYS: &[&str] = &[
    KEY,
    KEY,
    KEY,
    "spark.tispark.telemetry.ena\\ble",
    "spark.tispark.telemetry.\\u0065nable",
    "spark.tispark.\\\n   telemetry.enable",
    "spark.master",
    "spark.app.name",
    "a\\=b",
    "a\\:b",
    "a\\ b",
    "a\\\tb",
    "\\#not-a-comment",
    "\\!not-a-comment",
    "k\\\\",
    "k\\\\\\=v",
    "k\\u00e9",
    "é",
    "😀key",
    "k\\t",
    "\\uD83D\\uDE00k",
    "\u{feff}k",
    "#",
    "k#",
    "k!",
];

const SEPARATORS: &[&str] = &[
    "=", ":", " ", "\t", "\u{c}", " = ", "\t:\t", "  ", "=:", ": =", "==", " \u{c}= ", "", "=\\\n",
];

const VALUES: &[&str] = &[
    "true",
    "false",
    "TRUE",
    " true ",
    "v",
    "a b",
    "x=y",
    "a:b",
    "#c",
    "!c",
    "\\t",
    "\\n",
    "\\r",
    "\\f",
    "\\\\",
    "\\u0041",
    "\\u00e9",
    "\\uD83D\\uDE00",
    "\\q",
    "é",
    "😀",
    "\u{feff}",
    " ",
    "\t",
    "\u{c}",
    "\\ ",
    "\\\\\\\\",
    "\\\n",
    "\\\r\n",
    "\\\n  ",
    "\\\n#c",
    "\\\r!c",
    "\\\n\\\n",
];

/// Rare: what makes Java throw, or hold a string Rust cannot.
const ODD_VALUES: &[&str] = &[
    "\\uD800", "\\uDC00x", "\\u12", "\\u12G4", "\\uZZZZ", "\\u", "\\u+123", "\\u-123", "\\u 123",
];

fn line(rng: &mut Rng) -> String {
    let mut s = String::new();
    let indent = rng.below(3);
    for _ in 0..indent {
        s.push_str(rng.pick(BLANKS));
    }
    match rng.below(20) {
        0 | 1 => {}                                             // blank
        2 => (0..3).for_each(|_| s.push_str(rng.pick(BLANKS))), // white space only
        3..=5 => {
            s.push_str(rng.pick(&["#", "!"]));
            s.push_str(rng.pick(&[
                " comment",
                "",
                " a=b",
                " spark.tispark.telemetry.enable true",
            ]));
            if rng.percent(40) {
                s.push('\\');
            }
        }
        6 | 7 => s.push_str(rng.pick(&["\\", "\\\\\\", "\\\\"])), // continuation (or not)
        8..=10 => (0..rng.below(12)).for_each(|_| s.push_str(rng.pick(SOUP))),
        _ => {
            s.push_str(rng.pick(KEYS));
            s.push_str(rng.pick(SEPARATORS));
            for _ in 0..rng.below(4) {
                let value = if rng.percent(4) { ODD_VALUES } else { VALUES };
                s.push_str(rng.pick(value));
            }
            if rng.percent(15) {
                s.push_str(rng.pick(BLANKS));
            }
            if rng.percent(20) {
                s.push_str(rng.pick(&["\\", "\\\\"]));
            }
        }
    }
    s
}

fn file(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.percent(10) {
        s.push('\u{feff}');
    }
    let ending = rng.pick(ENDINGS);
    let lines = 1 + rng.below(7);
    for i in 0..lines {
        s.push_str(&line(rng));
        let last = i + 1 == lines;
        if !last || rng.percent(70) {
            s.push_str(if rng.percent(15) {
                rng.pick(ENDINGS)
            } else {
                ending
            });
        }
    }
    s
}

/// `name` from `JAVA_HOME/bin`, else from `PATH`; a missing one fails the test.
fn java_tool(name: &str) -> PathBuf {
    let from_home = std::env::var_os("JAVA_HOME")
        .map(|home| Path::new(&home).join("bin").join(name))
        .filter(|p| p.is_file());
    let from_path = || {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    };
    from_home.or_else(from_path).unwrap_or_else(|| {
        panic!("{name} is needed to compare the reader with java.util.Properties: set JAVA_HOME or put a JDK on PATH")
    })
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} cannot run: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the JVM prints UTF-8")
}

#[test]
fn the_reader_and_its_rewrites_agree_with_java_util_properties_on_generated_files() {
    let tmp = tempfile::Builder::new()
        .prefix("tt-properties-differential-")
        .tempdir()
        .unwrap();
    let root = tmp.path().to_path_buf();

    let mut rng = Rng(SEED);
    let mut texts: HashMap<String, String> = HashMap::new();
    // For each rewrite: the original's name and the value set.
    let mut rewrites: Vec<(String, String, &str)> = Vec::new();
    for i in 0..FILES {
        let text = file(&mut rng);
        let name = format!("{i:05}.conf");
        if let Ok(parsed) = ConfFile::parse(text.as_bytes()) {
            let value = if i % 2 == 0 { "true" } else { "false" };
            if let Ok((rewritten, _)) = parsed.set(KEY, value) {
                let set_name = format!("{i:05}.set.conf");
                texts.insert(set_name.clone(), rewritten);
                rewrites.push((set_name, name.clone(), value));
            }
        }
        texts.insert(name, text);
    }

    let mut names: Vec<&String> = texts.keys().collect();
    names.sort();
    let mut bundle = Vec::new();
    for name in names {
        let text = &texts[name];
        bundle.extend_from_slice(format!("{name} {}\n", text.len()).as_bytes());
        bundle.extend_from_slice(text.as_bytes());
    }
    std::fs::write(root.join("bundle"), bundle).unwrap();
    std::fs::write(root.join("LoadAll.java"), JAVA).unwrap();
    run(Command::new(java_tool("javac"))
        .arg("-J-XX:TieredStopAtLevel=1")
        .arg("-J-Xshare:auto")
        .arg("-d")
        .arg(&root)
        .arg(root.join("LoadAll.java")));
    let output = run(Command::new(java_tool("java"))
        .arg("-XX:TieredStopAtLevel=1")
        .arg("-XX:+UseSerialGC")
        .arg("-cp")
        .arg(&root)
        .arg("LoadAll")
        .arg(root.join("bundle")));
    let java: HashMap<String, Outcome> = output.lines().map(java_outcome).collect();
    assert_eq!(java.len(), texts.len(), "the JVM read every file");

    let mut differences = Vec::new();
    for (name, text) in &texts {
        let theirs = &java[name];
        let ours = rust_outcome(text.as_bytes());
        if &ours != theirs {
            differences.push(format!(
                "{name} {text:?}\n  java.util.Properties: {}\n  spark_defaults:       {}",
                show(theirs),
                show(&ours)
            ));
        }
    }
    for (set_name, name, value) in &rewrites {
        let expected = match &java[name] {
            Outcome::Values(map) => {
                let mut map = map.clone();
                map.insert(KEY.encode_utf16().collect(), value.encode_utf16().collect());
                Outcome::Values(map)
            }
            // A file Java does not load should never have been rewritten: already a difference.
            _ => continue,
        };
        if java[set_name] != expected {
            differences.push(format!(
                "{set_name}: setting {KEY} to {value} in {:?} gave {:?}\n  java.util.Properties reads: {}\n  expected:                   {}",
                texts[name],
                texts[set_name],
                show(&java[set_name]),
                show(&expected)
            ));
        }
    }
    differences.sort();
    assert!(
        differences.is_empty(),
        "{} of {} files ({} rewrites) read differently; the first ones:\n{}",
        differences.len(),
        texts.len(),
        rewrites.len(),
        differences
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Enough of each kind to mean something.
    let java8_refused = texts
        .values()
        .filter(|t| {
            matches!(
                ConfFile::parse(t.as_bytes()),
                Err(Refusal::JavaVersionsDiffer { .. })
            )
        })
        .count();
    assert!(
        java8_refused > 20,
        "{java8_refused} files refused for Java 8"
    );
    let count = |f: fn(&Outcome) -> bool| java.values().filter(|o| f(o)).count();
    let with_switch = texts
        .keys()
        .filter(|n| !n.contains(".set."))
        .filter(|n| matches!(&java[*n], Outcome::Values(m) if m.contains_key(&KEY.encode_utf16().collect::<Vec<u16>>())))
        .count();
    assert!(count(|o| matches!(o, Outcome::Malformed)) > 100);
    assert!(count(|o| matches!(o, Outcome::Unpaired)) > 50);
    assert!(with_switch > 600, "{with_switch} files define the switch");
    assert!(rewrites.len() > 2000, "{} rewrites", rewrites.len());
}
