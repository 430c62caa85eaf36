//! The platform's trust store, read bounded: what an `https` endpoint is
//! trusted through besides the operator's `ca_file`.

use rustls::pki_types::CertificateDer;
#[cfg(not(target_os = "macos"))]
use std::path::PathBuf;

/// The most one file of the platform's trust store may hold (Debian's bundle
/// is about 220 KB).
#[cfg(not(target_os = "macos"))]
const STORE_FILE_LIMIT: u64 = 4 << 20;
/// The most entries of one certificate directory looked at.
#[cfg(not(target_os = "macos"))]
const STORE_DIR_ENTRIES: usize = 10_000;

/// The platform's trust store, found where OpenSSL (and rustls-native-certs)
/// look: `SSL_CERT_FILE` and `SSL_CERT_DIR` when either is set, else the
/// distribution's bundle and certificate directories (openssl-probe's list).
/// Each file is read as every file here is (`files::read_bounded`): a regular
/// file only, at most 4 MiB, opened without blocking; a link is followed (a
/// certificate directory is made of them). rustls-native-certs itself is not
/// used: it reads a FIFO or a file of any size. What cannot be read is left
/// out (an https endpoint it would have vouched for then fails with a
/// certificate error).
#[cfg(not(target_os = "macos"))]
pub(crate) fn platform_roots() -> Vec<CertificateDer<'static>> {
    let (file, dirs) = store_paths();
    let mut seen = std::collections::HashSet::new();
    let mut roots = Vec::new();
    if let Some(file) = &file {
        read_store_file(file, &mut seen, &mut roots);
    }
    for dir in &dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.take(STORE_DIR_ENTRIES).flatten() {
            read_store_file(&entry.path(), &mut seen, &mut roots);
        }
    }
    roots.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    roots.dedup();
    log::debug!(
        "The platform's trust store: {} certificates, from {} and {}.",
        roots.len(),
        file.as_deref()
            .map_or("no bundle".to_string(), |f| f.display().to_string()),
        if dirs.is_empty() {
            "no directory".to_string()
        } else {
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        }
    );
    roots
}

/// On macOS the platform's store is the Keychain, not files: read through
/// rustls-native-certs (macOS libraries are built elsewhere, see
/// docs/platforms.md).
#[cfg(target_os = "macos")]
pub(crate) fn platform_roots() -> Vec<CertificateDer<'static>> {
    rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .collect()
}

/// The trust store's bundle and directories: the environment's when it names
/// either (`SSL_CERT_DIR` a `:`-separated list), else what openssl-probe
/// finds on this host.
#[cfg(not(target_os = "macos"))]
fn store_paths() -> (Option<PathBuf>, Vec<PathBuf>) {
    let file = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let dirs: Vec<PathBuf> = std::env::var_os("SSL_CERT_DIR")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if file.is_some() || !dirs.is_empty() {
        return (file, dirs);
    }
    let probed = openssl_probe::probe();
    (probed.cert_file, probed.cert_dir)
}

/// Adds the certificates of one trust store file, once per file: a
/// certificate directory names each certificate twice (its hash, its name)
/// and often holds the bundle too. Anything but a regular file is never
/// opened (opening a device may do something); a malformed PEM block is
/// skipped, the file's other certificates kept.
#[cfg(not(target_os = "macos"))]
fn read_store_file(
    path: &std::path::Path,
    seen: &mut std::collections::HashSet<(u64, u64)>,
    roots: &mut Vec<CertificateDer<'static>>,
) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if !meta.is_file() || !seen.insert((meta.dev(), meta.ino())) {
        return;
    }
    let Ok(pem) = crate::files::read_bounded(path, STORE_FILE_LIMIT, crate::files::Links::Follow)
    else {
        return;
    };
    roots.extend(super::tls::parsable_certificates(&pem));
}
