//! The directory: tenants, roles and their permissions, user listings, profile changes and
//! erasure (the admin API and a user's own account).

use auth_core::StoreError;
use auth_core::audit::AuditRecord;
use auth_core::directory::{ProfileChanges, Role, Tenant, UserFilter, permissions};
use auth_core::domain::{
    Permission, ROLE_ADMIN, ROLE_USER, RoleName, SessionId, TenantId, User, UserId,
};
use auth_core::repo::{BoxFuture, DirectoryReads, DirectoryWrites};
use auth_core::session::Session;
use sqlx::{Any, Row};
use tracing::instrument;

use crate::audit::{AUDIT_COLUMNS, fetch_audit};
use crate::dialect::{Stmt, portable, sql};
use crate::outbox::{EVENT_CHANNEL, MAIL_CHANNEL};
use crate::sessions::{SESSION_COLUMNS, SessionRow};
use crate::unit::StoreTx;
use crate::users::{UserRow, stored_id, user_access_columns};
use crate::{Store, map_err};

/// A LIKE pattern matching text that starts with `prefix` (escaped with `\`).
fn prefix_pattern(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl DirectoryWrites for StoreTx {
    fn update_profile<'a>(
        &'a mut self,
        user: &'a UserId,
        changes: &'a ProfileChanges,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            // A new email is unverified until its owner proves it; the username may be
            // removed (`Some(None)`), so whether it changes is bound apart from its value.
            let update = portable!(
                self.backend(),
                "UPDATE users SET \
                   email = COALESCE(?, email), \
                   email_normalized = COALESCE(?, email_normalized), \
                   email_verified_at = CASE WHEN ? IS NULL OR ? = email_normalized \
                     THEN email_verified_at ELSE NULL END, \
                   username = CASE WHEN ? = 1 THEN ? ELSE username END, \
                   username_normalized = CASE WHEN ? = 1 THEN ? ELSE username_normalized END, \
                   updated_at = ? \
                 WHERE id = ?"
            );
            let email = changes.email.as_ref();
            let username = changes.username.as_ref();
            let name = username.and_then(|u| u.as_ref());
            let set_name = i64::from(username.is_some());
            let n = self
                .execute(
                    Stmt::new(update)
                        .bind(email.map(|e| e.as_str()))
                        .bind(email.map(|e| e.normalized()))
                        .bind(email.map(|e| e.normalized()))
                        .bind(email.map(|e| e.normalized()))
                        .bind(set_name)
                        .bind(name.map(|u| u.as_str()))
                        .bind(set_name)
                        .bind(name.map(|u| u.normalized()))
                        .bind(now)
                        .bind(user.to_string()),
                )
                .await?;
            Ok(n > 0)
        })
    }

    fn replace_roles<'a>(
        &'a mut self,
        user: &'a UserId,
        tenant: &'a TenantId,
        roles: &'a [RoleName],
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let backend = self.backend();
            let id = user.to_string();
            // The user's row first: concurrent role changes of one user then run one after the
            // other instead of deadlocking on each other's grants (PostgreSQL).
            let touch = portable!(backend, "UPDATE users SET updated_at = ? WHERE id = ?");
            self.execute(Stmt::new(touch).bind(now).bind(id.as_str()))
                .await?;
            let clear = portable!(backend, "DELETE FROM user_roles WHERE user_id = ?");
            self.execute(Stmt::new(clear).bind(id.as_str())).await?;
            // Two changes racing each insert what the other may have inserted meanwhile.
            let grant = portable!(
                backend,
                "INSERT INTO user_roles (user_id, tenant_id, role_name, granted_at) \
                 VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
            );
            for role in roles {
                self.execute(
                    Stmt::new(grant)
                        .bind(id.as_str())
                        .bind(tenant.as_str())
                        .bind(role.as_str())
                        .bind(now),
                )
                .await?;
            }
            Ok(())
        })
    }

    fn set_disabled<'a>(
        &'a mut self,
        user: &'a UserId,
        disabled_at: Option<i64>,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            // Disabling a disabled user keeps the time it was first disabled.
            let update = portable!(
                self.backend(),
                "UPDATE users SET disabled_at = CASE WHEN ? IS NULL THEN NULL \
                   ELSE COALESCE(disabled_at, ?) END, updated_at = ? WHERE id = ?"
            );
            let n = self
                .execute(
                    Stmt::new(update)
                        .bind(disabled_at)
                        .bind(disabled_at)
                        .bind(now)
                        .bind(user.to_string()),
                )
                .await?;
            Ok(n > 0)
        })
    }

    fn clear_lockout<'a>(
        &'a mut self,
        user: &'a UserId,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let update = portable!(
                self.backend(),
                "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?"
            );
            let n = self
                .execute(Stmt::new(update).bind(user.to_string()))
                .await?;
            Ok(n > 0)
        })
    }

    fn erase_user<'a>(
        &'a mut self,
        user: &'a UserId,
        pseudonym: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Vec<SessionId>>, StoreError>> {
        Box::pin(async move {
            let backend = self.backend();
            let id = user.to_string();
            let sessions = portable!(backend, "SELECT id FROM sessions WHERE user_id = ?");
            let rows = self
                .fetch_all(Stmt::new(sessions).bind(id.as_str()))
                .await?;
            let ids = rows
                .iter()
                .map(|row| {
                    let id: String = row.try_get(0).map_err(map_err)?;
                    stored_id(&id, SessionId::parse)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let tombstones = portable!(
                backend,
                "INSERT INTO erased_sessions (id, revoked_at) \
                 SELECT id, ? FROM sessions WHERE user_id = ?"
            );
            self.execute(Stmt::new(tombstones).bind(now).bind(id.as_str()))
                .await?;
            for pseudonymize in [
                portable!(
                    backend,
                    "UPDATE audit_events SET user_id = ? WHERE user_id = ?"
                ),
                portable!(
                    backend,
                    "UPDATE audit_events SET actor_id = ? WHERE actor_id = ?"
                ),
            ] {
                self.execute(Stmt::new(pseudonymize).bind(pseudonym).bind(id.as_str()))
                    .await?;
            }
            // The outbox: mail not sent yet goes (it holds the address and maybe a token);
            // events already delivered keep their envelope but lose their data (addresses,
            // names). Undelivered events stay whole, so consumers still learn of the erasure
            // (`auth.user_deleted`) and of what came before it.
            let unsent_mail = portable!(
                backend,
                format!(
                    "DELETE FROM outbox WHERE channel = '{MAIL_CHANNEL}' AND subject = ? \
                     AND delivered_at IS NULL"
                )
            );
            self.execute(Stmt::new(unsent_mail).bind(id.as_str()))
                .await?;
            let blank = sql!(backend, 0, || format!(
                "UPDATE outbox SET payload = {} WHERE channel = '{EVENT_CHANNEL}' \
                 AND subject = ? AND delivered_at IS NOT NULL",
                backend.json_without_data("payload")
            ));
            self.execute(Stmt::new(blank).bind(id.as_str())).await?;
            // Sessions, their refresh tokens and the user's roles go with the row.
            let delete = portable!(backend, "DELETE FROM users WHERE id = ?");
            let n = self.execute(Stmt::new(delete).bind(id)).await?;
            Ok((n > 0).then_some(ids))
        })
    }

    fn insert_role<'a>(&'a mut self, role: &'a Role) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let insert = portable!(
                self.backend(),
                "INSERT INTO roles (tenant_id, name, description, builtin, created_at) \
                 VALUES (?, ?, ?, ?, ?)"
            );
            self.execute(
                Stmt::new(insert)
                    .bind(role.tenant.as_str())
                    .bind(role.name.as_str())
                    .bind(role.description.as_str())
                    .bind(i64::from(role.builtin))
                    .bind(role.created_at),
            )
            .await?;
            self.grant_permissions(&role.tenant, &role.name, &role.permissions)
                .await
        })
    }

    fn update_role<'a>(
        &'a mut self,
        tenant: &'a TenantId,
        name: &'a RoleName,
        description: &'a str,
        permissions: &'a [Permission],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let backend = self.backend();
            let update = portable!(
                backend,
                "UPDATE roles SET description = ? WHERE tenant_id = ? AND name = ?"
            );
            let n = self
                .execute(
                    Stmt::new(update)
                        .bind(description)
                        .bind(tenant.as_str())
                        .bind(name.as_str()),
                )
                .await?;
            if n == 0 {
                return Ok(false);
            }
            let clear = portable!(
                backend,
                "DELETE FROM role_permissions WHERE tenant_id = ? AND role_name = ?"
            );
            self.execute(Stmt::new(clear).bind(tenant.as_str()).bind(name.as_str()))
                .await?;
            self.grant_permissions(tenant, name, permissions).await?;
            Ok(true)
        })
    }

    fn delete_role<'a>(
        &'a mut self,
        tenant: &'a TenantId,
        name: &'a RoleName,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let delete = portable!(
                self.backend(),
                "DELETE FROM roles WHERE tenant_id = ? AND name = ?"
            );
            let n = self
                .execute(Stmt::new(delete).bind(tenant.as_str()).bind(name.as_str()))
                .await?;
            Ok(n > 0)
        })
    }

    fn insert_tenant<'a>(
        &'a mut self,
        tenant: &'a Tenant,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let insert = portable!(
                self.backend(),
                "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)"
            );
            self.execute(
                Stmt::new(insert)
                    .bind(tenant.id.as_str())
                    .bind(tenant.name.as_str())
                    .bind(tenant.created_at),
            )
            .await?;
            // Every tenant starts with its built-in roles.
            let admin_permissions: Vec<Permission> = permissions::TENANT_ADMIN
                .iter()
                .map(|p| Permission::trusted(*p))
                .collect();
            for (name, description, permissions) in [
                (ROLE_ADMIN, "Administrators", admin_permissions),
                (ROLE_USER, "Every signed-up user", Vec::new()),
            ] {
                let role = Role {
                    tenant: tenant.id.clone(),
                    name: RoleName::trusted(name),
                    description: description.to_owned(),
                    builtin: true,
                    permissions,
                    created_at: tenant.created_at,
                };
                self.insert_role(&role).await?;
            }
            Ok(())
        })
    }
}

