//! The mailer against a real SMTP server (aiosmtpd, [`crate::smtp`]): plain, STARTTLS and
//! implicit TLS with a private CA, AUTH, refused recipients, a server that is down; the `.eml`
//! files of the file transport; templates from a folder; and outbox entries sealed by the
//! running service delivered with their links.

use auth_core::domain::{TenantId, UserId};
use auth_core::events::{MailSeal, MailTemplate, OutgoingMail};
use auth_core::outbox::{Deliver, DeliveryError, OutboxEntry};
use auth_server::config::RawConfig;
use auth_server::mail::Mailer;

use crate::helpers::{base_env, spawn_app_with};
use crate::smtp::{ReceivedMail, SinkOptions, SmtpSink, pairs, parse_eml};

const MASTER_KEY: &str = "0123456789abcdef0123456789abcdef";

/// A mailer of the test settings plus `vars`, as the service builds it at start.
fn mailer(vars: &[(&str, &str)]) -> Mailer {
    let mut env = base_env();
    env.insert("AUTH_PUBLIC_URL".into(), "https://app.example".into());
    for (k, v) in vars {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = RawConfig::load(None, &|n| env.get(n).cloned(), &[])
        .unwrap()
        .validate()
        .unwrap();
    Mailer::from_config(&config.mail, MailSeal::new(Some(MASTER_KEY.as_bytes()))).unwrap()
}

fn sink_mailer(sink: &SmtpSink, vars: &[(&str, &str)]) -> Mailer {
    let env = sink.env();
    let mut all = pairs(&env);
    all.extend_from_slice(vars);
    mailer(&all)
}

fn mail(template: MailTemplate, to: &str, token: Option<&str>) -> OutgoingMail {
    let now = auth_core::now_unix();
    let mail =
        OutgoingMail::new(template, &TenantId::default_tenant(), to, now).user(UserId::generate());
    match token {
        Some(token) => mail.token(token, now + 3600),
        None => mail,
    }
}

fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn send_reset(mailer: &Mailer, to: &str) -> Result<(), DeliveryError> {
    let reset = mail(MailTemplate::PasswordReset, to, Some("tok"));
    mailer.send(&id(), &reset).await
}

fn retried(result: Result<(), DeliveryError>) -> String {
    match result {
        Err(DeliveryError::Retry(e)) => e,
        other => panic!("a retry expected, got {other:?}"),
    }
}

/// The server is out of reach (or refuses our credentials): no attempt counts against the mail.
fn unavailable(result: Result<(), DeliveryError>) -> String {
    match result {
        Err(DeliveryError::Unavailable(e)) => e,
        other => panic!("the server out of reach expected, got {other:?}"),
    }
}

#[tokio::test]
async fn plain_smtp_delivers_a_text_and_html_mail_whose_link_carries_the_token() {
    let Some(sink) = SmtpSink::start(SinkOptions::plain()) else {
        return;
    };
    let mailer = sink_mailer(&sink, &[("AUTH_MAIL_FROM", "Acme <no-reply@acme.example>")]);
    let id = id();
    let reset = mail(
        MailTemplate::PasswordReset,
        "ann@example.com",
        Some("tok-+/="),
    );
    mailer.send(&id, &reset).await.unwrap();

    let got: ReceivedMail = sink.wait_for(1).await.remove(0);
    assert_eq!(got.mail_from, "no-reply@acme.example");
    assert_eq!(got.rcpt_tos, ["ann@example.com"]);
    assert!(!got.tls && !got.authenticated);
    assert_eq!(got.content_type, "multipart/alternative");
    assert_eq!(got.subject, "Reset your auth-service password");
    assert_eq!(got.from, "Acme <no-reply@acme.example>");
    assert_eq!(got.to, "ann@example.com");
    assert_eq!(got.message_id, format!("<{id}@acme.example>"));
    assert!(!got.date.is_empty());
    assert!(got.raw.contains("MIME-Version: 1.0"), "{}", got.raw);
    let link = "https://app.example/reset-password?token=tok-%2B%2F%3D";
    assert_eq!(got.link().as_deref(), Some(link));
    assert_eq!(got.token().as_deref(), Some("tok-+/="));
    let html = got.html.as_deref().unwrap();
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    assert!(got.text.unwrap().contains("within 60 minutes"));
}

#[tokio::test]
async fn starttls_to_a_server_with_a_private_ca_is_encrypted_and_required() {
    let Some(sink) = SmtpSink::start(SinkOptions::starttls()) else {
        return;
    };
    let verify = mail(MailTemplate::VerifyEmail, "ann@example.com", Some("v-tok"));
    sink_mailer(&sink, &[]).send(&id(), &verify).await.unwrap();
    let got = sink.wait_for(1).await.remove(0);
    assert!(got.tls, "STARTTLS was used");
    assert_eq!(
        got.link().as_deref(),
        Some("https://app.example/verify-email?token=v-tok")
    );

    // Without the CA, the self-signed chain is not trusted: retried, nothing sent.
    let untrusting = mailer(&[
        ("AUTH_MAIL_TRANSPORT", "smtp"),
        ("AUTH_SMTP_URL", &sink.url()),
    ]);
    let e = unavailable(send_reset(&untrusting, "ann@example.com").await);
    assert!(
        e.to_lowercase().contains("tls") || e.contains("certificate"),
        "{e}"
    );

    // A server that offers no STARTTLS gets no mail when TLS is required.
    let Some(plain) = SmtpSink::start(SinkOptions::plain()) else {
        return;
    };
    let url = plain.url().replace("tls=none", "tls=required");
    let requiring = mailer(&[("AUTH_MAIL_TRANSPORT", "smtp"), ("AUTH_SMTP_URL", &url)]);
    unavailable(send_reset(&requiring, "ann@example.com").await);
    assert_eq!(sink.received().len(), 1);
    assert!(plain.received().is_empty());
}

#[tokio::test]
async fn implicit_tls_delivers_over_smtps() {
    let Some(sink) = SmtpSink::start(SinkOptions::implicit_tls()) else {
        return;
    };
    assert!(sink.url().starts_with("smtps://"));
    send_reset(&sink_mailer(&sink, &[]), "ann@example.com")
        .await
        .unwrap();
    let got = sink.wait_for(1).await.remove(0);
    assert!(got.tls);
    assert_eq!(got.token().as_deref(), Some("tok"));
}

#[tokio::test]
async fn credentials_are_given_and_refused_ones_are_retried_without_being_shown() {
    let Some(sink) = SmtpSink::start(SinkOptions::starttls().auth("mailer", "s3cret-pw")) else {
        return;
    };
    send_reset(&sink_mailer(&sink, &[]), "ann@example.com")
        .await
        .unwrap();
    assert!(sink.wait_for(1).await[0].authenticated);

    // A wrong password is the configuration's fault, not the mail's: retried once fixed.
    let wrong = sink.url().replace("s3cret-pw", "wr0ng-pw");
    let ca = sink.ca_file.as_ref().unwrap().display().to_string();
    let vars = [
        ("AUTH_MAIL_TRANSPORT", "smtp"),
        ("AUTH_SMTP_URL", wrong.as_str()),
        ("AUTH_SMTP_CA_FILE", ca.as_str()),
    ];
    let e = unavailable(send_reset(&mailer(&vars), "ann@example.com").await);
    assert!(e.contains("535"), "{e}");
    assert!(!e.contains("wr0ng-pw") && !e.contains("s3cret-pw"), "{e}");

    // No credentials where the server requires them: 530, retried too.
    let none = sink.url().replace("mailer:s3cret-pw@", "");
    let vars = [
        ("AUTH_MAIL_TRANSPORT", "smtp"),
        ("AUTH_SMTP_URL", none.as_str()),
        ("AUTH_SMTP_CA_FILE", ca.as_str()),
    ];
    let e = unavailable(send_reset(&mailer(&vars), "ann@example.com").await);
    assert!(e.contains("530"), "{e}");
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn a_refused_recipient_is_permanent_and_a_deferred_one_is_retried() {
    let options = SinkOptions::plain()
        .reject("gone@example.com")
        .tempfail("busy@example.com");
    let Some(sink) = SmtpSink::start(options) else {
        return;
    };
    let mailer = sink_mailer(&sink, &[]);
    match send_reset(&mailer, "gone@example.com").await {
        Err(DeliveryError::Permanent(e)) => assert!(e.contains("550"), "{e}"),
        other => panic!("permanent expected, got {other:?}"),
    }
    let e = retried(send_reset(&mailer, "busy@example.com").await);
    assert!(e.contains("451"), "{e}");
    // The pooled connection still serves the next mail.
    send_reset(&mailer, "ann@example.com").await.unwrap();
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_tos, ["ann@example.com"]);
}

#[tokio::test]
async fn a_server_that_is_down_is_out_of_reach() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("smtp://127.0.0.1:{port}?tls=none");
    let mailer = mailer(&[("AUTH_MAIL_TRANSPORT", "smtp"), ("AUTH_SMTP_URL", &url)]);
    unavailable(send_reset(&mailer, "ann@example.com").await);
}

