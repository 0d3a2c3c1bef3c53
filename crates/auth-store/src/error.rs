//! Turns sqlx errors into [`StoreError`]: constraint violations get their domain meaning here,
//! every way the database can be unreachable becomes `Unavailable`.

use auth_core::StoreError;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::postgres::{PgDatabaseError, PgSeverity};

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
                _ if cannot_serve_now(&*db) => {
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

/// Maps an error of opening a connection (or of getting one from a pool, which opens them):
/// whatever it is (refused, a database that does not exist or does not accept connections,
/// refused credentials, too many connections, a file that cannot be opened), no query ran and
/// the database cannot serve now.
pub(crate) fn map_connect_err(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

/// The database answered, but only to say it cannot serve now, whatever the statement. Also
/// catches what a pool's own connecting returns from a query run on the pool.
fn cannot_serve_now(db: &dyn DatabaseError) -> bool {
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        // FATAL (or PANIC) ends the session: at connect, a database that does not accept
        // connections (55000) or does not exist (3D000), refused credentials (28000, 28P01);
        // later, a backend terminated by an administrator (57P01) or an idle timeout.
        // Classes 08 (connection exception), 53 (insufficient resources: too many connections,
        // out of memory, disk full) and 57 (operator intervention: shutting down, starting up)
        // mean the same whatever the severity.
        return matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)
            || ["08", "53", "57"]
                .iter()
                .any(|class| pg.code().starts_with(class));
    }
    // SQLite: SQLITE_CANTOPEN (14, with its extended codes): the file cannot be opened.
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 14)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{AnyConnection, Connection};

    /// A SQLite file in a folder that does not exist, opened without creating it.
    async fn unopenable() -> sqlx::Error {
        sqlx::any::install_default_drivers();
        let url = format!(
            "sqlite://{}/missing-{}/auth.db?mode=rw",
            std::env::temp_dir().display(),
            uuid::Uuid::now_v7().simple()
        );
        match AnyConnection::connect(&url).await {
            Ok(_) => panic!("{url} was opened"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn a_database_file_that_cannot_be_opened_is_unavailable() {
        let e = unopenable().await;
        let code = match &e {
            sqlx::Error::Database(db) => db.code().and_then(|c| c.parse::<i32>().ok()),
            _ => None,
        };
        assert_eq!(code.map(|c| c & 0xff), Some(14), "SQLITE_CANTOPEN: {e:?}");
        assert!(matches!(map_err(e), StoreError::Unavailable(_)));
        let e = unopenable().await;
        assert!(matches!(map_connect_err(e), StoreError::Unavailable(_)));
    }

    #[test]
    fn errors_of_the_query_are_not_unavailable() {
        assert!(matches!(
            map_err(sqlx::Error::RowNotFound),
            StoreError::Other(_)
        ));
        assert!(matches!(
            map_err(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
    }
}
