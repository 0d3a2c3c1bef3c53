//! JWKS mode against a key server in the test: keys are cached, an unknown `kid` is fetched
//! once per interval with concurrent misses sharing one fetch, and a failing server leaves the
//! last good keys in use.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_client::{Audience, CacheSettings, Verifier, VerifierSettings, VerifyError};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use common::*;
use serde_json::{Value, json};

/// What the key server answers.
struct Served {
    status: StatusCode,
    body: String,
    cache_control: &'static str,
}

type Server = Arc<Mutex<Served>>;

async fn jwks(State(served): State<Server>) -> (StatusCode, HeaderMap, String) {
    let served = served.lock().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, served.cache_control.parse().unwrap());
    (served.status, headers, served.body.clone())
}

/// A key server publishing `keys`, and its JWKS URL.
async fn key_server(keys: &[&EdKey]) -> (Server, String) {
    let served = Arc::new(Mutex::new(Served {
        status: StatusCode::OK,
        body: document(keys),
        cache_control: "public, max-age=300",
    }));
    let app = axum::Router::new()
        .route("/jwks", get(jwks))
        .with_state(served.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (served, url)
}

fn document(keys: &[&EdKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<Value>>()}).to_string()
}

fn verifier(url: &str, refetch_ms: u64) -> Verifier {
    let settings = VerifierSettings {
        cache: CacheSettings {
            refetch_interval: Duration::from_millis(refetch_ms),
            ..CacheSettings::default()
        },
        ..VerifierSettings::new(ISSUER, Audience::expect(AUDIENCE))
    };
    Verifier::jwks(url, settings).unwrap()
}

#[tokio::test]
async fn keys_are_fetched_once_and_then_served_from_the_cache() {
    let key = EdKey::new("k1", 1);
    let (_server, url) = key_server(&[&key]).await;
    let verifier = verifier(&url, 60_000);
    for _ in 0..5 {
        let claims = verifier.verify(&key.sign(&claims())).await.unwrap();
        assert_eq!(claims.email, "a@example.com");
    }
    assert_eq!(verifier.key_fetches(), 1);
}

#[tokio::test]
async fn concurrent_misses_share_one_fetch_and_unknown_kids_wait_for_the_interval() {
    let (old, new) = (EdKey::new("old", 1), EdKey::new("new", 2));
    // A new verifier (nothing cached) meets a burst of tokens signed by a new key.
    let (_server, url) = key_server(&[&old, &new]).await;
    let verifier = verifier(&url, 60_000);
    let token = new.sign(&claims());
    let checks = (0..16).map(|_| {
        let (verifier, token) = (verifier.clone(), token.clone());
        tokio::spawn(async move { verifier.verify(&token).await.map(|c| c.sub) })
    });
    for check in checks {
        assert!(check.await.unwrap().is_ok(), "the new kid is picked up");
    }
    assert_eq!(verifier.key_fetches(), 1, "16 misses, one fetch");

    let stranger = EdKey::new("stranger", 3);
    for _ in 0..3 {
        assert_eq!(
            verifier.verify(&stranger.sign(&claims())).await,
            Err(VerifyError::UnknownKey)
        );
    }
    assert_eq!(verifier.key_fetches(), 1, "no refetch within the interval");
}

#[tokio::test]
async fn an_unknown_kid_is_fetched_again_after_the_interval() {
    let (a, b) = (EdKey::new("a", 1), EdKey::new("b", 2));
    let (server, url) = key_server(&[&a]).await;
    let verifier = verifier(&url, 200);
    assert_eq!(verifier.refresh_keys().await, Ok(1));
    let token = b.sign(&claims());
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::UnknownKey));
    server.lock().unwrap().body = document(&[&a, &b]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(
        verifier.key_fetches(),
        2,
        "the miss within the interval fetched nothing"
    );
}

#[tokio::test]
async fn a_failing_key_server_leaves_the_last_good_keys_in_use() {
    let key = EdKey::new("k1", 1);
    let (server, url) = key_server(&[&key]).await;
    // max-age 0 (bounded below by the minimum TTL, 0 here): every check wants a refetch.
    let settings = VerifierSettings {
        cache: CacheSettings {
            min_ttl: Duration::ZERO,
            refetch_interval: Duration::ZERO,
            ..CacheSettings::default()
        },
        ..VerifierSettings::new(ISSUER, Audience::expect(AUDIENCE))
    };
    server.lock().unwrap().cache_control = "no-store";
    let verifier = Verifier::jwks(&url, settings).unwrap();
    let token = key.sign(&claims());
    assert!(verifier.verify(&token).await.is_ok());

    let failures = [
        (StatusCode::INTERNAL_SERVER_ERROR, "{}".to_owned(), "a 500"),
        (StatusCode::OK, "not json".to_owned(), "garbage"),
        (StatusCode::OK, "[".repeat(300 * 1024), "a huge document"),
    ];
    for (status, body, why) in failures {
        {
            let mut served = server.lock().unwrap();
            (served.status, served.body) = (status, body);
        }
        let before = verifier.key_fetches();
        assert!(
            verifier.verify(&token).await.is_ok(),
            "{why}: stale keys used"
        );
        assert_eq!(
            verifier.key_fetches(),
            before + 1,
            "{why}: a refetch was tried"
        );
    }
}

#[tokio::test]
async fn without_any_key_set_tokens_are_refused_as_keys_unavailable() {
    let verifier = verifier("http://127.0.0.1:9/jwks", 60_000);
    let token = EdKey::new("k1", 1).sign(&claims());
    for _ in 0..2 {
        let refused = verifier.verify(&token).await;
        assert!(
            matches!(refused, Err(VerifyError::KeysUnavailable(_))),
            "{refused:?}"
        );
    }
    assert_eq!(verifier.key_fetches(), 1, "one failed fetch per interval");
}

#[tokio::test]
async fn jwks_mode_refuses_alg_swaps_and_tokens_without_a_kid() {
    let key = EdKey::new("k1", 1);
    let (_server, url) = key_server(&[&key]).await;
    let verifier = verifier(&url, 60_000);
    // HS256 keyed with the public key's bytes: the classic algorithm confusion.
    let swapped = sign_hs(
        &header(jsonwebtoken::Algorithm::HS256, Some("k1")),
        &claims(),
        &key.public(),
    );
    assert_eq!(verifier.verify(&swapped).await, Err(VerifyError::Algorithm));
    let no_kid = raw(r#"{"alg":"EdDSA","typ":"at+jwt"}"#, &claims().to_string());
    assert_eq!(verifier.verify(&no_kid).await, Err(VerifyError::UnknownKey));
    let long_kid = raw(
        &format!(
            r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}"}}"#,
            "k".repeat(300)
        ),
        &claims().to_string(),
    );
    assert_eq!(
        verifier.verify(&long_kid).await,
        Err(VerifyError::UnknownKey)
    );
    let forged = raw(
        r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#,
        &claims().to_string(),
    );
    assert_eq!(verifier.verify(&forged).await, Err(VerifyError::Signature));
}
