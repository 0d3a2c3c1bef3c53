//! Signing keys.

use auth_core::StoreError;
use auth_core::audit::AuditEvent;
use auth_core::keys::{KeyState, StoredKey};
use auth_core::repo::{KeyRepository, Record, UnitOfWork};
use sqlx::{Any, FromRow};
use tracing::instrument;

use crate::dialect::{Stmt, portable, sql};
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
    async fn keys(&self, published_only: bool) -> Result<Vec<StoredKey>, StoreError> {
        let filter = if published_only {
            "WHERE state <> 'removed'"
        } else {
            ""
        };
        let select = sql!(self.backend(), usize::from(published_only), || {
            format!("{KEY_COLUMNS} {filter} ORDER BY created_at, kid")
        });
        let rows = sqlx::query_as::<Any, KeyRow>(select)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter().map(StoredKey::try_from).collect()
    }

    /// Inserts a key in the given state.
    async fn insert_key(
        &self,
        key: StoredKey,
        state: KeyState,
        audit: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        let insert = portable!(
            self.backend(),
            "INSERT INTO signing_keys (kid, algorithm, public_key, private_key, state, \
             created_at, activated_at, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"
        );
        let stmt = Stmt::new(insert)
            .bind(key.kid)
            .bind(key.algorithm)
            .bind(key.public_key)
            .bind(key.private_key)
            .bind(state.as_str())
            .bind(key.created_at)
            .bind(key.activated_at);
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute(stmt).await?;
                if let Some(event) = audit {
                    tx.audit(event);
                }
                Ok(())
            })
        })
        .await
    }
}

impl KeyRepository for Store {
    #[instrument(skip_all, err)]
    async fn published_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.keys(true).await
    }

    #[instrument(skip_all, err)]
    async fn all_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.keys(false).await
    }

    #[instrument(skip_all, err, fields(kid = %key.kid))]
    async fn insert_next_key(&self, key: StoredKey, audit: AuditEvent) -> Result<(), StoreError> {
        self.insert_key(key, KeyState::Next, Some(audit)).await
    }

    #[instrument(skip_all, err, fields(kid = %new_kid))]
    async fn promote_key(
        &self,
        new_kid: &str,
        now: i64,
        audit: Option<AuditEvent>,
    ) -> Result<bool, StoreError> {
        let backend = self.backend();
        let kid = new_kid.to_owned();
        self.write(move |tx| {
            Box::pin(async move {
                // Claim the promotion first: only one instance sees the next key still `next`.
                // The active key is retired before the new one activates (one active key at a
                // time).
                let claim = portable!(
                    backend,
                    "UPDATE signing_keys SET state = 'next' WHERE kid = ? AND state = 'next'"
                );
                if tx.execute(Stmt::new(claim).bind(kid.as_str())).await? != 1 {
                    return Ok(false);
                }
                let retire = portable!(
                    backend,
                    "UPDATE signing_keys SET state = 'retired', retired_at = ? \
                     WHERE state = 'active'"
                );
                tx.execute(Stmt::new(retire).bind(now)).await?;
                let activate = portable!(
                    backend,
                    "UPDATE signing_keys SET state = 'active', activated_at = ? \
                     WHERE kid = ? AND state = 'next'"
                );
                tx.execute(Stmt::new(activate).bind(now).bind(kid.as_str()))
                    .await?;
                if let Some(event) = audit {
                    tx.audit(event);
                }
                Ok(true)
            })
        })
        .await
    }

    #[instrument(skip_all, err)]
    async fn remove_retired_keys(&self, retired_before: i64) -> Result<u64, StoreError> {
        let remove = portable!(
            self.backend(),
            "UPDATE signing_keys SET state = 'removed' WHERE state = 'retired' AND retired_at < ?"
        );
        let stmt = Stmt::new(remove).bind(retired_before);
        self.write(move |tx| Box::pin(async move { tx.execute(stmt).await }))
            .await
    }

    #[instrument(skip_all, err, fields(kid = %key.kid))]
    async fn insert_first_active_key(&self, key: StoredKey) -> Result<bool, StoreError> {
        match self.insert_key(key, KeyState::Active, None).await {
            Ok(()) => Ok(true),
            // Another instance won the race: the partial unique index allows one active key.
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
