//! An in-memory repository for unit tests: every repository trait, with the store's rules
//! (unique emails and usernames per tenant, built-in roles, conditional rotation claims,
//! units of work that commit whole or not at all), so a test of a service stubs nothing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;

use crate::StoreError;
use crate::action_token::{ActionPurpose, NewActionToken};
use crate::audit::{AuditEvent, AuditKind};
use crate::domain::{Permission, SessionId, TenantId, User, UserId};
use crate::events::{DomainEvent, EventType, OutgoingMail};
use crate::lockout::LockoutState;
use crate::password::{Argon2Settings, HashingLimits, PasswordHasher};
use crate::repo::{BoxFuture, Record, Records, Transaction, UnitOfWork};
use crate::session::{RefreshRecord, RevokeReason, Session};
use crate::token::{TokenService, TokenSettings};

/// A hasher with the cheapest Argon2 parameters.
pub fn cheap_hasher(max_in_flight: usize) -> PasswordHasher {
    hasher(max_in_flight, Duration::from_secs(5))
}

/// A hasher with the cheapest Argon2 parameters and the given limits.
pub fn hasher(max_in_flight: usize, queue_timeout: Duration) -> PasswordHasher {
    PasswordHasher::new(
        Argon2Settings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        HashingLimits {
            max_in_flight,
            queue_timeout,
        },
    )
    .expect("valid parameters")
}

/// A user of `tenant` with the role `user` and the given permissions, stored nowhere (for
/// minting tokens in tests).
pub fn user(tenant: &str, permissions: &[&str]) -> User {
    User {
        id: UserId::generate(),
        tenant: TenantId::trusted(tenant),
        email: "a@example.com".into(),
        username: None,
        roles: vec![crate::domain::RoleName::user()],
        permissions: permissions
            .iter()
            .map(|p| Permission::trusted(*p))
            .collect(),
        email_verified: false,
        disabled: false,
        created_at: 0,
        updated_at: 0,
    }
}

/// An HS256 token service (no keys to create).
pub fn hs256_tokens() -> TokenService {
    TokenService::with_shared_secret(
        TokenSettings {
            issuer: "https://auth.test".into(),
            audience: Some("platform".into()),
            access_ttl: Duration::from_secs(900),
        },
        &SecretString::from("x".repeat(32)),
    )
}

#[derive(Clone)]
struct StoredUser {
    user: User,
    password_hash: String,
    lockout: LockoutState,
    email: String,
    username: Option<String>,
}

#[derive(Clone)]
struct StoredToken {
    hash: String,
    session: SessionId,
    used_at: Option<i64>,
    successor_sealed: Option<String>,
}

mod outbox;
mod reads;
mod writes;

#[derive(Clone, Default)]
struct State {
    users: Vec<StoredUser>,
    sessions: Vec<(Session, Option<RevokeReason>)>,
    tokens: Vec<StoredToken>,
    audit: Vec<AuditEvent>,
    events: Vec<DomainEvent>,
    mails: Vec<OutgoingMail>,
    /// The outbox table's rows (events and mails) and its channel leases (channel, holder,
    /// expiry).
    outbox: Vec<outbox::OutboxRow>,
    leases: Vec<(String, String, i64)>,
    /// Password history: (user, hash, at), oldest first.
    history: Vec<(UserId, String, i64)>,
    /// Failed logins naming no account, by key ([`crate::lockout::unknown_login_key`]), with
    /// when each was last counted.
    unknown_failures: Vec<(String, LockoutState, i64)>,
    /// Mailed single-use tokens, with when each was used.
    action_tokens: Vec<(NewActionToken, Option<i64>)>,
}

impl State {
    fn user(&self, id: UserId) -> Option<&StoredUser> {
        self.users.iter().find(|u| u.user.id == id)
    }

    fn user_mut(&mut self, id: &UserId) -> Option<&mut StoredUser> {
        self.users.iter_mut().find(|u| u.user.id == *id)
    }

    fn record(&self, token_hash: &str) -> Option<RefreshRecord> {
        let token = self.tokens.iter().find(|t| t.hash == token_hash)?;
        let (session, _) = self.sessions.iter().find(|(s, _)| s.id == token.session)?;
        let user = self.user(session.user_id)?;
        Some(RefreshRecord {
            session: session.clone(),
            user: user.user.clone(),
            used_at: token.used_at,
            successor_sealed: token.successor_sealed.clone(),
        })
    }
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    /// One unit of work at a time, as the store's writer.
    writing: Arc<tokio::sync::Mutex<()>>,
    credential_reads: AtomicUsize,
    fail_next_write: AtomicBool,
}

/// The in-memory repository. Clones share their data.
#[derive(Clone, Default)]
pub struct MemoryRepo(Arc<Inner>);

impl MemoryRepo {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many times a login's user was looked up.
    pub fn credential_reads(&self) -> usize {
        self.0.credential_reads.load(Ordering::SeqCst)
    }

    /// The kinds of the stored audit events, oldest first.
    pub fn audit_kinds(&self) -> Vec<AuditKind> {
        self.state().audit.iter().map(|e| e.kind).collect()
    }

    /// The stored audit events, oldest first.
    pub fn audit_events(&self) -> Vec<AuditEvent> {
        self.state().audit.clone()
    }

    /// The events written to the outbox, oldest first.
    pub fn events(&self) -> Vec<DomainEvent> {
        self.state().events.clone()
    }

    /// The types of the events written to the outbox, oldest first.
    pub fn event_types(&self) -> Vec<EventType> {
        self.state().events.iter().map(|e| e.kind).collect()
    }

