//! The domain of auth-service: users, passwords, signing keys and tokens, the services that
//! implement each use case, and the repository traits the store crate implements.
#![forbid(unsafe_code)]

pub mod action_token;
pub mod audit;
pub mod directory;
pub mod domain;
pub mod error;
pub mod events;
pub mod keys;
pub mod lockout;
pub mod outbox;
pub mod password;
pub mod repo;
pub mod revocation;
pub mod secret;
pub mod service;
pub mod session;
pub mod signing;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod token;

pub use error::{CoreError, StoreError};

/// Seconds since the Unix epoch, the unit of every stored timestamp and token claim.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
