//! Access tokens (RFC 9068 JWTs): minting with the active key and verification with the
//! algorithm pinned, `typ`, `iss`, `aud`, `exp`, `nbf` and `iat` checked and the key chosen by
//! `kid` among the published ones. Header fields that point elsewhere (`jku`, `x5u`, `jwk`)
//! are never followed.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use auth_proto::{ActiveIdentity, Jwk, JwkSet};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use http::HeaderMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::User;
use crate::error::TokenRejection;
use crate::keys::{KeyState, KeyVault, KeyVaultError, StoredKey};
use crate::secret::b64url;
use crate::token_cache::VerifiedCache;

/// The `typ` header of access tokens (RFC 9068 section 2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;
/// The `client_id` claim: tokens are issued to first-party clients of this service.
pub const CLIENT_ID: &str = "auth-service";

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
    pub audience: String,
    pub access_ttl: Duration,
}

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub client_id: String,
    pub tenant: String,
    pub roles: Vec<String>,
    /// Permissions granted by the roles (`users:write`, ...).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The first role, for clients of the older services that read a single `role`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Who a verified access token speaks for: the claims that token checks answer with, other
/// than the token's times. The tokens of one session carry the same identity until its
/// roles change, so the verified-token cache keeps each distinct identity once and shares it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub sub: Box<str>,
    pub email: Box<str>,
    pub tenant: Box<str>,
    pub sid: Option<Box<str>>,
    /// The first role, as the `role` claim carries it.
    pub role: Option<Box<str>>,
    pub roles: Box<[Box<str>]>,
    pub permissions: Box<[Box<str>]>,
    /// The opening of its introspection answer, rendered when first asked for.
    introspection: OnceLock<Box<str>>,
    /// Its forward-auth headers, rendered when first asked for.
    headers: OnceLock<HeaderMap>,
}

impl Identity {
    pub fn of(claims: &AccessClaims) -> Self {
        let boxed = |values: &[String]| values.iter().map(|v| v.as_str().into()).collect();
        Self {
            sub: claims.sub.as_str().into(),
            email: claims.email.as_str().into(),
            tenant: claims.tenant.as_str().into(),
            sid: claims.sid.as_deref().map(Into::into),
            role: claims.role.as_deref().map(Into::into),
            roles: boxed(&claims.roles),
            permissions: boxed(&claims.permissions),
            introspection: OnceLock::new(),
            headers: OnceLock::new(),
        }
    }

    /// The members of an active introspection of this identity's tokens, up to their times
    /// (see [`auth_proto::ActiveIdentity::render`]); rendered once, then shared by those tokens.
    pub fn introspection(&self) -> &str {
        self.introspection
            .get_or_init(|| self.wire().render().into())
    }

    /// The `X-Auth-*` headers of a forward-auth answer for this identity's tokens (see
    /// [`auth_proto::ActiveIdentity::headers`]); rendered once, then cloned into each answer,
    /// which shares their values instead of copying and checking them again.
    pub fn forward_auth_headers(&self) -> &HeaderMap {
        self.headers.get_or_init(|| self.wire().headers())
    }

    fn wire(&self) -> ActiveIdentity<'_, Box<str>> {
        ActiveIdentity {
            sub: &self.sub,
            sid: self.sid.as_deref(),
            roles: &self.roles,
            role: self.role.as_deref(),
            permissions: &self.permissions,
            tenant: &self.tenant,
            email: &self.email,
        }
    }

    /// The claims, without what is derived from them.
    fn fields(&self) -> impl Eq + Hash + '_ {
        (
            &self.sub,
            &self.email,
            &self.tenant,
            &self.sid,
            &self.role,
            &self.roles,
            &self.permissions,
        )
    }
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

impl Eq for Identity {}

impl Hash for Identity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.fields().hash(state);
    }
}

/// A verified access token: whose it is and when it was issued and expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub identity: Arc<Identity>,
    pub exp: i64,
    pub iat: i64,
}

/// A freshly minted access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
    pub claims: AccessClaims,
}

