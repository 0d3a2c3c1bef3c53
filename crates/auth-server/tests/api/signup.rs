use serde_json::{Value, json};

use crate::helpers::{PASSWORD, assert_problem, spawn_app};

#[tokio::test]
async fn signup_creates_a_user_with_the_user_role_and_stores_only_a_hash() {
    let app = spawn_app().await;
    let r = app
        .post_json(
            "/auth/signup",
            &json!({"email": "Ada@Example.com", "password": PASSWORD, "username": "ada"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["email"], "Ada@Example.com");
    assert_eq!(body["username"], "ada");
    assert_eq!(body["roles"], json!(["user"]));
    assert_eq!(body["tenant"], "default");
    assert_eq!(body["email_verified"], false);
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    let id = body["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    let text = body.to_string();
    assert!(
        !text.contains("argon2") && !text.contains(PASSWORD),
        "no secret in {text}"
    );

    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM user_roles WHERE role_name = 'user'")
            .await,
        1
    );
    let normalized: String = sqlx::query_scalar("SELECT email_normalized FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(normalized, "ada@example.com");
}

#[tokio::test]
async fn register_is_an_alias_of_signup() {
    let app = spawn_app().await;
    let r = app
        .post_json(
            "/auth/register",
            &json!({"email": "b@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
}

#[tokio::test]
async fn an_email_taken_in_any_case_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    app.signup("carol@example.com").await;
    let r = app
        .post_json(
            "/auth/signup",
            &json!({"email": "CAROL@example.COM", "password": PASSWORD}),
        )
        .await;
    assert_problem(r, 409, "email_taken").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM user_roles").await, 1);
}

#[tokio::test]
async fn a_username_taken_in_any_case_is_refused() {
    let app = spawn_app().await;
    let first = json!({"email": "d1@example.com", "password": PASSWORD, "username": "Dave"});
    assert_eq!(app.post_json("/auth/signup", &first).await.status(), 201);
    let second = json!({"email": "d2@example.com", "password": PASSWORD, "username": "dave"});
    assert_problem(
        app.post_json("/auth/signup", &second).await,
        409,
        "username_taken",
    )
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
}

#[tokio::test]
async fn invalid_sign_ups_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "validation_failed",
            "email",
            "invalid email",
        ),
        (
            json!({"email": "e@example.com", "password": PASSWORD, "username": "a b"}),
            "validation_failed",
            "username",
            "bad username",
        ),
        (
            json!({"password": PASSWORD}),
            "validation_failed",
            "email",
            "missing email",
        ),
        (
            json!({"email": "e@example.com"}),
            "validation_failed",
            "password",
            "missing password",
        ),
        (
            json!({"email": 5, "password": PASSWORD}),
            "validation_failed",
            "email",
            "email of the wrong type",
        ),
        (
            json!({"email": "e@example.com", "password": ["x"]}),
            "validation_failed",
            "password",
            "password of the wrong type",
        ),
        (
            json!({"email": "e@example.com", "password": "short"}),
            "weak_password",
            "password",
            "under 8 characters",
        ),
        (
            json!({"email": "e@example.com", "password": "e@example.com"}),
            "weak_password",
            "password",
            "the email itself",
        ),
        (
            json!({"email": "e@example.com", "password": "frankly1", "username": "frankly1"}),
            "weak_password",
            "password",
            "the username itself",
        ),
        (
            json!({"email": "e@example.com", "password": "x".repeat(1025)}),
            "weak_password",
            "password",
            "over 1024 characters",
        ),
    ];
    for (body, code, field, why) in cases {
        let r = app.post_json("/auth/signup", &body).await;
        let problem = assert_problem(r, 422, code).await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{why}: no errors in {problem}"))
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&field),
            "{why}: expected field {field} in {problem}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

#[tokio::test]
async fn all_invalid_fields_are_reported_together() {
    let app = spawn_app().await;
    let r = app
        .post_json(
            "/auth/signup",
            &json!({"email": "nope", "password": PASSWORD, "username": "!"}),
        )
        .await;
    let problem = assert_problem(r, 422, "validation_failed").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");
}
