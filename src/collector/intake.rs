//! What the collector accepts: one report of exactly the schema the library
//! sends, checked against the library's own definitions: the [`Report`]
//! types (with `deny_unknown_fields`, so a field too many, too few, or of
//! another type is refused) and [`REPORTED_KEYS`] for the configuration block
//! (exactly those 14 keys, each of its type).

use crate::conf::{ReportedType, MAX_STRING_VALUE_CHARS, REPORTED_KEYS};
use crate::log_line;
use crate::report::Report;

/// Largest body accepted; a report is about 1 KiB, and the largest the
/// library can build is below this (`report::MAX_BODY_BYTES`, tested there).
pub const MAX_BODY: usize = crate::report::MAX_BODY_BYTES;

/// The report in `body`, or why it is refused (one line).
pub fn validate(body: &[u8]) -> Result<Report, String> {
    if body.contains(&b'\n') || body.contains(&b'\r') {
        // The library sends one line; stored bodies are exported as JSON lines.
        return Err("the report must be one line of JSON, as the library sends it".into());
    }
    // The library writes every character a terminal must not get raw as a
    // JSON escape (`log_line::json`): a stored body is safe to show as it is.
    if let Some(c) = std::str::from_utf8(body)
        .ok()
        .and_then(|text| text.chars().find(|&c| log_line::needs_escape(c)))
    {
        return Err(format!(
            "the report holds U+{:04X} unescaped; the library writes it as \\u{:04x}",
            c as u32, c as u32
        ));
    }
    let report: Report = serde_json::from_slice(body).map_err(|e| one_line(&e.to_string()))?;
    // serde_json keeps the last of two equal keys in a map; the report's
    // structs refuse a repeated field themselves, the configuration map here.
    let outer: Outer = serde_json::from_slice(body).map_err(|e| one_line(&e.to_string()))?;
    if let Some(key) = repeated_key(outer.configuration.get())? {
        return Err(format!("configuration: duplicate field {key:?}"));
    }
    for (key, kind) in REPORTED_KEYS {
        let Some(value) = report.configuration.get(key) else {
            return Err(format!("configuration: missing field `{key}`"));
        };
        let fits = match kind {
            ReportedType::Bool(_) => value.is_boolean(),
            ReportedType::Int(_) => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            ReportedType::Str(_) => value
                .as_str()
                .is_some_and(|s| s.chars().count() <= MAX_STRING_VALUE_CHARS),
        };
        if !fits {
            let expected = match kind {
                ReportedType::Bool(_) => "a boolean".to_string(),
                ReportedType::Int(_) => "a 32-bit integer".to_string(),
                ReportedType::Str(_) => {
                    format!("a string of at most {MAX_STRING_VALUE_CHARS} characters")
                }
            };
            return Err(format!("configuration: `{key}` must be {expected}"));
        }
    }
    if let Some(extra) = report
        .configuration
        .keys()
        .find(|k| !REPORTED_KEYS.iter().any(|(known, _)| known == k))
    {
        return Err(format!("configuration: unknown field {extra:?}"));
    }
    Ok(report)
}

/// The configuration block, as it came.
#[derive(serde::Deserialize)]
struct Outer<'a> {
    #[serde(borrow)]
    configuration: &'a serde_json::value::RawValue,
}

