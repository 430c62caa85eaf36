//! What telemetry costs a Spark user, measured: every figure of the README's
//! "Performance" section, printed as a median with its spread, from one run.
//! Not a test: nothing here asserts a timing (the machine is shared and
//! noisy); it measures and prints.
//!
//! Run it with `bash scripts/bench.sh`, which provisions Spark, builds the jar
//! and the Java harness (`benches/jvm/ReportCost.java`) and then runs this
//! with `cargo bench --bench overhead`. Sizes of the run, from the environment:
//! `TT_BENCH_JVMS` (driver JVMs per mode, default 5), `TT_BENCH_CALLS` (calls
//! timed after the first in each, 2000), `TT_BENCH_SPARK_ROUNDS` (rounds of
//! the four Spark applications, 5), `TT_BENCH_BUILDS` (report builds in one
//! process, 200; in fresh processes, a tenth of that).

#[path = "../tests/support/collector.rs"]
mod collector;

use collector::{Behaviour, Collector};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tispark_telemetry::conf::Snapshot;
use tispark_telemetry::pipeline::{self, Destination, ReportInput};
use tispark_telemetry::{host_facts, report::Report};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args.first().map(String::as_str) {
        Some("cold-build") => return cold_build_child(Path::new(&args[1])),
        Some("cold-gather") => return cold_gather_child(),
        _ => {}
    }
    let bench = Bench::from_env();
    let mut table = Table::default();
    let load_before = load_average();

    println!("tispark-telemetry overhead benchmark");
    bench.print_machine();

    eprintln!("[1/4] the driver thread's report() call, in real driver JVMs");
    bench.report_call(&mut table);
    eprintln!("[2/4] building the report off the driver thread");
    bench.build_report(&mut table);
    eprintln!("[3/4] a small real Spark application, with and without telemetry");
    bench.spark_application(&mut table);
    eprintln!("[4/4] footprint of the library");
    bench.library_footprint(&mut table);

    println!(
        "load average (1 min) before: {load_before}, after: {}",
        load_average()
    );
    println!();
    table.print();
}

/// Median and spread of a set of samples.
#[derive(Clone, Copy)]
struct Stats {
    median: f64,
    p10: f64,
    p90: f64,
    min: f64,
    max: f64,
    n: usize,
}

impl Stats {
    fn of(samples: &[f64]) -> Stats {
        assert!(!samples.is_empty(), "no samples");
        let mut s = samples.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| {
            let pos = q * (s.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
        };
        Stats {
            median: at(0.5),
            p10: at(0.1),
            p90: at(0.9),
            min: s[0],
            max: s[s.len() - 1],
            n: s.len(),
        }
    }
}

/// One line of the results: a figure, its median, its spread and its target.
struct Line {
    figure: String,
    median: String,
    spread: String,
    n: usize,
    target: String,
}

#[derive(Default)]
struct Table {
    lines: Vec<Line>,
}

impl Table {
    /// A figure of many samples: spread as p10 .. p90.
    fn percentiles(&mut self, figure: &str, s: Stats, unit: fn(f64) -> String, target: &str) {
        self.push(
            figure,
            unit(s.median),
            format!("p10 {} .. p90 {}", unit(s.p10), unit(s.p90)),
            s.n,
            target,
        );
    }

    /// A figure of a few samples: spread as min .. max.
    fn range(&mut self, figure: &str, s: Stats, unit: fn(f64) -> String, target: &str) {
        self.push(
            figure,
            unit(s.median),
            format!("min {} .. max {}", unit(s.min), unit(s.max)),
            s.n,
            target,
        );
    }

    fn push(&mut self, figure: &str, median: String, spread: String, n: usize, target: &str) {
        self.lines.push(Line {
            figure: figure.to_string(),
            median,
            spread,
            n,
            target: target.to_string(),
        });
    }