/// How the active key signs.
enum Signer {
    /// Ed25519 with the key expanded once (not per token) and the header, with its `kid`,
    /// encoded once.
    Ed25519 {
        key: Box<SigningKey>,
        header_b64: String,
    },
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
        let ring = KeyRing {
            signing: Some(Signer::Shared(EncodingKey::from_secret(bytes))),
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
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
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
    pub fn mint(&self, user: &User, sid: Option<&str>, now: i64) -> Result<AccessToken, String> {
        let ring = self.current();
        let Some(signer) = ring.signing.as_ref() else {
            return Err("no active signing key".into());
        };
        let ttl = self.settings.access_ttl.as_secs();
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: user.id.to_string(),
            aud: self.settings.audience.clone(),
            exp: now + ttl as i64,
            iat: now,
            nbf: None,
            jti: Uuid::now_v7().to_string(),
            client_id: CLIENT_ID.into(),
            tenant: user.tenant.clone(),
            roles: user.roles.clone(),
            permissions: user.permissions.clone(),
            role: user.roles.first().cloned(),
            email: user.email.clone(),
            sid: sid.map(str::to_owned),
        };
        let token = match signer {
            Signer::Ed25519 { key, header_b64 } => {
                let payload = serde_json::to_vec(&claims).map_err(|e| e.to_string())?;
                let mut token =
                    String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 90);
                token.push_str(header_b64);
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
                let signature = key.sign(token.as_bytes());
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
                token
            }
            Signer::Shared(key) => {
                let header = access_header(self.algorithm, None);
                jsonwebtoken::encode(&header, &claims, key).map_err(|e| e.to_string())?
            }
        };
        Ok(AccessToken {
            token,
            expires_in: ttl,
            claims,
        })
    }

    /// Verifies an access token and returns its claims; tokens verified before are answered
    /// from the cache (expiry still checked).
    pub fn verify(&self, token: &str, now: i64) -> Result<Arc<AccessClaims>, TokenRejection> {
        let key = self.cache.key(token);
        if self.cache.get(&key, now).is_some() {
            // Signature and claims were checked when the token was cached; read them again.
            return with_payload(token, |json| {
                serde_json::from_str(json).map_err(|_| TokenRejection::Malformed)
            })
            .map(Arc::new);
        }
        let claims = self.verify_signature(token, now)?;
        self.cache.insert(key, &claims, now);
        Ok(Arc::new(claims))
    }

    /// Verifies an access token like [`TokenService::verify`] and answers with what token
    /// checks need (identity, roles, times). A token verified before costs a keyed hash and a
    /// lookup: the cache keeps its identity, so nothing is decoded again.
    pub fn check(&self, token: &str, now: i64) -> Result<Verified, TokenRejection> {
        let key = self.cache.key(token);
        if let Some(verified) = self.cache.get(&key, now) {
            return Ok(verified);
        }
        let claims = self.verify_signature(token, now)?;
        Ok(self.cache.insert(key, &claims, now))
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

/// Hands the JSON payload of a token whose signature was checked before to `read`, decoded on
/// the stack when it is of a usual size.
fn with_payload<R>(
    token: &str,
    read: impl FnOnce(&str) -> Result<R, TokenRejection>,
) -> Result<R, TokenRejection> {
    let payload = token.split('.').nth(1).ok_or(TokenRejection::Malformed)?;
    let mut buf = [0u8; 2048];
    // One UTF-8 check of the whole payload; `from_slice` would check every string again.
    match URL_SAFE_NO_PAD.decode_slice(payload, &mut buf) {
        Ok(n) => read(std::str::from_utf8(&buf[..n]).map_err(|_| TokenRejection::Malformed)?),
        Err(_) => {
            let json = crate::secret::b64url_decode(payload).ok_or(TokenRejection::Malformed)?;
            read(std::str::from_utf8(&json).map_err(|_| TokenRejection::Malformed)?)
        }
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
            signing = Some(Signer::Ed25519 {
                key: Box::new(SigningKey::from_bytes(&seed)),
                header_b64: b64url(&header_json),
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
mod tests {
    use super::*;
    use crate::keys::KeyState;

    fn settings() -> TokenSettings {
        TokenSettings {
            issuer: "https://auth.test".into(),
            audience: "platform".into(),
            access_ttl: Duration::from_secs(900),
        }
    }

    fn user() -> User {
        User {
            id: Uuid::now_v7(),
            tenant: "default".into(),
            email: "a@example.com".into(),
            username: None,
            roles: vec!["admin".into(), "user".into()],
            permissions: vec!["users:read".into()],
            email_verified: false,
            disabled: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn eddsa() -> (TokenService, StoredKey) {
        let vault = KeyVault::new(None);
        let key = vault.generate(KeyState::Active, 0);
        let svc = TokenService::with_keys(settings(), std::slice::from_ref(&key), vault).unwrap();
        (svc, key)
    }

    #[test]
    fn minted_tokens_verify_and_carry_the_rfc9068_claims() {
        let (svc, key) = eddsa();
        let now = crate::now_unix();
        let t = svc.mint(&user(), Some("sid-1"), now).unwrap();
        let header = jsonwebtoken::decode_header(&t.token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
        let claims = svc.verify(&t.token, now).unwrap();
        assert_eq!(*claims, t.claims);
        assert_eq!(claims.role.as_deref(), Some("admin"));
        assert_eq!(claims.exp - claims.iat, 900);
        assert_eq!(svc.jwks().keys.len(), 1);
    }

    #[test]
    fn expired_foreign_and_wrong_audience_tokens_are_refused() {
        let (svc, _) = eddsa();
        let now = crate::now_unix();
        let old = svc.mint(&user(), None, now - 2000).unwrap();
        assert_eq!(svc.verify(&old.token, now), Err(TokenRejection::Expired));

        let (other, _) = eddsa();
        let foreign = other.mint(&user(), None, now).unwrap();
        assert_eq!(
            svc.verify(&foreign.token, now),
            Err(TokenRejection::UnknownKey)
        );

        let vault = KeyVault::new(None);
        let key = vault.generate(KeyState::Active, 0);
        let mut s = settings();
        s.audience = "elsewhere".into();
        let misaimed = TokenService::with_keys(s, std::slice::from_ref(&key), vault).unwrap();
        let both = TokenService::with_keys(settings(), &[key], vault).unwrap();
        let t = misaimed.mint(&user(), None, now).unwrap();
        assert_eq!(both.verify(&t.token, now), Err(TokenRejection::Claims));
    }

    #[test]
    fn reloading_an_unchanged_ring_keeps_the_cache_and_a_changed_one_empties_it() {
        let vault = KeyVault::new(None);
        let key = vault.generate(KeyState::Active, 0);
        let svc = TokenService::with_keys(settings(), std::slice::from_ref(&key), vault).unwrap();
        let now = crate::now_unix();
        let token = svc.mint(&user(), None, now).unwrap().token;
        svc.verify(&token, now).unwrap();
        assert_eq!(svc.cache.len(), 1);
        svc.install_keys(std::slice::from_ref(&key), vault).unwrap();
        assert_eq!(
            svc.cache.len(),
            1,
            "same keys, same states: nothing to redo"
        );
        let mut retired = key.clone();
        retired.state = KeyState::Retired;
        let next = vault.generate(KeyState::Active, 1);
        svc.install_keys(&[retired, next], vault).unwrap();
        assert!(
            svc.cache.is_empty(),
            "a changed ring drops cached verifications"
        );
        assert!(
            svc.verify(&token, now).is_ok(),
            "the retired key still verifies"
        );
    }

    #[test]
    fn checked_tokens_answer_their_own_claims_cached_or_not() {
        let (svc, _) = eddsa();
        let now = crate::now_unix();
        let mut u = user();
        // Escaped in the payload's JSON (quote, backslash, control character) or not (é):
        // both must read back exactly.
        u.email = "q\"u\\o\te@exämple.com".into();
        u.tenant = "tenant-é".into();
        u.roles = vec!["ad\"min".into(), "user".into()];
        for sid in [Some("sid-1"), None] {
            let t = svc.mint(&u, sid, now).unwrap();
            let expected = Verified {
                identity: Arc::new(Identity::of(&t.claims)),
                exp: t.claims.exp,
                iat: t.claims.iat,
            };
            assert_eq!(
                svc.check(&t.token, now).unwrap(),
                expected,
                "verified in full"
            );
            let cached = svc.check(&t.token, now).unwrap();
            assert_eq!(cached, expected, "answered from the cache");
            assert_eq!(&*cached.identity.email, u.email);
            assert_eq!(cached.identity.sid.as_deref(), sid);
            assert_eq!(cached.identity.role.as_deref(), Some("ad\"min"));
            assert_eq!(*svc.verify(&t.token, now).unwrap(), t.claims);
        }
        // Two tokens of one session share one identity; another session has its own.
        let first = svc
            .check(&svc.mint(&u, Some("s-2"), now).unwrap().token, now)
            .unwrap();
        let second = svc
            .check(&svc.mint(&u, Some("s-2"), now + 1).unwrap().token, now)
            .unwrap();
        assert!(Arc::ptr_eq(&first.identity, &second.identity));
        assert_eq!(second.iat, now + 1, "times are each token's own");
        let headers = first.identity.forward_auth_headers();
        assert_eq!(headers[auth_proto::X_AUTH_SESSION_ID], "s-2");
        assert_eq!(
            headers[auth_proto::X_AUTH_ROLES].as_bytes(),
            b"ad\"min,user"
        );
        assert_eq!(
            headers[auth_proto::X_AUTH_EMAIL].as_bytes(),
            u.email.as_bytes(),
            "a tab may be sent"
        );
        assert!(std::ptr::eq(
            headers,
            second.identity.forward_auth_headers()
        ));
        let other = svc
            .check(&svc.mint(&u, Some("s-3"), now).unwrap().token, now)
            .unwrap();
        assert!(!Arc::ptr_eq(&first.identity, &other.identity));

        let old = svc.mint(&u, None, now - 2000).unwrap();
        assert_eq!(svc.check(&old.token, now), Err(TokenRejection::Expired));
        let t = svc.mint(&u, None, now).unwrap();
        svc.check(&t.token, now).unwrap();
        let mut forged = t.token.clone();
        let last = forged.pop();
        forged.push(if last == Some('A') { 'Q' } else { 'A' });
        assert!(svc.check(&forged, now).is_err(), "one changed byte");
    }

    #[test]
    fn the_algorithm_is_pinned() {
        let secret = SecretString::from("x".repeat(32));
        let hs = TokenService::with_shared_secret(settings(), &secret);
        let (ed, _) = eddsa();
        let now = crate::now_unix();
        let hs_token = hs.mint(&user(), None, now).unwrap().token;
        let ed_token = ed.mint(&user(), None, now).unwrap().token;
        assert!(hs.verify(&hs_token, now).is_ok());
        assert_eq!(hs.verify(&ed_token, now), Err(TokenRejection::Algorithm));
        assert_eq!(ed.verify(&hs_token, now), Err(TokenRejection::Algorithm));
        assert!(hs.jwks().keys.is_empty());
    }
}
