//! The SMTP server of the mail transport, read from `AUTH_SMTP_URL`: host, port, how the
//! connection is encrypted, and credentials. Problems never quote the password.

use std::time::Duration;

use percent_encoding::percent_decode_str;
use secrecy::SecretString;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// How the connection to the SMTP server is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte (port 465).
    Implicit,
    /// `smtp://...?tls=required` (the default): STARTTLS, or no mail is sent.
    StartTlsRequired,
    /// `smtp://...?tls=opportunistic`: STARTTLS when the server offers it, else plain.
    StartTlsOpportunistic,
    /// `smtp://...?tls=none`: plain text (a relay on the same host or network).
    None,
}

/// The SMTP server and how to talk to it.
#[derive(Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// User name and password for AUTH, when the URL carries them.
    pub credentials: Option<(String, SecretString)>,
    /// CAs trusted besides the public roots (`AUTH_SMTP_CA_FILE`).
    pub ca_certificates: Vec<CertificateDer<'static>>,
    /// Bound of the connection and of each command.
    pub timeout: Duration,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("ca_certificates", &self.ca_certificates.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Reads an SMTP URL; each problem is one line, none quotes the password.
pub fn parse_url(text: &str) -> Result<Smtp, Vec<String>> {
    let url = url::Url::parse(text.trim()).map_err(|e| vec![format!("not a URL: {e}")])?;
    let mut problems = Vec::new();
    let implicit = match url.scheme() {
        "smtps" => true,
        "smtp" => false,
        other => {
            return Err(vec![format!(
                "must start with smtp:// or smtps://, not {other}://"
            )]);
        }
    };
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => host.trim_start_matches('[').trim_end_matches(']'),
        _ => {
            problems.push("has no host".to_owned());
            ""
        }
    };
    if !host.is_empty() && !host_ok(host) {
        problems.push(format!(
            "the host must be a domain name or an IP address, not {host:?}"
        ));
    }
    if !matches!(url.path(), "" | "/") {
        problems.push(format!("must have no path, not {:?}", url.path()));
    }
    if url.fragment().is_some() {
        problems.push("must have no fragment".to_owned());
    }
    let mut tls = None;
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "tls" if implicit => {
                problems.push("`tls` does not apply to smtps:// (TLS from the start)".into())
            }
            "tls" => match value.as_ref() {
                "required" => tls = Some(SmtpSecurity::StartTlsRequired),
                "opportunistic" => tls = Some(SmtpSecurity::StartTlsOpportunistic),
                "none" => tls = Some(SmtpSecurity::None),
                other => problems.push(format!(
                    "tls must be required, opportunistic or none, not {other:?}"
                )),
            },
            other => problems.push(format!("unknown parameter {other:?} (only `tls`)")),
        }
    }
    let security = if implicit {
        SmtpSecurity::Implicit
    } else {
        tls.unwrap_or(SmtpSecurity::StartTlsRequired)
    };
    let credentials = credentials(&url, &mut problems);
    if credentials.is_some() && security == SmtpSecurity::None && !is_loopback(host) {
        problems.push(
            "credentials would cross the network in clear with tls=none: use tls=required or smtps://"
                .into(),
        );
    }
    let port = url.port().unwrap_or(match security {
        SmtpSecurity::Implicit => 465,
        SmtpSecurity::StartTlsRequired | SmtpSecurity::StartTlsOpportunistic => 587,
        SmtpSecurity::None => 25,
    });
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Smtp {
        host: host.to_owned(),
        port,
        security,
        credentials,
        ca_certificates: Vec::new(),
        timeout: Duration::from_secs(10),
    })
}

/// The user name and password, percent-decoded; a password needs a user name.
fn credentials(url: &url::Url, problems: &mut Vec<String>) -> Option<(String, SecretString)> {
    let user = percent_decode_str(url.username()).decode_utf8();
    let password = url.password().map(|p| percent_decode_str(p).decode_utf8());
    match (user, password) {
        (Err(_), _) => {
            problems.push("the user name is not UTF-8 once percent-decoded".into());
            None
        }
        (_, Some(Err(_))) => {
            problems.push("the password is not UTF-8 once percent-decoded".into());
            None
        }
        (Ok(user), None) if user.is_empty() => None,
        (Ok(user), Some(Ok(_))) if user.is_empty() => {
            problems.push("a password needs a user name".into());
            None
        }
        (Ok(user), password) => Some((
            user.into_owned(),
            SecretString::from(
                password
                    .and_then(Result::ok)
                    .unwrap_or_default()
                    .into_owned(),
            ),
        )),
    }
}

/// A domain name (letters, digits, `-`, dot-separated labels) or an IP address.
fn host_ok(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
        || (host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn urls_give_host_port_security_and_decoded_credentials() {
        let cases: &[(&str, &str, u16, SmtpSecurity)] = &[
            (
                "smtp://mail.example",
                "mail.example",
                587,
                SmtpSecurity::StartTlsRequired,
            ),
            (
                "smtp://mail.example?tls=opportunistic",
                "mail.example",
                587,
                SmtpSecurity::StartTlsOpportunistic,
            ),
            (
                "smtp://relay:2525?tls=none",
                "relay",
                2525,
                SmtpSecurity::None,
            ),
            ("smtp://relay?tls=none", "relay", 25, SmtpSecurity::None),
            (
                "smtps://mail.example",
                "mail.example",
                465,
                SmtpSecurity::Implicit,
            ),
            ("smtps://[::1]:4650/", "::1", 4650, SmtpSecurity::Implicit),
        ];
        for (url, host, port, security) in cases {
            let smtp = parse_url(url).unwrap_or_else(|e| panic!("{url}: {e:?}"));
            assert_eq!(
                (smtp.host.as_str(), smtp.port, smtp.security),
                (*host, *port, *security),
                "{url}"
            );
            assert!(smtp.credentials.is_none(), "{url}");
        }
        let smtp = parse_url("smtp://me%40example.com:p%40ss%3Aw0rd@mail.example:587").unwrap();
        let (user, password) = smtp.credentials.unwrap();
        assert_eq!(user, "me@example.com");
        assert_eq!(password.expose_secret(), "p@ss:w0rd");
        let debug = format!("{:?}", parse_url("smtp://u:hunter2@h").unwrap());
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn bad_urls_are_refused_one_line_each_without_the_password() {
        let cases: &[(&str, &str)] = &[
            ("http://mail.example", "must start with smtp:// or smtps://"),
            (
                "smtp://mail.example?tls=maybe",
                "tls must be required, opportunistic or none",
            ),
            (
                "smtps://mail.example?tls=required",
                "does not apply to smtps://",
            ),
            ("smtp://mail.example?ca=x", "unknown parameter \"ca\""),
            ("smtp://mail.example/path", "must have no path"),
            (
                "smtp://:secret-pw@mail.example",
                "a password needs a user name",
            ),
            ("smtp://u:secret-pw@mail.example?tls=none", "in clear"),
            (
                "smtp://u:secret-pw@%zz",
                "must be a domain name or an IP address",
            ),
            ("not a url secret-pw", "not a URL"),
        ];
        for (url, expected) in cases {
            let problems = parse_url(url).unwrap_err();
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{url}: expected {expected:?} in {problems:?}"
            );
            assert!(
                problems.iter().all(|p| !p.contains("secret-pw")),
                "{url}: {problems:?}"
            );
        }
        // Plain text with credentials is fine on the same host.
        assert!(parse_url("smtp://u:pw@127.0.0.1:2525?tls=none").is_ok());
    }
}
