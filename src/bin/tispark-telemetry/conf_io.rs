//! Reading and rewriting the configuration file without exposing it.
//!
//! `spark-defaults.conf` may hold secrets (keystore passwords), so a rewrite
//! never shows its content to anyone the original file did not: the new copy
//! is created owner-only beside the file, given the original's owner, group,
//! extended attributes (POSIX ACLs, SELinux labels) and mode, and only then
//! written, synced and renamed over the original. A rewrite holds advisory
//! locks (flock) on the file's directory and on the file itself from before
//! it reads until after the rename, so a writer that holds the directory's
//! lock while it appends loses nothing to it. Every read is bounded: a regular file of at most
//! [`MAX_BYTES`], opened without blocking (a FIFO or a device is refused,
//! never waited on).

use std::fs::{File, Metadata, OpenOptions, Permissions, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tispark_telemetry::files::{self, Links, ReadError};

/// The largest configuration file read: Spark's are a few KiB.
pub const MAX_BYTES: u64 = 1024 * 1024;
const MAX_TEXT: &str = "1 MiB";

/// How long a rewrite waits for another holder of its locks to let go.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);
const LOCK_WAIT_TEXT: &str = "5 s";

/// The file's bytes, what `fstat` said of the handle they were read from,
/// and that handle (holding the file's lock when [`read_locked`] read it).
pub struct Contents {
    pub bytes: Vec<u8>,
    pub meta: Metadata,
    file: File,
}

/// Why a file was not rewritten: something failed (exit 1), or the file is
/// one this tool cannot rewrite without losing something (exit 3).
pub enum NotDone {
    Failed(String),
    Refused(String),
}

/// The file at `path` (through a symbolic link), read bounded; `None` when
/// there is none. Each error is one sentence naming the path.
pub fn read(path: &Path) -> Result<Option<Contents>, String> {
    match open(path, Links::Follow)? {
        Some(file) => contents(path, file).map(Some),
        None => Ok(None),
    }
}

/// As [`read`], for a rewrite: the path is already resolved (a link in its
/// place now is refused), and the file is read only once its advisory lock
/// is held, waiting for another holder until `until`. The lock lasts as long
/// as the [`Contents`].
pub fn read_locked(path: &Path, until: Instant) -> Result<Option<Contents>, String> {
    let Some(file) = open(path, Links::Refuse)? else {
        return Ok(None);
    };
    hold(&file, path, until)?;
    contents(path, file).map(Some)
}

/// The regular file at `path` (`files::open_regular`); `None` when there is none.
fn open(path: &Path, links: Links) -> Result<Option<File>, String> {
    match files::open_regular(path, links) {
        Ok(file) => Ok(Some(file)),
        Err(ReadError::NotFound) => Ok(None),
        Err(ReadError::NotRegular) => Err(format!(
            "{} cannot be read: it is {}, not a regular file",
            path.display(),
            std::fs::metadata(path).map_or("not one", |meta| kind_of(&meta))
        )),
        Err(e) => Err(format!("{} cannot be read ({e})", path.display())),
    }
}

fn contents(path: &Path, file: File) -> Result<Contents, String> {
    // Again: a writer that held the lock may have added to the file.
    let meta = file
        .metadata()
        .map_err(|e| format!("{} cannot be read ({e})", path.display()))?;
    let too_large = || {
        format!(
            "{} cannot be read: it is larger than {MAX_TEXT}, the limit for a Spark configuration file",
            path.display()
        )
    };
    if meta.len() > MAX_BYTES {
        return Err(too_large());
    }
    let bytes = files::read_limited(&file, MAX_BYTES)
        .map_err(|e| format!("{} cannot be read ({e})", path.display()))?
        .ok_or_else(too_large)?;
    Ok(Contents { bytes, meta, file })
}

/// An advisory lock, held until dropped (`None`: none could be taken).
pub struct Lock(#[allow(dead_code)] Option<File>);

/// The advisory lock (flock) on `path`'s directory, created first when it is
/// missing (a new file is created in it). Waits for another holder until
/// `until`. The directory, not the file, is what a writer that appends can
/// lock whatever the rewrite does: the file is replaced by a new one, so a
/// lock taken on it may be on the one being replaced.
pub fn lock_dir(path: &Path, until: Instant) -> Result<Lock, String> {
    let dir = dir_of(path);
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("{} cannot be written ({e})", path.display()))?;
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NONBLOCK)
        .open(dir)
    {
        Ok(file) => {
            hold(&file, dir, until)?;
            Ok(Lock(Some(file)))
        }
        // This user may write in it but not read it: no lock, as below.
        Err(e) => {
            without_lock(dir, &e);
            Ok(Lock(None))
        }
    }
}

