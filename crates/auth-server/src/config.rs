//! Configuration: one table of settings, each read from the environment (names compatible
//! with the services this one replaces), else from an optional TOML file, else a default;
//! then validated with one message per problem.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use auth_core::password::{Argon2Settings, HashingLimits, PasswordPolicy};
use auth_core::session::SessionSettings;
use auth_core::signing::RotationSettings;
use auth_core::token::{JwtAlgorithm, TokenSettings};
use secrecy::{ExposeSecret, SecretString};

/// One setting: its key in the TOML file, the environment variables that set it (first one
/// found wins), its default and whether its value is a secret.
pub struct Setting {
    pub key: &'static str,
    pub env: &'static [&'static str],
    pub default: Option<&'static str>,
    pub secret: bool,
    pub help: &'static str,
}

const fn setting(
    key: &'static str,
    env: &'static [&'static str],
    default: Option<&'static str>,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        env,
        default,
        secret: false,
        help,
    }
}

const fn secret(key: &'static str, env: &'static [&'static str], help: &'static str) -> Setting {
    Setting {
        key,
        env,
        default: None,
        secret: true,
        help,
    }
}

/// Every setting the service reads. The README's configuration table mirrors this list.
pub const SETTINGS: &[Setting] = &[
    setting(
        "bind",
        &["AUTH_BIND"],
        Some("127.0.0.1"),
        "address to listen on",
    ),
    setting(
        "port",
        &["PORT", "AUTH_PORT"],
        Some("8080"),
        "TCP port (0 picks a free one)",
    ),
    secret(
        "database_url",
        &["DATABASE_URL", "DATABASE_URI"],
        "sqlite://... or postgres://... (default sqlite://data/auth.db)",
    ),
    setting(
        "database_max_connections",
        &["AUTH_DATABASE_MAX_CONNECTIONS"],
        Some("10"),
        "connection pool size",
    ),
    setting(
        "issuer",
        &["AUTH_ISSUER"],
        None,
        "`iss` of issued tokens (default http://BIND:PORT)",
    ),
    setting(
        "audience",
        &["AUTH_AUDIENCE"],
        Some("api"),
        "`aud` of issued tokens",
    ),
    setting(
        "jwt_algorithm",
        &["JWT_ALGORITHM"],
        Some("EdDSA"),
        "EdDSA (keys in the database, JWKS) or HS256",
    ),
    secret(
        "jwt_secret_key",
        &["JWT_SECRET_KEY"],
        "HS256 shared secret, at least 32 bytes",
    ),
    setting(
        "jwt_expire_minutes",
        &["JWT_EXPIRE_MINUTES"],
        Some("15"),
        "access-token lifetime in minutes",
    ),
    secret(
        "master_key",
        &["AUTH_MASTER_KEY"],
        "encrypts private signing keys at rest (at least 32 bytes)",
    ),
    setting(
        "log_format",
        &["LOG_FORMAT"],
        Some("pretty"),
        "pretty or json",
    ),
    setting(
        "argon2_memory_kib",
        &["AUTH_ARGON2_MEMORY_KIB"],
        Some("19456"),
        "Argon2id memory cost",
    ),
    setting(
        "argon2_iterations",
        &["AUTH_ARGON2_ITERATIONS"],
        Some("2"),
        "Argon2id time cost",
    ),
    setting(
        "argon2_parallelism",
        &["AUTH_ARGON2_PARALLELISM"],
        Some("1"),
        "Argon2id lanes",
    ),
    setting(
        "hash_max_in_flight",
        &["AUTH_HASH_MAX_IN_FLIGHT"],
        None,
        "password hashes run at once (default: CPU cores)",
    ),
    setting(
        "hash_queue_timeout_ms",
        &["AUTH_HASH_QUEUE_TIMEOUT_MS"],
        Some("1000"),
        "wait for a hashing slot before answering 503",
    ),
    setting(
        "password_min_length",
        &["AUTH_PASSWORD_MIN_LENGTH"],
        Some("8"),
        "minimum password length in characters",
    ),
    setting(
        "session_idle_seconds",
        &["AUTH_SESSION_IDLE_SECONDS"],
        Some("604800"),
        "session idle timeout, extended by each refresh",
    ),
    setting(
        "session_absolute_seconds",
        &["AUTH_SESSION_ABSOLUTE_SECONDS"],
        Some("2592000"),
        "session absolute lifetime",
    ),
    setting(
        "refresh_grace_seconds",
        &["AUTH_REFRESH_GRACE_SECONDS"],
        Some("10"),
        "window in which a rotated refresh token gets the same successor back",
    ),
    setting(
        "revocation_poll_ms",
        &["AUTH_REVOCATION_POLL_MS"],
        Some("1000"),
        "how often revocations by other instances are read",
    ),
    setting(
        "key_rotation_days",
        &["AUTH_KEY_ROTATION_DAYS"],
        Some("30"),
        "automatic signing-key rotation period (0 = off)",
    ),
    setting(
        "key_propagation_seconds",
        &["AUTH_KEY_PROPAGATION_SECONDS"],
        Some("600"),
        "a new key is published this long before it signs",
    ),
    setting(
        "key_reload_seconds",
        &["AUTH_KEY_RELOAD_SECONDS"],
        Some("30"),
        "how often keys changed by other instances are picked up",
    ),
    setting(
        "trusted_proxies",
        &["AUTH_TRUSTED_PROXIES"],
        Some(""),
        "comma-separated IPs/CIDRs whose X-Forwarded-For is believed",
    ),
];

/// Environment variables that are not settings but are understood.
const OTHER_ENV: &[&str] = &["AUTH_CONFIG"];

const DEFAULT_DATABASE_URL: &str = "sqlite://data/auth.db";

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
    pub rotation: RotationSettings,
    pub key_reload: Duration,
    pub trusted_proxies: Vec<IpNet>,
}

