//! `auth-service healthcheck`: asks the running service's readiness (`GET /health/ready`) with
//! one HTTP/1.1 request over a plain TCP (or TLS) connection, for container probes without
//! curl. Exit 0 on 200, 1 otherwise, with one line said either way.
//!
//! Over TLS the certificate must be the one the configuration serves (`AUTH_TLS_CERT`'s first):
//! pinned, so the name it was issued for does not matter when asking 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::config::Config;

/// Where to ask: `url` when given, else readiness on the configured port of this host.
fn target(config: &Config, url: Option<&str>) -> Result<url::Url, String> {
    if let Some(url) = url {
        let parsed = url::Url::parse(url).map_err(|e| format!("--url {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(format!(
                "--url {url:?}: an http:// or https:// URL is needed"
            ));
        }
        return Ok(parsed);
    }
    let ip = match config.server.bind {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if config.edge.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = match ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let port = config.server.port;
    url::Url::parse(&format!("{scheme}://{host}:{port}/health/ready")).map_err(|e| e.to_string())
}

/// Runs the check and says how it went.
pub async fn run(config: &Config, url: Option<&str>, timeout: Duration) -> ExitCode {
    let target = match target(config, url) {
        Ok(t) => t,
        Err(e) => {
            println!("unhealthy: {e}");
            return ExitCode::FAILURE;
        }
    };
    match tokio::time::timeout(timeout, status(config, &target)).await {
        Ok(Ok(200)) => {
            println!("ready: 200 from {target}");
            ExitCode::SUCCESS
        }
        Ok(Ok(code)) => {
            println!("not ready: {code} from {target}");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            println!("unhealthy: {target}: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            println!("unhealthy: {target}: no answer within {timeout:?}");
            ExitCode::FAILURE
        }
    }
}

/// The status code of `GET target`.
async fn status(config: &Config, target: &url::Url) -> Result<u16, String> {
    let host = target.host_str().unwrap_or_default();
    let port = target.port_or_known_default().unwrap_or(80);
    let addr = (host.trim_start_matches('[').trim_end_matches(']'), port);
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut path = target.path().to_owned();
    if let Some(q) = target.query() {
        path = format!("{path}?{q}");
    }
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: auth-service-healthcheck\r\n\
         Connection: close\r\n\r\n",
        target.authority()
    );
    if target.scheme() == "https" {
        let leaf = config
            .edge
            .tls_leaf
            .clone()
            .ok_or("https needs the served certificate (AUTH_TLS_CERT) to check it against")?;
        let provider = Arc::new(ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { leaf, provider }))
            .with_no_client_auth();
        let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
            .map_err(|e| e.to_string())?
            .to_owned();
        let stream = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        exchange(stream, &request).await
    } else {
        exchange(stream, &request).await
    }
}

/// Sends the request and reads the status line.
async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    request: &str,
) -> Result<u16, String> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream
            .read(&mut buffer)
            .await
            .map_err(|e| format!("cannot read: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    match line.split(' ').collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("HTTP/1.") => code
            .parse()
            .map_err(|_| format!("not an HTTP answer: {line:?}")),
        _ => Err(format!("not an HTTP answer: {line:?}")),
    }
}

/// Accepts the one certificate the configuration serves, whatever its name.
#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the certificate of AUTH_TLS_CERT".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