/// One warning: the lock cannot be taken at all (a file system without
/// flock, as some NFS mounts; a directory this user may not read), so there
/// is no lock a cooperating writer could hold either; the rewrite goes on.
fn without_lock(what: &Path, e: &std::io::Error) {
    log::warn!(
        "{} cannot be locked ({e}); the file is rewritten without that lock",
        what.display()
    );
}

/// Takes `file`'s advisory lock, polling until `until`: a process that holds
/// it for ever (any user who may open the file can) delays a rewrite, never
/// hangs it.
fn hold(file: &File, what: &Path, until: Instant) -> Result<(), String> {
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(TryLockError::WouldBlock) => {
                return Err(format!(
                    "{} is locked (flock) by another process for more than {LOCK_WAIT_TEXT}, so \
                     nothing is changed; run this again once that process is done",
                    what.display()
                ))
            }
            Err(TryLockError::Error(e)) => {
                without_lock(what, &e);
                return Ok(());
            }
        }
    }
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// The file `enable` / `disable` rewrite for `path`: the file a symbolic link
/// leads to (canonical), or `path` itself when nothing is there yet. A link
/// that leads nowhere (dangling, or a loop) is refused: replacing it with a
/// regular file would silently cut it.
pub fn rewrite_target(path: &Path) -> Result<PathBuf, String> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(path.to_path_buf()),
        Err(e) => return Err(format!("{} cannot be read ({e})", path.display())),
        Ok(_) => {}
    }
    std::fs::canonicalize(path).map_err(|e| {
        let to = match std::fs::read_link(path) {
            Ok(to) => format!("a symbolic link to {}", to.display()),
            Err(_) => "a symbolic link".to_string(),
        };
        if e.raw_os_error() == Some(libc::ELOOP) {
            format!(
                "{} is {to}, and the links lead back to themselves (a loop); \
                 point it at the configuration file",
                path.display()
            )
        } else if e.kind() == ErrorKind::NotFound {
            format!(
                "{} is {to}, which leads to no existing file; create that file or point \
                 the link at the configuration file",
                path.display()
            )
        } else {
            format!("{} cannot be resolved ({e})", path.display())
        }
    })
}

/// Refuses a file the invoking user may not write, even where its directory
/// would let a rename replace it: the file's own permissions are the owner's
/// say. Opened for writing without truncating, so nothing changes.
pub fn check_writable(path: &Path) -> Result<(), String> {
    match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(format!(
            "{} is not writable by this user, so it is left as it is ({e})",
            path.display()
        )),
        Err(e) => Err(format!("{} cannot be written ({e})", path.display())),
    }
}

/// Refuses a file with more than one name (hard links): a rewrite replaces
/// the file under one name only, and the others would keep the old settings.
pub fn check_one_name(path: &Path, meta: &Metadata) -> Result<(), String> {
    match meta.nlink() {
        0 | 1 => Ok(()),
        n => Err(format!(
            "{} has {n} names (hard links): a rewrite would change it under this name only \
             and leave the other names with the old settings, so it is left as it is; make \
             the other names symbolic links to it (`find / -xdev -samefile {}` lists them)",
            path.display(),
            path.display()
        )),
    }
}

/// Replaces `path` with `bytes`: a temporary file in the same directory,
/// created owner-only, given `original`'s owner, group, extended attributes
/// and mode (a new file: 0600, the invoking user's) before its first byte,
/// then written, synced and renamed over `path`. A crash leaves the old file
/// or the new one, and the content is never readable by anyone the original
/// did not allow. An extended attribute the copy cannot be given is a
/// refusal, the file left as it is.
pub fn replace(path: &Path, original: Option<&Contents>, bytes: &[u8]) -> Result<(), NotDone> {
    let cannot = |e: &dyn std::fmt::Display| {
        NotDone::Failed(format!("{} cannot be written ({e})", path.display()))
    };
    let dir = dir_of(path);
    let mode = original.map_or(0o600, |o| o.meta.mode() & 0o7777);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Never more open than the final mode, and owner-only until the owner is right.
    let tmp = files::temp_beside(dir, &name, mode & 0o600).map_err(|e| cannot(&e))?;
    if let Some(original) = original {
        let meta = &original.meta;
        std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid())).map_err(
            |e| {
                NotDone::Failed(format!(
                    "{} belongs to uid {} gid {}, an owner and group this user cannot give \
                     its rewritten copy ({e}), so it is left as it is; run this as root",
                    path.display(),
                    meta.uid(),
                    meta.gid()
                ))
            },
        )?;
        // After the chown, which drops a file capability (security.capability).
        xattr::copy(&original.file, tmp.as_file(), path)?;
    }
    // After the chown, which clears set-id bits, and after an ACL, which sets
    // the mode's group bits: the exact mode, whatever the umask.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(mode))
        .map_err(|e| cannot(&e))?;
    files::replace_with(tmp, bytes, path).map_err(|e| cannot(&e))?;
    // The rename itself, durable; a directory that cannot be synced is no error.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Extended attributes: POSIX ACLs (`system.posix_acl_access`), SELinux
