//! The generic cell rate algorithm (GCRA): one stored time per key, the theoretical arrival
//! time (TAT) of the next request, instead of a counter and a window. A quota of `N/PERIOD`
//! lets `N` requests through at once, then one every `PERIOD / N`. Times are microseconds on
//! any clock that only moves forward; the Redis script runs the same steps on Redis's clock.

use std::time::Duration;

use crate::config::Quota;

/// A quota in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Time between two requests at the sustained rate (`PERIOD / N`).
    pub interval_us: u64,
    /// The whole period: a full budget is `N` intervals.
    pub period_us: u64,
}

impl Gcra {
    pub fn new(quota: Quota) -> Self {
        let period_us = u64::try_from(quota.period.as_micros()).unwrap_or(u64::MAX);
        Self {
            interval_us: (period_us / u64::from(quota.count.max(1))).max(1),
            period_us,
        }
    }

    /// Decides a request arriving at `now`, given the stored TAT of its key (`None` when the
    /// key has none, or it was forgotten: a full budget).
    pub fn decide(self, stored_tat: Option<u64>, now: u64) -> Decision {
        let tat = stored_tat.unwrap_or(now).max(now);
        let new_tat = tat.saturating_add(self.interval_us);
        // The earliest time this request conforms: `N` intervals before its new TAT.
        let allow_at = new_tat.saturating_sub(self.period_us);
        if now < allow_at {
            return Decision {
                allowed: false,
                tat,
                remaining: 0,
                retry_after: micros(allow_at - now),
                reset_after: micros(tat - now),
            };
        }
        Decision {
            allowed: true,
            tat: new_tat,
            remaining: (self.period_us.saturating_sub(new_tat - now)) / self.interval_us,
            retry_after: Duration::ZERO,
            reset_after: micros(new_tat - now),
        }
    }
}

/// What one request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The TAT to keep for the key (unchanged when refused: a refused request costs nothing).
    pub tat: u64,
    /// Requests that would still pass right now.
    pub remaining: u64,
    /// When refused, how long until one more would pass.
    pub retry_after: Duration,
    /// How long until the budget is full again (and the key can be forgotten).
    pub reset_after: Duration,
}

fn micros(us: u64) -> Duration {
    Duration::from_micros(us)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000;

    fn quota(count: u32, seconds: u64) -> Gcra {
        Gcra::new(Quota {
            count,
            period: Duration::from_secs(seconds),
        })
    }

    /// Runs requests at the given times (milliseconds), keeping the TAT as a store would.
    fn run(gcra: Gcra, times: &[u64]) -> Vec<Decision> {
        let mut tat = None;
        times
            .iter()
            .map(|t| {
                let d = gcra.decide(tat, t * 1_000 + 1_000 * SECOND);
                tat = Some(d.tat);
                d
            })
            .collect()
    }

    #[test]
    fn a_full_budget_lets_the_whole_quota_through_at_once_then_refuses() {
        let decisions = run(quota(3, 3), &[0, 0, 0, 0]);
        let allowed: Vec<bool> = decisions.iter().map(|d| d.allowed).collect();
        assert_eq!(allowed, [true, true, true, false]);
        let remaining: Vec<u64> = decisions.iter().map(|d| d.remaining).collect();
        assert_eq!(remaining, [2, 1, 0, 0]);
        let refused = decisions[3];
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert_eq!(refused.reset_after, Duration::from_secs(3));
    }

    #[test]
    fn the_budget_refills_one_request_per_interval() {
        // 2 per 10 s: one more every 5 s.
        let decisions = run(
            quota(2, 10),
            &[0, 0, 0, 4_900, 5_000, 5_100, 20_000, 20_000, 20_000],
        );
        let allowed: Vec<bool> = decisions.iter().map(|d| d.allowed).collect();
        assert_eq!(
            allowed,
            [true, true, false, false, true, false, true, true, false]
        );
        assert_eq!(decisions[3].retry_after, Duration::from_millis(100));
        assert_eq!(decisions[5].retry_after, Duration::from_millis(4900));
    }

    #[test]
    fn refused_requests_cost_nothing() {
        let gcra = quota(1, 60);
        let now = 50 * SECOND;
        let first = gcra.decide(None, now);
        assert!(first.allowed);
        let mut tat = Some(first.tat);
        for i in 1..100 {
            let d = gcra.decide(tat, now + i);
            assert!(!d.allowed);
            tat = Some(d.tat);
        }
        assert!(
            gcra.decide(tat, now + 60 * SECOND).allowed,
            "a flood of refusals does not push the refill back"
        );
    }

    #[test]
    fn a_stored_time_in_the_past_is_a_full_budget() {
        let gcra = quota(5, 5);
        let d = gcra.decide(Some(10), 100 * SECOND);
        assert_eq!((d.allowed, d.remaining), (true, 4));
        assert_eq!(gcra.decide(None, 100 * SECOND), d);
    }
}
