//! Loading the native library, against a hostile host: another local user
//! (`nobody`, through setpriv) racing the copy out of the jar, stale copies
//! left by killed JVMs, and a glibc host with musl's loader installed. Real
//! JVMs (JNI invocation, -Xcheck:jni); mounts are made in private mount
//! namespaces, never on the host's own tree.
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};
use support::collector::{Behaviour, Collector};
use support::jvm::{self, ChildRun};

const REPORT_PATH: &str = "/api/v1/tispark/report";
const ENABLE: &str = "spark.tispark.telemetry.enable";
const URL: &str = "spark.tispark.telemetry.url";
const STATE: &str = "spark.tispark.telemetry.state_dir";
const LIB: &str = "libtispark_telemetry.so";
const NOBODY: u32 = 65534;

fn conf(c: &Collector) -> Vec<(&'static str, String)> {
    vec![
        (ENABLE, "true".into()),
        (URL, c.url(REPORT_PATH)),
        (
            STATE,
            support::temp_dir("loader-state").display().to_string(),
        ),
    ]
}

fn tmpdir_option(dir: &Path) -> String {
    format!("-Dtispark.telemetry.native.tmpdir={}", dir.display())
}

/// In the child: runs the report scenario the parent wrote (see
/// `report_in_jvm_under`) and returns true; in the parent, false.
fn ran_as_child(name: &str) -> bool {
    if jvm::in_child() {
        jvm::report_in_jvm_under(&[], &[], name, &[], &[]);
        return true;
    }
    false
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::open(path).unwrap().set_modified(t).unwrap();
}

/// The run delivered exactly one report, without a warning, and left no thread.
fn assert_one_report(c: &Collector, run: &ChildRun) {
    run.assert_returned_at_once_and_left_nothing();
    assert!(run.warnings().is_empty(), "{}", run.output);
    let received = c.wait_for(1, Duration::from_secs(5));
    assert_eq!(received.len(), 1, "{}", run.output);
    support::assert_schema(&received[0].body);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.received().len(), 1, "{}", run.output);
}

// ---------------------------------------------------------------------------
// (A) The copy out of the jar.

/// Another local user, as `nobody`: for as long as `$A/stop` is absent, lists
/// the shared temporary directory `$T` three levels deep and tries, on
/// everything it finds, to open it for writing, to replace it, and to move it
/// away. It writes what it saw and what it managed into `$A/log`.
const ATTACKER: &str = r#"
T=$1 A=$2
shopt -s nullglob
exec 2>/dev/null
echo "UID $(id -u)" >> "$A/log"
printf 'not the library\n' > "$A/evil"
declare -A seen
rounds=0
: > "$A/ready"
while [ ! -e "$A/stop" ]; do
  rounds=$((rounds + 1))
  for f in "$T"/* "$T"/*/* "$T"/*/*/*; do
    if [ -z "${seen[$f]:-}" ]; then seen[$f]=1; echo "SAW $f" >> "$A/log"; fi
    if [ -f "$f" ]; then
      if dd of="$f" conv=notrunc,nocreat count=0 status=none </dev/null; then
        echo "OPENED $f" >> "$A/log"
      fi
      if cp "$A/evil" "$A/evil.new" && mv -f "$A/evil.new" "$f"; then
        echo "REPLACED $f" >> "$A/log"
      fi
    fi
    if [ -d "$f" ] && mv "$f" "$A/moved.$rounds"; then echo "MOVED $f" >> "$A/log"; fi
  done
done
echo "ROUNDS $rounds" >> "$A/log"
"#;

