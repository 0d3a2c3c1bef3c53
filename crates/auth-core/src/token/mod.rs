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
        let token = match signer {
            Signer::Ed25519 { key, header_b64 } => {
                let payload =
                    serde_json::to_vec(&claims).map_err(|e| MintError::Encoding(e.into()))?;
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
                jsonwebtoken::encode(&header, &claims, key)
                    .map_err(|e| MintError::Encoding(e.into()))?
            }
        };
        Ok(AccessToken {
            token,
            expires_in: ttl,
            expires_at: claims.exp,
        })
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
    use crate::domain::{Permission, RoleName, TenantId, UserId};
    use crate::keys::KeyState;

    fn settings() -> TokenSettings {
        TokenSettings {
            issuer: "https://auth.test".into(),
            audience: Some("platform".into()),
            access_ttl: Duration::from_secs(900),
        }
    }

    fn user() -> User {
        User {
            id: UserId::generate(),
            tenant: TenantId::default_tenant(),
            email: "a@example.com".into(),
            username: None,
            roles: vec![RoleName::trusted("admin"), RoleName::trusted("user")],
            permissions: vec![Permission::trusted("users:read")],
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
        let u = user();
        let sid = SessionId::generate();
        let t = svc.mint(&u, Some(sid), now).unwrap();
        let header = jsonwebtoken::decode_header(&t.token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
        let claims = svc.verify_signature(&t.token, now).unwrap();
        assert_eq!(claims.sub, u.id.to_string());
        assert_eq!(claims.sid, Some(sid.to_string()));
        assert_eq!(claims.role.as_deref(), Some("admin"));
        assert_eq!(claims.roles, ["admin", "user"]);
        assert_eq!(claims.permissions, ["users:read"]);
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_deref()),
            ("https://auth.test", Some("platform"))
        );
        assert_eq!(claims.token_type.as_deref(), Some("access"));
        assert_eq!(claims.user_id, Some(claims.sub.clone()));
        assert_eq!(claims.exp - claims.iat, 900);
        assert_eq!(t.expires_at, claims.exp);
        assert_eq!(svc.jwks().keys.len(), 1);
    }

    #[test]
    fn expired_foreign_and_wrong_audience_tokens_are_refused() {
        let (svc, _) = eddsa();
        let now = crate::now_unix();
        let old = svc.mint(&user(), None, now - 2000).unwrap();
        assert_eq!(svc.check(&old.token, now), Err(TokenRejection::Expired));

        let (other, _) = eddsa();
        let foreign = other.mint(&user(), None, now).unwrap();
        assert_eq!(
            svc.check(&foreign.token, now),
            Err(TokenRejection::UnknownKey)
        );

        let vault = KeyVault::new(None);
        let key = vault.generate(KeyState::Active, 0);
        let mut s = settings();
        s.audience = Some("elsewhere".into());
        let misaimed = TokenService::with_keys(s, std::slice::from_ref(&key), vault).unwrap();
        let both = TokenService::with_keys(settings(), &[key], vault).unwrap();
        let t = misaimed.mint(&user(), None, now).unwrap();
        assert_eq!(both.check(&t.token, now), Err(TokenRejection::Claims));
    }

    #[test]
    fn without_an_audience_tokens_carry_none_and_one_that_does_is_refused() {
        let vault = KeyVault::new(None);
        let key = vault.generate(KeyState::Active, 0);
        let mut s = settings();
        s.audience = None;
        let none = TokenService::with_keys(s, std::slice::from_ref(&key), vault).unwrap();
        let aimed = TokenService::with_keys(settings(), &[key], vault).unwrap();
        let now = crate::now_unix();
        let t = none.mint(&user(), None, now).unwrap();
        let claims = none.verify_signature(&t.token, now).unwrap();
        assert_eq!(claims.aud, None);
        let payload = t.token.split('.').nth(1).unwrap();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert!(!json.contains("\"aud\""), "{json}");
        assert_eq!(
            aimed.check(&t.token, now),
            Err(TokenRejection::Claims),
            "an audience of ours is required when there is one"
        );
        let with_aud = aimed.mint(&user(), None, now).unwrap();
        assert_eq!(
            none.check(&with_aud.token, now),
            Err(TokenRejection::Claims),
            "any audience is someone else's"
        );
    }

    #[test]
    fn reloading_an_unchanged_ring_keeps_the_cache_and_a_changed_one_empties_it() {
        let vault = KeyVault::new(None);
        let key = vault.generate(KeyState::Active, 0);
        let svc = TokenService::with_keys(settings(), std::slice::from_ref(&key), vault).unwrap();
        let now = crate::now_unix();
        let token = svc.mint(&user(), None, now).unwrap().token;
        svc.check(&token, now).unwrap();
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
            svc.check(&token, now).is_ok(),
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
        u.tenant = TenantId::trusted("tenant-é");
        u.roles = vec![RoleName::trusted("ad\"min"), RoleName::trusted("user")];
        for sid in [Some(SessionId::generate()), None] {
            let t = svc.mint(&u, sid, now).unwrap();
            let claims = svc.verify_signature(&t.token, now).unwrap();
            let expected = Verified {
                identity: Arc::new(Identity::of(&claims).unwrap()),
                exp: claims.exp,
                iat: claims.iat,
            };
            assert_eq!(
                svc.check(&t.token, now).unwrap(),
                expected,
                "verified in full"
            );
            let cached = svc.check(&t.token, now).unwrap();
            assert_eq!(cached, expected, "answered from the cache");
            assert_eq!(&*cached.identity.email, u.email);
            assert_eq!(cached.identity.session_id, sid);
            assert_eq!(cached.identity.tenant, u.tenant);
            assert_eq!(
                cached.identity.role().map(RoleName::as_str),
                Some("ad\"min")
            );
        }
        // Two tokens of one session share one identity; another session has its own.
        let s2 = Some(SessionId::generate());
        let first = svc
            .check(&svc.mint(&u, s2, now).unwrap().token, now)
            .unwrap();
        let second = svc
            .check(&svc.mint(&u, s2, now + 1).unwrap().token, now)
            .unwrap();
        assert!(Arc::ptr_eq(&first.identity, &second.identity));
        assert_eq!(second.iat, now + 1, "times are each token's own");
        let other = svc
            .check(
                &svc.mint(&u, Some(SessionId::generate()), now)
                    .unwrap()
                    .token,
                now,
            )
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
        assert!(hs.check(&hs_token, now).is_ok());
        assert_eq!(hs.check(&ed_token, now), Err(TokenRejection::Algorithm));
        assert_eq!(ed.check(&hs_token, now), Err(TokenRejection::Algorithm));
        assert!(hs.jwks().keys.is_empty());
    }
}