    fn print(&self) {
        let w0 = self
            .lines
            .iter()
            .map(|l| l.figure.chars().count())
            .max()
            .unwrap_or(6);
        let w1 = self
            .lines
            .iter()
            .map(|l| l.median.chars().count())
            .max()
            .unwrap_or(6);
        let w2 = self
            .lines
            .iter()
            .map(|l| l.spread.chars().count())
            .max()
            .unwrap_or(6);
        let pad =
            |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
        println!(
            "{} | {} | {} | {:>4} | target",
            pad("figure", w0),
            pad("median", w1),
            pad("spread", w2),
            "n"
        );
        println!("{}", "-".repeat(w0 + w1 + w2 + 24));
        for l in &self.lines {
            println!(
                "{} | {} | {} | {:>4} | {}",
                pad(&l.figure, w0),
                pad(&l.median, w1),
                pad(&l.spread, w2),
                l.n,
                l.target
            );
        }
    }
}

fn duration_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn kib(v: f64) -> String {
    if v.abs() >= 1024.0 {
        format!("{:.1} MiB", v / 1024.0)
    } else {
        format!("{v:.0} KiB")
    }
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

fn ratio(v: f64) -> String {
    format!("{v:.3}")
}

struct Bench {
    root: PathBuf,
    spark_home: PathBuf,
    python: String,
    jar: PathBuf,
    harness_jar: PathBuf,
    /// An earlier jar and the harness compiled against it (`bash scripts/bench.sh
    /// --baseline REV`): its driver JVMs run between ours, in the same run.
    baseline: Option<(String, PathBuf, PathBuf)>,
    work: PathBuf,
    jvms: usize,
    calls: usize,
    rounds: usize,
    builds: usize,
}

fn env_usize(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
        .max(1)
}

fn required(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{var} is not set: run the benchmark with `bash scripts/bench.sh`"),
    }
}

impl Bench {
    fn from_env() -> Bench {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let work = std::env::temp_dir().join(format!("tt-bench-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        let bench = Bench {
            jar: std::env::var_os("TISPARK_TELEMETRY_JAR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target/tispark-telemetry.jar")),
            harness_jar: root.join("target/report-cost.jar"),
            baseline: std::env::var("TT_BENCH_BASELINE")
                .ok()
                .filter(|v| !v.is_empty())
                .map(|label| {
                    (
                        label,
                        root.join("target/baseline/tispark-telemetry.jar"),
                        root.join("target/baseline/report-cost.jar"),
                    )
                }),
            spark_home: PathBuf::from(required("SPARK_HOME")),
            python: required("PYSPARK_PYTHON"),
            root,
            work,
            jvms: env_usize("TT_BENCH_JVMS", 5),
            calls: env_usize("TT_BENCH_CALLS", 2000),
            rounds: env_usize("TT_BENCH_SPARK_ROUNDS", 5),
            builds: env_usize("TT_BENCH_BUILDS", 200),
        };
        let baseline_jars = bench.baseline.iter().flat_map(|(_, j, h)| [j, h]);
        for f in [&bench.jar, &bench.harness_jar]
            .into_iter()
            .chain(baseline_jars)
        {
            assert!(
                f.is_file(),
                "{} is missing: run `bash scripts/bench.sh`",
                f.display()
            );
        }
        bench
    }

    fn print_machine(&self) {
        let hw = host_facts::gather();
        let java = Command::new("java")
            .arg("-version")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .next()
                    .unwrap_or("?")
                    .to_string()
            })
            .unwrap_or_else(|_| "?".into());
        let spark = Command::new(&self.python)
            .args(["-c", "import pyspark; print(pyspark.__version__)"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|_| "?".into());
        println!(
            "machine: {} ({} logical / {} physical cores), memory {}, {} {}",
            hw.cpu.model, hw.cpu.logical_cores, hw.cpu.physical_cores, hw.memory, hw.os, hw.version
        );
        println!(
            "java: {java}; spark: {spark} (pyspark at {})",
            self.spark_home.display()
        );
        println!(
            "sizes: {} driver JVMs per mode, {} calls after the first in each, {} Spark rounds, {} report builds",
            self.jvms, self.calls, self.rounds, self.builds
        );
    }

