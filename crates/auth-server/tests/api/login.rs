use serde_json::{Value, json};

use crate::helpers::{PASSWORD, assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn login_returns_a_bearer_access_token_that_is_not_cached() {
    let app = spawn_app().await;
    app.signup("ann@example.com").await;
    let r = app.login("ANN@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
}

#[tokio::test]
async fn login_accepts_a_username_and_the_oauth2_password_form() {
    let app = spawn_app().await;
    let signup = json!({"email": "bo@example.com", "password": PASSWORD, "username": "bo_b"});
    assert_eq!(app.post_json("/auth/signup", &signup).await.status(), 201);

    let by_name = app
        .post_json(
            "/auth/login",
            &json!({"username": "BO_B", "password": PASSWORD}),
        )
        .await;
    assert_eq!(by_name.status(), 200);

    for username in ["bo@example.com", "bo_b"] {
        let form = app
            .client
            .post(app.url("/auth/login"))
            .form(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 200, "form login as {username}");
        let body: Value = form.json().await.unwrap();
        assert!(body["access_token"].is_string());
    }

    let missing = app
        .client
        .post(app.url("/auth/login"))
        .form(&[("username", "bo_b")])
        .send()
        .await
        .unwrap();
    let problem = assert_problem(missing, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "password");
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.signup("cy@example.com").await;
    let wrong = app.login("cy@example.com", "not the password").await;
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let mut wrong = assert_problem(wrong, 401, "invalid_credentials").await;
    let mut unknown = assert_problem(
        app.login("nobody@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    let mut other_tenant = assert_problem(
        app.post_json(
            "/auth/login",
            &json!({"email": "cy@example.com", "password": PASSWORD, "tenant": "acme"}),
        )
        .await,
        401,
        "invalid_credentials",
    )
    .await;
    for body in [&mut wrong, &mut unknown, &mut other_tenant] {
        body.as_object_mut().unwrap().remove("request_id");
    }
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, other_tenant);
}

#[tokio::test]
async fn a_disabled_account_is_told_only_after_its_password_checks_out() {
    let app = spawn_app().await;
    app.signup("di@example.com").await;
    sqlx::query("UPDATE users SET disabled_at = 1")
        .execute(app.pool())
        .await
        .unwrap();
    assert_problem(
        app.login("di@example.com", "wrong password").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_problem(
        app.login("di@example.com", PASSWORD).await,
        403,
        "account_disabled",
    )
    .await;
}

#[tokio::test]
async fn login_without_a_name_is_a_validation_error() {
    let app = spawn_app().await;
    let r = app
        .post_json("/auth/login", &json!({"password": PASSWORD}))
        .await;
    assert_problem(r, 422, "validation_failed").await;
    let r = app
        .post_json(
            "/auth/login",
            &json!({"email": null, "username": null, "password": PASSWORD}),
        )
        .await;
    assert_problem(r, 422, "validation_failed").await;
}

#[tokio::test]
async fn logins_beyond_the_hashing_capacity_are_shed_with_503_and_retry_after() {
    let app = spawn_app_with(&[
        ("AUTH_HASH_MAX_IN_FLIGHT", "1"),
        ("AUTH_HASH_QUEUE_TIMEOUT_MS", "1"),
        ("AUTH_ARGON2_MEMORY_KIB", "19456"),
        ("AUTH_ARGON2_ITERATIONS", "2"),
    ])
    .await;
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let request = app
                .client
                .post(app.url("/auth/login"))
                .json(&json!({"email": format!("u{i}@example.com"), "password": PASSWORD}));
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let mut responses = Vec::new();
    for h in handles {
        responses.push(h.await.unwrap());
    }
    let mut shed = 0;
    for r in responses {
        match r.status().as_u16() {
            401 => {}
            503 => {
                assert_eq!(r.headers()["retry-after"], "1");
                assert_problem(r, 503, "unavailable").await;
                shed += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        shed >= 1,
        "with one slot and a 1 ms wait, concurrent logins must be shed"
    );
}
