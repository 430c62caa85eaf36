//! What a connection trusts and the certificate it shows: one rustls client
//! configuration, with the `ring` provider (no OpenSSL, no aws-lc: the `.so`
//! loads on any Linux).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// The roots a connection trusts, and the client certificate it shows (PD's
/// mutual TLS).
pub(crate) struct Tls {
    roots: Vec<CertificateDer<'static>>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

impl Tls {
    pub(crate) fn roots(roots: Vec<CertificateDer<'static>>) -> Tls {
        Tls {
            roots,
            client: None,
        }
    }

    /// The roots and a client certificate chain with its key. The pair is
    /// checked here, so that a key that does not fit is an error, not a
    /// failure inside the TLS handshake.
    pub(crate) fn with_client(
        roots: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Tls, String> {
        let tls = Tls {
            roots,
            client: Some((chain, key)),
        };
        tls.config()?;
        Ok(tls)
    }

    /// The rustls configuration: these roots only (none at all for plain
    /// http), TLS 1.2 and 1.3, and the client certificate when there is one.
    pub(crate) fn config(&self) -> Result<rustls::ClientConfig, String> {
        let mut store = rustls::RootCertStore::empty();
        // A certificate that is not a usable trust anchor is left out, as a
        // malformed PEM block of the trust store is.
        store.add_parsable_certificates(self.roots.iter().cloned());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(store);
        match &self.client {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| e.to_string()),
            None => Ok(builder.with_no_client_auth()),
        }
    }
}

/// The certificates of a PEM bundle (other items, such as keys, are
/// skipped); a malformed block is an error.
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// The certificates of a PEM bundle, a malformed block skipped and the
/// others kept (the platform's trust store).
pub(crate) fn parsable_certificates(
    pem: &[u8],
) -> impl Iterator<Item = CertificateDer<'static>> + '_ {
    CertificateDer::pem_slice_iter(pem).filter_map(Result::ok)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn private_key(pem: &[u8]) -> Option<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).ok()
}
