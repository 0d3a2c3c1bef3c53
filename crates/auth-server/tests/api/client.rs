//! auth-client against the real service: its tokens verify through the published JWKS and in
//! HS256 mode, a rotated key is picked up by the unknown-kid refetch, the example downstream
//! service admits and refuses as it should, and hostile tokens are refused, never a panic.

use auth_client::proto::{JwkSet, Problem, User};
use auth_client::{Audience, CacheSettings, Verifier, VerifierSettings, VerifyError};
use auth_core::domain::TenantId;
use auth_core::now_unix;
use auth_core::service::Registration;
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tower::ServiceExt;

use crate::helpers::{PASSWORD, TestApp, spawn_app_with};
use crate::helpers::{kid_of, rotate_key_now};

const SECRET: &str = "a shared secret of at least thirty-two bytes";

fn settings(app: &TestApp) -> VerifierSettings {
    VerifierSettings::new(
        app.config.tokens.access.issuer.clone(),
        match app.config.tokens.access.audience.clone() {
            Some(audience) => Audience::expect(audience),
            None => Audience::None,
        },
    )
}

/// A JWKS verifier of `app` that may refetch an unknown kid at once.
fn jwks_verifier(app: &TestApp) -> Verifier {
    let settings = VerifierSettings {
        cache: CacheSettings {
            refetch_interval: std::time::Duration::ZERO,
            ..CacheSettings::default()
        },
        ..settings(app)
    };
    Verifier::jwks(&app.url("/.well-known/jwks.json"), settings).unwrap()
}

async fn user_with_roles(app: &TestApp, email: &str, roles: &[&str]) -> auth_core::domain::User {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    let reg = Registration::parse(email, None, PASSWORD.into(), &roles)
        .unwrap()
        .in_tenant(TenantId::default_tenant());
    app.state.accounts.register(reg).await.unwrap()
}

#[tokio::test]
async fn service_tokens_verify_through_the_jwks_and_a_rotated_key_is_picked_up() {
    let app = spawn_app_with(&[("AUTH_KEY_PROPAGATION_SECONDS", "0")]).await;
    let signed_up: User = serde_json::from_value(app.signup("c@example.com").await).unwrap();
    let old = app.login_pair("c@example.com").await.access;
    let verifier = jwks_verifier(&app);

    let claims = verifier.verify(&old).await.unwrap();
    assert_eq!(claims.sub, signed_up.id);
    assert_eq!(claims.email, "c@example.com");
    assert_eq!(claims.aud.as_deref(), Some("platform"));
    assert!(claims.has_role("user") && !claims.has_role("admin"));
    assert_eq!(verifier.key_fetches(), 1);
    let jwks: JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks.keys[0].kid, kid_of(&old));

    let new_kid = rotate_key_now(&app.state).await;
    let new = app.login_pair("c@example.com").await.access;
    assert_eq!(kid_of(&new), new_kid);
    assert_eq!(verifier.verify(&new).await.unwrap().sub, signed_up.id);
    assert_eq!(verifier.key_fetches(), 2, "the unknown kid was fetched");
    assert!(
        verifier.verify(&old).await.is_ok(),
        "the old key is still published"
    );
    assert_eq!(verifier.key_fetches(), 2);
}

#[tokio::test]
async fn hs256_tokens_verify_with_the_shared_secret() {
    let app = spawn_app_with(&[("JWT_ALGORITHM", "HS256"), ("JWT_SECRET_KEY", SECRET)]).await;
    let token = app.token_for("hs@example.com").await;
    let verifier = Verifier::shared_secret(SECRET.as_bytes(), settings(&app)).unwrap();
    assert_eq!(
        verifier.verify(&token).await.unwrap().email,
        "hs@example.com"
    );

    let other = Verifier::shared_secret(&[7; 32], settings(&app)).unwrap();
    assert_eq!(other.verify(&token).await, Err(VerifyError::Signature));
    let jwks = jwks_verifier(&app);
    assert_eq!(jwks.verify(&token).await, Err(VerifyError::Algorithm));
}

