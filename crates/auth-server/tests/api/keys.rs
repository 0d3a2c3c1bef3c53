//! Signing-key rotation: publication before use, verification of old tokens until they
//! expire, removal afterwards, and pick-up by other instances.

use auth_core::now_unix;
use auth_core::signing::{Rotated, RotationCause};
use serde_json::Value;

use crate::helpers::{eventually, spawn_app, spawn_app_with};
use crate::helpers::{kid_of, rotate_key_now};

/// The published key ids, sorted.
async fn kids(app: &crate::helpers::TestApp) -> Vec<String> {
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn an_immediate_rotation_signs_with_the_new_key_and_keeps_old_tokens_valid() {
    let app = spawn_app_with(&[("AUTH_KEY_PROPAGATION_SECONDS", "0")]).await;
    let old_token = app.token_for("rot@example.com").await;
    let old_kid = kid_of(&old_token);

    let new_kid = rotate_key_now(&app.state).await;
    assert_ne!(new_kid, old_kid);
    assert_eq!(
        kids(&app).await,
        sorted(vec![old_kid.clone(), new_kid.clone()]),
        "JWKS lists both"
    );

    let new_token = app.login_pair("rot@example.com").await.access;
    assert_eq!(kid_of(&new_token), new_kid);
    assert_eq!(
        app.get_with_token("/auth/me", &old_token).await.status(),
        200,
        "old tokens verify"
    );
    assert_eq!(
        app.get_with_token("/auth/me", &new_token).await.status(),
        200
    );
    let states: Vec<String> =
        sqlx::query_scalar("SELECT state FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(states.iter().filter(|s| *s == "active").count(), 1);
    assert_eq!(states.iter().filter(|s| *s == "retired").count(), 1);

    // Once every token of the old key has expired, it leaves the JWKS and its tokens fail.
    let later = now_unix() + 15 * 60 + 31;
    app.state.keys().tick(later).await.unwrap();
    assert_eq!(kids(&app).await, vec![new_kid.clone()]);
    assert_eq!(
        app.get_with_token("/auth/me", &old_token).await.status(),
        401
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM signing_keys WHERE state = 'removed'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_new_key_is_published_before_it_signs() {
    let app = spawn_app().await;
    let old_kid = kid_of(&app.token_for("pub@example.com").await);
    let now = now_unix();
    let rotated = app
        .state
        .keys()
        .rotate(now, RotationCause::CommandLine)
        .await
        .unwrap();
    let Rotated::Scheduled {
        kid: new_kid,
        activates_at,
    } = rotated
    else {
        panic!("{rotated:?}")
    };
    assert_eq!(activates_at, now + 600);
    assert_eq!(
        kids(&app).await,
        sorted(vec![old_kid.clone(), new_kid.clone()]),
        "published at once"
    );
    assert_eq!(
        kid_of(&app.login_pair("pub@example.com").await.access),
        old_kid,
        "not signing yet"
    );

    // Rotating again while one is pending creates nothing new.
    let again = app
        .state
        .keys()
        .rotate(now, RotationCause::CommandLine)
        .await
        .unwrap();
    assert_eq!(
        again,
        Rotated::AlreadyScheduled {
            kid: new_kid.clone(),
            activates_at
        }
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM signing_keys").await, 2);

    app.state.keys().tick(now + 599).await.unwrap();
    assert_eq!(
        kid_of(&app.login_pair("pub@example.com").await.access),
        old_kid
    );
    app.state.keys().tick(now + 600).await.unwrap();
    assert_eq!(
        kid_of(&app.login_pair("pub@example.com").await.access),
        new_kid
    );
}

#[tokio::test]
async fn keys_rotate_automatically_when_due() {
    let app = spawn_app_with(&[
        ("AUTH_KEY_ROTATION_DAYS", "1"),
        ("AUTH_KEY_PROPAGATION_SECONDS", "60"),
    ])
    .await;
    let now = now_unix();
    app.state.keys().tick(now + 3600).await.unwrap();
    assert_eq!(kids(&app).await.len(), 1, "not due yet");
    app.state.keys().tick(now + 86_400).await.unwrap();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM signing_keys WHERE state = 'next'")
            .await,
        1
    );
    app.state.keys().tick(now + 86_400 + 60).await.unwrap();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM signing_keys WHERE state = 'active'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM signing_keys WHERE state = 'retired'")
            .await,
        1
    );
}

#[tokio::test]
async fn other_instances_pick_up_a_rotation_on_their_own() {
    let app = spawn_app_with(&[("AUTH_KEY_PROPAGATION_SECONDS", "0")]).await;
    let (other_addr, other) = app
        .sibling(&[
            ("AUTH_KEY_RELOAD_SECONDS", "1"),
            ("AUTH_KEY_PROPAGATION_SECONDS", "0"),
        ])
        .await;
    let new_kid = rotate_key_now(&app.state).await;
    let seen = eventually(5, || async {
        let jwks: Value = app
            .client
            .get(format!("{other_addr}/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == new_kid.as_str())
    })
    .await;
    assert!(seen, "the other instance publishes the new key");
    let token = app.token_for("sib@example.com").await;
    assert!(
        other.checks.check(&token).is_ok(),
        "and verifies its tokens"
    );
}

#[tokio::test]
async fn two_instances_promoting_at_once_leave_one_active_key() {
    let app = spawn_app().await;
    let (_, other) = app.sibling(&[]).await;
    let now = now_unix();
    app.state
        .keys()
        .rotate(now, RotationCause::CommandLine)
        .await
        .unwrap();
    let (mine, theirs) = (app.state.keys(), other.keys());
    let (a, b) = tokio::join!(mine.tick(now + 600), theirs.tick(now + 600));
    a.unwrap();
    b.unwrap();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM signing_keys WHERE state = 'active'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM signing_keys WHERE state = 'retired'")
            .await,
        1
    );
}

#[tokio::test]
async fn hs256_mode_has_no_keys_to_rotate() {
    let app = spawn_app_with(&[
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_SECRET_KEY", "0123456789abcdef0123456789abcdef"),
    ])
    .await;
    assert!(
        app.state
            .keys()
            .rotate(now_unix(), RotationCause::CommandLine)
            .await
            .is_err()
    );
    app.state.keys().tick(now_unix()).await.unwrap();
    assert_eq!(app.count("SELECT COUNT(*) FROM signing_keys").await, 0);
}
