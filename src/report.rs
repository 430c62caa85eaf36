//! The report's wire schema, field for field the one TiSpark sends, and its
//! assembly from the conf snapshot and the gathered facts. Nothing else is
//! ever put on the wire.

use crate::conf::Snapshot;
use serde::{Deserialize, Serialize};

/// The value of every fact that could not be found.
pub const UNKNOWN: &str = "UNKNOWN";

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
                .unwrap_or_else(|| UNKNOWN.to_string())
        };
        let report = Report {
            track_id: facts.track_id,
            time: facts.time,
            hardware: facts.hardware,
            instance: Instance {
                tispark_version: known(facts.tispark_version),
                tidb_version: known(facts.tidb_version),
                spark_version: known(facts.spark_version),
            },
            configuration,
        };
        (report, warnings)
    }

    /// The body that is logged and sent: one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }
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
}
