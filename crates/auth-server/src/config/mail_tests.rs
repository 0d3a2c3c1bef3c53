//! The mail settings: defaults, what each transport requires, and one clear problem per bad
//! value (the SMTP password never in one).

use secrecy::ExposeSecret;

use super::tests::load;
use super::*;

/// A fresh folder of the test, removed at its end.
struct Folder(std::path::PathBuf);

impl Folder {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("auth-mail-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(name), text).unwrap();
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn by_default_mail_is_logged_with_links_on_the_issuer() {
    let mail = load(&[("AUTH_ISSUER", "https://id.example/")])
        .validate()
        .unwrap()
        .mail;
    assert!(matches!(mail.transport, MailTransport::Log));
    assert_eq!(mail.from.to_string(), "auth-service <no-reply@localhost>");
    assert_eq!(mail.links.public_url, "https://id.example");
    assert_eq!(mail.links.reset_path, "/reset-password");
    assert_eq!(mail.links.verify_path, "/verify-email");
    assert_eq!(mail.product, "auth-service");
    assert!(mail.templates.overridden().is_empty());

    let set = load(&[
        ("AUTH_PUBLIC_URL", "https://app.example/account/"),
        ("AUTH_MAIL_RESET_PATH", "/password/new"),
        ("AUTH_MAIL_FROM", "Example <noreply@example.com>"),
        ("AUTH_MAIL_PRODUCT_NAME", "Example"),
    ])
    .validate()
    .unwrap()
    .mail;
    assert_eq!(set.links.public_url, "https://app.example/account");
    assert_eq!(set.links.reset_path, "/password/new");
    assert_eq!(set.from.email.to_string(), "noreply@example.com");
    assert_eq!(set.product, "Example");
}

#[test]
fn smtp_settings_are_read_from_the_url() {
    let mail = load(&[
        ("AUTH_MAIL_TRANSPORT", "smtp"),
        (
            "AUTH_SMTP_URL",
            "smtps://me%40example.com:s3cret@mail.example",
        ),
        ("AUTH_SMTP_TIMEOUT_SECONDS", "3"),
    ])
    .validate()
    .unwrap()
    .mail;
    let MailTransport::Smtp(smtp) = mail.transport else {
        panic!("{:?}", mail.transport)
    };
    assert_eq!(
        (smtp.host.as_str(), smtp.port, smtp.security),
        ("mail.example", 465, SmtpSecurity::Implicit)
    );
    let (user, password) = smtp.credentials.unwrap();
    assert_eq!(
        (user.as_str(), password.expose_secret()),
        ("me@example.com", "s3cret")
    );
    assert_eq!(smtp.timeout.as_secs(), 3);
}

#[test]
fn the_file_transport_takes_its_folder() {
    let mail = load(&[
        ("AUTH_MAIL_TRANSPORT", "file"),
        ("AUTH_MAIL_DIR", "/tmp/mails"),
    ])
    .validate()
    .unwrap()
    .mail;
    assert!(matches!(mail.transport, MailTransport::File(dir) if dir.ends_with("mails")));
}

#[test]
fn every_mail_problem_is_one_line_naming_its_setting() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("AUTH_MAIL_TRANSPORT", "smtp")],
            "smtp_url (AUTH_SMTP_URL): required when AUTH_MAIL_TRANSPORT=smtp",
        ),
        (
            &[("AUTH_MAIL_TRANSPORT", "file")],
            "mail_dir (AUTH_MAIL_DIR): required when AUTH_MAIL_TRANSPORT=file",
        ),
        (
            &[("AUTH_MAIL_TRANSPORT", "sendmail")],
            "mail_transport (AUTH_MAIL_TRANSPORT): must be smtp or file or log",
        ),
        (
            &[
                ("AUTH_MAIL_TRANSPORT", "smtp"),
                (
                    "AUTH_SMTP_URL",
                    "smtp://u:topsecret@mail.example?tls=sometimes",
                ),
            ],
            "smtp_url (AUTH_SMTP_URL): tls must be required, opportunistic or none",
        ),
        (
            &[
                ("AUTH_MAIL_TRANSPORT", "smtp"),
                ("AUTH_SMTP_URL", "smtp://mail.example"),
                ("AUTH_SMTP_CA_FILE", "/nonexistent/ca.pem"),
            ],
            "smtp_ca_file (AUTH_SMTP_CA_FILE): /nonexistent/ca.pem: cannot read",
        ),
        (
            &[("AUTH_SMTP_TIMEOUT_SECONDS", "0")],
            "smtp_timeout_seconds (AUTH_SMTP_TIMEOUT_SECONDS): must be between 1 and 300",
        ),
        (
            &[("AUTH_MAIL_FROM", "not a mailbox")],
            "mail_from (AUTH_MAIL_FROM): not a mailbox",
        ),
        (
            &[("AUTH_PUBLIC_URL", "ftp://files.example")],
            "public_url (AUTH_PUBLIC_URL): must be an http:// or https:// URL",
        ),
        (
            &[("AUTH_PUBLIC_URL", "https://app.example/?next=1")],
            "public_url (AUTH_PUBLIC_URL): must have no query or fragment",
        ),
        (
            &[("AUTH_PUBLIC_URL", "/relative")],
            "public_url (AUTH_PUBLIC_URL): not a URL",
        ),
        (
            &[("AUTH_MAIL_RESET_PATH", "reset")],
            "mail_reset_path (AUTH_MAIL_RESET_PATH): must be a path starting with /",
        ),
        (
            &[("AUTH_MAIL_VERIFY_PATH", "/verify?x=1")],
            "mail_verify_path (AUTH_MAIL_VERIFY_PATH): must be a path starting with /",
        ),
        (
            &[("AUTH_MAIL_PRODUCT_NAME", "Evil\r\nBcc: x@example.com")],
            "mail_product_name (AUTH_MAIL_PRODUCT_NAME): must be 1 to 100 bytes",
        ),
        (
            &[("AUTH_MAIL_TEMPLATES_DIR", "/nonexistent/templates")],
            "mail_templates_dir (AUTH_MAIL_TEMPLATES_DIR): cannot read /nonexistent/templates",
        ),
    ];
    for (vars, expected) in cases {
        let problems = load(vars).validate().unwrap_err();
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{vars:?}: expected {expected:?} in {problems:?}"
        );
        assert_eq!(problems.len(), 1, "{vars:?}: {problems:?}");
        assert!(
            problems.iter().all(|p| !p.contains("topsecret")),
            "{problems:?}"
        );
    }
}

