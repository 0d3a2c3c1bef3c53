//! Rate limits: one quota (`N/PERIOD` or `off`) per limited action and key, where they are kept
//! (this process's memory, or Redis shared by every instance) and what happens when Redis is
//! away.

use std::ops::RangeInclusive;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::RawConfig;
use super::definition::{DefaultTo, Definition, Problems, Secrecy, Setting, Value};

/// `count` requests per `period`, all of them at once at most (GCRA with a burst of `count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub count: u32,
    pub period: Duration,
}

impl Quota {
    pub const MAX_COUNT: u32 = 1_000_000;
    pub const MAX_PERIOD: Duration = Duration::from_secs(86_400);

    const fn new(count: u32, seconds: u64) -> Option<Self> {
        Some(Self {
            count,
            period: Duration::from_secs(seconds),
        })
    }

    /// Reads `N/PERIOD` (`10/60s`, `5/1m`, `100/1h`, `1000/1d`).
    fn parse(text: &str) -> Result<Self, String> {
        let Some((count, period)) = text.split_once('/') else {
            return Err(format!(
                "must be `N/PERIOD` (like `10/60s`, `5/1m`, `100/1h`) or `off`, not {text:?}"
            ));
        };
        let count = count
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=Self::MAX_COUNT).contains(n))
            .ok_or_else(|| {
                format!(
                    "{text:?}: the count must be a whole number from 1 to {}",
                    Self::MAX_COUNT
                )
            })?;
        let period = period.trim();
        let bad_period = || {
            format!(
                "{text:?}: the period must be a whole number followed by s, m, h or d, from 1s to 1d"
            )
        };
        let (amount, unit) = period.split_at(period.len().saturating_sub(1));
        let unit = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad_period()),
        };
        let seconds = amount
            .parse::<u64>()
            .ok()
            .and_then(|a| a.checked_mul(unit))
            .filter(|s| (1..=Self::MAX_PERIOD.as_secs()).contains(s))
            .ok_or_else(bad_period)?;
        Ok(Self {
            count,
            period: Duration::from_secs(seconds),
        })
    }
}

impl std::fmt::Display for Quota {
    /// In the largest unit that divides the period: `300s` shows as `5m`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.period.as_secs();
        let (amount, unit) = [(86_400, "d"), (3600, "h"), (60, "m")]
            .into_iter()
            .find(|(size, _)| s.is_multiple_of(*size))
            .map_or((s, "s"), |(size, unit)| (s / size, unit));
        write!(f, "{}/{amount}{unit}", self.count)
    }
}

/// A quota, or `off`.
impl Value for Option<Quota> {
    fn read(text: &str) -> Result<Self, Vec<String>> {
        match text.trim() {
            "off" => Ok(None),
            other => Quota::parse(other).map(Some).map_err(|e| vec![e]),
        }
    }

    fn show(&self) -> String {
        self.map_or_else(|| "off".to_owned(), |q| q.to_string())
    }

    fn within(&self, _: &RangeInclusive<Self>) -> bool {
        true
    }
}

/// What a rate-limited request gets while Redis does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisFailure {
    /// This instance's in-memory limiter, until Redis answers again.
    Memory,
    /// No limit.
    Open,
    /// `503 unavailable` with `Retry-After`.
    Closed,
}

macro_rules! quota_setting {
    ($name:ident, $key:literal, $env:literal, $default:expr, $help:literal) => {
        static $name: Setting<Option<Quota>> = Setting {
            key: $key,
            env: &[$env],
            default: DefaultTo::Value(|| $default),
            range: None,
            secrecy: Secrecy::Public,
            help: $help,
        };
    };
}

