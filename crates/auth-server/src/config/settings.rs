//! The table of settings and how raw values are gathered: environment first (names compatible
//! with the services this one replaces), then the TOML file, then the default.

use std::collections::BTreeMap;
use std::path::Path;

use super::redact_url;

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
        None,
        "connection pool size (default 10; SQLite 4 readers, writes use one more)",
    ),
    setting(
        "sqlite_cache_kib",
        &["AUTH_SQLITE_CACHE_KIB"],
        Some("256"),
        "SQLite page cache of each connection, in KiB",
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
        "shutdown_drain_seconds",
        &["AUTH_SHUTDOWN_DRAIN_SECONDS"],
        Some("10"),
        "on shutdown, how long requests whose clients left may still run before the pool closes",
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
    setting(
        "token_cache_size",
        &["AUTH_TOKEN_CACHE_SIZE"],
        Some("16384"),
        "verified access tokens remembered (0 = verify every time)",
    ),
];

/// Environment variables that are not settings but are understood.
const OTHER_ENV: &[&str] = &["AUTH_CONFIG"];

pub(super) const DEFAULT_DATABASE_URL: &str = "sqlite://data/auth.db";
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

    pub(super) fn get(&self, key: &str) -> Option<&str> {
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
