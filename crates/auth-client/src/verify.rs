//! The verifier: checks an access token's signature with the algorithm pinned (keys from the
//! JWKS or a shared HS256 secret), its `typ`, `iss`, `aud`, `exp`, `nbf` and `iat`.

use std::sync::Arc;
use std::time::Duration;

use auth_proto::{ACCESS_TOKEN_TYP, AccessClaims};
use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::error::{VerifyError, rejection};
use crate::fetch::KeySource;
use crate::jwks::CacheSettings;

/// The audience a verifier expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Tokens must carry this `aud` (the service's `AUTH_AUDIENCE`).
    Expect(String),
    /// No audience expected, for a service run with `AUTH_AUDIENCE=none`: tokens must carry
    /// no `aud` at all (one that names an audience is meant for someone else, RFC 7519 4.1.3).
    None,
}

impl Audience {
    pub fn expect(audience: impl Into<String>) -> Self {
        Self::Expect(audience.into())
    }

    /// `none` (any case) or empty is [`Audience::None`], anything else that audience.
    pub fn from_setting(value: &str) -> Self {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("none") {
            Self::None
        } else {
            Self::Expect(value.to_owned())
        }
    }
}

/// What a verifier accepts.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// The expected `iss` (the service's `AUTH_ISSUER`).
    pub issuer: String,
    pub audience: Audience,
    /// The one algorithm accepted; a token naming another is refused. `EdDSA` by default
    /// (JWKS mode); shared-secret mode uses `HS256`.
    pub algorithm: Algorithm,
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (30 s, as the service).
    pub leeway: Duration,
    /// Longer tokens are refused before any parsing.
    pub max_token_bytes: usize,
    pub cache: CacheSettings,
}

impl VerifierSettings {
    pub fn new(issuer: impl Into<String>, audience: Audience) -> Self {
        Self {
            issuer: issuer.into(),
            audience,
            algorithm: Algorithm::EdDSA,
            leeway: Duration::from_secs(30),
            max_token_bytes: 8 * 1024,
            cache: CacheSettings::default(),
        }
    }
}

enum Keys {
    Jwks(Box<KeySource>),
    Shared(DecodingKey),
}

struct Inner {
    settings: VerifierSettings,
    validation: Validation,
    keys: Keys,
}

/// Verifies access tokens locally. Cheap to clone (one shared cache); use one per process.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.settings.issuer)
            .field("audience", &self.inner.settings.audience)
            .field("algorithm", &self.inner.settings.algorithm)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// JWKS mode with a default HTTP client (plain HTTP unless reqwest's TLS is enabled).
    pub fn jwks(url: &str, settings: VerifierSettings) -> Result<Self, VerifyError> {
        // `Client::new` would panic where building fails; this answers an error instead.
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| VerifyError::Settings(format!("HTTP client: {e}")))?;
        Self::jwks_with_client(url, settings, http)
    }

    /// JWKS mode with the given HTTP client (for TLS roots, proxies, ...).
    pub fn jwks_with_client(
        url: &str,
        settings: VerifierSettings,
        http: reqwest::Client,
    ) -> Result<Self, VerifyError> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| VerifyError::Settings(format!("JWKS URL {url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(VerifyError::Settings(format!(
                "JWKS URL {url}: not http(s)"
            )));
        }
        let family_ok = matches!(
            settings.algorithm,
            Algorithm::EdDSA
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        );
        if !family_ok {
            return Err(VerifyError::Settings(format!(
                "{:?} takes no key from a JWKS; use Verifier::shared_secret",
                settings.algorithm
            )));
        }
        let source = KeySource::new(url, http, settings.algorithm, settings.cache.clone());
        Ok(Self::new(settings, Keys::Jwks(Box::new(source))))
    }

    /// Shared-secret mode: tokens signed with HS256 and the service's `JWT_SECRET_KEY`.
    pub fn shared_secret(
        secret: &[u8],
        mut settings: VerifierSettings,
    ) -> Result<Self, VerifyError> {
        if secret.len() < 32 {
            return Err(VerifyError::Settings(
                "the HS256 secret must be at least 32 bytes".into(),
            ));
        }
        settings.algorithm = Algorithm::HS256;
        Ok(Self::new(
            settings,
            Keys::Shared(DecodingKey::from_secret(secret)),
        ))
    }

    fn new(settings: VerifierSettings, keys: Keys) -> Self {
        let mut validation = Validation::new(settings.algorithm);
        validation.leeway = settings.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.issuer]);
        match &settings.audience {
            Audience::Expect(audience) => {
                validation.set_audience(&[audience]);
                validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
            }
            Audience::None => {
                validation.validate_aud = false;
                validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
            }
        }
        Self {
            inner: Arc::new(Inner {
                settings,
                validation,
                keys,
            }),
        }
    }

    pub fn settings(&self) -> &VerifierSettings {
        &self.inner.settings
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let settings = &self.inner.settings;
        if token.len() > settings.max_token_bytes {
            return Err(VerifyError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != settings.algorithm {
            return Err(VerifyError::Algorithm);
        }
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(VerifyError::Type);
        }
        if header.crit.is_some() {
            // RFC 7515 section 4.1.11: no extension is understood, so none may be critical.
            return Err(VerifyError::Malformed);
        }
        let key = match &self.inner.keys {
            Keys::Shared(key) => key.clone(),
            Keys::Jwks(source) => match header.kid.as_deref() {
                Some(kid) if !kid.is_empty() && kid.len() <= 256 => source.key(kid).await?,
                _ => return Err(VerifyError::UnknownKey),
            },
        };
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.inner.validation)
            .map_err(|e| rejection(e.kind()))?
            .claims;
        if settings.audience == Audience::None && claims.aud.is_some() {
            return Err(VerifyError::Claims);
        }
        let leeway = i64::try_from(settings.leeway.as_secs()).unwrap_or(i64::MAX);
        if claims.iat > now_unix().saturating_add(leeway) {
            return Err(VerifyError::Immature);
        }
        Ok(claims)
    }

    /// Verifies the bearer token of a request's `Authorization` header.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<AccessClaims, VerifyError> {
        let token = bearer(headers).ok_or(VerifyError::Missing)?;
        self.verify(token).await
    }

    /// Fetches the key set now (JWKS mode; at start-up, to fail early); how many keys it has.
    pub async fn refresh_keys(&self) -> Result<usize, VerifyError> {
        match &self.inner.keys {
            Keys::Jwks(source) => source.refresh().await,
            Keys::Shared(_) => Ok(1),
        }
    }

    /// How many JWKS fetches were started so far (0 in shared-secret mode).
    pub fn key_fetches(&self) -> u64 {
        match &self.inner.keys {
            Keys::Jwks(source) => source.fetches(),
            Keys::Shared(_) => 0,
        }
    }
}

/// The token of `Authorization: Bearer <token>` (scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
