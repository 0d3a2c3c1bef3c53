//! The state shared by every handler and background task: one service per area over the
//! store, and what the key upkeep needs.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use auth_core::password::PasswordHasher;
use auth_core::service::{
    AccountService, AuditService, DirectoryService, EventService, SessionService, TokenChecks,
};
use auth_core::signing::{KeyManager, RotationSettings};
use auth_store::Store;
use secrecy::SecretString;

use crate::config::IpNet;
use crate::limits::RateLimiter;
use crate::mail::Mailer;
use crate::metrics::requests::RequestMetrics;

/// Cloned for every request that reads it, so it is one reference-counted pointer.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub accounts: AccountService<Store>,
    pub sessions: SessionService<Store>,
    pub directory: DirectoryService<Store>,
    pub audit: AuditService<Store>,
    /// Days the audit log keeps an entry (0: forever); purged by a background task.
    pub audit_retention_days: u32,
    /// The event outbox as the admin API reads it.
    pub events: EventService<Store>,
    /// Where events are relayed, how relays retry, how long events are kept.
    pub events_config: crate::config::Events,
    /// The outbox relays' counters, for `/metrics`.
    pub outbox_counters: Arc<crate::metrics::OutboxCounters>,
    pub checks: TokenChecks,
    pub store: Store,
    pub master_key: Option<SecretString>,
    pub rotation: RotationSettings,
    /// Peers whose `X-Forwarded-For` and `Forwarded` are believed.
    pub trusted_proxies: Arc<[IpNet]>,
    /// Rate limits per client IP and per account.
    pub limits: RateLimiter,
    /// The password hasher the services share, for its gauges.
    pub hasher: PasswordHasher,
    /// Logins and refreshes counted by the handlers, for `/metrics`.
    pub counters: crate::metrics::Counters,
    /// The latency histograms, set when the router is built.
    pub requests: OnceLock<Arc<RequestMetrics>>,
    /// Whether `/metrics` is served on a listener of its own (not on the API's port).
    pub metrics_elsewhere: bool,
    /// Set on SIGTERM: readiness answers 503 and answers close their connections.
    pub draining: AtomicBool,
    /// Renders and sends the mails of the outbox (the `mail` relay's [`auth_core::outbox::Deliver`]).
    pub mailer: Mailer,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Shared {
    /// Whether shutdown has begun (readiness says so, answers close their connections).
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Begins shutdown's delay: readiness answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Rotation and upkeep of the signing keys.
    pub fn keys(&self) -> KeyManager<'_, Store> {
        KeyManager {
            repo: &self.store,
            tokens: self.checks.tokens(),
            master_key: self.master_key.as_ref(),
            rotation: self.rotation,
        }
    }
}
