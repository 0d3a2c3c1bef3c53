//! Password hashes and their history (`password_history`), and the writes and reads of
//! `users import`.

use auth_core::StoreError;
use auth_core::domain::{RoleName, TenantId, UserCredentials, UserId, Username};
use auth_core::repo::{BoxFuture, ImportReads, ImportWrites, PasswordReads, PasswordWrites};
use sqlx::{Any, Row};
use tracing::instrument;

use crate::dialect::{Stmt, portable};
use crate::unit::StoreTx;
use crate::users::{UserKey, UserRow, user_select_sql};
use crate::{Store, map_err};

impl PasswordWrites for StoreTx {
    fn set_password_hash<'a>(
        &'a mut self,
        user: &'a UserId,
        hash: &'a str,
        expected: Option<&'a str>,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let backend = self.backend();
            let stmt = match expected {
                Some(expected) => Stmt::new(portable!(
                    backend,
                    "UPDATE users SET password_hash = ?, updated_at = ? \
                     WHERE id = ? AND password_hash = ?"
                ))
                .bind(hash)
                .bind(at)
                .bind(user.to_string())
                .bind(expected),
                None => Stmt::new(portable!(
                    backend,
                    "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?"
                ))
                .bind(hash)
                .bind(at)
                .bind(user.to_string()),
            };
            Ok(self.execute(stmt).await? == 1)
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
            let backend = self.backend();
            let id = uuid::Uuid::now_v7().to_string();
            let insert = portable!(
                backend,
                "INSERT INTO password_history (id, user_id, password_hash, created_at) \
                 VALUES (?, ?, ?, ?)"
            );
            self.execute(
                Stmt::new(insert)
                    .bind(id)
                    .bind(user.to_string())
                    .bind(hash)
                    .bind(at),
            )
            .await?;
            // Ids are UUIDv7: in the order they were made.
            let prune = portable!(
                backend,
                "DELETE FROM password_history WHERE user_id = ? AND id NOT IN \
                 (SELECT id FROM password_history WHERE user_id = ? \
                  ORDER BY id DESC LIMIT ?)"
            );
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            self.execute(
                Stmt::new(prune)
                    .bind(user.to_string())
                    .bind(user.to_string())
                    .bind(keep),
            )
            .await?;
            Ok(())
        })
    }
}

impl PasswordReads for Store {
    #[instrument(skip_all, err, fields(user_id = %id))]
    async fn credentials_by_id(&self, id: UserId) -> Result<Option<UserCredentials>, StoreError> {
        let row = sqlx::query_as::<Any, UserRow>(user_select_sql(self.backend(), UserKey::Id))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(UserRow::into_credentials).transpose()
    }

    #[instrument(skip_all, err, fields(user_id = %id))]
    async fn password_history(&self, id: UserId, limit: usize) -> Result<Vec<String>, StoreError> {
        let select = portable!(
            self.backend(),
            "SELECT password_hash FROM password_history WHERE user_id = ? \
             ORDER BY id DESC LIMIT ?"
        );
        sqlx::query_scalar::<Any, String>(select)
            .bind(id.to_string())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)
    }
}

impl ImportWrites for StoreTx {
    fn import_update_user<'a>(
        &'a mut self,
        user: &'a UserId,
        username: Option<&'a Username>,
        hash: &'a str,
        disabled: bool,
        at: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let update = portable!(
                self.backend(),
                "UPDATE users SET username = ?, username_normalized = ?, password_hash = ?, \
                 disabled_at = CASE WHEN ? = 1 THEN COALESCE(disabled_at, ?) ELSE NULL END, \
                 updated_at = ? WHERE id = ?"
            );
            self.execute(
                Stmt::new(update)
                    .bind(username.map(|u| u.as_str()))
                    .bind(username.map(|u| u.normalized()))
                    .bind(hash)
                    .bind(i64::from(disabled))
                    .bind(at)
                    .bind(at)
                    .bind(user.to_string()),
            )
            .await?;
            Ok(())
        })
    }

    fn import_replace_roles<'a>(
        &'a mut self,
        user: &'a UserId,
        tenant: &'a TenantId,
        roles: &'a [RoleName],
        at: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let backend = self.backend();
            let clear = portable!(backend, "DELETE FROM user_roles WHERE user_id = ?");
            self.execute(Stmt::new(clear).bind(user.to_string()))
                .await?;
            let grant = portable!(
                backend,
                "INSERT INTO user_roles (user_id, tenant_id, role_name, granted_at) \
                 VALUES (?, ?, ?, ?)"
            );
            for role in roles {
                self.execute(
                    Stmt::new(grant)
                        .bind(user.to_string())
                        .bind(tenant.as_str())
                        .bind(role.as_str())
                        .bind(at),
                )
                .await?;
            }
            Ok(())
        })
    }
}

impl ImportReads for Store {
    #[instrument(skip_all, err, fields(tenant = %tenant))]
    async fn tenant_roles(&self, tenant: &TenantId) -> Result<Option<Vec<RoleName>>, StoreError> {
        let backend = self.backend();
        let exists = sqlx::query(portable!(backend, "SELECT 1 FROM tenants WHERE id = ?"))
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(portable!(
            backend,
            "SELECT name FROM roles WHERE tenant_id = ? ORDER BY name"
        ))
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map(RoleName::trusted))
            .collect::<Result<_, _>>()
            .map(Some)
            .map_err(map_err)
    }
}
