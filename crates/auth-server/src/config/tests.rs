use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use auth_core::password::Argon2Settings;
use auth_core::token::JwtAlgorithm;
use secrecy::ExposeSecret;

use super::*;

pub(super) fn load(vars: &[(&str, &str)]) -> RawConfig {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let names: Vec<String> = map.keys().cloned().collect();
    RawConfig::load(None, &|n| map.get(n).cloned(), &names).unwrap()
}

#[test]
fn defaults_give_a_working_sqlite_service_on_localhost() {
    let config = load(&[]).validate().unwrap();
    assert_eq!(config.server.bind.to_string(), "127.0.0.1");
    assert_eq!(config.server.port, 8080);
    assert_eq!(config.database.url.expose_secret(), "sqlite://data/auth.db");
    assert_eq!(config.tokens.algorithm, JwtAlgorithm::EdDSA);
    assert_eq!(
        config.tokens.access.access_ttl,
        Duration::from_secs(15 * 60)
    );
    assert_eq!(config.tokens.access.issuer, "http://127.0.0.1:8080");
    assert_eq!(config.passwords.argon2, Argon2Settings::default());
    assert_eq!(config.database.sqlite_cache_kib, 256);
    assert_eq!(config.database.max_connections, 4);
}

#[test]
fn the_pool_size_defaults_by_backend_and_can_be_set() {
    let pg = load(&[("DATABASE_URL", "postgres://db.internal/auth")])
        .validate()
        .unwrap();
    assert_eq!(pg.database.max_connections, 10);
    let set = load(&[("AUTH_DATABASE_MAX_CONNECTIONS", "16")])
        .validate()
        .unwrap();
    assert_eq!(set.database.max_connections, 16);
}

#[test]
fn the_issuer_defaults_to_the_address_listened_on() {
    let config = load(&[("AUTH_BIND", "::1"), ("PORT", "9000")])
        .validate()
        .unwrap();
    assert_eq!(config.tokens.access.issuer, "http://[::1]:9000");
    let set = load(&[("AUTH_ISSUER", "https://id.example")])
        .validate()
        .unwrap();
    assert_eq!(set.tokens.access.issuer, "https://id.example");
}

#[test]
fn the_issuer_is_set_else_the_public_url_else_recorded_at_start() {
    let derived = load(&[]).validate().unwrap();
    assert_eq!(derived.tokens.issuer_source, IssuerSource::Recorded);
    let public = load(&[("AUTH_PUBLIC_URL", "https://id.example/")])
        .validate()
        .unwrap();
    assert_eq!(public.tokens.access.issuer, "https://id.example");
    assert_eq!(public.tokens.issuer_source, IssuerSource::PublicUrl);
    let both = load(&[
        ("AUTH_PUBLIC_URL", "https://id.example"),
        ("AUTH_ISSUER", "https://issuer.example"),
    ])
    .validate()
    .unwrap();
    assert_eq!(both.tokens.access.issuer, "https://issuer.example");
    assert_eq!(both.tokens.issuer_source, IssuerSource::Issuer);
    assert_eq!(both.mail.links.public_url, "https://id.example");
}

#[test]
fn audience_none_issues_tokens_without_one() {
    let none = load(&[("AUTH_AUDIENCE", "none")]).validate().unwrap();
    assert_eq!(none.tokens.access.audience, None);
    let set = load(&[("AUTH_AUDIENCE", "orders")]).validate().unwrap();
    assert_eq!(set.tokens.access.audience.as_deref(), Some("orders"));
    assert!(load(&[("AUTH_AUDIENCE", "")]).validate().is_err());
}

#[test]
fn hashing_runs_on_every_core_by_default_and_can_be_bounded() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = load(&[]).validate().unwrap();
    assert_eq!(config.passwords.hashing.max_in_flight, cores);
    let set = load(&[("AUTH_HASH_MAX_IN_FLIGHT", "3")])
        .validate()
        .unwrap();
    assert_eq!(set.passwords.hashing.max_in_flight, 3);
    let problems = load(&[("AUTH_HASH_MAX_IN_FLIGHT", "0")])
        .validate()
        .unwrap_err();
    assert_eq!(
        problems,
        ["hash_max_in_flight (AUTH_HASH_MAX_IN_FLIGHT): must be between 1 and 1024"]
    );
}

