//! The OS family and version as OSHI 6.1.6 computes them on Linux
//! (`LinuxOperatingSystem.queryFamilyVersionInfo` and
//! `OperatingSystem.OSVersionInfo`), from the files under a root directory,
//! so that fixtures can stand in for a host. Written from reading OSHI's
//! source; the steps and their order are OSHI's:
//!
//! 1. `/etc/system-release`: its first line containing ` release ` (else
//!    ` VERSION `), split there ([`parse_release`]).
//! 2. `/etc/os-release`: `NAME`, `VERSION` (split at `(`/`)`, else at `, `),
//!    `VERSION_ID` while the version is still unknown.
//! 3. (OSHI runs `lsb_release -a` here; this library starts no process.)
//! 4. `/etc/lsb-release`: `DISTRIB_DESCRIPTION`, `DISTRIB_ID`,
//!    `DISTRIB_RELEASE`, `DISTRIB_CODENAME`.
//! 5. Another `/etc/*-release`, `*-version`, `*_release`, `*_version` file,
//!    then `/etc/release`, then `/etc/issue`; when none parses, a family made
//!    from the file's name and an unknown version.
//!
//! The version string is `<version> (<code name>) build <kernel>`, with
//! `unknown` for a part that was not found (OSHI's `Constants.UNKNOWN`), the
//! code name left out only when blank, and the kernel the first word of
//! `/proc/version` that is neither `Linux` nor `version`.

use crate::conf::trim_like_java;
use std::path::Path;

/// OSHI's `Constants.UNKNOWN`: what a missing version or code name reads as.
pub const OSHI_UNKNOWN: &str = "unknown";

/// Release files are a few lines; anything larger is not one.
const RELEASE_FILE_LIMIT: u64 = 64 * 1024;

/// OS family, version and code name, as OSHI's `Triplet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub family: String,
    pub version: String,
    pub code_name: String,
}

impl Release {
    fn new(family: &str, version: &str, code_name: &str) -> Release {
        Release {
            family: family.to_string(),
            version: version.to_string(),
            code_name: code_name.to_string(),
        }
    }
}

/// The `(os, version)` pair of the report for the host whose files are under `root`.
pub fn os_and_version(root: &Path) -> (String, String) {
    let release = query_release(root);
    let build = read_lines(&root.join("proc/version"))
        .and_then(|lines| lines.first().and_then(|l| kernel_build(l)));
    let version = version_string(&release.version, &release.code_name, build.as_deref());
    (release.family, version)
}

/// OSHI's `OSVersionInfo.toString()` for Linux.
pub fn version_string(version: &str, code_name: &str, build: Option<&str>) -> String {
    let mut out = version.to_string();
    if !is_blank(code_name) {
        out.push_str(" (");
        out.push_str(code_name);
        out.push(')');
    }
    if let Some(build) = build.filter(|b| !is_blank(b)) {
        out.push_str(" build ");
        out.push_str(build);
    }
    out
}

/// The kernel build from the first line of `/proc/version`: the first
/// whitespace-separated word that is not `Linux` or `version`.
pub fn kernel_build(first_line: &str) -> Option<String> {
    java_split_whitespace(first_line)
        .into_iter()
        .find(|w| *w != "Linux" && *w != "version")
        .map(str::to_string)
}

/// OSHI's `queryFamilyVersionCodenameFromReleaseFiles`, without `lsb_release -a`.
pub fn query_release(root: &Path) -> Release {
    let etc = root.join("etc");
    if let Some(r) = read_lines(&etc.join("system-release")).and_then(|l| distrib_release(&l)) {
        return r;
    }
    if let Some(r) = read_lines(&etc.join("os-release")).and_then(|l| os_release(&l)) {
        return r;
    }
    if let Some(r) = read_lines(&etc.join("lsb-release")).and_then(|l| lsb_release(&l)) {
        return r;
    }
    let name = release_file_name(&etc);
    if let Some(r) = read_lines(&etc.join(&name)).and_then(|l| distrib_release(&l)) {
        return r;
    }
    let stripped = name
        .replace("release", "")
        .replace("version", "")
        .replace(['-', '_'], "");
    Release::new(&filename_to_family(&stripped), OSHI_UNKNOWN, OSHI_UNKNOWN)
}

