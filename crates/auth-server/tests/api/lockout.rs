//! Lockout after failed logins: the threshold, the doubling and its cap, answers that do not
//! tell a locked account from a wrong password (nor from an unknown email) unless the
//! password was right, the reset on success, the admin's unlock, concurrent failures, and the
//! purge of counts of unknown names.

use auth_core::domain::TenantId;
use auth_core::now_unix;
use auth_core::service::Registration;
use serde_json::{Value, json};

use crate::helpers::*;

const WRONG: &str = "not the right password at all";

/// A service whose accounts lock after 3 failures, for 60 s doubling up to 200 s.
async fn app() -> TestApp {
    spawn_app_with(&[
        ("AUTH_LOCKOUT_THRESHOLD", "3"),
        ("AUTH_LOCKOUT_BASE_SECONDS", "60"),
        ("AUTH_LOCKOUT_MAX_SECONDS", "200"),
    ])
    .await
}

/// `(failed_logins, locked_until, lockouts)` of a user.
async fn state_of(app: &TestApp, email: &str) -> (i64, Option<i64>, i64) {
    sqlx::query_as::<sqlx::Any, (i64, Option<i64>, i64)>(&format!(
        "SELECT CAST(failed_logins AS BIGINT), locked_until, CAST(lockouts AS BIGINT) \
         FROM users WHERE email = '{email}'"
    ))
    .fetch_one(app.pool())
    .await
    .unwrap()
}

/// The answer to a login, without what differs between any two requests.
async fn answer(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    let r = app.login(email, password).await;
    let status = r.status().as_u16();
    let mut body: Value = r.json().await.unwrap();
    if let Some(o) = body.as_object_mut() {
        o.remove("request_id");
        o.remove("instance");
    }
    (status, body)
}

/// Fails `n` logins of `email`, each answered 401 `invalid_credentials`.
async fn fail(app: &TestApp, email: &str, n: usize) {
    for _ in 0..n {
        let r = app.login(email, WRONG).await;
        assert_problem(r, 401, "invalid_credentials").await;
    }
}

/// Ends the current lock of `email` (as time passing would).
async fn expire_lock(app: &TestApp, email: &str) {
    sqlx::query(&format!(
        "UPDATE users SET locked_until = {} WHERE email = '{email}'",
        now_unix() - 1
    ))
    .execute(app.pool())
    .await
    .unwrap();
}

/// Asserts `email` is locked for about `seconds` from now, after `lockouts` locks.
async fn assert_locked_for(app: &TestApp, email: &str, seconds: i64, lockouts: i64) {
    let (failed, until, locks) = state_of(app, email).await;
    let left = until.expect("locked") - now_unix();
    assert!(
        (seconds - 5..=seconds).contains(&left),
        "locked for {left}, not about {seconds}"
    );
    assert_eq!((failed, locks), (0, lockouts));
}

#[tokio::test]
async fn failed_logins_lock_for_doubling_times_up_to_the_cap() {
    let app = app().await;
    let email = "locked@example.com";
    app.signup(email).await;
    fail(&app, email, 2).await;
    assert_eq!(state_of(&app, email).await, (2, None, 0));
    fail(&app, email, 1).await;
    assert_locked_for(&app, email, 60, 1).await;

    // Locked: the right password is told so, with the time left; a wrong one is answered as
    // any wrong password (and not counted).
    let r = app.login(email, PASSWORD).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((55..=60).contains(&retry), "Retry-After {retry}");
    let body = assert_problem(r, 423, "account_locked").await;
    assert!(
        body["detail"].as_str().unwrap().contains("seconds"),
        "{body}"
    );
    fail(&app, email, 5).await;
    assert_locked_for(&app, email, 60, 1).await;

    // Each further lock doubles, up to the cap.
    expire_lock(&app, email).await;
    fail(&app, email, 3).await;
    assert_locked_for(&app, email, 120, 2).await;
    expire_lock(&app, email).await;
    fail(&app, email, 3).await;
    assert_locked_for(&app, email, 200, 3).await;
    expire_lock(&app, email).await;
    fail(&app, email, 3).await;
    assert_locked_for(&app, email, 200, 4).await;

    // A success once the lock is over clears the count, the lock and the doubling.
    expire_lock(&app, email).await;
    fail(&app, email, 2).await;
    app.login_pair(email).await;
    assert_eq!(state_of(&app, email).await, (0, None, 0));

    let locks = app
        .count("SELECT COUNT(*) FROM audit_events WHERE kind = 'user.locked'")
        .await;
    let refused = app
        .count("SELECT COUNT(*) FROM audit_events WHERE kind = 'login.locked'")
        .await;
    assert_eq!((locks, refused), (4, 1));
}

