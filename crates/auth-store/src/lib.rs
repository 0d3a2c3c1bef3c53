//! sqlx implementations of the auth-core repositories. One pool type (`sqlx::Any`) serves
//! SQLite and PostgreSQL with the same portable SQL; where the dialects differ, this crate is
//! the only place that branches.
#![forbid(unsafe_code)]

mod error;
mod keys;
mod sessions;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use auth_core::StoreError;
use auth_core::repo::HealthRepository;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Connection, Executor};

pub use error::map_err;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Recognizes `sqlite:` and `postgres:` / `postgresql:` URLs.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// Default [`StoreOptions::sqlite_cache_kib`].
pub const DEFAULT_SQLITE_CACHE_KIB: u32 = 256;

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// SQLite: page cache of each connection, in KiB. The file's pages are in the kernel's
    /// page cache anyway; SQLite's own default (2 MiB a connection) would let the pool's
    /// eleven connections hold some 22 MiB of copies.
    pub sqlite_cache_kib: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            sqlite_cache_kib: DEFAULT_SQLITE_CACHE_KIB,
        }
    }
}

/// The database: a connection pool and the backend it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// SQLite: a pool of the one connection that writes; PostgreSQL: the same pool.
    writer: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Writers of this process queue here, in order, instead
    /// of in SQLite's busy handler, which sleeps and retries (long tail latencies under load).
    turn: Arc<tokio::sync::Mutex<()>>,
}

/// Held while a write runs on SQLite; nothing on PostgreSQL.
pub(crate) type WriteGuard<'a> = Option<tokio::sync::MutexGuard<'a, ()>>;

impl Store {
    /// Connects to `url`. A SQLite file and its folder are created when missing; SQLite runs
    /// in WAL mode with foreign keys enforced and a busy timeout.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or_else(|| {
            StoreError::Other("DATABASE_URL must start with sqlite: or postgres://".into())
        })?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let connect = AnyConnectOptions::from_str(&url).map_err(map_err)?;
        let pool = pool_options(backend, options.max_connections, options)
            .connect_with(connect.clone())
            .await
            .map_err(map_err)?;
        // SQLite: every write of this process goes through one connection. Its page cache
        // stays valid from one transaction to the next (only its own writes change the
        // file), where a write on a pooled connection first re-reads the pages the other
        // connections' writes invalidated.
        let writer = match backend {
            Backend::Sqlite => pool_options(backend, 1, options)
                .connect_with(connect)
                .await
                .map_err(map_err)?,
            Backend::Postgres => pool.clone(),
        };
        Ok(Self {
            pool,
            writer,
            backend,
            turn: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Waits for this process's turn to write (SQLite only).
    pub(crate) async fn write_turn(&self) -> WriteGuard<'_> {
        match self.backend {
            Backend::Sqlite => Some(self.turn.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Where writes run: SQLite's writer connection, or the PostgreSQL pool.
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// Begins a write transaction in this process's turn. On SQLite it is `BEGIN IMMEDIATE`:
    /// the write lock is taken before anything is read, so what a transaction reads is what
    /// it writes over, even with another process writing to the same file.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<(WriteGuard<'_>, sqlx::Transaction<'static, sqlx::Any>), StoreError> {
        let turn = self.write_turn().await;
        let tx = match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
        .map_err(map_err)?;
        Ok((turn, tx))
    }

    /// SQL aggregating `expr` of a group into one string, separated by
    /// [`users::LIST_SEPARATOR`].
    pub(crate) fn aggregate(&self, expr: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("group_concat({expr}, char(31))"),
            Backend::Postgres => format!("string_agg({expr}, chr(31))"),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// A pooled PostgreSQL connection idle for this long is pinged before it is handed out.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_millis(500);

fn pool_options(backend: Backend, max_connections: u32, options: &StoreOptions) -> AnyPoolOptions {
    let sqlite_pragmas = format!(
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
         PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{};",
        options.sqlite_cache_kib
    );
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(options.acquire_timeout)
        // A SQLite connection is in-process: pinging it before use is a round trip to its
        // thread that can only find it alive. A PostgreSQL connection is pinged when it has
        // been idle for a while (as HikariCP does: 500 ms), since that is when the server may
        // have dropped it (restart, failover, idle timeout); one in steady use is not: two
        // extra round trips per login, each waking the server and preempting a hash.
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if backend == Backend::Postgres && meta.idle_for >= PING_WHEN_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .after_connect(move |conn, _meta| {
            let pragmas = sqlite_pragmas.clone();
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    conn.execute(pragmas.as_str()).await?;
                }
                Ok(())
            })
        })
}

/// Adds `mode=rwc` (create when missing) and creates the parent folder of a SQLite file.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let parent = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent.filter(|_| !path.starts_with(':')) {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
    }
    if query.split('&').any(|kv| kv.starts_with("mode=")) {
        Ok(url.to_owned())
    } else if query.is_empty() {
        Ok(format!("{url}?mode=rwc"))
    } else {
        Ok(format!("{url}&mode=rwc"))
    }
}

impl HealthRepository for Store {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_recognized_by_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://data/auth.db"),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::from_url("mysql://u@h/db"), None);
    }

    #[test]
    fn sqlite_urls_create_the_file_unless_told_otherwise() {
        assert_eq!(
            prepare_sqlite_url("sqlite::memory:").unwrap(),
            "sqlite::memory:?mode=rwc"
        );
        assert_eq!(
            prepare_sqlite_url("sqlite://x.db?cache=shared").unwrap(),
            "sqlite://x.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            prepare_sqlite_url("sqlite://x.db?mode=ro").unwrap(),
            "sqlite://x.db?mode=ro"
        );
    }
}
