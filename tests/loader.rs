//! Loading the native library, against a hostile host: another local user
//! (`nobody`, through setpriv) racing the copy out of the jar, stale copies
//! left by killed JVMs, a glibc host with musl's loader installed, and conf
//! objects whose reads block. Real JVMs (JNI invocation, -Xcheck:jni); mounts
//! are made in private mount namespaces, never on the host's own tree.

mod support;

use jni::objects::{JObject, JValue};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use support::collector::{Behaviour, Collector};
use support::jvm::{self, ChildRun};
use support::names_in;

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
fn ran_as_child() -> bool {
    if jvm::in_child() {
        jvm::report_in_jvm_under(&[], &[], &[], &[]);
        return true;
    }
    false
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::open(path).unwrap().set_modified(t).unwrap();
}

/// Fails the test, saying why, unless it runs as root (setpriv to another
/// user, chown to nobody, mounts in a private namespace need it).
fn require_root(why: &str) {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    assert_eq!(uid, 0, "this test must run as root: {why}");
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

/// This user's cache of the library in a temporary directory.
fn cache_dir_name() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    format!("tispark-telemetry-cache-{uid}")
}

/// This host's platform directory in the jar.
fn host_platform() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "linux-aarch64"
    } else {
        "linux-x86_64"
    }
}

/// This host's library, as the jar at `jar` holds it.
fn library_in(jar: &Path) -> Vec<u8> {
    let out = Command::new("unzip")
        .arg("-p")
        .arg(jar)
        .arg(format!("native/{}/{LIB}", host_platform()))
        .output()
        .expect("run unzip (apt-get install unzip)");
    assert!(out.status.success() && !out.stdout.is_empty());
    out.stdout
}

/// This host's library in the jar: its SHA-256 (hex) and size.
fn jar_digest() -> (String, u64) {
    let lib = support::temp_dir("loader-jar-library").join(LIB);
    let bytes = library_in(&support::jar());
    std::fs::write(&lib, &bytes).unwrap();
    (sha256_of(&lib), bytes.len() as u64)
}

/// The cached copy's name: the library's, with the first 16 hex digits of its SHA-256.
fn cached_name() -> String {
    format!("libtispark_telemetry-{}.so", &jar_digest().0[..16])
}

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// `tmp` holds this user's cache and nothing else: a directory of this user,
/// 0700, holding exactly this build's library, 0600, byte for byte the jar's.
/// Returns the library's inode.
fn assert_private_cache(tmp: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    assert_eq!(names_in(tmp), vec![cache_dir_name()]);
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    let dir = tmp.join(cache_dir_name());
    let meta = std::fs::symlink_metadata(&dir).unwrap();
    assert!(meta.is_dir());
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (me, 0o700));
    assert_eq!(names_in(&dir), vec![cached_name()]);
    let lib = dir.join(cached_name());
    let meta = std::fs::symlink_metadata(&lib).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (me, 0o600));
    let (hex, size) = jar_digest();
    assert_eq!((sha256_of(&lib), meta.len()), (hex, size));
    meta.ino()
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
    if ran_as_child() {
        return;
    }
    require_root("the other user is nobody, through setpriv");
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
    let run =
        jvm::report_in_jvm_under(&umask_000, &[tmpdir_option(&shared)], &conf(&c), &[]).unwrap();

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
    // Left in the shared tmpdir: this user's private cache, and nothing of nobody's in it.
    assert_private_cache(&shared);
}

/// A pid no process has: a child's, once it has ended.
fn dead_pid() -> u32 {
    let mut p = Command::new("true").spawn().unwrap();
    let pid = p.id();
    p.wait().unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    pid
}

/// A per-process copy's directory name, as the loader makes them:
/// `tispark-telemetry-<pid>-<16 hex digits>`.
fn copy_name(pid: u32, random: u64) -> String {
    format!("tispark-telemetry-{pid}-{random:016x}")
}

/// Makes `tmp/name`, a directory of mode `mode` holding `files` (each
/// `(name, Some(bytes))` a file of mode 0600, `(name, None)` a directory),
/// everything given to `owner`, the directory last modified at `mtime`.
fn plant(
    tmp: &Path,
    name: &str,
    files: &[(&str, Option<&[u8]>)],
    mode: u32,
    owner: u32,
    mtime: SystemTime,
) {
    let dir = tmp.join(name);
    std::fs::create_dir(&dir).unwrap();
    for (file, bytes) in files {
        let path = dir.join(file);
        match bytes {
            Some(bytes) => {
                std::fs::write(&path, bytes).unwrap();
                chmod(&path, 0o600);
            }
            None => {
                std::fs::create_dir(&path).unwrap();
                std::fs::write(path.join("kept.txt"), "a file of the user's").unwrap();
            }
        }
        std::os::unix::fs::chown(&path, Some(owner), Some(owner)).unwrap();
    }
    chmod(&dir, mode);
    std::os::unix::fs::chown(&dir, Some(owner), Some(owner)).unwrap();
    set_mtime(&dir, mtime);
}

