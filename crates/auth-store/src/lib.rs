//! sqlx implementations of the auth-core repositories. One pool type (`sqlx::Any`) serves
//! SQLite and PostgreSQL with the same portable SQL; where the dialects differ, this crate is
//! the only place that branches.
#![forbid(unsafe_code)]

mod error;
mod keys;
mod lane;
mod sessions;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use auth_core::StoreError;
use auth_core::repo::HealthRepository;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor};

use lane::{Lane, Lease, PING_WHEN_IDLE_FOR};

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
    backend: Backend,
    /// SQLite: the one connection every write of this process runs on.
    writer: Arc<SqliteWriter>,
    /// PostgreSQL: the connections of every write and of the hot reads ([`lane`]).
    lane: Option<Arc<Lane>>,
}

/// SQLite has one writer at a time. The writes of this process queue here, in order, for
/// the one connection they all run on (instead of in SQLite's busy handler, which sleeps and
/// retries: long tail latencies under load). Its page cache stays valid from one transaction
/// to the next (only its own writes change the file), where a write on a pooled connection
/// would first re-read the pages the other connections' writes invalidated. The connection is
/// owned, not pooled: a pool pings every connection it gets back, a round trip to the
/// connection's thread that would sit between every two writes.
struct SqliteWriter {
    /// `None` until the first write, after [`Store::close`], and after a failure that may have
    /// left the connection unusable.
    slot: tokio::sync::Mutex<Option<AnyConnection>>,
    connect: Option<AnyConnectOptions>,
    pragmas: String,
    /// A write failed in a way that may have left the connection unusable: the next one
    /// opens a new connection first (closing the old one rolls back whatever it left open).
    broken: AtomicBool,
    closed: AtomicBool,
}

/// A query of the portable dialect, with its arguments bound.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// The connection a write runs on, held for the write: SQLite's writer connection (no other
/// write of this process runs meanwhile) or a PostgreSQL connection of the [`lane`].
/// [`Writer::finish`] once the write is over; a PostgreSQL connection dropped without it is
/// pinged before it serves again (see [`lane`]).
pub(crate) enum Writer<'a> {
    Sqlite(tokio::sync::MappedMutexGuard<'a, AnyConnection>),
    Postgres(Lease),
}

impl Writer<'_> {
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

    /// Begins a transaction on this connection. On SQLite it is `BEGIN IMMEDIATE`: the write
    /// lock is taken before anything is read, so what a transaction reads is what it writes
    /// over, even with another process writing to the same file.
    pub(crate) async fn begin(&mut self) -> Result<sqlx::Transaction<'_, Any>, sqlx::Error> {
        match self {
            Writer::Sqlite(conn) => conn.begin_with("BEGIN IMMEDIATE").await,
            Writer::Postgres(lease) => lease.conn().begin().await,
        }
    }
}

