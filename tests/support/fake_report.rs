//! A report as the library builds it, for a made-up host: the collector's
//! tests and its benchmark (`benches/collector.rs` includes this file) send it.

use std::collections::HashMap;
use tispark_telemetry::conf::Snapshot;
use tispark_telemetry::report::{Cpu, Facts, Hardware, Report};

/// The JSON body for host `n` (its track id ends in `n`), sent at `time`,
/// with these TiSpark settings.
pub fn fake_report(n: usize, time: u64, settings: &[(&str, &str)]) -> String {
    let mut conf: HashMap<String, String> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let facts = Facts {
        track_id: format!("trkid_00000000-0000-4000-8000-{n:012}"),
        time,
        hardware: Hardware {
            os: "Debian GNU/Linux".into(),
            version: "12 (bookworm)".into(),
            cpu: Cpu {
                model: "Some CPU".into(),
                logical_cores: 8,
                physical_cores: 4,
            },
            memory: "Available: 1.0 GiB/2.0 GiB".into(),
            disks: vec![],
        },
        tispark_version: Some("3.3.0".into()),
        tidb_version: Some("v7.5.0".into()),
        spark_version: Some("3.5.1".into()),
    };
    Report::assemble(&Snapshot::read(&mut conf).unwrap(), facts)
        .0
        .to_json()
}
