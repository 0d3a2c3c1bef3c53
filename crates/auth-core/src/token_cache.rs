//! A bounded cache of verified access tokens, so a gateway asking about the same token again
//! costs a keyed hash, a map lookup and reading the claims instead of a signature check.
//!
//! It is keyed by a 128-bit SipHash-1-3 of the exact token text under a random key drawn when
//! the process starts (a changed byte is a different key, verified in full). SipHash is a
//! pseudo-random function: without the key, nobody can make a forged token collide with a
//! cached one except by guessing, about one chance in 2^128 / capacity per request. It is
//! several times cheaper than SHA-256 on a 600-byte token, which matters on CPUs without SHA
//! instructions. Only the expiry is kept (about 40 bytes a token), so 10,000 live tokens cost
//! under a megabyte: keeping the decoded claims instead saves a decode per hit but costs some
//! 900 bytes a token, memory a login flood needs more. Expiry is checked on every hit, the cache
//! is emptied whenever the key ring changes, and revocation is never its business: callers
//! check it on every request.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::RwLock;

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::token::LEEWAY_SECONDS;

/// The cache key of a token: a keyed 128-bit hash of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenKey(u128);

type Shard = RwLock<HashMap<TokenKey, i64, BuildHasherDefault<KeyHasher>>>;

/// Shards of the map, each behind its own lock, so the worker threads do not all take (and
/// bounce between their caches) the same lock word on every request.
const SHARDS: usize = 16;

pub struct VerifiedCache {
    /// Token key -> `exp` of a token whose signature and claims were verified.
    shards: Box<[Shard]>,
    /// Entries per shard.
    shard_capacity: usize,
    sip_key: [u8; 16],
}

/// The map's own hasher: token keys are already uniformly random to anyone without the
/// SipHash key, so hashing them again would only cost time.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 ^= n as u64;
    }
}

impl VerifiedCache {
    /// A cache of about `capacity` tokens (rounded up to a multiple of the shard count); 0
    /// disables it.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            shard_capacity: capacity.div_ceil(SHARDS),
            sip_key: crate::secret::random_bytes(),
        }
    }

    fn shard(&self, key: &TokenKey) -> &Shard {
        &self.shards[(key.0 >> 64) as usize % SHARDS]
    }

    pub fn key(&self, token: &str) -> TokenKey {
        let mut h = SipHasher13::new_with_key(&self.sip_key);
        h.write(token.as_bytes());
        TokenKey(h.finish128().as_u128())
    }

    /// Whether this token was verified before and has not expired since.
    pub fn contains(&self, key: &TokenKey, now: i64) -> bool {
        if self.shard_capacity == 0 {
            return false;
        }
        let exp = self
            .shard(key)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied();
        exp.is_some_and(|exp| live(exp, now))
    }

    /// Remembers a verified token. When its shard is full, expired entries go first; if that
    /// frees nothing, the shard starts over (bounded memory matters more than the hit rate of a flood).
    pub fn insert(&self, key: TokenKey, exp: i64, now: i64) {
        if self.shard_capacity == 0 {
            return;
        }
        let mut entries = self.shard(&key).write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.shard_capacity {
            entries.retain(|_, exp| live(*exp, now));
            if entries.len() >= self.shard_capacity {
                entries.clear();
            }
        }
        entries.insert(key, exp);
    }

    pub fn clear(&self) {
        for shard in &self.shards {
            shard.write().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn live(exp: i64, now: i64) -> bool {
    exp + LEEWAY_SECONDS as i64 >= now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_expire_with_their_token_and_the_size_stays_bounded() {
        // Two entries per shard; these three keys share shard 0.
        let cache = VerifiedCache::new(2 * SHARDS);
        let (a, b, c) = (TokenKey(1), TokenKey(2), TokenKey(3));
        cache.insert(a, 100, 0);
        assert!(cache.contains(&a, 100 + LEEWAY_SECONDS as i64));
        assert!(!cache.contains(&a, 101 + LEEWAY_SECONDS as i64), "expired");
        cache.insert(b, 1000, 0);
        cache.insert(c, 1000, 500);
        assert!(!cache.contains(&a, 0), "the expired entry made room");
        assert!(cache.contains(&c, 500));
        assert_eq!(cache.len(), 2);
        cache.insert(a, 1000, 500);
        assert!(cache.len() <= 2);
        let spread = VerifiedCache::new(SHARDS);
        for i in 0..1000 {
            let key = spread.key(&format!("token-{i}"));
            spread.insert(key, 1000, 0);
        }
        assert!(spread.len() <= SHARDS, "bounded over all shards");
        let off = VerifiedCache::new(0);
        off.insert(a, 1000, 0);
        assert!(!off.contains(&a, 0));
    }

    #[test]
    fn keys_are_per_process_secrets_and_cover_every_byte() {
        let (one, two) = (VerifiedCache::new(1), VerifiedCache::new(1));
        let token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        assert_eq!(one.key(token), one.key(token));
        assert_ne!(
            one.key(token),
            two.key(token),
            "each cache draws its own key"
        );
        let mut flipped = token.as_bytes().to_vec();
        for i in 0..flipped.len() {
            flipped[i] ^= 1;
            let other = String::from_utf8(flipped.clone()).unwrap();
            assert_ne!(one.key(&other), one.key(token), "byte {i}");
            flipped[i] ^= 1;
        }
    }
}
