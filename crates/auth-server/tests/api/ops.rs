use std::collections::BTreeSet;
use std::io::Write;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestDb, assert_problem, build, spawn_app, spawn_app_with};

#[tokio::test]
async fn liveness_answers_on_both_paths() {
    let app = spawn_app().await;
    for path in ["/health", "/auth/health"] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    }
}

#[tokio::test]
async fn readiness_follows_the_database() {
    let app = spawn_app().await;
    let r = app.get("/health/ready").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ready"}));

    // The database goes away: readiness says so, requests that need it get 503, liveness stays up.
    app.state.store.close().await;
    let r = app.get("/health/ready").await;
    assert!(r.headers().contains_key("retry-after"));
    let body = assert_problem(r, 503, "unavailable").await;
    assert!(body.get("detail").is_none(), "no internals in {body}");
    let r = app
        .post_json(
            "/auth/login",
            &json!({"email": "a@example.com", "password": "whatever1"}),
        )
        .await;
    assert_problem(r, 503, "unavailable").await;
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = spawn_app().await;
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "/auth/signup",
        "/auth/register",
        "/auth/login",
        "/auth/me",
        "/health",
        "/auth/health",
        "/health/ready",
        "/.well-known/jwks.json",
        "/openapi.json",
        "/docs",
        "/auth/refresh",
        "/auth/logout",
        "/auth/logout-all",
        "/auth/sessions",
        "/auth/sessions/{id}",
        "/auth/validate",
        "/auth/verify",
        "/auth/password/change",
        "/auth/password-reset/request",
        "/auth/password-reset/confirm",
        "/auth/verify-email/request",
        "/auth/verify-email",
        "/auth/token/",
        "/auth/token/refresh/",
        "/auth/me/",
        "/auth/health/",
        "/auth/me/export",
        "/auth/me/activity",
        "/auth/admin/audit",
        "/auth/admin/users",
        "/auth/admin/users/{id}",
        "/auth/admin/users/{id}/disable",
        "/auth/admin/users/{id}/enable",
        "/auth/admin/users/{id}/unlock",
        "/auth/admin/users/{id}/logout",
        "/auth/admin/users/{id}/sessions",
        "/auth/admin/users/{id}/password",
        "/auth/admin/roles",
        "/auth/admin/roles/{name}",
        "/auth/admin/keys",
        "/auth/admin/keys/rotate",
        "/auth/admin/tenants",
        "/auth/admin/events",
        "/auth/admin/events/stats",
        "/auth/admin/events/{id}/retry",
        "/metrics",
    ]
    .into();
    assert_eq!(paths, expected);
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["paths"]["/auth/login"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
}

/// Every operation that takes a body is sent the four kinds of bad body, and each refusal
/// must be a problem+json answer with its stable code and a status the document lists for
/// that operation; operation ids must be unique (OpenAPI requires it; client generators
/// depend on it).
#[tokio::test]
async fn the_document_lists_the_refusals_each_operation_answers() {
    let app = spawn_app().await;
    // A superadmin holds every permission an operation can ask for, so each is reached.
    let reg = auth_core::service::Registration::parse(
        "conformance@example.com",
        None,
        crate::helpers::PASSWORD.into(),
        &["superadmin".to_owned()],
    )
    .unwrap();
    app.state.accounts.register(reg).await.unwrap();
    let token = app.login_pair("conformance@example.com").await.access;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut ids = BTreeSet::new();
    let mut with_body = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            if op.get("requestBody").is_some() {
                let path = path
                    .replace("{id}", "0193a0a0-0000-7000-8000-000000000000")
                    .replace("{name}", "some-role");
                with_body.push((path, method.clone(), op.clone()));
            }
        }
    }
    assert_eq!(with_body.len(), 20, "the operations with a body");
    let big = format!(r#"{{"token": "{}"}}"#, "x".repeat(70 * 1024));
    let cases: [(Option<&str>, String, u16, &str); 4] = [
        (None, "x".into(), 415, "unsupported_media_type"),
        (
            Some("application/json"),
            "{".into(),
            400,
            "malformed_request",
        ),
        (
            Some("application/json"),
            r#""text""#.into(),
            422,
            "validation_failed",
        ),
        (Some("application/json"), big, 413, "payload_too_large"),
    ];
    for (path, method, op) in &with_body {
        for (content_type, body, status, code) in &cases {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut request = app
                .client
                .request(method, app.url(path))
                .bearer_auth(&token)
                .body(body.clone());
            if let Some(ct) = content_type {
                request = request.header("content-type", *ct);
            }
            let r = request.send().await.unwrap();
            assert_eq!(
                r.status(),
                *status,
                "{path} with {content_type:?} {:.20}",
                body
            );
            assert!(
                op["responses"][status.to_string()].is_object(),
                "{path} answers {status} but does not document it"
            );
            assert_problem(r, *status, code).await;
        }
    }
    // An operation that reads or writes the database documents 503; one that does not, not.
    let responses = |path: &str, method: &str| doc["paths"][path][method]["responses"].clone();
    for (path, method) in [
        ("/auth/login", "post"),
        ("/auth/refresh", "post"),
        ("/auth/me", "get"),
        ("/auth/sessions", "get"),
        ("/auth/token/", "post"),
    ] {
        assert!(responses(path, method)["503"].is_object(), "{path}");
    }
    for path in [
        "/health",
        "/auth/health/",
        "/auth/verify",
        "/.well-known/jwks.json",
    ] {
        assert!(responses(path, "get")["503"].is_null(), "{path}");
    }
}

