//! The host facts of the report (`hardware`), computed as OSHI 6.1.6 computes
//! them for TiSpark 3.x, so that a backend sees the same strings from the
//! same hosts (see docs/fidelity.md for what still differs and why).
//!
//! On Linux everything but the CPU comes from files under a root directory
//! ([`gather_from`]; [`gather`] uses `/`): the OS family and version from the
//! release files and `/proc/version` ([`os_release`]), memory from
//! `/proc/meminfo`, disks from `/sys/block`. The CPU comes from `sysinfo`
//! (its list without usage sampling). Never the process list, users,
//! networks, mount points or host name. Every read is bounded and of regular
//! files only.

pub mod os_release;

use crate::report::{Cpu, Disk, Hardware, UNKNOWN};
use std::path::Path;
use sysinfo::{CpuRefreshKind, RefreshKind, System};

/// `/proc/meminfo` is a few KiB.
const MEMINFO_LIMIT: u64 = 64 * 1024;

/// Gathers the `hardware` block of this host. A fact that cannot be read
/// is a placeholder (`UNKNOWN`, 0, empty), never an error.
pub fn gather() -> Hardware {
    gather_from(Path::new("/"))
}

/// [`gather`] with the host's files under `root` (`<root>/etc/os-release`,
/// `<root>/proc/meminfo`, `<root>/sys/block`, ...). The CPU is always this
/// machine's.
pub fn gather_from(root: &Path) -> Hardware {
    let (os, version) = os_and_version(root);
    Hardware {
        os,
        version,
        cpu: cpu(),
        memory: memory(root),
        disks: disks(root),
    }
}

fn cpu() -> Cpu {
    let refresh = RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing());
    let Ok(sys) = System::new_with_specifics(refresh) else {
        return Cpu {
            model: UNKNOWN.to_string(),
            logical_cores: 0,
            physical_cores: 0,
        };
    };
    Cpu {
        model: sys
            .cpus()
            .first()
            .map(|c| c.brand().trim().to_string())
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| UNKNOWN.to_string()),
        logical_cores: sys.cpus().len(),
        physical_cores: System::physical_core_count().unwrap_or(0),
    }
}

#[cfg(target_os = "linux")]
fn os_and_version(root: &Path) -> (String, String) {
    os_release::os_and_version(root)
}

#[cfg(not(target_os = "linux"))]
fn os_and_version(_root: &Path) -> (String, String) {
    let os = System::name().unwrap_or_else(|_| UNKNOWN.to_string());
    let version = os_release::version_string(
        &System::os_version().unwrap_or_else(|_| os_release::OSHI_UNKNOWN.to_string()),
        "",
        System::kernel_version().ok().as_deref(),
    );
    (os, version)
}

/// `Available: <available>/<total>` as OSHI's `GlobalMemory.toString()`.
#[cfg(target_os = "linux")]
fn memory(root: &Path) -> String {
    // OSHI reads an unreadable /proc/meminfo as no lines: 0 and 0.
    let lines = crate::files::read_bounded(
        &root.join("proc/meminfo"),
        MEMINFO_LIMIT,
        crate::files::Links::Follow,
    )
    .ok()
    .and_then(|b| String::from_utf8(b).ok())
    .unwrap_or_default();
    let (available, total) = available_and_total(&lines);
    format!(
        "Available: {}/{}",
        format_bytes(available),
        format_bytes(total)
    )
}

#[cfg(not(target_os = "linux"))]
fn memory(_root: &Path) -> String {
    use sysinfo::MemoryRefreshKind;
    let refresh = RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram());
    match System::new_with_specifics(refresh) {
        Ok(sys) if sys.total_memory() > 0 => format!(
            "Available: {}/{}",
            format_bytes(sys.available_memory()),
            format_bytes(sys.total_memory())
        ),
        _ => UNKNOWN.to_string(),
    }
}

