//! Hostile access tokens against every endpoint that accepts one: all refused, none a 500.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use auth_core::keys::ed25519_pkcs8;
use auth_core::now_unix;
use auth_core::secret::b64url_decode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::helpers::{Pair, TestApp, assert_problem, spawn_app};

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Signs any header and claims with the given key.
fn forge(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
    format!("{input}.{sig}")
}

/// The service's own private key, read from its database (stored plain in tests).
async fn our_key(app: &TestApp) -> (String, EncodingKey) {
    let (kid, private): (String, String) =
        sqlx::query_as("SELECT kid, private_key FROM signing_keys WHERE state = 'active'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    let seed: [u8; 32] = b64url_decode(private.strip_prefix("plain:").unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    (kid, EncodingKey::from_ed_der(&ed25519_pkcs8(&seed)))
}

/// Asserts that `/auth/me`, `/auth/verify` and `/auth/validate` all refuse `token`.
async fn refused_everywhere(app: &TestApp, token: &str, code: &str, why: &str) {
    let me = app.get_with_token("/auth/me", token).await;
    assert_eq!(me.status(), 401, "/auth/me accepted {why}");
    let body = assert_problem(me, 401, code).await;
    assert_eq!(body["code"], code, "{why}");
    let verify = app.get_with_token("/auth/verify", token).await;
    assert_eq!(verify.status(), 401, "/auth/verify accepted {why}");
    let body = assert_problem(verify, 401, code).await;
    assert_eq!(body["code"], code, "/auth/verify: {why}");
    let validate = app
        .post_json("/auth/validate", &json!({"token": token}))
        .await;
    assert_eq!(validate.status(), 200, "{why}");
    assert_eq!(
        validate.json::<Value>().await.unwrap(),
        json!({"active": false}),
        "/auth/validate accepted {why}"
    );
}

#[tokio::test]
async fn hostile_tokens_are_refused_by_every_endpoint() {
    let app = spawn_app().await;
    app.signup("h@example.com").await;
    let pair: Pair = app.login_pair("h@example.com").await;
    let (kid, key) = our_key(&app).await;
    let parts: Vec<&str> = pair.access.split('.').collect();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
    let now = now_unix();
    let with = |changes: Value| {
        let mut c = claims.clone();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let ours = |h: &Value, c: &Value| forge(h, c, &key, Algorithm::EdDSA);

    // Sanity: the forging helper makes tokens the service accepts.
    assert_eq!(
        app.get_with_token("/auth/me", &ours(&header, &claims))
            .await
            .status(),
        200
    );

    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let public = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let confused = forge(
        &json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
        &claims,
        &EncodingKey::from_secret(&public),
        Algorithm::HS256,
    );
    let attacker = EncodingKey::from_ed_der(&ed25519_pkcs8(&[7u8; 32]));

    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
                parts[1]
            ),
            "token_invalid",
            "alg none",
        ),
        (
            confused,
            "token_invalid",
            "HS256 keyed with the public key (algorithm confusion)",
        ),
        (
            ours(&json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}), &claims),
            "token_invalid",
            "typ JWT",
        ),
        (
            ours(&json!({"alg": "EdDSA", "kid": kid}), &claims),
            "token_invalid",
            "no typ",
        ),
        (
            ours(&header, &with(json!({"exp": now - 120, "iat": now - 1000}))),
            "token_expired",
            "expired",
        ),
        (
            ours(&header, &with(json!({"nbf": now + 600}))),
            "token_invalid",
            "nbf in the future",
        ),
        (
            ours(&header, &with(json!({"iat": now + 600}))),
            "token_invalid",
            "iat in the future",
        ),
        (
            ours(&header, &with(json!({"iss": "https://evil.test"}))),
            "token_invalid",
            "wrong iss",
        ),
        (
            ours(&header, &with(json!({"aud": "other-api"}))),
            "token_invalid",
            "wrong aud",
        ),
        (
            ours(&header, &with(json!({"exp": "9999999999"}))),
            "token_invalid",
            "exp as a string",
        ),
        (
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&with(json!({"roles": ["admin"]}))),
                parts[2]
            ),
            "token_invalid",
            "tampered payload",
        ),
        (
            format!("{}.{}", parts[0], parts[1]),
            "token_invalid",
            "truncated",
        ),
        (
            format!("{}.{}!.{}", parts[0], parts[1], parts[2]),
            "token_invalid",
            "non-base64 segment",
        ),
        ("a.b.c".to_owned(), "token_invalid", "three junk segments"),
        (
            ours(
                &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "unknown"}),
                &claims,
            ),
            "token_invalid",
            "unknown kid",
        ),
        (
            ours(
                &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "../../../etc/passwd"}),
                &claims,
            ),
            "token_invalid",
            "kid with a path",
        ),
        (
            ours(
                &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "x' OR '1'='1"}),
                &claims,
            ),
            "token_invalid",
            "kid with SQL",
        ),
        (
            ours(&json!({"alg": "EdDSA", "typ": "at+jwt"}), &claims),
            "token_invalid",
            "no kid",
        ),
        (
            ours(
                &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "crit": ["exp"]}),
                &claims,
            ),
            "token_invalid",
            "crit header",
        ),
        (pair.refresh.clone(), "token_invalid", "a refresh token"),
    ];
    for (token, code, why) in &cases {
        refused_everywhere(&app, token, code, why).await;
    }

    // Keys named by the token are never fetched: count connections to where they point.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    for h in [
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "attacker", "jku": url}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "attacker", "x5u": url}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jku": url}),
    ] {
        let token = forge(&h, &claims, &attacker, Algorithm::EdDSA);
        refused_everywhere(
            &app,
            &token,
            "token_invalid",
            "jku/x5u to the attacker's keys",
        )
        .await;
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no key URL from a token was fetched"
    );

    // A token of a revoked session.
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&pair.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    refused_everywhere(&app, &pair.access, "token_revoked", "revoked session").await;
}