/// labels (`security.selinux`), `user.*`; what the file system shows this
/// user (`trusted.*` only to root).
mod xattr {
    use super::NotDone;
    use rustix::io::Errno;
    use std::fs::File;
    use std::path::Path;

    /// Linux's bounds on a file's list of names and on one value (XATTR_LIST_MAX, XATTR_SIZE_MAX).
    const MAX: usize = 64 * 1024;
    const ACL: &[u8] = b"system.posix_acl_access";

    /// The names of `file`'s extended attributes; none on a file system without them.
    fn names(file: &File) -> Result<Vec<Vec<u8>>, Errno> {
        let mut list = vec![0; MAX];
        let len = match rustix::fs::flistxattr(file, &mut list[..]) {
            Ok(len) => len,
            Err(e) if e == Errno::NOTSUP => 0,
            Err(e) => return Err(e),
        };
        Ok(list[..len]
            .split(|&b| b == 0)
            .filter(|name| !name.is_empty())
            .map(<[u8]>::to_vec)
            .collect())
    }

    /// The value of `name`, `None` when it is not (or no longer) set.
    fn value(file: &File, name: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
        let mut value = vec![0; MAX];
        match rustix::fs::fgetxattr(file, name, &mut value[..]) {
            Ok(len) => {
                value.truncate(len);
                Ok(Some(value))
            }
            Err(Errno::NODATA) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Gives `to` exactly `from`'s extended attributes: each of `from`'s is
    /// set (unless `to` has it already, as a label the system gave it), and
    /// an ACL `to` inherited from its directory's default ACL, which `from`
    /// does not have, is removed. One that cannot be read or set is a
    /// refusal naming it.
    pub fn copy(from: &File, to: &File, path: &Path) -> Result<(), NotDone> {
        let refused = |what: String, e: Errno| {
            NotDone::Refused(format!(
                "{}'s {what} ({}), so it is left as it is",
                path.display(),
                std::io::Error::from(e)
            ))
        };
        let shown = |name: &[u8]| String::from_utf8_lossy(name).into_owned();
        let wanted =
            names(from).map_err(|e| refused("extended attributes cannot be listed".into(), e))?;
        for name in &wanted {
            let what = || format!("extended attribute {}", shown(name));
            let Some(wanted_value) =
                value(from, name).map_err(|e| refused(format!("{} cannot be read", what()), e))?
            else {
                continue;
            };
            if value(to, name).ok().flatten().as_ref() == Some(&wanted_value) {
                continue;
            }
            rustix::fs::fsetxattr(
                to,
                &name[..],
                &wanted_value,
                rustix::fs::XattrFlags::empty(),
            )
            .map_err(|e| {
                let fix = if tispark_telemetry::files::effective_uid() == 0 {
                    "set the switch by hand"
                } else {
                    "set the switch by hand, or run this as root"
                };
                NotDone::Refused(format!(
                    "{} has the {}, which its rewritten copy cannot be given ({}), so it \
                         is left as it is; {fix}",
                    path.display(),
                    what(),
                    std::io::Error::from(e)
                ))
            })?;
        }
        if !wanted.iter().any(|name| name == ACL) {
            match rustix::fs::fremovexattr(to, ACL) {
                Ok(()) | Err(Errno::NODATA) | Err(Errno::NOTSUP) => {}
                Err(e) => {
                    return Err(NotDone::Failed(format!(
                        "{} cannot be written: the ACL its directory gives a new file cannot \
                         be removed from the rewritten copy ({})",
                        path.display(),
                        std::io::Error::from(e)
                    )))
                }
            }
        }
        Ok(())
    }
}
