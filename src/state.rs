//! The library's small state directory on the host: the track id that lets
//! the same host keep the same id across applications (and, see `audit`, the
//! record of what was sent).
//!
//! Location, first that is set: the conf key `spark.tispark.telemetry.state_dir`,
//! the environment variable `TISPARK_TELEMETRY_STATE_DIR`,
//! `$XDG_STATE_HOME/tispark-telemetry`, `$HOME/.local/state/tispark-telemetry`.

use std::fs;
use std::io::Write;
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

/// The host's persisted track id, created on first use. A corrupt or
/// unreadable id file is replaced (with a warning). When nothing can be
/// written, falls back to `appid_<application id>` as TiSpark does.
pub fn track_id(dir: Option<&Path>, app_id: Option<&str>) -> TrackId {
    let Some(dir) = dir else {
        return fallback(
            app_id,
            "no state directory could be found (HOME is unset)".to_string(),
        );
    };
    let file = dir.join(TRACK_ID_FILE);
    let mut warning = None;
    match fs::read(&file) {
        Ok(content) => match std::str::from_utf8(&content).ok().and_then(valid_track_id) {
            Some(id) => return TrackId { id, warning: None },
            None => {
                warning = Some(format!(
                    "The telemetry track id file {} is corrupt; it is replaced.",
                    file.display()
                ))
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            warning = Some(format!(
                "The telemetry track id file {} cannot be read ({e}); it is replaced.",
                file.display()
            ))
        }
    }
    let id = new_track_id();
    // A first id is created only if no other driver created one meanwhile; a
    // damaged one is replaced.
    let written = if warning.is_none() {
        create_atomically(&file, id.as_bytes())
    } else {
        write_atomically(&file, id.as_bytes()).map(|()| true)
    };
    match written {
        Ok(true) => TrackId { id, warning },
        Ok(false) => match stored_track_id(dir) {
            Some(id) => TrackId { id, warning: None },
            None => track_id(Some(dir), app_id),
        },
        Err(e) => fallback(
            app_id,
            format!(
                "the state directory {} cannot be written ({e}): neither the track id nor the \
                 audit trail can be kept there",
                dir.display()
            ),
        ),
    }
}

/// Replaces the host's track id with a new random one.
pub fn reset_track_id(dir: &Path) -> std::io::Result<String> {
    let id = new_track_id();
    write_atomically(&dir.join(TRACK_ID_FILE), id.as_bytes())?;
    Ok(id)
}

/// The stored track id, if there is a valid one (never creates one).
pub fn stored_track_id(dir: &Path) -> Option<String> {
    fs::read_to_string(dir.join(TRACK_ID_FILE))
        .ok()
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
        warning: Some(format!("Telemetry uses the track id {id} because {why}.")),
        id,
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a
/// crash never leaves a half-written file. Creates the directory if needed.
/// A file that is replaced keeps its permissions.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = write_temporary(path, bytes)?;
    let result = (|| {
        if let Ok(existing) = fs::metadata(path) {
            fs::set_permissions(&tmp, existing.permissions())?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` with `bytes`, complete or not at all, unless it exists:
/// `Ok(false)` when another writer created it first (two drivers starting on
/// a fresh host then agree on one track id). Where hard links are not
/// supported, falls back to [`write_atomically`].
fn create_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    let tmp = write_temporary(path, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(_) => write_atomically(path, bytes).map(|()| true),
    }
}

/// A synced temporary file beside `path` holding `bytes` (the directory is
/// created if needed); removed again if it cannot be written in full.
fn write_temporary(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A new empty directory for a unit test (the audit trail's tests use it too).
    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("tt-state-{name}-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_same_host_keeps_its_track_id() {
        let dir = temp_dir("keep");
        let first = track_id(Some(&dir), Some("app-1"));
        let second = track_id(Some(&dir), Some("app-2"));
        assert!(first.id.starts_with("trkid_"), "{first:?}");
        assert_eq!(first.id, second.id);
        assert_eq!(first.warning, None);
    }

    #[test]
    fn drivers_starting_together_on_a_fresh_host_agree_on_one_id() {
        for round in 0..20 {
            let dir = temp_dir(&format!("race-{round}"));
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
        let dir = temp_dir("corrupt");
        fs::write(dir.join(TRACK_ID_FILE), b"\xff\xfe not an id").unwrap();
        let t = track_id(Some(&dir), None);
        assert!(t.id.starts_with("trkid_"));
        assert!(t.warning.unwrap().contains("replaced"));
        assert_eq!(stored_track_id(&dir), Some(t.id));
    }

    #[test]
    fn an_unwritable_dir_falls_back_to_the_application_id() {
        let parent = temp_dir("ro");
        let file_in_the_way = parent.join("state");
        fs::write(&file_in_the_way, b"a file, not a directory").unwrap();
        let t = track_id(Some(&file_in_the_way), Some("local-1764000000000"));
        assert_eq!(t.id, "appid_local-1764000000000");
        assert!(t.warning.is_some());
    }

    #[test]
    fn reset_gives_a_new_id() {
        let dir = temp_dir("reset");
        let before = track_id(Some(&dir), None).id;
        let after = reset_track_id(&dir).unwrap();
        assert_ne!(before, after);
        assert_eq!(track_id(Some(&dir), None).id, after);
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let file = temp_dir("perm").join("kept");
        fs::write(&file, b"old").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&file, b"new").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o640
        );
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
