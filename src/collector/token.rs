//! `collect --token-file PATH`: only the fleet may write. A report is stored
//! only with HTTP Basic credentials whose password is the token: what the
//! library sends for `spark.tispark.telemetry.url =
//! https://reporter:TOKEN@collector/…` (the user name is not checked). The
//! token is never printed, logged or stored.

use crate::files::{self, Links};
use base64::Engine as _;
use std::path::Path;

/// A token file is one line; anything larger is not one.
pub const TOKEN_FILE_LIMIT: u64 = 4096;
/// The fewest characters a token may have.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The collector's token.
pub struct Token(Vec<u8>);

impl Token {
    /// Reads the token from `path`: a regular file (read bounded, never
    /// blocking) of this user (or root) that no one else may read or write
    /// (no group or other permission), holding at
    /// least [`MIN_TOKEN_CHARS`] of `A-Z a-z 0-9 - . _ ~` (characters a URL's
    /// password holds as they are), and a newline at most after them.
    pub fn read(path: &Path) -> Result<Token, String> {
        use std::os::unix::fs::MetadataExt;
        let shown = || crate::log_line::quoted(&path.to_string_lossy());
        let file = files::open_regular(path, Links::Follow)
            .map_err(|e| format!("the token file {} cannot be read ({e})", shown()))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("the token file {} cannot be read ({e})", shown()))?;
        let me = files::effective_uid();
        if meta.uid() != me && meta.uid() != 0 {
            return Err(format!(
                "the token file {} belongs to uid {}, not to this user (uid {me}) or root; use \
                 a file of your own",
                shown(),
                meta.uid()
            ));
        }
        let mode = meta.mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "the token file {} is open to other users (mode {:04o}); make it private with \
                 `chmod 600`",
                shown(),
                mode & 0o7777
            ));
        }
        let bytes = files::read_limited(file, TOKEN_FILE_LIMIT)
            .map_err(|e| format!("the token file {} cannot be read ({e})", shown()))?
            .ok_or_else(|| {
                format!(
                    "the token file {} is larger than {TOKEN_FILE_LIMIT} bytes: it holds one \
                     token",
                    shown()
                )
            })?;
        let token = bytes
            .strip_suffix(b"\n")
            .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
            .unwrap_or(&bytes);
        let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if token.len() < MIN_TOKEN_CHARS || !token.iter().all(allowed) {
            return Err(format!(
                "the token file {} must hold one token of at least {MIN_TOKEN_CHARS} characters \
                 A-Z a-z 0-9 - . _ ~ (e.g. `openssl rand -hex 32`), and nothing else",
                shown()
            ));
        }
        Ok(Token(token.to_vec()))
    }

    /// Whether an `Authorization` header's value carries the token: `Basic`
    /// credentials whose password is it, compared in a time that does not
    /// depend on where they differ.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(encoded) = value
            .strip_prefix(b"Basic ")
            .or_else(|| value.strip_prefix(b"basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii())
        else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return false;
        };
        same(&decoded[colon + 1..], &self.0)
    }
}

/// Equal bytes, looked at whole whatever the first difference (the token's
/// length is no secret worth the difference).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
        .into_bytes()
    }

    #[test]
    fn only_the_tokens_basic_credentials_are_admitted() {
        let token = Token(b"0123456789abcdef-._~".to_vec());
        assert!(token.admits(Some(&basic("reporter:0123456789abcdef-._~"))));
        assert!(token.admits(Some(&basic(":0123456789abcdef-._~"))));
        for refused in [
            basic("reporter:0123456789abcdef-._"),
            basic("reporter:0123456789abcdef-._~x"),
            basic("0123456789abcdef-._~"),
            basic("reporter:0123456789abcdeF-._~"),
            b"Bearer 0123456789abcdef-._~".to_vec(),
            b"Basic !!!".to_vec(),
        ] {
            assert!(!token.admits(Some(&refused)), "{refused:?}");
        }
        assert!(!token.admits(None));
    }
}
