use serde_json::json;

use crate::helpers::{PASSWORD, assert_problem, spawn_app};

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    for body in ["{\"email\": \"a@example.com\"", "not json", ""] {
        let r = app
            .client
            .post(app.url("/auth/signup"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(r, 400, "malformed_request").await;
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = spawn_app().await;
    for ct in [None, Some("text/plain"), Some("application/xml")] {
        let mut request = app.client.post(app.url("/auth/signup")).body("{}");
        if let Some(ct) = ct {
            request = request.header("content-type", ct);
        }
        assert_problem(request.send().await.unwrap(), 415, "unsupported_media_type").await;
    }
    let r = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn a_body_over_64_kib_is_a_413() {
    let app = spawn_app().await;
    let big =
        json!({"email": "a@example.com", "password": PASSWORD, "username": "x".repeat(70 * 1024)});
    assert_problem(
        app.post_json("/auth/signup", &big).await,
        413,
        "payload_too_large",
    )
    .await;
    let r = app
        .client
        .post(app.url("/auth/login"))
        .form(&[
            ("username", "x".repeat(70 * 1024).as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_problem(r, 413, "payload_too_large").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problem_bodies() {
    let app = spawn_app().await;
    assert_problem(app.get("/no/such/route").await, 404, "not_found").await;
    assert_problem(app.get("/auth/login").await, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn the_request_id_is_kept_when_sane_and_made_up_otherwise() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "gw-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "gw-123");
    let r = app
        .client
        .get(app.url("/no/route"))
        .header("x-request-id", "gw-456")
        .send()
        .await
        .unwrap();
    let body = assert_problem(r, 404, "not_found").await;
    assert_eq!(body["request_id"], "gw-456");
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "x".repeat(300))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "an overlong id is replaced: {id}"
    );
    let r = app.get("/health").await;
    assert!(uuid::Uuid::parse_str(r.headers()["x-request-id"].to_str().unwrap()).is_ok());
}
