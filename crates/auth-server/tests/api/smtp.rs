//! A real SMTP server for the tests: `tests/smtp_sink.py` (Python's aiosmtpd) on a free port,
//! plain, with STARTTLS or implicit TLS (a certificate of a CA made here), optionally with
//! AUTH, refusing chosen recipients; and the mails it received, parsed.
//!
//! ```ignore
//! let Some(sink) = SmtpSink::start(SinkOptions::starttls().auth("mailer", "pw")) else { return };
//! let env = sink.env();                                // AUTH_MAIL_TRANSPORT=smtp, URL, CA
//! let app = spawn_app_with(&pairs(&env)).await;
//! // ... something that sends a mail ...
//! let mail = sink.wait_for(1).await.remove(0);
//! assert_eq!(mail.rcpt_tos, ["ann@example.com"]);
//! let token = mail.token().unwrap();                   // from the link in the text part
//! ```
//!
//! The Python is `AUTH_TEST_PYTHON` (else `python3`) with aiosmtpd
//! (`tests/requirements.txt`); without it the test is skipped, except under `CI=true`, where
//! it fails.

use crate::helpers::python_with;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde::Deserialize;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");

/// How the sink encrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    /// Plain text only (`smtp://...?tls=none`).
    None,
    /// STARTTLS offered, and required before MAIL when `required` (`smtp://...?tls=required`).
    StartTls { required: bool },
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// What the sink is like.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    pub tls: SinkTls,
    /// User and password AUTH must give; without AUTH, mail is then refused (530).
    pub auth: Option<(String, String)>,
    /// Recipients refused at RCPT TO with `550 5.1.1`.
    pub reject: Vec<String>,
    /// Recipients refused at RCPT TO with `451 4.3.0` (try again later).
    pub tempfail: Vec<String>,
}

impl SinkOptions {
    pub fn plain() -> Self {
        Self {
            tls: SinkTls::None,
            auth: None,
            reject: Vec::new(),
            tempfail: Vec::new(),
        }
    }

    /// STARTTLS, required by the server.
    pub fn starttls() -> Self {
        Self {
            tls: SinkTls::StartTls { required: true },
            ..Self::plain()
        }
    }

    pub fn implicit_tls() -> Self {
        Self {
            tls: SinkTls::Implicit,
            ..Self::plain()
        }
    }

    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.to_owned(), password.to_owned()));
        self
    }

    pub fn reject(mut self, address: &str) -> Self {
        self.reject.push(address.to_owned());
        self
    }

    pub fn tempfail(mut self, address: &str) -> Self {
        self.tempfail.push(address.to_owned());
        self
    }
}

/// A mail the sink accepted: its envelope, how it came, and its parsed content.
#[derive(Debug, Clone, Deserialize)]
pub struct ReceivedMail {
    #[serde(default)]
    pub mail_from: String,
    #[serde(default)]
    pub rcpt_tos: Vec<String>,
    /// Whether the connection was encrypted (STARTTLS or implicit TLS).
    #[serde(default)]
    pub tls: bool,
    /// Whether the client had authenticated.
    #[serde(default)]
    pub authenticated: bool,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub message_id: String,
    pub date: String,
    /// `multipart/alternative` for the service's mails.
    pub content_type: String,
    /// The text/plain part, decoded.
    pub text: Option<String>,
    /// The text/html part, decoded.
    pub html: Option<String>,
    /// The message as sent.
    pub raw: String,
}

impl ReceivedMail {
    /// The first http(s) link of the text part.
    pub fn link(&self) -> Option<String> {
        let text = self.text.as_deref()?;
        let start = text.find("http://").or_else(|| text.find("https://"))?;
        let link = text[start..].split_whitespace().next()?;
        Some(link.to_owned())
    }

    /// The `token` query value of [`Self::link`], percent-decoded.
    pub fn token(&self) -> Option<String> {
        let link = url::Url::parse(&self.link()?).ok()?;
        link.query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    }
}

/// A running sink; stopped and its folder removed when dropped.
pub struct SmtpSink {
    pub port: u16,
    pub options: SinkOptions,
    /// The PEM file of the CA that signed the sink's certificate (TLS sinks).
    pub ca_file: Option<PathBuf>,
    dir: PathBuf,
    child: Child,
}

