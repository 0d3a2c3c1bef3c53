//! The database connections: the store, its pool of readers, SQLite's one writer connection
//! and PostgreSQL's lane ([`crate::lane`]), and the way each is opened and closed.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use auth_core::StoreError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use crate::dialect::{AnyQuery, Backend};
use crate::lane::{Lane, Lease, PING_WHEN_IDLE_FOR};
use crate::map_err;
use crate::outbox::OutboxHooks;

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
    /// Seals the tokens of mails waiting in the outbox (under `AUTH_MASTER_KEY`).
    pub mail_seal: auth_core::events::MailSeal,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            sqlite_cache_kib: DEFAULT_SQLITE_CACHE_KIB,
            mail_seal: auth_core::events::MailSeal::default(),
        }
    }
}

/// The database: a connection pool and the backend it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// SQLite: the one connection every write of this process runs on.
    writer: Arc<SqliteWriter>,
    /// PostgreSQL: the connections of every write and of the hot reads ([`crate::lane`]).
    lane: Option<Arc<Lane>>,
    pub(crate) outbox: OutboxHooks,
}

/// SQLite has one writer at a time. The writes of this process queue here, in order, for
/// the one connection they all run on (instead of in SQLite's busy handler, which sleeps and
/// retries: long tail latencies under load). Its page cache stays valid from one transaction
/// to the next (only its own writes change the file), where a write on a pooled connection
/// would first re-read the pages the other connections' writes invalidated. The connection is
/// owned, not pooled: a pool pings every connection it gets back, a round trip to the
/// connection's thread that would sit between every two writes.
pub(crate) struct SqliteWriter {
    /// `None` until the first write, after [`Store::close`], and after a failure that may have
    /// left the connection unusable.
    slot: Arc<Mutex<Option<AnyConnection>>>,
    connect: Option<AnyConnectOptions>,
    pragmas: String,
    /// A write failed in a way that may have left the connection unusable: the next one
    /// opens a new connection first (closing the old one rolls back whatever it left open).
    pub(crate) broken: AtomicBool,
    closed: AtomicBool,
}

/// The connection a write runs on, held for the write: SQLite's writer connection (no other
/// write of this process runs meanwhile) or a PostgreSQL connection of the lane.
/// [`Writer::finish`] once the write is over; a PostgreSQL connection dropped without it is
/// pinged before it serves again (see [`crate::lane`]).
pub(crate) enum Writer {
    Sqlite(OwnedMappedMutexGuard<Option<AnyConnection>, AnyConnection>),
    Postgres(Lease),
}

impl Writer {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        match self {
            Writer::Sqlite(conn) => conn,
            Writer::Postgres(lease) => lease.conn(),
        }
    }

    /// The write is over (committed or rolled back): the connection serves the next one.
    pub(crate) fn finish(self) {
        if let Writer::Postgres(lease) = self {
            lease.finish();
        }
    }

    /// The statement that begins a write transaction. On SQLite it is `BEGIN IMMEDIATE`: the
    /// write lock is taken before anything is read, so what a transaction reads is what it
    /// writes over, even with another process writing to the same file.
    pub(crate) fn begin_statement(&self) -> &'static str {
        match self {
            Writer::Sqlite(_) => "BEGIN IMMEDIATE",
            Writer::Postgres(_) => "BEGIN",
        }
    }
}

/// A connection for a read on a hot path: on PostgreSQL one of the lane, on SQLite a reader
/// of the pool. [`Conn::finish`] once the read is over.
pub(crate) enum Conn {
    Pooled(PoolConnection<Any>),
    Leased(Lease),
}

