//! Configuration: one table of settings (`settings`), each read from the environment (names compatible
//! with the services this one replaces), else from an optional TOML file, else a default;
//! then validated with one message per problem.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use auth_core::password::{Argon2Settings, HashingLimits, PasswordPolicy};
use auth_core::session::SessionSettings;
use auth_core::signing::RotationSettings;
use auth_core::token::{JwtAlgorithm, TokenSettings};
use secrecy::{ExposeSecret, SecretString};

mod net;
mod settings;

pub use net::{IpNet, redact_url};
pub use settings::{RawConfig, SETTINGS, Setting, Source};

use settings::DEFAULT_DATABASE_URL;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub database_url: SecretString,
    pub database_max_connections: u32,
    pub sqlite_cache_kib: u32,
    pub tokens: TokenSettings,
    pub jwt_algorithm: JwtAlgorithm,
    pub jwt_secret: Option<SecretString>,
    pub master_key: Option<SecretString>,
    pub log_format: LogFormat,
    pub argon2: Argon2Settings,
    pub hashing: HashingLimits,
    pub password_policy: PasswordPolicy,
    pub sessions: SessionSettings,
    pub revocation_poll: Duration,
    /// On shutdown, how long requests that outlived their connections may still run.
    pub shutdown_drain: Duration,
    pub rotation: RotationSettings,
    pub key_reload: Duration,
    pub trusted_proxies: Vec<IpNet>,
    pub token_cache_size: usize,
}

