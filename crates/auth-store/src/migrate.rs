//! Migrations: plain SQL, one folder per backend (the SQL differs in places), embedded in
//! the binary and applied on start. A test checks that both folders end with the same tables,
//! columns and indexes.

use auth_core::StoreError;
use sqlx::migrate::Migrator;

use crate::Store;
use crate::dialect::Backend;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend() {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => crate::map_err(e),
            other => StoreError::Other(Box::new(other)),
        })
    }
}
