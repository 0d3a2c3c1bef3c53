//! Store tests on a real database: the SQLite writer's failure handling and the plans of the
//! hot reads (the latter on the backend of the test run).

use std::path::Path;
use std::time::Duration;

use auth_core::audit::{AuditEvent, AuditKind};
use auth_core::domain::TenantId;
use auth_core::repo::{Record, UnitOfWork};
use sqlx::{AnyPool, Executor};

use super::*;
use crate::dialect::Stmt;

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

/// Records one audit event in a unit of work of its own.
async fn record(store: &Store, at: i64) -> Result<(), StoreError> {
    let event = AuditEvent::new(AuditKind::LoginFailed, &TenantId::default_tenant(), at);
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.audit(event);
                Ok(())
            })
        })
        .await
}

fn remove(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// An insert of an audit row with this id, in one-call form (returns a row).
fn insert(id: &str) -> String {
    format!(
        "INSERT INTO audit_events (id, tenant_id, kind, created_at) \
         VALUES ('{id}', 'default', 'test', 0) RETURNING 1"
    )
}

#[tokio::test]
async fn a_failed_writer_connection_is_replaced_and_what_it_left_open_rolled_back() {
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
    record(&store, 1).await.unwrap();
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM audit_events")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(kinds, ["login.failed"]);

    // An error of the query, not of the connection, keeps the connection.
    let _ = store.write_err(sqlx::Error::RowNotFound);
    assert!(!store.writer_marked_for_renewal());
    store.close().await;
    remove(&path);
}

#[tokio::test]
async fn a_write_in_one_call_that_fails_midway_leaves_nothing_and_the_writer_usable() {
    let (store, path) = sqlite_store().await;
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
    assert!(!store.writer_marked_for_renewal());
    assert_eq!(audit_count(&store).await, 2);
    // The connection writes on, outside any transaction left open.
    record(&store, 1).await.unwrap();
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
    assert!(store.writer_marked_for_renewal());
    other.execute("ROLLBACK").await.unwrap();
    drop(other);
    record(&store, 2).await.unwrap();
    assert!(!store.writer_marked_for_renewal());
    assert!(audit_count(&store).await >= 4);
    store.close().await;
    remove(&path);
}

#[tokio::test]
async fn the_next_queued_write_starts_before_the_finished_one_answers() {
    let (store, path) = sqlite_store().await;
    // `first` reaches the writer first; `next` queues behind it with a statement that runs a
    // while. Both are tasks of this test's one-thread runtime.
    let first = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .sqlite_write_in_one_call(sqlx::query(&format!(
                    "BEGIN IMMEDIATE; {}; COMMIT",
                    insert("first")
                )))
                .await
                .unwrap();
            // Where this task would go on to answer its request: a call is under way on the
            // writer (its connection is marked for the duration of a call) only if the next
            // write was let in first.
            store.writer_marked_for_renewal()
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
    assert!(!store.writer_marked_for_renewal());
    assert_eq!(audit_count(&store).await, 1);
    store.close().await;
    remove(&path);
}

#[tokio::test]
async fn writes_after_close_fail_as_unavailable() {
    let (store, path) = sqlite_store().await;
    record(&store, 1).await.unwrap();
    assert_eq!(audit_count(&store).await, 1);
    store.close().await;
    let refused = record(&store, 2).await.unwrap_err();
    assert!(matches!(refused, StoreError::Unavailable(_)), "{refused:?}");
    remove(&path);
}

/// A store on the database of the test run: a fresh schema of `TEST_DATABASE_URL` when that
/// is a PostgreSQL URL (returned, to be dropped), else a new SQLite file.
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

async fn drop_run_store(
    store: Store,
    schema: Option<(String, String)>,
    path: Option<std::path::PathBuf>,
) {
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
}

/// A unit of work commits whole or not at all: a failure after its first statement leaves
/// neither that statement's row nor the audit event recorded on it, on either backend; the
/// writer serves the next unit of work.
#[tokio::test]
async fn a_unit_of_work_that_fails_midway_leaves_nothing() {
    use auth_core::domain::{Email, NewUser, RoleName, UserId};
    use auth_core::repo::UserWrites;

    let (store, schema, path) = run_store().await;
    let user = |email: &str, role: &str| NewUser {
        id: UserId::generate(),
        tenant: TenantId::default_tenant(),
        email: Email::parse(email).unwrap(),
        username: None,
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        roles: vec![RoleName::user(), RoleName::trusted(role)],
        now: 1,
    };
    // The second role does not exist: the user's row went in, its roles' did not.
    let bad = user("a@example.com", "no-such-role");
    let failed = store
        .write(move |tx| {
            Box::pin(async move {
                tx.audit(AuditEvent::new(
                    AuditKind::LoginFailed,
                    &TenantId::default_tenant(),
                    1,
                ));
                tx.insert_user(bad).await
            })
        })
        .await
        .unwrap_err();
    assert!(
        matches!(failed, StoreError::MissingReference(_)),
        "{failed:?}"
    );
    let count = |sql: &'static str| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_scalar::<sqlx::Any, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM users").await, 0);
    assert_eq!(count("SELECT COUNT(*) FROM audit_events").await, 0);
    // A write that ran, then a deferred one that fails at commit: both are rolled back, and
    // the writer connection serves on (rolled back, not renewed).
    let backend = store.backend();
    let tenant = dialect::portable!(
        backend,
        "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)"
    );
    let failed = store
        .write(move |tx| {
            Box::pin(async move {
                tx.execute(Stmt::new(tenant).bind("twice").bind("Twice").bind(1))
                    .await?;
                tx.defer_insert(Stmt::new(tenant).bind("twice").bind("Twice").bind(2));
                Ok(())
            })
        })
        .await
        .unwrap_err();
    assert!(matches!(failed, StoreError::Conflict(_)), "{failed:?}");
    assert_eq!(
        count("SELECT COUNT(*) FROM tenants WHERE id = 'twice'").await,
        0
    );
    assert!(!store.writer_marked_for_renewal());
    let good = user("a@example.com", "admin");
    let created = store
        .write(move |tx| Box::pin(async move { tx.insert_user(good).await }))
        .await
        .unwrap();
    assert_eq!(
        created.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["admin", "user"]
    );
    assert!(
        created
            .permissions
            .iter()
            .any(|p| p.as_str() == "users:write")
    );
    assert_eq!(count("SELECT COUNT(*) FROM user_roles").await, 2);
    drop_run_store(store, schema, path).await;
}

/// Deferred writes and the records of a unit of work that reads nothing back go in one
/// statement (PostgreSQL) or one call (SQLite), together.
#[tokio::test]
async fn deferred_writes_and_records_are_written_together() {
    let (store, schema, path) = run_store().await;
    let backend = store.backend();
    let insert = dialect::portable!(
        backend,
        "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)"
    );
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.defer_insert(Stmt::new(insert).bind("acme").bind("Acme").bind(5));
                tx.audit(AuditEvent::new(
                    AuditKind::LoginFailed,
                    &TenantId::trusted("acme"),
                    5,
                ));
                Ok(())
            })
        })
        .await
        .unwrap();
    // The same again fails on the tenant's key: the audit event goes nowhere either.
    let again = store
        .write(move |tx| {
            Box::pin(async move {
                tx.defer_insert(Stmt::new(insert).bind("acme").bind("Acme").bind(6));
                tx.audit(AuditEvent::new(
                    AuditKind::LoginFailed,
                    &TenantId::trusted("acme"),
                    6,
                ));
                Ok(())
            })
        })
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    let audits: Vec<i64> =
        sqlx::query_scalar("SELECT created_at FROM audit_events WHERE tenant_id = 'acme'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(audits, [5]);
    drop_run_store(store, schema, path).await;
}

