//! A bounded cache of verified access tokens, so a gateway asking about the same token again
//! costs a SHA-256 and a map lookup instead of a signature check. It is keyed by the SHA-256 of
//! the exact token text (a changed byte is a different key, verified in full), keeps expiry
//! checked on every hit, is emptied whenever the key ring changes, and never affects revocation,
//! which callers check on every request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::secret::sha256;
use crate::token::{AccessClaims, LEEWAY_SECONDS};

pub struct VerifiedCache {
    entries: RwLock<HashMap<[u8; 32], Arc<AccessClaims>>>,
    capacity: usize,
}

impl VerifiedCache {
    /// A cache of at most `capacity` tokens; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    pub fn key(token: &str) -> [u8; 32] {
        sha256(token.as_bytes())
    }

    /// The claims of a token verified before, unless it has expired since.
    pub fn get(&self, key: &[u8; 32], now: i64) -> Option<Arc<AccessClaims>> {
        if self.capacity == 0 {
            return None;
        }
        let claims = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()?;
        (claims.exp + LEEWAY_SECONDS as i64 >= now).then_some(claims)
    }

    /// Remembers a verified token. When full, expired entries go first; if that frees nothing,
    /// the cache starts over (bounded memory matters more than the hit rate of a flood).
    pub fn insert(&self, key: [u8; 32], claims: Arc<AccessClaims>, now: i64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, c| c.exp + LEEWAY_SECONDS as i64 >= now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, claims);
    }

    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            exp,
            iat: 0,
            nbf: None,
            jti: "j".into(),
            client_id: "c".into(),
            tenant: "t".into(),
            roles: vec![],
            permissions: vec![],
            role: None,
            email: "e".into(),
            sid: None,
        })
    }

    #[test]
    fn hits_expire_with_their_token_and_the_size_stays_bounded() {
        let cache = VerifiedCache::new(2);
        let (a, b, c) = (
            VerifiedCache::key("a"),
            VerifiedCache::key("b"),
            VerifiedCache::key("c"),
        );
        cache.insert(a, claims(100), 0);
        assert!(cache.get(&a, 100 + LEEWAY_SECONDS as i64).is_some());
        assert!(
            cache.get(&a, 101 + LEEWAY_SECONDS as i64).is_none(),
            "expired"
        );
        cache.insert(b, claims(1000), 0);
        cache.insert(c, claims(1000), 500);
        assert!(cache.get(&a, 0).is_none(), "the expired entry made room");
        assert_eq!(cache.len(), 2);
        cache.insert(a, claims(1000), 500);
        assert!(cache.len() <= 2);
        assert!(VerifiedCache::new(0).get(&a, 0).is_none());
    }
}