/// Each file under `dir` (recursively, links not followed), with its content
/// (`<dir>` for a directory, `-> target` for a link), sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push((rel, format!("-> {}", target.display()).into_bytes()));
            } else if meta.is_dir() {
                out.push((rel, b"<dir>".to_vec()));
                stack.push(path);
            } else {
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn stale_copies_of_this_user_are_swept_and_nothing_else() {
    if ran_as_child() {
        return;
    }
    require_root("a stale copy is given to nobody with chown");
    let c = Collector::start(Behaviour::Accept);
    let tmp = support::temp_dir("loader-sweep");
    let library = library_in(&support::jar());
    let dead = dead_pid();
    let live = std::process::id();
    let old = SystemTime::now() - Duration::from_secs(2 * 3600);
    // Each a genuine copy (the jar's library, as the loader writes it): only
    // the rule in question keeps it.
    let copy = |name: &str, owner: u32, mtime: SystemTime| {
        plant(&tmp, name, &[(LIB, Some(&library))], 0o700, owner, mtime);
    };
    let root = 0; // this test runs as root: "ours" is root's
    let stale = copy_name(dead, 0x1111);
    let alive = copy_name(live, 0x2222);
    let nobodys = copy_name(dead, 0x3333);
    let link = copy_name(dead, 0x4444);
    let fresh = copy_name(dead, 0x5555);
    copy(&stale, root, old);
    copy(&alive, root, old);
    copy(&nobodys, NOBODY, old);
    copy(&fresh, root, SystemTime::now());
    // A link named as a stale copy, to a directory of ours that looks stale too.
    let victim = support::temp_dir("loader-sweep-victim");
    std::fs::write(victim.join(LIB), &library).unwrap();
    chmod(&victim.join(LIB), 0o600);
    chmod(&victim, 0o700);
    set_mtime(&victim, old);
    std::os::unix::fs::symlink(&victim, tmp.join(&link)).unwrap();

    let run = jvm::report_in_jvm_under(&[], &[tmpdir_option(&tmp)], &conf(&c), &[]).unwrap();
    assert_one_report(&c, &run);

    let mut kept = vec![
        alive.clone(),
        nobodys.clone(),
        link.clone(),
        fresh.clone(),
        cache_dir_name(),
    ];
    kept.sort();
    assert_eq!(names_in(&tmp), kept, "{}", run.output);
    for dir in [&alive, &nobodys, &fresh] {
        assert_eq!(
            tree(&tmp.join(dir)),
            vec![(LIB.to_string(), library.clone())]
        );
    }
    let link_meta = std::fs::symlink_metadata(tmp.join(&link)).unwrap();
    assert!(link_meta.file_type().is_symlink());
    assert_eq!(std::fs::read_link(tmp.join(&link)).unwrap(), victim);
    assert_eq!(tree(&victim), vec![(LIB.to_string(), library.clone())]);
}

/// Directories of this user that only look like a per-process copy: named
/// exactly as one, of a process that is gone, long untouched, but holding
/// something the library did not put there, or not closed to others. Each is
/// left exactly as it was; the one genuine copy beside them is swept.
#[test]
fn only_a_copy_the_library_can_prove_it_made_is_swept() {
    if ran_as_child() {
        return;
    }
    let c = Collector::start(Behaviour::Accept);
    let tmp = support::temp_dir("loader-sweep-proof");
    let library = library_in(&support::jar());
    let longer = [&library[..], b"\n"].concat();
    let mut flipped = library.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    let dead = dead_pid();
    let old = SystemTime::now() - Duration::from_secs(2 * 3600);
    let me = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").unwrap().uid()
    };
    let genuine = copy_name(dead, 0xa0);
    plant(&tmp, &genuine, &[(LIB, Some(&library))], 0o700, me, old);
    let lookalikes: Vec<(String, Vec<(&str, Option<&[u8]>)>, u32)> = vec![
        (
            copy_name(dead, 0xa1),
            vec![(LIB, Some(&library)), ("notes.txt", Some(b"mine"))],
            0o700,
        ),
        (
            copy_name(dead, 0xa2),
            vec![(LIB, Some(&library)), ("sub", None)],
            0o700,
        ),
        (copy_name(dead, 0xa3), vec![(LIB, Some(&longer))], 0o700),
        (copy_name(dead, 0xa4), vec![(LIB, Some(&flipped))], 0o700),
        (copy_name(dead, 0xa5), vec![(LIB, Some(b"a copy"))], 0o700),
        (
            copy_name(dead, 0xa6),
            vec![("sink.jsonl", Some(b"{\"a\":1}\n"))],
            0o700,
        ),
        (copy_name(dead, 0xa7), vec![(LIB, Some(&library))], 0o755),
        // Not the name form the loader makes (older releases' random part).
        (
            format!("tispark-telemetry-{dead}-1111"),
            vec![(LIB, Some(&library))],
            0o700,
        ),
    ];
    let mut before = Vec::new();
    for (name, files, mode) in &lookalikes {
        plant(&tmp, name, files, *mode, me, old);
        before.push((name.clone(), tree(&tmp.join(name))));
    }
    // The library's name, a link to a genuine copy elsewhere.
    let elsewhere = support::temp_dir("loader-sweep-elsewhere").join(LIB);
    std::fs::write(&elsewhere, &library).unwrap();
    let linked = copy_name(dead, 0xa8);
    std::fs::create_dir(tmp.join(&linked)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, tmp.join(&linked).join(LIB)).unwrap();
    chmod(&tmp.join(&linked), 0o700);
    set_mtime(&tmp.join(&linked), old);
    before.push((linked.clone(), tree(&tmp.join(&linked))));

    let run = jvm::report_in_jvm_under(&[], &[tmpdir_option(&tmp)], &conf(&c), &[]).unwrap();
    assert_one_report(&c, &run);

    let mut kept: Vec<String> = before.iter().map(|(n, _)| n.clone()).collect();
    kept.push(cache_dir_name());
    kept.sort();
    assert_eq!(names_in(&tmp), kept, "{}", run.output);
    for (name, was) in &before {
        assert_eq!(&tree(&tmp.join(name)), was, "{name}");
    }
    assert_eq!(std::fs::read(&elsewhere).unwrap(), library);
}