/// The reads of every login and every refresh find a user's roles and permissions through
/// the primary keys, whatever the size of `user_roles`: joined on the role row's own tenant,
/// PostgreSQL's planner read the whole table (a few hundred rows) per login and per refresh
/// while it was small.
#[tokio::test]
async fn user_reads_find_roles_by_key_not_by_scanning_user_roles() {
    use auth_core::domain::{Email, NewUser, RoleName, UserId};
    use auth_core::repo::UserWrites;

    let (store, schema, path) = run_store().await;
    for i in 0..300 {
        let user = NewUser {
            id: UserId::generate(),
            tenant: TenantId::default_tenant(),
            email: Email::parse(&format!("user-{i}@example.com")).unwrap(),
            username: None,
            password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            roles: vec![RoleName::user()],
            now: 1,
        };
        store
            .write(move |tx| Box::pin(async move { tx.insert_user(user).await }))
            .await
            .unwrap();
    }
    // As autovacuum leaves a table that took inserts (and the benchmark's seeding does).
    let settle = match store.backend() {
        Backend::Postgres => "VACUUM ANALYZE",
        Backend::Sqlite => "ANALYZE",
    };
    store.pool().execute(settle).await.unwrap();
    let backend = store.backend();
    let reads = [
        (sessions::refresh_read_sql(backend), vec!["token-hash"]),
        (
            users::user_select_sql(backend, users::UserKey::Id),
            vec!["user-id"],
        ),
        (
            users::user_select_sql(backend, users::UserKey::Email),
            vec!["default", "user-7@example.com"],
        ),
    ];
    let mut plans = Vec::new();
    for (sql, params) in reads {
        let explain = match backend {
            Backend::Postgres => format!("EXPLAIN {sql}"),
            Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
        };
        let mut query = sqlx::query(&explain);
        for param in params {
            query = query.bind(param);
        }
        let rows = query.fetch_all(store.pool()).await.unwrap();
        let column = match backend {
            Backend::Postgres => 0,
            Backend::Sqlite => 3,
        };
        let plan: Vec<String> = rows
            .iter()
            .map(|row| sqlx::Row::get::<String, _>(row, column))
            .collect();
        plans.push(plan.join("\n"));
    }
    drop_run_store(store, schema, path).await;
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
