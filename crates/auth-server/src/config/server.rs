//! Where and how the service listens: address, port, the metrics listener, shutdown delay and
//! drain, trusted proxies.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::definition::{DefaultTo, Definition, Problems, Secrecy, Setting};
use super::{IpNet, RawConfig};

static BIND: Setting<IpAddr> = Setting {
    key: "bind",
    env: &["AUTH_BIND"],
    default: DefaultTo::Value(|| IpAddr::from([127, 0, 0, 1])),
    range: None,
    secrecy: Secrecy::Public,
    help: "address to listen on",
};

static PORT: Setting<u16> = Setting {
    key: "port",
    env: &["PORT", "AUTH_PORT"],
    default: DefaultTo::Value(|| 8080),
    range: None,
    secrecy: Secrecy::Public,
    help: "TCP port (`0` picks a free one)",
};

static METRICS_BIND: Setting<SocketAddr> = Setting {
    key: "metrics_bind",
    env: &["AUTH_METRICS_BIND"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::Public,
    help: "`host:port` of a separate plain-HTTP listener for `GET /metrics` (e.g. `127.0.0.1:9100`), which then leaves the main port (unset: served on the main port)",
};

static SHUTDOWN_DELAY: Setting<u64> = Setting {
    key: "shutdown_delay_seconds",
    env: &["AUTH_SHUTDOWN_DELAY_SECONDS"],
    default: DefaultTo::Value(|| 5),
    range: Some(0..=3600),
    secrecy: Secrecy::Public,
    help: "on SIGTERM, how long readiness answers 503 while every request is still served (answers carry `Connection: close`), before the listener closes; SIGINT skips it",
};

static SHUTDOWN_DRAIN: Setting<u64> = Setting {
    key: "shutdown_drain_seconds",
    env: &["AUTH_SHUTDOWN_DRAIN_SECONDS"],
    default: DefaultTo::Value(|| 10),
    range: Some(0..=3600),
    secrecy: Secrecy::Public,
    help: "on shutdown, how long requests whose clients left may still run before the pool closes",
};

static TRUSTED_PROXIES: Setting<Vec<IpNet>> = Setting {
    key: "trusted_proxies",
    env: &["AUTH_TRUSTED_PROXIES"],
    default: DefaultTo::Value(Vec::new),
    range: None,
    secrecy: Secrecy::Public,
    help: "comma-separated IPs/CIDRs whose `X-Forwarded-For` (else `Forwarded`) is believed",
};

pub(super) static SETTINGS: &[&dyn Definition] = &[
    &BIND,
    &PORT,
    &METRICS_BIND,
    &SHUTDOWN_DELAY,
    &SHUTDOWN_DRAIN,
    &TRUSTED_PROXIES,
];

#[derive(Debug, Clone)]
pub struct Server {
    pub bind: IpAddr,
    pub port: u16,
    /// Where `/metrics` is served apart from the API, if anywhere.
    pub metrics_bind: Option<SocketAddr>,
    /// On SIGTERM, how long the service goes on serving while readiness says it is leaving.
    pub shutdown_delay: Duration,
    /// On shutdown, how long requests that outlived their connections may still run.
    pub shutdown_drain: Duration,
    /// Peers whose `X-Forwarded-For` (else `Forwarded`) is believed.
    pub trusted_proxies: Vec<IpNet>,
}

impl Server {
    /// The address to listen on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }
}

pub(super) fn load(raw: &RawConfig, p: &mut Problems) -> Option<Server> {
    let bind = BIND.value(raw, p);
    let port = PORT.value(raw, p);
    let metrics_bind = METRICS_BIND.optional(raw, p);
    let delay = SHUTDOWN_DELAY.value(raw, p);
    let drain = SHUTDOWN_DRAIN.value(raw, p);
    let trusted_proxies = TRUSTED_PROXIES.value(raw, p);
    Some(Server {
        bind: bind?,
        port: port?,
        metrics_bind: metrics_bind?,
        shutdown_delay: Duration::from_secs(delay?),
        shutdown_drain: Duration::from_secs(drain?),
        trusted_proxies: trusted_proxies?,
    })
}
