//! Turns sqlx errors into [`StoreError`]: constraint violations get their domain meaning here,
//! connection problems become `Unavailable`.

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
                // PostgreSQL classes 08 (connection exception) and 57 (operator intervention,
                // e.g. the server shutting down) mean the database is away, not the query wrong.
                _ if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57")) =>
                {
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
