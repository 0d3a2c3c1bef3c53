//! Signing keys: the master key that seals them at rest, rotation, and reloading.

use std::time::Duration;

use auth_core::signing::RotationSettings;
use secrecy::{ExposeSecret, SecretString};

use super::RawConfig;
use super::definition::{DefaultTo, Definition, Problems, Secrecy, Setting};

const DAY: u64 = 86_400;

static MASTER_KEY: Setting<SecretString> = Setting {
    key: "master_key",
    env: &["AUTH_MASTER_KEY"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::Secret,
    help: "encrypts private signing keys at rest (at least 32 bytes)",
};

static ROTATION_DAYS: Setting<u64> = Setting {
    key: "key_rotation_days",
    env: &["AUTH_KEY_ROTATION_DAYS"],
    default: DefaultTo::Value(|| {
        RotationSettings::default()
            .every
            .map_or(0, |every| every.as_secs() / DAY)
    }),
    range: Some(0..=3650),
    secrecy: Secrecy::Public,
    help: "automatic signing-key rotation period (`0` = off)",
};

static PROPAGATION: Setting<u64> = Setting {
    key: "key_propagation_seconds",
    env: &["AUTH_KEY_PROPAGATION_SECONDS"],
    default: DefaultTo::Value(|| RotationSettings::default().propagation.as_secs()),
    range: Some(0..=30 * DAY),
    secrecy: Secrecy::Public,
    help: "a new key is published this long before it signs",
};

static RELOAD: Setting<u64> = Setting {
    key: "key_reload_seconds",
    env: &["AUTH_KEY_RELOAD_SECONDS"],
    default: DefaultTo::Value(|| 30),
    range: Some(1..=DAY),
    secrecy: Secrecy::Public,
    help: "how often keys changed by other instances are picked up",
};

pub(super) static SETTINGS: &[&dyn Definition] =
    &[&MASTER_KEY, &ROTATION_DAYS, &PROPAGATION, &RELOAD];

#[derive(Debug, Clone)]
pub struct Keys {
    /// Seals private signing keys at rest; without it they are stored plain.
    pub master_key: Option<SecretString>,
    pub rotation: RotationSettings,
    /// How often due keys are promoted and keys changed by other instances picked up.
    pub reload: Duration,
}

pub(super) fn load(raw: &RawConfig, p: &mut Problems) -> Option<Keys> {
    let master_key = MASTER_KEY.optional(raw, p);
    if let Some(Some(key)) = &master_key
        && key.expose_secret().len() < 32
    {
        p.add(&MASTER_KEY, "must be at least 32 bytes");
    }
    let days = ROTATION_DAYS.value(raw, p);
    let propagation = PROPAGATION.value(raw, p);
    let reload = RELOAD.value(raw, p);
    Some(Keys {
        master_key: master_key?,
        rotation: RotationSettings {
            every: Some(days?)
                .filter(|d| *d > 0)
                .map(|d| Duration::from_secs(d * DAY)),
            propagation: Duration::from_secs(propagation?),
        },
        reload: Duration::from_secs(reload?),
    })
}
