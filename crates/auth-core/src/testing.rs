//! An in-memory repository for unit tests: every repository trait, with the store's rules
//! (unique emails and usernames per tenant, built-in roles, conditional rotation claims,
//! units of work that commit whole or not at all), so a test of a service stubs nothing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;

use crate::StoreError;
use crate::action_token::{ActionPurpose, ActionTokenRecord, NewActionToken};
use crate::audit::{AuditEvent, AuditKind, AuditQuery, AuditRecord, AuditRepository};
use crate::domain::{
    LoginName, NewUser, Permission, RoleName, SessionId, TenantId, User, UserCredentials, UserId,
    Username, order_roles,
};
use crate::events::{DomainEvent, EventType, OutgoingMail};
use crate::lockout::{LockoutPolicy, LockoutState};
use crate::password::{Argon2Settings, HashingLimits, PasswordHasher};
use crate::repo::{
    ActionTokenReads, ActionTokenWrites, BoxFuture, HealthRepository, ImportReads, ImportWrites,
    LockoutWrites, PasswordReads, PasswordWrites, Record, Records, RefreshRotation, Rotation,
    RotationOutcome, SessionReads, SessionWrites, Transaction, UnitOfWork, UserReads, UserWrites,
};
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

impl UserWrites for MemoryTx {
    fn insert_user(&mut self, new: NewUser) -> BoxFuture<'_, Result<User, StoreError>> {
        Box::pin(async move {
            let state = &mut self.staged;
            let same_tenant = |u: &&StoredUser| u.user.tenant == new.tenant;
            if state
                .users
                .iter()
                .filter(same_tenant)
                .any(|u| u.email == new.email.normalized())
            {
                return Err(StoreError::DuplicateEmail);
            }
            let username = new.username.as_ref().map(|u| u.normalized().to_owned());
            if username.is_some()
                && state
                    .users
                    .iter()
                    .filter(same_tenant)
                    .any(|u| u.username == username)
            {
                return Err(StoreError::DuplicateUsername);
            }
            let mut permissions = Vec::new();
            for role in &new.roles {
                let granted = permissions_of(role.as_str())
                    .filter(|_| new.tenant == TenantId::default_tenant())
                    .ok_or_else(|| StoreError::MissingReference(format!("role {role}")))?;
                permissions.extend(granted.iter().map(|p| Permission::trusted(*p)));
            }
            permissions.sort();
            permissions.dedup();
            let mut roles = new.roles.clone();
            order_roles(&mut roles);
            let user = User {
                id: new.id,
                tenant: new.tenant.clone(),
                email: new.email.as_str().to_owned(),
                username: new.username.as_ref().map(|u| u.as_str().to_owned()),
                roles,
                permissions,
                email_verified: false,
                disabled: false,
                created_at: new.now,
                updated_at: new.now,
            };
            state.users.push(StoredUser {
                user: user.clone(),
                password_hash: new.password_hash,
                lockout: LockoutState::default(),
                email: new.email.normalized().to_owned(),
                username,
            });
            Ok(user)
        })
    }
}

impl PasswordWrites for MemoryTx {
    fn set_password_hash<'a>(
        &'a mut self,
        user: &'a UserId,
        hash: &'a str,
        expected: Option<&'a str>,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let Some(u) = self.staged.user_mut(user) else {
                return Ok(false);
            };
            if expected.is_some_and(|e| e != u.password_hash) {
                return Ok(false);
            }
            u.password_hash = hash.to_owned();
            u.user.updated_at = at;
            Ok(true)
        })
    }

    fn push_password_history<'a>(
        &'a mut self,
        user: &'a UserId,
        hash: &'a str,
        at: i64,
        keep: usize,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let history = &mut self.staged.history;
            history.push((*user, hash.to_owned(), at));
            let mine = history.iter().filter(|(u, _, _)| u == user).count();
            let mut drop = mine.saturating_sub(keep);
            history.retain(|(u, _, _)| {
                let gone = u == user && drop > 0;
                drop -= usize::from(gone);
                !gone
            });
            Ok(())
        })
    }
}

