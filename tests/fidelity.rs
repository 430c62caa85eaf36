//! `tispark-telemetry preview` on each fixture host prints the `os`,
//! `version` and `memory` OSHI 6.1.6 would compute there. Each fixture
//! (tests/fixtures/os/<distro>/) holds that distribution's release files,
//! `/proc/version` and, for some, `/proc/meminfo`, and `expected`: the
//! strings worked out by following OSHI's code by hand
//! (LinuxOperatingSystem, OperatingSystem.OSVersionInfo, LinuxGlobalMemory,
//! FormatUtil), one a line: os, version, memory.
//!
//! The built command-line tool runs in a private mount namespace
//! (`unshare -m`, as root) where the fixture's files are laid over `/etc`
//! (an overlay whose top layer also hides the host's own release files) and
//! bound over `/proc/version` and `/proc/meminfo`. The real files are never
//! touched. Without root or mount namespaces the test fails, loudly.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tispark-telemetry");

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/os");
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    all.sort();
    all
}

/// Whether OSHI would look at a file of this name in /etc.
fn oshi_reads(name: &str) -> bool {
    ["-release", "-version", "_release", "_version"]
        .iter()
        .any(|end| name.ends_with(end))
        || name == "release"
        || name == "issue"
}

/// The overlay's top layer: the fixture's /etc files, and a whiteout for
/// every file of the host's /etc that OSHI would read and the fixture lacks.
fn top_layer(fixture: &Path, dir: &Path) -> PathBuf {
    let top = dir.join("etc-top");
    std::fs::create_dir_all(&top).unwrap();
    let fixture_etc = fixture.join("etc");
    for entry in std::fs::read_dir(&fixture_etc).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), top.join(entry.file_name())).unwrap();
    }
    for entry in std::fs::read_dir("/etc").unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if oshi_reads(&name) && !fixture_etc.join(&name).exists() {
            let status = Command::new("mknod")
                .arg(top.join(&name))
                .args(["c", "0", "0"])
                .status()
                .expect("run mknod");
            assert!(status.success(), "mknod of a whiteout for /etc/{name}");
        }
    }
    top
}

/// `preview`'s JSON as the fixture host would print it.
fn preview_on(fixture: &Path) -> serde_json::Value {
    let name = fixture.file_name().unwrap().to_string_lossy().to_string();
    let dir = support::temp_dir(&format!("fidelity-{name}"));
    let top = top_layer(fixture, &dir);
    let conf = dir.join("spark-defaults.conf");
    std::fs::write(
        &conf,
        format!(
            "spark.tispark.telemetry.state_dir {}\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    let script = r#"set -e
mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$TT_TOP:/etc" /etc
mount --bind "$TT_FIXTURE/proc/version" /proc/version
if [ -f "$TT_FIXTURE/proc/meminfo" ]; then mount --bind "$TT_FIXTURE/proc/meminfo" /proc/meminfo; fi
exec "$TT_BIN" --conf "$TT_CONF" preview --spark-version 3.5.7 --tispark-version 3.2.3"#;
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .env("TT_TOP", &top)
        .env("TT_FIXTURE", fixture)
        .env("TT_BIN", BIN)
        .env("TT_CONF", &conf)
        .output()
        .expect("run unshare (util-linux)");
    assert!(
        out.status.success(),
        "preview on {name} in a private mount namespace failed (this test needs root and \
         mount namespaces): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    support::assert_schema(stdout.trim_end());
    serde_json::from_str(stdout.trim_end()).unwrap()
}

#[test]
fn preview_on_each_fixture_host_prints_what_oshi_would() {
    let all = fixtures();
    assert!(all.len() >= 8, "{all:?}");
    for fixture in all {
        let expected = std::fs::read_to_string(fixture.join("expected")).unwrap();
        let expected: Vec<&str> = expected.lines().collect();
        let report = preview_on(&fixture);
        let hw = &report["hardware"];
        assert_eq!(hw["os"], expected[0], "{}", fixture.display());
        assert_eq!(hw["version"], expected[1], "{}", fixture.display());
        if let Some(memory) = expected.get(2) {
            assert_eq!(hw["memory"], *memory, "{}", fixture.display());
        }
    }
}

#[test]
fn the_real_files_are_left_as_they_were() {
    let before = std::fs::read("/etc/os-release").ok();
    let version = std::fs::read_to_string("/proc/version").unwrap();
    preview_on(&fixtures()[0]);
    assert_eq!(std::fs::read("/etc/os-release").ok(), before);
    assert_eq!(std::fs::read_to_string("/proc/version").unwrap(), version);
}
