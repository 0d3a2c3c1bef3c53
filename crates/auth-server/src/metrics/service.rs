//! The service's own families: logins and refreshes (counted by the handlers where they
//! happen), the token cache, the password hashing queue, the database pool and build info.

use std::sync::atomic::{AtomicU64, Ordering};

use auth_core::CoreError;

use super::Family;
use crate::state::AppState;

/// Outcomes counted by the HTTP handlers (the core stays free of metrics).
#[derive(Debug, Default)]
pub struct Counters {
    logins_succeeded: AtomicU64,
    logins_failed: AtomicU64,
    refreshes_succeeded: AtomicU64,
    refreshes_failed: AtomicU64,
    reuse_detected: AtomicU64,
}

/// Whether an error is a refusal of what the client sent (wrong password, unknown token, ...)
/// rather than the service failing to answer (overloaded, database down, a bug).
fn refused(e: &CoreError) -> bool {
    !matches!(
        e,
        CoreError::Overloaded { .. } | CoreError::Store(_) | CoreError::Internal(_)
    )
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// Counts a login's outcome: succeeded, or refused; a service failure is neither.
    pub fn login<T>(&self, outcome: &Result<T, CoreError>) {
        match outcome {
            Ok(_) => bump(&self.logins_succeeded),
            Err(e) if refused(e) => bump(&self.logins_failed),
            Err(_) => {}
        }
    }

    /// Counts a refresh's outcome, and a reused refresh token (a failure too).
    pub fn refresh<T>(&self, outcome: &Result<T, CoreError>) {
        match outcome {
            Ok(_) => bump(&self.refreshes_succeeded),
            Err(e) if refused(e) => {
                if matches!(e, CoreError::RefreshTokenReused) {
                    bump(&self.reuse_detected);
                }
                bump(&self.refreshes_failed)
            }
            Err(_) => {}
        }
    }
}

fn plain(value: f64) -> Vec<(Vec<(&'static str, String)>, f64)> {
    vec![(Vec::new(), value)]
}

fn by<const N: usize>(
    label: &'static str,
    values: [(&str, u64); N],
) -> Vec<(Vec<(&'static str, String)>, f64)> {
    values
        .into_iter()
        .map(|(v, n)| (vec![(label, v.to_owned())], n as f64))
        .collect()
}

/// The families of this process's counters and gauges.
pub fn families(state: &AppState) -> Vec<Family> {
    let c = &state.counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let cache = state.checks.tokens().cache_stats();
    let pool = state.store.pool();
    let (size, idle) = (pool.size() as u64, pool.num_idle() as u64);
    vec![
        Family {
            name: "auth_logins_total",
            kind: "counter",
            help: "Logins: succeeded, or failed (refused credentials, locked, disabled or unverified account).",
            samples: by(
                "result",
                [
                    ("succeeded", load(&c.logins_succeeded)),
                    ("failed", load(&c.logins_failed)),
                ],
            ),
        },
        Family {
            name: "auth_refreshes_total",
            kind: "counter",
            help: "Refresh-token rotations: succeeded, or failed (unknown, expired, revoked or reused token).",
            samples: by(
                "result",
                [
                    ("succeeded", load(&c.refreshes_succeeded)),
                    ("failed", load(&c.refreshes_failed)),
                ],
            ),
        },
        Family {
            name: "auth_refresh_reuse_detected_total",
            kind: "counter",
            help: "Rotated refresh tokens presented again after the grace window (their sessions were revoked).",
            samples: plain(load(&c.reuse_detected) as f64),
        },
        Family {
            name: "auth_tokens_verified_total",
            kind: "counter",
            help: "Access tokens checked: answered from the cache (hit) or verified in full (miss).",
            samples: by("cache", [("hit", cache.hits), ("miss", cache.misses)]),
        },
        Family {
            name: "auth_password_hashes_in_flight",
            kind: "gauge",
            help: "Password hashes admitted: running on a hashing thread or prepared behind one.",
            samples: plain(state.hasher.in_flight() as f64),
        },
        Family {
            name: "auth_password_hashes_queued",
            kind: "gauge",
            help: "Requests waiting for a place among the admitted password hashes.",
            samples: plain(state.hasher.queued() as f64),
        },
        Family {
            name: "auth_password_hashes_shed_total",
            kind: "counter",
            help: "Requests answered 503 because no hashing place freed up within the queue timeout.",
            samples: plain(state.hasher.shed() as f64),
        },
        Family {
            name: "auth_db_connections",
            kind: "gauge",
            help: "Database pool connections: in use, or open and idle.",
            samples: by(
                "state",
                [("in_use", size.saturating_sub(idle)), ("idle", idle)],
            ),
        },
        Family {
            name: "auth_build_info",
            kind: "gauge",
            help: "The running build: its version (always 1).",
            samples: vec![(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1.0)],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_as_refusals_or_not_at_all() {
        let c = Counters::default();
        c.login::<()>(&Ok(()));
        c.login::<()>(&Err(CoreError::InvalidCredentials));
        c.login::<()>(&Err(CoreError::Overloaded {
            retry_after: std::time::Duration::from_secs(1),
        }));
        c.refresh::<()>(&Err(CoreError::RefreshTokenReused));
        c.refresh::<()>(&Ok(()));
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!((load(&c.logins_succeeded), load(&c.logins_failed)), (1, 1));
        assert_eq!(
            (
                load(&c.refreshes_succeeded),
                load(&c.refreshes_failed),
                load(&c.reuse_detected)
            ),
            (1, 1, 1)
        );
    }
}