#[tokio::test]
async fn a_locked_account_an_unknown_email_and_a_wrong_password_answer_alike() {
    let app = app().await;
    let email = "known@example.com";
    let unknown = "nobody@example.com";
    app.signup(email).await;
    let wrong = answer(&app, email, WRONG).await;
    let nobody = answer(&app, unknown, WRONG).await;
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong, nobody);
    fail(&app, email, 2).await;
    assert!(state_of(&app, email).await.1.is_some(), "locked");
    assert_eq!(answer(&app, email, WRONG).await, wrong);

    // The unknown name went through the same steps: counted and locked under a hash.
    fail(&app, unknown, 2).await;
    let row = sqlx::query_as::<sqlx::Any, (String, i64, Option<i64>, i64)>(
        "SELECT name_key, failed_logins, locked_until, lockouts FROM login_failures",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(row.len(), 1, "{row:?}");
    let (key, failed, until, lockouts) = &row[0];
    assert!(!key.contains("nobody"), "{key}");
    assert_eq!((*failed, *lockouts), (0, 1));
    assert!(until.unwrap() > now_unix());
    // Failures while it is locked are not counted.
    fail(&app, unknown, 4).await;
    let failed: i64 = app.count("SELECT failed_logins FROM login_failures").await;
    assert_eq!(failed, 0);
    let reasons = app
        .count(
            "SELECT COUNT(*) FROM audit_events WHERE kind = 'login.failed' \
             AND user_id IS NULL",
        )
        .await;
    assert_eq!(reasons, 7, "every failure of the unknown name is audited");
}

#[tokio::test]
async fn an_admin_unlocks_a_locked_account() {
    let app = app().await;
    let reg = Registration::parse("root@example.com", None, PASSWORD.into(), &["admin".into()])
        .unwrap()
        .in_tenant(TenantId::default_tenant());
    app.state.accounts.register(reg).await.unwrap();
    let admin = app.login_pair("root@example.com").await.access;
    let email = "forgetful@example.com";
    let id = app.signup(email).await["id"].as_str().unwrap().to_owned();
    fail(&app, email, 3).await;
    let r = app.login(email, PASSWORD).await;
    assert_problem(r, 423, "account_locked").await;
    let r = app
        .client
        .post(app.url(&format!("/auth/admin/users/{id}/unlock")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    app.login_pair(email).await;
}

#[tokio::test]
async fn a_threshold_of_zero_never_locks() {
    let app = spawn_app_with(&[("AUTH_LOCKOUT_THRESHOLD", "0")]).await;
    let email = "never@example.com";
    app.signup(email).await;
    fail(&app, email, 12).await;
    fail(&app, "nobody@example.com", 12).await;
    assert_eq!(state_of(&app, email).await, (12, None, 0));
    app.login_pair(email).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM login_failures WHERE locked_until IS NOT NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn concurrent_failures_lock_once_and_lose_no_count() {
    let app = app().await;
    let email = "raced@example.com";
    app.signup(email).await;
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let request = app
                .client
                .post(app.url("/auth/login"))
                .json(&json!({"email": email, "password": WRONG}));
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    for attempt in attempts {
        assert_eq!(attempt.await.unwrap(), 401);
    }
    // Three failures locked it; the other five found it locked and were not counted.
    assert_locked_for(&app, email, 60, 1).await;
}

#[tokio::test]
async fn counts_of_unknown_names_are_forgotten_after_a_quiet_day() {
    let app = app().await;
    fail(&app, "old@example.com", 1).await;
    fail(&app, "recent@example.com", 1).await;
    sqlx::query(&format!(
        "UPDATE login_failures SET last_failed_at = {} \
         WHERE name_key = (SELECT MIN(name_key) FROM login_failures)",
        now_unix() - 2 * 86_400
    ))
    .execute(app.pool())
    .await
    .unwrap();
    let purged = app
        .state
        .sessions
        .purge_login_failures(now_unix())
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM login_failures").await, 1);
}
