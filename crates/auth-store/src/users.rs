//! Users and their roles.

use auth_core::StoreError;
use auth_core::domain::{
    LoginName, NewUser, Permission, RoleName, TenantId, User, UserCredentials, UserId, order_roles,
};
use auth_core::lockout::LockoutState;
use auth_core::repo::{BoxFuture, UserReads, UserWrites};
use sqlx::{Any, FromRow, Row};
use tracing::instrument;

use crate::dialect::{Backend, Stmt, portable, split_list, sql};
use crate::unit::StoreTx;
use crate::{Store, map_err};

#[derive(FromRow)]
pub(crate) struct UserRow {
    id: String,
    tenant_id: String,
    email: String,
    username: Option<String>,
    pub(crate) password_hash: String,
    email_verified_at: Option<i64>,
    disabled_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    /// The user's roles, aggregated.
    roles: Option<String>,
    /// The permissions the user's roles grant, aggregated, possibly repeated.
    permissions: Option<String>,
    /// Lockout state: read by the credential checks, absent (default) from other reads.
    #[sqlx(default)]
    failed_logins: i64,
    #[sqlx(default)]
    locked_until: Option<i64>,
    #[sqlx(default)]
    lockouts: i64,
}

/// Which column a user is looked up by.
#[derive(Clone, Copy)]
pub(crate) enum UserKey {
    Id,
    Email,
    Username,
}

/// One statement: the user with its roles and permissions aggregated, so looking a user up
/// (every login) reads the database once.
pub(crate) fn user_select_sql(backend: Backend, key: UserKey) -> &'static str {
    let filter = match key {
        UserKey::Id => "u.id = ?",
        UserKey::Email => "u.tenant_id = ? AND u.email_normalized = ?",
        UserKey::Username => "u.tenant_id = ? AND u.username_normalized = ?",
    };
    sql!(backend, key as usize, || {
        format!(
            "SELECT u.id, u.tenant_id, u.email, u.username, u.password_hash, \
             u.email_verified_at, u.disabled_at, u.created_at, u.updated_at, \
             CAST(u.failed_logins AS BIGINT) AS failed_logins, u.locked_until, \
             CAST(u.lockouts AS BIGINT) AS lockouts, \
             {access} FROM users u WHERE {filter}",
            access = user_access_columns(backend, "roles", "permissions"),
        )
    })
}

/// The two columns of a user's read that list the roles of user `u` and the permissions
/// they grant (aggregated, `roles_as` and `permissions_as`). A user's roles are of the user's
/// tenant (granted with it, see `insert_user`), so permissions are joined on `u.tenant_id`:
/// the user's roles are then read from the primary key alone, an index-only scan, where
/// joining on the role row's own tenant made PostgreSQL's planner read `user_roles` whole
/// while it is small (a few hundred rows per login and per refresh).
pub(crate) fn user_access_columns(
    backend: Backend,
    roles_as: &str,
    permissions_as: &str,
) -> String {
    format!(
        "(SELECT {roles} FROM user_roles r WHERE r.user_id = u.id) AS {roles_as}, \
         (SELECT {permissions} FROM user_roles r JOIN role_permissions p \
            ON p.tenant_id = u.tenant_id AND p.role_name = r.role_name \
          WHERE r.user_id = u.id) AS {permissions_as}",
        roles = backend.aggregate("r.role_name"),
        permissions = backend.aggregate("p.permission"),
    )
}

/// Roles and permissions as a user carries them, from their aggregated lists.
pub(crate) fn access_of(
    roles: Option<String>,
    permissions: Option<String>,
) -> (Vec<RoleName>, Vec<Permission>) {
    let mut roles: Vec<RoleName> = split_list(roles)
        .into_iter()
        .map(RoleName::trusted)
        .collect();
    order_roles(&mut roles);
    let mut permissions: Vec<Permission> = split_list(permissions)
        .into_iter()
        .map(Permission::trusted)
        .collect();
    permissions.sort();
    permissions.dedup();
    (roles, permissions)
}

/// A stored id, which must be one of ours.
pub(crate) fn stored_id<T>(text: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::Other(format!("malformed stored id {text:?}").into()))
}

