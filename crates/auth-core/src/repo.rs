//! Repository traits: what the services need from storage. The store crate implements them
//! for SQLite and PostgreSQL; tests may implement them in memory.

use std::future::Future;

use uuid::Uuid;

use crate::StoreError;
use crate::domain::{LoginName, NewUser, TenantId, User, UserCredentials};
use crate::keys::StoredKey;

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