    /// The mails written to the outbox, oldest first.
    pub fn mails(&self) -> Vec<OutgoingMail> {
        self.state().mails.clone()
    }

    /// Stores an audit event as if a unit of work had recorded it.
    pub fn push_audit(&self, event: AuditEvent) {
        self.state().audit.push(event);
    }

    pub fn user_count(&self) -> usize {
        self.state().users.len()
    }

    pub fn session_count(&self) -> usize {
        self.state().sessions.len()
    }

    pub fn password_hash(&self, id: UserId) -> Option<String> {
        self.state().user(id).map(|u| u.password_hash.clone())
    }

    pub fn set_disabled(&self, id: UserId) {
        if let Some(u) = self.state().user_mut(&id) {
            u.user.disabled = true;
        }
    }

    /// Replaces a user's stored hash directly, as an import of an older service's hash would.
    pub fn put_password_hash(&self, id: UserId, hash: &str) {
        if let Some(u) = self.state().user_mut(&id) {
            u.password_hash = hash.to_owned();
        }
    }

    /// The successor sealed in a rotated refresh token's row (found by the token's hash).
    pub fn successor_sealed(&self, hash: &str) -> Option<String> {
        let state = self.state();
        let token = state.tokens.iter().find(|t| t.hash == hash)?;
        token.successor_sealed.clone()
    }

    /// Replaces it, as an earlier version's rotation would have sealed it.
    pub fn put_successor_sealed(&self, hash: &str, sealed: String) {
        if let Some(token) = self.state().tokens.iter_mut().find(|t| t.hash == hash) {
            token.successor_sealed = Some(sealed);
        }
    }

    /// How many password-history entries the user has.
    pub fn history_len(&self, id: UserId) -> usize {
        self.state()
            .history
            .iter()
            .filter(|(u, _, _)| *u == id)
            .count()
    }

    /// The ids of the user's revoked sessions.
    pub fn revoked_sessions(&self, id: UserId) -> Vec<SessionId> {
        self.state()
            .sessions
            .iter()
            .filter(|(s, _)| s.user_id == id && s.revoked_at.is_some())
            .map(|(s, _)| s.id)
            .collect()
    }

    /// The stored single-use tokens of `purpose`, with when each was used, oldest first.
    pub fn action_tokens(&self, purpose: ActionPurpose) -> Vec<(NewActionToken, Option<i64>)> {
        self.state()
            .action_tokens
            .iter()
            .filter(|(t, _)| t.purpose == purpose)
            .cloned()
            .collect()
    }

    /// Moves the expiry of every stored single-use token to `at`.
    pub fn expire_action_tokens(&self, at: i64) {
        for (t, _) in &mut self.state().action_tokens {
            t.expires_at = at;
        }
    }

    /// Whether the user's address is verified.
    pub fn email_verified(&self, id: UserId) -> bool {
        self.state().user(id).is_some_and(|u| u.user.email_verified)
    }

    /// The user's failed-login state.
    pub fn lockout(&self, id: UserId) -> Option<LockoutState> {
        self.state().user(id).map(|u| u.lockout)
    }

    /// Sets the user's failed-login state.
    pub fn put_lockout(&self, id: UserId, lockout: LockoutState) {
        if let Some(u) = self.state().user_mut(&id) {
            u.lockout = lockout;
        }
    }

    /// The next unit of work fails at its commit, as a database that went away would.
    pub fn fail_next_write(&self) {
        self.0.fail_next_write.store(true, Ordering::SeqCst);
    }
}

/// Permissions of the built-in roles of the default tenant, as the migrations seed them.
fn permissions_of(role: &str) -> Option<&'static [&'static str]> {
    match role {
        "admin" => Some(&[
            "audit:read",
            "keys:read",
            "keys:write",
            "roles:read",
            "roles:write",
            "sessions:write",
            "tenants:write",
            "users:read",
            "users:write",
        ]),
        "user" => Some(&[]),
        _ => None,
    }
}

/// A unit of work on a copy of the data, which replaces the data at commit.
pub struct MemoryTx {
    repo: MemoryRepo,
    staged: State,
    records: Records,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Record for MemoryTx {
    fn audit(&mut self, event: AuditEvent) {
        self.records.audit(event);
    }

    fn event(&mut self, event: DomainEvent) {
        self.records.event(event);
    }

    fn mail(&mut self, mail: OutgoingMail) {
        self.records.mail(mail);
    }
}

impl Transaction for MemoryTx {}

impl UnitOfWork for MemoryRepo {
    type Tx = MemoryTx;

    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send,
        F: for<'t> FnOnce(&'t mut MemoryTx) -> BoxFuture<'t, Result<T, StoreError>> + Send,
    {
        let turn = self.0.writing.clone().lock_owned().await;
        let staged = self.state().clone();
        let mut tx = MemoryTx {
            repo: self.clone(),
            staged,
            records: Records::default(),
            _turn: turn,
        };
        let out = work(&mut tx).await?;
        if self.0.fail_next_write.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "the next write was set to fail".into(),
            ));
        }
        let MemoryTx {
            repo,
            mut staged,
            mut records,
            ..
        } = tx;
        staged.audit.extend(records.take_audit_events());
        let (events, mails) = (records.take_events(), records.take_mails());
        staged.outbox.extend(outbox::rows_of(&events, &mails));
        staged.events.extend(events);
        staged.mails.extend(mails);
        *repo.state() = staged;
        Ok(out)
    }
}
