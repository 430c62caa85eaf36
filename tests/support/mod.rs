//! Shared by the integration tests: where the real parts are (Spark, the jar,
//! a JVM), fresh temporary directories, and the loopback collector.
//! A missing part fails the test loudly; nothing is ever skipped.

#![allow(dead_code)]

pub mod collector;
// The `collect` command is the CLI's (and uses its tokio).
#[cfg(feature = "cli")]
pub mod collector_process;
pub mod fake_report;
pub mod jvm;
pub mod logs;
pub mod mariadb;
pub mod spark;
pub mod tls;

use std::path::{Path, PathBuf};

/// The packaged jar; `java/package.sh` writes it (the test command runs it first).
pub fn jar() -> PathBuf {
    let jar = std::env::var_os("TISPARK_TELEMETRY_JAR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tispark-telemetry.jar")
        });
    assert!(
        jar.is_file(),
        "{} is missing: run `bash java/package.sh` (the README's test command does)",
        jar.display()
    );
    let built = std::fs::metadata(&jar).and_then(|m| m.modified()).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(newer) =
        newest_source(&[root.join("src"), root.join("java/src")]).filter(|(t, _)| *t > built)
    {
        panic!(
            "{} is older than {}: run `bash java/package.sh` so the tests load the current code",
            jar.display(),
            newer.1.display()
        );
    }
    jar
}

fn newest_source(dirs: &[PathBuf]) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(t) = entry.metadata().and_then(|m| m.modified()) {
                if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                    newest = Some((t, path));
                }
            }
        }
    }
    newest
}

/// A required environment variable, set by `scripts/test.sh`.
pub fn required_env(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{var} is not set: run the tests with `bash scripts/test.sh`, which provisions Spark and sets it"),
    }
}

/// A new empty directory under the system temp dir.
///
/// Every one of a test process lives in one `tt-test-…` directory (tempfile's,
/// mode 0755 so that a second uid's process can reach what a test shares with
/// it), removed with everything in it when the process exits, passed or
/// failed; set `TT_KEEP_TEST_DIRS=1` to keep it for a look.
pub fn temp_dir(name: &str) -> PathBuf {
    let mut parent = TEST_DIRS.lock().unwrap();
    let parent = parent.get_or_insert_with(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("tt-test-")
            .permissions(std::fs::Permissions::from_mode(0o755))
            .tempdir()
            .unwrap();
        // SAFETY: registers a plain function, run once by exit().
        assert_eq!(unsafe { libc::atexit(remove_test_dirs) }, 0);
        dir
    });
    let dir = parent.path().join(format!("{name}-{}", nanos()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

static TEST_DIRS: std::sync::Mutex<Option<tempfile::TempDir>> = std::sync::Mutex::new(None);

extern "C" fn remove_test_dirs() {
    let dirs = match TEST_DIRS.lock() {
        Ok(mut dirs) => dirs.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    if let Some(dir) = dirs {
        if std::env::var_os("TT_KEEP_TEST_DIRS").is_some() {
            eprintln!("test directories kept in {}", dir.keep().display());
        }
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The names in `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The JSON after `Telemetry report: ` on each matching log line.
pub fn logged_reports(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            l.split_once("Telemetry report: ")
                .map(|(_, json)| json.trim_end().to_string())
        })
        .collect()
}

/// Asserts the JSON has the schema's keys with the schema's types.
pub fn assert_schema(json: &str) {
    let v: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["configuration", "hardware", "instance", "time", "track_id"]
    );
    assert!(
        v["track_id"].as_str().unwrap().starts_with("trkid_")
            || v["track_id"].as_str().unwrap().starts_with("appid_")
    );
    assert!(v["time"].is_u64());
    let hw = &v["hardware"];
    assert!(hw["os"].is_string() && hw["version"].is_string() && hw["memory"].is_string());
    assert!(hw["cpu"]["model"].is_string());
    assert!(hw["cpu"]["logicalCores"].is_u64() && hw["cpu"]["physicalCores"].is_u64());
    for d in hw["disks"].as_array().unwrap() {
        assert!(d["name"].is_string() && d["size"].is_u64());
    }
    for k in ["tispark_version", "tidb_version", "spark_version"] {
        assert!(v["instance"][k].is_string(), "instance.{k}");
    }
    let conf = v["configuration"].as_object().unwrap();
    assert_eq!(conf.len(), 14, "{conf:?}");
    for (key, value) in conf {
        let expected_kind = tispark_telemetry::conf::REPORTED_KEYS
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("unexpected key {key}"))
            .1;
        use tispark_telemetry::conf::ReportedType;
        match expected_kind {
            ReportedType::Bool(_) => assert!(value.is_boolean(), "{key}"),
            ReportedType::Int(_) => assert!(value.is_i64(), "{key}"),
            ReportedType::Str(_) => assert!(value.is_string(), "{key}"),
        }
    }
}

/// Conf values that must never leave the machine, each unique enough to grep for.
pub const SECRETS: [(&str, &str); 6] = [
    ("spark.tispark.tikv.jks_key_password", "JKS-KEY-SECRET-7f3a"),
    (
        "spark.tispark.tikv.jks_trust_password",
        "JKS-TRUST-SECRET-9b2c",
    ),
    (
        "spark.tispark.tikv.key_file",
        "/secret/path/KEYFILE-SECRET-4d1e.pem",
    ),
    ("spark.tispark.tikv.host_mapping", "HOSTMAP-SECRET-10.1.2.3"),
    ("spark.myapp.api_token", "TOKEN-SECRET-c0ffee"),
    (
        "spark.tispark.tikv.cert_chain_file",
        "/secret/CHAIN-SECRET.pem",
    ),
];

/// Environment values (user, host, credentials) that must never leave the machine.
pub const ENV_SECRETS: [(&str, &str); 4] = [
    ("USER", "USER-SECRET-1"),
    ("LOGNAME", "LOGNAME-SECRET-2"),
    ("HOSTNAME", "HOSTNAME-SECRET-3"),
    ("AWS_SECRET_ACCESS_KEY", "ENV-SECRET-4"),
];

/// Fails if `text` holds any planted secret or any of `also`.
pub fn assert_no_secrets(place: &str, text: &str, also: &[&str]) {
    let planted = SECRETS.iter().chain(ENV_SECRETS.iter()).map(|(_, v)| *v);
    for secret in planted.chain(also.iter().copied()) {
        assert!(
            !text.contains(secret),
            "{secret} leaked into {place}: {text}"
        );
    }
}
