//! TLS and client certificates at the edge, with certificates made in the test, and the
//! configuration problems of bad TLS files.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use auth_server::config::RawConfig;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::cli::command;
use crate::helpers::{PASSWORD, TestDb, base_env, spawn_app_with};

/// A CA of the test's own.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// A certificate for a server (localhost) or a client, and its key, both PEM.
    fn issue(&self, server: bool) -> (String, String) {
        let names = if server {
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
        } else {
            Vec::new()
        };
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A folder of PEM files, removed at the end of the test.
struct Files(PathBuf);

impl Files {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("auth-tls-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA, a server certificate it signed, and the settings that serve with them.
fn server_files(files: &Files, name: &str) -> (Ca, String, String) {
    let ca = Ca::new("test server CA");
    let (cert, key) = ca.issue(true);
    let cert = files.write(&format!("{name}.pem"), &cert);
    (ca, cert, files.write(&format!("{name}.key"), &key))
}

/// A TLS client that trusts `ca`, presenting `identity` (certificate and key PEM) if given.
fn client(ca: &Ca, identity: Option<&(String, String)>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(ca.issuer.der().clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

use tokio_rustls::rustls::pki_types::pem::PemObject as _;

/// One HTTP/1.1 request over TLS; the whole answer, or the error that ended the exchange.
async fn exchange(
    connector: &TlsConnector,
    addr: &str,
    request: &str,
) -> Result<String, std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn get(path: &str, token: Option<&str>) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
}

fn post(path: &str, body: &Value) -> String {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn status_and_body(answer: &str) -> (u16, String, Value) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("a complete answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn edge_tls_serves_the_api_with_hsts_and_sees_the_client_address() {
    let files = Files::new();
    let (ca, cert, key) = server_files(&files, "server");
    let app = spawn_app_with(&[("AUTH_TLS_CERT", &cert), ("AUTH_TLS_KEY", &key)]).await;
    let addr = app.addr.trim_start_matches("http://").to_owned();
    let tls = client(&ca, None);
    let answer = exchange(&tls, &addr, &get("/health", None)).await.unwrap();
    let (status, head, body) = status_and_body(&answer);
    assert_eq!((status, body), (200, json!({"status": "ok"})), "{answer}");
    assert!(
        head.contains("strict-transport-security: max-age="),
        "{head}"
    );
    assert!(head.contains("x-frame-options: deny"), "{head}");

    // The peer's address reaches the session, as over plain HTTP.
    let credentials = json!({"email": "tls@example.com", "password": PASSWORD});
    let answer = exchange(&tls, &addr, &post("/auth/signup", &credentials))
        .await
        .unwrap();
    assert_eq!(status_and_body(&answer).0, 201, "{answer}");
    let answer = exchange(&tls, &addr, &post("/auth/login", &credentials))
        .await
        .unwrap();
    let (status, _, pair) = status_and_body(&answer);
    assert_eq!(status, 200, "{answer}");
    let token = pair["access_token"].as_str().unwrap();
    let answer = exchange(&tls, &addr, &get("/auth/sessions", Some(token)))
        .await
        .unwrap();
    let (status, _, sessions) = status_and_body(&answer);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        sessions.to_string().matches("127.0.0.1").count(),
        1,
        "{sessions}"
    );

    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::get(format!("http://{addr}/health")).await;
    assert!(plain.is_err(), "{plain:?}");
}

#[tokio::test]
async fn edge_tls_with_a_client_ca_requires_a_certificate_it_signed() {
    let files = Files::new();
    let (ca, cert, key) = server_files(&files, "server");
    let clients = Ca::new("test client CA");
    let client_ca = files.write("clients.pem", &clients.issuer.pem());
    let app = spawn_app_with(&[
        ("AUTH_TLS_CERT", &cert),
        ("AUTH_TLS_KEY", &key),
        ("AUTH_TLS_CLIENT_CA", &client_ca),
    ])
    .await;
    let addr = app.addr.trim_start_matches("http://").to_owned();
    let request = get("/health", None);

    let signed = clients.issue(false);
    let answer = exchange(&client(&ca, Some(&signed)), &addr, &request)
        .await
        .unwrap();
    assert_eq!(status_and_body(&answer).0, 200, "{answer}");

    let stranger = Ca::new("another CA").issue(false);
    for (identity, who) in [
        (None, "no certificate"),
        (Some(&stranger), "a certificate of another CA"),
    ] {
        let refused = exchange(&client(&ca, identity), &addr, &request).await;
        assert!(
            refused.as_ref().is_err() || refused.as_ref().is_ok_and(String::is_empty),
            "{who}: {refused:?}"
        );
    }
}

/// Settings set for a case, by environment name.
type Settings<'a> = &'a [(&'a str, &'a str)];

/// The settings of the tests plus `extra`, validated.
fn validate(extra: &[(&str, &str)]) -> Result<(), Vec<String>> {
    let mut env = base_env();
    env.insert("DATABASE_URL".into(), "sqlite://unused.db".into());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    RawConfig::load(None, &|n| env.get(n).cloned(), &[])
        .unwrap()
        .validate()
        .map(drop)
}

#[test]
fn edge_bad_tls_files_and_gateway_secrets_are_configuration_problems() {
    let files = Files::new();
    let (_, cert, key) = server_files(&files, "server");
    let (_, other_cert, _) = server_files(&files, "other");
    let missing = files.0.join("missing.pem").display().to_string();
    let garbage = files.write(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    );
    let empty = files.write("empty.pem", "nothing in PEM here\n");
    let short = files.write("short", "too short\n");
    let cases: [(Settings, &str, &str); 10] = [
        (
            &[("AUTH_TLS_CERT", &missing), ("AUTH_TLS_KEY", &key)],
            "AUTH_TLS_CERT",
            "cannot read",
        ),
        (
            &[("AUTH_TLS_CERT", &garbage), ("AUTH_TLS_KEY", &key)],
            "AUTH_TLS_CERT",
            "not a valid PEM",
        ),
        (
            &[("AUTH_TLS_CERT", &cert), ("AUTH_TLS_KEY", &empty)],
            "AUTH_TLS_KEY",
            "no private key found",
        ),
        (
            &[("AUTH_TLS_CERT", &other_cert), ("AUTH_TLS_KEY", &key)],
            "AUTH_TLS_KEY",
            "not the certificate's",
        ),
        (
            &[("AUTH_TLS_CERT", &cert)],
            "AUTH_TLS_KEY",
            "required with AUTH_TLS_CERT",
        ),
        (
            &[("AUTH_TLS_CLIENT_CA", &cert)],
            "AUTH_TLS_CLIENT_CA",
            "needs AUTH_TLS_CERT",
        ),
        (
            &[
                ("AUTH_TLS_CERT", &cert),
                ("AUTH_TLS_KEY", &key),
                ("AUTH_TLS_CLIENT_CA", &empty),
            ],
            "AUTH_TLS_CLIENT_CA",
            "no certificate found",
        ),
        (
            &[("AUTH_GATEWAY_SECRET", "too short")],
            "AUTH_GATEWAY_SECRET",
            "at least 32 bytes",
        ),
        (
            &[("AUTH_GATEWAY_SECRET_FILE", &short)],
            "AUTH_GATEWAY_SECRET_FILE",
            "at least 32 bytes",
        ),
        (
            &[
                ("AUTH_GATEWAY_SECRET_FILE", &missing),
                ("AUTH_GATEWAY_SECRET", "x"),
            ],
            "AUTH_GATEWAY_SECRET_FILE",
            "not both",
        ),
    ];
    for (settings, setting, said) in cases {
        let problems = validate(settings).expect_err(said);
        assert!(
            problems
                .iter()
                .any(|p| p.contains(setting) && p.contains(said)),
            "{settings:?}: {problems:#?}"
        );
        assert!(
            !problems.iter().any(|p| p.contains("too short")),
            "{problems:#?}"
        );
    }
    assert_eq!(
        validate(&[("AUTH_TLS_CERT", &cert), ("AUTH_TLS_KEY", &key)]),
        Ok(())
    );
    let secret = files.write("secret", "a gateway secret of at least 32 bytes\n");
    assert_eq!(validate(&[("AUTH_GATEWAY_SECRET_FILE", &secret)]), Ok(()));
}

/// Starts the binary with `extra`, waits for its listening line and returns it.
fn start(url: &str, extra: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut child = command(url)
        .envs(extra.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .unwrap();
        if line.contains("listening on ") {
            break line;
        }
    };
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    (child, line)
}

#[tokio::test]
async fn edge_tls_service_exits_0_on_sigterm_and_bad_files_exit_2() {
    let files = Files::new();
    let (ca, cert, key) = server_files(&files, "server");
    let (_db, url) = TestDb::create().await;
    let (mut child, line) = start(&url, &[("AUTH_TLS_CERT", &cert), ("AUTH_TLS_KEY", &key)]);
    let addr = line
        .split("https://")
        .nth(1)
        .expect("an https address")
        .split_whitespace()
        .next()
        .unwrap();
    let answer = exchange(&client(&ca, None), addr, &get("/health", None))
        .await
        .unwrap();
    assert_eq!(status_and_body(&answer).0, 200, "{answer}");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));

    let missing = Path::new(&files.0).join("nope.pem").display().to_string();
    let output = command(&url)
        .env("AUTH_TLS_CERT", &missing)
        .env("AUTH_TLS_KEY", &key)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("AUTH_TLS_CERT") && stderr.contains("nope.pem"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `healthcheck` speaks TLS when the service does, and accepts the certificate the
/// configuration serves (pinned, whatever its names), no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_tls_healthcheck_accepts_the_served_certificate_only() {
    let files = Files::new();
    let (_ca, cert, key) = server_files(&files, "server");
    let (_other_ca, other_cert, other_key) = server_files(&files, "other");
    let app = spawn_app_with(&[("AUTH_TLS_CERT", &cert), ("AUTH_TLS_KEY", &key)]).await;
    let port = app.addr.rsplit(':').next().unwrap().to_owned();
    let url = app.config.database.url.expose_secret().to_owned();
    let check = |cert: &str, key: &str| {
        let out = command(&url)
            .env("PORT", &port)
            .env("AUTH_TLS_CERT", cert)
            .env("AUTH_TLS_KEY", key)
            .arg("healthcheck")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, said) = check(&cert, &key);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.starts_with("ready: 200 from https://127.0.0.1:"),
        "{said}"
    );
    let (code, said) = check(&other_cert, &other_key);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("TLS"), "{said}");
}
