//! Email verification over HTTP: the link mailed on sign-up and on an email change, a new one
//! on request, the claim in new tokens; and `AUTH_REQUIRE_VERIFIED_EMAIL`: logins of unverified
//! addresses refused after the password, sign-ups with a taken address answered as new ones.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app, spawn_app_with};

const REQUIRED: (&str, &str) = ("AUTH_REQUIRE_VERIFIED_EMAIL", "true");

impl TestApp {
    async fn verify(&self, token: &str) -> Response {
        self.post_json("/auth/verify-email", &json!({"token": token}))
            .await
    }

    async fn ask_verification(&self, bearer: Option<&str>) -> Response {
        let request = self.client.post(self.url("/auth/verify-email/request"));
        let request = match bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request.send().await.unwrap()
    }

    async fn me(&self, token: &str) -> Value {
        let r = self.get_with_token("/auth/me", token).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_sign_up_mails_a_link_that_verifies_the_address_once() {
    let app = spawn_app().await;
    let access = app.token_for("Ann@example.com").await;
    assert_eq!(app.me(&access).await["email_verified"], false);
    assert_eq!(claims_of(&access)["email_verified"], false);
    let mails = app.mails("verify_email").await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, "Ann@example.com");
    let token = mails[0].token.clone().unwrap();
    assert!(mails[0].expires_at.is_some());

    assert_eq!(app.verify(&token).await.status(), 204);
    assert_eq!(app.me(&access).await["email_verified"], true);
    let fresh = app.login_pair("ann@example.com").await.access;
    assert_eq!(claims_of(&fresh)["email_verified"], true);
    assert_problem(app.verify(&token).await, 400, "token_invalid").await;
    let verified = "SELECT COUNT(*) FROM users WHERE email_verified_at IS NOT NULL";
    assert_eq!(app.count(verified).await, 1);
    let audited = "SELECT COUNT(*) FROM audit_events WHERE kind = 'user.email_verified'";
    assert_eq!(app.count(audited).await, 1);
    assert_eq!(
        app.events("auth.email_verified").await,
        [json!({"email": "Ann@example.com"})]
    );
}

#[tokio::test]
async fn a_link_to_an_address_the_account_no_longer_has_is_refused() {
    let app = spawn_app().await;
    let access = app.token_for("ann@example.com").await;
    let old = app.mailed_token("verify_email", "ann@example.com").await;
    let changed = app
        .client
        .patch(app.url("/auth/me"))
        .bearer_auth(&access)
        .json(&json!({"email": "ann@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let new = app.mailed_token("verify_email", "ann@example.org").await;
    assert_problem(app.verify(&old).await, 400, "token_invalid").await;
    assert_eq!(app.verify(&new).await.status(), 204);
    assert_eq!(app.me(&access).await["email_verified"], true);
    // Changing only the case keeps the address verified and mails nothing.
    let before = app.mails("verify_email").await.len();
    let recased = app
        .client
        .patch(app.url("/auth/me"))
        .bearer_auth(&access)
        .json(&json!({"email": "Ann@Example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        recased.json::<Value>().await.unwrap()["email_verified"],
        true
    );
    assert_eq!(app.mails("verify_email").await.len(), before);
}

#[tokio::test]
async fn a_new_link_needs_a_bearer_token_and_replaces_the_old_one() {
    let app = spawn_app().await;
    let access = app.token_for("ann@example.com").await;
    let first = app.mailed_token("verify_email", "ann@example.com").await;
    assert_problem(app.ask_verification(None).await, 401, "token_invalid").await;
    let asked = app.ask_verification(Some(&access)).await;
    assert_eq!(asked.status(), 202);
    assert_eq!(
        asked.json::<Value>().await.unwrap(),
        json!({"status": "accepted"})
    );
    let second = app.mailed_token("verify_email", "ann@example.com").await;
    assert_ne!(first, second);
    assert_problem(app.verify(&first).await, 400, "token_invalid").await;
    assert_eq!(app.verify(&second).await.status(), 204);
    // Verified: the same answer, nothing mailed.
    assert_eq!(app.ask_verification(Some(&access)).await.status(), 202);
    assert_eq!(app.mails("verify_email").await.len(), 2);
}

#[tokio::test]
async fn required_verification_refuses_a_login_after_the_password_until_verified() {
    let app = spawn_app_with(&[REQUIRED]).await;
    app.signup("ann@example.com").await;
    let wrong = app
        .login("ann@example.com", "not the password at all")
        .await;
    assert_problem(wrong, 401, "invalid_credentials").await;
    let right = app.login("ann@example.com", PASSWORD).await;
    assert_problem(right, 403, "email_not_verified").await;
    let compat = app
        .post_json(
            "/auth/token/",
            &json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(compat, 403, "email_not_verified").await;
    let reason = "SELECT COUNT(*) FROM audit_events WHERE kind = 'login.failed' \
                  AND details LIKE '%email_not_verified%'";
    assert_eq!(app.count(reason).await, 2);
    let token = app.mailed_token("verify_email", "ann@example.com").await;
    assert_eq!(app.verify(&token).await.status(), 204);
    let pair = app.login_pair("ann@example.com").await;
    assert_eq!(claims_of(&pair.access)["email_verified"], true);
}

#[tokio::test]
async fn required_verification_answers_a_taken_email_as_a_new_account_and_mails_the_owner() {
    let app = spawn_app_with(&[REQUIRED]).await;
    let owner = app.signup("ann@example.com").await;
    let body = json!({"email": "ANN@example.com", "password": "another long passphrase"});
    let again = app.post_json("/auth/signup", &body).await;
    assert_eq!(again.status(), 201);
    let again: Value = again.json().await.unwrap();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&again), keys(&owner));
    assert_ne!(again["id"], owner["id"]);
    assert_eq!(again["email"], "ANN@example.com");
    for same in [
        "roles",
        "permissions",
        "tenant",
        "email_verified",
        "disabled",
    ] {
        assert_eq!(again[same], owner[same], "{same}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users").await,
        1,
        "no second user"
    );
    let attempts = app.mails("signup_attempt").await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].to, "ann@example.com");
    assert_eq!(attempts[0].token, None);
    assert_eq!(app.mails("verify_email").await.len(), 1, "only the owner's");
    let audited = "SELECT COUNT(*) FROM audit_events WHERE kind = 'signup.failed'";
    assert_eq!(app.count(audited).await, 1);
    // The other password never logs in as the owner.
    let login = app
        .login("ann@example.com", "another long passphrase")
        .await;
    assert_problem(login, 401, "invalid_credentials").await;
    // A taken username is a public handle: still said.
    let named = json!({"email": "bob@example.com", "password": PASSWORD, "username": "ann_h"});
    let named_owner = json!({"email": "c@example.com", "password": PASSWORD, "username": "ann_h"});
    assert_eq!(
        app.post_json("/auth/signup", &named_owner).await.status(),
        201
    );
    let taken = app.post_json("/auth/signup", &named).await;
    assert_problem(taken, 409, "username_taken").await;
}

#[tokio::test]
async fn without_required_verification_a_taken_email_stays_a_conflict() {
    let app = spawn_app().await;
    app.signup("ann@example.com").await;
    let again = app
        .post_json(
            "/auth/signup",
            &json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(again, 409, "email_taken").await;
    assert!(app.mails("signup_attempt").await.is_empty());
}

#[tokio::test]
async fn an_administrator_changing_an_email_sends_the_new_address_a_link() {
    use auth_core::service::Registration;
    let app = spawn_app().await;
    let admin = Registration::parse("root@example.com", None, PASSWORD.into(), &["admin".into()]);
    app.state.accounts.register(admin.unwrap()).await.unwrap();
    let admin = app.login_pair("root@example.com").await.access;
    let ann = app.signup("ann@example.com").await;
    let old = app.mailed_token("verify_email", "ann@example.com").await;
    let path = format!("/auth/admin/users/{}", ann["id"].as_str().unwrap());
    let changed = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&admin)
        .json(&json!({"email": "ann@example.net"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(
        changed.json::<Value>().await.unwrap()["email_verified"],
        false
    );
    let new = app.mailed_token("verify_email", "ann@example.net").await;
    assert_problem(app.verify(&old).await, 400, "token_invalid").await;
    assert_eq!(app.verify(&new).await.status(), 204);
}
