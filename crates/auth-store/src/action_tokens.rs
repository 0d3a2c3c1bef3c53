//! Mailed single-use tokens (`action_tokens`): issued superseding the user's unused ones of the
//! same purpose, consumed by one conditional update, looked up and compared by their SHA-256
//! only; and the verification of an address they lead to.

use auth_core::StoreError;
use auth_core::action_token::{ActionPurpose, ActionTokenRecord, NewActionToken};
use auth_core::domain::UserId;
use auth_core::repo::{ActionTokenReads, ActionTokenWrites, BoxFuture};
use sqlx::Row;
use tracing::instrument;

use crate::dialect::{Stmt, portable};
use crate::unit::StoreTx;
use crate::users::stored_id;
use crate::{Store, map_err};

impl ActionTokenWrites for StoreTx {
    fn issue_action_token<'a>(
        &'a mut self,
        token: &'a NewActionToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let backend = self.backend();
            let user = token.user.to_string();
            let supersede = portable!(
                backend,
                "DELETE FROM action_tokens \
                 WHERE user_id = ? AND purpose = ? AND used_at IS NULL"
            );
            self.execute(
                Stmt::new(supersede)
                    .bind(user.as_str())
                    .bind(token.purpose.as_str()),
            )
            .await?;
            let insert = portable!(
                backend,
                "INSERT INTO action_tokens \
                   (token_hash, purpose, user_id, email, created_at, expires_at) \
                 VALUES (?, ?, ?, ?, ?, ?)"
            );
            self.defer_insert(
                Stmt::new(insert)
                    .bind(token.hash.as_str())
                    .bind(token.purpose.as_str())
                    .bind(user)
                    .bind(token.email.as_str())
                    .bind(token.created_at)
                    .bind(token.expires_at),
            );
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
            let consume = portable!(
                self.backend(),
                "UPDATE action_tokens SET used_at = ? \
                 WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ? \
                 RETURNING user_id, email"
            );
            let rows = self
                .fetch_all(
                    Stmt::new(consume)
                        .bind(now)
                        .bind(hash)
                        .bind(purpose.as_str())
                        .bind(now),
                )
                .await?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let user: String = row.try_get(0).map_err(map_err)?;
            let email: String = row.try_get(1).map_err(map_err)?;
            Ok(Some((stored_id(&user, UserId::parse)?, email)))
        })
    }

    fn mark_email_verified<'a>(
        &'a mut self,
        user: &'a UserId,
        email: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let verify = portable!(
                self.backend(),
                "UPDATE users SET email_verified_at = ?, updated_at = ? \
                 WHERE id = ? AND email_normalized = ? AND email_verified_at IS NULL"
            );
            let changed = self
                .execute(
                    Stmt::new(verify)
                        .bind(now)
                        .bind(now)
                        .bind(user.to_string())
                        .bind(email.to_lowercase()),
                )
                .await?;
            Ok(changed > 0)
        })
    }

    fn purge_action_tokens(&mut self, before: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            // In batches, like the other purges: the write lock is never held for long.
            let purge = portable!(
                self.backend(),
                "DELETE FROM action_tokens WHERE token_hash IN \
                 (SELECT token_hash FROM action_tokens \
                  WHERE expires_at < ? OR used_at < ? LIMIT 1000)"
            );
            self.execute(Stmt::new(purge).bind(before).bind(before))
                .await
        })
    }
}

impl ActionTokenReads for Store {
    #[instrument(skip_all, err)]
    async fn find_action_token(
        &self,
        hash: &str,
        purpose: ActionPurpose,
    ) -> Result<Option<ActionTokenRecord>, StoreError> {
        let find = portable!(
            self.backend(),
            "SELECT user_id, email, expires_at, used_at FROM action_tokens \
             WHERE token_hash = ? AND purpose = ?"
        );
        let row = Stmt::new(find)
            .bind(hash)
            .bind(purpose.as_str())
            .query()
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user: String = row.try_get(0).map_err(map_err)?;
        Ok(Some(ActionTokenRecord {
            user: stored_id(&user, UserId::parse)?,
            email: row.try_get(1).map_err(map_err)?,
            expires_at: row.try_get(2).map_err(map_err)?,
            used_at: row.try_get(3).map_err(map_err)?,
        }))
    }
}
