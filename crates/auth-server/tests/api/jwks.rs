use std::process::Command;

use auth_server::startup::Application;
use serde_json::Value;

use crate::helpers::python_with;
use crate::helpers::spawn_app;

#[tokio::test]
async fn jwks_publishes_the_key_that_signs_tokens() {
    let app = spawn_app().await;
    let r = app.get("/.well-known/jwks.json").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let jwks: Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("sig"))
    );
    assert!(key.get("d").is_none(), "no private part");

    let token = app.token_for("k@example.com").await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM signing_keys WHERE state = 'active'")
            .await,
        1
    );
}

#[tokio::test]
async fn an_independent_library_verifies_tokens_against_the_jwks_document() {
    let Some(python) = python_with("jwt, cryptography") else {
        return;
    };
    let app = spawn_app().await;
    let token = app.token_for("py@example.com").await;
    let jwks = app
        .get("/.well-known/jwks.json")
        .await
        .text()
        .await
        .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_jwt.py");
    let run = |token: &str, audience: &str| {
        Command::new(&python)
            .args([script, &jwks, token, "https://auth.test", audience])
            .output()
            .unwrap()
    };
    let out = run(&token, "platform");
    assert!(
        out.status.success(),
        "PyJWT refused the token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["email"], "py@example.com");
    assert_eq!(claims["role"], "user");
    assert_eq!(claims["tenant"], "default");
    assert!(claims["jti"].is_string());

    // The same check fails for a wrong audience and for a tampered token.
    assert!(!run(&token, "another-api").status.success());
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(!run(&tampered, "platform").status.success());
}

#[tokio::test]
async fn signing_keys_are_sealed_under_the_master_key_and_survive_restarts() {
    let master = "m".repeat(40);
    let app = crate::helpers::spawn_app_with(&[("AUTH_MASTER_KEY", &master)]).await;
    let private: String = sqlx::query_scalar("SELECT private_key FROM signing_keys")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(private.starts_with("sealed:"), "{private}");
    let kid = app.state.checks.tokens().jwks().keys[0].kid.clone();

    // A second instance on the same database reuses the key instead of creating one.
    let again = Application::build(&app.config).await.unwrap();
    assert_eq!(again.state().checks.tokens().jwks().keys[0].kid, kid);
    assert_eq!(app.count("SELECT COUNT(*) FROM signing_keys").await, 1);

    // Without the right master key, start-up refuses instead of signing with a new key.
    let mut wrong = app.config.clone();
    wrong.keys.master_key = Some("w".repeat(40).into());
    let err = Application::build(&wrong)
        .await
        .err()
        .expect("wrong master key refused");
    assert!(err.to_string().contains("cannot be opened"), "{err}");
    wrong.keys.master_key = None;
    let err = Application::build(&wrong)
        .await
        .err()
        .expect("missing master key refused");
    assert!(err.to_string().contains("no AUTH_MASTER_KEY"), "{err}");
}

#[tokio::test]
async fn without_a_master_key_keys_are_stored_plain() {
    let app = spawn_app().await;
    let private: String = sqlx::query_scalar("SELECT private_key FROM signing_keys")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(private.starts_with("plain:"));
}