/// The example downstream service, served in-process: the answer's status and body.
async fn call(router: &axum::Router, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = axum::http::Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 401 {
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn the_example_service_admits_by_token_and_role() {
    let app = spawn_app_with(&[]).await;
    let env = [
        ("AUTH_JWKS_URL", app.url("/.well-known/jwks.json")),
        ("AUTH_ISSUER", app.config.tokens.access.issuer.clone()),
        ("AUTH_AUDIENCE", "platform".to_owned()),
    ];
    let verifier = downstream_example::verifier_from_env(|name| {
        env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    assert!(downstream_example::verifier_from_env(|_| None).is_err());
    let router = downstream_example::router(verifier);
    let user = app.token_for("u@example.com").await;
    user_with_roles(&app, "boss@example.com", &["admin"]).await;
    let admin = app.login_pair("boss@example.com").await.access;

    let (status, body) = call(&router, "/hello", Some(&user)).await;
    assert_eq!(
        (status, body["hello"].as_str()),
        (200, Some("u@example.com"))
    );
    let (status, body) = call(&router, "/admin", Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    let refusals = [
        ("/hello", None, 401, "token_invalid", "no token"),
        ("/hello", Some("garbage"), 401, "token_invalid", "garbage"),
        ("/admin", None, 401, "token_invalid", "no token"),
        (
            "/admin",
            Some(user.as_str()),
            403,
            "forbidden",
            "not an admin",
        ),
    ];
    for (path, token, want, code, why) in refusals {
        let (status, body) = call(&router, path, token).await;
        assert_eq!(status, want, "{path}, {why}: {body}");
        let problem: Problem = serde_json::from_value(body).unwrap();
        assert_eq!(problem.code.as_str(), code, "{path}, {why}");
    }
}

#[tokio::test]
async fn hostile_tokens_are_refused_by_the_client_never_a_panic() {
    let app = spawn_app_with(&[]).await;
    let token = app.token_for("h@example.com").await;
    let user = app
        .state
        .accounts
        .register(
            Registration::parse("old@example.com", None, PASSWORD.into(), &[])
                .unwrap()
                .in_tenant(TenantId::default_tenant()),
        )
        .await
        .unwrap();
    let verifier = jwks_verifier(&app);
    let jwks: JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let public = URL_SAFE_NO_PAD.decode(&jwks.keys[0].x).unwrap();
    let (header, payload) = {
        let mut parts = token.split('.');
        (parts.next().unwrap(), parts.next().unwrap())
    };
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let b64 = |json: &str| URL_SAFE_NO_PAD.encode(json);
    let expired = app
        .state
        .checks
        .tokens()
        .mint(&user, None, now_unix() - 3600)
        .unwrap()
        .token;
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("at+jwt".into());
    hs.kid = Some(jwks.keys[0].kid.clone());
    let alg_swap = jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(&public)).unwrap();
    let mut tampered = claims.clone();
    tampered["roles"] = serde_json::json!(["admin"]);
    let signature = token.rsplit('.').next().unwrap();
    let cases = [
        ("garbage".to_owned(), VerifyError::Malformed, "garbage"),
        (
            format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"at+jwt"}"#)),
            VerifyError::Malformed,
            "alg none",
        ),
        (
            alg_swap,
            VerifyError::Algorithm,
            "HS256 keyed with the public key",
        ),
        (
            format!(
                "{}.{payload}.{signature}",
                b64(&format!(
                    r#"{{"alg":"EdDSA","x":"{}"}}"#,
                    "a".repeat(20_000)
                ))
            ),
            VerifyError::Malformed,
            "huge header",
        ),
        (
            format!("{header}.{}.{signature}", b64(&tampered.to_string())),
            VerifyError::Signature,
            "tampered claims",
        ),
        (expired, VerifyError::Expired, "expired"),
    ];
    for (token, want, why) in cases {
        assert_eq!(verifier.verify(&token).await, Err(want), "{why}");
    }
    for (issuer, audience, why) in [
        (
            "https://evil.test",
            Audience::expect("platform"),
            "wrong iss",
        ),
        (
            "https://auth.test",
            Audience::expect("billing"),
            "wrong aud",
        ),
        ("https://auth.test", Audience::None, "no aud expected"),
    ] {
        let other = Verifier::jwks(
            &app.url("/.well-known/jwks.json"),
            VerifierSettings::new(issuer, audience),
        )
        .unwrap();
        assert_eq!(
            other.verify(&token).await,
            Err(VerifyError::Claims),
            "{why}"
        );
    }
    assert!(verifier.verify(&token).await.is_ok(), "the real one passes");
}
