//! Turns sqlx errors into [`StoreError`]: constraint violations get their domain meaning here,
//! every way the database can be away becomes `Unavailable`.

use auth_core::StoreError;
use sqlx::error::ErrorKind;

/// Maps any sqlx error.
pub fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => {
            let what = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            match db.kind() {
                ErrorKind::UniqueViolation if what.contains("email") => StoreError::DuplicateEmail,
                ErrorKind::UniqueViolation if what.contains("username") => {
                    StoreError::DuplicateUsername
                }
                ErrorKind::UniqueViolation => StoreError::Conflict(what),
                ErrorKind::ForeignKeyViolation => StoreError::MissingReference(what),
                _ if db.code().is_some_and(|c| unavailable_state(&c)) => {
                    StoreError::Unavailable(Box::new(sqlx::Error::Database(db)))
                }
                _ => StoreError::Other(Box::new(sqlx::Error::Database(db))),
            }
        }
        e @ (sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_)) => StoreError::Unavailable(Box::new(e)),
        other => StoreError::Other(Box::new(other)),
    }
}

/// PostgreSQL states that mean the database cannot serve now, not that the query is wrong:
/// class 08 (connection exception), 53 (insufficient resources: too many connections, disk
/// full), 57 (operator intervention: shutting down, cannot connect now). A database that does
/// not accept connections answers 55000, at connect ([`map_connect_err`]).
fn unavailable_state(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57")
}

/// Maps an error of opening a connection: whatever it is (refused, a database that does not
/// accept connections, a failed authentication), the database is unreachable for now.
pub(crate) fn map_connect_err(e: sqlx::Error) -> StoreError {
    match map_err(e) {
        StoreError::Other(cause) => StoreError::Unavailable(cause),
        mapped => mapped,
    }
}
