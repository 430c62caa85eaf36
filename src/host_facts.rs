//! The host facts of the report (`hardware`): from `sysinfo`, refreshing only
//! what the report needs (CPU list without usage sampling, memory, OS names),
//! and the physical disks from `/sys/block` on Linux. Never the process list,
//! users, networks, mount points or host name.

use crate::report::{Cpu, Disk, Hardware, UNKNOWN};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// Gathers the `hardware` block. Every fact that cannot be read is `UNKNOWN`
/// (or 0 / empty), never an error: telemetry must not fail for a missing fact.
pub fn gather() -> Hardware {
    let refresh = RefreshKind::nothing()
        .with_cpu(CpuRefreshKind::nothing())
        .with_memory(MemoryRefreshKind::nothing().with_ram());
    let sys = System::new_with_specifics(refresh).ok();

    let (model, logical_cores) = match &sys {
        Some(sys) => (
            sys.cpus()
                .first()
                .map(|c| c.brand().trim().to_string())
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| UNKNOWN.to_string()),
            sys.cpus().len(),
        ),
        None => (UNKNOWN.to_string(), 0),
    };
    let memory = match &sys {
        Some(sys) if sys.total_memory() > 0 => format!(
            "Available: {}/{}",
            binary_size(sys.available_memory()),
            binary_size(sys.total_memory())
        ),
        _ => UNKNOWN.to_string(),
    };

    Hardware {
        os: System::name().unwrap_or_else(|_| UNKNOWN.to_string()),
        version: os_version(),
        cpu: Cpu {
            model,
            logical_cores,
            physical_cores: System::physical_core_count().unwrap_or(0),
        },
        memory,
        disks: disks(),
    }
}

/// "<OS version> build <kernel>", as TiSpark shows it: on Linux the
/// os-release VERSION ("20.04.4 LTS (Focal Fossa)"), elsewhere sysinfo's.
fn os_version() -> String {
    let os = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| read_small(std::path::Path::new(p), 64 * 1024))
        .and_then(|text| os_release_version(&text))
        .or_else(|| System::os_version().ok())
        .filter(|s| !s.is_empty());
    let kernel = System::kernel_version().ok().filter(|s| !s.is_empty());
    match (os, kernel) {
        (Some(os), Some(k)) => format!("{os} build {k}"),
        (Some(os), None) => os,
        (None, Some(k)) => format!("build {k}"),
        (None, None) => UNKNOWN.to_string(),
    }
}

/// A small regular text file, bounded: anything else is `None`.
fn read_small(path: &std::path::Path, limit: u64) -> Option<String> {
    crate::files::read_bounded(path, limit, crate::files::Links::Follow)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// The `VERSION` of an os-release file, unquoted.
fn os_release_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION="))
        .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .filter(|v| !v.is_empty())
}

/// The physical disks and their sizes in bytes, as TiSpark reports them
/// (`/dev/nvme0n1`, not partitions or file systems). On Linux from
/// `/sys/block`: devices backed by hardware (a `device` link; not loop, ram,
/// zram, device-mapper or md), size in 512-byte sectors. Nothing is mounted
/// or probed, so a hung network file system cannot stall the report.
/// Elsewhere, sysinfo's disk list (file systems, with their sizes).
#[cfg(target_os = "linux")]
fn disks() -> Vec<Disk> {
    physical_disks(std::path::Path::new("/sys/block"))
}

#[cfg(target_os = "linux")]
fn physical_disks(sys_block: &std::path::Path) -> Vec<Disk> {
    let Ok(entries) = std::fs::read_dir(sys_block) else {
        return Vec::new();
    };
    let mut out: Vec<Disk> = entries
        .flatten()
        .filter(|e| e.path().join("device").exists())
        .filter_map(|e| {
            let sectors: u64 = read_small(&e.path().join("size"), 64)?
                .trim()
                .parse()
                .ok()?;
            (sectors > 0).then(|| Disk {
                name: format!("/dev/{}", e.file_name().to_string_lossy()),
                size: sectors * 512,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(not(target_os = "linux"))]
fn disks() -> Vec<Disk> {
    use sysinfo::{DiskRefreshKind, Disks};
    let Ok(list) =
        Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage())
    else {
        return Vec::new();
    };
    let mut out: Vec<Disk> = Vec::new();
    for d in &list {
        let name = d.name().to_string_lossy().to_string();
        if !name.starts_with("/dev/") || out.iter().any(|o| o.name == name) {
            continue;
        }
        out.push(Disk {
            name,
            size: d.total_space(),
        });
    }
    out
}

/// Binary units with one decimal: `828.1 MiB`, `15.4 GiB`.
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary_units_with_one_decimal() {
        assert_eq!(binary_size(512), "512 bytes");
        assert_eq!(binary_size(868_324_147), "828.1 MiB");
        assert_eq!(binary_size(16_535_624_089), "15.4 GiB");
    }

    #[test]
    fn os_release_version_is_the_full_version_with_code_name() {
        let ubuntu =
            "NAME=\"Ubuntu\"\nVERSION_ID=\"20.04\"\nVERSION=\"20.04.4 LTS (Focal Fossa)\"\n";
        assert_eq!(
            os_release_version(ubuntu).as_deref(),
            Some("20.04.4 LTS (Focal Fossa)")
        );
        assert_eq!(os_release_version("VERSION_ID=12\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn physical_disks_are_devices_with_hardware_behind_them() {
        let root = std::env::temp_dir().join(format!("tt-sys-block-{}", std::process::id()));
        for (name, sectors, hardware) in [
            ("nvme0n1", "1000215216", true),
            ("sr0", "0", true),
            ("loop0", "2048", false),
            ("dm-0", "4096", false),
        ] {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("size"), format!("{sectors}\n")).unwrap();
            if hardware {
                std::fs::create_dir_all(dir.join("device")).unwrap();
            }
        }
        let disks = physical_disks(&root);
        assert_eq!(
            disks,
            [Disk {
                name: "/dev/nvme0n1".into(),
                size: 512_110_190_592
            }]
        );
    }

    #[test]
    fn gathered_facts_describe_this_host() {
        let hw = gather();
        assert!(hw.cpu.logical_cores >= 1);
        assert!(hw.memory.starts_with("Available: "), "{}", hw.memory);
        assert_ne!(hw.os, UNKNOWN);
        assert!(hw.disks.iter().all(|d| d.name.starts_with("/dev/")));
    }
}