/// Available and total memory in bytes from `/proc/meminfo`, as OSHI's
/// `LinuxGlobalMemory.readMemInfo`: `MemAvailable` (the total as read so
/// far) as soon as it is seen; without it, the estimate
/// `MemFree + Active(file) + Inactive(file) + SReclaimable`.
pub fn available_and_total(meminfo: &str) -> (u64, u64) {
    let (mut free, mut active_file, mut inactive_file, mut reclaimable, mut total) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for line in meminfo.lines() {
        let Some((key, value)) = line
            .split_once(|c: char| c.is_ascii_whitespace())
            .filter(|(k, _)| !k.is_empty())
        else {
            continue;
        };
        let bytes = || memory_size(value);
        match key {
            "MemTotal:" => total = bytes(),
            "MemAvailable:" => return (bytes(), total),
            "MemFree:" => free = bytes(),
            "Active(file):" => active_file = bytes(),
            "Inactive(file):" => inactive_file = bytes(),
            "SReclaimable:" => reclaimable = bytes(),
            _ => {}
        }
    }
    let estimate = free
        .wrapping_add(active_file)
        .wrapping_add(inactive_file)
        .wrapping_add(reclaimable);
    (estimate, total)
}

/// OSHI's `parseDecimalMemorySizeToBinary` for a meminfo value (`16384 kB`):
/// the number, shifted by the unit's first letter (K/k, M, G, T).
fn memory_size(value: &str) -> u64 {
    let mut words = value.split_ascii_whitespace();
    let number: u64 = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let shift = match words.next() {
        Some(unit) if unit.len() > 1 && words.next().is_none() => match unit.as_bytes()[0] {
            b'T' => 40,
            b'G' => 30,
            b'M' => 20,
            b'K' | b'k' => 10,
            _ => 0,
        },
        _ => 0,
    };
    number.checked_shl(shift).unwrap_or(0)
}

/// OSHI's `FormatUtil.formatBytes`: `1 byte`, `N bytes` below 1 KiB, then
/// binary units up to EiB; an integer when the value is an exact multiple of
/// the unit (`16 GiB`), else one decimal, rounded half up as Java's
/// `%.1f` rounds (`15.4 GiB`). The decimal mark is always `.`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes == 1 {
        return "1 byte".to_string();
    }
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    // The largest unit not above the value: 1024^(index + 1).
    let index = ((63 - bytes.leading_zeros()) / 10 - 1) as usize;
    let prefix = 1u64 << (10 * (index + 1));
    let unit = UNITS[index];
    if bytes.is_multiple_of(prefix) {
        return format!("{} {unit}", bytes / prefix);
    }
    format!(
        "{} {unit}",
        one_decimal_half_up(bytes as f64 / prefix as f64)
    )
}