quota_setting!(
    LOGIN_IP,
    "rate_login_ip",
    "AUTH_RATE_LOGIN_IP",
    Quota::new(20, 60),
    "logins per client IP (`N/PERIOD` or `off`; also `POST /auth/token/`)"
);
quota_setting!(
    LOGIN_ACCOUNT,
    "rate_login_account",
    "AUTH_RATE_LOGIN_ACCOUNT",
    Quota::new(10, 300),
    "logins per account identifier (tenant + normalised email or username), whoever sends them"
);
quota_setting!(
    SIGNUP_IP,
    "rate_signup_ip",
    "AUTH_RATE_SIGNUP_IP",
    Quota::new(20, 3600),
    "sign-ups per client IP (also `POST /auth/register`)"
);
quota_setting!(
    REFRESH_IP,
    "rate_refresh_ip",
    "AUTH_RATE_REFRESH_IP",
    Quota::new(300, 300),
    "refresh-token rotations per client IP (also `POST /auth/token/refresh/`)"
);
quota_setting!(
    RESET_ACCOUNT,
    "rate_reset_account",
    "AUTH_RATE_RESET_ACCOUNT",
    Quota::new(3, 3600),
    "`POST /auth/password-reset/request` and `POST /auth/verify-email/request` per address (tenant + normalised email, whether or not an account has it)"
);
quota_setting!(
    RESET_IP,
    "rate_reset_ip",
    "AUTH_RATE_RESET_IP",
    Quota::new(20, 3600),
    "`POST /auth/password-reset/request` and `POST /auth/verify-email/request` per client IP"
);

static MEMORY_MAX_KEYS: Setting<usize> = Setting {
    key: "rate_memory_max_keys",
    env: &["AUTH_RATE_MEMORY_MAX_KEYS"],
    default: DefaultTo::Value(|| 100_000),
    range: Some(64..=100_000_000),
    secrecy: Secrecy::Public,
    help: "keys each in-memory limit keeps at most (about 64 bytes each); past it the nearest to a full budget are forgotten",
};

static REDIS_URL: Setting<SecretString> = Setting {
    key: "redis_url",
    env: &["REDIS_URL"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::UrlPassword,
    help: "`redis://[user:password@]host:port/db`: rate limits shared by every instance (unset: in this process's memory)",
};

static REDIS_TIMEOUT_MS: Setting<u64> = Setting {
    key: "rate_redis_timeout_ms",
    env: &["AUTH_RATE_REDIS_TIMEOUT_MS"],
    default: DefaultTo::Value(|| 100),
    range: Some(1..=10_000),
    secrecy: Secrecy::Public,
    help: "how long a rate-limit check waits for Redis before `rate_redis_failure` applies",
};

static REDIS_FAILURE: Setting<RedisFailure> = Setting {
    key: "rate_redis_failure",
    env: &["AUTH_RATE_REDIS_FAILURE"],
    default: DefaultTo::Value(|| RedisFailure::Memory),
    range: None,
    secrecy: Secrecy::Public,
    help: "while Redis does not answer: `memory` (this instance's own limiter), `open` (no limit) or `closed` (`503`)",
};

static REDIS_PREFIX: Setting<String> = Setting {
    key: "rate_redis_prefix",
    env: &["AUTH_RATE_REDIS_PREFIX"],
    default: DefaultTo::Value(|| "auth-service:rate:".to_owned()),
    range: None,
    secrecy: Secrecy::Public,
    help: "prefix of the Redis keys of the rate limits (instances sharing one budget use the same)",
};

pub(super) static SETTINGS: &[&dyn Definition] = &[
    &LOGIN_IP,
    &LOGIN_ACCOUNT,
    &SIGNUP_IP,
    &REFRESH_IP,
    &RESET_ACCOUNT,
    &RESET_IP,
    &MEMORY_MAX_KEYS,
    &REDIS_URL,
    &REDIS_TIMEOUT_MS,
    &REDIS_FAILURE,
    &REDIS_PREFIX,
];

/// The quota of each limit (`None`: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub login_ip: Option<Quota>,
    pub login_account: Option<Quota>,
    pub signup_ip: Option<Quota>,
    pub refresh_ip: Option<Quota>,
    pub reset_account: Option<Quota>,
    pub reset_ip: Option<Quota>,
}

