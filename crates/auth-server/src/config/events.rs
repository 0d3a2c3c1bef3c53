//! Events: the broker the event outbox is relayed to (`EVENTS_URL`: RabbitMQ or NATS
//! JetStream; unset, events stay in the table for `GET /auth/admin/events`), how the relays
//! poll, retry and park, and how long delivered events are kept.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::RawConfig;
use super::definition::{DefaultTo, Definition, Problems, Secrecy, Setting};

static URL: Setting<SecretString> = Setting {
    key: "events_url",
    env: &["EVENTS_URL"],
    default: DefaultTo::Nothing,
    range: None,
    secrecy: Secrecy::UrlPassword,
    help: "`amqp://user:password@host:5672/vhost` (RabbitMQ, `amqps://` with TLS) or `nats://[user:password@]host:4222` (NATS JetStream, `tls://` with TLS): where events are published (unset: they stay in the outbox table, listed by `GET /auth/admin/events`)",
};

static EXCHANGE: Setting<String> = Setting {
    key: "events_exchange",
    env: &["AUTH_EVENTS_EXCHANGE"],
    default: DefaultTo::Value(|| "auth.events".into()),
    range: None,
    secrecy: Secrecy::Public,
    help: "RabbitMQ: the durable topic exchange events are published to (routing key = event type)",
};

static STREAM: Setting<String> = Setting {
    key: "events_stream",
    env: &["AUTH_EVENTS_STREAM"],
    default: DefaultTo::Value(|| "AUTH_EVENTS".into()),
    range: None,
    secrecy: Secrecy::Public,
    help: "NATS: the JetStream stream over `auth.>` that is created or updated at start (subject = event type)",
};

static POLL_MS: Setting<u64> = Setting {
    key: "outbox_poll_ms",
    env: &["AUTH_OUTBOX_POLL_MS"],
    default: DefaultTo::Value(|| 1000),
    range: Some(10..=60_000),
    secrecy: Secrecy::Public,
    help: "how often a relay looks for entries written by other instances (its own instance's commits wake it at once)",
};

static MAX_ATTEMPTS: Setting<u32> = Setting {
    key: "outbox_max_attempts",
    env: &["AUTH_OUTBOX_MAX_ATTEMPTS"],
    default: DefaultTo::Value(|| 10),
    range: Some(1..=1000),
    secrecy: Secrecy::Public,
    help: "failed deliveries of an entry before it is parked (re-queued with `POST /auth/admin/events/{id}/retry`); a broker that cannot be reached counts against no entry",
};

static BACKOFF_BASE_MS: Setting<u64> = Setting {
    key: "outbox_backoff_base_ms",
    env: &["AUTH_OUTBOX_BACKOFF_BASE_MS"],
    default: DefaultTo::Value(|| 1000),
    range: Some(10..=3_600_000),
    secrecy: Secrecy::Public,
    help: "the delay before the first retry; each further one doubles it (with jitter), up to `outbox_backoff_max_ms`",
};

static BACKOFF_MAX_MS: Setting<u64> = Setting {
    key: "outbox_backoff_max_ms",
    env: &["AUTH_OUTBOX_BACKOFF_MAX_MS"],
    default: DefaultTo::Value(|| 300_000),
    range: Some(10..=86_400_000),
    secrecy: Secrecy::Public,
    help: "the longest delay between two attempts",
};

static LEASE_SECONDS: Setting<u64> = Setting {
    key: "outbox_lease_seconds",
    env: &["AUTH_OUTBOX_LEASE_SECONDS"],
    default: DefaultTo::Value(|| 15),
    range: Some(2..=600),
    secrecy: Secrecy::Public,
    help: "one instance relays a channel at a time, holding a lease it renews; another takes over this long after it stopped renewing",
};

static RETENTION_DAYS: Setting<u64> = Setting {
    key: "events_retention_days",
    env: &["AUTH_EVENTS_RETENTION_DAYS"],
    default: DefaultTo::Value(|| 30),
    range: Some(0..=36_500),
    secrecy: Secrecy::Public,
    help: "delivered events (every event, without `EVENTS_URL`) older than this many days are purged from the outbox (`0` = kept forever); parked ones are kept",
};

pub(super) static SETTINGS: &[&dyn Definition] = &[
    &URL,
    &EXCHANGE,
    &STREAM,
    &POLL_MS,
    &MAX_ATTEMPTS,
    &BACKOFF_BASE_MS,
    &BACKOFF_MAX_MS,
    &LEASE_SECONDS,
    &RETENTION_DAYS,
];

/// The broker events are relayed to.
#[derive(Debug, Clone)]
pub enum Broker {
    /// RabbitMQ: a durable topic exchange.
    Amqp { url: SecretString, exchange: String },
    /// NATS JetStream: a stream over `auth.>`.
    Nats { url: SecretString, stream: String },
}

/// How outbox relays retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    pub poll: Duration,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub struct Events {
    /// None: events stay in the outbox table.
    pub broker: Option<Broker>,
    pub retries: Retries,
    /// Days delivered events are kept; 0 keeps them forever.
    pub retention_days: u32,
}

