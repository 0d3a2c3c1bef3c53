//! The old services' contracts, replayed as their clients send them.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, assert_problem, spawn_app};

#[tokio::test]
async fn django_simplejwt_clients_work_unchanged() {
    let app = spawn_app().await;
    app.signup("dj@example.com").await;

    let r = app
        .post_json(
            "/auth/token/",
            &json!({"email": "dj@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let pair: Value = r.json().await.unwrap();
    let keys: Vec<&str> = pair
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, vec!["access", "refresh"]);

    // DRF accepts form posts too.
    let r = app
        .client
        .post(app.url("/auth/token/"))
        .form(&[("email", "dj@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = app
        .client
        .get(app.url("/auth/me/"))
        .bearer_auth(pair["access"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["email"], "dj@example.com");
    assert!(me["id"].is_string());

    let r = app
        .post_json("/auth/token/refresh/", &json!({"refresh": pair["refresh"]}))
        .await;
    assert_eq!(r.status(), 200);
    let next: Value = r.json().await.unwrap();
    assert_ne!(next["refresh"], pair["refresh"], "rotated");
    assert_eq!(
        app.client
            .get(app.url("/auth/me/"))
            .bearer_auth(next["access"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let r = app.get("/auth/health/").await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "auth-service-up"})
    );

    let wrong = app
        .post_json(
            "/auth/token/",
            &json!({"email": "dj@example.com", "password": "nope nope"}),
        )
        .await;
    let body = assert_problem(wrong, 401, "invalid_credentials").await;
    assert_eq!(
        body["detail"],
        "No active account found with the given credentials"
    );
    let bad = app
        .post_json("/auth/token/refresh/", &json!({"refresh": "not-a-token"}))
        .await;
    assert_problem(bad, 401, "token_invalid").await;
}

#[tokio::test]
async fn fastapi_token_factory_clients_work_unchanged() {
    let app = spawn_app().await;
    app.signup("ff@example.com").await;
    let r = app
        .post_json(
            "/auth/login",
            &json!({"email": "ff@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["access_token"].is_string());
    assert_eq!(body["token_type"], "bearer");
}

#[tokio::test]
async fn roadmap_service_clients_work_unchanged() {
    let app = spawn_app().await;
    app.signup("rm@example.com").await;
    let login: Value = app
        .post_json(
            "/auth/login",
            &json!({"email": "rm@example.com", "password": PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    let refreshed: Value = app
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": login["refresh_token"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(refreshed["access_token"].is_string() && refreshed["refresh_token"].is_string());
    assert_eq!(refreshed["token_type"], "bearer");

    let validated: Value = app
        .post_json(
            "/auth/validate",
            &json!({"token": refreshed["access_token"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(validated["role"], "user");
    assert!(validated["user_id"].is_string());

    let r = app
        .post_json(
            "/auth/logout",
            &json!({"refresh_token": refreshed["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let validated: Value = app
        .post_json(
            "/auth/validate",
            &json!({"token": refreshed["access_token"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(validated, json!({"active": false}));
}