impl SmtpSink {
    /// Starts a sink; `None` when there is no Python with aiosmtpd (outside CI).
    pub fn start(options: SinkOptions) -> Option<Self> {
        let python = python_with("aiosmtpd")?;
        let dir = std::env::temp_dir().join(format!("auth-smtp-sink-{}", uuid::Uuid::now_v7()));
        let mails = dir.join("mails");
        std::fs::create_dir_all(&mails).unwrap();
        let mut command = Command::new(python);
        command
            .args([SCRIPT, "serve", "--dir"])
            .arg(&mails)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("sink.log")).unwrap());
        let mut ca_file = None;
        if options.tls != SinkTls::None {
            let (ca, cert, key) = certificates();
            let write = |name: &str, text: &str| {
                let path = dir.join(name);
                std::fs::write(&path, text).unwrap();
                path
            };
            ca_file = Some(write("ca.pem", &ca));
            let mode = if options.tls == SinkTls::Implicit {
                "implicit"
            } else {
                "starttls"
            };
            command.args(["--tls", mode, "--cert"]);
            command.arg(write("cert.pem", &cert)).arg("--key");
            command.arg(write("key.pem", &key));
        }
        if options.tls == (SinkTls::StartTls { required: true }) {
            command.arg("--require-starttls");
        }
        if let Some((user, password)) = &options.auth {
            command.arg("--auth").arg(format!("{user}:{password}"));
        }
        for address in &options.reject {
            command.args(["--reject", address]);
        }
        for address in &options.tempfail {
            command.args(["--tempfail", address]);
        }
        let mut child = command.spawn().expect("the SMTP sink starts");
        let port = read_port(&mut child);
        Some(Self {
            port,
            options,
            ca_file,
            dir,
            child,
        })
    }

    /// The `AUTH_SMTP_URL` that reaches this sink as configured (credentials included).
    pub fn url(&self) -> String {
        let credentials = match &self.options.auth {
            Some((user, password)) => format!("{user}:{password}@"),
            None => String::new(),
        };
        let (scheme, query) = match self.options.tls {
            SinkTls::None => ("smtp", "?tls=none"),
            SinkTls::StartTls { .. } => ("smtp", "?tls=required"),
            SinkTls::Implicit => ("smtps", ""),
        };
        format!("{scheme}://{credentials}127.0.0.1:{}{query}", self.port)
    }

    /// The settings that send the service's mail here: transport, URL and CA file.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("AUTH_MAIL_TRANSPORT".to_owned(), "smtp".to_owned()),
            ("AUTH_SMTP_URL".to_owned(), self.url()),
            ("AUTH_SMTP_TIMEOUT_SECONDS".to_owned(), "5".to_owned()),
        ];
        if let Some(ca) = &self.ca_file {
            env.push(("AUTH_SMTP_CA_FILE".to_owned(), ca.display().to_string()));
        }
        env
    }

    /// The mails received so far, in order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.join("mails"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (10 s at most) until `n` mails have arrived and returns them all; fails the
    /// test with what did arrive otherwise.
    pub async fn wait_for(&self, n: usize) -> Vec<ReceivedMail> {
        for _ in 0..200 {
            let mails = self.received();
            if mails.len() >= n {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{n} mails expected, received {:#?}\nthe sink's log:\n{}",
            self.received(),
            self.log()
        );
    }

    /// What the sink wrote to its standard error (aiosmtpd's log: sessions, TLS failures).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sink.log")).unwrap_or_default()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The port the sink prints once it listens (10 s at most).
fn read_port(child: &mut Child) -> u16 {
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the SMTP sink says its port");
    line.trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the SMTP sink did not start: {line:?}"))
}

/// A CA, and a certificate for 127.0.0.1 and localhost it signed with its key: PEM each.
fn certificates() -> (String, String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "smtp sink test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Settings as `spawn_app_with` takes them.
pub fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Parses a message file as the sink parses what it receives (Python's `email`).
pub fn parse_eml(path: &Path) -> Option<ReceivedMail> {
    let python = python_with("aiosmtpd")?;
    let out = Command::new(python)
        .args([SCRIPT, "parse"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}