#[tokio::test]
async fn the_file_transport_writes_an_eml_that_mail_readers_parse() {
    let dir = std::env::temp_dir().join(format!("auth-mail-eml-{}", uuid::Uuid::now_v7()));
    let path = dir.display().to_string();
    let mailer = mailer(&[("AUTH_MAIL_TRANSPORT", "file"), ("AUTH_MAIL_DIR", &path)]);
    let id = id();
    let signup = mail(MailTemplate::SignupAttempt, "ann@example.com", None);
    mailer.send(&id, &signup).await.unwrap();
    let parsed = parse_eml(&dir.join(format!("{id}.eml")));
    std::fs::remove_dir_all(&dir).ok();
    let Some(parsed) = parsed else {
        return;
    };
    assert_eq!(parsed.content_type, "multipart/alternative");
    assert_eq!(
        parsed.subject,
        "Someone tried to sign up to auth-service with your address"
    );
    assert_eq!(parsed.to, "ann@example.com");
    assert_eq!(
        parsed.link().as_deref(),
        Some("https://app.example/reset-password")
    );
    assert!(parsed.html.unwrap().contains("ann@example.com"));
}

#[tokio::test]
async fn templates_from_a_folder_replace_the_built_in_ones_part_by_part() {
    let Some(sink) = SmtpSink::start(SinkOptions::plain()) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("auth-mail-tpl-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("password_reset.subject.txt"),
        "{{product}}: a new password\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("password_reset.html"),
        "<p>Hi {{email}}, <a href=\"{{link}}\">go</a></p>",
    )
    .unwrap();
    let path = dir.display().to_string();
    let mailer = sink_mailer(
        &sink,
        &[
            ("AUTH_MAIL_TEMPLATES_DIR", &path),
            ("AUTH_MAIL_PRODUCT_NAME", "Acme <Shop>"),
        ],
    );
    send_reset(&mailer, "a&b@example.com").await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let got = sink.wait_for(1).await.remove(0);
    assert_eq!(got.subject, "Acme <Shop>: a new password");
    assert_eq!(
        got.html.as_deref().map(str::trim_end),
        Some(
            "<p>Hi a&amp;b@example.com, <a href=\"https://app.example/reset-password?token=tok\">go</a></p>"
        )
    );
    // The text part is still the built-in one.
    assert!(
        got.text
            .unwrap()
            .contains("Someone asked to reset the password")
    );
}

