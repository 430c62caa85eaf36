//! The library's small state directory on the host: the track id that lets
//! the same host keep the same id across applications (and, see `audit`, the
//! record of what was sent).
//!
//! Location, first that is set: the conf key `spark.tispark.telemetry.state_dir`,
//! the environment variable `TISPARK_TELEMETRY_STATE_DIR`,
//! `$XDG_STATE_HOME/tispark-telemetry`, `$HOME/.local/state/tispark-telemetry`.

use crate::files::{self, Links, ReadError};
use std::path::{Path, PathBuf};

pub const STATE_DIR_ENV: &str = "TISPARK_TELEMETRY_STATE_DIR";
const TRACK_ID_FILE: &str = "track_id";
const TRACK_ID_PREFIX: &str = "trkid_";
const APP_ID_PREFIX: &str = "appid_";

/// Where state is kept, from the conf value and the environment.
pub fn resolve_dir(
    conf_value: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    let non_empty = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    if let Some(dir) =
        non_empty(conf_value.map(str::to_string)).or_else(|| non_empty(env(STATE_DIR_ENV)))
    {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = non_empty(env("XDG_STATE_HOME")) {
        return Some(Path::new(&xdg).join("tispark-telemetry"));
    }
    non_empty(env("HOME")).map(|home| Path::new(&home).join(".local/state/tispark-telemetry"))
}

/// A track id and how it was obtained, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackId {
    pub id: String,
    /// Set when the persisted id could not be used; says why, for one WARN.
    pub warning: Option<String>,
}

/// A track id file is a few dozen bytes; anything larger is corrupt.
const TRACK_ID_LIMIT: u64 = 256;

/// The host's persisted track id, created on first use. A corrupt or
/// unreadable id file (anything but a small regular file: a link, a FIFO, a
/// directory, garbage) is replaced, with a warning. When the state directory
/// cannot be used (not private, not writable), falls back to
/// `appid_<application id>` as TiSpark does.
pub fn track_id(dir: Option<&Path>, app_id: Option<&str>) -> TrackId {
    let Some(dir) = dir else {
        return fallback(
            app_id,
            "no state directory could be found (HOME is unset)".to_string(),
        );
    };
    if let Err(why) = files::private_dir(dir) {
        return fallback(
            app_id,
            format!("{why}: neither the track id nor the audit trail can be kept there"),
        );
    }
    let file = dir.join(TRACK_ID_FILE);
    // Another driver may create the file between our read and our create:
    // then its id is read on the next round. Bounded, whatever the file is.
    let mut warning = None;
    for _ in 0..3 {
        match files::read_bounded(&file, TRACK_ID_LIMIT, Links::Refuse) {
            Ok(content) => match std::str::from_utf8(&content).ok().and_then(valid_track_id) {
                Some(id) => return TrackId { id, warning: None },
                None => {
                    warning = Some(format!(
                        "The telemetry track id file {} is corrupt; it is replaced.",
                        crate::log_line::quoted_path(&file)
                    ));
                    break;
                }
            },
            Err(ReadError::NotFound) => {
                let id = new_track_id();
                match files::create_private(dir, TRACK_ID_FILE, id.as_bytes()) {
                    Ok(true) => return TrackId { id, warning: None },
                    Ok(false) => continue,
                    Err(e) => return unwritable(dir, app_id, e),
                }
            }
            Err(e) => {
                warning = Some(format!(
                    "The telemetry track id file {} cannot be used ({e}); it is replaced.",
                    crate::log_line::quoted_path(&file)
                ));
                break;
            }
        }
    }
    let id = new_track_id();
    match files::write_private(dir, TRACK_ID_FILE, id.as_bytes()) {
        Ok(()) => TrackId { id, warning },
        Err(e) => unwritable(dir, app_id, e),
    }
}

fn unwritable(dir: &Path, app_id: Option<&str>, e: std::io::Error) -> TrackId {
    fallback(
        app_id,
        format!(
            "the state directory {} cannot be written ({e}): neither the track id nor the \
             audit trail can be kept there",
            crate::log_line::quoted_path(dir)
        ),
    )
}

/// Replaces the host's track id with a new random one.
pub fn reset_track_id(dir: &Path) -> Result<String, String> {
    files::private_dir(dir)?;
    let id = new_track_id();
    files::write_private(dir, TRACK_ID_FILE, id.as_bytes()).map_err(|e| {
        format!(
            "the track id cannot be written in {} ({e})",
            crate::log_line::quoted_path(dir)
        )
    })?;
    Ok(id)
}