impl ImportWrites for MemoryTx {
    fn import_update_user<'a>(
        &'a mut self,
        user: &'a UserId,
        username: Option<&'a Username>,
        hash: &'a str,
        disabled: bool,
        at: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let u = self
                .staged
                .user_mut(user)
                .ok_or_else(|| StoreError::MissingReference("user".into()))?;
            u.username = username.map(|n| n.normalized().to_owned());
            u.user.username = username.map(|n| n.as_str().to_owned());
            u.password_hash = hash.to_owned();
            u.user.disabled = disabled;
            u.user.updated_at = at;
            Ok(())
        })
    }

    fn import_replace_roles<'a>(
        &'a mut self,
        user: &'a UserId,
        _tenant: &'a TenantId,
        roles: &'a [RoleName],
        _at: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let u = self
                .staged
                .user_mut(user)
                .ok_or_else(|| StoreError::MissingReference("user".into()))?;
            let mut roles = roles.to_vec();
            order_roles(&mut roles);
            let mut permissions: Vec<Permission> = roles
                .iter()
                .filter_map(|r| permissions_of(r.as_str()))
                .flatten()
                .map(|p| Permission::trusted(*p))
                .collect();
            permissions.sort();
            permissions.dedup();
            u.user.roles = roles;
            u.user.permissions = permissions;
            Ok(())
        })
    }
}

impl SessionWrites for MemoryTx {
    fn create_session(&mut self, session: Session, token_hash: String) {
        self.staged.tokens.push(StoredToken {
            hash: token_hash,
            session: session.id,
            used_at: None,
            successor_sealed: None,
        });
        self.staged.sessions.push((session, None));
    }

    fn revoke_session<'a>(
        &'a mut self,
        id: &'a SessionId,
        owner: Option<&'a UserId>,
        reason: RevokeReason,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let found = self.staged.sessions.iter_mut().find(|(s, _)| {
                s.id == *id && s.revoked_at.is_none() && owner.is_none_or(|o| s.user_id == *o)
            });
            Ok(match found {
                Some((session, why)) => {
                    session.revoked_at = Some(at);
                    *why = Some(reason);
                    true
                }
                None => false,
            })
        })
    }

    fn revoke_user_sessions<'a>(
        &'a mut self,
        user: &'a UserId,
        reason: RevokeReason,
        at: i64,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>> {
        Box::pin(async move {
            let mut ids = Vec::new();
            for (session, why) in &mut self.staged.sessions {
                if session.user_id == *user && session.revoked_at.is_none() {
                    session.revoked_at = Some(at);
                    *why = Some(reason);
                    ids.push(session.id);
                }
            }
            Ok(ids)
        })
    }

    fn revoke_other_sessions<'a>(
        &'a mut self,
        user: &'a UserId,
        keep: &'a SessionId,
        reason: RevokeReason,
        at: i64,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>> {
        Box::pin(async move {
            let mut ids = Vec::new();
            for (session, why) in &mut self.staged.sessions {
                if session.user_id == *user && session.id != *keep && session.revoked_at.is_none() {
                    session.revoked_at = Some(at);
                    *why = Some(reason);
                    ids.push(session.id);
                }
            }
            Ok(ids)
        })
    }
}

/// One more failure on `state` unless locked at `now`; the end of the lock it started.
fn count_failure(state: &mut LockoutState, policy: &LockoutPolicy, now: i64) -> Option<i64> {
    if state.locked_for(now).is_some() {
        return None;
    }
    state.failed_logins += 1;
    if !policy.locks_at(state.failed_logins) {
        return None;
    }
    let until = policy.locked_until(state.lockouts, now);
    *state = LockoutState {
        failed_logins: 0,
        locked_until: Some(until),
        lockouts: state.lockouts + 1,
    };
    Some(until)
}

impl LockoutWrites for MemoryTx {
    fn count_login_failure<'a>(
        &'a mut self,
        user: &'a UserId,
        policy: &'a LockoutPolicy,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            Ok(self
                .staged
                .user_mut(user)
                .and_then(|u| count_failure(&mut u.lockout, policy, now)))
        })
    }

    fn count_unknown_login_failure<'a>(
        &'a mut self,
        key: &'a str,
        policy: &'a LockoutPolicy,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let failures = &mut self.staged.unknown_failures;
            let at = match failures.iter().position(|(k, _, _)| k == key) {
                Some(at) => at,
                None => {
                    failures.push((key.to_owned(), LockoutState::default(), now));
                    failures.len() - 1
                }
            };
            let (_, state, seen) = &mut failures[at];
            *seen = now;
            Ok(count_failure(state, policy, now))
        })
    }

    fn reset_login_failures<'a>(
        &'a mut self,
        user: &'a UserId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if let Some(u) = self.staged.user_mut(user) {
                u.lockout = LockoutState::default();
            }
            Ok(())
        })
    }

    fn purge_unknown_login_failures(
        &mut self,
        before: i64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let failures = &mut self.staged.unknown_failures;
            let count = failures.len();
            failures.retain(|(_, _, seen)| *seen >= before);
            Ok((count - failures.len()) as u64)
        })
    }
}

