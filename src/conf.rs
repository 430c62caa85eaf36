//! The Spark configuration as this library sees it: which keys it reads, how
//! the on/off switch is decided, and how the reported TiSpark keys are typed.
//!
//! Only the keys named here are ever read from the Spark conf, and of those
//! only [`REPORTED_KEYS`] can leave the machine.

use std::collections::{BTreeMap, HashMap};

/// The switch. Absent means off.
pub use crate::names::ENABLE_KEY;
/// Where the report goes: `http(s)://…` or a local-only `file://…` sink.
pub const URL_KEY: &str = "spark.tispark.telemetry.url";
/// Where the track id and the audit trail are kept (not reported).
pub const STATE_DIR_KEY: &str = "spark.tispark.telemetry.state_dir";
/// TiSpark's PD endpoints, used only to ask PD for the TiDB version (not reported).
pub const PD_ADDRESSES_KEY: &str = "spark.tispark.pd.addresses";
/// A PEM bundle of extra CA certificates trusted for the endpoint (not reported).
pub const CA_FILE_KEY: &str = "spark.tispark.telemetry.ca_file";
/// Spark's application id, used only for the `appid_` fallback track id.
pub use crate::names::APP_ID_KEY;

/// TiSpark's own endpoint, the default of [`URL_KEY`].
pub const DEFAULT_URL: &str = "https://telemetry.pingcap.com/api/v1/tispark/report";

/// Environment variables that turn telemetry off whatever the Spark conf says
/// (two constants in Names.java, so that the Java side checks them without
/// loading a class).
pub const DISABLE_ENV_VARS: [&str; 2] = [
    crate::names::DISABLE_ENV_VAR,
    crate::names::DO_NOT_TRACK_ENV_VAR,
];

/// The type and telemetry default of a reported key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReportedType {
    Bool(bool),
    Int(i32),
    Str(&'static str),
}

/// The configuration block of the report: exactly these keys, in this order.
pub const REPORTED_KEYS: [(&str, ReportedType); 14] = [
    (
        "spark.tispark.plan.allow_agg_pushdown",
        ReportedType::Bool(false),
    ),
    (
        "spark.tispark.plan.allow_index_read",
        ReportedType::Bool(true),
    ),
    (
        "spark.tispark.index.scan_batch_size",
        ReportedType::Int(20000),
    ),
    ("spark.tispark.index.scan_concurrency", ReportedType::Int(5)),
    (
        "spark.tispark.request.command.priority",
        ReportedType::Str("LOW"),
    ),
    (
        "spark.tispark.request.isolation.level",
        ReportedType::Str("SI"),
    ),
    (
        "spark.tispark.plan.use_index_scan_first",
        ReportedType::Bool(false),
    ),
    (
        "spark.tispark.coprocess.streaming",
        ReportedType::Bool(false),
    ),
    (
        "spark.tispark.coprocess.codec_format",
        ReportedType::Str("chblock"),
    ),
    (
        "spark.tispark.type.unsupported_mysql_types",
        ReportedType::Str(""),
    ),
    (
        "spark.tispark.coprocessor.chunk_batch_size",
        ReportedType::Int(1024),
    ),
    ("spark.tispark.show_rowid", ReportedType::Bool(false)),
    (
        "spark.tispark.isolation_read_engines",
        ReportedType::Str("tikv"),
    ),
    ("spark.sql.auth.enable", ReportedType::Bool(false)),
];

/// Longest string value reported for a key; longer values are cut (with a WARN).
pub const MAX_STRING_VALUE_CHARS: usize = 256;

/// Anything that can answer "what is the value of this Spark conf key".
///
/// Implemented over plain maps: the JNI side hands the values over as an array
/// of strings (`Snapshot::from_values`, read by the Java side from a
/// `SparkConf` or a `java.util.Map`); the command-line tool and the tests read
/// through this trait.
pub trait ConfSource {
    /// `Ok(None)` when the key is unset; `Err` when the source itself failed.
    fn get(&mut self, key: &str) -> Result<Option<String>, String>;
}

impl ConfSource for HashMap<String, String> {
    fn get(&mut self, key: &str) -> Result<Option<String>, String> {
        Ok(HashMap::get(self, key).cloned())
    }
}

