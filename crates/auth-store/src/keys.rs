//! Signing keys.

use auth_core::StoreError;
use auth_core::keys::{KeyState, StoredKey};
use auth_core::repo::KeyRepository;
use sqlx::{Any, FromRow};
use tracing::instrument;

use crate::{Store, map_err};

#[derive(FromRow)]
struct KeyRow {
    kid: String,
    algorithm: String,
    public_key: Vec<u8>,
    private_key: String,
    state: String,
    created_at: i64,
    activated_at: Option<i64>,
    retired_at: Option<i64>,
}

impl TryFrom<KeyRow> for StoredKey {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> Result<Self, StoreError> {
        let state = KeyState::parse(&row.state).ok_or_else(|| {
            StoreError::Other(format!("unknown key state {:?}", row.state).into())
        })?;
        Ok(StoredKey {
            kid: row.kid,
            algorithm: row.algorithm,
            public_key: row.public_key,
            private_key: row.private_key,
            state,
            created_at: row.created_at,
            activated_at: row.activated_at,
            retired_at: row.retired_at,
        })
    }
}

const KEY_COLUMNS: &str = "SELECT kid, algorithm, public_key, private_key, state, created_at, \
                           activated_at, retired_at FROM signing_keys";

impl Store {
    async fn keys_where(&self, filter: &str) -> Result<Vec<StoredKey>, StoreError> {
        let sql = format!("{KEY_COLUMNS} {filter} ORDER BY created_at, kid");
        let rows = sqlx::query_as::<Any, KeyRow>(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter().map(StoredKey::try_from).collect()
    }
}

impl Store {
    /// Inserts a key in the given state, in this process's write turn.
    async fn insert_key(&self, key: &StoredKey, state: KeyState) -> Result<(), StoreError> {
        let mut writer = self.writer().await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, public_key, private_key, state, created_at, \
             activated_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.public_key)
        .bind(&key.private_key)
        .bind(state.as_str())
        .bind(key.created_at)
        .bind(key.activated_at)
        .execute(writer.conn())
        .await
        .map_err(|e| self.write_err(e))?;
        writer.finish();
        Ok(())
    }
}

impl KeyRepository for Store {
    #[instrument(skip_all, err)]
    async fn published_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.keys_where("WHERE state <> 'removed'").await
    }

    #[instrument(skip_all, err)]
    async fn all_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.keys_where("").await
    }

    #[instrument(skip_all, err, fields(kid = %key.kid))]
    async fn insert_next_key(&self, key: StoredKey) -> Result<(), StoreError> {
        self.insert_key(&key, KeyState::Next).await
    }

    #[instrument(skip_all, err, fields(kid = %new_kid))]
    async fn promote_key(&self, new_kid: &str, now: i64) -> Result<bool, StoreError> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await.map_err(|e| self.write_err(e))?;
        // Claim the promotion first: only one instance sees the next key still `next`.
        // The active key is retired before the new one activates (one active key at a time).
        let claimed =
            sqlx::query("UPDATE signing_keys SET state = 'next' WHERE kid = $1 AND state = 'next'")
                .bind(new_kid)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.write_err(e))?
                .rows_affected();
        if claimed != 1 {
            tx.rollback().await.map_err(|e| self.write_err(e))?;
            writer.finish();
            return Ok(false);
        }
        sqlx::query(
            "UPDATE signing_keys SET state = 'retired', retired_at = $1 WHERE state = 'active'",
        )
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.write_err(e))?;
        sqlx::query("UPDATE signing_keys SET state = 'active', activated_at = $1 WHERE kid = $2 AND state = 'next'")
            .bind(now)
            .bind(new_kid)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.write_err(e))?;
        tx.commit().await.map_err(|e| self.write_err(e))?;
        writer.finish();
        Ok(true)
    }

    #[instrument(skip_all, err)]
    async fn remove_retired_keys(&self, retired_before: i64) -> Result<u64, StoreError> {
        let mut writer = self.writer().await?;
        let done = sqlx::query(
            "UPDATE signing_keys SET state = 'removed' WHERE state = 'retired' AND retired_at < $1",
        )
        .bind(retired_before)
        .execute(writer.conn())
        .await
        .map_err(|e| self.write_err(e))?;
        writer.finish();
        Ok(done.rows_affected())
    }

    #[instrument(skip_all, err, fields(kid = %key.kid))]
    async fn insert_first_active_key(&self, key: StoredKey) -> Result<bool, StoreError> {
        let result = self.insert_key(&key, KeyState::Active).await;
        match result {
            Ok(_) => Ok(true),
            // Another instance won the race: the partial unique index allows one active key.
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
