//! Passwords: Argon2id's cost, how much hashing runs at once, and the policy (length, history).

use std::time::Duration;

use auth_core::password::{Argon2Settings, HashingLimits, PasswordPolicy};

use super::RawConfig;
use super::definition::{DefaultTo, Definition, Problems, Secrecy, Setting};

static ARGON2_MEMORY_KIB: Setting<u32> = Setting {
    key: "argon2_memory_kib",
    env: &["AUTH_ARGON2_MEMORY_KIB"],
    default: DefaultTo::Value(|| Argon2Settings::default().memory_kib),
    range: None,
    secrecy: Secrecy::Public,
    help: "Argon2id memory cost",
};

static ARGON2_ITERATIONS: Setting<u32> = Setting {
    key: "argon2_iterations",
    env: &["AUTH_ARGON2_ITERATIONS"],
    default: DefaultTo::Value(|| Argon2Settings::default().iterations),
    range: None,
    secrecy: Secrecy::Public,
    help: "Argon2id time cost",
};

static ARGON2_PARALLELISM: Setting<u32> = Setting {
    key: "argon2_parallelism",
    env: &["AUTH_ARGON2_PARALLELISM"],
    default: DefaultTo::Value(|| Argon2Settings::default().parallelism),
    range: None,
    secrecy: Secrecy::Public,
    help: "Argon2id lanes",
};

static MAX_IN_FLIGHT: Setting<usize> = Setting {
    key: "hash_max_in_flight",
    env: &["AUTH_HASH_MAX_IN_FLIGHT"],
    default: DefaultTo::Derived("CPU cores"),
    range: Some(1..=1024),
    secrecy: Secrecy::Public,
    help: "password hashes computed at once",
};

static QUEUE_TIMEOUT_MS: Setting<u64> = Setting {
    key: "hash_queue_timeout_ms",
    env: &["AUTH_HASH_QUEUE_TIMEOUT_MS"],
    default: DefaultTo::Value(|| 1000),
    range: Some(1..=60_000),
    secrecy: Secrecy::Public,
    help: "how long a request waits for a hashing slot before it gets `503`",
};

static MIN_LENGTH: Setting<usize> = Setting {
    key: "password_min_length",
    env: &["AUTH_PASSWORD_MIN_LENGTH"],
    default: DefaultTo::Value(|| PasswordPolicy::default().min_chars),
    range: Some(1..=1024),
    secrecy: Secrecy::Public,
    help: "minimum length of a new password in characters (NFKC); SP 800-63B-4 asks 15 of a password that is the only factor",
};

static HISTORY: Setting<usize> = Setting {
    key: "password_history",
    env: &["AUTH_PASSWORD_HISTORY"],
    default: DefaultTo::Value(|| PasswordPolicy::default().history),
    range: Some(0..=PasswordPolicy::MAX_HISTORY),
    secrecy: Secrecy::Public,
    help: "a new password may not be any of the account's last N (the current one included); each costs one hash verification per change",
};

pub(super) static SETTINGS: &[&dyn Definition] = &[
    &ARGON2_MEMORY_KIB,
    &ARGON2_ITERATIONS,
    &ARGON2_PARALLELISM,
    &MAX_IN_FLIGHT,
    &QUEUE_TIMEOUT_MS,
    &MIN_LENGTH,
    &HISTORY,
];

#[derive(Debug, Clone)]
pub struct Passwords {
    pub argon2: Argon2Settings,
    pub hashing: HashingLimits,
    pub policy: PasswordPolicy,
}

pub(super) fn load(raw: &RawConfig, p: &mut Problems) -> Option<Passwords> {
    let memory_kib = ARGON2_MEMORY_KIB.value(raw, p);
    let iterations = ARGON2_ITERATIONS.value(raw, p);
    let parallelism = ARGON2_PARALLELISM.value(raw, p);
    let argon2 = match (memory_kib, iterations, parallelism) {
        (Some(memory_kib), Some(iterations), Some(parallelism)) => {
            let argon2 = Argon2Settings {
                memory_kib,
                iterations,
                parallelism,
            };
            match argon2.params() {
                Ok(_) => Some(argon2),
                Err(e) => {
                    p.add_text(format!("argon2_*: {e}"));
                    None
                }
            }
        }
        _ => None,
    };
    let max_in_flight = MAX_IN_FLIGHT.optional(raw, p);
    let queue_ms = QUEUE_TIMEOUT_MS.value(raw, p);
    let min_chars = MIN_LENGTH.value(raw, p);
    let history = HISTORY.value(raw, p);
    Some(Passwords {
        argon2: argon2?,
        hashing: HashingLimits {
            max_in_flight: max_in_flight?.unwrap_or_else(cpu_cores),
            queue_timeout: Duration::from_millis(queue_ms?),
        },
        policy: PasswordPolicy {
            min_chars: min_chars?,
            history: history?,
        },
    })
}

/// The default of `hash_max_in_flight`: one hash per core keeps every core busy and no more.
fn cpu_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