    /// `spark-submit` with Spark's log in a file (log4j2, telemetry at INFO, as in the example).
    fn spark_submit(&self, log_name: &str) -> Command {
        let mut cmd = Command::new(self.spark_home.join("bin/spark-submit"));
        cmd.current_dir(&self.root)
            .env("SPARK_HOME", &self.spark_home)
            .env("PYSPARK_PYTHON", &self.python)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .args(["--conf", "spark.ui.enabled=false"])
            .arg("--driver-java-options")
            .arg(format!(
                "-Dlog4j.configurationFile={} -Dtispark.example.log={} \
                 -Dtispark.telemetry.native.tmpdir={}",
                self.root.join("examples/log4j2.properties").display(),
                self.work.join(log_name).display(),
                // This run's own temporary directory (0700): the first driver
                // with telemetry on fills this user's library cache there,
                // the later ones load from it (reported apart).
                self.work.display()
            ));
        cmd
    }

    /// The Java harness in a real driver: spark-submit runs it with a local SparkContext.
    fn report_cost_jvm(&self, mode: &str, url: &str, n: usize) -> HashMap<String, String> {
        let (jar, harness) = match mode.strip_prefix("baseline-") {
            Some(_) => {
                let (_, jar, harness) = self.baseline.as_ref().expect("a baseline jar");
                (jar, harness)
            }
            None => (&self.jar, &self.harness_jar),
        };
        let state = self.work.join(format!("state-{}", jar == &self.jar));
        let out = self
            .spark_submit(&format!("jvm-{mode}-{n}.log"))
            .args(["--master", "local[1]", "--jars"])
            .arg(jar)
            .args(["--class", "ReportCost"])
            .arg(harness)
            .args([
                match mode.trim_start_matches("baseline-") {
                    "off" => "off",
                    "jvm" => "jvm",
                    _ => "on",
                },
                &self.calls.to_string(),
                url,
            ])
            .arg(&state)
            .output()
            .expect("run spark-submit");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let values: HashMap<String, String> = stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(
            out.status.success() && values.contains_key("FIRST_NS"),
            "the report-cost harness failed ({mode}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        values
    }

    fn report_call(&self, table: &mut Table) {
        let accept = Collector::start(Behaviour::Accept);
        let silent = Collector::start(Behaviour::Silent);
        // A host name, as the default endpoint is: the look-up is part of what is measured.
        let url =
            |c: &Collector| format!("http://localhost:{}/api/v1/tispark/report", c.addr.port());
        let mut runs: HashMap<&str, Vec<HashMap<String, String>>> = HashMap::new();
        let silent_jvms = self.jvms.div_ceil(2);
        for i in 0..self.jvms {
            // "jvm": the JVM-only sender, side by side with ours, in the same run;
            // "baseline-…": the earlier jar, between ours.
            let mut modes = vec!["off", "on", "jvm"];
            if self.baseline.is_some() {
                modes.extend(["baseline-off", "baseline-on"]);
            }
            for mode in modes {
                eprintln!("  driver JVM {}/{} telemetry {mode}", i + 1, self.jvms);
                let before = accept.received().len();
                let mut run = self.report_cost_jvm(mode, &url(&accept), i);
                // The time to the wire: from the call until the collector had the
                // body, both on this machine's wall clock.
                let arrived = accept.wait_for(before + 1, Duration::from_secs(10));
                if !mode.ends_with("off") && arrived.len() > before {
                    let at = arrived[before]
                        .at
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_nanos() as f64;
                    let t0: f64 = run["T0_EPOCH_NS"].parse().unwrap();
                    run.insert("WIRE_NS".into(), (at - t0).to_string());
                }
                runs.entry(mode).or_default().push(run);
            }
            if i < silent_jvms {
                eprintln!(
                    "  driver JVM {}/{silent_jvms} telemetry on, silent endpoint",
                    i + 1
                );
                let run = self.report_cost_jvm("silent", &url(&silent), i);
                runs.entry("silent").or_default().push(run);
            }
        }
        let num = |r: &HashMap<String, String>, k: &str| -> f64 {
            r.get(k).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
        };
        let firsts = |mode: &str| {
            Stats::of(
                &runs[mode]
                    .iter()
                    .map(|r| num(r, "FIRST_NS"))
                    .collect::<Vec<_>>(),
            )
        };
        let steady = |mode: &str| {
            let all: Vec<f64> = runs[mode]
                .iter()
                .flat_map(|r| {
                    r["STEADY_NS"]
                        .split(',')
                        .filter_map(|v| v.parse::<f64>().ok())
                })
                .collect();
            Stats::of(&all)
        };
        let per_run = |mode: &str, f: &dyn Fn(&HashMap<String, String>) -> f64| {
            Stats::of(&runs[mode].iter().map(f).collect::<Vec<_>>())
        };
        // The first driver with telemetry on filled the library cache (this
        // run's own temporary directory); the others loaded from it.
        let cached_wire = || {
            Stats::of(
                &runs["on"][1.min(runs["on"].len() - 1)..]
                    .iter()
                    .map(|r| num(r, "WIRE_NS"))
                    .collect::<Vec<_>>(),
            )
        };
        table.range(
            "report(), telemetry off: first call in the driver",
            firsts("off"),
            duration_ns,
            "well under 100 µs",
        );
        table.percentiles(
            "report(), telemetry off: later calls",
            steady("off"),
            duration_ns,
            "well under 100 µs",
        );
        table.range(
            "report(), telemetry on: first call (starts the sender thread)",
            firsts("on"),
            duration_ns,
            "under 1 ms (once per JVM)",
        );
        table.range(
            "time to the wire, telemetry on: from the call until the collector has the body \
             (library in this user's cache, every driver but the first)",
            cached_wire(),
            duration_ns,
            "under 10 ms",
        );
        table.range(
            "time to the wire, the first driver on the host (copies the library into the cache)",
            Stats::of(&[num(&runs["on"][0], "WIRE_NS")]),
            duration_ns,
            "(once per host, user and build)",
        );
        table.range(
            "JVM-only sender (Jackson + java.net.http on a new thread): first call",
            firsts("jvm"),
            duration_ns,
            "(comparison)",
        );
        table.range(
            "JVM-only sender: time to the wire",
            per_run("jvm", &|r| num(r, "WIRE_NS")),
            duration_ns,
            "(comparison)",
        );
        table.percentiles(
            "report(), telemetry on: later calls",
            steady("on"),
            duration_ns,
            "well under 100 µs",
        );
        if let Some((label, ..)) = &self.baseline {
            // The same figures for the earlier jar, its JVMs run between ours;
            // the ratio is ours / the baseline's, of the medians.
            let rows: [(&str, Stats, Stats); 5] = [
                (
                    "first call, telemetry off",
                    firsts("off"),
                    firsts("baseline-off"),
                ),
                (
                    "later calls, telemetry off",
                    steady("off"),
                    steady("baseline-off"),
                ),
                (
                    "first call, telemetry on",
                    firsts("on"),
                    firsts("baseline-on"),
                ),
                (
                    "later calls, telemetry on",
                    steady("on"),
                    steady("baseline-on"),
                ),
                (
                    "time to the wire (ours: library cached)",
                    cached_wire(),
                    per_run("baseline-on", &|r| num(r, "WIRE_NS")),
                ),
            ];
            for (figure, ours, theirs) in rows {
                table.range(
                    &format!("baseline {label}: {figure}"),
                    theirs,
                    duration_ns,
                    "(comparison)",
                );
                table.push(
                    &format!("ratio this jar / baseline {label}: {figure}"),
                    ratio(ours.median / theirs.median),
                    String::new(),
                    ours.n.min(theirs.n),
                    "at most 1 (no worse)",
                );
            }
        }
        let rss_delta =
            |r: &HashMap<String, String>| num(r, "RSS_AFTER_KIB") - num(r, "RSS_BEFORE_KIB");
        table.range(
            "driver RSS after - before the report, telemetry on",
            per_run("on", &rss_delta),
            kib,
            "(small)",
        );
        table.range(
            "driver RSS after - before, telemetry off (the noise)",
            per_run("off", &rss_delta),
            kib,
            "",
        );
        table.range(
            "resident pages of the library's own mappings",
            per_run("on", &|r| num(r, "LIB_RSS_KIB")),
            kib,
            "",
        );
        for (mode, what) in [
            ("on", "collector answers"),
            ("silent", "endpoint never answers"),
        ] {
            let seen: Vec<String> = runs[mode]
                .iter()
                .map(|r| r.get("NEW_THREADS_SEEN").cloned().unwrap_or_default())
                .filter(|s| !s.is_empty())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            table.range(
                &format!("new threads while sending ({what}) [{}]", seen.join("; ")),
                per_run(mode, &|r| num(r, "NEW_THREADS_PEAK")),
                count,
                "at most 1",
            );
            table.range(
                &format!("new threads left after sending ({what})"),
                per_run(mode, &|r| num(r, "NEW_THREADS_AFTER")),
                count,
                "0",
            );
        }
        let all_flushed = runs
            .values()
            .flatten()
            .all(|r| r.get("FLUSHED").map(String::as_str) == Some("true"));
        if !all_flushed {
            println!("note: a report was still in flight after the harness's 10 s flush");
        }
        println!(
            "report-cost harness: the collector received {} report(s) from {} JVMs with telemetry on \
             and {} with the JVM-only sender",
            accept.received().len(),
            self.jvms,
            self.jvms
        );
    }

    fn build_report(&self, table: &mut Table) {
        let state = self.work.join("state-build");
        // Fresh processes: what the sender thread pays, once per driver.
        let mut cold: HashMap<String, Vec<f64>> = HashMap::new();
        let cold_runs = (self.builds / 10).max(3);
        for _ in 0..cold_runs {
            for child in ["cold-build", "cold-gather"] {
                let out = Command::new(std::env::current_exe().unwrap())
                    .arg(child)
                    .arg(&state)
                    .output()
                    .expect("run a child of the benchmark");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                for line in String::from_utf8_lossy(&out.stdout).lines() {
                    if let Some((k, v)) = line.split_once('=') {
                        cold.entry(k.to_string())
                            .or_default()
                            .push(v.parse().unwrap());
                    }
                }
            }
        }
        table.percentiles(
            "build the report, first in a fresh process (conf, host facts, id, JSON)",
            Stats::of(&cold["BUILD_NS"]),
            duration_ns,
            "under 5 ms",
        );
        table.percentiles(
            "host facts alone (sysinfo), first in a fresh process",
            Stats::of(&cold["GATHER_NS"]),
            duration_ns,
            "",
        );
        table.percentiles(
            "HTTP client set-up, first in a fresh process",
            Stats::of(&cold["SETUP_NS"]),
            duration_ns,
            "(sender thread, once)",
        );

        // One process, repeatedly: the steady cost without first-use effects.
        let request = request(&state);
        let mut builds = Vec::with_capacity(self.builds);
        let mut gathers = Vec::with_capacity(self.builds);
        let mut size = 0;
        for _ in 0..self.builds {
            let t = Instant::now();
            let report: Report = pipeline::build_report(&request);
            size = report.to_json().len();
            builds.push(t.elapsed().as_nanos() as f64);
            let t = Instant::now();
            std::hint::black_box(host_facts::gather());
            gathers.push(t.elapsed().as_nanos() as f64);
        }
        table.percentiles(
            "build the report, repeated in one process",
            Stats::of(&builds),
            duration_ns,
            "under 5 ms",
        );
        table.percentiles(
            "host facts alone (sysinfo), repeated",
            Stats::of(&gathers),
            duration_ns,
            "",
        );
        println!("report size: {size} bytes of JSON");
    }

    fn spark_application(&self, table: &mut Table) {
        let accept = Collector::start(Behaviour::Accept);
        let silent = Collector::start(Behaviour::Silent);
        let state = self.work.join("state-spark");
        let url =
            |c: &Collector| format!("http://localhost:{}/api/v1/tispark/report", c.addr.port());
        // "jar": our jar and plugin, telemetry off: what Spark's own handling of
        // one more jar and plugin costs, apart from telemetry.
        let kinds = ["without", "jar", "on", "silent"];
        let with_jar = [
            ("jar", "our jar and plugin, telemetry off"),
            ("on", "telemetry on"),
            ("silent", "telemetry on, endpoint never answers"),
        ];
        let mut times: HashMap<&str, Vec<f64>> = HashMap::new();
        let mut round_ratios: HashMap<&str, Vec<f64>> = HashMap::new();
        let mut cpu: HashMap<&str, Vec<f64>> = HashMap::new();
        for round in 0..self.rounds {
            let mut this_round = HashMap::new();
            // Alternate: each kind runs first, second, third and fourth in turn.
            for k in 0..kinds.len() {
                let kind = kinds[(round + k) % kinds.len()];
                let mut cmd = self.spark_submit(&format!("app-{kind}-{round}.log"));
                cmd.args(["--master", "local[2]"]);
                if kind != "without" {
                    cmd.arg("--jars").arg(&self.jar).args([
                        "--conf",
                        "spark.plugins=com.pingcap.tispark.telemetry.TelemetryPlugin",
                    ]);
                }
                if kind == "on" || kind == "silent" {
                    let endpoint = if kind == "on" {
                        url(&accept)
                    } else {
                        url(&silent)
                    };
                    cmd.args(["--conf", "spark.tispark.telemetry.enable=true"])
                        .arg("--conf")
                        .arg(format!("spark.tispark.telemetry.url={endpoint}"))
                        .arg("--conf")
                        .arg(format!(
                            "spark.tispark.telemetry.state_dir={}",
                            state.display()
                        ));
                }
                cmd.arg("examples/spark_job.py");
                let cpu_before = children_cpu_seconds();
                let t = Instant::now();
                let out = cmd.output().expect("run spark-submit");
                let secs = t.elapsed().as_secs_f64();
                cpu.entry(kind)
                    .or_default()
                    .push((children_cpu_seconds() - cpu_before) * 1e9);
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success()
                        && stdout.contains("job result: sum(0..100000) = 4999950000"),
                    "the Spark application failed ({kind}):\n{stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                eprintln!(
                    "  round {}/{} {kind:>7}: {secs:.2} s",
                    round + 1,
                    self.rounds
                );
                times.entry(kind).or_default().push(secs * 1e9);
                this_round.insert(kind, secs);
            }
            for (kind, _) in with_jar {
                round_ratios
                    .entry(kind)
                    .or_default()
                    .push(this_round[kind] / this_round["without"]);
            }
        }
        let without = Stats::of(&times["without"]);
        table.range(
            "Spark application wall time, without our jar",
            without,
            duration_ns,
            "",
        );
        for (kind, what) in with_jar {
            let s = Stats::of(&times[kind]);
            table.range(
                &format!("Spark application wall time, {what}"),
                s,
                duration_ns,
                "",
            );
            let r = Stats::of(&round_ratios[kind]);
            table.push(
                &format!("  ratio to without ({what})"),
                ratio(s.median / without.median),
                format!(
                    "per round: median {}, min {} .. max {}",
                    ratio(r.median),
                    ratio(r.min),
                    ratio(r.max)
                ),
                r.n,
                "within 1.01",
            );
        }
        // CPU time is less disturbed than wall time by other work on a shared machine.
        let cpu_without = Stats::of(&cpu["without"]);
        table.range(
            "Spark application CPU time (user+sys), without our jar",
            cpu_without,
            duration_ns,
            "",
        );
        for (kind, what) in with_jar {
            let s = Stats::of(&cpu[kind]);
            table.range(
                &format!("Spark application CPU time, {what}"),
                s,
                duration_ns,
                "",
            );
            table.push(
                &format!("  CPU ratio to without ({what})"),
                ratio(s.median / cpu_without.median),
                String::new(),
                s.n,
                "",
            );
        }
        println!(
            "Spark applications: the collector received {} report(s) from {} runs with telemetry on; \
             the silent endpoint was sent {} report(s) from {} runs",
            accept.received().len(),
            self.rounds,
            silent.received().len(),
            self.rounds
        );
    }

