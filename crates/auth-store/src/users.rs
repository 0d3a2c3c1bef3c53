//! Users and their roles.

use auth_core::StoreError;
use auth_core::domain::{LoginName, NewUser, TenantId, User, UserCredentials};
use auth_core::repo::UserRepository;
use std::sync::OnceLock;

use sqlx::{Any, AnyConnection, FromRow};
use tracing::instrument;
use uuid::Uuid;

use crate::{Backend, Store, map_err};

#[derive(FromRow)]
struct UserRow {
    id: String,
    tenant_id: String,
    email: String,
    username: Option<String>,
    password_hash: String,
    email_verified_at: Option<i64>,
    disabled_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    /// The user's roles, aggregated ([`LIST_SEPARATOR`]).
    roles: Option<String>,
    /// The permissions the user's roles grant, aggregated, possibly repeated.
    permissions: Option<String>,
}

/// Which column a user is looked up by.
#[derive(Clone, Copy)]
pub(crate) enum UserKey {
    Id,
    Email,
    Username,
}

impl Store {
    /// One statement: the user with its roles and permissions aggregated, so looking a user
    /// up (every login) reads the database once. Built once per backend and key.
    pub(crate) fn user_select_sql(&self, key: UserKey) -> &'static str {
        static SQL: [[OnceLock<String>; 3]; 2] = [
            [OnceLock::new(), OnceLock::new(), OnceLock::new()],
            [OnceLock::new(), OnceLock::new(), OnceLock::new()],
        ];
        let backend = match self.backend() {
            Backend::Sqlite => 0,
            Backend::Postgres => 1,
        };
        let (slot, filter) = match key {
            UserKey::Id => (0, "u.id = $1"),
            UserKey::Email => (1, "u.tenant_id = $1 AND u.email_normalized = $2"),
            UserKey::Username => (2, "u.tenant_id = $1 AND u.username_normalized = $2"),
        };
        SQL[backend][slot].get_or_init(|| {
            format!(
                "SELECT u.id, u.tenant_id, u.email, u.username, u.password_hash, \
                 u.email_verified_at, u.disabled_at, u.created_at, u.updated_at, \
                 {access} FROM users u WHERE {filter}",
                access = self.user_access_columns("roles", "permissions"),
            )
        })
    }
}

impl Store {
    /// The two columns of a user's read that list the roles of user `u` and the permissions
    /// they grant (aggregated, `roles_as` and `permissions_as`). A user's roles are of the
    /// user's tenant (granted with it, see `create_user`), so permissions are joined on
    /// `u.tenant_id`: the user's roles are then read from the primary key alone, an index-only
    /// scan, where joining on the role row's own tenant made PostgreSQL's planner read
    /// `user_roles` whole while it is small (a few hundred users: some 400 rows per login and
    /// per refresh in the benchmark).
    pub(crate) fn user_access_columns(&self, roles_as: &str, permissions_as: &str) -> String {
        format!(
            "(SELECT {roles} FROM user_roles r WHERE r.user_id = u.id) AS {roles_as}, \
             (SELECT {permissions} FROM user_roles r JOIN role_permissions p \
                ON p.tenant_id = u.tenant_id AND p.role_name = r.role_name \
              WHERE r.user_id = u.id) AS {permissions_as}",
            roles = self.aggregate("r.role_name"),
            permissions = self.aggregate("p.permission"),
        )
    }
}

impl UserRow {
    fn into_user(self) -> Result<User, StoreError> {
        let id = Uuid::parse_str(&self.id).map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(User {
            id,
            tenant: self.tenant_id,
            email: self.email,
            username: self.username,
            roles: sorted_roles(split_list(self.roles)),
            permissions: sorted_permissions(split_list(self.permissions)),
            email_verified: self.email_verified_at.is_some(),
            disabled: self.disabled_at.is_some(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Roles of a user, the administrative ones first (the first one is the `role` claim:
/// `admin`, then custom roles by name, then `user`), and the permissions they grant, sorted;
/// one query.
pub(crate) async fn roles_of(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    let rows = sqlx::query_as::<Any, (String, Option<String>)>(
        "SELECT r.role_name, p.permission FROM user_roles r \
         LEFT JOIN role_permissions p ON p.tenant_id = r.tenant_id AND p.role_name = r.role_name \
         WHERE r.user_id = $1",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    let roles = sorted_roles(rows.iter().map(|(r, _)| r.clone()).collect());
    let permissions = sorted_permissions(rows.into_iter().filter_map(|(_, p)| p).collect());
    Ok((roles, permissions))
}

/// Roles in the order tokens list them: `admin` first, `user` last, others by name between.
pub(crate) fn sorted_roles(mut roles: Vec<String>) -> Vec<String> {
    let rank = |role: &str| match role {
        "admin" => 0,
        "user" => 2,
        _ => 1,
    };
    roles.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    roles.dedup();
    roles
}

pub(crate) fn sorted_permissions(mut permissions: Vec<String>) -> Vec<String> {
    permissions.sort();
    permissions.dedup();
    permissions
}

/// Separator of aggregated names ([`Store::aggregate`]): the ASCII unit separator, which no
/// role or permission name contains.
pub(crate) const LIST_SEPARATOR: char = '\u{1f}';

/// Splits a list aggregated in SQL.
pub(crate) fn split_list(list: Option<String>) -> Vec<String> {
    list.map(|l| {
        l.split(LIST_SEPARATOR)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

impl UserRepository for Store {
    // A taken email or username is an answer (409), not a failure: its error is recorded at
    // `info`. A failure of the database is logged at `error` where it is answered (503/500).
    #[instrument(skip_all, err(level = "info"), fields(user_id = %user.id))]
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await.map_err(|e| self.write_err(e))?;
        let id = user.id.to_string();
        sqlx::query(
            "INSERT INTO users (id, tenant_id, email, email_normalized, username, \
             username_normalized, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&id)
        .bind(user.tenant.as_str())
        .bind(user.email.as_str())
        .bind(user.email.normalized())
        .bind(user.username.as_ref().map(|u| u.as_str().to_owned()))
        .bind(user.username.as_ref().map(|u| u.normalized().to_owned()))
        .bind(&user.password_hash)
        .bind(user.now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.write_err(e))?;
        for role in &user.roles {
            sqlx::query(
                "INSERT INTO user_roles (user_id, tenant_id, role_name, granted_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(user.tenant.as_str())
            .bind(role.as_str())
            .bind(user.now)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.write_err(e))?;
        }
        let (roles, permissions) = roles_of(&mut tx, &id)
            .await
            .map_err(|e| self.write_err(e))?;
        tx.commit().await.map_err(|e| self.write_err(e))?;
        writer.finish();
        Ok(User {
            id: user.id,
            tenant: user.tenant.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            username: user.username.map(|u| u.as_str().to_owned()),
            roles,
            permissions,
            email_verified: false,
            disabled: false,
            created_at: user.now,
            updated_at: user.now,
        })
    }

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
        let row = sqlx::query_as::<Any, UserRow>(self.user_select_sql(key))
            .bind(tenant.as_str())
            .bind(value)
            .fetch_optional(conn.conn())
            .await
            .map_err(map_err)?;
        conn.finish();
        let Some(mut row) = row else { return Ok(None) };
        let password_hash = std::mem::take(&mut row.password_hash);
        Ok(Some(UserCredentials {
            user: row.into_user()?,
            password_hash,
        }))
    }

    #[instrument(skip_all, err, fields(user_id = %id))]
    async fn get_user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        let row = sqlx::query_as::<Any, UserRow>(self.user_select_sql(UserKey::Id))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(UserRow::into_user).transpose()
    }
}
