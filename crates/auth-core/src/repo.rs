//! Repository traits: what the services need from storage, split by area so a service asks
//! only for what it uses. The store crate implements them for SQLite and PostgreSQL;
//! [`crate::testing::MemoryRepo`] implements them in memory for unit tests.
//!
//! Writes run as one unit of work ([`UnitOfWork::write`]): a closure on a transaction that
//! the repository owns (it begins, commits, rolls back and maps errors). What the closure
//! records on it ([`Record::audit`]) is stored with its changes, in the same transaction.

use std::future::Future;
use std::pin::Pin;

use crate::StoreError;
use crate::action_token::{ActionPurpose, ActionTokenRecord, NewActionToken};
use crate::audit::{AuditEvent, AuditRecord};
use crate::directory::{ProfileChanges, Role, Tenant, UserFilter};
use crate::domain::{
    LoginName, NewUser, Permission, RoleName, SessionId, TenantId, User, UserCredentials, UserId,
    Username,
};
use crate::events::{DomainEvent, OutgoingMail};
use crate::keys::StoredKey;
use crate::lockout::LockoutPolicy;
use crate::session::{RefreshRecord, RevokeReason, Session};

/// A boxed future that can move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What is recorded with a change, to be stored in the same transaction: the audit trail,
/// and the outbox of events for other services and mail to send ([`crate::events`]).
pub trait Record {
    fn audit(&mut self, event: AuditEvent);
    fn event(&mut self, event: DomainEvent);
    fn mail(&mut self, mail: OutgoingMail);
}

/// Records kept until their transaction is written.
#[derive(Debug, Default)]
pub struct Records {
    audit: Vec<AuditEvent>,
    events: Vec<DomainEvent>,
    mails: Vec<OutgoingMail>,
}

impl Records {
    /// The audit events recorded, in order.
    pub fn audit_events(&self) -> &[AuditEvent] {
        &self.audit
    }

    /// Takes the audit events recorded, leaving none.
    pub fn take_audit_events(&mut self) -> Vec<AuditEvent> {
        std::mem::take(&mut self.audit)
    }

    /// The events recorded, in order.
    pub fn events(&self) -> &[DomainEvent] {
        &self.events
    }

    /// Takes the events recorded, leaving none.
    pub fn take_events(&mut self) -> Vec<DomainEvent> {
        std::mem::take(&mut self.events)
    }

    /// Takes the mails recorded, leaving none.
    pub fn take_mails(&mut self) -> Vec<OutgoingMail> {
        std::mem::take(&mut self.mails)
    }
}

impl Record for Records {
    fn audit(&mut self, event: AuditEvent) {
        self.audit.push(event);
    }

    fn event(&mut self, event: DomainEvent) {
        self.events.push(event);
    }

    fn mail(&mut self, mail: OutgoingMail) {
        self.mails.push(mail);
    }
}

/// A write transaction of a unit of work.
pub trait Transaction: Record + Send {}

/// Runs writes as units of work.
pub trait UnitOfWork: Send + Sync {
    type Tx: Transaction;

    /// Runs `work` on a new transaction and commits it with what was recorded on it; an error
    /// of `work` (or of the commit) rolls everything back. Captures of `work` are owned
    /// (`move`): it may run on another task's turn to write.
    fn write<T, F>(&self, work: F) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send,
        F: for<'t> FnOnce(&'t mut Self::Tx) -> BoxFuture<'t, Result<T, StoreError>> + Send;
}

/// User writes, on a transaction.
pub trait UserWrites: Transaction {
    /// Inserts the user and its roles. Fails with [`StoreError::DuplicateEmail`] /
    /// [`StoreError::DuplicateUsername`] on conflicts and [`StoreError::MissingReference`]
    /// when the tenant or a role does not exist.
    fn insert_user(&mut self, user: NewUser) -> BoxFuture<'_, Result<User, StoreError>>;
}