/// A `Distributor release x.x (Codename)` file: the first line containing
/// ` release ` or ` VERSION `, or `None` when no line does.
pub fn distrib_release(lines: &[String]) -> Option<Release> {
    lines.iter().find_map(|line| {
        if line.contains(" release ") {
            Some(parse_release(line, " release "))
        } else if line.contains(" VERSION ") {
            Some(parse_release(line, " VERSION "))
        } else {
            None
        }
    })
}

/// OSHI's `parseRelease`: the family before the delimiter, then version and
/// code name from the text up to the next delimiter, split at `(` and `)`.
pub fn parse_release(line: &str, delimiter: &str) -> Release {
    let parts = java_split(line, |rest| {
        rest.starts_with(delimiter).then_some(delimiter.len())
    });
    let family = trim_like_java(parts[0]);
    let mut version = OSHI_UNKNOWN;
    let mut code_name = OSHI_UNKNOWN;
    if parts.len() > 1 {
        let inner = java_split(parts[1], parenthesis);
        if let Some(v) = inner.first() {
            version = trim_like_java(v);
        }
        if let Some(c) = inner.get(1) {
            code_name = trim_like_java(c);
        }
    }
    Release::new(family, version, code_name)
}

/// `/etc/os-release`: `None` without a `NAME=` line.
pub fn os_release(lines: &[String]) -> Option<Release> {
    let mut family: Option<String> = None;
    let mut version = OSHI_UNKNOWN.to_string();
    let mut code_name = OSHI_UNKNOWN.to_string();
    for line in lines {
        if line.starts_with("VERSION=") {
            let value = unquote(&line.replace("VERSION=", ""));
            let value = trim_like_java(&value);
            let mut split = java_split(value, parenthesis);
            if split.len() <= 1 {
                // Ubuntu's older form: VERSION="14.04.4 LTS, Trusty Tahr"
                split = java_split(value, |rest| rest.starts_with(", ").then_some(2));
            }
            if let Some(v) = split.first() {
                version = trim_like_java(v).to_string();
            }
            if let Some(c) = split.get(1) {
                code_name = trim_like_java(c).to_string();
            }
        } else if line.starts_with("NAME=") && family.is_none() {
            family = Some(trim_like_java(&unquote(&line.replace("NAME=", ""))).to_string());
        } else if line.starts_with("VERSION_ID=") && version == OSHI_UNKNOWN {
            version = trim_like_java(&unquote(&line.replace("VERSION_ID=", ""))).to_string();
        }
    }
    family.map(|family| Release {
        family,
        version,
        code_name,
    })
}

/// `/etc/lsb-release`: `None` without a family (`DISTRIB_ID`, or a
/// `DISTRIB_DESCRIPTION` of the `X release Y (Z)` form).
pub fn lsb_release(lines: &[String]) -> Option<Release> {
    let mut family: Option<String> = None;
    let mut version = OSHI_UNKNOWN.to_string();
    let mut code_name = OSHI_UNKNOWN.to_string();
    for line in lines {
        if line.starts_with("DISTRIB_DESCRIPTION=") {
            let value = unquote(&line.replace("DISTRIB_DESCRIPTION=", ""));
            let value = trim_like_java(&value);
            if value.contains(" release ") {
                let r = parse_release(value, " release ");
                family = Some(r.family);
                if version == OSHI_UNKNOWN {
                    version = r.version;
                }
                if code_name == OSHI_UNKNOWN {
                    code_name = r.code_name;
                }
            }
        } else if line.starts_with("DISTRIB_ID=") && family.is_none() {
            family = Some(trim_like_java(&unquote(&line.replace("DISTRIB_ID=", ""))).to_string());
        } else if line.starts_with("DISTRIB_RELEASE=") && version == OSHI_UNKNOWN {
            version = trim_like_java(&unquote(&line.replace("DISTRIB_RELEASE=", ""))).to_string();
        } else if line.starts_with("DISTRIB_CODENAME=") && code_name == OSHI_UNKNOWN {
            code_name =
                trim_like_java(&unquote(&line.replace("DISTRIB_CODENAME=", ""))).to_string();
        }
    }
    family.map(|family| Release {
        family,
        version,
        code_name,
    })
}