/// Where each raw value came from, for `config check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Env(&'static str),
    File,
    Default,
}

/// Raw values before validation.
pub struct RawConfig {
    values: BTreeMap<&'static str, (String, Source)>,
    /// Non-fatal findings, such as unknown `AUTH_*` variables.
    pub warnings: Vec<String>,
}

impl RawConfig {
    /// Reads the file (if any) and the environment through `env`.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        env_names: &[String],
    ) -> Result<Self, Vec<String>> {
        let file_values = match file {
            Some(path) => read_file(path)?,
            None => BTreeMap::new(),
        };
        let mut values = BTreeMap::new();
        for s in SETTINGS {
            let from_env = s
                .env
                .iter()
                .find_map(|name| env(name).map(|v| (v, Source::Env(name))));
            let value = from_env
                .or_else(|| file_values.get(s.key).map(|v| (v.clone(), Source::File)))
                .or_else(|| s.default.map(|d| (d.to_owned(), Source::Default)));
            if let Some(v) = value {
                values.insert(s.key, v);
            }
        }
        let warnings = env_names
            .iter()
            .filter(|n| n.starts_with("AUTH_"))
            .filter(|n| {
                !OTHER_ENV.contains(&n.as_str())
                    && !SETTINGS.iter().any(|s| s.env.contains(&n.as_str()))
            })
            .map(|n| format!("unknown environment variable {n} is ignored"))
            .collect();
        Ok(Self { values, warnings })
    }

    /// Reads the process environment and the file named by `--config` or `AUTH_CONFIG`.
    pub fn from_process(config_file: Option<&Path>) -> Result<Self, Vec<String>> {
        let env_file = std::env::var_os("AUTH_CONFIG").map(std::path::PathBuf::from);
        let file = config_file.map(Path::to_path_buf).or(env_file);
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .collect();
        Self::load(file.as_deref(), &|n| std::env::var(n).ok(), &names)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// The effective settings, secrets redacted, one `key = value  # source` line each.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for s in SETTINGS {
            let (value, source) = match self.values.get(s.key) {
                Some((v, src)) if s.key == "database_url" => (format!("{:?}", redact_url(v)), *src),
                Some((_, src)) if s.secret => ("\"[redacted]\"".to_owned(), *src),
                Some((v, src)) => (format!("{v:?}"), *src),
                None if s.key == "database_url" => {
                    (format!("{DEFAULT_DATABASE_URL:?}"), Source::Default)
                }
                None => ("(unset)".to_owned(), Source::Default),
            };
            let source = match source {
                Source::Env(name) => format!("from {name}"),
                Source::File => "from the config file".to_owned(),
                Source::Default => "default".to_owned(),
            };
            out.push_str(&format!("{} = {value}  # {source}\n", s.key));
        }
        out
    }

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
        if let (Some(i), Some(a)) = (idle, absolute) {
            if i > a {
                p.0.push("session_idle_seconds must not exceed session_absolute_seconds".into());
            }
        }
        let grace: Option<u64> = p.parse_range(self, "refresh_grace_seconds", 0, 300);
        let poll_ms: Option<u64> = p.parse_range(self, "revocation_poll_ms", 50, 60_000);
        let rotation_days: Option<u64> = p.parse_range(self, "key_rotation_days", 0, 3650);
        let propagation: Option<u64> =
            p.parse_range(self, "key_propagation_seconds", 0, 30 * 86400);
        let reload: Option<u64> = p.parse_range(self, "key_reload_seconds", 1, 86400);
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
        Ok(Config {
            bind,
            port,
            database_url: SecretString::from(database_url),
            database_max_connections: database_max_connections.unwrap_or(10),
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
            rotation: RotationSettings {
                every: rotation_days
                    .filter(|d| *d > 0)
                    .map(|d| Duration::from_secs(d * 86400)),
                propagation: Duration::from_secs(propagation.unwrap_or(600)),
            },
            key_reload: Duration::from_secs(reload.unwrap_or(30)),
            trusted_proxies,
        })
    }
}

/// An IP network (`10.0.0.0/8`, `::1/128`) or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| "not an IP address".to_owned())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or("invalid prefix length")?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

/// A database URL with its password replaced, fit for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:[redacted]{}", &rest[at..])
        }
        None => url.to_owned(),
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

/// Reads a flat TOML file whose keys are the settings' keys.
fn read_file(path: &Path) -> Result<BTreeMap<String, String>, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("config file {}: {e}", path.display())])?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| vec![format!("config file {}: {e}", path.display())])?;
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, value) in table {
        if !SETTINGS.iter().any(|s| s.key == key) {
            problems.push(format!(
                "config file {}: unknown key {key:?}",
                path.display()
            ));
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                problems.push(format!(
                    "config file {}: {key} has an unsupported type ({})",
                    path.display(),
                    other.type_str()
                ));
                continue;
            }
        };
        values.insert(key, text);
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
