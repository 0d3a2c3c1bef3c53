//! Repository traits: what the services need from storage. The store crate implements them
//! for SQLite and PostgreSQL; tests may implement them in memory.

use std::future::Future;

use uuid::Uuid;

use crate::StoreError;
use crate::domain::{LoginName, NewUser, TenantId, User, UserCredentials};
use crate::keys::StoredKey;
use crate::session::{AuditEvent, RefreshRecord, Session};

pub trait UserRepository: Send + Sync {
    /// Inserts the user and its roles in one transaction. Fails with
    /// [`StoreError::DuplicateEmail`] / [`StoreError::DuplicateUsername`] on conflicts and
    /// [`StoreError::MissingReference`] when the tenant or a role does not exist.
    fn create_user(&self, user: NewUser) -> impl Future<Output = Result<User, StoreError>> + Send;

    /// The user a login names, with its password hash.
    fn find_credentials(
        &self,
        tenant: &TenantId,
        name: &LoginName,
    ) -> impl Future<Output = Result<Option<UserCredentials>, StoreError>> + Send;

    fn get_user(&self, id: Uuid) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
}

pub trait KeyRepository: Send + Sync {
    /// Every key that is not removed, oldest first.
    fn published_keys(&self) -> impl Future<Output = Result<Vec<StoredKey>, StoreError>> + Send;

    /// Every key, removed ones included, oldest first.
    fn all_keys(&self) -> impl Future<Output = Result<Vec<StoredKey>, StoreError>> + Send;

    /// Inserts a key in state `next`; `activated_at` is when it is due to start signing.
    fn insert_next_key(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// In one transaction: the active key becomes retired and `new_kid` (in state `next`)
    /// becomes active. Returns false (changing nothing) when another instance did it first.
    fn promote_key(
        &self,
        new_kid: &str,
        now: i64,
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

/// Sessions and their refresh-token chains. Every method that changes state writes its audit
/// event in the same transaction.
pub trait SessionRepository: Send + Sync {
    /// Creates a session with its first refresh token (by hash).
    fn create_session(
        &self,
        session: Session,
        token_hash: String,
        audit: AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The refresh token with this hash and its session.
    fn find_refresh_token(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = Result<Option<RefreshRecord>, StoreError>> + Send;

    /// A refresh: reads the token with this hash, its session and user; when the token is
    /// unused, `plan` decides on what it read and the rotation it returns is written at once,
    /// all or nothing: the token marked used with the sealed successor, the successor's hash
    /// stored, the session's idle expiry slid, the audit event added. The read takes no lock
    /// (the plan, which signs a token, runs outside any); the write claims the token only
    /// while it is still unused and its session unrevoked, so of two concurrent rotations of
    /// one token exactly one writes, and none writes into a session revoked meanwhile.
    /// `plan` returning `None` changes nothing.
    fn rotate_refresh_token<F>(
        &self,
        token_hash: &str,
        plan: F,
    ) -> impl Future<Output = Result<RotationOutcome, StoreError>> + Send
    where
        F: FnOnce(&RefreshRecord) -> Option<(Rotation, AuditEvent)> + Send;

    /// Revokes one session if it is still unrevoked (and belongs to `user_id` when given);
    /// returns whether it did.
    fn revoke_session(
        &self,
        session_id: &str,
        user_id: Option<&str>,
        reason: &str,
        audit: AuditEvent,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Revokes every unrevoked session of a user; returns their ids.
    fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: &str,
        audit: AuditEvent,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// A user's sessions that are neither revoked nor expired at `now`, newest first.
    fn active_sessions(
        &self,
        user_id: &str,
        now: i64,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// Sessions revoked at or after `since`, as (id, revoked_at).
    fn revoked_since(
        &self,
        since: i64,
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;

    /// Records an event that changes nothing else (a failed login, say).
    fn record_audit(
        &self,
        audit: AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What [`SessionRepository::rotate_refresh_token`] did.
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