/// The per-process copy (the cache refused: open to others) is made as
/// `tispark-telemetry-<pid>-<16 hex digits>/libtispark_telemetry.so`, and
/// deleted once loaded; that very directory, left behind as a JVM killed in
/// between would leave it, is swept by the next JVM once its pid is gone.
#[test]
fn the_private_copy_is_made_under_the_name_the_sweep_takes() {
    let tmp = support::temp_dir("loader-copy-name");
    let cache = tmp.join(cache_dir_name());
    if !jvm::in_child() {
        std::fs::create_dir(&cache).unwrap();
        chmod(&cache, 0o755);
    }
    let env = |c: &Collector| {
        [
            ("TT_TMP", tmp.display().to_string()),
            ("TT_URL", c.url(REPORT_PATH)),
            (
                "TT_STATE",
                support::temp_dir("loader-copy-name-state")
                    .display()
                    .to_string(),
            ),
        ]
    };
    let c = Collector::start(Behaviour::Accept);
    let Some(run) = jvm::isolated(&env(&c), copy_name_scenario) else {
        return;
    };
    assert_one_report(&c, &run);
    let pid = run.number("PID");
    let mapped = PathBuf::from(run.value("MAPPED").unwrap());
    assert_eq!(mapped.file_name().unwrap(), LIB, "{}", run.output);
    let dir = mapped.parent().unwrap();
    assert_eq!(dir.parent().unwrap(), tmp);
    let name = dir.file_name().unwrap().to_str().unwrap();
    let random = name
        .strip_prefix(&format!("tispark-telemetry-{pid}-"))
        .unwrap_or_else(|| panic!("{name}"));
    assert_eq!(random.len(), 16, "{name}");
    assert!(
        random
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{name}"
    );
    assert_eq!(
        names_in(&tmp),
        vec![cache_dir_name()],
        "deleted once loaded"
    );

    // Left behind by a JVM killed in between: swept once that pid is gone.
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    let library = library_in(&support::jar());
    let old = SystemTime::now() - Duration::from_secs(2 * 3600);
    let me = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").unwrap().uid()
    };
    plant(&tmp, name, &[(LIB, Some(&library))], 0o700, me, old);
    let c = Collector::start(Behaviour::Accept);
    let run = jvm::isolated(&env(&c), copy_name_scenario).unwrap();
    assert_one_report(&c, &run);
    assert_eq!(names_in(&tmp), vec![cache_dir_name()], "{}", run.output);
}

/// One report, with the library's temporary directory `TT_TMP`; prints this
/// process's pid and where the library is mapped from.
fn copy_name_scenario() {
    let vm = jvm::start_jvm(&[format!(
        "-Dtispark.telemetry.native.tmpdir={}",
        var("TT_TMP")
    )]);
    let mut env = vm.attach_current_thread().unwrap();
    let (url, state) = (var("TT_URL"), var("TT_STATE"));
    let map = jvm::java_map(&mut env, &[(ENABLE, "true"), (URL, &url), (STATE, &state)]);
    jvm::report(&mut env, &map, None);
    println!("REPORT_RETURNED_US=0");
    println!("FLUSHED={}", jvm::flush(&mut env, 15_000));
    println!(
        "SENDER_THREADS_LEFT={}",
        jvm::wait_no_threads_named("tispark-telemetry-sender", Duration::from_secs(2))
    );
    println!("PID={}", std::process::id());
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mapped = maps.lines().find(|l| l.contains(LIB)).unwrap();
    println!("MAPPED={}", mapped.split_whitespace().nth(5).unwrap());
}

