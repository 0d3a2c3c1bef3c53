//! Password reset over HTTP: the request answers alike for every address, the link (read from
//! the outbox, sealed or not) sets a password once and ends every session, and what is
//! refused: expired, superseded and used links, weak passwords, bodies that are not exactly one
//! email, too many requests.

use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app, spawn_app_with};

const NEW: &str = "a brand new long passphrase";

impl TestApp {
    async fn ask_reset(&self, email: &str) -> Response {
        self.post_json("/auth/password-reset/request", &json!({"email": email}))
            .await
    }

    async fn confirm_reset(&self, token: &str, password: &str) -> Response {
        self.post_json(
            "/auth/password-reset/confirm",
            &json!({"token": token, "new_password": password}),
        )
        .await
    }

    async fn exec(&self, sql: &str) {
        sqlx::query(sql).execute(self.pool()).await.unwrap();
    }
}

async fn accepted(r: Response) -> Value {
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_reset_request_answers_alike_for_known_unknown_and_disabled_addresses() {
    let app = spawn_app().await;
    app.signup("ann@example.com").await;
    app.signup("bob@example.com").await;
    app.exec("UPDATE users SET disabled_at = 1 WHERE email_normalized = 'bob@example.com'")
        .await;
    let known = accepted(app.ask_reset("Ann@Example.com").await).await;
    assert_eq!(known, json!({"status": "accepted"}));
    for other in ["nobody@example.com", "bob@example.com", "   "] {
        assert_eq!(accepted(app.ask_reset(other).await).await, known, "{other}");
    }
    let mails = app.mails("password_reset").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, "ann@example.com");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM action_tokens WHERE purpose = 'password_reset'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE kind = 'password.reset_requested'")
            .await,
        4,
        "every request is audited, mailed or not"
    );
    // Only the hash is stored.
    let token = mails[0].token.clone().unwrap();
    let stored = app
        .count(&format!(
            "SELECT COUNT(*) FROM action_tokens WHERE token_hash = '{token}'"
        ))
        .await;
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_reset_link_sets_the_password_once_and_ends_every_session() {
    let app = spawn_app().await;
    app.signup("ann@example.com").await;
    let (first, second) = (
        app.login_pair("ann@example.com").await,
        app.login_pair("ann@example.com").await,
    );
    accepted(app.ask_reset("ann@example.com").await).await;
    let token = app.mailed_token("password_reset", "ann@example.com").await;

    let weak = app.confirm_reset(&token, "short").await;
    let body = assert_problem(weak, 422, "weak_password").await;
    assert_eq!(body["errors"][0]["field"], "new_password");
    let unused =
        "SELECT COUNT(*) FROM action_tokens WHERE used_at IS NULL AND purpose = 'password_reset'";
    assert_eq!(
        app.count(unused).await,
        1,
        "a refused password keeps the link"
    );

    let done = app.confirm_reset(&token, NEW).await;
    assert_eq!(done.status(), 204);
    assert_eq!(app.count(unused).await, 0);
    let refused = app.refresh(&first.refresh).await;
    assert_eq!(refused.status(), 401, "old refresh tokens are refused");
    for pair in [&first, &second] {
        let r = app.get_with_token("/auth/verify", &pair.access).await;
        assert_eq!(r.status(), 401, "old access tokens are refused");
    }
    assert_eq!(app.login("ann@example.com", PASSWORD).await.status(), 401);
    assert_eq!(app.login("ann@example.com", NEW).await.status(), 200);
    let again = app
        .confirm_reset(&token, "yet another long passphrase")
        .await;
    assert_problem(again, 400, "token_invalid").await;

    let audited = "SELECT COUNT(*) FROM audit_events WHERE kind = 'password.reset'";
    assert_eq!(app.count(audited).await, 1);
    let changed = app.events("auth.password_changed").await;
    assert_eq!(changed, [json!({"method": "reset"})]);
    assert_eq!(app.events("auth.session_revoked").await.len(), 2);
    let notices = app.mails("password_changed").await;
    assert_eq!(notices.len(), 1);
    assert_eq!(
        (notices[0].to.as_str(), &notices[0].token),
        ("ann@example.com", &None)
    );
}