impl Conn {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        match self {
            Conn::Pooled(conn) => conn,
            Conn::Leased(lease) => lease.conn(),
        }
    }

    pub(crate) fn finish(self) {
        if let Conn::Leased(lease) = self {
            lease.finish();
        }
    }
}

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
        // On PostgreSQL the lane holds up to `max_connections` and the pool, for the other
        // reads, a quarter of that (at least two).
        let pool_size = match backend {
            Backend::Sqlite => options.max_connections,
            Backend::Postgres => (options.max_connections / 4).max(2),
        };
        let pool = pool_options(backend, pool_size, options)
            .connect_with(connect.clone())
            .await
            .map_err(crate::error::map_connect_err)?;
        let lane = (backend == Backend::Postgres).then(|| {
            Arc::new(Lane::new(
                connect.clone(),
                options.max_connections,
                options.acquire_timeout,
            ))
        });
        let writer = SqliteWriter {
            slot: Arc::new(Mutex::new(None)),
            connect: (backend == Backend::Sqlite).then_some(connect),
            pragmas: sqlite_pragmas(options),
            broken: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        };
        Ok(Self {
            pool,
            backend,
            writer: Arc::new(writer),
            lane,
            outbox: OutboxHooks {
                seal: options.mail_seal.clone(),
                ..OutboxHooks::default()
            },
        })
    }

    /// Woken when a committed transaction wrote events to the outbox (in this process).
    pub fn events_ready(&self) -> Arc<tokio::sync::Notify> {
        self.outbox.events_ready.clone()
    }

    /// Woken when a committed transaction wrote mail to the outbox (in this process).
    pub fn mail_ready(&self) -> Arc<tokio::sync::Notify> {
        self.outbox.mail_ready.clone()
    }

    /// Seals and opens the tokens of mails in the outbox.
    pub fn mail_seal(&self) -> &auth_core::events::MailSeal {
        &self.outbox.seal
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Waits for this process's turn to write and returns the connection to write on: on
    /// SQLite the writer connection (opened first if it is not), on PostgreSQL one of the lane.
    pub(crate) async fn writer(&self) -> Result<Writer, StoreError> {
        if let Some(lane) = &self.lane {
            return Ok(Writer::Postgres(lane.lease().await?));
        }
        let Some(connect) = &self.writer.connect else {
            return Err(StoreError::Other("no connection to write on".into()));
        };
        let mut slot: OwnedMutexGuard<Option<AnyConnection>> =
            self.writer.slot.clone().lock_owned().await;
        if self.writer.closed.load(Ordering::Acquire) {
            return Err(map_err(sqlx::Error::PoolClosed));
        }
        if self.writer.broken.swap(false, Ordering::AcqRel)
            && let Some(old) = slot.take()
        {
            // Closing it also rolls back whatever transaction it left open.
            let _ = old.close().await;
        }
        if slot.is_none() {
            // A connection that cannot be opened or set up: the database cannot serve now.
            let mut conn = AnyConnection::connect_with(connect)
                .await
                .map_err(crate::error::map_connect_err)?;
            conn.execute(self.writer.pragmas.as_str())
                .await
                .map_err(crate::error::map_connect_err)?;
            *slot = Some(conn);
        }
        OwnedMutexGuard::try_map(slot, Option::as_mut)
            .map(Writer::Sqlite)
            .map_err(|_| StoreError::Other("the writer connection is missing".into()))
    }

    /// SQLite: marks the writer connection for renewal (a call on it was given up midway, or
    /// failed in a way that may have left it unusable); the next write opens a new one.
    pub(crate) fn renew_writer(&self) {
        self.writer.broken.store(true, Ordering::Release);
    }

    /// SQLite: runs a write transaction written out as one string (`BEGIN IMMEDIATE; ...;
    /// COMMIT`) in one call to the writer connection's thread, and returns the rows its
    /// statements return. The write lock is then held for the statements' own time, not also
    /// across the hand-offs between that thread and the task (three calls, each ending in a
    /// wake-up of the task that may wait behind the HTTP work of the same workers, while
    /// every other write waits for the lock).
    ///
    /// The task yields once the connection is released, so a write queued behind this one
    /// starts before this task goes on to answer its request.
    ///
    /// A statement that fails ends the call before `COMMIT`, with the transaction still open:
    /// it is rolled back before the connection serves another write. A call given up midway
    /// (the request's task dropped) leaves the connection marked for renewal, which rolls back
    /// whatever it left open.
    pub(crate) async fn sqlite_write_in_one_call(
        &self,
        query: AnyQuery<'_>,
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let mut writer = self.writer().await?;
        self.renew_writer();
        let result = query.fetch_all(writer.conn()).await;
        if result.is_err() {
            // Fails only when no transaction is open (it failed at BEGIN or COMMIT) or the
            // connection is gone; either way nothing is left open on this connection.
            let _ = writer.conn().execute("ROLLBACK").await;
        }
        self.writer.broken.store(false, Ordering::Release);
        let result = result.map_err(|e| self.write_err(e));
        writer.finish();
        // Releasing the connection woke the next queued write into this worker's queue, but
        // this task's poll goes on: it answers its request (the response built and written to
        // its socket) before the worker polls anything else, while the writer connection sits
        // idle. Yielding first lets the next write's statement reach the writer's thread
        // before this task answers.
        tokio::task::yield_now().await;
        result
    }

    /// A connection for a read on a hot path (see [`Conn`]).
    pub(crate) async fn hot_conn(&self) -> Result<Conn, StoreError> {
        match &self.lane {
            Some(lane) => Ok(Conn::Leased(lane.lease().await?)),
            None => Ok(Conn::Pooled(
                self.pool
                    .acquire()
                    .await
                    .map_err(crate::error::map_connect_err)?,
            )),
        }
    }

    /// Maps an error of a write. On SQLite, one that may have left the writer connection
    /// unusable (its thread gone, an I/O error) has the next write open a new connection.
    pub(crate) fn write_err(&self, e: sqlx::Error) -> StoreError {
        if matches!(
            e,
            sqlx::Error::WorkerCrashed | sqlx::Error::Io(_) | sqlx::Error::Protocol(_)
        ) {
            self.renew_writer();
        }
        map_err(e)
    }

    /// Closes every connection: the pool's once they are returned, SQLite's writer once a
    /// write in progress ends, PostgreSQL's lane's idle ones now and its leased ones as they
    /// are given back. Writes after this fail as unavailable.
    pub async fn close(&self) {
        if let Some(lane) = &self.lane {
            lane.close().await;
        }
        self.pool.close().await;
        let mut slot = self.writer.slot.lock().await;
        self.writer.closed.store(true, Ordering::Release);
        if let Some(conn) = slot.take() {
            let _ = conn.close().await;
        }
    }

    #[cfg(test)]
    pub(crate) fn writer_marked_for_renewal(&self) -> bool {
        self.writer.broken.load(Ordering::Acquire)
    }
}

/// What every SQLite connection runs first.
fn sqlite_pragmas(options: &StoreOptions) -> String {
    format!(
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
         PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{};",
        options.sqlite_cache_kib
    )
}

fn pool_options(backend: Backend, max_connections: u32, options: &StoreOptions) -> AnyPoolOptions {
    let sqlite_pragmas = sqlite_pragmas(options);
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
pub(crate) fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