impl ActionTokenWrites for MemoryTx {
    fn issue_action_token<'a>(
        &'a mut self,
        token: &'a NewActionToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if self.staged.user(token.user).is_none() {
                return Err(StoreError::MissingReference("user".into()));
            }
            let tokens = &mut self.staged.action_tokens;
            tokens.retain(|(t, used)| {
                !(t.user == token.user && t.purpose == token.purpose && used.is_none())
            });
            tokens.push((token.clone(), None));
            Ok(())
        })
    }

    fn consume_action_token<'a>(
        &'a mut self,
        hash: &'a str,
        purpose: ActionPurpose,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<(UserId, String)>, StoreError>> {
        Box::pin(async move {
            let found = self.staged.action_tokens.iter_mut().find(|(t, used)| {
                t.hash == hash && t.purpose == purpose && used.is_none() && t.expires_at > now
            });
            Ok(found.map(|(t, used)| {
                *used = Some(now);
                (t.user, t.email.clone())
            }))
        })
    }

    fn mark_email_verified<'a>(
        &'a mut self,
        user: &'a UserId,
        email: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let Some(u) = self.staged.user_mut(user) else {
                return Ok(false);
            };
            if u.email != email.to_lowercase() || u.user.email_verified {
                return Ok(false);
            }
            u.user.email_verified = true;
            u.user.updated_at = now;
            Ok(true)
        })
    }

    fn purge_action_tokens(&mut self, before: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let tokens = &mut self.staged.action_tokens;
            let count = tokens.len();
            tokens.retain(|(t, used)| t.expires_at >= before && used.is_none_or(|u| u >= before));
            Ok((count - tokens.len()) as u64)
        })
    }
}

impl ActionTokenReads for MemoryRepo {
    async fn find_action_token(
        &self,
        hash: &str,
        purpose: ActionPurpose,
    ) -> Result<Option<ActionTokenRecord>, StoreError> {
        Ok(self
            .state()
            .action_tokens
            .iter()
            .find(|(t, _)| t.hash == hash && t.purpose == purpose)
            .map(|(t, used)| ActionTokenRecord {
                user: t.user,
                email: t.email.clone(),
                expires_at: t.expires_at,
                used_at: *used,
            }))
    }
}

impl PasswordReads for MemoryRepo {
    async fn credentials_by_id(&self, id: UserId) -> Result<Option<UserCredentials>, StoreError> {
        Ok(self.state().user(id).map(|u| UserCredentials {
            user: u.user.clone(),
            password_hash: u.password_hash.clone(),
            lockout: u.lockout,
        }))
    }

    async fn password_history(&self, id: UserId, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(self
            .state()
            .history
            .iter()
            .rev()
            .filter(|(u, _, _)| *u == id)
            .take(limit)
            .map(|(_, h, _)| h.clone())
            .collect())
    }
}

impl ImportReads for MemoryRepo {
    async fn tenant_roles(&self, tenant: &TenantId) -> Result<Option<Vec<RoleName>>, StoreError> {
        Ok((*tenant == TenantId::default_tenant())
            .then(|| vec![RoleName::trusted("admin"), RoleName::user()]))
    }
}

impl UserReads for MemoryRepo {
    async fn find_credentials(
        &self,
        tenant: &TenantId,
        name: &LoginName,
    ) -> Result<Option<UserCredentials>, StoreError> {
        self.0.credential_reads.fetch_add(1, Ordering::SeqCst);
        let state = self.state();
        let found = state.users.iter().find(|u| {
            u.user.tenant == *tenant
                && match name {
                    LoginName::Email(e) => u.email == e.normalized(),
                    LoginName::Username(n) => u.username.as_deref() == Some(n.normalized()),
                }
        });
        Ok(found.map(|u| UserCredentials {
            user: u.user.clone(),
            password_hash: u.password_hash.clone(),
            lockout: u.lockout,
        }))
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.state().user(id).map(|u| u.user.clone()))
    }
}

