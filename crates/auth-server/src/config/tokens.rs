//! Access tokens: issuer, audience, lifetime, signing algorithm, HS256 secret, verified cache.

use std::time::Duration;

use auth_core::token::{DEFAULT_CACHE_CAPACITY, JwtAlgorithm, TokenSettings};
use secrecy::{ExposeSecret, SecretString};

use super::definition::{DefaultTo, Definition, Problems, Secrecy, Setting};
use super::{RawConfig, Server};

static ISSUER: Setting<String> = Setting {
    key: "issuer",
    env: &["AUTH_ISSUER"],
    default: DefaultTo::Derived(
        "`AUTH_PUBLIC_URL`, else the one recorded in the database by the first instance, else `http://BIND:PORT` (recorded)",
    ),
    range: None,
    secrecy: Secrecy::Public,
    help: "`iss` of issued tokens; instances sharing a database must agree on it",
};

static AUDIENCE: Setting<String> = Setting {
    key: "audience",
    env: &["AUTH_AUDIENCE"],
    default: DefaultTo::Value(|| "api".to_owned()),
    range: None,
    secrecy: Secrecy::Public,
    help: "`aud` of issued tokens; `none`: tokens carry no `aud` (and one that does is refused)",
};

static ALGORITHM: Setting<JwtAlgorithm> = Setting {
    key: "jwt_algorithm",
    env: &["JWT_ALGORITHM"],
    default: DefaultTo::Value(|| JwtAlgorithm::EdDSA),
    range: None,
    secrecy: Secrecy::Public,
    help: "`EdDSA` (keys in the database, published as JWKS) or `HS256` (shared secret)",
};

static SECRET: Setting<SecretString> = Setting {
    key: "jwt_secret_key",
    env: &["JWT_SECRET_KEY"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::Secret,
    help: "HS256 secret; required with HS256, at least 32 bytes",
};

static EXPIRE_MINUTES: Setting<u64> = Setting {
    key: "jwt_expire_minutes",
    env: &["JWT_EXPIRE_MINUTES"],
    default: DefaultTo::Value(|| 15),
    range: Some(1..=24 * 60),
    secrecy: Secrecy::Public,
    help: "access-token lifetime in minutes",
};

static CACHE_SIZE: Setting<usize> = Setting {
    key: "token_cache_size",
    env: &["AUTH_TOKEN_CACHE_SIZE"],
    default: DefaultTo::Value(|| DEFAULT_CACHE_CAPACITY),
    range: Some(0..=10_000_000),
    secrecy: Secrecy::Public,
    help: "verified access tokens remembered (`0`: verify every time)",
};

pub(super) static SETTINGS: &[&dyn Definition] = &[
    &ISSUER,
    &AUDIENCE,
    &ALGORITHM,
    &SECRET,
    &EXPIRE_MINUTES,
    &CACHE_SIZE,
];

/// Where the issuer comes from, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerSource {
    /// `AUTH_ISSUER`.
    Issuer,
    /// `AUTH_PUBLIC_URL`: the address the instances are reached at.
    PublicUrl,
    /// Neither is set: the issuer recorded in the database by the first instance that
    /// started on it, which recorded its own `http://BIND:PORT` (the issuer read from the
    /// configuration, until start-up replaces it).
    Recorded,
}

impl IssuerSource {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Issuer => "AUTH_ISSUER",
            Self::PublicUrl => "AUTH_PUBLIC_URL",
            Self::Recorded => "recorded in the database by the first instance",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tokens {
    /// Issuer, audience and lifetime of access tokens.
    pub access: TokenSettings,
    pub issuer_source: IssuerSource,
    pub algorithm: JwtAlgorithm,
    /// The HS256 secret; always there with HS256.
    pub secret: Option<SecretString>,
    /// Verified access tokens remembered.
    pub cache_size: usize,
}

/// Reads the tokens' settings; the issuer is `AUTH_ISSUER`, else `AUTH_PUBLIC_URL` (which the
/// mail area checks), else the server's address until start-up reads the recorded one.
pub(super) fn load(raw: &RawConfig, p: &mut Problems, server: Option<&Server>) -> Option<Tokens> {
    let issuer = ISSUER.optional(raw, p);
    let audience = AUDIENCE.value(raw, p);
    if audience.as_ref().is_some_and(String::is_empty) {
        p.add(&AUDIENCE, "must not be empty");
    }
    let algorithm = ALGORITHM.value(raw, p);
    let secret = SECRET.optional(raw, p);
    if algorithm == Some(JwtAlgorithm::HS256) {
        match &secret {
            Some(None) => p.add(&SECRET, "required when JWT_ALGORITHM=HS256"),
            Some(Some(s)) if s.expose_secret().len() < 32 => {
                p.add(&SECRET, "must be at least 32 bytes")
            }
            _ => {}
        }
    }
    let minutes = EXPIRE_MINUTES.value(raw, p);
    let cache_size = CACHE_SIZE.value(raw, p);
    let public_url = raw
        .get("public_url")
        .and_then(|u| super::mail::public_url(u).ok());
    let (issuer, issuer_source) = match (issuer?, public_url) {
        (Some(issuer), _) => (issuer, IssuerSource::Issuer),
        (None, Some(url)) => (url, IssuerSource::PublicUrl),
        (None, None) => (format!("http://{}", server?.addr()), IssuerSource::Recorded),
    };
    Some(Tokens {
        access: TokenSettings {
            issuer,
            audience: audience
                .filter(|a| !a.is_empty())
                .map(|a| (!a.eq_ignore_ascii_case("none")).then_some(a))?,
            access_ttl: Duration::from_secs(minutes? * 60),
        },
        issuer_source,
        algorithm: algorithm?,
        secret: secret?,
        cache_size: cache_size?,
    })
}