/// Which broker a URL names, or the problem with it.
fn broker_of(url: &str, exchange: String, stream: String) -> Result<Broker, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("must be an `amqp://`, `amqps://`, `nats://` or `tls://` URL")?;
    if rest.is_empty() || rest.starts_with('/') || rest.chars().any(char::is_whitespace) {
        return Err("must name a host (like `amqp://host:5672/%2f` or `nats://host:4222`)".into());
    }
    let url = SecretString::from(url.to_owned());
    match scheme {
        "amqp" | "amqps" => Ok(Broker::Amqp { url, exchange }),
        "nats" | "tls" => Ok(Broker::Nats { url, stream }),
        _ => Err(format!(
            "scheme `{scheme}` is neither RabbitMQ (`amqp`, `amqps`) nor NATS (`nats`, `tls`)"
        )),
    }
}

/// A JetStream stream name: letters, digits, `-` and `_` (no `.`, `*`, `>`, spaces or path
/// separators), at most 64.
fn valid_stream(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An exchange name as AMQP 0-9-1 allows it: letters, digits, `-`, `_`, `.` and `:`, at most
/// 127, and not one of the reserved `amq.` ones.
fn valid_exchange(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && !name.starts_with("amq.")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub(super) fn load(raw: &RawConfig, p: &mut Problems) -> Option<Events> {
    let url = URL.optional(raw, p);
    let exchange = EXCHANGE.value(raw, p);
    let stream = STREAM.value(raw, p);
    let poll = POLL_MS.value(raw, p);
    let max_attempts = MAX_ATTEMPTS.value(raw, p);
    let base = BACKOFF_BASE_MS.value(raw, p);
    let max = BACKOFF_MAX_MS.value(raw, p);
    let lease = LEASE_SECONDS.value(raw, p);
    let retention = RETENTION_DAYS.value(raw, p);
    let mut ok = true;
    if let Some(name) = &exchange
        && !valid_exchange(name)
    {
        p.add(
            &EXCHANGE,
            "must be 1 to 127 letters, digits, `-`, `_`, `.` or `:`, not starting with `amq.`",
        );
        ok = false;
    }
    if let Some(name) = &stream
        && !valid_stream(name)
    {
        p.add(&STREAM, "must be 1 to 64 letters, digits, `-` or `_`");
        ok = false;
    }
    if let (Some(base), Some(max)) = (base, max)
        && base > max
    {
        p.add_text(format!(
            "{}: must not exceed {} ({max})",
            BACKOFF_BASE_MS.label(),
            BACKOFF_MAX_MS.key
        ));
        ok = false;
    }
    let (exchange, stream) = (exchange?, stream?);
    let broker = match url? {
        None => None,
        Some(url) => match broker_of(url.expose_secret(), exchange, stream) {
            Ok(broker) => Some(broker),
            Err(problem) => {
                p.add(&URL, problem);
                return None;
            }
        },
    };
    if !ok {
        return None;
    }
    Some(Events {
        broker,
        retries: Retries {
            poll: Duration::from_millis(poll?),
            max_attempts: max_attempts?,
            backoff_base: Duration::from_millis(base?),
            backoff_max: Duration::from_millis(max?),
            lease: Duration::from_secs(lease?),
        },
        // Within the range checked above.
        retention_days: u32::try_from(retention?).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load;

    use super::Broker;

    #[test]
    fn without_a_url_events_stay_in_the_table_with_the_defaults() {
        let config = load(&[]).validate().unwrap();
        assert!(config.events.broker.is_none());
        assert_eq!(config.events.retries.max_attempts, 10);
        assert_eq!(config.events.retention_days, 30);
    }

    #[test]
    fn the_scheme_chooses_the_broker_and_names_are_checked() {
        let config = load(&[("EVENTS_URL", "amqp://u:p@rabbit:5672/%2f")])
            .validate()
            .unwrap();
        assert!(
            matches!(&config.events.broker, Some(Broker::Amqp { exchange, .. }) if exchange == "auth.events")
        );
        let config = load(&[
            ("EVENTS_URL", "nats://nats:4222"),
            ("AUTH_EVENTS_STREAM", "EVENTS_1"),
        ])
        .validate()
        .unwrap();
        assert!(
            matches!(&config.events.broker, Some(Broker::Nats { stream, .. }) if stream == "EVENTS_1")
        );
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[("EVENTS_URL", "kafka://k:9092")], "scheme `kafka`"),
            (&[("EVENTS_URL", "rabbit")], "must be an `amqp://`"),
            (&[("EVENTS_URL", "amqp://")], "must name a host"),
            (&[("AUTH_EVENTS_STREAM", "auth.events")], "events_stream"),
            (&[("AUTH_EVENTS_EXCHANGE", "amq.topic")], "events_exchange"),
            (
                &[
                    ("AUTH_OUTBOX_BACKOFF_BASE_MS", "5000"),
                    ("AUTH_OUTBOX_BACKOFF_MAX_MS", "1000"),
                ],
                "must not exceed outbox_backoff_max_ms",
            ),
        ];
        for (vars, expected) in cases {
            let problems = load(vars).validate().unwrap_err();
            assert_eq!(problems.len(), 1, "{vars:?}: {problems:?}");
            assert!(problems[0].contains(expected), "{vars:?}: {problems:?}");
        }
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let problems = load(&[("EVENTS_URL", "kafka://u:hunter2@k:9092")])
            .validate()
            .unwrap_err();
        assert!(!problems[0].contains("hunter2"), "{problems:?}");
        let described = load(&[("EVENTS_URL", "amqp://u:hunter2@rabbit/%2f")]).describe();
        assert!(!described.contains("hunter2"), "{described}");
    }
}
