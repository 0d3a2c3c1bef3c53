//! A bounded cache of verified access tokens, so a gateway asking about the same token again
//! costs a SHA-256, a map lookup and reading the claims instead of a signature check. It is
//! keyed by the SHA-256 of the exact token text (a changed byte is a different key, verified in
//! full) and keeps only the expiry (about 60 bytes a token), so 10,000 live tokens cost under a
//! megabyte; expiry is checked on every hit, the cache is emptied whenever the key ring changes,
//! and revocation is never its business: callers check it on every request.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::secret::sha256;
use crate::token::LEEWAY_SECONDS;

pub struct VerifiedCache {
    /// Token hash -> `exp` of a token whose signature and claims were verified.
    entries: RwLock<HashMap<[u8; 32], i64>>,
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

    /// Whether this token was verified before and has not expired since.
    pub fn contains(&self, key: &[u8; 32], now: i64) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let exp = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied();
        exp.is_some_and(|exp| exp + LEEWAY_SECONDS as i64 >= now)
    }

    /// Remembers a verified token. When full, expired entries go first; if that frees nothing,
    /// the cache starts over (bounded memory matters more than the hit rate of a flood).
    pub fn insert(&self, key: [u8; 32], exp: i64, now: i64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, exp| *exp + LEEWAY_SECONDS as i64 >= now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, exp);
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

    #[test]
    fn hits_expire_with_their_token_and_the_size_stays_bounded() {
        let cache = VerifiedCache::new(2);
        let (a, b, c) = (
            VerifiedCache::key("a"),
            VerifiedCache::key("b"),
            VerifiedCache::key("c"),
        );
        cache.insert(a, 100, 0);
        assert!(cache.contains(&a, 100 + LEEWAY_SECONDS as i64));
        assert!(!cache.contains(&a, 101 + LEEWAY_SECONDS as i64), "expired");
        cache.insert(b, 1000, 0);
        cache.insert(c, 1000, 500);
        assert!(!cache.contains(&a, 0), "the expired entry made room");
        assert_eq!(cache.len(), 2);
        cache.insert(a, 1000, 500);
        assert!(cache.len() <= 2);
        assert!(!VerifiedCache::new(0).contains(&a, 0));
    }
}