#[test]
fn the_sqlite_page_cache_is_bounded() {
    let config = load(&[("AUTH_SQLITE_CACHE_KIB", "1024")])
        .validate()
        .unwrap();
    assert_eq!(config.database.sqlite_cache_kib, 1024);
    for bad in ["8", "-5", "lots"] {
        let problems = load(&[("AUTH_SQLITE_CACHE_KIB", bad)])
            .validate()
            .unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("sqlite_cache_kib")),
            "{bad}: {problems:?}"
        );
    }
}

#[test]
fn the_old_services_variable_names_work() {
    let config = load(&[
        ("DATABASE_URI", "postgres://u@localhost/db"),
        ("PORT", "9000"),
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_SECRET_KEY", "0123456789abcdef0123456789abcdef"),
        ("JWT_EXPIRE_MINUTES", "60"),
    ])
    .validate()
    .unwrap();
    assert_eq!(
        config.database.url.expose_secret(),
        "postgres://u@localhost/db"
    );
    assert_eq!(config.server.port, 9000);
    assert_eq!(config.tokens.algorithm, JwtAlgorithm::HS256);
    assert_eq!(config.tokens.access.access_ttl, Duration::from_secs(3600));
}

#[test]
fn every_problem_is_reported_on_its_own_line() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("JWT_ALGORITHM", "HS256")], "JWT_SECRET_KEY): required"),
        (
            &[("JWT_ALGORITHM", "HS256"), ("JWT_SECRET_KEY", "short")],
            "at least 32 bytes",
        ),
        (&[("JWT_ALGORITHM", "RS256")], "must be EdDSA or HS256"),
        (
            &[("PORT", "eighty")],
            "port (PORT / AUTH_PORT): cannot read",
        ),
        (
            &[("DATABASE_URL", "mysql://x")],
            "must start with sqlite: or postgres://",
        ),
        (&[("JWT_EXPIRE_MINUTES", "0")], "must be between 1 and 1440"),
        (
            &[("AUTH_MASTER_KEY", "short")],
            "AUTH_MASTER_KEY): must be at least 32 bytes",
        ),
        (&[("LOG_FORMAT", "xml")], "must be pretty or json"),
        (
            &[("AUTH_ARGON2_MEMORY_KIB", "1")],
            "invalid Argon2 parameters",
        ),
    ];
    for (vars, expected) in cases {
        let problems = load(vars).validate().unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{vars:?}: expected {expected:?} in {problems:?}"
        );
    }
    let both = load(&[("PORT", "x"), ("LOG_FORMAT", "xml")])
        .validate()
        .unwrap_err();
    assert_eq!(both.len(), 2, "{both:?}");
}

#[test]
fn unknown_auth_variables_are_warned_about() {
    let raw = load(&[
        ("AUTH_ISSUR", "typo"),
        ("AUTH_CONFIG", "x"),
        ("HOME", "/root"),
    ]);
    assert_eq!(
        raw.warnings,
        vec!["unknown environment variable AUTH_ISSUR is ignored"]
    );
}

#[test]
fn describe_redacts_secrets_and_names_sources() {
    let raw = load(&[
        ("JWT_SECRET_KEY", "super-secret-value-that-is-long-enough"),
        ("DATABASE_URL", "postgres://user:pw@host/db"),
    ]);
    let text = raw.describe();
    assert!(!text.contains("super-secret"), "{text}");
    assert!(!text.contains("pw@"), "{text}");
    assert!(
        text.contains("jwt_secret_key = \"[redacted]\"  # from JWT_SECRET_KEY"),
        "{text}"
    );
    assert!(text.contains("port = \"8080\"  # default"), "{text}");
}