/// After the report the cache is tended: another build's copy unused for 7
/// days and a half-written copy older than an hour are deleted, and nothing
/// else there, whatever it is named: files of other names, a directory, a
/// file open to others, a link.
#[test]
fn the_cache_is_tended_only_of_what_the_loader_writes_there() {
    if ran_as_child() {
        return;
    }
    let tmp = support::temp_dir("loader-tend");
    let cache = tmp.join(cache_dir_name());
    std::fs::create_dir(&cache).unwrap();
    chmod(&cache, 0o700);
    let days = |n: u64| SystemTime::now() - Duration::from_secs(n * 24 * 3600);
    let file = |name: &str, mode: u32, mtime: SystemTime| {
        let path = cache.join(name);
        std::fs::write(&path, "bytes").unwrap();
        chmod(&path, mode);
        set_mtime(&path, mtime);
    };
    let other_build = "libtispark_telemetry-0123456789abcdef.so";
    let half_written = ".libtispark_telemetry-0123456789abcdef.so.4242-1a2b3c.part";
    file(other_build, 0o600, days(8));
    file(half_written, 0o600, days(1));
    let mut kept = vec![cached_name()];
    for (name, mode, mtime) in [
        ("notes.part", 0o600, days(8)),
        ("libtispark_telemetry-mine.so", 0o600, days(8)),
        ("libtispark_telemetry-0123456789abcded.so", 0o644, days(8)),
        (".libtispark_telemetry-x.so.4242-1.part", 0o600, days(8)),
        ("libtispark_telemetry-0123456789abcdea.so", 0o600, days(6)),
    ] {
        file(name, mode, mtime);
        kept.push(name.to_string());
    }
    let dir = "libtispark_telemetry-0123456789abcdee.so";
    std::fs::create_dir(cache.join(dir)).unwrap();
    set_mtime(&cache.join(dir), days(8));
    kept.push(dir.to_string());
    let link = ".libtispark_telemetry-0123456789abcdec.so.1-1.part";
    let target = support::temp_dir("loader-tend-target").join("kept");
    std::fs::write(&target, "bytes").unwrap();
    std::os::unix::fs::symlink(&target, cache.join(link)).unwrap();
    let old_link = Command::new("touch")
        .args(["-h", "-d", "8 days ago"])
        .arg(cache.join(link))
        .status()
        .unwrap();
    assert!(old_link.success());
    kept.push(link.to_string());
    kept.sort();

    let c = Collector::start(Behaviour::Accept);
    let run = jvm::report_in_jvm_under(&[], &[tmpdir_option(&tmp)], &conf(&c), &[]).unwrap();
    assert_one_report(&c, &run);
    assert_eq!(names_in(&cache), kept, "{}", run.output);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "bytes");
}

/// The issue's reproductions: a user's directory with a JSON-lines sink in
/// it, and a collector's database directory, both named
/// `tispark-telemetry-<digits>-<anything>`, long untouched, whose number is
/// no live pid (the JVM runs in a pid namespace of its own, where 2024 and
/// 2026 surely are not): a report leaves them and their files as they were.
#[test]
fn a_users_own_directories_named_like_a_copy_survive_a_report() {
    if ran_as_child() {
        return;
    }
    require_root("the JVM runs in a pid namespace of its own");
    let c = Collector::start(Behaviour::Accept);
    let tmp = support::temp_dir("loader-sweep-users");
    let old = SystemTime::now() - Duration::from_secs(2 * 3600);
    let sink: &[u8] = b"{\"time\":1764892800,\"track_id\":\"trkid_x\"}\n";
    let db: &[u8] = b"SQLite format 3\0 stored reports";
    plant(
        &tmp,
        "tispark-telemetry-2026-12-05",
        &[("reports.jsonl", Some(sink))],
        0o755,
        0,
        old,
    );
    plant(
        &tmp,
        "tispark-telemetry-2024-collector",
        &[("reports.db", Some(db))],
        0o700,
        0,
        old,
    );
    let pid_namespace = ["unshare", "--pid", "--fork", "--mount-proc"];
    let run =
        jvm::report_in_jvm_under(&pid_namespace, &[tmpdir_option(&tmp)], &conf(&c), &[]).unwrap();
    assert_one_report(&c, &run);
    assert_eq!(
        names_in(&tmp),
        vec![
            "tispark-telemetry-2024-collector".to_string(),
            "tispark-telemetry-2026-12-05".to_string(),
            cache_dir_name(),
        ],
        "{}",
        run.output
    );
    assert_eq!(
        tree(&tmp.join("tispark-telemetry-2026-12-05")),
        vec![("reports.jsonl".to_string(), sink.to_vec())]
    );
    assert_eq!(
        tree(&tmp.join("tispark-telemetry-2024-collector")),
        vec![("reports.db".to_string(), db.to_vec())]
    );
}

#[test]
fn a_load_leaves_only_this_users_private_cache_and_the_next_jvm_loads_from_it() {
    if ran_as_child() {
        return;
    }
    let c = Collector::start(Behaviour::Accept);
    let tmp = support::temp_dir("loader-clean");
    let run = jvm::report_in_jvm_under(&[], &[tmpdir_option(&tmp)], &conf(&c), &[]).unwrap();
    assert_one_report(&c, &run);
    let first = assert_private_cache(&tmp);

    // The next JVM finds the copy and loads it as it is (the same file, not rewritten).
    let c = Collector::start(Behaviour::Accept);
    let run = jvm::report_in_jvm_under(&[], &[tmpdir_option(&tmp)], &conf(&c), &[]).unwrap();
    assert_one_report(&c, &run);
    assert_eq!(assert_private_cache(&tmp), first);
}

