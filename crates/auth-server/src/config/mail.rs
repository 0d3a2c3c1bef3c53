//! Mail: the transport (`smtp`, `file`, `log`, `off`), the sender, the public URL the links are built
//! on, and the templates (built in, overridable from a folder). docs/MAIL.md says more.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};

use super::definition::{DefaultTo, Definition, Problems, Secrecy, Setting};
use super::smtp::{self, Smtp};
use super::{RawConfig, Tokens};
use crate::mail::{Links, Templates};

static TRANSPORT: Setting<TransportKind> = Setting {
    key: "mail_transport",
    env: &["AUTH_MAIL_TRANSPORT"],
    default: DefaultTo::Value(|| TransportKind::Log),
    range: None,
    secrecy: Secrecy::Public,
    help: "`smtp`, `file` (one .eml per mail), `log` (development: the link is logged) or `off` (mail stays in the outbox)",
};

static SMTP_URL: Setting<SecretString> = Setting {
    key: "smtp_url",
    env: &["AUTH_SMTP_URL"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::UrlPassword,
    help: "`smtp://[user:pass@]host[:port][?tls=required|opportunistic|none]` or `smtps://...`",
};

static SMTP_CA_FILE: Setting<String> = Setting {
    key: "smtp_ca_file",
    env: &["AUTH_SMTP_CA_FILE"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::Public,
    help: "PEM CA certificates trusted for the SMTP server, besides the public roots",
};

static SMTP_TIMEOUT_SECONDS: Setting<u64> = Setting {
    key: "smtp_timeout_seconds",
    env: &["AUTH_SMTP_TIMEOUT_SECONDS"],
    default: DefaultTo::Value(|| 10),
    range: Some(1..=300),
    secrecy: Secrecy::Public,
    help: "bound of each SMTP connection and command",
};

static DIR: Setting<String> = Setting {
    key: "mail_dir",
    env: &["AUTH_MAIL_DIR"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::Public,
    help: "folder of the `file` transport (created at start)",
};

static FROM: Setting<String> = Setting {
    key: "mail_from",
    env: &["AUTH_MAIL_FROM"],
    default: DefaultTo::Value(|| "auth-service <no-reply@localhost>".to_owned()),
    range: None,
    secrecy: Secrecy::Public,
    help: "sender of the mails",
};

static PUBLIC_URL: Setting<String> = Setting {
    key: "public_url",
    env: &["AUTH_PUBLIC_URL"],
    default: DefaultTo::Derived("the issuer"),
    range: None,
    secrecy: Secrecy::Public,
    help: "absolute http(s) URL the service is reached at: the links in mails start with it, and it is the issuer unless `AUTH_ISSUER` is set",
};

static RESET_PATH: Setting<String> = Setting {
    key: "mail_reset_path",
    env: &["AUTH_MAIL_RESET_PATH"],
    default: DefaultTo::Value(|| "/reset-password".to_owned()),
    range: None,
    secrecy: Secrecy::Public,
    help: "path of the password-reset link",
};

static VERIFY_PATH: Setting<String> = Setting {
    key: "mail_verify_path",
    env: &["AUTH_MAIL_VERIFY_PATH"],
    default: DefaultTo::Value(|| "/verify-email".to_owned()),
    range: None,
    secrecy: Secrecy::Public,
    help: "path of the email-verification link",
};

static TEMPLATES_DIR: Setting<String> = Setting {
    key: "mail_templates_dir",
    env: &["AUTH_MAIL_TEMPLATES_DIR"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::Public,
    help: "folder of templates replacing the built-in ones, file by file",
};

static PRODUCT_NAME: Setting<String> = Setting {
    key: "mail_product_name",
    env: &["AUTH_MAIL_PRODUCT_NAME"],
    default: DefaultTo::Value(|| "auth-service".to_owned()),
    range: None,
    secrecy: Secrecy::Public,
    help: "the name mails sign with (`{{product}}`)",
};

pub(super) static SETTINGS: &[&dyn Definition] = &[
    &TRANSPORT,
    &SMTP_URL,
    &SMTP_CA_FILE,
    &SMTP_TIMEOUT_SECONDS,
    &DIR,
    &FROM,
    &PUBLIC_URL,
    &RESET_PATH,
    &VERIFY_PATH,
    &TEMPLATES_DIR,
    &PRODUCT_NAME,
];

/// The transports by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Smtp,
    File,
    Log,
    Off,
}

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum MailTransport {
    Smtp(Smtp),
    /// One `.eml` file per mail in this folder.
    File(PathBuf),
    /// One log line per mail, its link included (development only).
    Log,
    /// Nothing is sent: mail stays in the outbox (tests; a service set up without mail yet).
    Off,
}

#[derive(Debug, Clone)]
pub struct Mail {
    pub transport: MailTransport,
    pub from: Mailbox,
    pub links: Links,
    /// The name mails sign with.
    pub product: String,
    pub templates: Templates,
}

pub(super) fn load(raw: &RawConfig, p: &mut Problems, tokens: Option<&Tokens>) -> Option<Mail> {
    let transport = transport(raw, p);
    let from = FROM.value(raw, p).and_then(|text| {
        Mailbox::from_str(text.trim())
            .map_err(|e| p.add(&FROM, format!("not a mailbox ({e}): {text:?}")))
            .ok()
    });
    let links = links(raw, p, tokens);
    let product = PRODUCT_NAME.value(raw, p).and_then(|name| {
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            p.add(
                &PRODUCT_NAME,
                "must be 1 to 100 bytes without control characters",
            );
            return None;
        }
        Some(name)
    });
    let templates = TEMPLATES_DIR.optional(raw, p).and_then(|dir| {
        Templates::load(dir.as_deref().map(std::path::Path::new))
            .map_err(|problems| {
                for problem in problems {
                    p.add(&TEMPLATES_DIR, problem);
                }
            })
            .ok()
    });
    Some(Mail {
        transport: transport?,
        from: from?,
        links: links?,
        product: product?,
        templates: templates?,
    })
}

/// The transport and what it needs: a URL for `smtp`, a folder for `file`.
fn transport(raw: &RawConfig, p: &mut Problems) -> Option<MailTransport> {
    let kind = TRANSPORT.value(raw, p);
    let url = SMTP_URL.optional(raw, p);
    let ca_file = SMTP_CA_FILE.optional(raw, p);
    let timeout = SMTP_TIMEOUT_SECONDS.value(raw, p);
    let dir = DIR.optional(raw, p);
    match (kind?, url?, dir?) {
        (TransportKind::Smtp, None, _) => {
            p.add(&SMTP_URL, "required when AUTH_MAIL_TRANSPORT=smtp");
            None
        }
        (TransportKind::Smtp, Some(url), _) => {
            let parsed = smtp::parse_url(url.expose_secret())
                .map_err(|problems| problems.into_iter().for_each(|e| p.add(&SMTP_URL, e)));
            let ca = match ca_file? {
                Some(path) => Some(
                    crate::tls::certificates(&path)
                        .map_err(|e| p.add(&SMTP_CA_FILE, format!("{path}: {e}")))
                        .ok()?,
                ),
                None => None,
            };
            let mut smtp = parsed.ok()?;
            smtp.ca_certificates = ca.unwrap_or_default();
            smtp.timeout = Duration::from_secs(timeout?);
            Some(MailTransport::Smtp(smtp))
        }
        (TransportKind::File, _, None) => {
            p.add(&DIR, "required when AUTH_MAIL_TRANSPORT=file");
            None
        }
        (TransportKind::File, _, Some(dir)) if dir.trim().is_empty() => {
            p.add(&DIR, "must not be empty");
            None
        }
        (TransportKind::File, _, Some(dir)) => Some(MailTransport::File(PathBuf::from(dir))),
        (TransportKind::Log, _, _) => Some(MailTransport::Log),
        (TransportKind::Off, _, _) => Some(MailTransport::Off),
    }
}

/// The public URL (the issuer unless set) and the links' paths.
fn links(raw: &RawConfig, p: &mut Problems, tokens: Option<&Tokens>) -> Option<Links> {
    let set = PUBLIC_URL.optional(raw, p);
    let reset = RESET_PATH
        .value(raw, p)
        .filter(|path| path_ok(path, &RESET_PATH, p));
    let verify = VERIFY_PATH
        .value(raw, p)
        .filter(|path| path_ok(path, &VERIFY_PATH, p));
    let public = match set? {
        Some(url) => public_url(&url).map_err(|e| p.add(&PUBLIC_URL, e)).ok()?,
        None => {
            let issuer = &tokens?.access.issuer;
            public_url(issuer)
                .map_err(|e| {
                    p.add(
                        &PUBLIC_URL,
                        format!("unset, and the issuer cannot be used instead: {e}"),
                    )
                })
                .ok()?
        }
    };
    Some(Links {
        public_url: public,
        reset_path: reset?,
        verify_path: verify?,
    })
}

/// An absolute http(s) URL without query, fragment or credentials, its trailing `/` removed.
pub(super) fn public_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| format!("not a URL ({e}): {text:?}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must be an http:// or https:// URL, not {text:?}"));
    }
    if url.host().is_none() {
        return Err(format!("has no host: {text:?}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("must have no query or fragment: {text:?}"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must carry no user name or password".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A link's path: starts with `/`; no query, fragment, spaces or control characters.
fn path_ok(path: &str, setting: &dyn Definition, p: &mut Problems) -> bool {
    let ok = path.starts_with('/')
        && !path
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '?' || c == '#');
    if !ok {
        p.add(
            setting,
            format!("must be a path starting with / (no query, fragment or spaces), not {path:?}"),
        );
    }
    ok
}
