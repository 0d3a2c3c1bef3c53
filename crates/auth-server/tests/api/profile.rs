//! A user's own profile: changing it, exporting everything held about it, erasing it.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, assert_problem, spawn_app};

#[tokio::test]
async fn a_user_changes_its_own_email_and_username_but_not_to_a_taken_one() {
    let app = spawn_app().await;
    app.signup("taken@example.com").await;
    let token = app.token_for("mine@example.com").await;
    let patch = |body: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            app.client
                .patch(app.url("/auth/me"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = patch(json!({"email": "New@Example.com", "username": "newname"})).await;
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["email"], "New@Example.com");
    assert_eq!(user["username"], "newname");
    assert_eq!(app.login("new@example.com", PASSWORD).await.status(), 200);
    assert_eq!(app.login("mine@example.com", PASSWORD).await.status(), 401);
    assert_problem(
        patch(json!({"email": "TAKEN@example.com"})).await,
        409,
        "email_taken",
    )
    .await;
    assert_problem(
        patch(json!({"email": "not an email"})).await,
        422,
        "validation_failed",
    )
    .await;
    // `null` removes the username.
    let r = patch(json!({"username": null})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["username"], Value::Null);
}

#[tokio::test]
async fn the_export_holds_profile_sessions_and_audit_but_never_a_hash() {
    let app = spawn_app().await;
    let token = app.token_for("export@example.com").await;
    let r = app.get_with_token("/auth/me/export", &token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let text = r.text().await.unwrap();
    assert!(
        !text.contains("$argon2") && !text.contains("password"),
        "{text}"
    );
    let export: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(export["user"]["email"], "export@example.com");
    assert_eq!(export["user"]["roles"], json!(["user"]));
    assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
    let kinds: Vec<&str> = export["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["user.signed_up", "login.succeeded"]);
}

#[tokio::test]
async fn erasing_oneself_needs_the_password_and_leaves_only_a_pseudonymous_trail() {
    let app = spawn_app().await;
    let user = app.signup("gone@example.com").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let pair = app.login_pair("gone@example.com").await;
    let delete = |password: &str| {
        let app = &app;
        let token = pair.access.clone();
        let body = json!({"password": password});
        async move {
            app.client
                .delete(app.url("/auth/me"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_problem(
        delete("not the password at all").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM users WHERE id = '{id}'"))
            .await,
        1
    );
    assert_eq!(delete(PASSWORD).await.status(), 204);
    for table in [
        "users WHERE id",
        "sessions WHERE user_id",
        "user_roles WHERE user_id",
        "audit_events WHERE user_id",
    ] {
        let n = app
            .count(&format!("SELECT count(*) FROM {table} = '{id}'"))
            .await;
        assert_eq!(n, 0, "{table}");
    }
    assert_eq!(app.count("SELECT count(*) FROM refresh_tokens").await, 0);
    // The trail is kept under a pseudonym, and nothing in it names the email.
    let kept = app
        .count("SELECT count(*) FROM audit_events WHERE user_id LIKE 'erased:%'")
        .await;
    assert!(kept >= 1);
    let named = app.count("SELECT count(*) FROM audit_events WHERE details LIKE '%gone@%' OR user_id LIKE '%gone@%'").await;
    assert_eq!(named, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'user.deleted'")
            .await,
        1
    );
    // Its tokens are dead at once, here and (through the tombstones) on every instance.
    assert_eq!(
        app.get_with_token("/auth/me", &pair.access).await.status(),
        401
    );
    assert_eq!(app.refresh(&pair.refresh).await.status(), 401);
    assert_eq!(app.count("SELECT count(*) FROM erased_sessions").await, 1);
    let (sibling, _) = app.sibling(&[]).await;
    let r = app
        .client
        .get(format!("{sibling}/auth/verify"))
        .bearer_auth(&pair.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(app.login("gone@example.com", PASSWORD).await.status(), 401);
    // The email is free again.
    app.signup("gone@example.com").await;
}
