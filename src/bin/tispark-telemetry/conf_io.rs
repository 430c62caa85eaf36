//! Reading and rewriting the configuration file without exposing it.
//!
//! `spark-defaults.conf` may hold secrets (keystore passwords), so a rewrite
//! never shows its content to anyone the original file did not: the new copy
//! is created owner-only beside the file, given the original's owner, group
//! and mode, and only then written, synced and renamed over the original.
//! Every read is bounded: a regular file of at most [`MAX_BYTES`], opened
//! without blocking (a FIFO or a device is refused, never waited on).

use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The largest configuration file read: Spark's are a few KiB.
pub const MAX_BYTES: u64 = 1024 * 1024;
const MAX_TEXT: &str = "1 MiB";

/// The file's bytes and what `fstat` said of the handle they were read from.
pub struct Contents {
    pub bytes: Vec<u8>,
    pub meta: Metadata,
}

/// How a symbolic link is treated when the file is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Links {
    Follow,
    /// The path is already resolved: a link in its place now is refused.
    Refuse,
}

/// The file at `path`, read bounded; `None` when there is none. Each error
/// is one sentence naming the path.
pub fn read(path: &Path, links: Links) -> Result<Option<Contents>, String> {
    let mut flags = libc::O_NONBLOCK;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{} cannot be read ({e})", path.display())),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("{} cannot be read ({e})", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "{} cannot be read: it is {}, not a regular file",
            path.display(),
            kind_of(&meta)
        ));
    }
    let too_large = || {
        format!(
            "{} cannot be read: it is larger than {MAX_TEXT}, the limit for a Spark configuration file",
            path.display()
        )
    };
    if meta.len() > MAX_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{} cannot be read ({e})", path.display()))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(too_large());
    }
    Ok(Some(Contents { bytes, meta }))
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

/// Replaces `path` with `bytes`: a temporary file in the same directory,
/// created owner-only, given `original`'s owner, group and mode (a new file:
/// 0600, the invoking user's) before its first byte, then written, synced and
/// renamed over `path`. A crash leaves the old file or the new one, and the
/// content is never readable by anyone the original did not allow.
pub fn replace(path: &Path, original: Option<&Metadata>, bytes: &[u8]) -> Result<(), String> {
    let cannot = |e: &dyn std::fmt::Display| format!("{} cannot be written ({e})", path.display());
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| cannot(&e))?;
    let mode = original.map_or(0o600, |m| m.mode() & 0o7777);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        // Never more open than the final mode, and owner-only until the owner is right.
        .permissions(Permissions::from_mode(mode & 0o600))
        .tempfile_in(dir)
        .map_err(|e| cannot(&e))?;
    if let Some(meta) = original {
        std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid())).map_err(
            |e| {
                format!(
                    "{} belongs to uid {} gid {}, an owner and group this user cannot give \
                     its rewritten copy ({e}), so it is left as it is; run this as root",
                    path.display(),
                    meta.uid(),
                    meta.gid()
                )
            },
        )?;
    }
    // After the chown, which clears set-id bits; the exact mode, whatever the umask.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(mode))
        .map_err(|e| cannot(&e))?;
    tmp.write_all(bytes).map_err(|e| cannot(&e))?;
    tmp.as_file().sync_all().map_err(|e| cannot(&e))?;
    tmp.persist(path).map_err(|e| cannot(&e.error))?;
    // The rename itself, durable; a directory that cannot be synced is no error.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