/// Java's `String.format("%.1f", v)` for a positive finite `v`: the shortest
/// decimal digits that identify the double, rounded half up at the first
/// decimal (so 1.25 is `1.3`, where Rust's `{:.1}` gives `1.2`).
fn one_decimal_half_up(v: f64) -> String {
    let shortest = format!("{v}");
    let (int_part, frac) = shortest.split_once('.').unwrap_or((&shortest, ""));
    let mut digits: Vec<u8> = int_part.bytes().map(|b| b - b'0').collect();
    digits.push(frac.bytes().next().map_or(0, |b| b - b'0'));
    if frac.as_bytes().get(1).is_some_and(|b| *b >= b'5') {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let (int_digits, last) = digits.split_at(digits.len() - 1);
    let int: String = int_digits.iter().map(|d| char::from(b'0' + d)).collect();
    format!("{int}.{}", last[0])
}

/// The disks as OSHI's `LinuxHWDiskStore` lists them: every block device udev
/// knows as a `disk` (each entry of `/sys/block`), named by its device node
/// (`/dev/` + `DEVNAME` from its `uevent`), except nodes under `/dev/loop`
/// and `/dev/ram`; size = `size` (512-byte sectors) × 512, 0 when unreadable
/// (a CD drive without a disc is listed with 0). Device-mapper, md, zram and
/// network block devices are listed, as OSHI lists them. In udev's order:
/// by the device's path in sysfs, md and dm devices last. Nothing is mounted
/// or probed.
#[cfg(target_os = "linux")]
fn disks(root: &Path) -> Vec<Disk> {
    block_disks(&root.join("sys/block"))
}

/// Where udev puts a device in its list: md and dm last, then by sysfs path.
#[cfg(target_os = "linux")]
type UdevOrder = (bool, std::path::PathBuf);

#[cfg(target_os = "linux")]
pub fn block_disks(sys_block: &Path) -> Vec<Disk> {
    let Ok(entries) = std::fs::read_dir(sys_block) else {
        return Vec::new();
    };
    let mut found: Vec<(UdevOrder, Disk)> = entries
        .flatten()
        .filter_map(|e| {
            let dir = e.path();
            let uevent = read_small(&dir.join("uevent"), 4096)?;
            let value = |key: &str| {
                uevent
                    .lines()
                    .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                    .map(str::trim)
            };
            if value("DEVTYPE") != Some("disk") {
                return None;
            }
            let devnode = format!("/dev/{}", value("DEVNAME").filter(|n| !n.is_empty())?);
            if devnode.starts_with("/dev/loop") || devnode.starts_with("/dev/ram") {
                return None;
            }
            let sectors: u64 = read_small(&dir.join("size"), 64)
                .and_then(|s| s.trim_end_matches('\n').parse().ok())
                .unwrap_or(0);
            let kernel_name = e.file_name().to_string_lossy().to_string();
            let delayed = kernel_name.starts_with("md") || kernel_name.starts_with("dm-");
            let syspath = std::fs::canonicalize(&dir).unwrap_or(dir);
            Some((
                (delayed, syspath),
                Disk {
                    name: devnode,
                    size: sectors.wrapping_mul(512),
                },
            ))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.into_iter().map(|(_, d)| d).collect()
}

#[cfg(target_os = "linux")]
fn read_small(path: &Path, limit: u64) -> Option<String> {
    crate::files::read_bounded(path, limit, crate::files::Links::Follow)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

#[cfg(not(target_os = "linux"))]
fn disks(_root: &Path) -> Vec<Disk> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_formatted_as_oshi_formats_them() {
        assert_eq!(format_bytes(0), "0 bytes");
        assert_eq!(format_bytes(1), "1 byte");
        assert_eq!(format_bytes(2), "2 bytes");
        assert_eq!(format_bytes(1023), "1023 bytes");
        assert_eq!(format_bytes(1024), "1 KiB");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(1024 * 1024 - 1), "1024.0 KiB");
        assert_eq!(format_bytes(1 << 20), "1 MiB");
        assert_eq!(format_bytes(868_324_147), "828.1 MiB");
        assert_eq!(format_bytes(16 << 30), "16 GiB");
        assert_eq!(format_bytes(16_535_624_089), "15.4 GiB");
        // Java's %.1f rounds a tie half up: 1.25 GiB is 1.3, 1.75 GiB is 1.8.
        assert_eq!(format_bytes(5 << 28), "1.3 GiB");
        assert_eq!(format_bytes(7 << 28), "1.8 GiB");
        assert_eq!(
            format_bytes((1 << 30) * 9 + (1 << 30) * 39 / 40),
            "10.0 GiB"
        );
        assert_eq!(format_bytes(3 << 40), "3 TiB");
        assert_eq!(format_bytes((3 << 40) + 1), "3.0 TiB");
        assert_eq!(format_bytes(5 << 50), "5 PiB");
        assert_eq!(format_bytes(1 << 60), "1 EiB");
        assert_eq!(format_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn java_rounding_of_one_decimal() {
        assert_eq!(one_decimal_half_up(0.15), "0.2");
        assert_eq!(one_decimal_half_up(0.14999), "0.1");
        assert_eq!(one_decimal_half_up(9.96), "10.0");
        assert_eq!(one_decimal_half_up(999.95), "1000.0");
        assert_eq!(one_decimal_half_up(2.0), "2.0");
        assert_eq!(one_decimal_half_up(1023.9990234375), "1024.0");
    }

    #[test]
    fn available_memory_is_memavailable_or_oshis_estimate() {
        let with = "MemTotal:       16303412 kB\nMemFree:          871316 kB\nMemAvailable:   10453532 kB\nBuffers:  1 kB\n";
        assert_eq!(
            available_and_total(with),
            (10_453_532 * 1024, 16_303_412 * 1024)
        );
        let without = "MemTotal: 2048 kB\nMemFree: 100 kB\nBuffers: 7 kB\nActive(file): 20 kB\nInactive(file): 3 kB\nSReclaimable: 1 kB\nSUnreclaim: 50 kB\n";
        assert_eq!(available_and_total(without), (124 * 1024, 2048 * 1024));
        // MemAvailable ends the reading: a total after it is not seen.
        assert_eq!(
            available_and_total("MemAvailable: 1 kB\nMemTotal: 2 kB\n"),
            (1024, 0)
        );
        assert_eq!(available_and_total(""), (0, 0));
        assert_eq!(memory_size("5 MB"), 5 << 20);
        assert_eq!(memory_size("5 GB"), 5 << 30);
        assert_eq!(memory_size("5 TB"), 5 << 40);
        assert_eq!(memory_size("5 KB"), 5 << 10);
        assert_eq!(memory_size("5 B"), 5);
        assert_eq!(memory_size("5 xB"), 5);
        assert_eq!(memory_size("5"), 5);
        assert_eq!(memory_size("x kB"), 0);
        // OSHI shifts only for exactly two words with a unit of two letters or more.
        assert_eq!(memory_size("5 K"), 5);
        assert_eq!(memory_size("5 kB x"), 5);
        // What is left of a meminfo line after its key: OSHI's `\s+` split ate the spaces.
        assert_eq!(memory_size("  5   kB  "), 5 << 10);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn memory_string_from_a_fixture_meminfo() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(root.join("proc")).unwrap();
        assert_eq!(memory(&root), "Available: 0 bytes/0 bytes");
        std::fs::write(
            root.join("proc/meminfo"),
            "MemTotal:       16777216 kB\nMemFree: 1 kB\nMemAvailable:     847974 kB\n",
        )
        .unwrap();
        assert_eq!(memory(&root), "Available: 828.1 MiB/16 GiB");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn fixture_hosts_memory_is_what_oshi_prints() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/os");
        let mut checked = 0;
        for entry in std::fs::read_dir(fixtures).unwrap() {
            let root = entry.unwrap().path();
            let expected = std::fs::read_to_string(root.join("expected")).unwrap();
            if let Some(want) = expected.lines().nth(2) {
                assert_eq!(memory(&root), want, "{}", root.display());
                let hw = gather_from(&root);
                assert_eq!(hw.memory, want);
                assert_eq!(hw.os, expected.lines().next().unwrap());
                checked += 1;
            }
        }
        assert_eq!(checked, 3);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn disks_are_udevs_block_disks_but_loop_and_ram() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let devices = root.join("devices");
        let block = root.join("block");
        std::fs::create_dir_all(&block).unwrap();
        for (path, name, devname, devtype, sectors) in [
            (
                "pci0000:00/nvme/nvme0n1",
                "nvme0n1",
                "nvme0n1",
                "disk",
                Some("1000215216\n"),
            ),
            ("pci0000:00/ata1/sda", "sda", "sda", "disk", Some("2048\n")),
            ("pci0000:00/ata2/sr0", "sr0", "sr0", "disk", Some("0\n")),
            ("virtual/block/dm-0", "dm-0", "dm-0", "disk", Some("4096\n")),
            ("virtual/block/md127", "md127", "md127", "disk", Some("8\n")),
            (
                "virtual/block/zram0",
                "zram0",
                "zram0",
                "disk",
                Some("16\n"),
            ),
            (
                "virtual/block/loop0",
                "loop0",
                "loop0",
                "disk",
                Some("2048\n"),
            ),
            ("virtual/block/ram0", "ram0", "ram0", "disk", Some("2048\n")),
            ("virtual/block/nbd0", "nbd0", "nbd0", "disk", None),
            (
                "pci0000:00/c0/cciss!c0d0",
                "cciss!c0d0",
                "cciss/c0d0",
                "disk",
                Some("x\n"),
            ),
            (
                "virtual/odd/part1",
                "part1",
                "part1",
                "partition",
                Some("1\n"),
            ),
        ] {
            let dir = devices.join(path);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("uevent"),
                format!("MAJOR=8\nMINOR=0\nDEVNAME={devname}\nDEVTYPE={devtype}\n"),
            )
            .unwrap();
            if let Some(s) = sectors {
                std::fs::write(dir.join("size"), s).unwrap();
            }
            std::os::unix::fs::symlink(&dir, block.join(name)).unwrap();
        }
        // No uevent: no device node, not listed.
        std::fs::create_dir_all(block.join("odd")).unwrap();
        let names: Vec<(String, u64)> = block_disks(&block)
            .into_iter()
            .map(|d| (d.name, d.size))
            .collect();
        assert_eq!(
            names,
            [
                ("/dev/sda".to_string(), 1_048_576),
                ("/dev/sr0".to_string(), 0),
                ("/dev/cciss/c0d0".to_string(), 0),
                ("/dev/nvme0n1".to_string(), 512_110_190_592),
                ("/dev/nbd0".to_string(), 0),
                ("/dev/zram0".to_string(), 8192),
                ("/dev/dm-0".to_string(), 2_097_152),
                ("/dev/md127".to_string(), 4096),
            ]
        );
        assert_eq!(block_disks(&root.join("missing")), []);
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
