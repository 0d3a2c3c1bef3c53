//! The account-recovery mails end to end: the service records them in its outbox, its mail
//! relay sends them to a real SMTP server (aiosmtpd, STARTTLS), and the links in the mails
//! that arrive verify an address and set a new password.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, assert_problem, eventually, spawn_app_with};
use crate::smtp::{ReceivedMail, SinkOptions, SmtpSink, pairs};

const NEW: &str = "a new passphrase from the mail";

/// The mails the sink got for `to` whose subject contains `subject`.
fn to_with(mails: &[ReceivedMail], to: &str, subject: &str) -> Vec<ReceivedMail> {
    mails
        .iter()
        .filter(|m| m.rcpt_tos.iter().any(|r| r == to))
        .filter(|m| m.subject.contains(subject))
        .cloned()
        .collect()
}

async fn start(sink: &SmtpSink, extra: &[(&str, &str)]) -> TestApp {
    let env = sink.env();
    let mut vars = pairs(&env);
    vars.extend([
        ("AUTH_PUBLIC_URL", "https://accounts.example"),
        ("AUTH_MAIL_FROM", "Accounts <accounts@example.com>"),
        ("AUTH_OUTBOX_POLL_MS", "100"),
    ]);
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

/// Waits for a mail to `to` whose subject contains `subject`.
async fn mail_to(sink: &SmtpSink, to: &str, subject: &str) -> ReceivedMail {
    let found = eventually(15, || async {
        !to_with(&sink.received(), to, subject).is_empty()
    })
    .await;
    assert!(
        found,
        "no '{subject}' mail to {to}; got {:?}\n{}",
        sink.received(),
        sink.log()
    );
    to_with(&sink.received(), to, subject).remove(0)
}

#[tokio::test]
async fn the_verification_link_mailed_at_signup_verifies_the_address() {
    let Some(sink) = SmtpSink::start(SinkOptions::starttls()) else {
        return;
    };
    let app = start(&sink, &[("AUTH_REQUIRE_VERIFIED_EMAIL", "true")]).await;
    app.signup("ann@example.com").await;
    assert_problem(
        app.login("ann@example.com", PASSWORD).await,
        403,
        "email_not_verified",
    )
    .await;

    let mail = mail_to(&sink, "ann@example.com", "Confirm your email").await;
    assert!(mail.tls, "sent over STARTTLS");
    let link = mail.link().expect("a link");
    assert!(
        link.starts_with("https://accounts.example/verify-email?token="),
        "{link}"
    );
    let token = mail.token().unwrap();
    assert!(
        mail.html
            .as_deref()
            .unwrap_or_default()
            .contains("verify-email?token=")
    );
    // Only the hash of the token is stored; the sent mail left the outbox.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM action_tokens WHERE token_hash = '{token}'"
        ))
        .await,
        0
    );
    assert!(
        eventually(10, || async {
            app.count("SELECT COUNT(*) FROM outbox WHERE channel = 'mail'")
                .await
                == 0
        })
        .await
    );

    let verified = app
        .post_json("/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(verified.status(), 204);
    let login = app.login("ann@example.com", PASSWORD).await;
    assert_eq!(login.status(), 200);
    let again = app
        .post_json("/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(again.status(), 400, "single use");

    // A sign-up with the taken address answers like a new one and mails the owner.
    let twice = app
        .post_json(
            "/auth/signup",
            &json!({"email": "ann@example.com", "password": NEW}),
        )
        .await;
    assert_eq!(twice.status(), 201);
    let warning = mail_to(&sink, "ann@example.com", "tried to sign up").await;
    assert_eq!(warning.token(), None);
}

#[tokio::test]
async fn the_reset_link_mailed_sets_a_new_password_and_a_notice_follows() {
    let Some(sink) = SmtpSink::start(SinkOptions::starttls()) else {
        return;
    };
    let app = start(&sink, &[]).await;
    app.signup("bob@example.com").await;
    let old = app.login_pair("bob@example.com").await;

    let asked = app
        .post_json(
            "/auth/password-reset/request",
            &json!({"email": "bob@example.com"}),
        )
        .await;
    assert_eq!(asked.status(), 202);
    let unknown = app
        .post_json(
            "/auth/password-reset/request",
            &json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(unknown.status(), 202);

    let mail = mail_to(&sink, "bob@example.com", "eset").await;
    let link = mail.link().expect("a link");
    assert!(
        link.starts_with("https://accounts.example/reset-password?token="),
        "{link}"
    );
    let token = mail.token().unwrap();
    let confirmed = app
        .post_json(
            "/auth/password-reset/confirm",
            &json!({"token": token, "new_password": NEW}),
        )
        .await;
    assert_eq!(confirmed.status(), 204);
    assert_eq!(app.login("bob@example.com", NEW).await.status(), 200);
    assert_eq!(
        app.refresh(&old.refresh).await.status(),
        401,
        "old sessions revoked"
    );

    // The notice of the change, with no link that carries a token.
    let notice = mail_to(&sink, "bob@example.com", "hanged").await;
    assert_eq!(notice.token(), None);
    // Nothing was ever sent to the unknown address.
    assert!(
        sink.received()
            .iter()
            .all(|m| m.rcpt_tos.iter().all(|r| r != "nobody@example.com"))
    );
}

#[tokio::test]
async fn mail_kept_in_the_outbox_is_purged_after_a_week() {
    // The transport is off (the tests' default): mail stays in the outbox.
    let app = crate::helpers::spawn_app().await;
    app.signup("old@example.com").await;
    app.signup("new@example.com").await;
    let mails = "SELECT COUNT(*) FROM outbox WHERE channel = 'mail'";
    assert_eq!(app.count(mails).await, 2);
    let eight_days_ago = auth_core::now_unix() - 8 * 86_400;
    sqlx::query(&format!(
        "UPDATE outbox SET created_at = {eight_days_ago} WHERE channel = 'mail' \
         AND payload LIKE '%old@example.com%'"
    ))
    .execute(app.pool())
    .await
    .unwrap();
    assert_eq!(app.state.events.purge_mail().await.unwrap(), 1);
    assert_eq!(app.count(mails).await, 1, "the recent mail is kept");
    assert_eq!(app.state.events.purge_mail().await.unwrap(), 0);
}