impl ConfSource for BTreeMap<String, String> {
    fn get(&mut self, key: &str) -> Result<Option<String>, String> {
        Ok(BTreeMap::get(self, key).cloned())
    }
}

/// Trims as Java's `String.trim()` does: every character up to U+0020 (space
/// and the ASCII control characters) at both ends, nothing else (not U+00A0).
/// The Java side trims with `trim()` itself, so both sides agree.
pub fn trim_like_java(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Parses a boolean the way we promise: `true`/`false`, any ASCII case,
/// trimmed as [`trim_like_java`]. Anything else is `None`.
pub fn parse_bool(raw: &str) -> Option<bool> {
    let v = trim_like_java(raw);
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Whether telemetry is on, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    On,
    /// Off because the key is absent or `false`.
    OffByConf,
    /// Off because the key holds something that is not a boolean (WARN-worthy).
    OffInvalid(String),
    /// Off because an administrator's environment variable says so.
    OffByEnv(&'static str),
}

impl Decision {
    pub fn is_on(&self) -> bool {
        matches!(self, Decision::On)
    }

    /// One line for an operator: why telemetry is on or off.
    pub fn explain(&self) -> String {
        match self {
            Decision::On => format!("on ({ENABLE_KEY}=true)"),
            Decision::OffByConf => format!("off ({ENABLE_KEY} is unset or false)"),
            Decision::OffInvalid(v) => format!(
                "off ({ENABLE_KEY}={} is not true or false; set it to true to enable telemetry)",
                crate::log_line::quoted(v)
            ),
            Decision::OffByEnv(var) => format!("off (the environment variable {var} is set)"),
        }
    }
}

/// The environment variable that disables telemetry, if any is set to a
/// non-empty value other than `0`/`false`. `NativeTelemetry.disabledByEnvironment`
/// applies the same rule on the Java side, so that not even a thread starts.
pub fn disabled_by_env(lookup: impl Fn(&str) -> Option<String>) -> Option<&'static str> {
    DISABLE_ENV_VARS.into_iter().find(|var| {
        lookup(var).is_some_and(|v| {
            let v = trim_like_java(&v);
            !crate::names::DISABLE_ENV_NO_VALUES
                .iter()
                .any(|no| v.eq_ignore_ascii_case(no))
        })
    })
}

/// Decides on/off from the value of [`ENABLE_KEY`] and the environment.
pub fn decide(enable_value: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Decision {
    if let Some(var) = disabled_by_env(env) {
        return Decision::OffByEnv(var);
    }
    match enable_value.map(|v| (v, parse_bool(v))) {
        None | Some((_, Some(false))) => Decision::OffByConf,
        Some((_, Some(true))) => Decision::On,
        Some((raw, None)) => Decision::OffInvalid(raw.to_string()),
    }
}

/// The process environment, for [`decide`].
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// The keys this library reads from the Spark conf once telemetry is on:
/// the control keys, the keys that say how to reach PD (`tidb::PD_CONNECTION_KEYS`)
/// and the reported keys. Nothing else is ever asked for.
pub fn keys_read() -> impl Iterator<Item = &'static str> {
    [
        ENABLE_KEY,
        URL_KEY,
        STATE_DIR_KEY,
        CA_FILE_KEY,
        PD_ADDRESSES_KEY,
        APP_ID_KEY,
    ]
    .into_iter()
    .chain(crate::tidb::PD_CONNECTION_KEYS)
    .chain(REPORTED_KEYS.iter().map(|(k, _)| *k))
}

/// The values of [`keys_read`], read once from a [`ConfSource`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    values: BTreeMap<&'static str, String>,
}

impl Snapshot {
    /// The snapshot of `values`, given in the order of [`keys_read`] (`None`: unset).
    pub fn from_values(values: impl IntoIterator<Item = Option<String>>) -> Snapshot {
        Snapshot {
            values: keys_read()
                .zip(values)
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
        }
    }

