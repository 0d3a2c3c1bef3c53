//! Values every instance on one database agrees on (`service_settings`): the first instance
//! that needs one records it, every later one reads it back.

use auth_core::StoreError;
use sqlx::Any;
use tracing::instrument;

use crate::dialect::portable;
use crate::{Store, map_err};

impl Store {
    /// The value recorded under `name`, recording `value` first when there is none. Instances
    /// starting at the same moment race on the primary key: each gets the one that won.
    #[instrument(skip_all, err, fields(name))]
    pub async fn record_once(
        &self,
        name: &str,
        value: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        let insert = portable!(
            self.backend(),
            "INSERT INTO service_settings (name, value, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO NOTHING"
        );
        sqlx::query::<Any>(insert)
            .bind(name)
            .bind(value)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        self.recorded(name)
            .await?
            .ok_or_else(|| StoreError::Other(format!("{name} was recorded but is gone").into()))
    }

    /// The value recorded under `name`, if any.
    pub async fn recorded(&self, name: &str) -> Result<Option<String>, StoreError> {
        let select = portable!(
            self.backend(),
            "SELECT value FROM service_settings WHERE name = ?"
        );
        sqlx::query_scalar::<Any, String>(select)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }
}
