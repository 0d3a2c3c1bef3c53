//! Sessions: idle and absolute lifetimes, the refresh grace window, revocation polling.

use std::time::Duration;

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

pub(super) static SETTINGS: &[&dyn Definition] = &[&IDLE, &ABSOLUTE, &GRACE, &REVOCATION_POLL_MS];

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
    Some(Sessions {
        lifetimes: SessionSettings {
            idle: Duration::from_secs(idle?),
            absolute: Duration::from_secs(absolute?),
            grace: Duration::from_secs(grace?),
        },
        revocation_poll: Duration::from_millis(poll_ms?),
    })
}
