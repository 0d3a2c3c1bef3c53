//! Migration 0006 (the audit log) on a database that already has audit rows, as earlier
//! versions wrote them: every row survives, under the new type names, with its outcome and
//! its actor recovered from what the old rows kept. Run on SQLite, and on PostgreSQL
//! (`TEST_POSTGRES_URL`, else `TEST_DATABASE_URL` when it is a PostgreSQL URL, else the local
//! default; under `CI=true` an unreachable server fails the test).

use std::path::{Path, PathBuf};

use auth_store::{Store, StoreOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Rows as versions before 0006 wrote them: (id, kind, user, detail).
const OLD_ROWS: [(&str, &str, Option<&str>, &str); 7] = [
    ("a1", "login.failed", Some("u1"), "{}"),
    ("a2", "token.refreshed", Some("u1"), "{}"),
    (
        "a3",
        "refresh_token.reused",
        Some("u1"),
        r#"{"rotated_at":5}"#,
    ),
    ("a4", "session.logout", Some("u1"), "{}"),
    ("a5", "user.disabled", Some("u1"), r#"{"actor":"admin-1"}"#),
    ("a6", "password.set", Some("u1"), r#"{"by":"admin-2"}"#),
    ("a7", "tenant.created", None, "{}"),
];

/// What each row is after the migration: (id, type, actor, outcome).
const MIGRATED: [(&str, &str, Option<&str>, &str); 7] = [
    ("a1", "login.failed", None, "failure"),
    ("a2", "refresh.succeeded", Some("u1"), "success"),
    ("a3", "refresh.reuse_detected", Some("u1"), "failure"),
    ("a4", "logout.succeeded", Some("u1"), "success"),
    ("a5", "user.disabled", Some("admin-1"), "success"),
    ("a6", "password.set", Some("admin-2"), "success"),
    ("a7", "tenant.created", None, "success"),
];

/// A row read back: id, type, actor, outcome, details, request id, ip.
type MigratedRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// The migrations before 0006 of a backend's folder, copied to a folder of their own.
fn migrations_before_0006(folder: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    let target = std::env::temp_dir().join(format!("auth-m-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() < "0006" {
            std::fs::copy(&path, target.join(&name)).unwrap();
        }
    }
    target
}

/// Migrates `url` to 0005, writes the old rows, then runs every migration as the service does
/// on start, and checks the rows.
async fn check(url: &str, folder: &str) {
    let pool = AnyPool::connect(url).await.unwrap();
    let before = migrations_before_0006(folder);
    Migrator::new(before.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&before);
    for (i, (id, kind, user, detail)) in OLD_ROWS.iter().enumerate() {
        sqlx::query(&format!(
            "INSERT INTO audit_events (id, tenant_id, kind, user_id, ip, detail, created_at) \
             VALUES ('{id}', 'default', '{kind}', {}, '10.0.0.1', '{detail}', {})",
            user.map_or("NULL".to_owned(), |u| format!("'{u}'")),
            100 + i
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = Store::connect(url, &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let rows: Vec<MigratedRow> = sqlx::query_as(
        "SELECT id, kind, actor_id, outcome, details, request_id, ip FROM audit_events \
             ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), OLD_ROWS.len(), "{rows:?}");
    for (row, (id, kind, actor, outcome)) in rows.iter().zip(MIGRATED) {
        assert_eq!(row.0, id);
        assert_eq!(
            (row.1.as_str(), row.2.as_deref(), row.3.as_str()),
            (kind, actor, outcome),
            "{id}"
        );
        let old = OLD_ROWS.iter().find(|r| r.0 == id).unwrap();
        assert_eq!(row.4, old.3, "{id}: details kept");
        assert_eq!(
            (row.5.as_deref(), row.6.as_deref()),
            (None, Some("10.0.0.1"))
        );
    }
    let admins_read_audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM role_permissions \
         WHERE tenant_id = 'default' AND role_name = 'admin' AND permission = 'audit:read'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(admins_read_audit, 1);
    store.close().await;
}

#[tokio::test]
async fn sqlite_audit_rows_survive_migration_0006_renamed_with_outcome_and_actor() {
    sqlx::any::install_default_drivers();
    let path = std::env::temp_dir().join(format!("auth-m-{}.db", uuid::Uuid::now_v7()));
    check(&format!("sqlite://{}?mode=rwc", path.display()), "sqlite").await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn postgres_audit_rows_survive_migration_0006_renamed_with_outcome_and_actor() {
    sqlx::any::install_default_drivers();
    let url = std::env::var("TEST_POSTGRES_URL")
        .ok()
        .or_else(|| {
            std::env::var("TEST_DATABASE_URL")
                .ok()
                .filter(|u| u.starts_with("postgres"))
        })
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
    let mut admin = match AnyConnection::connect(&url).await {
        Ok(conn) => conn,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL is required under CI=true; {url} is unreachable: {e}"
            );
            eprintln!("skipping: PostgreSQL at {url} is unreachable ({e})");
            return;
        }
    };
    let schema = format!("audit_m_{}", uuid::Uuid::now_v7().simple());
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let schema_url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let checked = tokio::spawn(async move { check(&schema_url, "postgres").await }).await;
    admin
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
    admin.close().await.unwrap();
    checked.unwrap();
}
