//! Sessions: idle and absolute lifetimes, the refresh grace window, revocation polling, and
//! the lockout of accounts after failed logins.

use std::time::Duration;

use auth_core::lockout::LockoutPolicy;
use auth_core::session::SessionSettings;

use super::RawConfig;
use super::definition::{DefaultTo, Definition, Problems, Secrecy, Setting};

const DAY: u64 = 86_400;

static IDLE: Setting<u64> = Setting {
    key: "session_idle_seconds",
    env: &["AUTH_SESSION_IDLE_SECONDS"],
    default: DefaultTo::Value(|| SessionSettings::default().idle.as_secs()),
    range: Some(60..=366 * DAY),
    secrecy: Secrecy::Public,
    help: "session idle timeout, extended by each refresh",
};

static ABSOLUTE: Setting<u64> = Setting {
    key: "session_absolute_seconds",
    env: &["AUTH_SESSION_ABSOLUTE_SECONDS"],
    default: DefaultTo::Value(|| SessionSettings::default().absolute.as_secs()),
    range: Some(60..=3660 * DAY),
    secrecy: Secrecy::Public,
    help: "session absolute lifetime",
};

static GRACE: Setting<u64> = Setting {
    key: "refresh_grace_seconds",
    env: &["AUTH_REFRESH_GRACE_SECONDS"],
    default: DefaultTo::Value(|| SessionSettings::default().grace.as_secs()),
    range: Some(0..=300),
    secrecy: Secrecy::Public,
    help: "window in which a rotated refresh token gets the same successor back",
};

static REVOCATION_POLL_MS: Setting<u64> = Setting {
    key: "revocation_poll_ms",
    env: &["AUTH_REVOCATION_POLL_MS"],
    default: DefaultTo::Value(|| 1000),
    range: Some(50..=60_000),
    secrecy: Secrecy::Public,
    help: "how often revocations by other instances are read",
};

static LOCKOUT_THRESHOLD: Setting<u64> = Setting {
    key: "lockout_threshold",
    env: &["AUTH_LOCKOUT_THRESHOLD"],
    default: DefaultTo::Value(|| LockoutPolicy::default().threshold.into()),
    range: Some(0..=1000),
    secrecy: Secrecy::Public,
    help: "consecutive failed logins that lock an account",
};

static LOCKOUT_BASE: Setting<u64> = Setting {
    key: "lockout_base_seconds",
    env: &["AUTH_LOCKOUT_BASE_SECONDS"],
    default: DefaultTo::Value(|| LockoutPolicy::default().base.as_secs()),
    range: Some(1..=DAY),
    secrecy: Secrecy::Public,
    help: "length of an account's first lock",
};

static LOCKOUT_MAX: Setting<u64> = Setting {
    key: "lockout_max_seconds",
    env: &["AUTH_LOCKOUT_MAX_SECONDS"],
    default: DefaultTo::Value(|| LockoutPolicy::default().max.as_secs()),
    range: Some(1..=7 * DAY),
    secrecy: Secrecy::Public,
    help: "longest lock",
};

pub(super) static SETTINGS: &[&dyn Definition] = &[
    &IDLE,
    &ABSOLUTE,
    &GRACE,
    &REVOCATION_POLL_MS,
    &LOCKOUT_THRESHOLD,
    &LOCKOUT_BASE,
    &LOCKOUT_MAX,
];

#[derive(Debug, Clone)]
pub struct Sessions {
    /// Lifetimes of sessions and the reuse grace window.
    pub lifetimes: SessionSettings,
    /// How often sessions revoked by other instances are read.
    pub revocation_poll: Duration,
}

pub(super) fn load(raw: &RawConfig, p: &mut Problems) -> Option<Sessions> {
    let idle = IDLE.value(raw, p);
    let absolute = ABSOLUTE.value(raw, p);
    if let (Some(idle), Some(absolute)) = (idle, absolute)
        && idle > absolute
    {
        p.add(&IDLE, "must not exceed session_absolute_seconds");
    }
    let grace = GRACE.value(raw, p);
    let poll_ms = REVOCATION_POLL_MS.value(raw, p);
    let threshold = LOCKOUT_THRESHOLD.value(raw, p);
    let base = LOCKOUT_BASE.value(raw, p);
    let max = LOCKOUT_MAX.value(raw, p);
    if let (Some(base), Some(max)) = (base, max)
        && base > max
    {
        p.add(&LOCKOUT_BASE, "must not exceed lockout_max_seconds");
    }
    Some(Sessions {
        lifetimes: SessionSettings {
            idle: Duration::from_secs(idle?),
            absolute: Duration::from_secs(absolute?),
            grace: Duration::from_secs(grace?),
            lockout: LockoutPolicy {
                threshold: threshold? as u32,
                base: Duration::from_secs(base?),
                max: Duration::from_secs(max?),
            },
            // Set from the accounts area (`require_verified_email`).
            require_verified_email: false,
        },
        revocation_poll: Duration::from_millis(poll_ms?),
    })
}