/// OSHI's `getReleaseFilename`, as a name inside `/etc`: the first
/// `*-release`, `*-version`, `*_release` or `*_version` entry other than
/// os-, lsb- and system-release (OSHI takes the directory's order; here the
/// names are sorted, so the choice is the same on every run), else
/// `release` when it exists, else `issue`.
pub fn release_file_name(etc: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(etc)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            (n.ends_with("-release")
                || n.ends_with("-version")
                || n.ends_with("_release")
                || n.ends_with("_version"))
                && !(n.ends_with("os-release")
                    || n.ends_with("lsb-release")
                    || n.ends_with("system-release"))
        })
        .collect();
    names.sort();
    if let Some(first) = names.into_iter().next() {
        return first;
    }
    if etc.join("release").exists() {
        return "release".to_string();
    }
    "issue".to_string()
}

/// OSHI's `filenameToFamily` with its `oshi.linux.filename.properties`.
pub fn filename_to_family(name: &str) -> String {
    const KNOWN: [(&str, &str); 24] = [
        ("blackcat", "Black Cat"),
        ("bluewhite64", "BlueWhite64"),
        ("e-smith", "SME Server"),
        ("eos", "FreeEOS"),
        ("hlfs", "HLFS"),
        ("lfs", "Linux-From-Scratch"),
        ("linuxppc", "Linux-PPC"),
        ("meego", "MeeGo"),
        ("mandakelinux", "Mandrake"),
        ("mklinux", "MkLinux"),
        ("nld", "Novell Linux Desktop"),
        ("novell", "SUSE Linux"),
        // OSHI's table has `SuSE`, and looks names up in lower case: never found.
        ("SuSE", "SUSE Linux"),
        ("pld", "PLD"),
        ("redhat", "Red Hat Linux"),
        ("sles", "SUSE Linux ES9"),
        ("sun", "Sun JDS"),
        ("synoinfo", "Synology"),
        ("tinysofa", "Tiny Sofa"),
        ("turbolinux", "TurboLinux"),
        ("ultrapenguin", "UltraPenguin"),
        ("va", "VA-Linux"),
        ("vmware", "VMWareESX"),
        ("yellowdog", "Yellow Dog"),
    ];
    if name.is_empty() {
        return "Solaris".to_string();
    }
    if name.eq_ignore_ascii_case("issue") {
        return "Unknown".to_string();
    }
    let lower = name.to_lowercase();
    if let Some((_, family)) = KNOWN.iter().find(|(k, _)| *k == lower) {
        return family.to_string();
    }
    let mut chars = name.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    format!("{}{}", first.unwrap_or_default(), chars.as_str())
}

/// The lines of a release file, as Java's `Files.readAllLines` gives them
/// (UTF-8; a file that is not is no lines at all), or `None` when it cannot
/// be read. Bounded, regular files only.
pub fn read_lines(path: &Path) -> Option<Vec<String>> {
    let bytes =
        crate::files::read_bounded(path, RELEASE_FILE_LIMIT, crate::files::Links::Follow).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    Some(java_lines(&text))
}

/// Lines split at `\n`, `\r\n` or `\r`, without a last empty line.
fn java_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push(std::mem::take(&mut current)),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(std::mem::take(&mut current));
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// OSHI's `replaceAll("(?:^\")|(?:\"$)", "")`: one quote off each end.
fn unquote(s: &str) -> String {
    let s = s.strip_prefix('"').unwrap_or(s);
    s.strip_suffix('"').unwrap_or(s).to_string()
}

/// Java's `isBlank` as OSHI's `Util.isBlank`: empty (OSHI's own: null or empty).
fn is_blank(s: &str) -> bool {
    s.is_empty()
}

fn parenthesis(rest: &str) -> Option<usize> {
    rest.starts_with(['(', ')']).then_some(1)
}