/// Password writes, on a transaction.
pub trait PasswordWrites: Transaction {
    /// Replaces a user's password hash; with `expected`, only while the stored hash is still
    /// that one (a password verified against it). Whether it did.
    fn set_password_hash<'a>(
        &'a mut self,
        user: &'a UserId,
        hash: &'a str,
        expected: Option<&'a str>,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Records a replaced hash in the user's password history, keeping the newest `keep`.
    fn push_password_history<'a>(
        &'a mut self,
        user: &'a UserId,
        hash: &'a str,
        at: i64,
        keep: usize,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The writes of `users import`, on a transaction (users are created with
/// [`UserWrites::insert_user`]).
pub trait ImportWrites: Transaction {
    /// Sets an existing user's username, password hash and disabled state (a user disabled
    /// before keeps its time of disabling).
    fn import_update_user<'a>(
        &'a mut self,
        user: &'a UserId,
        username: Option<&'a Username>,
        hash: &'a str,
        disabled: bool,
        at: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Replaces a user's roles (of its tenant) with `roles`.
    fn import_replace_roles<'a>(
        &'a mut self,
        user: &'a UserId,
        tenant: &'a TenantId,
        roles: &'a [RoleName],
        at: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// Session writes, on a transaction.
pub trait SessionWrites: Transaction {
    /// Creates a session with its first refresh token (by hash). Nothing is read back, so the
    /// store may write it with the rest of the transaction at commit (a login's write is one
    /// statement on PostgreSQL and one call on SQLite).
    fn create_session(&mut self, session: Session, token_hash: String);

    /// Revokes one session if it is still unrevoked (and belongs to `owner` when given);
    /// whether it did.
    fn revoke_session<'a>(
        &'a mut self,
        id: &'a SessionId,
        owner: Option<&'a UserId>,
        reason: RevokeReason,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Revokes every unrevoked session of a user; their ids.
    fn revoke_user_sessions<'a>(
        &'a mut self,
        user: &'a UserId,
        reason: RevokeReason,
        at: i64,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>>;

    /// Revokes every unrevoked session of a user but `keep`; their ids.
    fn revoke_other_sessions<'a>(
        &'a mut self,
        user: &'a UserId,
        keep: &'a SessionId,
        reason: RevokeReason,
        at: i64,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>>;
}

/// Single-use mailed tokens ([`crate::action_token`]) and the verification of an address, on
/// a transaction.
pub trait ActionTokenWrites: Transaction {
    /// Stores a new token after deleting the user's unused tokens of the same purpose (a newer
    /// token supersedes the older ones).
    fn issue_action_token<'a>(
        &'a mut self,
        token: &'a NewActionToken,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Marks the token with this hash and purpose used, only while it is unused and unexpired
    /// at `now` (one conditional update: of concurrent uses exactly one gets an answer); its
    /// user and the address it was sent to.
    fn consume_action_token<'a>(
        &'a mut self,
        hash: &'a str,
        purpose: ActionPurpose,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<(UserId, String)>, StoreError>>;

    /// Marks the user's address verified, only while it is still `email` (compared
    /// normalized) and unverified; whether it did.
    fn mark_email_verified<'a>(
        &'a mut self,
        user: &'a UserId,
        email: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Deletes tokens that expired or were used before `before`, at most 1000; how many.
    fn purge_action_tokens(&mut self, before: i64) -> BoxFuture<'_, Result<u64, StoreError>>;
}

/// Reads of single-use mailed tokens.
pub trait ActionTokenReads: Send + Sync {
    /// The token with this hash and purpose, used or not.
    fn find_action_token(
        &self,
        hash: &str,
        purpose: ActionPurpose,
    ) -> impl Future<Output = Result<Option<ActionTokenRecord>, StoreError>> + Send;
}

/// Failed-login counting for lockout ([`crate::lockout`]), on a transaction.
pub trait LockoutWrites: Transaction {
    /// Counts a failed login of `user` unless it is locked at `now`; locks it when the count
    /// reaches the policy's threshold. The end of the lock this failure started, if it did.
    fn count_login_failure<'a>(
        &'a mut self,
        user: &'a UserId,
        policy: &'a LockoutPolicy,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>>;

    /// The same for a login naming no account, counted under `key`
    /// ([`crate::lockout::unknown_login_key`]).
    fn count_unknown_login_failure<'a>(
        &'a mut self,
        key: &'a str,
        policy: &'a LockoutPolicy,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>>;

    /// Clears a user's failed logins, lock and doubling (a successful login).
    fn reset_login_failures<'a>(
        &'a mut self,
        user: &'a UserId,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Forgets counts of logins naming no account last seen before `before`; how many.
    fn purge_unknown_login_failures(
        &mut self,
        before: i64,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;
}

/// Directory writes (the admin API and self service), on a transaction.
pub trait DirectoryWrites: Transaction {
    /// Changes a user's email and/or username (a new email is unverified); whether the user
    /// exists. Conflicts are [`StoreError::DuplicateEmail`] / [`StoreError::DuplicateUsername`].
    fn update_profile<'a>(
        &'a mut self,
        user: &'a UserId,
        changes: &'a ProfileChanges,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Replaces a user's roles (of `tenant`, the user's); a role that does not exist is
    /// [`StoreError::MissingReference`].
    fn replace_roles<'a>(
        &'a mut self,
        user: &'a UserId,
        tenant: &'a TenantId,
        roles: &'a [RoleName],
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Disables (`Some(at)`) or enables (`None`) a user; whether the user exists.
    fn set_disabled<'a>(
        &'a mut self,
        user: &'a UserId,
        disabled_at: Option<i64>,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Clears a user's failed-login count and lock; whether the user exists.
    fn clear_lockout<'a>(&'a mut self, user: &'a UserId)
    -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Erases a user: its row, sessions, refresh tokens and roles. Its sessions are kept as
    /// revoked ids only (so every instance learns of it), and its audit entries keep
    /// `pseudonym` instead of its id. The ids of its sessions; `None` when there is no such
    /// user.
    fn erase_user<'a>(
        &'a mut self,
        user: &'a UserId,
        pseudonym: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Vec<SessionId>>, StoreError>>;

    /// Inserts a role with its permissions; an existing name is [`StoreError::Conflict`].
    fn insert_role<'a>(&'a mut self, role: &'a Role) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Replaces a role's description and permissions; whether the role exists.
    fn update_role<'a>(
        &'a mut self,
        tenant: &'a TenantId,
        name: &'a RoleName,
        description: &'a str,
        permissions: &'a [Permission],
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Deletes a role (its grants go with it); whether it existed.
    fn delete_role<'a>(
        &'a mut self,
        tenant: &'a TenantId,
        name: &'a RoleName,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Inserts a tenant; an existing id is [`StoreError::Conflict`].
    fn insert_tenant<'a>(&'a mut self, tenant: &'a Tenant)
    -> BoxFuture<'a, Result<(), StoreError>>;
}

/// Directory reads: listings for the admin API and a user's own export.
pub trait DirectoryReads: Send + Sync {
    /// A page of a tenant's users in id order (creation order), after the position `after`
    /// (an id, or any text: ids compare as text).
    fn list_users(
        &self,
        tenant: &TenantId,
        filter: &UserFilter,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;

    /// A tenant's roles with their permissions, by name.
    fn roles(
        &self,
        tenant: &TenantId,
    ) -> impl Future<Output = Result<Vec<Role>, StoreError>> + Send;

    /// Every tenant, by id.
    fn tenants(&self) -> impl Future<Output = Result<Vec<Tenant>, StoreError>> + Send;

    fn tenant(
        &self,
        id: &TenantId,
    ) -> impl Future<Output = Result<Option<Tenant>, StoreError>> + Send;

    /// Every session of a user, revoked and expired ones included, newest first.
    fn all_sessions(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// A user's audit entries, oldest first.
    fn audit_of(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;
}

/// User reads.
pub trait UserReads: Send + Sync {
    /// The user a login names, with its password hash.
    fn find_credentials(
        &self,
        tenant: &TenantId,
        name: &LoginName,
    ) -> impl Future<Output = Result<Option<UserCredentials>, StoreError>> + Send;

    fn get_user(&self, id: UserId)
    -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
}

/// Password reads.
pub trait PasswordReads: Send + Sync {
    /// A user with its password hash, by id.
    fn credentials_by_id(
        &self,
        id: UserId,
    ) -> impl Future<Output = Result<Option<UserCredentials>, StoreError>> + Send;

    /// The user's newest `limit` earlier password hashes, newest first.
    fn password_history(
        &self,
        id: UserId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// The reads of `users import`.
pub trait ImportReads: Send + Sync {
    /// The roles of a tenant, or `None` when there is no such tenant.
    fn tenant_roles(
        &self,
        tenant: &TenantId,
    ) -> impl Future<Output = Result<Option<Vec<RoleName>>, StoreError>> + Send;
}

/// Session reads.
pub trait SessionReads: Send + Sync {
    /// The refresh token with this hash and its session.
    fn find_refresh_token(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = Result<Option<RefreshRecord>, StoreError>> + Send;

    /// A user's sessions that are neither revoked nor expired at `now`, newest first.
    fn active_sessions(
        &self,
        user: UserId,
        now: i64,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// Sessions revoked at or after `since`, as (id, revoked_at).
    fn revoked_since(
        &self,
        since: i64,
    ) -> impl Future<Output = Result<Vec<(SessionId, i64)>, StoreError>> + Send;
}

/// The refresh: a write of its own, tuned for the hot path (see
/// [`RefreshRotation::rotate_refresh_token`]).
pub trait RefreshRotation: Send + Sync {
    /// Reads the token with this hash, its session and user; when the token is unused,
    /// `plan` decides on what it read (recording what goes with the rotation on the given
    /// records) and the rotation it returns is written at once, all or nothing: the token
    /// marked used with the sealed successor, the successor's hash stored, the session's
    /// idle expiry slid, the records stored. The read takes no lock (the plan, which signs a
    /// token, runs outside any); the write claims the token only while it is still unused and
    /// its session unrevoked, so of two concurrent rotations of one token exactly one writes,
    /// and none writes into a session revoked meanwhile. `plan` returning `None` changes
    /// nothing.
    fn rotate_refresh_token<F>(
        &self,
        token_hash: &str,
        plan: F,
    ) -> impl Future<Output = Result<RotationOutcome, StoreError>> + Send
    where
        F: FnOnce(&RefreshRecord, &mut Records) -> Option<Rotation> + Send;
}

pub trait KeyRepository: Send + Sync {
    /// Every key that is not removed, oldest first.
    fn published_keys(&self) -> impl Future<Output = Result<Vec<StoredKey>, StoreError>> + Send;

    /// Every key, removed ones included, oldest first.
    fn all_keys(&self) -> impl Future<Output = Result<Vec<StoredKey>, StoreError>> + Send;

    /// Inserts a key in state `next`; `activated_at` is when it is due to start signing. The
    /// rotation's audit event is stored in the same transaction (key writes are not units of
    /// work of the services, so they take it here).
    fn insert_next_key(
        &self,
        key: StoredKey,
        audit: AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// In one transaction: the active key becomes retired and `new_kid` (in state `next`)
    /// becomes active, with `audit` when given. Returns false (changing nothing, recording
    /// nothing) when another instance did it first.
    fn promote_key(
        &self,
        new_kid: &str,
        now: i64,
        audit: Option<AuditEvent>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks keys retired before `retired_before` as removed; returns how many.
    fn remove_retired_keys(
        &self,
        retired_before: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Inserts `key` as the active key unless another instance already created one; returns
    /// whether it was inserted.
    fn insert_first_active_key(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

pub trait HealthRepository: Send + Sync {
    /// Answers when the database does.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What [`RefreshRotation::rotate_refresh_token`] did.
#[derive(Debug)]
pub enum RotationOutcome {
    /// No token has this hash.
    Unknown,
    /// The token was used before; nothing changed. The record tells when and how.
    Used(Box<RefreshRecord>),
    /// The plan declined; nothing changed.
    Declined,
    /// Between the read and the write, what the plan relied on changed: another rotation
    /// used the token, or the session was revoked; nothing changed.
    Raced,
    /// Rotated and committed.
    Rotated,
}

/// One refresh-token rotation.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub successor_hash: String,
    pub successor_sealed: String,
    pub now: i64,
    pub idle_expires_at: i64,
}
