//! Access tokens (RFC 9068 JWTs): minting with the active key and verification with the
//! algorithm pinned, `typ`, `iss`, `aud`, `exp`, `nbf` and `iat` checked and the key chosen by
//! `kid` among the published ones. Header fields that point elsewhere (`jku`, `x5u`, `jwk`)
//! are never followed.

mod cache;
mod claims;

pub use cache::{CacheStats, TokenKey, VerifiedCache};
pub use claims::{
    ACCESS_TOKEN_TYP, AccessClaims, CLIENT_ID, Identity, LEEWAY_SECONDS, SIMPLEJWT_ACCESS, Verified,
};

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use auth_proto::{Jwk, JwkSet};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::domain::{SessionId, User};
use crate::error::{MintError, TokenRejection};
use crate::keys::{KeyState, KeyVault, KeyVaultError, StoredKey};
use crate::secret::b64url;

/// Which algorithm signs access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// Ed25519 keys kept in the database and published as JWKS.
    EdDSA,
    /// A shared secret (`JWT_SECRET_KEY`) for platforms whose services verify with it.
    HS256,
}

impl JwtAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::HS256 => "HS256",
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            Self::EdDSA => Algorithm::EdDSA,
            Self::HS256 => Algorithm::HS256,
        }
    }
}

/// Issuer, audience and lifetime of access tokens.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    /// None: tokens carry no `aud`, and a token that carries one is refused.
    pub audience: Option<String>,
    pub access_ttl: Duration,
}

/// A freshly minted access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
    pub expires_at: i64,
}

/// An access token whose header and claims are encoded but not yet signed
/// ([`TokenService::prepare`]): the token without its signature.
#[derive(Debug, Clone)]
pub struct UnsignedToken {
    /// The JWS signing input: `header.claims`, each base64url-encoded.
    pub input: String,
    pub expires_in: u64,
    pub expires_at: i64,
}

/// How the active key signs: the key, and the header (with its `kid`) encoded once.
struct Signer {
    header_b64: String,
    key: SignerKey,
}

enum SignerKey {
    /// Ed25519 with the key expanded once, not per token.
    Ed25519(Box<SigningKey>),
    /// HS256 with the shared secret.
    Shared(EncodingKey),
}

/// The keys in use: the one that signs and every one that verifies.
struct KeyRing {
    signing: Option<Signer>,
    verifying: HashMap<String, DecodingKey>,
    /// Verifying key of HS256 mode (no `kid`).
    shared: Option<DecodingKey>,
    jwks: Arc<JwkSet>,
    /// The published keys and their states, to tell whether a reload changes anything.
    fingerprint: Vec<(String, KeyState)>,
}

/// Mints and verifies access tokens. Cheap to share; keys can be swapped while in use.
pub struct TokenService {
    settings: TokenSettings,
    algorithm: JwtAlgorithm,
    validation: Validation,
    ring: RwLock<Arc<KeyRing>>,
    cache: VerifiedCache,
}

/// Verified tokens remembered by default (see [`TokenService::with_cache_capacity`]).
pub const DEFAULT_CACHE_CAPACITY: usize = 16_384;

impl TokenService {
    /// HS256 mode: one shared secret signs and verifies; the JWKS document is empty.
    pub fn with_shared_secret(settings: TokenSettings, secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let header = access_header(JwtAlgorithm::HS256, None);
        let ring = KeyRing {
            signing: Some(Signer {
                header_b64: b64url(&serde_json::to_vec(&header).expect("a JWT header serializes")),
                key: SignerKey::Shared(EncodingKey::from_secret(bytes)),
            }),
            verifying: HashMap::new(),
            shared: Some(DecodingKey::from_secret(bytes)),
            jwks: Arc::new(JwkSet::default()),
            fingerprint: Vec::new(),
        };
        Self::new(settings, JwtAlgorithm::HS256, ring)
    }

    /// EdDSA mode with the given stored keys (see [`TokenService::install_keys`]).
    pub fn with_keys(
        settings: TokenSettings,
        keys: &[StoredKey],
        vault: KeyVault<'_>,
    ) -> Result<Self, KeyVaultError> {
        let ring = build_ring(keys, vault)?;
        Ok(Self::new(settings, JwtAlgorithm::EdDSA, ring))
    }