/// Java's `String.split(regex)` with limit 0: the parts between matches
/// (`matches` gives the length of a match at the start of its argument),
/// trailing empty parts removed; the whole input when nothing matches.
fn java_split(s: &str, matches: impl Fn(&str) -> Option<usize>) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        if !s.is_char_boundary(i) {
            i += 1;
            continue;
        }
        match matches(&s[i..]) {
            Some(len) if len > 0 => {
                parts.push(&s[start..i]);
                i += len;
                start = i;
            }
            _ => i += 1,
        }
    }
    if parts.is_empty() {
        return vec![s];
    }
    parts.push(&s[start..]);
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// Java's `Pattern.compile("\\s+").split(s)`.
fn java_split_whitespace(s: &str) -> Vec<&str> {
    java_split(s, |rest| {
        let n = rest
            .chars()
            .take_while(|c| matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r'))
            .count();
        (n > 0).then_some(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/os");
        let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        all.sort();
        all
    }

    fn lines(text: &str) -> Vec<String> {
        java_lines(text)
    }

    #[test]
    fn every_fixture_host_gives_what_oshi_gives() {
        let all = fixtures();
        assert!(all.len() >= 8, "{all:?}");
        for root in all {
            let expected = std::fs::read_to_string(root.join("expected")).unwrap();
            let mut expected = expected.lines();
            let want = (
                expected.next().unwrap().to_string(),
                expected.next().unwrap().to_string(),
            );
            assert_eq!(os_and_version(&root), want, "{}", root.display());
        }
    }

    #[test]
    fn system_release_wins_over_os_release() {
        let r = distrib_release(&lines("CentOS Linux release 7.9.2009 (Core)\n")).unwrap();
        assert_eq!(r, Release::new("CentOS Linux", "7.9.2009", "Core"));
        // The first line holding the delimiter; " VERSION " as the other delimiter.
        let r = distrib_release(&lines("junk\nFoo VERSION 1.2 (Bar)\nX release 9\n")).unwrap();
        assert_eq!(r, Release::new("Foo", "1.2", "Bar"));
        assert_eq!(distrib_release(&lines("no delimiter here\n")), None);
        // No version after the delimiter: unknown; no parentheses: no code name.
        assert_eq!(
            parse_release("Distro release 5", " release "),
            Release::new("Distro", "5", OSHI_UNKNOWN)
        );
        assert_eq!(
            parse_release("Distro release ", " release "),
            Release::new("Distro", OSHI_UNKNOWN, OSHI_UNKNOWN)
        );
        // Java's split: only the text up to the next delimiter counts.
        assert_eq!(
            parse_release("A release 1 (x) release 2", " release "),
            Release::new("A", "1", "x")
        );
        assert_eq!(
            parse_release("A release (x)", " release "),
            Release::new("A", "", "x")
        );
        assert_eq!(
            parse_release("A release ()", " release "),
            Release::new("A", OSHI_UNKNOWN, OSHI_UNKNOWN)
        );
    }

    #[test]
    fn os_release_forms() {
        let r = os_release(&lines(
            "NAME=\"Ubuntu\"\nVERSION=\"14.04.4 LTS, Trusty Tahr\"\n",
        ));
        assert_eq!(
            r,
            Some(Release::new("Ubuntu", "14.04.4 LTS", "Trusty Tahr"))
        );
        let r = os_release(&lines("NAME=Alpine\nVERSION_ID=3.19.1\n"));
        assert_eq!(r, Some(Release::new("Alpine", "3.19.1", OSHI_UNKNOWN)));
        // VERSION_ID only while the version is unknown; VERSION always.
        let r = os_release(&lines("VERSION=\"2\"\nVERSION_ID=\"7\"\nNAME=A\nNAME=B\n"));
        assert_eq!(r, Some(Release::new("A", "2", OSHI_UNKNOWN)));
        let r = os_release(&lines(
            "VERSION_ID=\"7\"\nVERSION=\"7 (Core)\"\nNAME=\"C\"\n",
        ));
        assert_eq!(r, Some(Release::new("C", "7", "Core")));
        assert_eq!(os_release(&lines("PRETTY_NAME=\"X\"\nVERSION=1\n")), None);
        // One quote off each end, Java's trim.
        let r = os_release(&lines("NAME=\"\"Q\"\"\nVERSION=\" 1 \"\n"));
        assert_eq!(r, Some(Release::new("\"Q\"", "1", OSHI_UNKNOWN)));
    }

    #[test]
    fn lsb_release_forms() {
        let r = lsb_release(&lines(
            "DISTRIB_DESCRIPTION=\"Foo release 3.1 (Bar)\"\nDISTRIB_ID=Baz\nDISTRIB_RELEASE=9\nDISTRIB_CODENAME=q\n",
        ));
        assert_eq!(r, Some(Release::new("Foo", "3.1", "Bar")));
        let r = lsb_release(&lines(
            "DISTRIB_ID=Baz\nDISTRIB_RELEASE=9\nDISTRIB_CODENAME=q\nDISTRIB_DESCRIPTION=\"Foo release 3.1 (Bar)\"\n",
        ));
        assert_eq!(r, Some(Release::new("Foo", "9", "q")));
        assert_eq!(lsb_release(&lines("DISTRIB_RELEASE=9\n")), None);
    }

    #[test]
    fn without_release_files_the_family_comes_from_a_file_name() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let etc = root.join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        assert_eq!(
            query_release(&root),
            Release::new("Unknown", OSHI_UNKNOWN, OSHI_UNKNOWN)
        );
        std::fs::write(etc.join("release"), "nothing to parse\n").unwrap();
        assert_eq!(release_file_name(&etc), "release");
        assert_eq!(
            query_release(&root),
            Release::new("Solaris", OSHI_UNKNOWN, OSHI_UNKNOWN)
        );
        std::fs::write(
            etc.join("gentoo-release"),
            "Gentoo Base System release 2.14\n",
        )
        .unwrap();
        std::fs::write(etc.join("os-release.d"), "").unwrap();
        assert_eq!(
            query_release(&root),
            Release::new("Gentoo Base System", "2.14", OSHI_UNKNOWN)
        );
        std::fs::write(etc.join("arch-release"), "\n").unwrap();
        assert_eq!(
            query_release(&root),
            Release::new("Arch", OSHI_UNKNOWN, OSHI_UNKNOWN)
        );
        assert_eq!(filename_to_family("redhat"), "Red Hat Linux");
        assert_eq!(filename_to_family("Yellowdog"), "Yellow Dog");
        assert_eq!(filename_to_family("SuSE"), "SuSE");
        assert_eq!(filename_to_family("ISSUE"), "Unknown");
        assert_eq!(filename_to_family("slackware"), "Slackware");
    }

    #[test]
    fn version_string_and_kernel_build() {
        assert_eq!(
            version_string("7", "Core", Some("3.10")),
            "7 (Core) build 3.10"
        );
        assert_eq!(version_string("7", "", Some("3.10")), "7 build 3.10");
        assert_eq!(version_string("7", "unknown", None), "7 (unknown)");
        assert_eq!(version_string("7", "x", Some("")), "7 (x)");
        assert_eq!(
            kernel_build("Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)"),
            Some("6.1.0-18-amd64".to_string())
        );
        assert_eq!(
            kernel_build("Linux  \t version   5.4"),
            Some("5.4".to_string())
        );
        // Java's split keeps a leading empty part: OSHI's build is then "", left out.
        assert_eq!(kernel_build(" Linux version 5.4"), Some(String::new()));
        assert_eq!(kernel_build("Linux version"), None);
    }

    #[test]
    fn lines_as_java_reads_them() {
        assert_eq!(java_lines("a\r\nb\rc\n\nd"), ["a", "b", "c", "", "d"]);
        assert_eq!(java_lines(""), Vec::<String>::new());
        assert_eq!(java_split("()", parenthesis), Vec::<&str>::new());
        assert_eq!(java_split("", parenthesis), [""]);
        assert_eq!(java_split("(a)b", parenthesis), ["", "a", "b"]);
        assert_eq!(trim_like_java("\t x \u{1}"), "x");
    }
}
