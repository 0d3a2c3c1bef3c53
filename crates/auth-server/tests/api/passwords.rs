//! The password policy at sign-up, NFKC normalisation, `POST /auth/password/change` with the
//! history, and logins that upgrade legacy hashes (made by the Python libraries themselves).

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app, spawn_app_with};

/// Hashes made by Django, passlib (libpass) and argon2-cffi: see the script next to them.
pub const LEGACY_FIXTURES: &str =
    include_str!("../../../auth-core/tests/fixtures/legacy-hashes.json");

async fn stored_hash(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar::<sqlx::Any, String>(
        "SELECT password_hash FROM users WHERE email_normalized = $1",
    )
    .bind(email.to_lowercase())
    .fetch_one(app.pool())
    .await
    .unwrap()
}

async fn change(app: &TestApp, token: &str, current: &str, new: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/password/change"))
        .bearer_auth(token)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signup_refuses_weak_passwords_saying_why() {
    let app = spawn_app().await;
    let cases = [
        ("fourteen chars", "at least 15 characters", "too short"),
        ("ManchesterUnited", "common", "on Django's list, any case"),
        (
            "ann.smith-is-my-name",
            "email",
            "contains the email's local part",
        ),
        (
            "a long one for annsmith99",
            "username",
            "contains the username",
        ),
    ];
    for (password, expected, why) in cases {
        let r = app
            .post_json(
                "/auth/signup",
                &json!({"email": "ann.smith@example.com", "username": "annsmith99", "password": password}),
            )
            .await;
        let body = assert_problem(r, 422, "weak_password").await;
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(expected), "{why}: {body}");
        assert_eq!(body["errors"][0]["field"], "password", "{why}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
    // No composition rules: lower-case words are fine at 15 characters and more.
    let r = app
        .post_json(
            "/auth/signup",
            &json!({"email": "ann.smith@example.com", "password": "plain lower case words"}),
        )
        .await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn composed_and_decomposed_forms_of_one_password_log_in_alike() {
    let app = spawn_app().await;
    let nfc = "cr\u{e8}me br\u{fb}l\u{e9}e au caf\u{e9}";
    let nfd = "cre\u{300}me bru\u{302}le\u{301}e au cafe\u{301}";
    let r = app
        .post_json(
            "/auth/signup",
            &json!({"email": "u@example.com", "password": nfc}),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(app.login("u@example.com", nfd).await.status(), 200);
    assert_eq!(app.login("u@example.com", nfc).await.status(), 200);
    // Compatibility forms too: full-width letters are their ASCII letters.
    let r = app
        .post_json(
            "/auth/signup",
            &json!({"email": "w@example.com", "password": "ｆｕｌｌ ｗｉｄｔｈ ｐａｓｓｗｏｒｄ"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        app.login("w@example.com", "full width password")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_password_change_keeps_this_session_and_revokes_the_others() {
    let app = spawn_app().await;
    app.signup("c@example.com").await;
    let mine = app.login_pair("c@example.com").await;
    let other = app.login_pair("c@example.com").await;
    const NEW: &str = "a brand new passphrase";

    let r = change(&app, &mine.access, "not my password at all", NEW).await;
    assert_problem(r, 401, "invalid_credentials").await;
    let r = change(&app, &mine.access, PASSWORD, "too short").await;
    let body = assert_problem(r, 422, "weak_password").await;
    assert_eq!(body["errors"][0]["field"], "new_password", "{body}");
    let r = app
        .client
        .post(app.url("/auth/password/change"))
        .json(&json!({"current_password": PASSWORD, "new_password": NEW}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "token_invalid").await;
    let r = app
        .client
        .post(app.url("/auth/password/change"))
        .bearer_auth(&mine.access)
        .json(&json!({"current_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 422, "validation_failed").await;
    assert_eq!(
        app.login("c@example.com", PASSWORD).await.status(),
        200,
        "unchanged"
    );

    let r = change(&app, &mine.access, PASSWORD, NEW).await;
    assert_eq!(r.status(), 204);
    // This session goes on; the other one is revoked, its access token refused at once.
    assert_eq!(app.refresh(&mine.refresh).await.status(), 200);
    assert_eq!(
        app.get_with_token("/auth/me", &mine.access).await.status(),
        200
    );
    assert_problem(app.refresh(&other.refresh).await, 401, "token_revoked").await;
    assert_problem(
        app.get_with_token("/auth/me", &other.access).await,
        401,
        "token_revoked",
    )
    .await;
    // The old password is gone, the new one works.
    assert_problem(
        app.login("c@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(app.login("c@example.com", NEW).await.status(), 200);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE kind = 'password.changed'")
            .await,
        1
    );
    // `other` and the session of the "unchanged" login above.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_reason = 'password_changed'")
            .await,
        2
    );
}

#[tokio::test]
async fn the_history_refuses_the_last_passwords() {
    let app = spawn_app_with(&[("AUTH_PASSWORD_HISTORY", "3")]).await;
    app.signup("h@example.com").await;
    let token = app.login_pair("h@example.com").await.access;
    let passwords = [
        PASSWORD,
        "second passphrase ok",
        "third passphrase ok",
        "fourth passphrase ok",
    ];
    for pair in passwords.windows(2) {
        assert_eq!(change(&app, &token, pair[0], pair[1]).await.status(), 204);
    }
    // The current one and the two before it are refused; the fourth-last is allowed again.
    for old in &passwords[1..] {
        let r = change(&app, &token, passwords[3], old).await;
        let body = assert_problem(r, 422, "weak_password").await;
        assert!(
            body["detail"].as_str().unwrap().contains("last 3"),
            "{body}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM password_history").await, 2);
    assert_eq!(
        change(&app, &token, passwords[3], PASSWORD).await.status(),
        204
    );
}

#[tokio::test]
async fn a_login_upgrades_every_legacy_hash_in_the_same_transaction_as_its_session() {
    let app = spawn_app().await;
    let doc: Value = serde_json::from_str(LEGACY_FIXTURES).unwrap();
    for (i, f) in doc["fixtures"].as_array().unwrap().iter().enumerate() {
        let what = format!("{} ({})", f["format"], f["password_form"]);
        let email = format!("legacy{i}@example.com");
        app.signup(&email).await;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE email_normalized = $2")
            .bind(f["hash"].as_str().unwrap())
            .bind(&email)
            .execute(app.pool())
            .await
            .unwrap();
        let password = f["password"].as_str().unwrap();
        assert_problem(
            app.login(&email, "a wrong password here").await,
            401,
            "invalid_credentials",
        )
        .await;
        assert_eq!(
            stored_hash(&app, &email).await,
            f["hash"].as_str().unwrap(),
            "{what}"
        );
        assert_eq!(app.login(&email, password).await.status(), 200, "{what}");
        let upgraded = stored_hash(&app, &email).await;
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=256,t=1,p=1$"),
            "{what}: {upgraded}"
        );
        assert_eq!(
            app.login(&email, password).await.status(),
            200,
            "{what}: again"
        );
        assert_eq!(
            stored_hash(&app, &email).await,
            upgraded,
            "{what}: upgraded once"
        );
    }
    let n = doc["fixtures"].as_array().unwrap().len() as i64;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE kind = 'password.rehashed'")
            .await,
        n
    );
}

#[tokio::test]
async fn a_garbage_stored_hash_fails_to_verify_and_is_left_alone() {
    let app = spawn_app().await;
    app.signup("g@example.com").await;
    sqlx::query(
        "UPDATE users SET password_hash = 'md5$x$y' WHERE email_normalized = 'g@example.com'",
    )
    .execute(app.pool())
    .await
    .unwrap();
    assert_problem(
        app.login("g@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(stored_hash(&app, "g@example.com").await, "md5$x$y");
}