    fn new(settings: TokenSettings, algorithm: JwtAlgorithm, ring: KeyRing) -> Self {
        let mut validation = Validation::new(algorithm.jwt());
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.issuer]);
        // Without an audience of ours, any `aud` is someone else's: jsonwebtoken refuses a
        // token that carries one when no audience is set.
        match &settings.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
            }
            None => validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]),
        }
        Self {
            settings,
            algorithm,
            validation,
            ring: RwLock::new(Arc::new(ring)),
            cache: VerifiedCache::new(DEFAULT_CACHE_CAPACITY),
        }
    }

    /// Sets how many verified tokens are remembered (0: verify every time).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = VerifiedCache::new(capacity);
        self
    }

    /// Replaces the key ring (EdDSA mode): the `active` key signs, every published key verifies.
    pub fn install_keys(
        &self,
        keys: &[StoredKey],
        vault: KeyVault<'_>,
    ) -> Result<(), KeyVaultError> {
        if self.current().fingerprint == fingerprint(keys) {
            // The periodic reload of an unchanged ring: keep the keys and the cache.
            return Ok(());
        }
        let ring = build_ring(keys, vault)?;
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ring);
        // A key may have left the ring: its tokens must not be served from the cache.
        self.cache.clear();
        Ok(())
    }

    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// The public keys, as published at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Arc<JwkSet> {
        self.current().jwks.clone()
    }

    fn current(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Mints an access token for `user`, optionally bound to session `sid`.
    pub fn mint(
        &self,
        user: &User,
        sid: Option<SessionId>,
        now: i64,
    ) -> Result<AccessToken, MintError> {
        let unsigned = self.prepare(user, sid, now)?;
        Ok(AccessToken {
            token: self.sign(unsigned.input)?,
            expires_in: unsigned.expires_in,
            expires_at: unsigned.expires_at,
        })
    }

    /// The header and claims of an access token for `user`, optionally bound to session `sid`,
    /// encoded for [`TokenService::sign`]: a token made in two steps, so that a refresh can
    /// seal it before its database write and sign it after, off the connection.
    pub fn prepare(
        &self,
        user: &User,
        sid: Option<SessionId>,
        now: i64,
    ) -> Result<UnsignedToken, MintError> {
        let ring = self.current();
        let Some(signer) = ring.signing.as_ref() else {
            return Err(MintError::NoSigningKey);
        };
        let ttl = self.settings.access_ttl.as_secs();
        let sub = user.id.to_string();
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            user_id: Some(sub.clone()),
            sub,
            aud: self.settings.audience.clone(),
            exp: now + ttl as i64,
            iat: now,
            nbf: None,
            jti: Uuid::now_v7().to_string(),
            client_id: CLIENT_ID.into(),
            tenant: user.tenant.as_str().to_owned(),
            roles: user.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            permissions: user
                .permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            role: user.roles.first().map(|r| r.as_str().to_owned()),
            email: user.email.clone(),
            email_verified: user.email_verified,
            sid: sid.map(|s| s.to_string()),
            token_type: Some(SIMPLEJWT_ACCESS.into()),
        };
        let payload = serde_json::to_vec(&claims).map_err(|e| MintError::Encoding(e.into()))?;
        // Room for the signature too, which `sign` appends in place.
        let mut input = String::with_capacity(signer.header_b64.len() + payload.len() * 4 / 3 + 90);
        input.push_str(&signer.header_b64);
        input.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut input);
        Ok(UnsignedToken {
            input,
            expires_in: ttl,
            expires_at: claims.exp,
        })
    }

    /// Signs a signing input made by [`TokenService::prepare`] with the active key. Both
    /// algorithms' signatures are deterministic (RFC 8032, HMAC): the same input signed by the
    /// same key is the same token, byte for byte. If the active key changed since the input
    /// was made, its header is replaced by the active key's first.
    pub fn sign(&self, input: String) -> Result<String, MintError> {
        let ring = self.current();
        let Some(signer) = ring.signing.as_ref() else {
            return Err(MintError::NoSigningKey);
        };
        let Some((header, claims)) = input.split_once('.') else {
            return Err(MintError::NotSigningInput);
        };
        if claims.contains('.') {
            return Err(MintError::NotSigningInput);
        }
        let mut token = if header == signer.header_b64 {
            input
        } else {
            [signer.header_b64.as_str(), claims].join(".")
        };
        match &signer.key {
            SignerKey::Ed25519(key) => {
                let signature = key.sign(token.as_bytes());
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
            }
            SignerKey::Shared(key) => {
                let signature = jsonwebtoken::crypto::sign(token.as_bytes(), key, Algorithm::HS256)
                    .map_err(|e| MintError::Encoding(e.into()))?;
                token.push('.');
                token.push_str(&signature);
            }
        }
        Ok(token)
    }

    /// Verifies an access token: its signature, header and claims, or, for a token verified
    /// before, its expiry alone (a keyed hash and a lookup: the cache keeps its identity, so
    /// nothing is decoded again). Revocation is the caller's to check
    /// ([`crate::service::TokenChecks`]).
    pub fn check(&self, token: &str, now: i64) -> Result<Verified, TokenRejection> {
        let key = self.cache.key(token);
        if let Some(verified) = self.cache.get(&key, now) {
            return Ok(verified);
        }
        let claims = self.verify_signature(token, now)?;
        let identity = Identity::of(&claims)?;
        Ok(self
            .cache
            .insert(key, identity, (claims.exp, claims.iat), now))
    }

    /// How often [`TokenService::check`] was answered from its cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Verifies an access token in full, without the cache.
    pub fn verify_signature(&self, token: &str, now: i64) -> Result<AccessClaims, TokenRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        if header.alg != self.algorithm.jwt() {
            return Err(TokenRejection::Algorithm);
        }
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(TokenRejection::Type);
        }
        if header.crit.is_some() {
            // RFC 7515 section 4.1.11: we understand no extensions, so none may be critical.
            return Err(TokenRejection::Malformed);
        }
        let ring = self.current();
        let key = match self.algorithm {
            JwtAlgorithm::HS256 => ring.shared.as_ref(),
            JwtAlgorithm::EdDSA => header
                .kid
                .as_deref()
                .and_then(|kid| ring.verifying.get(kid)),
        }
        .ok_or(TokenRejection::UnknownKey)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map_err(|e| rejection(e.kind()))?;
        let claims = data.claims;
        if claims.iat > now + LEEWAY_SECONDS as i64 {
            return Err(TokenRejection::Immature);
        }
        Ok(claims)
    }
}

