use auth_core::now_unix;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn me_returns_the_account_of_the_token() {
    let app = spawn_app().await;
    let token = app.token_for("me@example.com").await;
    let r = app.get_with_token("/auth/me", &token).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["email"], "me@example.com");
    assert_eq!(body["roles"], json!(["user"]));
    assert_eq!(body["tenant"], "default");
    assert!(body.get("password_hash").is_none());
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn bad_bearer_tokens_are_refused_with_401_and_a_challenge() {
    let app = spawn_app().await;
    let token = app.token_for("t@example.com").await;
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    let none_header = json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]});
    let alg_none = format!("{}.{}.", b64(&none_header), parts[1]);
    let hs_header = json!({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]});
    let hs256 = jsonwebtoken::encode(
        &serde_json::from_value(hs_header).unwrap(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"a secret the attacker picked, 32+ bytes"),
    )
    .unwrap();
    claims["roles"] = json!(["admin"]);
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    let expired = {
        let caller = app.state.checks.check(&token).unwrap();
        let mut user = app
            .state
            .accounts
            .current_user(&caller.identity)
            .await
            .unwrap();
        user.roles = vec![auth_core::domain::RoleName::user()];
        app.state
            .checks
            .tokens()
            .mint(&user, None, now_unix() - 3600)
            .unwrap()
            .token
    };
    let other_app = spawn_app().await;
    let foreign = other_app.token_for("t@example.com").await;

    let cases = [
        (None, "token_invalid", "no Authorization header"),
        (
            Some("Basic dTpw".to_owned()),
            "token_invalid",
            "another scheme",
        ),
        (Some("Bearer".to_owned()), "token_invalid", "empty bearer"),
        (
            Some("Bearer not-a-jwt".to_owned()),
            "token_invalid",
            "garbage",
        ),
        (
            Some(format!("Bearer {}.{}", parts[0], parts[1])),
            "token_invalid",
            "truncated",
        ),
        (
            Some(format!("Bearer {alg_none}")),
            "token_invalid",
            "alg none",
        ),
        (
            Some(format!("Bearer {hs256}")),
            "token_invalid",
            "HS256 instead of EdDSA",
        ),
        (
            Some(format!("Bearer {tampered}")),
            "token_invalid",
            "tampered payload",
        ),
        (
            Some(format!("Bearer {foreign}")),
            "token_invalid",
            "signed by another deployment",
        ),
        (
            Some(format!("Bearer {expired}")),
            "token_expired",
            "expired",
        ),
    ];
    for (authorization, code, why) in cases {
        let mut request = app.client.get(app.url("/auth/me"));
        if let Some(a) = &authorization {
            request = request.header("authorization", a);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401, "{why}");
        assert!(
            r.headers().contains_key("www-authenticate"),
            "{why}: challenge"
        );
        let body = assert_problem(r, 401, code).await;
        assert_eq!(body["code"], code, "{why}");
    }
}

#[tokio::test]
async fn hs256_mode_signs_with_the_shared_secret_and_publishes_no_keys() {
    let secret = "0123456789abcdef0123456789abcdef-shared";
    let app = spawn_app_with(&[("JWT_ALGORITHM", "HS256"), ("JWT_SECRET_KEY", secret)]).await;
    let token = app.token_for("hs@example.com").await;
    assert_eq!(app.get_with_token("/auth/me", &token).await.status(), 200);

    // A downstream service verifies with the secret alone.
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["platform"]);
    validation.set_issuer(&["https://auth.test"]);
    let data = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .unwrap();
    assert_eq!(data.claims["email"], "hs@example.com");
    assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));

    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks, json!({"keys": []}));
    assert_eq!(app.count("SELECT COUNT(*) FROM signing_keys").await, 0);

    let eddsa_app = spawn_app().await;
    let eddsa = eddsa_app.token_for("hs@example.com").await;
    assert_problem(
        app.get_with_token("/auth/me", &eddsa).await,
        401,
        "token_invalid",
    )
    .await;
}

#[tokio::test]
async fn a_disabled_account_cannot_use_its_tokens() {
    let app = spawn_app().await;
    let token = app.token_for("off@example.com").await;
    sqlx::query("UPDATE users SET disabled_at = 1")
        .execute(app.pool())
        .await
        .unwrap();
    assert_problem(
        app.get_with_token("/auth/me", &token).await,
        403,
        "account_disabled",
    )
    .await;
}