impl StoreTx {
    async fn grant_permissions(
        &mut self,
        tenant: &TenantId,
        role: &RoleName,
        permissions: &[Permission],
    ) -> Result<(), StoreError> {
        let grant = portable!(
            self.backend(),
            "INSERT INTO role_permissions (tenant_id, role_name, permission) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING"
        );
        for p in permissions {
            self.execute(
                Stmt::new(grant)
                    .bind(tenant.as_str())
                    .bind(role.as_str())
                    .bind(p.as_str()),
            )
            .await?;
        }
        Ok(())
    }
}

impl DirectoryReads for Store {
    #[instrument(skip_all, err, fields(tenant = %tenant))]
    async fn list_users(
        &self,
        tenant: &TenantId,
        filter: &UserFilter,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<User>, StoreError> {
        let backend = self.backend();
        let select = sql!(backend, 0, || {
            format!(
                "SELECT u.id, u.tenant_id, u.email, u.username, u.password_hash, \
                 u.email_verified_at, u.disabled_at, u.created_at, u.updated_at, {access} \
                 FROM users u WHERE u.tenant_id = ? \
                 AND (? IS NULL OR u.email_normalized LIKE ? ESCAPE '\\') \
                 AND (? IS NULL OR (CASE WHEN u.disabled_at IS NULL THEN 0 ELSE 1 END) = ?) \
                 AND (? IS NULL OR EXISTS (SELECT 1 FROM user_roles f \
                      WHERE f.user_id = u.id AND f.role_name = ?)) \
                 AND (? IS NULL OR u.id > ?) \
                 ORDER BY u.id LIMIT ?",
                access = user_access_columns(backend, "roles", "permissions"),
            )
        });
        let prefix = filter
            .email_prefix
            .as_ref()
            .map(|p| prefix_pattern(&p.to_lowercase()));
        let disabled = filter.disabled.map(i64::from);
        let role = filter.role.as_ref().map(|r| r.as_str().to_owned());
        let rows = sqlx::query_as::<Any, UserRow>(select)
            .bind(tenant.as_str())
            .bind(prefix.clone())
            .bind(prefix)
            .bind(disabled)
            .bind(disabled)
            .bind(role.clone())
            .bind(role)
            .bind(after.clone())
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter()
            .map(|mut row| {
                row.password_hash.clear();
                row.into_user()
            })
            .collect()
    }

    #[instrument(skip_all, err, fields(tenant = %tenant))]
    async fn roles(&self, tenant: &TenantId) -> Result<Vec<Role>, StoreError> {
        let select = portable!(
            self.backend(),
            "SELECT r.name, r.description, CAST(r.builtin AS BIGINT), r.created_at, p.permission \
             FROM roles r LEFT JOIN role_permissions p \
               ON p.tenant_id = r.tenant_id AND p.role_name = r.name \
             WHERE r.tenant_id = ? ORDER BY r.name, p.permission"
        );
        let rows = sqlx::query(select)
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut roles: Vec<Role> = Vec::new();
        for row in rows {
            let name: String = row.try_get(0).map_err(map_err)?;
            let permission: Option<String> = row.try_get(4).map_err(map_err)?;
            if roles.last().is_none_or(|r| r.name.as_str() != name) {
                let builtin: i64 = row.try_get(2).map_err(map_err)?;
                roles.push(Role {
                    tenant: tenant.clone(),
                    name: RoleName::trusted(name),
                    description: row.try_get(1).map_err(map_err)?,
                    builtin: builtin != 0,
                    permissions: Vec::new(),
                    created_at: row.try_get(3).map_err(map_err)?,
                });
            }
            if let (Some(role), Some(p)) = (roles.last_mut(), permission) {
                role.permissions.push(Permission::trusted(p));
            }
        }
        Ok(roles)
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let select = portable!(
            self.backend(),
            "SELECT id, name, created_at FROM tenants ORDER BY id"
        );
        let rows = sqlx::query_as::<Any, (String, String, i64)>(select)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, name, created_at)| Tenant {
                id: TenantId::trusted(id),
                name,
                created_at,
            })
            .collect())
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let select = portable!(
            self.backend(),
            "SELECT id, name, created_at FROM tenants WHERE id = ?"
        );
        let row = sqlx::query_as::<Any, (String, String, i64)>(select)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(row.map(|(id, name, created_at)| Tenant {
            id: TenantId::trusted(id),
            name,
            created_at,
        }))
    }

    #[instrument(skip_all, err, fields(user_id = %user))]
    async fn all_sessions(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        let select = sql!(self.backend(), 0, || {
            format!(
                "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = ? \
                 ORDER BY s.created_at DESC, s.id DESC"
            )
        });
        let rows = sqlx::query_as::<Any, SessionRow>(select)
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter().map(Session::try_from).collect()
    }

    #[instrument(skip_all, err, fields(user_id = %user))]
    async fn audit_of(&self, user: UserId) -> Result<Vec<AuditRecord>, StoreError> {
        let select = portable!(
            self.backend(),
            format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE user_id = ? \
                 ORDER BY created_at, id"
            )
        );
        fetch_audit(self, select, vec![user.to_string().into()]).await
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_pattern;

    #[test]
    fn prefixes_match_literally() {
        assert_eq!(prefix_pattern("a_b%c\\"), "a\\_b\\%c\\\\%");
    }
}