/// The stored track id, if there is a valid one in a private state directory
/// (never creates anything).
pub fn stored_track_id(dir: &Path) -> Option<String> {
    if files::existing_private_dir(dir) != Ok(true) {
        return None;
    }
    files::read_bounded(&dir.join(TRACK_ID_FILE), TRACK_ID_LIMIT, Links::Refuse)
        .ok()
        .and_then(|c| String::from_utf8(c).ok())
        .and_then(|c| valid_track_id(&c))
}

fn new_track_id() -> String {
    format!("{TRACK_ID_PREFIX}{}", uuid::Uuid::new_v4())
}

fn valid_track_id(content: &str) -> Option<String> {
    let id = content.trim();
    let uuid = id.strip_prefix(TRACK_ID_PREFIX)?;
    uuid::Uuid::parse_str(uuid).ok().map(|_| id.to_string())
}

fn fallback(app_id: Option<&str>, why: String) -> TrackId {
    let id = match app_id {
        Some(app) => format!("{APP_ID_PREFIX}{app}"),
        // No application id either: an id for this report only.
        None => new_track_id(),
    };
    TrackId {
        warning: Some(format!("Telemetry uses the track id {id:?} because {why}.")),
        id,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs;

    /// A new empty directory for a unit test (the audit trail's tests use it
    /// too), removed with what is in it when the guard is dropped.
    pub(crate) fn temp_dir(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("tt-state-{name}-"))
            .tempdir()
            .unwrap()
    }

    #[test]
    fn the_same_host_keeps_its_track_id() {
        let dir_tmp = temp_dir("keep");
        let dir = dir_tmp.path().to_path_buf();
        let first = track_id(Some(&dir), Some("app-1"));
        let second = track_id(Some(&dir), Some("app-2"));
        assert!(first.id.starts_with("trkid_"), "{first:?}");
        assert_eq!(first.id, second.id);
        assert_eq!(first.warning, None);
    }

    #[test]
    fn drivers_starting_together_on_a_fresh_host_agree_on_one_id() {
        for round in 0..20 {
            let dir_tmp = temp_dir(&format!("race-{round}"));
            let dir = dir_tmp.path().to_path_buf();
            let barrier = std::sync::Barrier::new(8);
            let ids: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            track_id(Some(&dir), None).id
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
            assert_eq!(stored_track_id(&dir).as_ref(), Some(&ids[0]));
        }
    }

    #[test]
    fn a_corrupt_id_file_is_replaced_with_a_warning() {
        let dir_tmp = temp_dir("corrupt");
        let dir = dir_tmp.path().to_path_buf();
        fs::write(dir.join(TRACK_ID_FILE), b"\xff\xfe not an id").unwrap();
        let t = track_id(Some(&dir), None);
        assert!(t.id.starts_with("trkid_"));
        assert!(t.warning.unwrap().contains("replaced"));
        assert_eq!(stored_track_id(&dir), Some(t.id));
    }

    #[test]
    fn an_unwritable_dir_falls_back_to_the_application_id() {
        let parent_tmp = temp_dir("ro");
        let parent = parent_tmp.path().to_path_buf();
        let file_in_the_way = parent.join("state");
        fs::write(&file_in_the_way, b"a file, not a directory").unwrap();
        let t = track_id(Some(&file_in_the_way), Some("local-1764000000000"));
        assert_eq!(t.id, "appid_local-1764000000000");
        assert!(t.warning.is_some());
    }

    /// Each broken state of the id file: the report gets a fresh id, a WARN
    /// says the file was replaced, and the file is then a private regular file.
    #[cfg(unix)]
    #[test]
    fn no_state_of_the_id_file_crashes_or_stalls_and_each_is_replaced() {
        use std::os::unix::fs::{symlink, MetadataExt};
        let cases: Vec<(&str, Box<dyn Fn(&Path)>)> = vec![
            (
                "dangling link",
                Box::new(|f| symlink("/nonexistent/track_id", f).unwrap()),
            ),
            ("link loop", Box::new(|f| symlink(f, f).unwrap())),
            (
                "link to a device",
                Box::new(|f| symlink("/dev/zero", f).unwrap()),
            ),
            ("FIFO", Box::new(|f| crate::files::tests::mkfifo(f))),
            ("empty", Box::new(|f| fs::write(f, b"").unwrap())),
            (
                "huge",
                Box::new(|f| fs::File::create(f).unwrap().set_len(1 << 30).unwrap()),
            ),
            (
                "not UTF-8",
                Box::new(|f| fs::write(f, b"trkid_\xff\xfe").unwrap()),
            ),
        ];
        for (what, make) in cases {
            let dir_tmp = temp_dir("hostile-id");
            let dir = dir_tmp.path().to_path_buf();
            let file = dir.join(TRACK_ID_FILE);
            make(&file);
            let t = track_id(Some(&dir), Some("app-1"));
            assert!(t.id.starts_with("trkid_"), "{what}: {t:?}");
            let warning = t.warning.unwrap_or_default();
            assert!(warning.contains("it is replaced"), "{what}: {warning}");
            let meta = fs::symlink_metadata(&file).unwrap();
            assert!(meta.is_file(), "{what}: a regular file now");
            assert_eq!(meta.mode() & 0o777, 0o600, "{what}");
            assert_eq!(stored_track_id(&dir), Some(t.id), "{what}");
        }
        assert!(
            !Path::new("/nonexistent/track_id").exists(),
            "no file is created through the link"
        );
    }

    #[test]
    fn a_directory_where_the_id_file_should_be_falls_back_to_the_application_id() {
        let dir_tmp = temp_dir("id-dir");
        let dir = dir_tmp.path().to_path_buf();
        fs::create_dir(dir.join(TRACK_ID_FILE)).unwrap();
        let t = track_id(Some(&dir), Some("local-17"));
        assert_eq!(t.id, "appid_local-17");
        assert!(t.warning.unwrap().contains("cannot be written"));
    }

    #[cfg(unix)]
    #[test]
    fn the_state_directory_and_the_id_file_are_private_from_the_start() {
        use std::os::unix::fs::MetadataExt;
        let dir_tmp = temp_dir("private");
        let dir = dir_tmp.path().join("new/state");
        let t = track_id(Some(&dir), None);
        assert_eq!(t.warning, None);
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let file = fs::metadata(dir.join(TRACK_ID_FILE)).unwrap();
        assert_eq!(file.mode() & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_state_directory_of_another_user_or_writable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            crate::files::effective_uid(),
            0,
            "this test runs as root, to give a directory to another user (uid 65534)"
        );
        let theirs_tmp = temp_dir("theirs");
        let theirs = theirs_tmp.path().to_path_buf();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let t = track_id(Some(&theirs), Some("local-1"));
        assert_eq!(t.id, "appid_local-1");
        let w = t.warning.unwrap();
        assert!(
            w.contains("belongs to uid 65534, not to this user (uid 0)"),
            "{w}"
        );
        assert!(w.contains("spark.tispark.telemetry.state_dir"), "{w}");
        assert_eq!(fs::read_dir(&theirs).unwrap().count(), 0, "nothing written");

        let open_tmp = temp_dir("open");

        let open = open_tmp.path().to_path_buf();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        let t = track_id(Some(&open), Some("local-2"));
        assert_eq!(t.id, "appid_local-2");
        let w = t.warning.unwrap();
        assert!(w.contains("is writable by other users (mode 1777)"), "{w}");
        assert!(w.contains("chmod 700"), "{w}");
        assert_eq!(stored_track_id(&open), None);
    }

    #[test]
    fn looking_up_the_stored_id_creates_nothing() {
        let dir_tmp = temp_dir("lookup");
        let dir = dir_tmp.path().join("not-yet");
        assert_eq!(stored_track_id(&dir), None);
        assert!(!dir.exists(), "status must not create the state directory");
    }

    #[test]
    fn reset_gives_a_new_id() {
        let dir_tmp = temp_dir("reset");
        let dir = dir_tmp.path().to_path_buf();
        let before = track_id(Some(&dir), None).id;
        let after = reset_track_id(&dir).unwrap();
        assert_ne!(before, after);
        assert_eq!(track_id(Some(&dir), None).id, after);
    }

    #[test]
    fn state_dir_prefers_conf_then_env_then_xdg_then_home() {
        let env = |v: &str| match v {
            "HOME" => Some("/home/u".to_string()),
            "XDG_STATE_HOME" => Some("/xdg".to_string()),
            _ => None,
        };
        assert_eq!(resolve_dir(Some("/c"), env), Some(PathBuf::from("/c")));
        assert_eq!(
            resolve_dir(None, env),
            Some(PathBuf::from("/xdg/tispark-telemetry"))
        );
        let home_only = |v: &str| (v == "HOME").then(|| "/home/u".to_string());
        assert_eq!(
            resolve_dir(None, home_only),
            Some(PathBuf::from("/home/u/.local/state/tispark-telemetry"))
        );
        let with_env = |v: &str| (v == STATE_DIR_ENV).then(|| "/e".to_string());
        assert_eq!(resolve_dir(None, with_env), Some(PathBuf::from("/e")));
        assert_eq!(resolve_dir(None, |_| None), None);
    }
}
