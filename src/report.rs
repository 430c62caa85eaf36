//! The report's wire schema, field for field the one TiSpark sends, and its
//! assembly from the conf snapshot and the gathered facts. Nothing else is
//! ever put on the wire.

use crate::conf::Snapshot;
use serde::{Deserialize, Serialize};

/// The value of every fact that could not be found.
pub const UNKNOWN: &str = "UNKNOWN";

/// The longest a collector accepts a body (`tispark-telemetry collect`
/// answers `413` past it). Every report this library builds is below it,
/// whatever the host holds: see the bounds below, and the test
/// `the_largest_report_the_bounds_allow_fits_the_collectors_limit`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A string fact (the track id, OS, version, CPU model, memory, the three versions) is cut
/// after this many characters, as a reported conf string is
/// (`conf::MAX_STRING_VALUE_CHARS`).
pub const MAX_FACT_CHARS: usize = 256;
/// A disk's name (`/dev/` and the kernel's name, at most 31 bytes:
/// `DISK_NAME_LEN`) is cut after this many characters.
pub const MAX_DISK_NAME_CHARS: usize = 40;
/// At most this many disks are reported, the first in `/sys/block`'s order.
pub const MAX_DISKS: usize = 128;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub track_id: String,
    /// Unix seconds.
    pub time: u64,
    pub hardware: Hardware,
    pub instance: Instance,
    pub configuration: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    pub os: String,
    pub version: String,
    pub cpu: Cpu,
    pub memory: String,
    pub disks: Vec<Disk>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cpu {
    pub model: String,
    pub logical_cores: usize,
    pub physical_cores: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub name: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub tispark_version: String,
    pub tidb_version: String,
    pub spark_version: String,
}

/// Everything the report holds that does not come from the Spark conf.
#[derive(Debug, Clone)]
pub struct Facts {
    pub track_id: String,
    pub time: u64,
    pub hardware: Hardware,
    pub tispark_version: Option<String>,
    pub tidb_version: Option<String>,
    pub spark_version: Option<String>,
}

impl Report {
    /// Assembles the report. Returns the warnings about conf values that had to
    /// be replaced by their defaults.
    pub fn assemble(snapshot: &Snapshot, facts: Facts) -> (Report, Vec<String>) {
        let (configuration, warnings) = snapshot.configuration();
        let known = |v: Option<String>| {
            v.map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .map(|s| cut(s, MAX_FACT_CHARS))
                .unwrap_or_else(|| UNKNOWN.to_string())
        };
        let hardware = facts.hardware;
        let hardware = Hardware {
            os: cut(hardware.os, MAX_FACT_CHARS),
            version: cut(hardware.version, MAX_FACT_CHARS),
            cpu: Cpu {
                model: cut(hardware.cpu.model, MAX_FACT_CHARS),
                ..hardware.cpu
            },
            memory: cut(hardware.memory, MAX_FACT_CHARS),
            disks: hardware
                .disks
                .into_iter()
                .take(MAX_DISKS)
                .map(|d| Disk {
                    name: cut(d.name, MAX_DISK_NAME_CHARS),
                    size: d.size,
                })
                .collect(),
        };
        let report = Report {
            // Normally `trkid_` and a UUID; `appid_` and spark.app.id, any length, without a state directory.
            track_id: cut(facts.track_id, MAX_FACT_CHARS),
            time: facts.time,
            hardware,
            instance: Instance {
                tispark_version: known(facts.tispark_version),
                tidb_version: known(facts.tidb_version),
                spark_version: known(facts.spark_version),
            },
            configuration,
        };
        (report, warnings)
    }

    /// The body that is logged and sent: one line of JSON, in which no
    /// character that a log line must not hold appears raw (`log_line::json`).
    pub fn to_json(&self) -> String {
        crate::log_line::json(self).expect("a report always serializes")
    }
}

/// `s` cut after `max` characters.
fn cut(mut s: String, max: usize) -> String {
    if let Some((at, _)) = s.char_indices().nth(max) {
        s.truncate(at);
    }
    s
}

