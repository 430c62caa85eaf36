//! Every file the library reads or writes goes through here, because the
//! host may be hostile: other local users, a shared or broken state
//! directory, a world-writable temporary directory.
//!
//! - Reads are bounded and of regular files only: a FIFO, a device
//!   (`/dev/zero`), a directory or a file over the limit is an error, never a
//!   hang or an unbounded allocation. Opening never blocks (`O_NONBLOCK`).
//!   Inside the state directory nothing is followed through a symbolic link.
//! - What is written is private from the first byte: directories 0700, files
//!   0600, created under a fresh name (`O_EXCL`) and renamed into place, so a
//!   link planted under the final name is replaced, never written through.
//! - A directory that holds private state must be owned by the effective user
//!   and writable by no one else, as OpenSSH's `StrictModes` asks of `~/.ssh`.

use crate::log_line::quoted_path;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// Whether a link at the path itself may be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// A path the operator named (a CA bundle): a link to a regular file is fine.
    Follow,
    /// A file inside the state directory: a link there is refused.
    Refuse,
}

/// Why a bounded read failed.
#[derive(Debug)]
pub enum ReadError {
    NotFound,
    /// A symbolic link where [`Links::Refuse`] was asked.
    Link,
    /// A directory, FIFO, socket or device.
    NotRegular,
    /// Larger than the limit, in bytes.
    TooLarge(u64),
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotFound => write!(f, "it does not exist"),
            ReadError::Link => write!(f, "it is a symbolic link, which is not followed"),
            ReadError::NotRegular => write!(f, "it is not a regular file"),
            ReadError::TooLarge(limit) => write!(f, "it is larger than {limit} bytes"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Reads the regular file at `path`, at most `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64, links: Links) -> Result<Vec<u8>, ReadError> {
    let file = open_regular(path, links)?;
    read_limited(file, limit)
        .map_err(ReadError::Io)?
        .ok_or(ReadError::TooLarge(limit))
}

/// All of `reader`, or `None` when it holds more than `limit` bytes (at most
/// `limit + 1` are read to tell).
pub fn read_limited(reader: impl Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// The regular file at `path`, opened for reading without blocking (a FIFO
/// cannot hang it) and checked after opening; a link refused when `links` says so.
pub fn open_regular(path: &Path, links: Links) -> Result<File, ReadError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
        if links == Links::Refuse {
            flags |= libc::O_NOFOLLOW;
        }
        options.custom_flags(flags);
    }
    let file = options.open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ReadError::NotFound,
        _ if is_link_error(&e) => ReadError::Link,
        _ => ReadError::Io(e),
    })?;
    if !file.metadata().map_err(ReadError::Io)?.is_file() {
        return Err(ReadError::NotRegular);
    }
    Ok(file)
}

#[cfg(unix)]
fn is_link_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

#[cfg(not(unix))]
fn is_link_error(_: &io::Error) -> bool {
    false
}

/// Creates `dir` (and missing parents) as 0700, or checks an existing one:
/// it must be a directory owned by the effective user and writable by no one
/// else. One that is only readable by others is made 0700. `Err` says what is
/// wrong and how to fix it.
pub fn private_dir(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => {}
            Err(e) => {
                return Err(format!(
                    "the directory {} cannot be created ({e})",
                    quoted_path(dir)
                ))
            }
        }
        if check_private_dir(dir)? & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| {
                format!(
                    "the directory {} cannot be made private ({e})",
                    quoted_path(dir)
                )
            })?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
            .map_err(|e| format!("the directory {} cannot be created ({e})", quoted_path(dir)))
    }
}

/// The checks of [`private_dir`] on an existing directory, changing nothing:
/// its mode, or why it cannot hold private state.
#[cfg(unix)]
fn check_private_dir(dir: &Path) -> Result<u32, String> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(dir).map_err(|e| {
        format!(
            "the directory {} cannot be examined ({e})",
            quoted_path(dir)
        )
    })?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", quoted_path(dir)));
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Err(format!(
            "the directory {} belongs to uid {}, not to this user (uid {me}); use a \
             directory of your own (spark.tispark.telemetry.state_dir)",
            quoted_path(dir),
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "the directory {} is writable by other users (mode {mode:04o}); make it \
             private with `chmod 700 {}`",
            quoted_path(dir),
            quoted_path(dir)
        ));
    }
    Ok(mode)
}

/// As [`private_dir`], creating and changing nothing (`status` reads only):
/// `Ok(false)` when `dir` does not exist; one only readable by others is
/// accepted as it is (the next [`private_dir`] makes it 0700).
pub fn existing_private_dir(dir: &Path) -> Result<bool, String> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        #[cfg(unix)]
        _ => check_private_dir(dir).map(|_| true),
        #[cfg(not(unix))]
        _ => Ok(fs::metadata(dir).map_err(|e| e.to_string())?.is_dir()),
    }
}

#[cfg(unix)]
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Writes `bytes` as `dir/name`, 0600 from the first byte, complete or not at
/// all: a fresh temporary file beside it, synced, then renamed over the name
/// (a link planted there is replaced, not followed).
pub fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    replace_with(temp_beside(dir, name, 0o600)?, bytes, &dir.join(name))
}

/// A fresh temporary file beside `dir/name`, `.name.XXXXXX.tmp`, created with
/// `mode` (on Unix; whatever the umask takes away): the first half of an
/// atomic replace, [`replace_with`] the second. In between the caller may
/// give it an owner, attributes, a wider mode.
pub fn temp_beside(dir: &Path, name: &str, mode: u32) -> io::Result<tempfile::NamedTempFile> {
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder.tempfile_in(dir)
}

/// Writes `bytes` into `tmp`, syncs it, and renames it over `target` (a link
/// there is replaced, not followed): a crash leaves the old file or the new one.
pub fn replace_with(tmp: tempfile::NamedTempFile, bytes: &[u8], target: &Path) -> io::Result<()> {
    let tmp = written(tmp, bytes)?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

fn written(mut tmp: tempfile::NamedTempFile, bytes: &[u8]) -> io::Result<tempfile::NamedTempFile> {
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// As [`write_private`], unless `dir/name` exists (a file or anything else):
/// `Ok(false)` then, so that two writers racing on a fresh directory agree on
/// the first one's content.
pub fn create_private(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<bool> {
    let tmp = written(temp_beside(dir, name, 0o600)?, bytes)?;
    match tmp.persist_noclobber(dir.join(name)) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.error),
    }
}

/// Opens `path` to append to it, creating it 0600 (and its directory 0700)
/// when missing. A regular file only (never a FIFO that would block), and a
/// symbolic link only when it belongs to this user or to root.
pub fn open_append_private(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        #[cfg(not(unix))]
        fs::create_dir_all(dir)?;
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        if let Ok(link) = fs::symlink_metadata(path) {
            let owner = link.uid();
            if link.file_type().is_symlink() && owner != 0 && owner != effective_uid() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("it is a symbolic link that belongs to uid {owner}"),
                ));
            }
        }
        options
            .mode(0o600)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    Ok(file)
}

#[cfg(all(test, unix))]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn temp() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("tt-files-")
            .tempdir()
            .unwrap()
    }

    /// A FIFO at `path` (mkfifo(1)): opening it for reading would block.
    pub(crate) fn mkfifo(path: &Path) {
        let made = std::process::Command::new("mkfifo").arg(path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {path:?}");
    }

    #[test]
    fn reads_a_regular_file_up_to_the_limit_and_refuses_beyond() {
        let dir = temp();
        let f = dir.path().join("f");
        fs::write(&f, b"12345").unwrap();
        assert_eq!(read_bounded(&f, 5, Links::Refuse).unwrap(), b"12345");
        assert!(matches!(
            read_bounded(&f, 4, Links::Refuse),
            Err(ReadError::TooLarge(4))
        ));
    }

    #[test]
    fn an_error_that_is_not_a_link_is_said_as_it_is() {
        let dir = temp();
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        // A file where a directory should be: "Not a directory", not "a link".
        let e = read_bounded(&file.join("below"), 10, Links::Refuse).unwrap_err();
        assert!(matches!(e, ReadError::Io(_)), "{e:?}");
        assert_eq!(e.to_string(), "Not a directory (os error 20)");
    }

    #[test]
    fn devices_fifos_and_directories_are_not_read() {
        let dir = temp();
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 1 << 20, Links::Follow),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_bounded(dir.path(), 1 << 20, Links::Follow),
            Err(ReadError::NotRegular)
        ));
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        assert!(matches!(
            read_bounded(&fifo, 1 << 20, Links::Follow),
            Err(ReadError::NotRegular)
        ));
    }

    #[test]
    fn links_are_refused_inside_the_state_directory_and_followed_when_named() {
        let dir = temp();
        let target = dir.path().join("target");
        fs::write(&target, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            read_bounded(&link, 10, Links::Refuse),
            Err(ReadError::Link)
        ));
        assert_eq!(read_bounded(&link, 10, Links::Follow).unwrap(), b"x");
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(matches!(
            read_bounded(&dangling, 10, Links::Refuse),
            Err(ReadError::Link)
        ));
    }

    #[test]
    fn what_is_written_is_private_and_replaces_a_planted_link() {
        let dir = temp();
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"keep").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("name")).unwrap();
        write_private(dir.path(), "name", b"new").unwrap();
        let meta = fs::symlink_metadata(dir.path().join("name")).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(fs::read(&elsewhere).unwrap(), b"keep");
        assert!(!create_private(dir.path(), "name", b"other").unwrap());
        assert_eq!(fs::read(dir.path().join("name")).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
    }

    #[test]
    fn a_private_dir_is_created_0700_and_a_loose_one_is_refused_or_tightened() {
        let dir = temp();
        let state = dir.path().join("a/b");
        private_dir(&state).unwrap();
        assert_eq!(fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
        fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&state).unwrap();
        assert_eq!(fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
        fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
        let why = private_dir(&state).unwrap_err();
        assert!(why.contains("writable by other users (mode 0777)"), "{why}");
        assert!(why.contains("chmod 700"), "{why}");
    }

    #[test]
    fn an_appended_file_is_created_0600_and_a_fifo_is_refused() {
        let dir = temp();
        let f = dir.path().join("new/r.jsonl");
        open_append_private(&f).unwrap();
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(f.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        // Without a reader the open fails at once (ENXIO); it never blocks.
        assert!(open_append_private(&fifo).is_err());
    }

    #[test]
    fn a_sink_behind_another_users_link_is_refused_and_ours_is_followed() {
        assert_eq!(
            effective_uid(),
            0,
            "this test runs as root, to chown to uid 65534"
        );
        let dir = temp();
        let target = dir.path().join("target.jsonl");
        fs::write(&target, b"").unwrap();
        std::os::unix::fs::chown(&target, Some(65534), Some(65534)).unwrap();
        // A regular file of another user that root appends to: fine.
        open_append_private(&target).unwrap();

        let theirs = dir.path().join("theirs");
        std::os::unix::fs::symlink(&target, &theirs).unwrap();
        std::os::unix::fs::lchown(&theirs, Some(65534), Some(65534)).unwrap();
        let e = open_append_private(&theirs).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            e.to_string(),
            "it is a symbolic link that belongs to uid 65534"
        );

        let ours = dir.path().join("ours");
        std::os::unix::fs::symlink(&target, &ours).unwrap();
        open_append_private(&ours).unwrap().write_all(b"x").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"x");
    }
}
