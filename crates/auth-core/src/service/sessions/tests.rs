//! Tests of login, rotation and revocation on the in-memory repository.

use std::time::Duration;

use super::*;
use crate::domain::User;
use crate::service::{Credentials, Registration};
use crate::session::SealedAccess;
use crate::testing::{MemoryRepo, cheap_hasher, hs256_tokens};

fn service(repo: &MemoryRepo, max_in_flight: usize, queue: Duration) -> SessionService<MemoryRepo> {
    let hasher = crate::password::PasswordHasher::new(
        crate::password::Argon2Settings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        crate::password::HashingLimits {
            max_in_flight,
            queue_timeout: queue,
        },
    )
    .unwrap();
    SessionService::new(
        repo.clone(),
        hasher,
        Arc::new(hs256_tokens()),
        SessionSettings::default(),
        Arc::new(RevocationList::starting_at(0)),
    )
}

fn credentials(email: &str) -> Credentials {
    Credentials::parse(
        Some(email),
        None,
        "correct horse battery".into(),
        None,
        ClientInfo::default(),
    )
    .unwrap()
}

async fn signed_up(repo: &MemoryRepo, email: &str) -> User {
    let accounts = crate::service::AccountService::new(
        repo.clone(),
        cheap_hasher(1),
        crate::password::PasswordPolicy::default(),
        Arc::new(RevocationList::starting_at(0)),
    );
    accounts
        .register(Registration::parse(email, None, "correct horse battery".into(), &[]).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_login_shed_for_want_of_a_hashing_place_never_reads_the_database() {
    let repo = MemoryRepo::default();
    let svc = service(&repo, 1, Duration::from_millis(20));
    // Every admitted place taken (one hash running, one prepared), as under a login flood.
    let places = [
        svc.hasher.admit().await.unwrap(),
        svc.hasher.admit().await.unwrap(),
    ];
    let err = svc
        .login(credentials("nobody@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::Overloaded { .. }), "{err:?}");
    assert_eq!(repo.credential_reads(), 0);
    assert!(repo.audit_kinds().is_empty());

    // Once a place is free, the same login reads its user, hashes and is refused as usual.
    drop(places);
    let err = svc
        .login(credentials("nobody@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::InvalidCredentials), "{err:?}");
    assert_eq!(repo.credential_reads(), 1);
    assert_eq!(repo.audit_kinds(), [AuditKind::LoginFailed]);
    assert_eq!(svc.hasher.in_flight(), 0, "the login gave its place back");
}

#[tokio::test]
async fn a_login_opens_a_session_with_its_audit_event_in_one_unit_of_work() {
    let repo = MemoryRepo::default();
    let user = signed_up(&repo, "ann@example.com").await;
    let svc = service(&repo, 1, Duration::from_secs(5));
    let issued = svc.login(credentials("ann@example.com")).await.unwrap();
    let sessions = svc.repo.active_sessions(user.id, now_unix()).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].id, issued.session_id);
    assert_eq!(
        repo.audit_kinds(),
        [AuditKind::SignedUp, AuditKind::LoginSucceeded]
    );
    let login = repo.audit_events().pop().unwrap();
    assert_eq!(
        (login.actor_id, login.user_id),
        (Some(user.id), Some(user.id))
    );
    assert_eq!(login.session_id, Some(issued.session_id));
}

#[tokio::test]
async fn a_failed_login_says_why_in_its_event_and_never_the_password() {
    let repo = MemoryRepo::default();
    let user = signed_up(&repo, "ann@example.com").await;
    let svc = service(&repo, 1, Duration::from_secs(5));
    let attempt = |email: &str, password: &str| {
        let client = ClientInfo::default();
        Credentials::parse(Some(email), None, password.into(), None, client).unwrap()
    };
    svc.login(attempt("nobody@example.com", "correct horse battery"))
        .await
        .unwrap_err();
    svc.login(attempt("ann@example.com", "wrong horse battery"))
        .await
        .unwrap_err();
    repo.set_disabled(user.id);
    let disabled = svc.login(credentials("ann@example.com")).await.unwrap_err();
    assert!(
        matches!(disabled, CoreError::AccountDisabled),
        "{disabled:?}"
    );
    let failed: Vec<_> = repo
        .audit_events()
        .into_iter()
        .filter(|e| e.kind == AuditKind::LoginFailed)
        .collect();
    let seen: Vec<_> = failed
        .iter()
        .map(|e| (e.user_id, e.actor_id, e.detail["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            (None, None, "unknown_account"),
            (Some(user.id), None, "wrong_password"),
            (Some(user.id), None, "account_disabled"),
        ]
    );
    for e in &failed {
        assert_eq!(e.outcome, crate::audit::Outcome::Failure);
        assert!(!e.detail.to_string().contains("horse"), "{}", e.detail);
    }
}

#[tokio::test]
async fn a_failed_write_records_nothing() {
    let repo = MemoryRepo::default();
    signed_up(&repo, "ann@example.com").await;
    let svc = service(&repo, 1, Duration::from_secs(5));
    repo.fail_next_write();
    let err = svc.login(credentials("ann@example.com")).await.unwrap_err();
    assert!(matches!(err, CoreError::Store(_)), "{err:?}");
    assert_eq!(
        repo.audit_kinds(),
        [AuditKind::SignedUp],
        "the login's audit went with the write"
    );
    assert_eq!(repo.session_count(), 0);
}

#[tokio::test]
async fn a_token_rotated_twice_after_the_grace_window_revokes_its_session() {
    let repo = MemoryRepo::default();
    signed_up(&repo, "ann@example.com").await;
    let mut svc = service(&repo, 1, Duration::from_secs(5));
    svc.settings.grace = Duration::ZERO;
    let first = svc.login(credentials("ann@example.com")).await.unwrap();
    let second = svc
        .refresh(first.refresh.as_str(), &ClientInfo::default())
        .await
        .unwrap();
    assert_eq!(second.session_id, first.session_id);
    let reused = svc
        .refresh(first.refresh.as_str(), &ClientInfo::default())
        .await
        .unwrap_err();
    assert!(
        matches!(reused, CoreError::RefreshTokenReused),
        "{reused:?}"
    );
    assert!(svc.revocations.is_revoked(&first.session_id));
    let after = svc
        .refresh(second.refresh.as_str(), &ClientInfo::default())
        .await
        .unwrap_err();
    assert!(
        matches!(after, CoreError::Token(TokenRejection::Revoked)),
        "{after:?}"
    );
    assert_eq!(
        repo.audit_kinds(),
        [
            AuditKind::SignedUp,
            AuditKind::LoginSucceeded,
            AuditKind::TokenRefreshed,
            AuditKind::RefreshTokenReused
        ]
    );
}

#[tokio::test]
async fn a_login_replaces_a_legacy_hash_with_its_session_or_not_at_all() {
    // passlib's bcrypt of "correct horse battery" (cost 4).
    const BCRYPT: &str = "$2b$04$VcQmkAHhCR0TZ9Idxm5l2e0dP3PnB8k/wsGPBcKEXP1.p30WOoG7C";
    let repo = MemoryRepo::default();
    let user = signed_up(&repo, "ann@example.com").await;
    repo.put_password_hash(user.id, BCRYPT);
    let svc = service(&repo, 1, Duration::from_secs(5));
    repo.fail_next_write();
    let err = svc.login(credentials("ann@example.com")).await.unwrap_err();
    assert!(matches!(err, CoreError::Store(_)), "{err:?}");
    assert_eq!(
        repo.password_hash(user.id).unwrap(),
        BCRYPT,
        "rolled back with the session"
    );
    assert_eq!(repo.session_count(), 0);

    svc.login(credentials("ann@example.com")).await.unwrap();
    let upgraded = repo.password_hash(user.id).unwrap();
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
        "{upgraded}"
    );
    assert_eq!(
        repo.audit_kinds(),
        [
            AuditKind::SignedUp,
            AuditKind::PasswordRehashed,
            AuditKind::LoginSucceeded
        ]
    );
    svc.login(credentials("ann@example.com")).await.unwrap();
    assert_eq!(repo.password_hash(user.id).unwrap(), upgraded, "once");
}

#[tokio::test]
async fn a_replay_within_the_grace_window_answers_the_first_answer_sealed_either_way() {
    let repo = MemoryRepo::default();
    signed_up(&repo, "gil@example.com").await;
    let svc = service(&repo, 1, Duration::from_secs(5));
    let client = ClientInfo::default();
    let first = svc.login(credentials("gil@example.com")).await.unwrap();
    let second = svc.refresh(first.refresh.as_str(), &client).await.unwrap();
    // Sealed unsigned and signed again on replay: the same token, byte for byte.
    let replayed = svc.refresh(first.refresh.as_str(), &client).await.unwrap();
    assert_eq!(replayed.refresh.as_str(), second.refresh.as_str());
    assert_eq!(replayed.access.token, second.access.token);
    assert_eq!(replayed.access.expires_at, second.access.expires_at);

    // A pair sealed whole, as before signing moved after the write, is answered as it was.
    let hash = first.refresh.hash();
    let sealed = repo
        .successor_sealed(&hash)
        .expect("a rotated row keeps its successor");
    let mut pair = first.refresh.open_successor(&sealed).expect("opens");
    assert!(matches!(pair.access, SealedAccess::Unsigned(_)), "{pair:?}");
    pair.access = SealedAccess::Signed(second.access.token.clone());
    repo.put_successor_sealed(&hash, first.refresh.seal_successor(&pair));
    let replayed = svc.refresh(first.refresh.as_str(), &client).await.unwrap();
    assert_eq!(replayed.refresh.as_str(), second.refresh.as_str());
    assert_eq!(replayed.access.token, second.access.token);
    assert_eq!(
        repo.audit_kinds()
            .iter()
            .filter(|k| **k == AuditKind::TokenRefreshed)
            .count(),
        1,
        "replays rotate nothing"
    );
}