/// Now, in unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn facts() -> Facts {
        Facts {
            track_id: "trkid_1b4e28ba-2fa1-41d2-883f-0016d3cca427".into(),
            time: 1_764_000_000,
            hardware: Hardware {
                os: "Debian GNU/Linux".into(),
                version: "12 build 6.1.0".into(),
                cpu: Cpu {
                    model: "Some CPU".into(),
                    logical_cores: 2,
                    physical_cores: 1,
                },
                memory: "Available: 1.0 GiB/2.0 GiB".into(),
                disks: vec![Disk {
                    name: "/dev/vda".into(),
                    size: 42,
                }],
            },
            tispark_version: None,
            tidb_version: Some("v6.0.0".into()),
            spark_version: Some(" 3.5.7 ".into()),
        }
    }

    #[test]
    fn json_has_tisparks_field_names_and_types() {
        let mut conf: HashMap<String, String> = HashMap::new();
        let (report, _) = Report::assemble(&Snapshot::read(&mut conf).unwrap(), facts());
        let v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert!(v["time"].is_u64());
        assert_eq!(v["hardware"]["cpu"]["logicalCores"], 2);
        assert_eq!(v["hardware"]["cpu"]["physicalCores"], 1);
        assert_eq!(v["hardware"]["disks"][0]["size"], 42);
        assert_eq!(v["instance"]["tispark_version"], UNKNOWN);
        assert_eq!(v["instance"]["tidb_version"], "v6.0.0");
        assert_eq!(v["instance"]["spark_version"], "3.5.7");
        let top: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            top,
            ["configuration", "hardware", "instance", "time", "track_id"]
        );
    }

    #[test]
    fn json_is_one_line_and_round_trips() {
        let mut conf: HashMap<String, String> = [(
            "spark.tispark.isolation_read_engines".to_string(),
            "a\nb \"q\"".to_string(),
        )]
        .into();
        let (report, _) = Report::assemble(&Snapshot::read(&mut conf).unwrap(), facts());
        let json = report.to_json();
        assert!(!json.contains('\n'));
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
    }

    /// Every string at its bound and made of characters JSON writes as six
    /// bytes (`\u009b`), every integer at its widest, the most disks: the
    /// body is still below what the collector accepts.
    #[test]
    fn the_largest_report_the_bounds_allow_fits_the_collectors_limit() {
        let worst = |n: usize| "\u{9b}".repeat(n + 10);
        let mut conf: HashMap<String, String> = crate::conf::REPORTED_KEYS
            .iter()
            .map(|(k, _)| (k.to_string(), worst(crate::conf::MAX_STRING_VALUE_CHARS)))
            .collect();
        let facts = Facts {
            track_id: worst(MAX_FACT_CHARS),
            time: u64::MAX,
            hardware: Hardware {
                os: worst(MAX_FACT_CHARS),
                version: worst(MAX_FACT_CHARS),
                cpu: Cpu {
                    model: worst(MAX_FACT_CHARS),
                    logical_cores: usize::MAX,
                    physical_cores: usize::MAX,
                },
                memory: worst(MAX_FACT_CHARS),
                disks: (0..MAX_DISKS * 10)
                    .map(|_| Disk {
                        name: worst(MAX_DISK_NAME_CHARS),
                        size: u64::MAX,
                    })
                    .collect(),
            },
            tispark_version: Some(worst(MAX_FACT_CHARS)),
            tidb_version: Some(worst(MAX_FACT_CHARS)),
            spark_version: Some(worst(MAX_FACT_CHARS)),
        };
        let (report, _) = Report::assemble(&Snapshot::read(&mut conf).unwrap(), facts);
        assert_eq!(report.hardware.disks.len(), MAX_DISKS);
        assert_eq!(
            report.hardware.disks[0].name.chars().count(),
            MAX_DISK_NAME_CHARS
        );
        assert_eq!(report.hardware.os.chars().count(), MAX_FACT_CHARS);
        assert_eq!(report.hardware.cpu.model.chars().count(), MAX_FACT_CHARS);
        assert_eq!(report.hardware.memory.chars().count(), MAX_FACT_CHARS);
        assert_eq!(report.hardware.version.chars().count(), MAX_FACT_CHARS);
        for v in [
            &report.instance.tispark_version,
            &report.instance.tidb_version,
            &report.instance.spark_version,
        ] {
            assert_eq!(v.chars().count(), MAX_FACT_CHARS);
        }
        let body = report.to_json();
        assert!(
            body.len() > 48 * 1024,
            "not the worst case: {} bytes",
            body.len()
        );
        assert!(
            body.len() <= MAX_BODY_BYTES,
            "{} bytes over the collector's {MAX_BODY_BYTES}",
            body.len()
        );
    }

    #[test]
    fn facts_within_their_bounds_are_reported_whole() {
        let mut conf: HashMap<String, String> = HashMap::new();
        let mut f = facts();
        f.hardware.os = "é".repeat(MAX_FACT_CHARS);
        f.hardware.disks = (0..MAX_DISKS)
            .map(|i| Disk {
                name: format!(
                    "/dev/{}",
                    "d".repeat(MAX_DISK_NAME_CHARS - 5 - 3) + &format!("{i:03}")
                ),
                size: i as u64,
            })
            .collect();
        let (report, _) = Report::assemble(&Snapshot::read(&mut conf).unwrap(), f.clone());
        assert_eq!(report.hardware.os, f.hardware.os);
        assert_eq!(report.hardware.disks, f.hardware.disks);
    }
}
