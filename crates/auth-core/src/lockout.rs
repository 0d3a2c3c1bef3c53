//! Account lockout: after `threshold` consecutive failed logins an account is locked for
//! `base`, doubling with each further lock up to `max`. A successful login clears the count
//! and the doubling; an administrator can unlock. Logins naming no account are counted the
//! same way (by a hash of the name they gave), so a locked account and an unknown one go
//! through the same steps and answer alike.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::domain::{LoginName, TenantId};

/// When and for how long accounts are locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock an account; `0` never locks.
    pub threshold: u32,
    /// The first lock's length.
    pub base: Duration,
    /// No lock is longer.
    pub max: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            threshold: 10,
            base: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        }
    }
}

impl LockoutPolicy {
    /// Whether `failures` consecutive failures lock the account.
    pub fn locks_at(&self, failures: i64) -> bool {
        self.threshold > 0 && failures >= i64::from(self.threshold)
    }

    /// The length of a lock that follows `earlier_locks` others: `base` doubled once per
    /// earlier lock, capped at `max`.
    pub fn lock_length(&self, earlier_locks: i64) -> Duration {
        let doublings = earlier_locks.clamp(0, 63) as u32;
        let length = self
            .base
            .as_secs()
            .saturating_mul(1u64.checked_shl(doublings).unwrap_or(u64::MAX));
        Duration::from_secs(length.min(self.max.as_secs()))
    }

    /// The time a lock starting at `now` after `earlier_locks` others ends.
    pub fn locked_until(&self, earlier_locks: i64, now: i64) -> i64 {
        let length = i64::try_from(self.lock_length(earlier_locks).as_secs()).unwrap_or(i64::MAX);
        now.saturating_add(length)
    }
}

/// An account's lockout state, as stored with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockoutState {
    /// Consecutive failed logins since the last success, lock or unlock.
    pub failed_logins: i64,
    /// The end of the current (or last) lock.
    pub locked_until: Option<i64>,
    /// Locks since the last successful login: each doubles the next.
    pub lockouts: i64,
}

impl LockoutState {
    /// Seconds left of the lock at `now`, if the account is locked.
    pub fn locked_for(&self, now: i64) -> Option<u64> {
        self.locked_until
            .filter(|&until| until > now)
            .map(|until| (until - now) as u64)
    }

    /// Whether a successful login has anything to clear.
    pub fn is_clear(&self) -> bool {
        self.failed_logins == 0 && self.locked_until.is_none() && self.lockouts == 0
    }
}

/// The key failed logins naming no account are counted under: a hash of the tenant and the
/// normalised name, so the name itself is not stored.
pub fn unknown_login_key(tenant: &TenantId, name: &LoginName) -> String {
    let (kind, value) = match name {
        LoginName::Email(e) => ("email", e.normalized()),
        LoginName::Username(u) => ("username", u.normalized()),
    };
    let mut hash = Sha256::new();
    for part in [tenant.as_str(), kind, value] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    crate::secret::b64url(&hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, Username};

    #[test]
    fn locks_double_up_to_the_cap() {
        let policy = LockoutPolicy::default();
        let lengths: Vec<u64> = (0..9).map(|n| policy.lock_length(n).as_secs()).collect();
        assert_eq!(lengths, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(policy.lock_length(1_000_000).as_secs(), 3600);
        assert_eq!(policy.lock_length(-3).as_secs(), 60);
        assert_eq!(policy.locked_until(2, 1000), 1240);
        let huge = LockoutPolicy {
            base: Duration::from_secs(u64::MAX / 2),
            max: Duration::from_secs(u64::MAX),
            ..policy
        };
        assert_eq!(huge.locked_until(5, 10), i64::MAX);
    }

    #[test]
    fn the_threshold_locks_and_zero_never_does() {
        let policy = LockoutPolicy::default();
        assert!(!policy.locks_at(9));
        assert!(policy.locks_at(10) && policy.locks_at(11));
        let off = LockoutPolicy {
            threshold: 0,
            ..policy
        };
        assert!(!off.locks_at(1_000));
    }

    #[test]
    fn a_lock_has_time_left_until_it_ends() {
        let state = LockoutState {
            failed_logins: 0,
            locked_until: Some(100),
            lockouts: 1,
        };
        assert_eq!(state.locked_for(40), Some(60));
        assert_eq!(state.locked_for(100), None);
        assert!(!state.is_clear() && LockoutState::default().is_clear());
    }

    #[test]
    fn unknown_names_are_keyed_by_tenant_and_normalised_name() {
        let tenant = TenantId::default_tenant();
        let email = |e: &str| LoginName::Email(Email::for_lookup(e).unwrap());
        let (a, b) = (email("Someone@Example.com"), email("someone@example.com"));
        let key = unknown_login_key(&tenant, &a);
        assert_eq!(key, unknown_login_key(&tenant, &b));
        assert_eq!(key.len(), 43);
        assert!(!key.contains("someone"));
        let other = TenantId::parse("acme").unwrap();
        assert_ne!(key, unknown_login_key(&other, &a));
        let name = LoginName::Username(Username::for_lookup("someone").unwrap());
        assert_ne!(key, unknown_login_key(&tenant, &name));
    }
}
