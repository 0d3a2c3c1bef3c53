//! The mailer without a mail server: links, rendering, what the outbox hands it, and the
//! `log` and `file` transports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use auth_core::domain::{TenantId, UserId};
use serde_json::json;

use super::*;
use crate::config::RawConfig;

const AT: i64 = 1_800_000_000;

fn mailer(vars: &[(&str, &str)]) -> Mailer {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = RawConfig::load(None, &|n| map.get(n).cloned(), &[])
        .unwrap()
        .validate()
        .unwrap();
    Mailer::from_config(&config.mail, MailSeal::new(Some(&[7; 32]))).unwrap()
}

fn reset_mail(token: &str) -> OutgoingMail {
    OutgoingMail::new(
        MailTemplate::PasswordReset,
        &TenantId::default_tenant(),
        "ann@example.com",
        AT,
    )
    .user(UserId::generate())
    .token(token, AT + 30 * 60)
}

fn entry(id: &str, payload: serde_json::Value) -> OutboxEntry {
    OutboxEntry {
        id: id.into(),
        channel: MAIL_CHANNEL.into(),
        kind: "password_reset".into(),
        tenant: "default".into(),
        subject: None,
        payload,
        created_at: AT,
        attempts: 0,
    }
}

#[test]
fn links_are_built_from_the_public_url_with_the_token_encoded() {
    let m = mailer(&[("AUTH_PUBLIC_URL", "https://app.example/account/")]);
    let links = m.links();
    assert_eq!(
        links.link(MailTemplate::PasswordReset, Some("a+b/c=d_e-f.g~h")),
        "https://app.example/account/reset-password?token=a%2Bb%2Fc%3Dd_e-f.g~h"
    );
    assert_eq!(
        links.link(MailTemplate::VerifyEmail, Some("tok")),
        "https://app.example/account/verify-email?token=tok"
    );
    assert_eq!(
        links.link(MailTemplate::SignupAttempt, None),
        "https://app.example/account/reset-password"
    );
    // Without AUTH_PUBLIC_URL, the issuer.
    let m = mailer(&[("AUTH_ISSUER", "https://id.example")]);
    assert_eq!(
        m.links().link(MailTemplate::PasswordChanged, None),
        "https://id.example/reset-password"
    );
}

#[test]
fn a_rendered_mail_says_how_long_its_link_works() {
    let m = mailer(&[
        ("AUTH_PUBLIC_URL", "https://app.example"),
        ("AUTH_MAIL_PRODUCT_NAME", "Acme"),
    ]);
    let rendered = m.render(&reset_mail("tok"));
    assert_eq!(rendered.subject, "Reset your Acme password");
    assert!(
        rendered
            .text
            .contains("https://app.example/reset-password?token=tok")
    );
    assert!(
        rendered.text.contains("within 30 minutes"),
        "{}",
        rendered.text
    );
    assert!(rendered.text.contains("ann@example.com"));
    let changed = OutgoingMail::new(
        MailTemplate::PasswordChanged,
        &TenantId::default_tenant(),
        "ann@example.com",
        AT,
    );
    assert_eq!(m.values(&changed).expires_in_minutes, "");
}

#[tokio::test]
async fn entries_that_cannot_be_read_are_permanent_failures() {
    let m = mailer(&[]);
    let other_key = MailSeal::new(Some(&[9; 32]));
    let cases = [
        (
            "another master key",
            entry("row-1", reset_mail("t").payload("row-1", &other_key)),
        ),
        (
            "another row's payload",
            entry("row-2", reset_mail("t").payload("row-1", &m.0.seal)),
        ),
        ("not a mail", entry("row-3", json!({"template": "nope"}))),
        (
            "another channel",
            OutboxEntry {
                channel: "event".into(),
                ..entry("row-4", reset_mail("t").payload("row-4", &m.0.seal))
            },
        ),
    ];
    for (case, entry) in cases {
        match m.deliver(&entry).await {
            Err(DeliveryError::Permanent(_)) => {}
            other => panic!("{case}: {other:?}"),
        }
    }
    let ok = entry("row-5", reset_mail("t").payload("row-5", &m.0.seal));
    assert_eq!(m.deliver(&ok).await, Ok(()));
}

/// Log lines written while `f` runs, as text.
fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = buffer.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn the_log_transport_logs_the_link_a_developer_needs() {
    let m = mailer(&[("AUTH_PUBLIC_URL", "https://app.example")]);
    assert_eq!(m.transport_name(), "log");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let text = logged(|| {
        runtime
            .block_on(m.send("row-1", &reset_mail("dev-token")))
            .unwrap()
    });
    assert!(text.contains("INFO"), "{text}");
    assert!(text.contains("template=\"password_reset\""), "{text}");
    assert!(text.contains("to=ann@example.com"), "{text}");
    assert!(
        text.contains("link=https://app.example/reset-password?token=dev-token"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[tokio::test]
async fn the_file_transport_writes_one_eml_per_entry_atomically() {
    let dir = std::env::temp_dir().join(format!("auth-mail-{}", uuid::Uuid::now_v7()));
    let m = mailer(&[
        ("AUTH_MAIL_TRANSPORT", "file"),
        ("AUTH_MAIL_DIR", dir.to_str().unwrap()),
        ("AUTH_PUBLIC_URL", "https://app.example"),
    ]);
    assert!(dir.is_dir(), "created at start");
    let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    m.send(id, &reset_mail("file-token")).await.unwrap();
    m.send(id, &reset_mail("file-token")).await.unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        [format!("{id}.eml")],
        "a retry replaces its file; no temporary left"
    );
    let eml = std::fs::read_to_string(dir.join(format!("{id}.eml"))).unwrap();
    for header in [
        format!("Message-ID: <{id}@localhost>"),
        "From: auth-service <no-reply@localhost>".into(),
        "To: ann@example.com".into(),
        "Subject: Reset your auth-service password".into(),
        "Content-Type: multipart/alternative".into(),
        "Content-Type: text/plain; charset=utf-8".into(),
        "Content-Type: text/html; charset=utf-8".into(),
        "Date: ".into(),
    ] {
        assert!(eml.contains(&header), "{header:?} in {eml}");
    }
    assert_eq!(
        m.send("../escape", &reset_mail("t")).await,
        Err(DeliveryError::Permanent(
            "not a file name: \"../escape\"".into()
        ))
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_recipient_that_is_not_an_address_is_permanent() {
    let dir = std::env::temp_dir().join(format!("auth-mail-{}", uuid::Uuid::now_v7()));
    let m = mailer(&[
        ("AUTH_MAIL_TRANSPORT", "file"),
        ("AUTH_MAIL_DIR", dir.to_str().unwrap()),
    ]);
    let mut mail = reset_mail("t");
    mail.to = "bob@example.com\r\nBcc: eve@example.com".into();
    assert!(matches!(
        m.send("row-1", &mail).await,
        Err(DeliveryError::Permanent(_))
    ));
    std::fs::remove_dir_all(dir).ok();
}