#[test]
fn a_toml_file_is_read_and_the_environment_wins_over_it() {
    let dir = std::env::temp_dir().join(format!("auth-config-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("auth.toml");
    std::fs::write(
        &path,
        "port = 7000\naudience = \"orders\"\njwt_expire_minutes = 5\n",
    )
    .unwrap();
    let env = |n: &str| (n == "PORT").then(|| "7001".to_owned());
    let config = RawConfig::load(Some(&path), &env, &[])
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(config.server.port, 7001);
    assert_eq!(config.tokens.access.audience.as_deref(), Some("orders"));
    assert_eq!(config.tokens.access.access_ttl, Duration::from_secs(300));

    std::fs::write(&path, "prot = 7000\n").unwrap();
    let err = RawConfig::load(Some(&path), &|_| None, &[]).err().unwrap();
    assert!(err[0].contains("unknown key \"prot\""), "{err:?}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn database_passwords_are_redacted() {
    assert_eq!(
        redact_url("postgres://u:pw@h:5432/db"),
        "postgres://u:[redacted]@h:5432/db"
    );
    assert_eq!(
        redact_url("postgres://u@h/db"),
        "postgres://u:[redacted]@h/db"
    );
    assert_eq!(redact_url("sqlite://data/auth.db"), "sqlite://data/auth.db");
}

#[test]
fn trusted_proxies_are_networks() {
    let config = load(&[("AUTH_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")])
        .validate()
        .unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let trusted = |s: &str| {
        config
            .server
            .trusted_proxies
            .iter()
            .any(|n| n.contains(ip(s)))
    };
    assert!(trusted("10.1.2.3") && trusted("127.0.0.1") && trusted("::1"));
    assert!(!trusted("11.0.0.1") && !trusted("127.0.0.2"));
    assert!(
        "0.0.0.0/0"
            .parse::<IpNet>()
            .unwrap()
            .contains(ip("8.8.8.8"))
    );
    let problems = load(&[("AUTH_TRUSTED_PROXIES", "10.0.0.0/33,nope")])
        .validate()
        .unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn session_and_key_settings_have_defaults_and_limits() {
    let config = load(&[]).validate().unwrap();
    assert_eq!(config.sessions.lifetimes.grace, Duration::from_secs(10));
    assert_eq!(
        config.keys.rotation.every,
        Some(Duration::from_secs(30 * 86400))
    );
    assert_eq!(config.keys.rotation.propagation, Duration::from_secs(600));
    let off = load(&[("AUTH_KEY_ROTATION_DAYS", "0")]).validate().unwrap();
    assert_eq!(off.keys.rotation.every, None);
    let problems = load(&[
        ("AUTH_SESSION_IDLE_SECONDS", "9999999"),
        ("AUTH_SESSION_ABSOLUTE_SECONDS", "600"),
    ])
    .validate()
    .unwrap_err();
    assert!(problems[0].contains("must not exceed"), "{problems:?}");
}

#[test]
fn the_shutdown_drain_has_a_default_and_limits() {
    assert_eq!(
        load(&[]).validate().unwrap().server.shutdown_drain,
        Duration::from_secs(10)
    );
    let set = load(&[("AUTH_SHUTDOWN_DRAIN_SECONDS", "0")])
        .validate()
        .unwrap();
    assert_eq!(set.server.shutdown_drain, Duration::ZERO);
    let problems = load(&[("AUTH_SHUTDOWN_DRAIN_SECONDS", "3601")])
        .validate()
        .unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("shutdown_drain_seconds")),
        "{problems:?}"
    );
}

#[test]
fn lockout_locks_may_not_start_longer_than_the_longest() {
    let config = load(&[("AUTH_LOCKOUT_THRESHOLD", "5")]).validate().unwrap();
    let lockout = config.sessions.lifetimes.lockout;
    assert_eq!(lockout.threshold, 5);
    assert_eq!(lockout.base.as_secs(), 60);
    assert_eq!(lockout.max.as_secs(), 3600);
    let problems = load(&[
        ("AUTH_LOCKOUT_BASE_SECONDS", "600"),
        ("AUTH_LOCKOUT_MAX_SECONDS", "300"),
    ])
    .validate()
    .unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("lockout_max_seconds"), "{problems:?}");
}