#[tokio::test]
async fn the_service_mails_reset_and_verification_links_with_the_tokens_sealed_in_its_outbox() {
    let Some(sink) = SmtpSink::start(SinkOptions::starttls()) else {
        return;
    };
    let env = sink.env();
    let mut vars = pairs(&env);
    vars.extend([
        ("AUTH_MASTER_KEY", MASTER_KEY),
        ("AUTH_PUBLIC_URL", "https://accounts.example"),
    ]);
    let app = spawn_app_with(&vars).await;
    let seal = app.state.store.mail_seal();
    let sent = [
        (
            MailTemplate::PasswordReset,
            "reset-token-1",
            "/reset-password",
        ),
        (MailTemplate::VerifyEmail, "verify-token-2", "/verify-email"),
    ];
    for (template, token, _) in sent {
        let id = id();
        let payload = mail(template, "ann@example.com", Some(token)).payload(&id, seal);
        assert!(!payload.to_string().contains(token), "sealed in the outbox");
        let entry = OutboxEntry {
            id,
            channel: "mail".into(),
            kind: template.as_str().into(),
            tenant: "default".into(),
            subject: None,
            payload,
            created_at: auth_core::now_unix(),
            attempts: 0,
        };
        app.state.mailer.deliver(&entry).await.unwrap();
    }
    let got = sink.wait_for(2).await;
    for (mail, (_, token, path)) in got.iter().zip(sent) {
        assert!(mail.tls);
        assert_eq!(
            mail.link(),
            Some(format!("https://accounts.example{path}?token={token}"))
        );
        assert_eq!(mail.token().as_deref(), Some(token));
    }
}

#[tokio::test]
async fn the_binary_refuses_bad_mail_settings_at_start_without_showing_the_password() {
    let (_db, url) = crate::helpers::TestDb::create().await;
    let templates = std::env::temp_dir().join(format!("auth-mail-bad-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(templates.join("welcome.txt"), "hello").unwrap();
    std::fs::write(templates.join("verify_email.txt"), "{{token}}").unwrap();
    let out = crate::cli::command(&url)
        .env("AUTH_MAIL_TRANSPORT", "smtp")
        .env(
            "AUTH_SMTP_URL",
            "smtp://me:hunter2-pw@mail.example?tls=always",
        )
        .env("AUTH_MAIL_TEMPLATES_DIR", &templates)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&templates).ok();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("configuration error: "))
        .collect();
    assert_eq!(problems.len(), 3, "{err}");
    assert!(
        err.contains("smtp_url (AUTH_SMTP_URL): tls must be required"),
        "{err}"
    );
    assert!(err.contains("unknown file name \"welcome.txt\""), "{err}");
    assert!(err.contains("unknown placeholder {{token}}"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    // Without a URL, smtp is refused too.
    let out = crate::cli::command(&url)
        .env("AUTH_MAIL_TRANSPORT", "smtp")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AUTH_SMTP_URL): required"));
}