fn rejection(kind: &ErrorKind) -> TokenRejection {
    match kind {
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::ImmatureSignature => TokenRejection::Immature,
        ErrorKind::InvalidSignature => TokenRejection::Signature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenRejection::Algorithm,
        ErrorKind::InvalidIssuer
        | ErrorKind::InvalidAudience
        | ErrorKind::InvalidSubject
        | ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_) => TokenRejection::Claims,
        _ => TokenRejection::Malformed,
    }
}

fn access_header(algorithm: JwtAlgorithm, kid: Option<String>) -> Header {
    let mut header = Header::new(algorithm.jwt());
    header.typ = Some(ACCESS_TOKEN_TYP.into());
    header.kid = kid;
    header
}

fn fingerprint(keys: &[StoredKey]) -> Vec<(String, KeyState)> {
    keys.iter()
        .filter(|k| k.state.is_published() && k.algorithm == "EdDSA")
        .map(|k| (k.kid.clone(), k.state))
        .collect()
}

fn build_ring(keys: &[StoredKey], vault: KeyVault<'_>) -> Result<KeyRing, KeyVaultError> {
    let mut signing = None;
    let mut verifying = HashMap::new();
    let mut jwks = JwkSet::default();
    for key in keys
        .iter()
        .filter(|k| k.state.is_published() && k.algorithm == "EdDSA")
    {
        if key.state == KeyState::Active {
            let seed = Zeroizing::new(vault.open(key)?);
            let header = access_header(JwtAlgorithm::EdDSA, Some(key.kid.clone()));
            let header_json = serde_json::to_vec(&header)
                .map_err(|e| KeyVaultError::Corrupt(format!("{}: header: {e}", key.kid)))?;
            signing = Some(Signer {
                header_b64: b64url(&header_json),
                key: SignerKey::Ed25519(Box::new(SigningKey::from_bytes(&seed))),
            });
        }
        verifying.insert(key.kid.clone(), DecodingKey::from_ed_der(&key.public_key));
        jwks.keys.push(Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: b64url(&key.public_key),
            kid: key.kid.clone(),
            alg: "EdDSA".into(),
            usage: "sig".into(),
        });
    }
    Ok(KeyRing {
        signing,
        verifying,
        shared: None,
        jwks: Arc::new(jwks),
        fingerprint: fingerprint(keys),
    })
}

#[cfg(test)]
mod tests;