#[test]
fn the_smtp_password_is_redacted_in_config_check_and_debug() {
    let vars = [
        ("AUTH_MAIL_TRANSPORT", "smtp"),
        ("AUTH_SMTP_URL", "smtp://user:topsecret@mail.example:587"),
    ];
    let text = load(&vars).describe();
    assert!(!text.contains("topsecret"), "{text}");
    assert!(
        text.contains("smtp_url = \"smtp://user:[redacted]@mail.example:587\""),
        "{text}"
    );
    let config = load(&vars).validate().unwrap();
    assert!(!format!("{config:?}").contains("topsecret"));
}

#[test]
fn a_templates_folder_replaces_parts_and_refuses_what_it_does_not_know() {
    let dir = Folder::new();
    dir.write("password_reset.subject.txt", "Reset for {{ product }}\n");
    dir.write(".gitkeep", "");
    let mail = load(&[("AUTH_MAIL_TEMPLATES_DIR", dir.path())])
        .validate()
        .unwrap()
        .mail;
    assert_eq!(mail.templates.overridden(), ["password_reset.subject.txt"]);

    dir.write("password_rest.txt", "typo");
    dir.write("verify_email.html", "<a href=\"{{link}}\">{{name}}</a>");
    dir.write("signup_attempt.subject.txt", "two\nlines");
    dir.write("password_changed.txt", "{{link");
    let problems = load(&[("AUTH_MAIL_TEMPLATES_DIR", dir.path())])
        .validate()
        .unwrap_err();
    assert_eq!(problems.len(), 4, "{problems:?}");
    for expected in [
        "unknown file name \"password_rest.txt\"",
        "verify_email.html: uses the unknown placeholder {{name}}",
        "signup_attempt.subject.txt: must be one line",
        "password_changed.txt: has a `{{` without its `}}`",
    ] {
        assert!(
            problems.iter().any(|p| p
                .starts_with("mail_templates_dir (AUTH_MAIL_TEMPLATES_DIR): ")
                && p.contains(expected)),
            "{expected:?} in {problems:?}"
        );
    }
}
