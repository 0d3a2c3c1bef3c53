//! sqlx implementations of the auth-core repositories. One pool type (`sqlx::Any`) serves
//! SQLite and PostgreSQL with the same portable SQL; where the dialects differ, [`dialect`]
//! is the only place that says how.
//!
//! - [`connect`]: the store and its connections (SQLite's writer, PostgreSQL's [`lane`]);
//! - [`unit`]: the unit of work every write runs in;
//! - [`dialect`]: portable statements and the backends' differences;
//! - [`migrate`]: the migrations of each backend;
//! - one module per table area: [`users`], [`passwords`], [`sessions`], [`keys`], [`audit`],
//!   [`action_tokens`], [`settings`].
#![forbid(unsafe_code)]

mod action_tokens;
mod audit;
mod connect;
mod dialect;
mod directory;
mod error;
mod keys;
mod lane;
mod lockout;
mod migrate;
mod outbox;
mod outbox_repo;
mod passwords;
mod sessions;
mod settings;
mod unit;
mod users;

use auth_core::StoreError;
use auth_core::repo::HealthRepository;

pub use connect::{DEFAULT_SQLITE_CACHE_KIB, Store, StoreOptions};
pub use dialect::Backend;
pub use error::map_err;
pub use outbox::{EVENT_CHANNEL, MAIL_CHANNEL};
pub use unit::StoreTx;

impl HealthRepository for Store {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(error::map_connect_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
