//! A bounded cache of verified access tokens, so a gateway asking about the same token again
//! costs a keyed hash and a map lookup instead of a signature check and a decode.
//!
//! It is keyed by a 128-bit SipHash-1-3 of the exact token text under a random key drawn when
//! the process starts (a changed byte is a different key, verified in full). SipHash is a
//! pseudo-random function: without the key, nobody can make a forged token collide with a
//! cached one except by guessing, about one chance in 2^128 / capacity per request. It is
//! several times cheaper than SHA-256 on a 600-byte token, which matters on CPUs without SHA
//! instructions.
//!
//! Each entry keeps the token's times and its [`Identity`] (who, roles, permissions, session),
//! so a hit decodes nothing. Identities are shared: the tokens of one session carry the same
//! one until its roles change, so it is kept once (with whatever rendering the server keeps in
//! it) however many of its tokens are cached, and an entry costs about 40 bytes. Expiry is checked on every hit, the cache is
//! emptied whenever the key ring changes, and revocation is never its business: callers check
//! it on every request.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use siphasher::sip128::{Hasher128, SipHasher13};

use super::claims::{Identity, LEEWAY_SECONDS, Verified};

/// The cache key of a token: a keyed 128-bit hash of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenKey(u128);

/// What the cache remembers of a verified token.
struct Entry {
    exp: i64,
    iat: i64,
    identity: Arc<Identity>,
}

/// A shard of the map behind its own lock, alone in its cache lines: taking a read lock writes
/// to the lock word, and two cores reading neighbouring shards would otherwise pass the line
/// back and forth on every hit.
/// Its lookups are counted beside the lock word, which a lookup writes anyway.
#[derive(Default)]
#[repr(align(128))]
struct Shard {
    map: RwLock<HashMap<TokenKey, Entry, BuildHasherDefault<KeyHasher>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::ops::Deref for Shard {
    type Target = RwLock<HashMap<TokenKey, Entry, BuildHasherDefault<KeyHasher>>>;

    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

/// Lookups of the cache since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Tokens answered from the cache.
    pub hits: u64,
    /// Tokens verified in full (not cached, expired, or the cache is off).
    pub misses: u64,
}

/// Shards of the map, each behind its own lock, so the worker threads do not all take (and
/// bounce between their caches) the same lock word on every request.
const SHARDS: usize = 16;

pub struct VerifiedCache {
    /// Token key -> times and identity of a token whose signature and claims were verified.
    shards: Box<[Shard]>,
    /// Entries per shard.
    shard_capacity: usize,
    sip_key: [u8; 16],
    /// Each distinct identity of the cached tokens, once. Taken only when a token is verified
    /// in full or entries are dropped, never on a hit.
    identities: Mutex<HashSet<Arc<Identity>>>,
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
            identities: Mutex::default(),
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

