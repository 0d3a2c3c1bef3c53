//! Failed-login counts and locks ([`auth_core::lockout`]): an account's on its `users` row,
//! those of names that match no account in `login_failures`. Each failure is counted by one
//! atomic update that skips a locked row, then, at the threshold, a second that locks it.

use auth_core::StoreError;
use auth_core::domain::UserId;
use auth_core::lockout::LockoutPolicy;
use auth_core::repo::{BoxFuture, LockoutWrites};
use sqlx::Row;

use crate::dialect::{Stmt, portable};
use crate::map_err;
use crate::unit::StoreTx;

/// Counted failures and earlier locks, from a `RETURNING` row of the count.
fn counts(row: &sqlx::any::AnyRow) -> Result<(i64, i64), StoreError> {
    Ok((
        row.try_get::<i64, _>(0).map_err(map_err)?,
        row.try_get::<i64, _>(1).map_err(map_err)?,
    ))
}

impl LockoutWrites for StoreTx {
    fn count_login_failure<'a>(
        &'a mut self,
        user: &'a UserId,
        policy: &'a LockoutPolicy,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let backend = self.backend();
            let id = user.to_string();
            let count = portable!(
                backend,
                "UPDATE users SET failed_logins = failed_logins + 1 \
                 WHERE id = ? AND (locked_until IS NULL OR locked_until <= ?) \
                 RETURNING CAST(failed_logins AS BIGINT), CAST(lockouts AS BIGINT)"
            );
            let rows = self
                .fetch_all(Stmt::new(count).bind(id.as_str()).bind(now))
                .await?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let (failures, locks) = counts(row)?;
            if !policy.locks_at(failures) {
                return Ok(None);
            }
            let until = policy.locked_until(locks, now);
            let lock = portable!(
                backend,
                "UPDATE users SET failed_logins = 0, locked_until = ?, lockouts = lockouts + 1 \
                 WHERE id = ?"
            );
            self.execute(Stmt::new(lock).bind(until).bind(id.as_str()))
                .await?;
            Ok(Some(until))
        })
    }

    fn count_unknown_login_failure<'a>(
        &'a mut self,
        key: &'a str,
        policy: &'a LockoutPolicy,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let backend = self.backend();
            let count = portable!(
                backend,
                "INSERT INTO login_failures \
                   (name_key, failed_logins, locked_until, lockouts, last_failed_at) \
                 VALUES (?, 1, NULL, 0, ?) \
                 ON CONFLICT (name_key) DO UPDATE SET \
                   failed_logins = CASE WHEN login_failures.locked_until > ? \
                     THEN login_failures.failed_logins \
                     ELSE login_failures.failed_logins + 1 END, \
                   last_failed_at = excluded.last_failed_at \
                 RETURNING failed_logins, lockouts, locked_until"
            );
            let rows = self
                .fetch_all(Stmt::new(count).bind(key).bind(now).bind(now))
                .await?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let (failures, locks) = counts(row)?;
            let locked_until: Option<i64> = row.try_get(2).map_err(map_err)?;
            if locked_until.is_some_and(|until| until > now) || !policy.locks_at(failures) {
                return Ok(None);
            }
            let until = policy.locked_until(locks, now);
            let lock = portable!(
                backend,
                "UPDATE login_failures \
                 SET failed_logins = 0, locked_until = ?, lockouts = lockouts + 1 \
                 WHERE name_key = ?"
            );
            self.execute(Stmt::new(lock).bind(until).bind(key)).await?;
            Ok(Some(until))
        })
    }

    fn reset_login_failures<'a>(
        &'a mut self,
        user: &'a UserId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let reset = portable!(
                self.backend(),
                "UPDATE users SET failed_logins = 0, locked_until = NULL, lockouts = 0 \
                 WHERE id = ?"
            );
            self.execute(Stmt::new(reset).bind(user.to_string()))
                .await?;
            Ok(())
        })
    }

    fn purge_unknown_login_failures(
        &mut self,
        before: i64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            // In batches: a long-untended table does not hold the write lock for long.
            let purge = portable!(
                self.backend(),
                "DELETE FROM login_failures WHERE name_key IN \
                 (SELECT name_key FROM login_failures WHERE last_failed_at < ? LIMIT 1000)"
            );
            self.execute(Stmt::new(purge).bind(before)).await
        })
    }
}
