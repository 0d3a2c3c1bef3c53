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

impl KeyRepository for Store {
    #[instrument(skip_all, err)]
    async fn published_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query_as::<Any, KeyRow>(
            "SELECT kid, algorithm, public_key, private_key, state, created_at, activated_at, \
             retired_at FROM signing_keys WHERE state <> 'removed' ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(StoredKey::try_from).collect()
    }

    #[instrument(skip_all, err, fields(kid = %key.kid))]
    async fn insert_first_active_key(&self, key: StoredKey) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, public_key, private_key, state, created_at, \
             activated_at, retired_at) VALUES ($1, $2, $3, $4, 'active', $5, $6, NULL)",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.public_key)
        .bind(&key.private_key)
        .bind(key.created_at)
        .bind(key.activated_at)
        .execute(&self.pool)
        .await;
        match result.map_err(map_err) {
            Ok(_) => Ok(true),
            // Another instance won the race: the partial unique index allows one active key.
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
