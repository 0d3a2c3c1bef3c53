//! The transports: SMTP (lettre, pooled, STARTTLS / implicit TLS / plain, AUTH), a folder of
//! `.eml` files written atomically, and the log; and which SMTP failures are worth a retry.

use std::path::{Path, PathBuf};
use std::time::Duration;

use auth_core::events::OutgoingMail;
use auth_core::outbox::DeliveryError;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{self, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::MailerError;
use crate::config::{MailTransport, Smtp, SmtpSecurity};

/// Where the mailer sends.
pub enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// Bound of a whole send (each command has its own, shorter one).
        bound: Duration,
    },
    File(PathBuf),
    Log,
    Off,
}

impl Transport {
    pub(super) fn from_config(config: &MailTransport) -> Result<Self, MailerError> {
        Ok(match config {
            MailTransport::Smtp(_) if tokio::runtime::Handle::try_current().is_err() => {
                return Err(MailerError::NoRuntime);
            }
            MailTransport::Smtp(smtp) => Self::Smtp {
                transport: smtp_transport(smtp)?,
                bound: smtp.timeout.saturating_mul(4),
            },
            MailTransport::File(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| MailerError::Dir {
                    path: dir.display().to_string(),
                    source,
                })?;
                Self::File(dir.clone())
            }
            MailTransport::Log => Self::Log,
            MailTransport::Off => Self::Off,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Smtp { .. } => "smtp",
            Self::File(_) => "file",
            Self::Log => "log",
            Self::Off => "off",
        }
    }

    /// Sends a built message (the log transport logs before a message is built).
    pub(super) async fn send(&self, id: &str, message: Message) -> Result<(), DeliveryError> {
        match self {
            Self::Smtp { transport, bound } => {
                match tokio::time::timeout(*bound, transport.send(message)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(classify(&e)),
                    Err(_) => Err(DeliveryError::Unavailable(format!(
                        "SMTP: no answer within {bound:?}"
                    ))),
                }
            }
            Self::File(dir) => write_eml(dir, id, message.formatted()).await,
            Self::Log => Ok(()),
            // No relay runs with it; were one to, the mail would wait.
            Self::Off => Err(DeliveryError::Unavailable("mail is off".into())),
        }
    }
}

/// The pooled SMTP transport of the configuration.
fn smtp_transport(smtp: &Smtp) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailerError> {
    let tls = || -> Result<TlsParameters, MailerError> {
        let mut builder = TlsParameters::builder(smtp.host.clone());
        for der in &smtp.ca_certificates {
            let ca = Certificate::from_der(der.to_vec())
                .map_err(|e| MailerError::Tls(format!("AUTH_SMTP_CA_FILE: {e}")))?;
            builder = builder.add_root_certificate(ca);
        }
        builder
            .build_rustls()
            .map_err(|e| MailerError::Tls(e.to_string()))
    };
    let tls = match smtp.security {
        SmtpSecurity::Implicit => Tls::Wrapper(tls()?),
        SmtpSecurity::StartTlsRequired => Tls::Required(tls()?),
        SmtpSecurity::StartTlsOpportunistic => Tls::Opportunistic(tls()?),
        SmtpSecurity::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(smtp.timeout))
        .pool_config(
            PoolConfig::new()
                .max_size(4)
                .idle_timeout(Duration::from_secs(60)),
        );
    if let Some((user, password)) = &smtp.credentials {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_owned(),
        ));
    }
    Ok(builder.build())
}

/// SMTP reply codes of a refused AUTH: the configuration is wrong, not the mail; fixed, the
/// mail goes out on a later attempt.
const AUTH_CODES: [&str; 4] = ["530", "534", "535", "538"];

/// No reply to the mail itself (connection, TLS, timeout) or a refused AUTH: the server is
/// out of reach, and the relay waits for it without counting attempts against the mail. A
/// permanent (5xx) reply to the mail parks it; a transient (4xx) one is retried.
pub fn classify(e: &smtp::Error) -> DeliveryError {
    let text = format!("SMTP: {e}");
    let Some(code) = e.status().map(|c| c.to_string()) else {
        return DeliveryError::Unavailable(text);
    };
    if AUTH_CODES.contains(&code.as_str()) {
        DeliveryError::Unavailable(text)
    } else if e.is_permanent() {
        DeliveryError::Permanent(text)
    } else {
        DeliveryError::Retry(text)
    }
}

/// Writes `ID.eml` in `dir`: a temporary file first, then renamed, so a reader never sees half
/// a mail; a retried mail replaces its file.
async fn write_eml(dir: &Path, id: &str, bytes: Vec<u8>) -> Result<(), DeliveryError> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(DeliveryError::Permanent(format!("not a file name: {id:?}")));
    }
    let path = dir.join(format!("{id}.eml"));
    let temp = dir.join(format!(".{id}.eml.tmp"));
    let write = move || -> std::io::Result<()> {
        std::fs::write(&temp, &bytes)?;
        std::fs::rename(&temp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })
    };
    match tokio::task::spawn_blocking(write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(DeliveryError::Unavailable(format!(
            "writing to {}: {e}",
            dir.display()
        ))),
        Err(e) => Err(DeliveryError::Retry(format!("writing the mail: {e}"))),
    }
}

/// The log transport: one line with the template, the recipient and the link (its token
/// included: development only).
pub(super) fn log(mail: &OutgoingMail, link: &str) {
    tracing::info!(
        template = mail.template.as_str(),
        to = %mail.to,
        link = %link,
        "mail (log transport; not sent)"
    );
}
