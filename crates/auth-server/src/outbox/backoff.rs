//! Exponential backoff with jitter: the delay before the next attempt of an outbox entry (or
//! of a broker that could not be reached).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Delays that double from `base` up to `max`, each drawn from its upper half ("equal
/// jitter"), so that relays retrying together spread out without retrying early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay after `attempt` failures (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(30));
        let full = doubled.min(self.max).max(Duration::from_millis(1));
        let half = full / 2;
        let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_millis(random() % (spread + 1))
    }
}

/// A random number: the standard library's per-hasher random keys (no generator crate for
/// this one use).
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// `delay` in whole seconds, rounded up: the unit of the outbox's `next_attempt_at`.
pub fn whole_seconds(delay: Duration) -> i64 {
    let s = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    i64::try_from(s).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_their_upper_half_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for (attempt, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (60, 1000),
        ] {
            for _ in 0..50 {
                let d = b.delay(attempt).as_millis() as u64;
                assert!((full / 2..=full).contains(&d), "attempt {attempt}: {d} ms");
            }
        }
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
    }
}
