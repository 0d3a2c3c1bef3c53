//! The edge: the gateway secret every request must carry, TLS (and client certificates), and
//! how long a client may take to send a request's headers and its body.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio_rustls::rustls::pki_types::CertificateDer;

use super::RawConfig;
use super::definition::{DefaultTo, Definition, Problems, Secrecy, Setting};
use crate::tls;

static GATEWAY_SECRET: Setting<SecretString> = Setting {
    key: "gateway_secret",
    env: &["AUTH_GATEWAY_SECRET"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::Secret,
    help: "at least 32 bytes; every request but health checks and JWKS must carry it in `X-Gateway-Secret`",
};

static GATEWAY_SECRET_FILE: Setting<String> = Setting {
    key: "gateway_secret_file",
    env: &["AUTH_GATEWAY_SECRET_FILE"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::Public,
    help: "a file holding the gateway secret (instead of `AUTH_GATEWAY_SECRET`)",
};

static TLS_CERT: Setting<String> = Setting {
    key: "tls_cert",
    env: &["AUTH_TLS_CERT"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::Public,
    help: "PEM certificate chain: with `AUTH_TLS_KEY`, the service listens with TLS",
};

static TLS_KEY: Setting<String> = Setting {
    key: "tls_key",
    env: &["AUTH_TLS_KEY"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::Public,
    help: "PEM private key of `AUTH_TLS_CERT`",
};

static TLS_CLIENT_CA: Setting<String> = Setting {
    key: "tls_client_ca",
    env: &["AUTH_TLS_CLIENT_CA"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::Public,
    help: "PEM CA certificates: every client must present a certificate they signed (mTLS)",
};

static HEADER_TIMEOUT_MS: Setting<u64> = Setting {
    key: "header_timeout_ms",
    env: &["AUTH_HEADER_TIMEOUT_MS"],
    default: DefaultTo::Value(|| 10_000),
    range: Some(100..=300_000),
    secrecy: Secrecy::Public,
    help: "a connection whose TLS handshake or request headers take longer (or idle as long) is closed",
};

static BODY_TIMEOUT_MS: Setting<u64> = Setting {
    key: "body_timeout_ms",
    env: &["AUTH_BODY_TIMEOUT_MS"],
    default: DefaultTo::Value(|| 10_000),
    range: Some(100..=300_000),
    secrecy: Secrecy::Public,
    help: "a request body not received within this time is answered `408` and the connection closed",
};

pub(super) static SETTINGS: &[&dyn Definition] = &[
    &GATEWAY_SECRET,
    &GATEWAY_SECRET_FILE,
    &TLS_CERT,
    &TLS_KEY,
    &TLS_CLIENT_CA,
    &HEADER_TIMEOUT_MS,
    &BODY_TIMEOUT_MS,
];

#[derive(Debug, Clone)]
pub struct Edge {
    /// What `X-Gateway-Secret` must hold, when requests must come through the gateway.
    pub gateway_secret: Option<SecretString>,
    /// The TLS set-up, when the service listens with TLS.
    pub tls: Option<Arc<tls::ServerConfig>>,
    /// The certificate served (the first of `AUTH_TLS_CERT`): what `healthcheck` accepts.
    pub tls_leaf: Option<CertificateDer<'static>>,
    /// Whether TLS clients must present a certificate.
    pub client_certificates: bool,
    /// Bound of a TLS handshake and of a request's headers.
    pub header_timeout: Duration,
    /// Bound of a request's body, from its headers on.
    pub body_timeout: Duration,
}

pub(super) fn load(raw: &RawConfig, p: &mut Problems) -> Option<Edge> {
    let gateway_secret = gateway_secret(raw, p);
    let cert = TLS_CERT.optional(raw, p);
    let key = TLS_KEY.optional(raw, p);
    let client_ca = TLS_CLIENT_CA.optional(raw, p);
    let header = HEADER_TIMEOUT_MS.value(raw, p);
    let body = BODY_TIMEOUT_MS.value(raw, p);
    let (cert, key, client_ca) = (cert?, key?, client_ca?);
    let client_certificates = client_ca.is_some();
    let tls_leaf = cert
        .as_deref()
        .and_then(|c| tls::certificates(c).ok())
        .and_then(|chain| chain.into_iter().next());
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(Arc::new(tls_config(&cert, &key, client_ca, p)?)),
        (None, None) => {
            if client_ca.is_some() {
                p.add(&TLS_CLIENT_CA, "needs AUTH_TLS_CERT and AUTH_TLS_KEY");
            }
            None
        }
        (Some(_), None) => {
            p.add(&TLS_KEY, "required with AUTH_TLS_CERT");
            None
        }
        (None, Some(_)) => {
            p.add(&TLS_CERT, "required with AUTH_TLS_KEY");
            None
        }
    };
    Some(Edge {
        gateway_secret: gateway_secret?,
        tls,
        tls_leaf,
        client_certificates,
        header_timeout: Duration::from_millis(header?),
        body_timeout: Duration::from_millis(body?),
    })
}

/// The secret given directly or in a file (one of them), at least 32 bytes.
fn gateway_secret(raw: &RawConfig, p: &mut Problems) -> Option<Option<SecretString>> {
    let direct = GATEWAY_SECRET.optional(raw, p)?;
    let file = GATEWAY_SECRET_FILE.optional(raw, p)?;
    let (secret, setting): (SecretString, &dyn Definition) = match (direct, file) {
        (None, None) => return Some(None),
        (Some(_), Some(_)) => {
            p.add(
                &GATEWAY_SECRET_FILE,
                "set it or AUTH_GATEWAY_SECRET, not both",
            );
            return None;
        }
        (Some(secret), None) => (secret, &GATEWAY_SECRET),
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            // A file written by `echo` or a secret store ends with a line break.
            Ok(text) => (
                SecretString::from(text.trim_end_matches(['\r', '\n']).to_owned()),
                &GATEWAY_SECRET_FILE,
            ),
            Err(e) => {
                p.add(&GATEWAY_SECRET_FILE, format!("cannot read {path}: {e}"));
                return None;
            }
        },
    };
    if secret.expose_secret().len() < 32 {
        p.add(setting, "the secret must be at least 32 bytes");
        return None;
    }
    Some(Some(secret))
}

/// Reads the certificate, the key and the client CAs; each problem is said of its setting.
fn tls_config(
    cert: &str,
    key: &str,
    client_ca: Option<String>,
    p: &mut Problems,
) -> Option<tls::ServerConfig> {
    let chain = tls::certificates(cert).map_err(|e| p.add(&TLS_CERT, format!("{cert}: {e}")));
    let private = tls::private_key(key).map_err(|e| p.add(&TLS_KEY, format!("{key}: {e}")));
    let roots = match &client_ca {
        Some(path) => Some(
            tls::certificates(path)
                .map_err(|e| p.add(&TLS_CLIENT_CA, format!("{path}: {e}")))
                .ok()?,
        ),
        None => None,
    };
    let (chain, private) = (chain.ok()?, private.ok()?);
    match tls::server_config(chain, private, roots) {
        Ok(config) => Some(config),
        Err(tls::Refused::Key(e)) => {
            p.add(&TLS_KEY, format!("{key}: {e}"));
            None
        }
        Err(tls::Refused::ClientCa(e)) => {
            p.add(
                &TLS_CLIENT_CA,
                format!("{}: {e}", client_ca.unwrap_or_default()),
            );
            None
        }
    }
}