#[tokio::test]
async fn expired_superseded_and_unknown_links_are_refused_with_a_code() {
    let app = spawn_app().await;
    app.signup("ann@example.com").await;
    accepted(app.ask_reset("ann@example.com").await).await;
    let old = app.mailed_token("password_reset", "ann@example.com").await;
    accepted(app.ask_reset("ann@example.com").await).await;
    let new = app.mailed_token("password_reset", "ann@example.com").await;
    assert_ne!(old, new);
    assert_problem(app.confirm_reset(&old, NEW).await, 400, "token_invalid").await;
    app.exec("UPDATE action_tokens SET expires_at = 1").await;
    assert_problem(app.confirm_reset(&new, NEW).await, 400, "token_expired").await;
    for garbage in ["", "x", &"A".repeat(43), &"é".repeat(43)] {
        let r = app.confirm_reset(garbage, NEW).await;
        assert_problem(r, 400, "token_invalid").await;
    }
    assert_eq!(app.login("ann@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn racing_confirmations_of_one_link_set_the_password_once() {
    let app = spawn_app().await;
    app.signup("ann@example.com").await;
    accepted(app.ask_reset("ann@example.com").await).await;
    let token = app.mailed_token("password_reset", "ann@example.com").await;
    let passwords: Vec<String> = (0..4).map(|i| format!("{NEW} number {i}")).collect();
    let racers: Vec<_> = passwords
        .iter()
        .map(|password| {
            let request = app
                .client
                .post(app.url("/auth/password-reset/confirm"))
                .json(&json!({"token": token, "new_password": password}));
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        3,
        "{statuses:?}"
    );
    let won = statuses.iter().position(|s| *s == 204).unwrap();
    assert_eq!(
        app.login("ann@example.com", &passwords[won]).await.status(),
        200
    );
    assert_eq!(app.events("auth.password_changed").await.len(), 1);
}

#[tokio::test]
async fn the_email_must_be_exactly_one_string() {
    let app = spawn_app().await;
    app.signup("ann@example.com").await;
    let cases = [
        (
            r#"{"email":["ann@example.com","b@example.com"]}"#,
            "email",
            "an array",
        ),
        (r#"{"email":1}"#, "email", "a number"),
        (r#"{"email":null}"#, "email", "null"),
        (r#"{}"#, "email", "missing"),
        (
            r#"{"email":"x@example.com","email":"ann@example.com"}"#,
            "email",
            "a key given twice",
        ),
        (r#"{"email":""}"#, "email", "empty"),
        (
            r#"{"email":"ann@example.com","tenant":"Not A Tenant"}"#,
            "tenant",
            "a bad tenant",
        ),
    ];
    for (body, field, why) in cases {
        let r = app
            .client
            .post(app.url("/auth/password-reset/request"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(r, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{why}: {problem}");
    }
    assert!(
        app.mails("password_reset").await.is_empty(),
        "nothing mailed"
    );
}

#[tokio::test]
async fn under_a_master_key_the_mailed_token_is_sealed_in_the_outbox() {
    let key = "k".repeat(32);
    let app = spawn_app_with(&[("AUTH_MASTER_KEY", key.as_str())]).await;
    app.signup("ann@example.com").await;
    accepted(app.ask_reset("ann@example.com").await).await;
    let token = app.mailed_token("password_reset", "ann@example.com").await;
    let (payload,): (String,) = sqlx::query_as(
        "SELECT payload FROM outbox WHERE channel = 'mail' AND kind = 'password_reset'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(!payload.contains(&token), "{payload}");
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert!(payload["token"]["sealed"].is_string(), "{payload}");
    assert_eq!(app.confirm_reset(&token, NEW).await.status(), 204);
}

impl TestApp {
    /// Asks for a reset of `email` as if from `ip` behind the trusted proxy.
    async fn ask_reset_from(&self, ip: &str, email: &str) -> Response {
        self.client
            .post(self.url("/auth/password-reset/request"))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": email}))
            .send()
            .await
            .unwrap()
    }
}

const TRUSTED: (&str, &str) = ("AUTH_TRUSTED_PROXIES", "127.0.0.1");

#[tokio::test]
async fn reset_requests_are_limited_per_address_known_or_not_from_any_ip() {
    let app = spawn_app_with(&[TRUSTED, ("AUTH_RATE_RESET_ACCOUNT", "2/1h")]).await;
    app.signup("ann@example.com").await;
    for email in ["ann@example.com", "nobody@example.com"] {
        for ip in ["192.0.2.1", "192.0.2.2"] {
            accepted(app.ask_reset_from(ip, email).await).await;
        }
        let refused = app.ask_reset_from("192.0.2.3", &email.to_uppercase()).await;
        assert_eq!(
            refused.headers()["ratelimit-policy"],
            "\"reset-account\";q=2;w=3600"
        );
        assert!(refused.headers().contains_key("retry-after"));
        assert_problem(refused, 429, "rate_limited").await;
    }
    assert_eq!(
        app.mails("password_reset").await.len(),
        2,
        "refused requests mail nothing"
    );
    accepted(app.ask_reset_from("192.0.2.3", "bob@example.com").await).await;
}

#[tokio::test]
async fn reset_requests_and_verification_resends_share_a_limit_per_ip() {
    let app = spawn_app_with(&[TRUSTED, ("AUTH_RATE_RESET_IP", "2/1h")]).await;
    let token = app.token_for("ann@example.com").await;
    accepted(app.ask_reset_from("192.0.2.1", "a@example.com").await).await;
    let resend = app
        .client
        .post(app.url("/auth/verify-email/request"))
        .header("x-forwarded-for", "192.0.2.1")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    accepted(resend).await;
    let refused = app.ask_reset_from("192.0.2.1", "b@example.com").await;
    assert_eq!(
        refused.headers()["ratelimit-policy"],
        "\"reset-ip\";q=2;w=3600"
    );
    assert_problem(refused, 429, "rate_limited").await;
    accepted(app.ask_reset_from("192.0.2.2", "b@example.com").await).await;
}