/// Where the limits are shared, when they are.
#[derive(Debug, Clone)]
pub struct RedisLimits {
    pub url: SecretString,
    pub timeout: Duration,
    pub failure: RedisFailure,
    pub prefix: String,
}

#[derive(Debug, Clone)]
pub struct RateLimits {
    pub quotas: Quotas,
    pub memory_max_keys: usize,
    pub redis: Option<RedisLimits>,
}

pub(super) fn load(raw: &RawConfig, p: &mut Problems) -> Option<RateLimits> {
    let login_ip = LOGIN_IP.value(raw, p);
    let login_account = LOGIN_ACCOUNT.value(raw, p);
    let signup_ip = SIGNUP_IP.value(raw, p);
    let refresh_ip = REFRESH_IP.value(raw, p);
    let reset_account = RESET_ACCOUNT.value(raw, p);
    let reset_ip = RESET_IP.value(raw, p);
    let memory_max_keys = MEMORY_MAX_KEYS.value(raw, p);
    let url = REDIS_URL.optional(raw, p);
    let timeout = REDIS_TIMEOUT_MS.value(raw, p);
    let failure = REDIS_FAILURE.value(raw, p);
    let prefix = REDIS_PREFIX.value(raw, p);
    if let Some(Some(url)) = &url
        && let Err(problem) = check_redis_url(url.expose_secret())
    {
        p.add(&REDIS_URL, problem);
        return None;
    }
    if prefix.as_ref().is_some_and(|s| s.is_empty()) {
        p.add(&REDIS_PREFIX, "must not be empty");
        return None;
    }
    let (timeout, failure, prefix) = (timeout?, failure?, prefix?);
    Some(RateLimits {
        quotas: Quotas {
            login_ip: login_ip?,
            login_account: login_account?,
            signup_ip: signup_ip?,
            refresh_ip: refresh_ip?,
            reset_account: reset_account?,
            reset_ip: reset_ip?,
        },
        memory_max_keys: memory_max_keys?,
        redis: url?.map(|url| RedisLimits {
            url,
            timeout: Duration::from_millis(timeout),
            failure,
            prefix,
        }),
    })
}

