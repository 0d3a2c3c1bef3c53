//! The mailer: renders the mails recorded in the outbox (links on the configured public URL,
//! never the request's host) and hands them to a transport (SMTP, `.eml` files, or the log).
//! It is the [`Deliver`] of the outbox's `mail` channel; the relay that calls it retries.

mod message;
mod templates;
mod transport;

use std::sync::Arc;

use auth_core::events::{MailSeal, MailTemplate, OutgoingMail};
use auth_core::outbox::{Deliver, DeliveryError, OutboxEntry};
use lettre::message::Mailbox;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub use templates::{PLACEHOLDERS, Part, Rendered, Templates, Values};
pub use transport::Transport;

use crate::config::Mail;

/// The outbox channel the mailer delivers.
pub const MAIL_CHANNEL: &str = "mail";

/// Where the links in mails point: `public_url` + path + `?token=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// Absolute http(s) URL without a trailing `/` (`AUTH_PUBLIC_URL`, else the issuer).
    pub public_url: String,
    /// Path of the password-reset page (`/reset-password`).
    pub reset_path: String,
    /// Path of the email-verification page (`/verify-email`).
    pub verify_path: String,
}

/// What a token may hold unencoded in a query value (RFC 3986 unreserved characters).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl Links {
    /// The link a mail carries: the verification page for `verify_email`, else the reset
    /// page; with `?token=` when the mail has a token (reset and verification do).
    pub fn link(&self, template: MailTemplate, token: Option<&str>) -> String {
        let path = match template {
            MailTemplate::VerifyEmail => &self.verify_path,
            MailTemplate::PasswordReset
            | MailTemplate::PasswordChanged
            | MailTemplate::SignupAttempt => &self.reset_path,
        };
        match token {
            Some(token) => format!(
                "{}{path}?token={}",
                self.public_url,
                utf8_percent_encode(token, QUERY_VALUE)
            ),
            None => format!("{}{path}", self.public_url),
        }
    }
}

/// Why the mailer cannot start.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("mail folder {path}: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("SMTP TLS set-up: {0}")]
    Tls(String),
    #[error("the SMTP transport needs a Tokio runtime (its connection pool runs on it)")]
    NoRuntime,
}

/// Renders and sends mails. Cheap to clone.
#[derive(Clone)]
pub struct Mailer(Arc<Inner>);

struct Inner {
    transport: Transport,
    from: Mailbox,
    links: Links,
    product: String,
    templates: Templates,
    seal: MailSeal,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.0.transport.name())
            .field("from", &self.0.from.to_string())
            .field("links", &self.0.links)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The mailer of a validated configuration; `seal` opens the tokens sealed in the outbox
    /// (the store's, [`auth_store::Store::mail_seal`]). Creates the `file` transport's folder.
    /// Call it within a Tokio runtime (the SMTP pool lives on it).
    pub fn from_config(config: &Mail, seal: MailSeal) -> Result<Self, MailerError> {
        let transport = Transport::from_config(&config.transport)?;
        Ok(Self(Arc::new(Inner {
            transport,
            from: config.from.clone(),
            links: config.links.clone(),
            product: config.product.clone(),
            templates: config.templates.clone(),
            seal,
        })))
    }

    /// `smtp`, `file` or `log`.
    /// Whether mail goes anywhere (`AUTH_MAIL_TRANSPORT` is not `off`): the mail relay runs.
    pub fn sends(&self) -> bool {
        !matches!(self.0.transport, Transport::Off)
    }

    pub fn transport_name(&self) -> &'static str {
        self.0.transport.name()
    }

    pub fn links(&self) -> &Links {
        &self.0.links
    }

    /// The values of a mail's placeholders.
    pub fn values(&self, mail: &OutgoingMail) -> Values {
        let minutes = mail
            .expires_at
            .map(|expires| (expires.saturating_sub(mail.at).max(0) + 59) / 60);
        Values {
            link: self.0.links.link(mail.template, mail.token.as_deref()),
            email: mail.to.clone(),
            product: self.0.product.clone(),
            expires_in_minutes: minutes.map(|m| m.to_string()).unwrap_or_default(),
        }
    }

    /// The subject and bodies of a mail.
    pub fn render(&self, mail: &OutgoingMail) -> Rendered {
        self.0.templates.render(mail.template, &self.values(mail))
    }

    /// Renders and sends a mail now; `id` (the outbox entry's) names its `Message-ID` and its
    /// `.eml` file, so a retried mail is the same message. Permanent errors are those no
    /// retry can mend (an address the server refuses); everything else is worth a retry.
    pub async fn send(&self, id: &str, mail: &OutgoingMail) -> Result<(), DeliveryError> {
        let values = self.values(mail);
        let rendered = self.0.templates.render(mail.template, &values);
        match &self.0.transport {
            Transport::Log => {
                transport::log(mail, &values.link);
                Ok(())
            }
            transport => {
                let message = message::build(id, &self.0.from, &mail.to, &rendered)?;
                transport.send(id, message).await
            }
        }
    }
}

impl Deliver for Mailer {
    /// Delivers an entry of the `mail` channel: its payload read back (the token opened with
    /// the seal), rendered and sent. A payload that cannot be read or opened is permanent.
    async fn deliver(&self, entry: &OutboxEntry) -> Result<(), DeliveryError> {
        if entry.channel != MAIL_CHANNEL {
            return Err(DeliveryError::Permanent(format!(
                "not a mail: channel {:?}",
                entry.channel
            )));
        }
        let Some(mail) = OutgoingMail::from_payload(&entry.id, &entry.payload, &self.0.seal) else {
            return Err(DeliveryError::Permanent(
                "unreadable mail payload, or its token sealed under another AUTH_MASTER_KEY".into(),
            ));
        };
        self.send(&entry.id, &mail).await
    }
}

#[cfg(test)]
mod tests;