/// Another user made the cache's directory first (`nobody`'s, open to all or
/// private to nobody), with a FIFO under the library's cached name: opening
/// it would hang the load. It is not used; the library is copied for this JVM
/// alone, and the squatter's directory is left exactly as it was.
#[test]
fn a_cache_directory_another_user_made_is_not_used() {
    if ran_as_child() {
        return;
    }
    require_root("the directory is given to nobody with chown");
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    for mode in [0o777, 0o700] {
        let tmp = support::temp_dir("loader-squat");
        let squat = tmp.join(cache_dir_name());
        std::fs::create_dir(&squat).unwrap();
        let fifo = squat.join(cached_name());
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        chmod(&squat, mode);
        std::os::unix::fs::chown(&squat, Some(NOBODY), Some(NOBODY)).unwrap();
        std::os::unix::fs::chown(&fifo, Some(NOBODY), Some(NOBODY)).unwrap();

        let c = Collector::start(Behaviour::Accept);
        let run = jvm::report_in_jvm_under(&[], &[tmpdir_option(&tmp)], &conf(&c), &[]).unwrap();
        assert_one_report(&c, &run);
        assert_eq!(names_in(&tmp), vec![cache_dir_name()], "{}", run.output);
        assert_eq!(names_in(&squat), vec![cached_name()], "mode {mode:o}");
        let meta = std::fs::symlink_metadata(&fifo).unwrap();
        assert!(meta.file_type().is_fifo(), "mode {mode:o}");
        assert_eq!(meta.uid(), NOBODY);
        let meta = std::fs::symlink_metadata(&squat).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (NOBODY, mode));
    }
}

/// This user's own cache directory opened to others (0755) is not used
/// either (nor changed): the library is copied for this JVM alone.
#[test]
fn a_cache_directory_open_to_others_is_not_used() {
    if ran_as_child() {
        return;
    }
    let tmp = support::temp_dir("loader-open-cache");
    let dir = tmp.join(cache_dir_name());
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o755);
    let c = Collector::start(Behaviour::Accept);
    let run = jvm::report_in_jvm_under(&[], &[tmpdir_option(&tmp)], &conf(&c), &[]).unwrap();
    assert_one_report(&c, &run);
    assert_eq!(names_in(&tmp), vec![cache_dir_name()], "{}", run.output);
    assert_eq!(names_in(&dir), Vec::<String>::new());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o755);
}

/// In this user's cache, what is under the library's name and is not a
/// private regular file of the right size (a link to another file, a
/// truncated copy) is replaced by a fresh copy; a link's target is never
/// written.
#[test]
fn a_link_or_a_truncated_copy_in_the_cache_is_replaced_never_written_through() {
    if ran_as_child() {
        return;
    }
    let victim = support::temp_dir("loader-cache-victim").join("victim");
    std::fs::write(&victim, "not the library").unwrap();
    for case in ["link", "truncated", "readable by others"] {
        let tmp = support::temp_dir("loader-cache-bad");
        let dir = tmp.join(cache_dir_name());
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o700);
        let lib = dir.join(cached_name());
        match case {
            "link" => std::os::unix::fs::symlink(&victim, &lib).unwrap(),
            "truncated" => {
                std::fs::write(&lib, "\x7fELF").unwrap();
                chmod(&lib, 0o600);
            }
            _ => {
                // The right size, but open to others: not trusted.
                std::fs::write(&lib, vec![0u8; jar_digest().1 as usize]).unwrap();
                chmod(&lib, 0o644);
            }
        }
        let c = Collector::start(Behaviour::Accept);
        let run = jvm::report_in_jvm_under(&[], &[tmpdir_option(&tmp)], &conf(&c), &[]).unwrap();
        assert_one_report(&c, &run);
        assert_private_cache(&tmp);
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "not the library",
            "{case}"
        );
    }
}

/// A JVM whose class path is `jar` alone, in a temporary directory of its
/// own, reporting to a fresh collector; it returned at once and left nothing.
fn report_with_jar_alone(jar: &Path) -> (Collector, PathBuf, jvm::ChildRun) {
    let c = Collector::start(Behaviour::Accept);
    let tmp = support::temp_dir("loader-jar-alone-tmp");
    let options = [
        tmpdir_option(&tmp),
        format!("-Djava.class.path={}", jar.display()),
    ];
    let run = jvm::report_in_jvm_under(&[], &options, &conf(&c), &[]).unwrap();
    run.assert_returned_at_once_and_left_nothing();
    (c, tmp, run)
}