impl RawConfig {
    /// Validates every value, reporting all problems.
    pub fn validate(&self) -> Result<Config, Vec<String>> {
        let mut p = Problems(Vec::new());
        let bind: Option<IpAddr> = p.parse(self, "bind");
        let port: Option<u16> = p.parse(self, "port");
        let database_url = self
            .get("database_url")
            .unwrap_or(DEFAULT_DATABASE_URL)
            .to_owned();
        if auth_store::Backend::from_url(&database_url).is_none() {
            p.0.push("database_url (DATABASE_URL): must start with sqlite: or postgres://".into());
        }
        let database_max_connections: Option<u32> =
            p.parse_range(self, "database_max_connections", 1, 1000);
        let sqlite_cache_kib: Option<u32> = p.parse_range(self, "sqlite_cache_kib", 16, 4_194_304);
        let audience = self.get("audience").unwrap_or_default().to_owned();
        if audience.is_empty() {
            p.0.push("audience (AUTH_AUDIENCE): must not be empty".into());
        }
        let jwt_algorithm = match self.get("jwt_algorithm") {
            Some("EdDSA") => Some(JwtAlgorithm::EdDSA),
            Some("HS256") => Some(JwtAlgorithm::HS256),
            other => {
                p.0.push(format!(
                    "jwt_algorithm (JWT_ALGORITHM): must be EdDSA or HS256, not {other:?}"
                ));
                None
            }
        };
        let jwt_secret = self
            .get("jwt_secret_key")
            .map(|s| SecretString::from(s.to_owned()));
        if jwt_algorithm == Some(JwtAlgorithm::HS256) {
            match &jwt_secret {
                None => p.0.push(
                    "jwt_secret_key (JWT_SECRET_KEY): required when JWT_ALGORITHM=HS256".into(),
                ),
                Some(s) if s.expose_secret().len() < 32 => {
                    p.0.push("jwt_secret_key (JWT_SECRET_KEY): must be at least 32 bytes".into())
                }
                Some(_) => {}
            }
        }
        let ttl_minutes: Option<u64> = p.parse_range(self, "jwt_expire_minutes", 1, 24 * 60);
        let master_key = self
            .get("master_key")
            .map(|s| SecretString::from(s.to_owned()));
        if master_key
            .as_ref()
            .is_some_and(|k| k.expose_secret().len() < 32)
        {
            p.0.push("master_key (AUTH_MASTER_KEY): must be at least 32 bytes".into());
        }
        let log_format = match self.get("log_format") {
            Some("pretty") => Some(LogFormat::Pretty),
            Some("json") => Some(LogFormat::Json),
            other => {
                p.0.push(format!(
                    "log_format (LOG_FORMAT): must be pretty or json, not {other:?}"
                ));
                None
            }
        };
        let argon2 = Argon2Settings {
            memory_kib: p.parse(self, "argon2_memory_kib").unwrap_or(0),
            iterations: p.parse(self, "argon2_iterations").unwrap_or(0),
            parallelism: p.parse(self, "argon2_parallelism").unwrap_or(0),
        };
        let argon2_read = p.0.iter().all(|m| !m.starts_with("argon2"));
        if let (true, Err(e)) = (argon2_read, argon2.params()) {
            p.0.push(format!("argon2_*: {e}"));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let max_in_flight = match self.get("hash_max_in_flight") {
            Some(_) => p.parse_range(self, "hash_max_in_flight", 1, 1024),
            None => Some(cores),
        };
        let queue_ms: Option<u64> = p.parse_range(self, "hash_queue_timeout_ms", 1, 60_000);
        let min_chars: Option<usize> = p.parse_range(self, "password_min_length", 1, 1024);
        let idle: Option<u64> = p.parse_range(self, "session_idle_seconds", 60, 366 * 86400);
        let absolute: Option<u64> =
            p.parse_range(self, "session_absolute_seconds", 60, 3660 * 86400);
        if idle.zip(absolute).is_some_and(|(i, a)| i > a) {
            p.0.push("session_idle_seconds must not exceed session_absolute_seconds".into());
        }
        let grace: Option<u64> = p.parse_range(self, "refresh_grace_seconds", 0, 300);
        let poll_ms: Option<u64> = p.parse_range(self, "revocation_poll_ms", 50, 60_000);
        let drain: Option<u64> = p.parse_range(self, "shutdown_drain_seconds", 0, 3600);
        let rotation_days: Option<u64> = p.parse_range(self, "key_rotation_days", 0, 3650);
        let propagation: Option<u64> =
            p.parse_range(self, "key_propagation_seconds", 0, 30 * 86400);
        let reload: Option<u64> = p.parse_range(self, "key_reload_seconds", 1, 86400);
        let token_cache: Option<usize> = p.parse_range(self, "token_cache_size", 0, 10_000_000);
        let mut trusted_proxies = Vec::new();
        for item in self
            .get("trusted_proxies")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match item.parse::<IpNet>() {
                Ok(net) => trusted_proxies.push(net),
                Err(e) => p.0.push(format!(
                    "trusted_proxies (AUTH_TRUSTED_PROXIES): {item:?}: {e}"
                )),
            }
        }

        if !p.0.is_empty() {
            return Err(p.0);
        }
        let (bind, port) = (
            bind.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port.unwrap_or(8080),
        );
        let issuer = self
            .get("issuer")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("http://{}", std::net::SocketAddr::new(bind, port)));
        // SQLite's pool holds readers only (writes have a connection of their own), in this
        // process: beyond a few, they add no throughput, and each keeps its own page cache and
        // prepared statements. PostgreSQL connections wait on the network.
        let default_pool = match auth_store::Backend::from_url(&database_url) {
            Some(auth_store::Backend::Sqlite) => 4,
            _ => 10,
        };
        Ok(Config {
            bind,
            port,
            database_url: SecretString::from(database_url),
            database_max_connections: database_max_connections.unwrap_or(default_pool),
            sqlite_cache_kib: sqlite_cache_kib.unwrap_or(auth_store::DEFAULT_SQLITE_CACHE_KIB),
            tokens: TokenSettings {
                issuer,
                audience,
                access_ttl: Duration::from_secs(ttl_minutes.unwrap_or(15) * 60),
            },
            jwt_algorithm: jwt_algorithm.unwrap_or(JwtAlgorithm::EdDSA),
            jwt_secret,
            master_key,
            log_format: log_format.unwrap_or(LogFormat::Pretty),
            argon2,
            hashing: HashingLimits {
                max_in_flight: max_in_flight.unwrap_or(cores),
                queue_timeout: Duration::from_millis(queue_ms.unwrap_or(1000)),
            },
            password_policy: PasswordPolicy {
                min_chars: min_chars.unwrap_or(8),
            },
            sessions: SessionSettings {
                idle: Duration::from_secs(idle.unwrap_or(604_800)),
                absolute: Duration::from_secs(absolute.unwrap_or(2_592_000)),
                grace: Duration::from_secs(grace.unwrap_or(10)),
            },
            revocation_poll: Duration::from_millis(poll_ms.unwrap_or(1000)),
            shutdown_drain: Duration::from_secs(drain.unwrap_or(10)),
            rotation: RotationSettings {
                every: rotation_days
                    .filter(|d| *d > 0)
                    .map(|d| Duration::from_secs(d * 86400)),
                propagation: Duration::from_secs(propagation.unwrap_or(600)),
            },
            key_reload: Duration::from_secs(reload.unwrap_or(30)),
            trusted_proxies,
            token_cache_size: token_cache.unwrap_or(16_384),
        })
    }
}

struct Problems(Vec<String>);

impl Problems {
    fn label(key: &str) -> String {
        let env = SETTINGS
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.env.join(" / "))
            .unwrap_or_default();
        format!("{key} ({env})")
    }

    fn parse<T: FromStr>(&mut self, raw: &RawConfig, key: &str) -> Option<T> {
        let value = raw.get(key)?;
        match value.trim().parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.0
                    .push(format!("{}: cannot read {value:?}", Self::label(key)));
                None
            }
        }
    }

    fn parse_range<T: FromStr + PartialOrd + std::fmt::Display>(
        &mut self,
        raw: &RawConfig,
        key: &str,
        min: T,
        max: T,
    ) -> Option<T> {
        let v = self.parse::<T>(raw, key)?;
        if v < min || v > max {
            self.0.push(format!(
                "{}: must be between {min} and {max}",
                Self::label(key)
            ));
            return None;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests;