#[test]
fn under_umask_000_in_a_shared_sticky_tmpdir_another_user_can_take_nothing() {
    let name = "under_umask_000_in_a_shared_sticky_tmpdir_another_user_can_take_nothing";
    if ran_as_child(name) {
        return;
    }
    let c = Collector::start(Behaviour::Accept);
    // A shared temporary directory like /tmp: world-writable and sticky.
    let shared = support::temp_dir("loader-shared").join("tmp");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let attacker_dir = support::temp_dir("loader-attacker");
    chmod(&attacker_dir, 0o777);

    let mut attacker = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            "-c",
            ATTACKER,
            "attacker",
        ])
        .arg(&shared)
        .arg(&attacker_dir)
        .spawn()
        .expect("run setpriv (util-linux) to act as the user nobody; this test must run as root");
    let ready = attacker_dir.join("ready");
    let start = Instant::now();
    while !ready.exists() {
        if let Some(status) = attacker.try_wait().unwrap() {
            panic!("the attacker (nobody, through setpriv) ended before starting: {status}; this test must run as root");
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the attacker did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let umask_000 = ["bash", "-c", "umask 000 && exec \"$@\"", "umask000"];
    let run = jvm::report_in_jvm_under(&umask_000, &[tmpdir_option(&shared)], name, &conf(&c), &[])
        .unwrap();

    std::fs::write(attacker_dir.join("stop"), "").unwrap();
    let start = Instant::now();
    while attacker.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            attacker.kill().unwrap();
            attacker.wait().unwrap();
            panic!("the attacker did not stop");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = std::fs::read_to_string(attacker_dir.join("log")).unwrap();
    println!("attacker's log:\n{log}");
    assert_eq!(
        log.lines().next(),
        Some(format!("UID {NOBODY}").as_str()),
        "{log}"
    );
    let rounds: u64 = log
        .lines()
        .find_map(|l| l.strip_prefix("ROUNDS "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the attacker did not finish:\n{log}"));
    assert!(rounds > 0, "{log}");
    let managed: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.starts_with("OPENED ") || l.starts_with("REPLACED ") || l.starts_with("MOVED ")
        })
        .collect();
    assert_eq!(
        managed,
        Vec::<&str>::new(),
        "another user got hold of the library's copy:\n{log}\n{}",
        run.output
    );
    assert_one_report(&c, &run);
    assert_eq!(
        names_in(&shared),
        Vec::<String>::new(),
        "left in the shared tmpdir"
    );
}

#[test]
fn stale_copies_of_this_user_are_swept_and_nothing_else() {
    let name = "stale_copies_of_this_user_are_swept_and_nothing_else";
    if ran_as_child(name) {
        return;
    }
    let c = Collector::start(Behaviour::Accept);
    let tmp = support::temp_dir("loader-sweep");
    let dead = {
        let mut p = Command::new("true").spawn().unwrap();
        let pid = p.id();
        p.wait().unwrap();
        pid
    };
    assert!(!Path::new(&format!("/proc/{dead}")).exists());
    let live = std::process::id();
    let old = SystemTime::now() - Duration::from_secs(2 * 3600);
    let copy = |name: &str, owner: u32, mtime: SystemTime| {
        let dir = tmp.join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(LIB), "a copy").unwrap();
        chmod(&dir, 0o700);
        std::os::unix::fs::chown(dir.join(LIB), Some(owner), Some(owner)).unwrap();
        std::os::unix::fs::chown(&dir, Some(owner), Some(owner)).unwrap();
        set_mtime(&dir, mtime);
    };
    let root = 0; // this test runs as root: "ours" is root's
    let stale = format!("tispark-telemetry-{dead}-1111");
    let alive = format!("tispark-telemetry-{live}-2222");
    let nobodys = format!("tispark-telemetry-{dead}-3333");
    let link = format!("tispark-telemetry-{dead}-4444");
    let fresh = format!("tispark-telemetry-{dead}-5555");
    copy(&stale, root, old);
    copy(&alive, root, old);
    copy(&nobodys, NOBODY, old);
    copy(&fresh, root, SystemTime::now());
    // A link named as a stale copy, to a directory of ours that looks stale too.
    let victim = support::temp_dir("loader-sweep-victim");
    std::fs::write(victim.join(LIB), "not a copy").unwrap();
    set_mtime(&victim, old);
    std::os::unix::fs::symlink(&victim, tmp.join(&link)).unwrap();

    let run = jvm::report_in_jvm_under(&[], &[tmpdir_option(&tmp)], name, &conf(&c), &[]).unwrap();
    assert_one_report(&c, &run);

    let mut kept = vec![alive.clone(), nobodys.clone(), link.clone(), fresh.clone()];
    kept.sort();
    assert_eq!(names_in(&tmp), kept, "{}", run.output);
    for dir in [&alive, &nobodys, &fresh] {
        assert_eq!(
            std::fs::read_to_string(tmp.join(dir).join(LIB)).unwrap(),
            "a copy"
        );
    }
    let link_meta = std::fs::symlink_metadata(tmp.join(&link)).unwrap();
    assert!(link_meta.file_type().is_symlink());
    assert_eq!(std::fs::read_link(tmp.join(&link)).unwrap(), victim);
    assert_eq!(names_in(&victim), vec![LIB.to_string()]);
    assert_eq!(
        std::fs::read_to_string(victim.join(LIB)).unwrap(),
        "not a copy"
    );
}

#[test]
fn a_normal_load_leaves_nothing_in_the_tmpdir() {
    let name = "a_normal_load_leaves_nothing_in_the_tmpdir";
    if ran_as_child(name) {
        return;
    }
    let c = Collector::start(Behaviour::Accept);
    let tmp = support::temp_dir("loader-clean");
    let run = jvm::report_in_jvm_under(&[], &[tmpdir_option(&tmp)], name, &conf(&c), &[]).unwrap();
    assert_one_report(&c, &run);
    assert_eq!(names_in(&tmp), Vec::<String>::new());
}

