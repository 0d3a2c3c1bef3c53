//! The database: its URL, the pool's size and SQLite's page cache.

use auth_store::Backend;
use secrecy::{ExposeSecret, SecretString};

use super::RawConfig;
use super::definition::{DefaultTo, Definition, Problems, Secrecy, Setting};

static URL: Setting<SecretString> = Setting {
    key: "database_url",
    env: &["DATABASE_URL", "DATABASE_URI"],
    default: DefaultTo::Value(|| SecretString::from("sqlite://data/auth.db")),
    range: None,
    secrecy: Secrecy::UrlPassword,
    help: "`sqlite://PATH` or `postgres://...`; the password is never logged",
};

static MAX_CONNECTIONS: Setting<u32> = Setting {
    key: "database_max_connections",
    env: &["AUTH_DATABASE_MAX_CONNECTIONS"],
    default: DefaultTo::Derived("`10` PostgreSQL, `4` SQLite"),
    range: Some(1..=1000),
    secrecy: Secrecy::Public,
    help: "connection pool size (SQLite: readers; writes use one more connection of their own)",
};

static SQLITE_CACHE_KIB: Setting<u32> = Setting {
    key: "sqlite_cache_kib",
    env: &["AUTH_SQLITE_CACHE_KIB"],
    default: DefaultTo::Value(|| auth_store::DEFAULT_SQLITE_CACHE_KIB),
    range: Some(16..=4_194_304),
    secrecy: Secrecy::Public,
    help: "SQLite only: page cache of each connection, in KiB",
};

pub(super) static SETTINGS: &[&dyn Definition] = &[&URL, &MAX_CONNECTIONS, &SQLITE_CACHE_KIB];

#[derive(Debug, Clone)]
pub struct Database {
    pub url: SecretString,
    pub max_connections: u32,
    /// SQLite: page cache of each connection, in KiB.
    pub sqlite_cache_kib: u32,
}

pub(super) fn load(raw: &RawConfig, p: &mut Problems) -> Option<Database> {
    let url = URL.value(raw, p);
    let backend = url.as_ref().and_then(|url| {
        let backend = Backend::from_url(url.expose_secret());
        if backend.is_none() {
            p.add(&URL, "must start with sqlite: or postgres://");
        }
        backend
    });
    let max_connections = MAX_CONNECTIONS.optional(raw, p);
    let sqlite_cache_kib = SQLITE_CACHE_KIB.value(raw, p);
    Some(Database {
        max_connections: max_connections?.unwrap_or(default_pool_size(backend?)),
        sqlite_cache_kib: sqlite_cache_kib?,
        url: url?,
    })
}

/// SQLite's pool holds readers only (writes have a connection of their own), in this process:
/// beyond a few, they add no throughput, and each keeps its own page cache and prepared
/// statements. PostgreSQL connections wait on the network.
fn default_pool_size(backend: Backend) -> u32 {
    match backend {
        Backend::Sqlite => 4,
        Backend::Postgres => 10,
    }
}