/// A jar whose library does not match the digest its loader was built with
/// (a damaged or tampered jar): one WARN that says so, nothing loaded,
/// nothing sent, and nothing left in the cache under the library's name.
#[test]
fn a_library_that_does_not_match_its_digest_is_never_loaded() {
    if ran_as_child() {
        return;
    }
    let (hex, size) = jar_digest();
    let stage = support::temp_dir("loader-damaged-jar");
    let jar = stage.join("damaged.jar");
    std::fs::copy(support::jar(), &jar).unwrap();
    let entry = format!("native/{}/{LIB}", host_platform());
    std::fs::create_dir_all(stage.join("native").join(host_platform())).unwrap();
    // The jar's library with one byte changed in its middle: the same size.
    let mut damaged = library_in(&jar);
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x5a;
    std::fs::write(stage.join(&entry), &damaged).unwrap();
    let wrong = sha256_of(&stage.join(&entry));
    assert_ne!(wrong, hex);
    let updated = Command::new("jar")
        .args(["--update", "--file"])
        .arg(&jar)
        .arg("-C")
        .arg(&stage)
        .arg(&entry)
        .status()
        .expect("run jar (a JDK)");
    assert!(updated.success());

    let (c, tmp, run) = report_with_jar_alone(&jar);
    let w = run.one_warning("native library cannot be loaded");
    let says = format!(
        "is damaged: {size} bytes with SHA-256 {wrong}, where the jar names {size} bytes with SHA-256 {hex}"
    );
    assert!(w.contains(&says), "{w}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.connections(), 0);
    assert_eq!(names_in(&tmp), vec![cache_dir_name()]);
    assert_eq!(names_in(&tmp.join(cache_dir_name())), Vec::<String>::new());
}

/// A jar that lacks the loader's class (damaged in another way): the sender
/// thread says so in one WARN, never with the JVM's uncaught-exception
/// trace; nothing is sent.
#[test]
fn a_jar_without_the_loaders_class_is_one_warning() {
    if ran_as_child() {
        return;
    }
    let stage = support::temp_dir("loader-no-class");
    let classes = stage.join("classes");
    let unzipped = Command::new("unzip")
        .arg("-q")
        .arg(support::jar())
        .arg("-d")
        .arg(&classes)
        .status()
        .expect("run unzip (apt-get install unzip)");
    assert!(unzipped.success());
    std::fs::remove_file(classes.join("com/pingcap/tispark/telemetry/NativeLoader.class")).unwrap();
    let jar = stage.join("no-loader.jar");
    let made = Command::new("jar")
        .args(["--create", "--file"])
        .arg(&jar)
        .arg("-C")
        .arg(&classes)
        .arg(".")
        .status()
        .expect("run jar (a JDK)");
    assert!(made.success());

    let (c, _tmp, run) = report_with_jar_alone(&jar);
    run.one_warning(
        "Telemetry is off for this application: java.lang.NoClassDefFoundError: \
         com/pingcap/tispark/telemetry/NativeLoader",
    );
    assert!(
        !run.output.contains("Exception in thread"),
        "{}",
        run.output
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.connections(), 0);
}

/// A JVM given `tmp` as its temporary directory: one WARN that the library
/// cannot be loaded, saying `says`; nothing sent, nothing created in `tmp`.
fn assert_tmpdir_refused(tmp: &Path, says: &str) {
    let c = Collector::start(Behaviour::Accept);
    let run = jvm::report_in_jvm_under(&[], &[tmpdir_option(tmp)], &conf(&c), &[]).unwrap();
    run.assert_returned_at_once_and_left_nothing();
    let w = run.one_warning("native library cannot be loaded");
    assert!(w.contains(says), "{w}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.connections(), 0);
    assert_eq!(names_in(tmp), Vec::<String>::new());
}

#[test]
fn a_tmpdir_others_may_write_without_the_sticky_bit_is_refused_with_one_warning() {
    if ran_as_child() {
        return;
    }
    let tmp = support::temp_dir("loader-open").join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    chmod(&tmp, 0o777);
    let says = format!(
        "the temporary directory {} is writable by other users and not sticky, so one of them \
         could replace the library before it is loaded; set \
         -Dtispark.telemetry.native.tmpdir=<a directory other users cannot write to>",
        tmp.display()
    );
    assert_tmpdir_refused(&tmp, &says);
}

/// A temporary directory of another user (here `nobody`'s, closed to
/// everyone else: root can still write in it) is refused before anything is
/// created in it: its owner could rename our directory and put another
/// library in its place between the checks and the load.
#[test]
fn a_tmpdir_of_another_user_is_refused_with_one_warning() {
    if ran_as_child() {
        return;
    }
    require_root("the temporary directory is given to nobody with chown");
    let tmp = support::temp_dir("loader-others").join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    chmod(&tmp, 0o700);
    std::os::unix::fs::chown(&tmp, Some(NOBODY), Some(NOBODY)).unwrap();
    let says = format!(
        "the temporary directory {} belongs to another user (uid {NOBODY}), who could replace \
         the library before it is loaded; set -Dtispark.telemetry.native.tmpdir=<a directory \
         of this user's or root's>",
        tmp.display()
    );
    assert_tmpdir_refused(&tmp, &says);
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
    if ran_as_child() {
        return;
    }
    require_root("musl's loader is mounted into /lib in a private mount namespace");
    let c = Collector::start(Behaviour::Accept);
    let wrapper = with_musl_loader_installed();
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let run = jvm::report_in_jvm_under(&wrapper, &[], &conf(&c), &[]).unwrap();
    let loader = format!("/lib/ld-musl-{}.so.1", std::env::consts::ARCH);
    assert_eq!(
        run.value("MUSL_LOADER_FILE"),
        Some(loader),
        "{}",
        run.output
    );
    assert_one_report(&c, &run);
}

/// A minimal 64-bit little-endian ELF file: a header and one program header
/// of `p_type`, pointing at `interpreter` (NUL-terminated) at `offset`.
fn elf(p_type: u32, interpreter: &str, offset: usize) -> Vec<u8> {
    let mut f = vec![0u8; offset.max(120)];
    f[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    f[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    f[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
    let size = interpreter.len() as u64 + 1;
    f[64..68].copy_from_slice(&p_type.to_le_bytes());
    f[72..80].copy_from_slice(&(offset as u64).to_le_bytes()); // p_offset
    f[96..104].copy_from_slice(&size.to_le_bytes()); // p_filesz
    f.truncate(offset);
    f.extend_from_slice(interpreter.as_bytes());
    f.push(0);
    f
}

#[test]
fn musl_is_judged_from_the_program_interpreter_and_only_on_positive_evidence() {
    let dir = support::temp_dir("loader-elf");
    let files = [
        ("glibc", elf(3, "/lib64/ld-linux-x86-64.so.2", 120), "false"),
        ("musl", elf(3, "/lib/ld-musl-x86_64.so.1", 120), "true"),
        ("musl_arm", elf(3, "/lib/ld-musl-aarch64.so.1", 120), "true"),
        // A static program: no PT_INTERP (here a PT_LOAD), nothing to judge from.
        ("static", elf(1, "/lib/ld-musl-x86_64.so.1", 120), "null"),
        // Past the first 8 KiB, which is all that is read.
        ("far", elf(3, "/lib/ld-musl-x86_64.so.1", 10_000), "null"),
        ("script", b"#!/bin/sh\nexit 0\n".to_vec(), "null"),
    ];
    let mut env = vec![("TT_ELF_DIR", dir.display().to_string())];
    let mut cases = String::new();
    for (case, bytes, _) in &files {
        std::fs::write(dir.join(case), bytes).unwrap();
        cases.push_str(case);
        cases.push(' ');
    }
    cases.push_str("/proc/self/exe");
    env.push(("TT_ELF_CASES", cases));
    let Some(run) = jvm::isolated(&env, || {
        let vm = jvm::start_jvm(&[]);
        let mut env = vm.attach_current_thread().unwrap();
        let dir = PathBuf::from(var("TT_ELF_DIR"));
        for case in var("TT_ELF_CASES").split(' ') {
            let path = if case.starts_with('/') {
                PathBuf::from(case)
            } else {
                dir.join(case)
            };
            let path = env.new_string(path.display().to_string()).unwrap();
            let musl = env
                .call_static_method(
                    "com/pingcap/tispark/telemetry/NativeLoader",
                    "muslByInterpreter",
                    "(Ljava/lang/String;)Ljava/lang/Boolean;",
                    &[JValue::Object(&path)],
                )
                .unwrap()
                .l()
                .unwrap();
            let shown = if musl.is_null() {
                "null".to_string()
            } else {
                let s = env
                    .call_method(&musl, "toString", "()Ljava/lang/String;", &[])
                    .unwrap()
                    .l()
                    .unwrap();
                env.get_string(&s.into()).unwrap().into()
            };
            println!("MUSL_{case}={shown}");
        }
    }) else {
        return;
    };
    run.assert_clean();
    for (case, _, expected) in &files {
        assert_eq!(
            run.value(&format!("MUSL_{case}")).as_deref(),
            Some(*expected),
            "{case}: {}",
            run.output
        );
    }
    // This (glibc) test binary, the JVM's process here.
    assert_eq!(
        run.value("MUSL_/proc/self/exe").as_deref(),
        Some("false"),
        "{}",
        run.output
    );
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
    require_root("musl's loader is mounted into /lib in a private mount namespace");
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
         (see PLATFORMS in java/src/com/pingcap/tispark/telemetry/Names.java)\n"
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

// ---------------------------------------------------------------------------
// (C) The caller's thread never waits on the conf object.

/// Conf objects whose reads block until the test releases them.
const BLOCKING_JAVA: &str = include_str!("java/Blocking.java");

fn var(name: &str) -> String {
    std::env::var(name).unwrap()
}

/// The child's JVM, with the jar and the test's compiled classes.
fn start_jvm_with(classes: &str) -> jni::JavaVM {
    jvm::start_jvm_without_the_jar(&[format!(
        "-Djava.class.path={}:{classes}",
        support::jar().display()
    )])
}

fn compiled_classes() -> String {
    std::env::var("TT_CLASSES").unwrap_or_else(|_| {
        jvm::compile_java(&[("Blocking.java", BLOCKING_JAVA)])
            .display()
            .to_string()
    })
}

#[test]
fn a_conf_whose_reads_block_never_blocks_the_caller() {
    let classes = compiled_classes();
    for case in ["get_string_string", "map_subclass", "synchronized_map"] {
        let c = Collector::start(Behaviour::Accept);
        let env = [
            ("TT_CASE", case.to_string()),
            ("TT_CLASSES", classes.clone()),
            ("TT_URL", c.url(REPORT_PATH)),
            (
                "TT_STATE",
                support::temp_dir("loader-block").display().to_string(),
            ),
        ];
        let Some(run) = jvm::isolated(&env, blocking_conf_scenario) else {
            return;
        };
        assert!(
            !run.output.contains("WATCHDOG"),
            "{case}: report() blocked on the conf:\n{}",
            run.output
        );
        assert_one_report(&c, &run);
        let read_on = match case {
            "synchronized_map" => "none", // not recorded: the monitor is the JDK's
            _ => "tispark-telemetry-sender",
        };
        assert_eq!(
            run.value("CONF_READ_ON").as_deref(),
            Some(read_on),
            "{case}: {}",
            run.output
        );
    }
}

fn blocking_conf_scenario() {
    let vm = start_jvm_with(&var("TT_CLASSES"));
    let mut env = vm.attach_current_thread().unwrap();
    let (url, state) = (var("TT_URL"), var("TT_STATE"));
    let values = jvm::java_map(&mut env, &[(ENABLE, "true"), (URL, &url), (STATE, &state)]);
    let values = JValue::Object(&values);
    let conf = match var("TT_CASE").as_str() {
        "get_string_string" => env
            .new_object("Blocking$Conf", "(Ljava/util/Map;)V", &[values])
            .unwrap(),
        "map_subclass" => env
            .new_object("Blocking$SlowMap", "(Ljava/util/Map;)V", &[values])
            .unwrap(),
        "synchronized_map" => {
            let map = env
                .call_static_method(
                    "java/util/Collections",
                    "synchronizedMap",
                    "(Ljava/util/Map;)Ljava/util/Map;",
                    &[values],
                )
                .unwrap()
                .l()
                .unwrap();
            env.call_static_method(
                "Blocking",
                "holdMonitor",
                "(Ljava/lang/Object;)V",
                &[JValue::Object(&map)],
            )
            .unwrap();
            map
        }
        other => panic!("no case {other}"),
    };
    // A caller blocked on the conf would hang the test: a watchdog ends it instead.
    let returned = Arc::new(AtomicBool::new(false));
    let watched = returned.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        if !watched.load(Ordering::SeqCst) {
            println!("WATCHDOG: report() was still blocked after 5 s");
            std::process::exit(3);
        }
    });
    let start = Instant::now();
    jvm::report(&mut env, &conf, None);
    println!("REPORT_RETURNED_US={}", start.elapsed().as_micros());
    returned.store(true, Ordering::SeqCst);
    // The sender thread is now blocked on the conf; released, it reports.
    std::thread::sleep(Duration::from_millis(300));
    let read_on = env
        .get_static_field("Blocking", "readOn", "Ljava/lang/String;")
        .unwrap()
        .l()
        .unwrap();
    let read_on: String = env.get_string(&read_on.into()).unwrap().into();
    println!("CONF_READ_ON={read_on}");
    env.call_static_method("Blocking", "release", "()V", &[])
        .unwrap();
    println!("FLUSHED={}", jvm::flush(&mut env, 15_000));
    println!(
        "SENDER_THREADS_LEFT={}",
        jvm::wait_no_threads_named("tispark-telemetry-sender", Duration::from_secs(2))
    );
}

#[test]
fn a_switch_that_is_off_loads_nothing_and_decides_nothing() {
    let c = Collector::start(Behaviour::Accept);
    let env = [
        ("TT_URL", c.url(REPORT_PATH)),
        (
            "TT_STATE",
            support::temp_dir("loader-off").display().to_string(),
        ),
    ];
    let Some(run) = jvm::isolated(&env, off_then_on_scenario) else {
        return;
    };
    assert_one_report(&c, &run);
    for (step, thread, mapped) in [
        ("EMPTY_MAP", "false", "false"),
        ("FALSE_MAP", "false", "false"),
        // Not a map read on the caller's thread: the sender reads it, and stops.
        ("FALSE_PROPERTIES", "true", "false"),
        ("ON_MAP", "true", "true"),
    ] {
        assert_eq!(
            run.value(&format!("{step}_SENDER_STARTED")).as_deref(),
            Some(thread),
            "{step}: {}",
            run.output
        );
        assert_eq!(
            run.value(&format!("{step}_LIBRARY_MAPPED")).as_deref(),
            Some(mapped),
            "{step}: {}",
            run.output
        );
    }
}

fn off_then_on_scenario() {
    let vm = jvm::start_jvm(&[]);
    let mut env = vm.attach_current_thread().unwrap();
    let (url, state) = (var("TT_URL"), var("TT_STATE"));
    let properties = env.new_object("java/util/Properties", "()V", &[]).unwrap();
    for (k, v) in [(ENABLE, " false "), (URL, url.as_str())] {
        let (k, v) = (env.new_string(k).unwrap(), env.new_string(v).unwrap());
        env.call_method(
            &properties,
            "setProperty",
            "(Ljava/lang/String;Ljava/lang/String;)Ljava/lang/Object;",
            &[JValue::Object(&k), JValue::Object(&v)],
        )
        .unwrap();
    }
    let steps: Vec<(&str, JObject)> = vec![
        ("EMPTY_MAP", jvm::java_map(&mut env, &[(URL, &url)])),
        (
            "FALSE_MAP",
            jvm::java_map(&mut env, &[(ENABLE, "false"), (URL, &url)]),
        ),
        ("FALSE_PROPERTIES", properties),
        (
            "ON_MAP",
            jvm::java_map(&mut env, &[(ENABLE, "true"), (URL, &url), (STATE, &state)]),
        ),
    ];
    for (step, conf) in steps {
        jvm::report(&mut env, &conf, None);
        assert!(jvm::flush(&mut env, 15_000));
        // JNI reads the private field: was a sender thread ever started?
        let sender = env
            .get_static_field(jvm::API, "sender", "Ljava/lang/Thread;")
            .unwrap()
            .l()
            .unwrap();
        println!("{step}_SENDER_STARTED={}", !sender.is_null());
        // The library is mapped from this user's cache, named by its digest.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        println!(
            "{step}_LIBRARY_MAPPED={}",
            maps.contains("/libtispark_telemetry-")
        );
    }
    println!("REPORT_RETURNED_US=0");
    println!("FLUSHED={}", jvm::flush(&mut env, 15_000));
    println!(
        "SENDER_THREADS_LEFT={}",
        jvm::wait_no_threads_named("tispark-telemetry-sender", Duration::from_secs(2))
    );
}