impl SessionReads for MemoryRepo {
    async fn find_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        Ok(self.state().record(token_hash))
    }

    async fn active_sessions(&self, user: UserId, now: i64) -> Result<Vec<Session>, StoreError> {
        let mut sessions: Vec<Session> = self
            .state()
            .sessions
            .iter()
            .map(|(s, _)| s.clone())
            .filter(|s| s.user_id == user && s.is_active(now))
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        Ok(sessions)
    }

    async fn revoked_since(&self, since: i64) -> Result<Vec<(SessionId, i64)>, StoreError> {
        Ok(self
            .state()
            .sessions
            .iter()
            .filter_map(|(s, _)| s.revoked_at.filter(|at| *at >= since).map(|at| (s.id, at)))
            .collect())
    }
}

impl RefreshRotation for MemoryRepo {
    async fn rotate_refresh_token<F>(
        &self,
        token_hash: &str,
        plan: F,
    ) -> Result<RotationOutcome, StoreError>
    where
        F: FnOnce(&RefreshRecord, &mut Records) -> Option<Rotation> + Send,
    {
        let Some(record) = self.state().record(token_hash) else {
            return Ok(RotationOutcome::Unknown);
        };
        if record.used_at.is_some() {
            return Ok(RotationOutcome::Used(Box::new(record)));
        }
        let mut records = Records::default();
        let Some(rotation) = plan(&record, &mut records) else {
            return Ok(RotationOutcome::Declined);
        };
        let _turn = self.0.writing.clone().lock_owned().await;
        let mut state = self.state();
        let session_live = state
            .sessions
            .iter()
            .any(|(s, _)| s.id == record.session.id && s.revoked_at.is_none());
        let Some(token) = state
            .tokens
            .iter_mut()
            .find(|t| t.hash == token_hash && t.used_at.is_none())
            .filter(|_| session_live)
        else {
            return Ok(RotationOutcome::Raced);
        };
        token.used_at = Some(rotation.now);
        token.successor_sealed = Some(rotation.successor_sealed);
        state.tokens.push(StoredToken {
            hash: rotation.successor_hash,
            session: record.session.id,
            used_at: None,
            successor_sealed: None,
        });
        if let Some((session, _)) = state
            .sessions
            .iter_mut()
            .find(|(s, _)| s.id == record.session.id)
        {
            session.last_used_at = rotation.now;
            session.idle_expires_at = rotation.idle_expires_at;
        }
        state.audit.extend(records.take_audit_events());
        Ok(RotationOutcome::Rotated)
    }
}

impl HealthRepository for MemoryRepo {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Entries are identified by their position, zero-padded so ids compare as their order.
impl AuditRepository for MemoryRepo {
    async fn audit_page(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let state = self.state();
        let mut rows: Vec<AuditRecord> = state
            .audit
            .iter()
            .enumerate()
            .map(|(i, e)| AuditRecord {
                id: format!("{i:08}"),
                tenant: e.tenant.as_str().to_owned(),
                kind: e.kind.as_str().to_owned(),
                actor_id: e.actor_id.map(|id| id.to_string()),
                user_id: e.user_id.map(|id| id.to_string()),
                session_id: e.session_id.map(|id| id.to_string()),
                ip: e.client.ip.clone(),
                user_agent: e.client.user_agent.clone(),
                request_id: e.client.request_id.clone(),
                outcome: e.outcome.as_str().to_owned(),
                detail: e.detail.clone(),
                at: e.at,
            })
            .filter(|r| r.tenant == q.tenant.as_str())
            .filter(|r| q.user.is_none() || r.user_id == q.user)
            .filter(|r| q.kind.is_none_or(|k| r.kind == k.as_str()))
            .filter(|r| q.since.is_none_or(|t| r.at >= t))
            .filter(|r| q.until.is_none_or(|t| r.at < t))
            .filter(|r| {
                q.after
                    .as_ref()
                    .is_none_or(|p| (r.at, r.id.as_str()) < (p.at, p.id.as_str()))
            })
            .collect();
        rows.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
        rows.truncate(q.limit);
        Ok(rows)
    }

    async fn purge_audit(&self, before: i64, batch: usize) -> Result<u64, StoreError> {
        let mut state = self.state();
        let mut purged = 0;
        state.audit.retain(|e| {
            let purge = e.at < before && purged < batch;
            purged += usize::from(purge);
            !purge
        });
        Ok(purged as u64)
    }
}