/// A URL the Redis client can use, said without the URL (it may hold a password).
fn check_redis_url(url: &str) -> Result<(), String> {
    if !url.starts_with("redis://") && !url.starts_with("redis+unix://") {
        return Err(
            "must be a `redis://` (or `redis+unix://`) URL; TLS (`rediss://`) is not built in"
                .into(),
        );
    }
    redis::Client::open(url)
        .map(drop)
        .map_err(|_| "cannot read the URL".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::load;

    fn quota(text: &str) -> Result<Option<Quota>, Vec<String>> {
        <Option<Quota>>::read(text)
    }

    #[test]
    fn quotas_read_as_count_over_period_or_off_and_show_back() {
        let cases = [
            ("10/60s", Some((10, 60)), "10/1m"),
            ("5/1m", Some((5, 60)), "5/1m"),
            ("100/1h", Some((100, 3600)), "100/1h"),
            ("3/90s", Some((3, 90)), "3/90s"),
            (" 5 / 1m ", Some((5, 60)), "5/1m"),
            ("1000/1d", Some((1000, 86_400)), "1000/1d"),
            ("off", None, "off"),
        ];
        for (text, want, shown) in cases {
            let got = quota(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            let want = want.map(|(count, s)| Quota {
                count,
                period: Duration::from_secs(s),
            });
            assert_eq!(got, want, "{text}");
            assert_eq!(got.show(), shown, "{text}");
            assert_eq!(quota(&got.show()).unwrap(), got, "{text} reads back");
        }
    }

    #[test]
    fn each_bad_quota_is_one_clear_problem() {
        let cases = [
            (
                "ten/60s",
                "the count must be a whole number from 1 to 1000000",
            ),
            (
                "0/60s",
                "the count must be a whole number from 1 to 1000000",
            ),
            (
                "2000000/1h",
                "the count must be a whole number from 1 to 1000000",
            ),
            (
                "10/60",
                "the period must be a whole number followed by s, m, h or d",
            ),
            (
                "10/0s",
                "the period must be a whole number followed by s, m, h or d",
            ),
            (
                "10/25h",
                "the period must be a whole number followed by s, m, h or d",
            ),
            (
                "10/1w",
                "the period must be a whole number followed by s, m, h or d",
            ),
            (
                "10/-1s",
                "the period must be a whole number followed by s, m, h or d",
            ),
            (
                "10",
                "must be `N/PERIOD` (like `10/60s`, `5/1m`, `100/1h`) or `off`",
            ),
            ("", "must be `N/PERIOD`"),
            ("Off", "must be `N/PERIOD`"),
        ];
        for (text, message) in cases {
            let problems = load(&[("AUTH_RATE_LOGIN_IP", text)])
                .validate()
                .expect_err(text);
            assert_eq!(problems.len(), 1, "{text}: {problems:?}");
            assert!(
                problems[0].starts_with("rate_login_ip (AUTH_RATE_LOGIN_IP): ")
                    && problems[0].contains(message),
                "{text}: {problems:?}"
            );
        }
    }

    #[test]
    fn limits_are_in_memory_by_default_and_each_can_be_turned_off() {
        let config = load(&[]).validate().unwrap();
        let limits = config.limits;
        assert!(limits.redis.is_none());
        assert_eq!(limits.quotas.login_ip.unwrap().to_string(), "20/1m");
        assert_eq!(limits.quotas.login_account.unwrap().to_string(), "10/5m");
        let off = load(&[
            ("AUTH_RATE_SIGNUP_IP", "off"),
            ("AUTH_RATE_RESET_IP", "off"),
        ])
        .validate()
        .unwrap()
        .limits
        .quotas;
        assert_eq!((off.signup_ip, off.reset_ip), (None, None));
        assert!(off.login_ip.is_some());
    }

    #[test]
    fn redis_settings_are_read_and_its_url_checked_without_being_shown() {
        let config = load(&[
            ("REDIS_URL", "redis://:hunter2@cache.internal:6380/2"),
            ("AUTH_RATE_REDIS_FAILURE", "closed"),
            ("AUTH_RATE_REDIS_TIMEOUT_MS", "250"),
        ])
        .validate()
        .unwrap();
        let redis = config.limits.redis.expect("redis");
        assert_eq!(redis.failure, RedisFailure::Closed);
        assert_eq!(redis.timeout, Duration::from_millis(250));
        assert_eq!(redis.prefix, "auth-service:rate:");
        let described = load(&[("REDIS_URL", "redis://:hunter2@cache.internal:6380/2")]).describe();
        assert!(!described.contains("hunter2"), "{described}");

        for (vars, problem) in [
            (
                [("REDIS_URL", "rediss://:hunter2@cache:6380")],
                "redis_url (REDIS_URL): must be a `redis://`",
            ),
            (
                [("REDIS_URL", "redis://:hunter2@cache:notaport")],
                "redis_url (REDIS_URL): cannot read the URL",
            ),
            (
                [("AUTH_RATE_REDIS_FAILURE", "fail")],
                "rate_redis_failure (AUTH_RATE_REDIS_FAILURE): must be memory or open or closed",
            ),
            (
                [("AUTH_RATE_REDIS_TIMEOUT_MS", "0")],
                "rate_redis_timeout_ms (AUTH_RATE_REDIS_TIMEOUT_MS): must be between 1 and 10000",
            ),
        ] {
            let problems = load(&vars).validate().expect_err(problem);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].starts_with(problem), "{problems:?}");
            assert!(!problems[0].contains("hunter2"), "{problems:?}");
        }
    }
}