/// An optional body may be JSON `null` (the document allows it): it is taken as no body.
#[tokio::test]
async fn an_optional_body_of_null_is_no_body() {
    let app = spawn_app().await;
    app.signup("null-body@example.com").await;
    let pair = app.login_pair("null-body@example.com").await;
    let r = app.post_json("/auth/validate", &Value::Null).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"active": false}));
    let r = app
        .client
        .post(app.url("/auth/validate"))
        .bearer_auth(&pair.access)
        .json(&Value::Null)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&pair.access)
        .json(&Value::Null)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app.refresh(&pair.refresh).await;
    assert_eq!(r.status(), 401, "the session was logged out");
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let app = spawn_app().await;
    let r = app.get("/docs/").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("https://"),
        "no assets from elsewhere: {html}"
    );
    for asset in [
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let r = app.get(asset).await;
        assert_eq!(r.status(), 200, "{asset}");
        let text = r.text().await.unwrap();
        if asset.ends_with("initializer.js") {
            assert!(
                text.contains("/openapi.json"),
                "the page loads our document"
            );
        }
    }
}

#[tokio::test]
async fn the_tests_run_on_the_backend_asked_for() {
    let app = spawn_app().await;
    let wanted = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => auth_store::Backend::Postgres,
        _ => auth_store::Backend::Sqlite,
    };
    assert_eq!(app.state.store.backend(), wanted);
}

#[tokio::test]
async fn sqlite_connections_get_the_configured_page_cache() {
    let app = spawn_app_with(&[("AUTH_SQLITE_CACHE_KIB", "512")]).await;
    // The setting is accepted on both backends and the service works with it.
    let r = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    if app.state.store.backend() == auth_store::Backend::Sqlite {
        // Negative: a size in KiB rather than in pages.
        let size: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(app.pool())
            .await
            .unwrap();
        assert_eq!(size, -512);
        let default = spawn_app().await;
        let size: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(default.pool())
            .await
            .unwrap();
        assert_eq!(size, -(auth_store::DEFAULT_SQLITE_CACHE_KIB as i64));
    }
}

/// A login whose client gave up is still completed, and shutdown waits for it before closing
/// the pool: the session it opened is in the database afterwards, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_writes_of_clients_that_left() {
    let (_db, url) = TestDb::create().await;
    // A slow hash (tens of milliseconds or more), so the login is still running when its
    // client gives up and when shutdown begins.
    // The hashing threads run at the lowest priority, so on a loaded machine a hash can take
    // many seconds: the drain is given all the time it needs.
    let slow = [
        ("AUTH_ARGON2_MEMORY_KIB", "32768"),
        ("AUTH_ARGON2_ITERATIONS", "3"),
        ("AUTH_SHUTDOWN_DRAIN_SECONDS", "600"),
    ];
    let (app, _config) = build(&url, &slow).await;
    let app_addr = app.local_addr();
    let addr = format!("http://{app_addr}");
    let pool = app.state().store.pool().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let started = std::time::Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{addr}/auth/signup"))
        .json(&json!({"email": "late@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A sign-up is about one hash: half of it is well inside the login's own.
    let half_a_hash = started.elapsed() / 2;
    // The client sends its login, waits a moment and hangs up without reading the answer.
    let body = json!({"email": "late@example.com", "password": PASSWORD}).to_string();
    let request = format!(
        "POST /auth/login HTTP/1.1\r\nHost: {app_addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut socket = std::net::TcpStream::connect(app_addr).unwrap();
    socket.write_all(request.as_bytes()).unwrap();
    tokio::time::sleep(half_a_hash).await;
    drop(socket);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    // The store is closed now; read what the login left with a connection of our own.
    drop(pool);
    let check = sqlx::AnyPool::connect(&url).await.unwrap();
    let count = |sql: &'static str| {
        let check = check.clone();
        async move {
            sqlx::query_scalar::<sqlx::Any, i64>(sql)
                .fetch_one(&check)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM sessions").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM refresh_tokens").await, 1);
    assert_eq!(
        count("SELECT COUNT(*) FROM audit_events WHERE kind = 'login.succeeded'").await,
        1
    );
    check.close().await;
}

/// PostgreSQL drops the service's connections (a restart, a failover, a proxy's idle timeout):
/// a pooled connection idle for half a second or more is pinged before it is used, so the next
/// requests run on fresh connections instead of failing. SQLite has no server to drop them,
/// so this runs against PostgreSQL only (CI runs the suite against both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_database_dropped_are_replaced_before_use() {
    let (_db, url) = TestDb::create().await;
    if !url.starts_with("postgres") {
        eprintln!(
            "connections_the_database_dropped_are_replaced_before_use: does not apply to SQLite \
             (runs when TEST_DATABASE_URL is PostgreSQL)"
        );
        return;
    }
    let name = format!("dropped_{}", uuid::Uuid::now_v7().simple());
    let (app, _config) = build(&format!("{url}&application_name={name}"), &[]).await;
    let addr = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let signup = |email: &str| {
        client
            .post(format!("{addr}/auth/signup"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
    };
    assert_eq!(signup("before@example.com").await.unwrap().status(), 201);

    let admin = sqlx::AnyPool::connect(&url).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&name)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(
        !killed.is_empty() && killed.iter().all(|k| *k),
        "{killed:?}"
    );
    admin.close().await;

    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(signup("after@example.com").await.unwrap().status(), 201);
    let r = client
        .post(format!("{addr}/auth/login"))
        .json(&json!({"email": "before@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