impl UserRow {
    /// The user with its password hash and lockout state.
    pub(crate) fn into_credentials(mut self) -> Result<UserCredentials, StoreError> {
        let password_hash = std::mem::take(&mut self.password_hash);
        let lockout = LockoutState {
            failed_logins: self.failed_logins,
            locked_until: self.locked_until,
            lockouts: self.lockouts,
        };
        Ok(UserCredentials {
            user: self.into_user()?,
            password_hash,
            lockout,
        })
    }

    pub(crate) fn into_user(self) -> Result<User, StoreError> {
        let (roles, permissions) = access_of(self.roles, self.permissions);
        Ok(User {
            id: stored_id(&self.id, UserId::parse)?,
            tenant: TenantId::trusted(self.tenant_id),
            email: self.email,
            username: self.username,
            roles,
            permissions,
            email_verified: self.email_verified_at.is_some(),
            disabled: self.disabled_at.is_some(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl UserWrites for StoreTx {
    // A taken email or username is an answer (409), not a failure: it is logged at `info`
    // where it is answered. A failure of the database is logged at `error` (503/500).
    fn insert_user(&mut self, user: NewUser) -> BoxFuture<'_, Result<User, StoreError>> {
        Box::pin(async move {
            let backend = self.backend();
            let id = user.id.to_string();
            let insert = portable!(
                backend,
                "INSERT INTO users (id, tenant_id, email, email_normalized, username, \
                 username_normalized, password_hash, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            );
            self.execute(
                Stmt::new(insert)
                    .bind(id.as_str())
                    .bind(user.tenant.as_str())
                    .bind(user.email.as_str())
                    .bind(user.email.normalized())
                    .bind(user.username.as_ref().map(|u| u.as_str()))
                    .bind(user.username.as_ref().map(|u| u.normalized()))
                    .bind(user.password_hash.as_str())
                    .bind(user.now)
                    .bind(user.now),
            )
            .await?;
            let grant = portable!(
                backend,
                "INSERT INTO user_roles (user_id, tenant_id, role_name, granted_at) \
                 VALUES (?, ?, ?, ?)"
            );
            for role in &user.roles {
                self.execute(
                    Stmt::new(grant)
                        .bind(id.as_str())
                        .bind(user.tenant.as_str())
                        .bind(role.as_str())
                        .bind(user.now),
                )
                .await?;
            }
            // What the roles grant, as the database has it.
            let read = portable!(
                backend,
                "SELECT r.role_name, p.permission FROM user_roles r \
                 LEFT JOIN role_permissions p \
                   ON p.tenant_id = r.tenant_id AND p.role_name = r.role_name \
                 WHERE r.user_id = ?"
            );
            let rows = self.fetch_all(Stmt::new(read).bind(id.as_str())).await?;
            let mut roles = Vec::new();
            let mut permissions = Vec::new();
            for row in rows {
                roles.push(RoleName::trusted(
                    row.try_get::<String, _>(0).map_err(map_err)?,
                ));
                if let Some(p) = row.try_get::<Option<String>, _>(1).map_err(map_err)? {
                    permissions.push(Permission::trusted(p));
                }
            }
            order_roles(&mut roles);
            permissions.sort();
            permissions.dedup();
            Ok(User {
                id: user.id,
                tenant: user.tenant,
                email: user.email.as_str().to_owned(),
                username: user.username.map(|u| u.as_str().to_owned()),
                roles,
                permissions,
                email_verified: false,
                disabled: false,
                created_at: user.now,
                updated_at: user.now,
            })
        })
    }
}

impl UserReads for Store {
    #[instrument(skip_all, err)]
    async fn find_credentials(
        &self,
        tenant: &TenantId,
        name: &LoginName,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let (key, value) = match name {
            LoginName::Email(e) => (UserKey::Email, e.normalized()),
            LoginName::Username(u) => (UserKey::Username, u.normalized()),
        };
        let mut conn = self.hot_conn().await?;
        let row = sqlx::query_as::<Any, UserRow>(user_select_sql(self.backend(), key))
            .bind(tenant.as_str())
            .bind(value)
            .fetch_optional(conn.conn())
            .await
            .map_err(map_err)?;
        conn.finish();
        row.map(UserRow::into_credentials).transpose()
    }

    #[instrument(skip_all, err, fields(user_id = %id))]
    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query_as::<Any, UserRow>(user_select_sql(self.backend(), UserKey::Id))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(UserRow::into_user).transpose()
    }
}
