//! The old services' downstream code verifies our HS256 tokens unchanged: python-jose (the
//! FastAPI token factory), PyJWT (the Flask service) and SimpleJWT's
//! `JWTStatelessUserAuthentication` (the Django service), run by `tests/downstream_decode.py`.

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::python_with;
use crate::helpers::{PASSWORD, TestApp, spawn_app_with};

const SECRET: &str = "a shared secret of at least thirty-two bytes";
const LIBRARIES: [&str; 3] = ["python-jose", "pyjwt", "simplejwt"];

/// Each library's answer: the claims it decoded, or `{"refused": why}`.
fn decode(python: &str, secret: &str, token: &str, audience: Option<&str>) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/downstream_decode.py");
    let out = Command::new(python)
        .args([script, secret, token, audience.unwrap_or("-")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn accepted(answers: &Value, library: &str) -> bool {
    answers[library].get("refused").is_none()
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Access tokens of one user from the FastAPI-style `/auth/login` and the SimpleJWT-style
/// `/auth/token/`.
async fn tokens(app: &TestApp, email: &str) -> Vec<(&'static str, String)> {
    app.signup(email).await;
    let login = app.login_pair(email).await.access;
    let r = app
        .post_json(
            "/auth/token/",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let pair: Value = r.json().await.unwrap();
    let compat = pair["access"].as_str().unwrap().to_owned();
    vec![("/auth/login", login), ("/auth/token/", compat)]
}

/// One changed character in the signature.
fn tampered(token: &str) -> String {
    let mut t = token.to_owned();
    let last = t.pop();
    t.push(if last == Some('A') { 'Q' } else { 'A' });
    t
}

async fn validate(app: &TestApp, token: &str) -> bool {
    let r = app
        .post_json("/auth/validate", &json!({"token": token}))
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["active"] == true
}

/// The claims of `token` signed again with the secret, changed by `change` (a token we did
/// not issue, as someone holding the secret could make).
fn resigned(token: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut claims = claims_of(token);
    change(&mut claims);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test]
async fn without_an_audience_the_old_services_decode_our_tokens_as_they_do_today() {
    let Some(python) = python_with("jose, jwt, django, rest_framework_simplejwt") else {
        return;
    };
    let app = spawn_app_with(&[
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_SECRET_KEY", SECRET),
        ("AUTH_AUDIENCE", "none"),
    ])
    .await;
    for (endpoint, token) in tokens(&app, "down@example.com").await {
        let claims = claims_of(&token);
        assert!(claims.get("aud").is_none(), "{endpoint}: {claims}");
        assert_eq!(claims["token_type"], "access", "{endpoint}");
        assert_eq!(claims["user_id"], claims["sub"], "{endpoint}");

        let answers = decode(&python, SECRET, &token, None);
        for library in LIBRARIES {
            assert!(
                accepted(&answers, library),
                "{endpoint} {library}: {answers}"
            );
        }
        assert_eq!(answers["python-jose"]["sub"], claims["sub"]);
        assert_eq!(answers["pyjwt"]["email"], "down@example.com");
        assert_eq!(answers["simplejwt"]["user_id"], claims["sub"]);
        assert_eq!(answers["simplejwt"]["token_type"], "access");
        assert!(validate(&app, &token).await, "{endpoint}: our own check");

        // A wrong secret and a changed signature are refused by every library.
        let wrong = decode(
            &python,
            "another secret of thirty-two bytes or more",
            &token,
            None,
        );
        let forged = decode(&python, SECRET, &tampered(&token), None);
        for library in LIBRARIES {
            assert!(!accepted(&wrong, library), "{library} took a wrong secret");
            assert!(!accepted(&forged, library), "{library} took a forged token");
        }
    }

    // Our own checks require no `aud` now, and refuse one that carries an audience: this
    // deployment issues none, so the token was made for another.
    let token = app.login_pair("down@example.com").await.access;
    let aimed = resigned(&token, |c| c["aud"] = json!("platform"));
    assert!(!validate(&app, &aimed).await);
    let r = app.get_with_token("/auth/verify", &aimed).await;
    assert_eq!(r.status(), 401);
    let ours = resigned(&token, |c| c["jti"] = json!("another-jti"));
    assert!(validate(&app, &ours).await, "the same claims signed again");
    let refresh = resigned(&token, |c| c["token_type"] = json!("refresh"));
    assert!(!validate(&app, &refresh).await, "a SimpleJWT refresh token");
}

#[tokio::test]
async fn with_the_default_audience_the_old_services_pass_it_and_decode_our_tokens() {
    let Some(python) = python_with("jose, jwt, django, rest_framework_simplejwt") else {
        return;
    };
    let app = spawn_app_with(&[("JWT_ALGORITHM", "HS256"), ("JWT_SECRET_KEY", SECRET)]).await;
    for (endpoint, token) in tokens(&app, "aud@example.com").await {
        let claims = claims_of(&token);
        assert_eq!(claims["aud"], "platform", "{endpoint}");
        assert_eq!(claims["token_type"], "access", "{endpoint}");
        assert_eq!(claims["user_id"], claims["sub"], "{endpoint}");

        let answers = decode(&python, SECRET, &token, Some("platform"));
        for library in LIBRARIES {
            assert!(
                accepted(&answers, library),
                "{endpoint} {library}: {answers}"
            );
        }
        assert_eq!(answers["simplejwt"]["user_id"], claims["sub"]);

        // Unchanged code (no audience passed): the audience is why python-jose and PyJWT
        // refuse; SimpleJWT without AUDIENCE skips the check.
        let unchanged = decode(&python, SECRET, &token, None);
        for library in ["python-jose", "pyjwt"] {
            let why = unchanged[library]["refused"].as_str().unwrap_or_default();
            assert!(why.contains("Invalid audience"), "{library}: {unchanged}");
        }
        assert!(accepted(&unchanged, "simplejwt"), "{unchanged}");

        let other = decode(&python, SECRET, &token, Some("another-api"));
        let forged = decode(&python, SECRET, &tampered(&token), Some("platform"));
        for library in LIBRARIES {
            assert!(
                !accepted(&other, library),
                "{library} took another audience"
            );
            assert!(!accepted(&forged, library), "{library} took a forged token");
        }
    }

    // A token without `aud` is not ours while we issue one.
    let token = app.login_pair("aud@example.com").await.access;
    assert!(validate(&app, &token).await);
    let bare = resigned(&token, |c| {
        c.as_object_mut().unwrap().remove("aud");
    });
    assert!(!validate(&app, &bare).await);
    let wrong = resigned(&token, |c| c["aud"] = json!("another-api"));
    assert!(!validate(&app, &wrong).await);
}