    /// The token verified before under this key, unless it has expired since.
    pub fn get(&self, key: &TokenKey, now: i64) -> Option<Verified> {
        let shard = self.shard(key);
        let found = (self.shard_capacity > 0)
            .then(|| {
                let entries = shard.read().unwrap_or_else(|e| e.into_inner());
                let entry = entries.get(key).filter(|e| live(e.exp, now))?;
                Some(Verified {
                    identity: Arc::clone(&entry.identity),
                    exp: entry.exp,
                    iat: entry.iat,
                })
            })
            .flatten();
        let counter = if found.is_some() {
            &shard.hits
        } else {
            &shard.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Hits and misses of [`VerifiedCache::get`] so far.
    pub fn stats(&self) -> CacheStats {
        self.shards
            .iter()
            .fold(CacheStats::default(), |sum, s| CacheStats {
                hits: sum.hits + s.hits.load(Ordering::Relaxed),
                misses: sum.misses + s.misses.load(Ordering::Relaxed),
            })
    }

    /// Remembers a token whose signature and claims were just verified, and answers with
    /// what [`VerifiedCache::get`] will. When its shard is full, expired entries go first; if
    /// that frees nothing, the shard starts over (bounded memory matters more than the hit
    /// rate of a flood).
    pub fn insert(
        &self,
        key: TokenKey,
        identity: Identity,
        (exp, iat): (i64, i64),
        now: i64,
    ) -> Verified {
        if self.shard_capacity == 0 {
            return Verified {
                identity: Arc::new(identity),
                exp,
                iat,
            };
        }
        let identity = self.intern(identity);
        let mut dropped = Vec::new();
        {
            let mut entries = self.shard(&key).write().unwrap_or_else(|e| e.into_inner());
            if entries.len() >= self.shard_capacity {
                entries.retain(|_, e| {
                    let keep = live(e.exp, now);
                    if !keep {
                        dropped.push(Arc::clone(&e.identity));
                    }
                    keep
                });
                if entries.len() >= self.shard_capacity {
                    dropped.extend(entries.drain().map(|(_, e)| e.identity));
                }
            }
            let entry = Entry {
                exp,
                iat,
                identity: Arc::clone(&identity),
            };
            if let Some(replaced) = entries.insert(key, entry) {
                dropped.push(replaced.identity);
            }
        }
        self.forget(dropped);
        Verified { identity, exp, iat }
    }

    /// The shared copy of `identity`, kept from now on if it is new.
    fn intern(&self, identity: Identity) -> Arc<Identity> {
        let mut known = self.identities.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = known.get(&identity) {
            return Arc::clone(shared);
        }
        // A safety net: entries forget their identities as they go (below), so the set
        // holds only the identities of cached tokens, unless a token check held one while
        // its last entry went. Such leftovers are swept once they are as many as the
        // capacity allows live ones.
        if known.len() >= 2 * self.shard_capacity * SHARDS {
            known.retain(|shared| Arc::strong_count(shared) > 1);
        }
        let shared = Arc::new(identity);
        known.insert(Arc::clone(&shared));
        shared
    }

    /// Lets go of the identities of dropped entries; one no entry uses any more leaves the
    /// set. `dropped` holds one reference per dropped entry, released one at a time, so the
    /// last holds the only reference besides the set's.
    fn forget(&self, dropped: Vec<Arc<Identity>>) {
        if dropped.is_empty() {
            return;
        }
        let mut known = self.identities.lock().unwrap_or_else(|e| e.into_inner());
        for identity in dropped {
            let only_the_set = Arc::strong_count(&identity) == 2
                && known
                    .get(&identity)
                    .is_some_and(|k| Arc::ptr_eq(k, &identity));
            if only_the_set {
                known.remove(&identity);
            }
        }
    }

    pub fn clear(&self) {
        for shard in &self.shards {
            shard.write().unwrap_or_else(|e| e.into_inner()).clear();
        }
        self.identities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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

    /// Distinct identities kept.
    pub fn identities(&self) -> usize {
        self.identities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

fn live(exp: i64, now: i64) -> bool {
    exp + LEEWAY_SECONDS as i64 >= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::AccessClaims;

    /// A session id per label.
    fn sid(label: &str) -> String {
        let n = label.bytes().fold(7u128, |h, b| {
            h.wrapping_mul(131).wrapping_add(u128::from(b))
        });
        uuid::Uuid::from_u128(n).to_string()
    }

    /// Claims of a token of session `label` that expires at `exp`.
    fn claims(label: &str, exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "iss".into(),
            sub: "0190a5c4-0000-7000-8000-000000000001".into(),
            aud: Some("api".into()),
            exp,
            iat: exp - 900,
            nbf: None,
            jti: format!("{label}-{exp}"),
            client_id: "c".into(),
            tenant: "default".into(),
            roles: vec!["user".into()],
            permissions: vec![],
            role: Some("user".into()),
            email: "a@example.com".into(),
            email_verified: false,
            sid: Some(sid(label)),
            token_type: None,
            user_id: None,
        }
    }

    /// Caches `claims` under `key` at `now`, as a full verification does.
    fn put(cache: &VerifiedCache, key: TokenKey, claims: &AccessClaims, now: i64) -> Verified {
        let identity = Identity::of(claims).expect("valid claims");
        cache.insert(key, identity, (claims.exp, claims.iat), now)
    }

    #[test]
    fn hits_expire_with_their_token_and_the_size_stays_bounded() {
        // Two entries per shard; these three keys share shard 0.
        let cache = VerifiedCache::new(2 * SHARDS);
        let (a, b, c) = (TokenKey(1), TokenKey(2), TokenKey(3));
        let verified = put(&cache, a, &claims("s", 100), 0);
        assert_eq!(cache.get(&a, 100 + LEEWAY_SECONDS as i64), Some(verified));
        assert_eq!(cache.get(&a, 101 + LEEWAY_SECONDS as i64), None, "expired");
        put(&cache, b, &claims("s", 1000), 0);
        put(&cache, c, &claims("s", 1000), 500);
        assert!(cache.get(&a, 0).is_none(), "the expired entry made room");
        assert!(cache.get(&c, 500).is_some());
        assert_eq!(cache.len(), 2);
        put(&cache, a, &claims("s", 1000), 500);
        assert!(cache.len() <= 2);
        let spread = VerifiedCache::new(SHARDS);
        for i in 0..1000 {
            let key = spread.key(&format!("token-{i}"));
            put(&spread, key, &claims(&format!("s-{i}"), 1000), 0);
        }
        assert!(spread.len() <= SHARDS, "bounded over all shards");
        assert!(
            spread.identities() <= spread.len(),
            "dropped entries take their identities along"
        );
        let off = VerifiedCache::new(0);
        let verified = put(&off, a, &claims("s", 1000), 0);
        assert_eq!(
            *verified.identity,
            Identity::of(&claims("s", 1000)).unwrap()
        );
        assert!(off.get(&a, 0).is_none());
    }

    #[test]
    fn tokens_of_one_session_share_an_identity_kept_while_one_is_cached() {
        let cache = VerifiedCache::new(64 * SHARDS);
        let first = put(&cache, cache.key("t1"), &claims("s-1", 1000), 0);
        let second = put(&cache, cache.key("t2"), &claims("s-1", 2000), 0);
        assert!(Arc::ptr_eq(&first.identity, &second.identity));
        assert_eq!((first.exp, second.exp), (1000, 2000));
        let other = put(&cache, cache.key("t3"), &claims("s-2", 1000), 0);
        assert!(!Arc::ptr_eq(&first.identity, &other.identity));
        let mut promoted = claims("s-1", 3000);
        promoted.roles.push("admin".into());
        let changed = put(&cache, cache.key("t4"), &promoted, 0);
        assert!(
            !Arc::ptr_eq(&first.identity, &changed.identity),
            "new roles, new identity"
        );
        assert_eq!(cache.identities(), 3);
        drop((first, second, other, changed));
        // Re-caching a token under its key keeps one entry and one identity.
        put(&cache, cache.key("t3"), &claims("s-2", 1000), 0);
        assert_eq!((cache.len(), cache.identities()), (4, 3));
        cache.clear();
        assert_eq!((cache.len(), cache.identities()), (0, 0));
    }

    #[test]
    fn identities_go_with_their_last_entry() {
        // One entry per shard: each insert into a full shard drops what it held.
        let cache = VerifiedCache::new(SHARDS);
        for i in 0..200 {
            let key = cache.key(&format!("token-{i}"));
            put(&cache, key, &claims(&format!("s-{i}"), 1000), 0);
            assert!(cache.identities() <= cache.len(), "after {i} tokens");
        }
        // A token check holding an identity while its entry goes leaves it behind; the
        // sweep bounds such leftovers. These keys all fall in shard 0.
        let mut held = put(&cache, TokenKey(0), &claims("h-0", 1000), 0);
        for i in 1..200u128 {
            let next = put(&cache, TokenKey(i), &claims(&format!("h-{i}"), 1000), 0);
            assert!(!Arc::ptr_eq(&held.identity, &next.identity));
            held = next;
        }
        assert!(cache.identities() <= 2 * SHARDS + 1);
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