/// A key that the JSON object `raw` holds twice.
fn repeated_key(raw: &str) -> Result<Option<String>, String> {
    struct Keys(Option<String>);
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut seen = std::collections::BTreeSet::new();
            let mut repeated = self.0;
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                if !seen.insert(key.clone()) && repeated.is_none() {
                    repeated = Some(key);
                }
            }
            Ok(repeated)
        }
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    serde::Deserializer::deserialize_map(&mut de, Keys(None)).map_err(|e| one_line(&e.to_string()))
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::Snapshot;
    use crate::report::{Cpu, Facts, Hardware};
    use std::collections::HashMap;

    fn report() -> serde_json::Value {
        let mut conf: HashMap<String, String> = HashMap::new();
        let facts = Facts {
            track_id: "trkid_1b4e28ba-2fa1-41d2-883f-0016d3cca427".into(),
            time: 1_764_000_000,
            hardware: Hardware {
                os: "Debian GNU/Linux".into(),
                version: "12".into(),
                cpu: Cpu {
                    model: "Some CPU".into(),
                    logical_cores: 2,
                    physical_cores: 1,
                },
                memory: "Available: 1.0 GiB/2.0 GiB".into(),
                disks: vec![],
            },
            tispark_version: None,
            tidb_version: None,
            spark_version: Some("3.5.7".into()),
        };
        let (report, _) = Report::assemble(&Snapshot::read(&mut conf).unwrap(), facts);
        serde_json::from_str(&report.to_json()).unwrap()
    }

    fn check(v: &serde_json::Value) -> Result<Report, String> {
        validate(serde_json::to_string(v).unwrap().as_bytes())
    }

    #[test]
    fn the_librarys_own_report_is_accepted() {
        let report = check(&report()).unwrap();
        assert_eq!(report.instance.spark_version, "3.5.7");
    }

    #[test]
    fn a_control_character_is_accepted_escaped_and_refused_raw() {
        let mut v = report();
        v["hardware"]["os"] = "Linux\u{9b}2J\u{202e}".into();
        let escaped = crate::log_line::json(&v).unwrap();
        assert!(escaped.contains(r"Linux\u009b2J\u202e"), "{escaped}");
        assert_eq!(
            validate(escaped.as_bytes()).unwrap().hardware.os,
            "Linux\u{9b}2J\u{202e}"
        );
        let raw = serde_json::to_string(&v).unwrap();
        assert_eq!(
            validate(raw.as_bytes()).unwrap_err(),
            r"the report holds U+009B unescaped; the library writes it as \u009b"
        );
    }

    #[test]
    fn anything_else_is_refused_with_one_line() {
        let mut cases: Vec<(serde_json::Value, &str)> = Vec::new();
        let mut v = report();
        v["extra"] = 1.into();
        cases.push((v, "unknown field `extra`"));
        let mut v = report();
        v.as_object_mut().unwrap().remove("instance");
        cases.push((v, "missing field `instance`"));
        let mut v = report();
        v["time"] = "now".into();
        cases.push((v, "invalid type: string \"now\", expected u64"));
        let mut v = report();
        v["hardware"]["cpu"]["logicalCores"] = (-1).into();
        cases.push((v, "invalid value: integer `-1`"));
        let mut v = report();
        v["configuration"]["spark.tispark.coprocess.streaming"] = "true".into();
        cases.push((
            v,
            "configuration: `spark.tispark.coprocess.streaming` must be a boolean",
        ));
        let mut v = report();
        v["configuration"]["spark.tispark.index.scan_batch_size"] = 3_000_000_000u64.into();
        cases.push((
            v,
            "configuration: `spark.tispark.index.scan_batch_size` must be a 32-bit integer",
        ));
        let mut v = report();
        v["configuration"]["spark.tispark.pd.addresses"] = "pd:2379".into();
        cases.push((
            v,
            "configuration: unknown field \"spark.tispark.pd.addresses\"",
        ));
        let mut v = report();
        v["configuration"]
            .as_object_mut()
            .unwrap()
            .remove("spark.sql.auth.enable");
        cases.push((v, "configuration: missing field `spark.sql.auth.enable`"));
        for (v, why) in cases {
            let err = check(&v).unwrap_err();
            assert!(err.contains(why) && !err.contains('\n'), "{why}: {err}");
        }
        for body in [
            &b"{"[..],
            b"",
            b"[]",
            b"null",
            b"{} {}",
            b"{\"track_id\":\n\"x\"}",
        ] {
            assert!(
                validate(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let once = serde_json::to_string(&report()).unwrap();
        let twice = once.replace(
            "\"spark.sql.auth.enable\":false",
            "\"spark.sql.auth.enable\":false,\"spark.sql.auth.enable\":true",
        );
        assert_ne!(once, twice);
        assert_eq!(
            validate(twice.as_bytes()).unwrap_err(),
            "configuration: duplicate field \"spark.sql.auth.enable\""
        );
        let two = format!("{} {}", report(), report());
        assert!(validate(two.as_bytes()).unwrap_err().contains("trailing"));
    }
}
