//! TLS set-up from PEM files: the server's certificate chain and key, and optionally the CAs
//! whose client certificates are required (mTLS). rustls with the ring provider only.

use std::sync::Arc;

use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore};

pub use tokio_rustls::rustls::ServerConfig;

/// Why the files do not make a TLS set-up, said of the setting at fault.
#[derive(Debug)]
pub enum Refused {
    /// The key: unreadable by the provider, or not the certificate's.
    Key(String),
    /// The client CAs.
    ClientCa(String),
}

/// The certificates of a PEM file, in order; at least one.
pub fn certificates(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_problem(e, "certificate"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_problem(e, "certificate"))?;
    if certs.is_empty() {
        return Err("no certificate found".into());
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_problem(e, "private key"))
}

/// A problem of a PEM file, said without quoting its content (it may be a key).
fn pem_problem(e: pem::Error, what: &str) -> String {
    match e {
        pem::Error::Io(e) => format!("cannot read: {e}"),
        pem::Error::NoItemsFound => format!("no {what} found"),
        _ => format!("not a valid PEM file of a {what}"),
    }
}

/// The provider of every TLS set-up: ring (see DEPENDENCY-NOTES about two providers).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// A server set-up for this chain and key; with `client_cas`, clients must present a
/// certificate one of them signed. ALPN offers HTTP/1.1, the one protocol served.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_cas: Option<Vec<CertificateDer<'static>>>,
) -> Result<ServerConfig, Refused> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Refused::Key(e.to_string()))?;
    let builder = match client_cas {
        Some(cas) => {
            let mut roots = RootCertStore::empty();
            for ca in cas {
                roots
                    .add(ca)
                    .map_err(|e| Refused::ClientCa(format!("not a CA certificate: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Refused::ClientCa(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| Refused::Key(key_problem(&e)))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn key_problem(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) => "the key is not the certificate's".into(),
        other => format!("unusable key: {other}"),
    }
}