/// A connection for a read on a hot path: on PostgreSQL one of the [`lane`], on SQLite a
/// reader of the pool. [`Conn::finish`] once the read is over.
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
            .map_err(map_err)?;
        let lane = (backend == Backend::Postgres).then(|| {
            Arc::new(Lane::new(
                connect.clone(),
                options.max_connections,
                options.acquire_timeout,
            ))
        });
        let writer = SqliteWriter {
            slot: tokio::sync::Mutex::new(None),
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
        })
    }

    /// Waits for this process's turn to write and returns the connection to write on: on
    /// SQLite the writer connection (opened first if it is not), on PostgreSQL one of the lane.
    pub(crate) async fn writer(&self) -> Result<Writer<'_>, StoreError> {
        if let Some(lane) = &self.lane {
            return Ok(Writer::Postgres(lane.lease().await?));
        }
        let Some(connect) = &self.writer.connect else {
            return Err(StoreError::Other("no connection to write on".into()));
        };
        let mut slot = self.writer.slot.lock().await;
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
                .map_err(error::map_connect_err)?;
            conn.execute(self.writer.pragmas.as_str())
                .await
                .map_err(error::map_connect_err)?;
            *slot = Some(conn);
        }
        tokio::sync::MutexGuard::try_map(slot, Option::as_mut)
            .map(Writer::Sqlite)
            .map_err(|_| StoreError::Other("the writer connection is missing".into()))
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
    pub(crate) async fn sqlite_write_in_one_call<'q>(
        &self,
        query: AnyQuery<'q>,
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let mut writer = self.writer().await?;
        self.writer.broken.store(true, Ordering::Release);
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
        // its socket, some 20-30 us) before the worker polls anything else, while the writer
        // connection sits idle. Yielding first lets the next write's statement reach the
        // writer's thread before this task answers (BENCHMARKS.md, twelfth round).
        tokio::task::yield_now().await;
        result
    }

    /// A connection for a read on a hot path (see [`Conn`]).
    pub(crate) async fn hot_conn(&self) -> Result<Conn, StoreError> {
        match &self.lane {
            Some(lane) => Ok(Conn::Leased(lane.lease().await?)),
            None => Ok(Conn::Pooled(
                self.pool.acquire().await.map_err(error::map_connect_err)?,
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
            self.writer.broken.store(true, Ordering::Release);
        }
        map_err(e)
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

    /// A SQLite store on a new file of its own, migrated.
    async fn sqlite_store() -> (Store, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("auth-store-{}.db", uuid::Uuid::now_v7()));
        let url = format!("sqlite://{}", path.display());
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        (store, path)
    }

    async fn audit_count(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    fn remove(path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[tokio::test]
    async fn a_failed_writer_connection_is_replaced_and_what_it_left_open_rolled_back() {
        use auth_core::repo::SessionRepository;
        use auth_core::session::AuditEvent;

        let (store, path) = sqlite_store().await;
        {
            let mut writer = store.writer().await.unwrap();
            // A write cut off inside its transaction (which holds the file's write lock)...
            writer
                .conn()
                .execute(
                    "BEGIN IMMEDIATE; INSERT INTO audit_events (id, tenant_id, kind, created_at) \
                     VALUES ('left-open', 'default', 'test', 0)",
                )
                .await
                .unwrap();
            // ...by a failure that may have left the connection unusable.
            let mapped = store.write_err(sqlx::Error::WorkerCrashed);
            assert!(matches!(mapped, StoreError::Unavailable(_)), "{mapped:?}");
        }
        // The next write runs on a new connection: the old one's transaction was rolled back
        // when it closed, and the write lock released with it.
        store
            .record_audit(AuditEvent::new("after", "default", 1))
            .await
            .unwrap();
        let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM audit_events")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(kinds, ["after"]);

        // An error of the query, not of the connection, keeps the connection.
        let _ = store.write_err(sqlx::Error::RowNotFound);
        assert!(!store.writer.broken.load(Ordering::Acquire));
        store.close().await;
        remove(&path);
    }

    #[tokio::test]
    async fn a_write_in_one_call_that_fails_midway_leaves_nothing_and_the_writer_usable() {
        use auth_core::repo::SessionRepository;
        use auth_core::session::AuditEvent;

        let (store, path) = sqlite_store().await;
        let insert = |id: &'static str| {
            format!(
                "INSERT INTO audit_events (id, tenant_id, kind, created_at) \
                 VALUES ('{id}', 'default', 'test', 0) RETURNING 1"
            )
        };
        let done = store
            .sqlite_write_in_one_call(sqlx::query(&format!(
                "BEGIN IMMEDIATE; {}; {}; COMMIT",
                insert("one"),
                insert("two")
            )))
            .await
            .unwrap();
        assert_eq!(done.len(), 2, "a row for each row written");
        // The second insert fails (the id is taken) after the first one ran: the call ends
        // before COMMIT, and what the first wrote is rolled back.
        let failed = store
            .sqlite_write_in_one_call(sqlx::query(&format!(
                "BEGIN IMMEDIATE; {}; {}; COMMIT",
                insert("three"),
                insert("one")
            )))
            .await
            .err()
            .expect("a failed write");
        assert!(!matches!(failed, StoreError::Unavailable(_)), "{failed:?}");
        assert!(!store.writer.broken.load(Ordering::Acquire));
        assert_eq!(audit_count(&store).await, 2);
        // The connection writes on, outside any transaction left open.
        store
            .record_audit(AuditEvent::new("after", "default", 1))
            .await
            .unwrap();
        assert_eq!(audit_count(&store).await, 3);

        // A call given up before its answer (its task dropped; here while it waits for the
        // write lock another connection holds) marks the connection for renewal; the next
        // write runs on a new one.
        let mut other = store.pool().acquire().await.unwrap();
        other.execute("BEGIN IMMEDIATE").await.unwrap();
        let sql = format!("BEGIN IMMEDIATE; {}; COMMIT", insert("four"));
        let call = store.sqlite_write_in_one_call(sqlx::query(&sql));
        let given_up = tokio::time::timeout(Duration::from_millis(50), call).await;
        assert!(given_up.is_err(), "the write lock is held elsewhere");
        assert!(store.writer.broken.load(Ordering::Acquire));
        other.execute("ROLLBACK").await.unwrap();
        drop(other);
        store
            .record_audit(AuditEvent::new("renewed", "default", 2))
            .await
            .unwrap();
        assert!(!store.writer.broken.load(Ordering::Acquire));
        assert!(audit_count(&store).await >= 4);
        store.close().await;
        remove(&path);
    }

    #[tokio::test]
    async fn the_next_queued_write_starts_before_the_finished_one_answers() {
        let (store, path) = sqlite_store().await;
        // `first` reaches the writer first; `next` queues behind it with a statement that
        // runs a while. Both are tasks of this test's one-thread runtime.
        let first = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .sqlite_write_in_one_call(sqlx::query(
                        "BEGIN IMMEDIATE; INSERT INTO audit_events (id, tenant_id, kind, created_at) \
                         VALUES ('first', 'default', 'test', 0) RETURNING 1; COMMIT",
                    ))
                    .await
                    .unwrap();
                // Where this task would go on to answer its request: a call is under way on
                // the writer (its connection is marked for the duration of a call) only if the
                // next write was let in first.
                store.writer.broken.load(Ordering::Acquire)
            })
        };
        let next = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .sqlite_write_in_one_call(sqlx::query(
                        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                         WHERE x < 2000000) SELECT count(*) FROM c",
                    ))
                    .await
                    .unwrap()
                    .len()
            })
        };
        assert!(
            first.await.unwrap(),
            "the queued write had not started when the first one's task went on"
        );
        assert_eq!(next.await.unwrap(), 1);
        assert!(!store.writer.broken.load(Ordering::Acquire));
        assert_eq!(audit_count(&store).await, 1);
        store.close().await;
        remove(&path);
    }

    #[tokio::test]
    async fn writes_after_close_fail_as_unavailable() {
        use auth_core::repo::SessionRepository;
        use auth_core::session::AuditEvent;

        let (store, path) = sqlite_store().await;
        store
            .record_audit(AuditEvent::new("before", "default", 1))
            .await
            .unwrap();
        assert_eq!(audit_count(&store).await, 1);
        store.close().await;
        let refused = store
            .record_audit(AuditEvent::new("after", "default", 2))
            .await
            .unwrap_err();
        assert!(matches!(refused, StoreError::Unavailable(_)), "{refused:?}");
        remove(&path);
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

    /// A store on the database of the test run: a fresh schema of `TEST_DATABASE_URL` when
    /// that is a PostgreSQL URL (returned, to be dropped), else a new SQLite file.
    async fn run_store() -> (Store, Option<(String, String)>, Option<std::path::PathBuf>) {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if url.starts_with("postgres") => {
                sqlx::any::install_default_drivers();
                let schema = format!("s_{}", uuid::Uuid::now_v7().simple());
                let admin = AnyPool::connect(&url).await.unwrap();
                admin
                    .execute(format!("CREATE SCHEMA {schema}").as_str())
                    .await
                    .unwrap();
                admin.close().await;
                let sep = if url.contains('?') { '&' } else { '?' };
                let store_url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
                let store = Store::connect(&store_url, &StoreOptions::default())
                    .await
                    .unwrap();
                store.migrate().await.unwrap();
                (store, Some((url, schema)), None)
            }
            _ => {
                let (store, path) = sqlite_store().await;
                (store, None, Some(path))
            }
        }
    }

    /// The reads of every login and every refresh find a user's roles and permissions through
    /// the primary keys, whatever the size of `user_roles`: joined on the role row's own
    /// tenant, PostgreSQL's planner read the whole table (a few hundred rows) per login and
    /// per refresh while it was small.
    #[tokio::test]
    async fn user_reads_find_roles_by_key_not_by_scanning_user_roles() {
        use auth_core::domain::{Email, NewUser, RoleName, TenantId};
        use auth_core::repo::UserRepository;

        let (store, schema, path) = run_store().await;
        for i in 0..300 {
            let user = NewUser {
                id: uuid::Uuid::now_v7(),
                tenant: TenantId::default_tenant(),
                email: Email::parse(&format!("user-{i}@example.com")).unwrap(),
                username: None,
                password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
                roles: vec![RoleName::parse("user").unwrap()],
                now: 1,
            };
            store.create_user(user).await.unwrap();
        }
        // As autovacuum leaves a table that took inserts (and the benchmark's seeding does).
        let settle = match store.backend() {
            Backend::Postgres => "VACUUM ANALYZE",
            Backend::Sqlite => "ANALYZE",
        };
        store.pool().execute(settle).await.unwrap();
        let reads = [
            (store.refresh_read_sql(), vec!["token-hash"]),
            (store.user_select_sql(users::UserKey::Id), vec!["user-id"]),
            (
                store.user_select_sql(users::UserKey::Email),
                vec!["default", "user-7@example.com"],
            ),
        ];
        let mut plans = Vec::new();
        for (sql, params) in reads {
            let explain = match store.backend() {
                Backend::Postgres => format!("EXPLAIN {sql}"),
                Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
            };
            let mut query = sqlx::query(&explain);
            for param in params {
                query = query.bind(param);
            }
            let rows = query.fetch_all(store.pool()).await.unwrap();
            let column = match store.backend() {
                Backend::Postgres => 0,
                Backend::Sqlite => 3,
            };
            let plan: Vec<String> = rows
                .iter()
                .map(|row| sqlx::Row::get::<String, _>(row, column))
                .collect();
            plans.push(plan.join("\n"));
        }
        store.close().await;
        if let Some((url, schema)) = schema {
            let admin = AnyPool::connect(&url).await.unwrap();
            admin
                .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                .await
                .unwrap();
            admin.close().await;
        }
        if let Some(path) = path {
            remove(&path);
        }
        for plan in plans {
            // PostgreSQL: no sequential scan; SQLite: the primary key alone (a covering index),
            // not the key and then the row.
            let by_key = !plan.contains("Seq Scan on user_roles")
                && plan
                    .lines()
                    .filter(|l| l.starts_with("SEARCH r ") || l.starts_with("SCAN r"))
                    .all(|l| l.contains("USING COVERING INDEX"));
            assert!(by_key, "user_roles not read by its key alone:\n{plan}");
        }
    }
}