    fn library_footprint(&self, table: &mut Table) {
        // Every library the jar carries, as it is stored there (`unzip -Z -l`:
        // name, size, stored size).
        let listing = Command::new("unzip")
            .args(["-Z", "-l"])
            .arg(&self.jar)
            .output()
            .expect("run unzip");
        for line in String::from_utf8_lossy(&listing.stdout).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(name) = fields.last().filter(|n| n.starts_with("native/")) else {
                continue;
            };
            // Directories.
            if name.ends_with('/') || fields.len() < 10 {
                continue;
            }
            let size: f64 = fields[3].parse().unwrap_or(f64::NAN);
            let stored: f64 = fields[5].parse().unwrap_or(f64::NAN);
            table.push(
                &format!(
                    "library {name} (stripped; stored in the jar: {})",
                    kib(stored / 1024.0)
                ),
                kib(size / 1024.0),
                "(one build)".into(),
                1,
                "as small as the card's crates allow (the jar's bound below)",
            );
        }
        let jar = std::fs::metadata(&self.jar).map(|m| m.len()).unwrap_or(0);
        table.push(
            "jar size (classes + every Linux library)",
            format!("{:.2} MB", jar as f64 / 1e6),
            "(one build)".into(),
            1,
            "at most 6 MB",
        );
    }
}