    pub fn read(source: &mut dyn ConfSource) -> Result<Snapshot, String> {
        let mut values = BTreeMap::new();
        for key in keys_read() {
            if let Some(v) = source.get(key)? {
                values.insert(key, v);
            }
        }
        Ok(Snapshot { values })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The endpoint: [`URL_KEY`] trimmed, or TiSpark's default.
    pub fn url(&self) -> String {
        match self.get(URL_KEY).map(str::trim) {
            Some(u) if !u.is_empty() => u.to_string(),
            _ => DEFAULT_URL.to_string(),
        }
    }

    pub fn app_id(&self) -> Option<&str> {
        self.get(APP_ID_KEY)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The first PD address, if any is configured.
    pub fn first_pd_address(&self) -> Option<&str> {
        self.get(PD_ADDRESSES_KEY)?
            .split(',')
            .map(str::trim)
            .find(|a| !a.is_empty())
    }

    /// The configuration block: every reported key with its typed value, or its
    /// default when unset or unparsable. Each value that had to be replaced or
    /// cut comes back as a warning naming the key.
    pub fn configuration(&self) -> (serde_json::Map<String, serde_json::Value>, Vec<String>) {
        use serde_json::Value;
        let mut out = serde_json::Map::new();
        let mut warnings = Vec::new();
        for (key, default) in REPORTED_KEYS {
            let raw = self.get(key);
            let value = match (default, raw) {
                (ReportedType::Bool(d), None) => Value::from(d),
                (ReportedType::Int(d), None) => Value::from(d),
                (ReportedType::Str(d), None) => Value::from(d),
                (ReportedType::Bool(d), Some(raw)) => {
                    Value::from(parse_bool(raw).unwrap_or_else(|| {
                        warnings.push(unparsable(key, raw, "a boolean", &d.to_string()));
                        d
                    }))
                }
                (ReportedType::Int(d), Some(raw)) => {
                    Value::from(raw.trim().parse::<i32>().unwrap_or_else(|_| {
                        warnings.push(unparsable(key, raw, "an integer", &d.to_string()));
                        d
                    }))
                }
                (ReportedType::Str(_), Some(raw)) => {
                    if raw.chars().count() > MAX_STRING_VALUE_CHARS {
                        warnings.push(format!(
                            "The value of {key} is longer than {MAX_STRING_VALUE_CHARS} characters; \
                             telemetry reports its first {MAX_STRING_VALUE_CHARS}."
                        ));
                        Value::from(raw.chars().take(MAX_STRING_VALUE_CHARS).collect::<String>())
                    } else {
                        Value::from(raw)
                    }
                }
            };
            out.insert(key.to_string(), value);
        }
        (out, warnings)
    }
}

fn unparsable(key: &str, raw: &str, kind: &str, default: &str) -> String {
    let shown = crate::log_line::quoted(raw);
    format!("{key}={shown} is not {kind}; telemetry reports the default {default} for it.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn switch_is_off_when_absent_or_false() {
        assert_eq!(decide(None, no_env), Decision::OffByConf);
        assert_eq!(decide(Some("false"), no_env), Decision::OffByConf);
        assert_eq!(decide(Some(" FALSE "), no_env), Decision::OffByConf);
    }

    #[test]
    fn switch_accepts_true_in_any_case_with_spaces() {
        assert_eq!(decide(Some("true"), no_env), Decision::On);
        assert_eq!(decide(Some(" TRUE "), no_env), Decision::On);
        assert_eq!(decide(Some("True\n"), no_env), Decision::On);
    }

    #[test]
    fn switch_with_anything_else_is_off_and_says_why() {
        for v in ["yes", "1", "", "on", "tru", "garbage"] {
            let d = decide(Some(v), no_env);
            assert_eq!(d, Decision::OffInvalid(v.to_string()), "value {v:?}");
            assert!(d.explain().contains(ENABLE_KEY));
        }
    }

    #[test]
    fn environment_off_switch_beats_the_conf() {
        let env = |var: &str| (var == "DO_NOT_TRACK").then(|| "1".to_string());
        assert_eq!(
            decide(Some("true"), env),
            Decision::OffByEnv("DO_NOT_TRACK")
        );
        let env = |var: &str| (var == "TISPARK_TELEMETRY_DISABLED").then(|| "yes".to_string());
        assert_eq!(
            decide(Some("true"), env),
            Decision::OffByEnv("TISPARK_TELEMETRY_DISABLED")
        );
    }

    #[test]
    fn environment_off_switch_set_to_zero_does_not_disable() {
        let env = |_: &str| Some("0".to_string());
        assert_eq!(decide(Some("true"), env), Decision::On);
    }

    fn snapshot(pairs: &[(&str, &str)]) -> Snapshot {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Snapshot::read(&mut map).unwrap()
    }

    #[test]
    fn configuration_has_exactly_the_reported_keys_with_defaults() {
        let (conf, warnings) = snapshot(&[]).configuration();
        assert!(warnings.is_empty());
        let keys: Vec<&str> = conf.keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = REPORTED_KEYS.iter().map(|(k, _)| *k).collect();
        expected.sort();
        assert_eq!(keys, expected);
        assert_eq!(
            conf["spark.tispark.plan.allow_index_read"],
            serde_json::json!(true)
        );
        assert_eq!(
            conf["spark.tispark.index.scan_batch_size"],
            serde_json::json!(20000)
        );
        assert_eq!(
            conf["spark.tispark.isolation_read_engines"],
            serde_json::json!("tikv")
        );
        assert_eq!(
            conf["spark.tispark.type.unsupported_mysql_types"],
            serde_json::json!("")
        );
    }

    #[test]
    fn configuration_types_the_values_it_is_given() {
        let (conf, warnings) = snapshot(&[
            ("spark.tispark.coprocess.streaming", " TRUE "),
            ("spark.tispark.index.scan_concurrency", "12"),
            ("spark.tispark.isolation_read_engines", "tiflash,tikv"),
        ])
        .configuration();
        assert!(warnings.is_empty());
        assert_eq!(
            conf["spark.tispark.coprocess.streaming"],
            serde_json::json!(true)
        );
        assert_eq!(
            conf["spark.tispark.index.scan_concurrency"],
            serde_json::json!(12)
        );
        assert_eq!(
            conf["spark.tispark.isolation_read_engines"],
            serde_json::json!("tiflash,tikv")
        );
    }

    #[test]
    fn unparsable_values_fall_back_to_default_with_a_warning_naming_the_key() {
        let (conf, warnings) = snapshot(&[
            ("spark.tispark.index.scan_batch_size", "lots"),
            ("spark.tispark.show_rowid", "yes"),
            ("spark.tispark.coprocessor.chunk_batch_size", "99999999999"),
        ])
        .configuration();
        assert_eq!(
            conf["spark.tispark.index.scan_batch_size"],
            serde_json::json!(20000)
        );
        assert_eq!(conf["spark.tispark.show_rowid"], serde_json::json!(false));
        assert_eq!(
            conf["spark.tispark.coprocessor.chunk_batch_size"],
            serde_json::json!(1024)
        );
        assert_eq!(warnings.len(), 3);
        assert!(
            warnings[0].contains("spark.tispark.index.scan_batch_size"),
            "{warnings:?}"
        );
    }

    #[test]
    fn huge_string_values_are_cut_at_a_character_boundary() {
        let huge = "é".repeat(10_000);
        let (conf, warnings) =
            snapshot(&[("spark.tispark.type.unsupported_mysql_types", &huge)]).configuration();
        let v = conf["spark.tispark.type.unsupported_mysql_types"]
            .as_str()
            .unwrap();
        assert_eq!(v.chars().count(), MAX_STRING_VALUE_CHARS);
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn snapshot_reads_no_key_outside_the_list() {
        let snap = snapshot(&[
            ("spark.tispark.tikv.jks_key_password", "secret"),
            ("spark.tispark.pd.addresses", "10.0.0.1:2379, 10.0.0.2:2379"),
        ]);
        assert_eq!(snap.get("spark.tispark.tikv.jks_key_password"), None);
        assert_eq!(snap.first_pd_address(), Some("10.0.0.1:2379"));
    }

    #[test]
    fn url_defaults_to_tisparks_endpoint() {
        assert_eq!(snapshot(&[]).url(), DEFAULT_URL);
        assert_eq!(snapshot(&[(URL_KEY, "  ")]).url(), DEFAULT_URL);
        assert_eq!(
            snapshot(&[(URL_KEY, " file:///tmp/x ")]).url(),
            "file:///tmp/x"
        );
    }
}
