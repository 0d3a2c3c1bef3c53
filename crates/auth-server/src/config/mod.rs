//! Configuration: settings declared per area, each read from the environment (names compatible
//! with the services this one replaces), else from an optional flat TOML file, else a default;
//! each area validates its own part, and every problem is reported, one line each.

mod accounts;
mod database;
mod definition;
mod edge;
mod events;
mod keys;
mod limits;
mod logging;
mod mail;
mod net;
mod passwords;
mod raw;
mod server;
mod sessions;
mod smtp;
mod tokens;

pub use accounts::Accounts;
pub use database::Database;
pub use definition::{DefaultTo, Definition, Problems, Secrecy, Setting, Value};
pub use edge::Edge;
pub use events::{Broker, Events, Retries};
pub use keys::Keys;
pub use limits::{Quota, Quotas, RateLimits, RedisFailure, RedisLimits};
pub use logging::{AccessLog, LogFormat, Logging};
pub use mail::{Mail, MailTransport, TransportKind};
pub use net::{IpNet, redact_url};
pub use passwords::Passwords;
pub use raw::{RawConfig, Source};
pub use server::Server;
pub use sessions::Sessions;
pub use smtp::{Smtp, SmtpSecurity};
pub use tokens::{IssuerSource, Tokens};

/// The validated configuration, one part per area.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    pub edge: Edge,
    pub database: Database,
    pub tokens: Tokens,
    pub keys: Keys,
    pub passwords: Passwords,
    pub sessions: Sessions,
    pub accounts: Accounts,
    pub logging: Logging,
    pub limits: RateLimits,
    pub mail: Mail,
    pub events: Events,
}

/// The settings of each area, in the order `config check` lists them.
static AREAS: &[&[&dyn Definition]] = &[
    server::SETTINGS,
    edge::SETTINGS,
    database::SETTINGS,
    tokens::SETTINGS,
    keys::SETTINGS,
    passwords::SETTINGS,
    sessions::SETTINGS,
    accounts::SETTINGS,
    logging::SETTINGS,
    limits::SETTINGS,
    mail::SETTINGS,
    events::SETTINGS,
];

/// Every setting the service reads: what the environment, the file, `config check` and the
/// configuration table (docs/CONFIGURATION.md) go by.
pub fn settings() -> impl Iterator<Item = &'static dyn Definition> {
    AREAS.iter().flat_map(|area| area.iter().copied())
}

impl RawConfig {
    /// Validates every value, reporting all problems.
    pub fn validate(&self) -> Result<Config, Vec<String>> {
        let mut p = Problems::default();
        let server = server::load(self, &mut p);
        let edge = edge::load(self, &mut p);
        let database = database::load(self, &mut p);
        let tokens = tokens::load(self, &mut p, server.as_ref());
        let keys = keys::load(self, &mut p);
        let passwords = passwords::load(self, &mut p);
        let mut sessions = sessions::load(self, &mut p);
        let accounts = accounts::load(self, &mut p);
        // A login's rule, set in the accounts area.
        if let (Some(sessions), Some(accounts)) = (sessions.as_mut(), accounts.as_ref()) {
            sessions.lifetimes.require_verified_email = accounts.flows.require_verified_email;
        }
        let logging = logging::load(self, &mut p);
        let limits = limits::load(self, &mut p);
        let mail = mail::load(self, &mut p, tokens.as_ref());
        let events = events::load(self, &mut p);
        match (
            server, edge, database, tokens, keys, passwords, sessions, accounts, logging, limits,
            mail, events,
        ) {
            (
                Some(server),
                Some(edge),
                Some(database),
                Some(tokens),
                Some(keys),
                Some(passwords),
                Some(sessions),
                Some(accounts),
                Some(logging),
                Some(limits),
                Some(mail),
                Some(events),
            ) if p.is_empty() => Ok(Config {
                server,
                edge,
                database,
                tokens,
                keys,
                passwords,
                sessions,
                accounts,
                logging,
                limits,
                mail,
                events,
            }),
            _ => {
                debug_assert!(!p.is_empty(), "an area gave nothing and said no problem");
                Err(p.into_vec())
            }
        }
    }
}

#[cfg(test)]
mod mail_tests;
#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;