#[test]
fn a_tmpdir_others_may_write_without_the_sticky_bit_is_refused_with_one_warning() {
    let name = "a_tmpdir_others_may_write_without_the_sticky_bit_is_refused_with_one_warning";
    if ran_as_child(name) {
        return;
    }
    let c = Collector::start(Behaviour::Accept);
    let tmp = support::temp_dir("loader-open").join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    chmod(&tmp, 0o777);
    let run = jvm::report_in_jvm_under(&[], &[tmpdir_option(&tmp)], name, &conf(&c), &[]).unwrap();
    run.assert_returned_at_once_and_left_nothing();
    let w = run.one_warning("native library cannot be loaded");
    let says = format!(
        "the temporary directory {} is writable by other users and not sticky",
        tmp.display()
    );
    assert!(w.contains(&says), "{w}");
    assert!(
        w.contains(
            "set -Dtispark.telemetry.native.tmpdir=<a directory other users cannot write to>"
        ),
        "{w}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.connections(), 0);
    assert_eq!(names_in(&tmp), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// (B) musl is the C library the process runs on, not a file that exists.

/// A wrapper that runs its command in a private mount namespace where `/lib`
/// also holds musl's loader (an empty file), as Debian's `musl` package
/// installs it on a glibc host. The host's /lib is not touched.
fn with_musl_loader_installed() -> Vec<String> {
    let extra = support::temp_dir("musl-loader");
    let loader = format!("ld-musl-{}.so.1", std::env::consts::ARCH);
    std::fs::write(extra.join(&loader), "").unwrap();
    let script = format!(
        "set -e; lib=$(readlink -f /lib); \
         mount -t overlay overlay -o lowerdir={}:$lib $lib; \
         test -e /lib/{loader}; echo MUSL_LOADER_FILE=/lib/{loader}; exec \"$@\"",
        extra.display()
    );
    ["unshare", "-m", "bash", "-c", &script, "musl"]
        .map(String::from)
        .to_vec()
}

#[test]
fn a_glibc_jvm_on_a_host_with_musl_installed_loads_the_glibc_library() {
    let name = "a_glibc_jvm_on_a_host_with_musl_installed_loads_the_glibc_library";
    if ran_as_child(name) {
        return;
    }
    let c = Collector::start(Behaviour::Accept);
    let wrapper = with_musl_loader_installed();
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let run = jvm::report_in_jvm_under(&wrapper, &[], name, &conf(&c), &[]).unwrap();
    let loader = format!("/lib/ld-musl-{}.so.1", std::env::consts::ARCH);
    assert_eq!(
        run.value("MUSL_LOADER_FILE"),
        Some(loader),
        "{}",
        run.output
    );
    assert_one_report(&c, &run);
}

fn platforms_sh(wrapper: &[&str], triple: Option<&str>) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg("bash");
            c
        }
        None => Command::new("bash"),
    };
    cmd.arg(root.join("scripts/platforms.sh"))
        .args(triple)
        .current_dir(root)
        .output()
        .expect("run bash")
}

#[test]
fn the_build_names_its_platform_from_the_rust_target_through_one_mapping() {
    let table = [
        (
            "x86_64-unknown-linux-gnu",
            "linux-x86_64 libtispark_telemetry.so",
        ),
        (
            "aarch64-unknown-linux-gnu",
            "linux-aarch64 libtispark_telemetry.so",
        ),
        (
            "x86_64-unknown-linux-musl",
            "linux-musl-x86_64 libtispark_telemetry.so",
        ),
        (
            "aarch64-unknown-linux-musl",
            "linux-musl-aarch64 libtispark_telemetry.so",
        ),
        (
            "x86_64-apple-darwin",
            "macos-x86_64 libtispark_telemetry.dylib",
        ),
        (
            "aarch64-apple-darwin",
            "macos-aarch64 libtispark_telemetry.dylib",
        ),
    ];
    for (triple, expected) in table {
        let out = platforms_sh(&[], Some(triple));
        assert!(out.status.success(), "{triple}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{expected}\n")
        );
    }
    let out = platforms_sh(&[], Some("riscv64gc-unknown-linux-gnu"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "no platform directory for the Rust target 'riscv64gc-unknown-linux-gnu' \
         (see scripts/platforms.sh and NativeLoader.platform())\n"
    );

    // Without a triple: rustc's host, the target `cargo build` makes, also
    // where musl's loader is installed on this glibc host.
    let rustc = Command::new("rustc").arg("-vV").output().expect("rustc");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .unwrap();
    let expected = table
        .iter()
        .find(|(t, _)| *t == host)
        .unwrap_or_else(|| panic!("this test runs on a host the jar supports, not {host}"))
        .1;
    let wrapper = with_musl_loader_installed();
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let out = platforms_sh(&wrapper, None);
    let loader = format!("/lib/ld-musl-{}.so.1", std::env::consts::ARCH);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("MUSL_LOADER_FILE={loader}\n{expected}\n"),
        "{out:?}"
    );

    // Both builds take their platform from it, and from nothing else.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for script in ["java/package.sh", "scripts/build-native.sh"] {
        let text = std::fs::read_to_string(root.join(script)).unwrap();
        assert!(text.contains("source scripts/platforms.sh"), "{script}");
        assert!(text.contains("platform_of \"$triple\""), "{script}");
        for guess in ["uname", "ld-musl", "linux-x86_64", "linux-musl"] {
            assert!(!text.contains(guess), "{script} still guesses ({guess})");
        }
    }
}
