//! Tests of hashing, verification and the hashing places.

use argon2::password_hash::PasswordHash;

use super::*;

fn fast() -> PasswordHasher {
    crate::testing::cheap_hasher(2)
}

#[tokio::test]
async fn a_hash_verifies_its_password_and_nothing_else() {
    let hasher = fast();
    let pw = Password::new("correct horse".into());
    let hash = hasher.hash(&pw).await.unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
    assert!(hasher.verify(Some(hash.clone()), &pw).await.unwrap());
    let wrong = Password::new("wrong horse".into());
    assert!(!hasher.verify(Some(hash), &wrong).await.unwrap());
}

#[tokio::test]
async fn hashes_from_the_reference_implementation_verify_and_ours_verify_there() {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
    let hasher = fast();
    let pw = Password::new("correct horse".into());
    // Other parameters and the argon2i variant, as other services may have stored them.
    let reference = Argon2::new(
        Algorithm::Argon2i,
        Version::V0x13,
        Params::new(128, 2, 1, None).unwrap(),
    );
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let theirs = reference
        .hash_password(b"correct horse", &salt)
        .unwrap()
        .to_string();
    assert!(hasher.verify(Some(theirs.clone()), &pw).await.unwrap());
    assert!(
        !hasher
            .verify(Some(theirs), &Password::new("wrong".into()))
            .await
            .unwrap()
    );
    let ours = hasher.hash(&pw).await.unwrap();
    let parsed = PasswordHash::new(&ours).unwrap();
    assert!(
        Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok()
    );
    assert!(
        hasher.inner.buffers.lock().unwrap().len() <= 2,
        "the pool is bounded"
    );
}

#[tokio::test]
async fn unknown_users_and_garbage_hashes_never_verify() {
    let hasher = fast();
    let pw = Password::new("anything at all".into());
    assert!(!hasher.verify(None, &pw).await.unwrap());
    assert!(!hasher.verify(Some("not a hash".into()), &pw).await.unwrap());
}

#[tokio::test]
async fn a_full_queue_is_shed_instead_of_waiting_forever() {
    let hasher = PasswordHasher::new(
        Argon2Settings::default(),
        HashingLimits {
            max_in_flight: 1,
            queue_timeout: Duration::from_millis(1),
        },
    )
    .unwrap();
    // One thread: one hash running and one prepared behind it are admitted, no more.
    let running = hasher.admit().await.unwrap();
    let prepared = hasher.admit().await.unwrap();
    let err = hasher.admit().await.err().unwrap();
    assert!(matches!(err, CoreError::Overloaded { .. }), "{err:?}");
    let err = hasher
        .hash(&Password::new("password123".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::Overloaded { .. }), "{err:?}");
    assert_eq!(hasher.in_flight(), 2);
    assert_eq!(
        (hasher.shed(), hasher.queued()),
        (2, 0),
        "counted, and out of the queue"
    );
    // A ticket dropped unused (a login whose user read failed) gives its place back.
    drop(prepared);
    let pw = Password::new("password123".into());
    let third = hasher.admit().await.unwrap();
    let (a, b) = tokio::join!(running.hash(&pw), third.verify(None, &pw));
    assert!(a.is_ok());
    assert!(!b.unwrap());
    assert_eq!(hasher.in_flight(), 0);
    assert!(hasher.hash(&pw).await.is_ok());
}
