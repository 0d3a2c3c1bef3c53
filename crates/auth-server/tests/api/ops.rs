use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

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
        "/auth/token/",
        "/auth/token/refresh/",
        "/auth/me/",
        "/auth/health/",
    ]
    .into();
    assert_eq!(paths, expected);
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["paths"]["/auth/login"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
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