/// The request the driver hands to the sender thread (the conf of a driver with telemetry on).
fn request(state: &Path) -> ReportInput {
    let mut conf: HashMap<String, String> = [
        ("spark.tispark.telemetry.enable", "true"),
        ("spark.tispark.telemetry.url", "file:///dev/null"),
        ("spark.app.id", "local-1764000000000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    conf.insert(
        "spark.tispark.telemetry.state_dir".into(),
        state.display().to_string(),
    );
    ReportInput {
        snapshot: Snapshot::read(&mut conf).unwrap(),
        spark_version: Some("3.5.7".into()),
        tispark_version: Some("3.1.0".into()),
    }
}

/// In a fresh process: what the sender thread does before sending, timed.
fn cold_build_child(state: &Path) {
    let t = Instant::now();
    let request = request(state);
    std::hint::black_box(Destination::new(&request.snapshot).unwrap());
    let setup = t.elapsed();
    let t = Instant::now();
    let report = pipeline::build_report(&request);
    std::hint::black_box(report.to_json());
    let build = t.elapsed();
    println!("SETUP_NS={}", setup.as_nanos());
    println!("BUILD_NS={}", build.as_nanos());
}

/// In a fresh process: the host facts alone, with sysinfo's first-use costs.
fn cold_gather_child() {
    let t = Instant::now();
    std::hint::black_box(host_facts::gather());
    println!("GATHER_NS={}", t.elapsed().as_nanos());
}

/// User + system CPU seconds of this process's children that have been waited for
/// (`cutime` + `cstime` of /proc/self/stat, in ticks of 1/100 s, Linux's USER_HZ).
fn children_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses: state is field 3.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // cutime and cstime are fields 16 and 17; `fields[0]` is field 3.
    (tick(16 - 3) + tick(17 - 3)) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
