//! The in-memory store of one limit: the TAT of each key, in shards behind short locks,
//! bounded in size. Keys whose budget is full again are forgotten (they are worth nothing);
//! when a flood of new keys fills a shard anyway, the half nearest to a full budget goes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::gcra::{Decision, Gcra};

const SHARDS: usize = 16;
/// How often a shard drops its expired keys even when it is not full.
const SWEEP_EVERY_US: u64 = 60_000_000;

/// Microseconds on a clock that only moves forward.
pub trait Clock: Send + Sync {
    fn now_us(&self) -> u64;
}

/// The process's monotonic clock.
pub struct Monotonic(Instant);

impl Default for Monotonic {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Clock for Monotonic {
    fn now_us(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// A clock moved by hand, for tests.
#[derive(Default)]
pub struct Manual(pub AtomicU64);

impl Clock for Manual {
    fn now_us(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Manual {
    pub fn advance(&self, us: u64) {
        self.0.fetch_add(us, Ordering::Relaxed);
    }
}

struct Shard {
    tats: HashMap<u128, u64>,
    swept_at: u64,
}

pub struct MemoryStore {
    /// The limit's name, for the log.
    name: &'static str,
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    /// Keys forgotten to make room (not counting expired ones).
    pub evicted: AtomicU64,
    /// When the log last said so (at most once a minute).
    warned_at: AtomicU64,
}

impl MemoryStore {
    /// A store that keeps about `max_keys` keys at most.
    pub fn new(name: &'static str, max_keys: usize) -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    tats: HashMap::new(),
                    swept_at: 0,
                })
            })
            .collect();
        Self {
            name,
            shards,
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            evicted: AtomicU64::new(0),
            warned_at: AtomicU64::new(0),
        }
    }

    /// Decides a request of `key` at `now` and keeps its new TAT.
    pub fn check(&self, key: u128, gcra: Gcra, now: u64) -> Decision {
        let shard = &self.shards[(key % SHARDS as u128) as usize];
        // A poisoned lock only means another request panicked mid-update of plain numbers.
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_sub(shard.swept_at) >= SWEEP_EVERY_US {
            shard.tats.retain(|_, tat| *tat > now);
            shard.swept_at = now;
        }
        let stored = shard.tats.get(&key).copied();
        let decision = gcra.decide(stored, now);
        if decision.allowed {
            if stored.is_none() && shard.tats.len() >= self.per_shard {
                let evicted = make_room(&mut shard.tats, now, self.per_shard);
                if evicted > 0 {
                    self.evicted.fetch_add(evicted, Ordering::Relaxed);
                    self.say_evicted(now);
                }
            }
            shard.tats.insert(key, decision.tat);
        }
        decision
    }

    fn say_evicted(&self, now: u64) {
        let last = self.warned_at.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= SWEEP_EVERY_US)
            && self
                .warned_at
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                limit = self.name,
                capacity = self.capacity(),
                evicted = self.evicted.load(Ordering::Relaxed),
                "rate-limit memory full: the keys nearest to a full budget were forgotten"
            );
        }
    }

    /// Keys held now (expired ones included until their shard is swept).
    pub fn held_keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).tats.len())
            .sum()
    }

    /// The most keys this store holds.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }
}

/// Drops the expired keys; if that is not enough, the half of the keys nearest to a full
/// budget (the smallest TATs), which are worth the least. Returns how many live keys went.
fn make_room(tats: &mut HashMap<u128, u64>, now: u64, max: usize) -> u64 {
    tats.retain(|_, tat| *tat > now);
    if tats.len() < max {
        return 0;
    }
    let before = tats.len();
    let mut times: Vec<u64> = tats.values().copied().collect();
    let middle = times.len() / 2;
    let (_, threshold, _) = times.select_nth_unstable(middle);
    let threshold = *threshold;
    tats.retain(|_, tat| *tat > threshold);
    (before - tats.len()) as u64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Quota;

    const SECOND: u64 = 1_000_000;

    fn gcra(count: u32, seconds: u64) -> Gcra {
        Gcra::new(Quota {
            count,
            period: Duration::from_secs(seconds),
        })
    }

    #[test]
    fn each_key_has_its_own_budget_which_refills_with_the_clock() {
        let clock = Manual::default();
        clock.advance(SECOND);
        let store = MemoryStore::new("test", 1000);
        let quota = gcra(2, 10);
        let at = |key| store.check(key, quota, clock.now_us()).allowed;
        assert_eq!([at(1), at(1), at(1)], [true, true, false]);
        assert!(at(2), "another key is not affected");
        clock.advance(5 * SECOND);
        assert_eq!([at(1), at(1)], [true, false]);
        clock.advance(10 * SECOND);
        assert_eq!([at(1), at(1), at(1)], [true, true, false]);
    }

    #[test]
    fn expired_keys_are_swept_and_a_flood_of_keys_stays_bounded() {
        let clock = Manual::default();
        let store = MemoryStore::new("test", 1600);
        let quota = gcra(5, 60);
        for key in 0..1000u128 {
            store.check(key, quota, clock.now_us());
        }
        assert_eq!(store.held_keys(), 1000);
        // A minute later every budget is full again: each shard's next request sweeps it.
        clock.advance(61 * SECOND);
        for key in 5000..5000 + SHARDS as u128 {
            store.check(key, quota, clock.now_us());
        }
        assert_eq!(store.held_keys(), SHARDS, "expired keys are swept");

        // A flood of distinct keys, none expiring.
        for key in 0..100_000u128 {
            store.check(key + 10_000, quota, clock.now_us());
            clock.advance(1);
        }
        assert!(
            store.held_keys() <= store.capacity(),
            "{} keys",
            store.held_keys()
        );
        assert!(store.evicted.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn a_throttled_key_outlives_a_flood_of_fresh_ones() {
        let clock = Manual::default();
        clock.advance(SECOND);
        let store = MemoryStore::new("test", 64);
        let quota = gcra(3, 3600);
        let target = 16 * 1000; // in shard 0 like the flood below
        for _ in 0..3 {
            assert!(store.check(target, quota, clock.now_us()).allowed);
        }
        for key in 1..10_000u128 {
            store.check(key * 16, quota, clock.now_us());
        }
        assert!(
            !store.check(target, quota, clock.now_us()).allowed,
            "the key with the least budget left is the last to be forgotten"
        );
    }
}
