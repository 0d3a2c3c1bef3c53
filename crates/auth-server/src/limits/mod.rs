//! Rate limits (GCRA) per client IP and per account identifier: in this process's memory, or
//! in Redis shared by every instance, with what the configuration says when Redis is away.
//! Keys are keyed hashes: neither an identifier nor an address is held in clear.

pub mod gcra;
pub mod memory;
pub mod redis;

use std::net::IpAddr;
use std::time::Duration;

use auth_core::domain::{LoginName, TenantId};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use self::gcra::{Decision, Gcra};
use self::memory::{Clock, MemoryStore, Monotonic};
use self::redis::RedisStore;
use crate::config::{Quota, Quotas, RateLimits, RedisFailure};

/// What is limited, and by which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    LoginIp,
    LoginAccount,
    SignupIp,
    RefreshIp,
    /// Password-reset requests and verification resends, per address (known or not).
    ResetAccount,
    /// Password-reset requests and verification resends, per client IP.
    ResetIp,
}

impl Limit {
    pub const ALL: [Limit; 6] = [
        Limit::LoginIp,
        Limit::LoginAccount,
        Limit::SignupIp,
        Limit::RefreshIp,
        Limit::ResetAccount,
        Limit::ResetIp,
    ];

    /// The policy's name in `RateLimit-Policy` and in Redis keys.
    pub fn name(self) -> &'static str {
        match self {
            Limit::LoginIp => "login-ip",
            Limit::LoginAccount => "login-account",
            Limit::SignupIp => "signup-ip",
            Limit::RefreshIp => "refresh-ip",
            Limit::ResetAccount => "reset-account",
            Limit::ResetIp => "reset-ip",
        }
    }

    fn quota(self, quotas: &Quotas) -> Option<Quota> {
        match self {
            Limit::LoginIp => quotas.login_ip,
            Limit::LoginAccount => quotas.login_account,
            Limit::SignupIp => quotas.signup_ip,
            Limit::RefreshIp => quotas.refresh_ip,
            Limit::ResetAccount => quotas.reset_account,
            Limit::ResetIp => quotas.reset_ip,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Where a limit stands after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub limit: Limit,
    pub quota: Quota,
    /// Requests that would still pass now.
    pub remaining: u64,
    /// When refused: how long until one more passes.
    pub retry_after: Duration,
    /// How long until the budget is full again.
    pub reset_after: Duration,
}

/// What a request gets from one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The limit is off, or Redis is away and the configuration says `open`.
    Unlimited,
    Allowed(Status),
    Refused(Status),
    /// Redis is away and the configuration says `closed`.
    Unavailable,
}

/// One limit's quota and its in-memory store (the fallback when Redis is used).
struct Enabled {
    quota: Quota,
    gcra: Gcra,
    memory: MemoryStore,
}

pub struct RateLimiter {
    limits: [Option<Enabled>; 6],
    redis: Option<RedisStore>,
    key: Hmac<Sha256>,
    clock: Box<dyn Clock>,
}

impl RateLimiter {
    /// The limits of the configuration; keys are hashed under a key derived from the master
    /// key when there is one (instances sharing Redis must agree on it), else a random key
    /// (memory only) or, with Redis and no master key, a fixed one (hashed, not keyed).
    pub fn new(
        config: &RateLimits,
        master_key: Option<&SecretString>,
    ) -> Result<Self, ::redis::RedisError> {
        let key: Vec<u8> = match (master_key, &config.redis) {
            (Some(master), _) => {
                let mut mac = hmac_of(master.expose_secret().as_bytes());
                mac.update(b"auth-service rate-limit keys v1");
                mac.finalize().into_bytes().to_vec()
            }
            (None, Some(_)) => {
                tracing::warn!(
                    "REDIS_URL is set without AUTH_MASTER_KEY: rate-limit keys in Redis are hashed but not keyed"
                );
                b"auth-service rate-limit keys v1".to_vec()
            }
            (None, None) => auth_core::secret::random_bytes::<32>().to_vec(),
        };
        let redis = config.redis.as_ref().map(RedisStore::new).transpose()?;
        Ok(Self::build(
            config.quotas,
            config.memory_max_keys,
            redis,
            &key,
            Box::new(Monotonic::default()),
        ))
    }

    /// Memory only, on a given clock (tests).
    pub fn in_memory(quotas: Quotas, max_keys: usize, clock: Box<dyn Clock>) -> Self {
        Self::build(quotas, max_keys, None, b"test", clock)
    }

    fn build(
        quotas: Quotas,
        max_keys: usize,
        redis: Option<RedisStore>,
        key: &[u8],
        clock: Box<dyn Clock>,
    ) -> Self {
        let limits = Limit::ALL.map(|limit| {
            limit.quota(&quotas).map(|quota| Enabled {
                quota,
                gcra: Gcra::new(quota),
                memory: MemoryStore::new(limit.name(), max_keys),
            })
        });
        Self {
            limits,
            redis,
            key: hmac_of(key),
            clock,
        }
    }

    /// Whether the limit is on.
    pub fn is_on(&self, limit: Limit) -> bool {
        self.limits[limit.index()].is_some()
    }

    /// Checks a request from `ip`. IPv6 clients are counted by their /64, the block one
    /// subscriber usually holds.
    pub async fn check_ip(&self, limit: Limit, ip: IpAddr) -> Verdict {
        if !self.is_on(limit) {
            return Verdict::Unlimited;
        }
        let mut mac = self.key.clone();
        match ip.to_canonical() {
            IpAddr::V4(v4) => mac.update(&[&[4u8][..], &v4.octets()].concat()),
            IpAddr::V6(v6) => mac.update(&[&[6u8][..], &v6.octets()[..8]].concat()),
        }
        self.check(limit, mac).await
    }

    /// Checks a request naming an account: its tenant and normalised email or username.
    pub async fn check_account(
        &self,
        limit: Limit,
        tenant: &TenantId,
        name: &LoginName,
    ) -> Verdict {
        if !self.is_on(limit) {
            return Verdict::Unlimited;
        }
        let (kind, name) = match name {
            LoginName::Email(e) => ("email", e.normalized()),
            LoginName::Username(u) => ("username", u.normalized()),
        };
        let mut mac = self.key.clone();
        for part in [tenant.as_str(), kind, name] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        self.check(limit, mac).await
    }

    async fn check(&self, limit: Limit, mut mac: Hmac<Sha256>) -> Verdict {
        let Some(enabled) = &self.limits[limit.index()] else {
            return Verdict::Unlimited;
        };
        mac.update(limit.name().as_bytes());
        let digest = mac.finalize().into_bytes();
        let key = u128::from_be_bytes(digest[..16].try_into().expect("16 of 32 bytes"));
        let decision = match &self.redis {
            None => enabled.memory.check(key, enabled.gcra, self.clock.now_us()),
            Some(redis) => match redis
                .check(limit.name(), &format!("{key:032x}"), enabled.gcra)
                .await
            {
                Some(decision) => decision,
                None => match redis.failure {
                    RedisFailure::Memory => {
                        enabled.memory.check(key, enabled.gcra, self.clock.now_us())
                    }
                    RedisFailure::Open => return Verdict::Unlimited,
                    RedisFailure::Closed => return Verdict::Unavailable,
                },
            },
        };
        verdict(limit, enabled.quota, decision)
    }
}

fn verdict(limit: Limit, quota: Quota, d: Decision) -> Verdict {
    let status = Status {
        limit,
        quota,
        remaining: d.remaining,
        retry_after: d.retry_after,
        reset_after: d.reset_after,
    };
    if d.allowed {
        Verdict::Allowed(status)
    } else {
        Verdict::Refused(status)
    }
}

fn hmac_of(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::memory::Manual;
    use super::*;

    const SECOND: u64 = 1_000_000;

    struct Shared(Arc<Manual>);

    impl Clock for Shared {
        fn now_us(&self) -> u64 {
            self.0.now_us()
        }
    }

    fn limiter(clock: &Arc<Manual>) -> RateLimiter {
        let quota = |count, seconds| {
            Some(Quota {
                count,
                period: Duration::from_secs(seconds),
            })
        };
        let quotas = Quotas {
            login_ip: quota(2, 60),
            login_account: quota(1, 60),
            signup_ip: None,
            refresh_ip: quota(3, 3),
            reset_account: quota(1, 3600),
            reset_ip: quota(5, 3600),
        };
        RateLimiter::in_memory(quotas, 1000, Box::new(Shared(clock.clone())))
    }

    fn allowed(v: Verdict) -> bool {
        matches!(v, Verdict::Allowed(_))
    }

    #[tokio::test]
    async fn ips_and_accounts_have_budgets_of_their_own_per_limit() {
        let clock = Arc::new(Manual::default());
        let limiter = limiter(&clock);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(allowed(limiter.check_ip(Limit::LoginIp, a).await));
        assert!(allowed(limiter.check_ip(Limit::LoginIp, a).await));
        let Verdict::Refused(status) = limiter.check_ip(Limit::LoginIp, a).await else {
            panic!("the third login from one IP is refused")
        };
        assert_eq!(status.retry_after, Duration::from_secs(30));
        assert_eq!((status.limit, status.remaining), (Limit::LoginIp, 0));
        assert!(
            allowed(limiter.check_ip(Limit::LoginIp, b).await),
            "another IP"
        );
        assert!(
            allowed(limiter.check_ip(Limit::RefreshIp, a).await),
            "another limit"
        );
        assert_eq!(
            limiter.check_ip(Limit::SignupIp, a).await,
            Verdict::Unlimited
        );

        let tenant = TenantId::default_tenant();
        let name = |s: &str| LoginName::Email(auth_core::domain::Email::for_lookup(s).unwrap());
        assert!(allowed(
            limiter
                .check_account(Limit::LoginAccount, &tenant, &name("Ann@x.test"))
                .await
        ));
        assert!(
            !allowed(
                limiter
                    .check_account(Limit::LoginAccount, &tenant, &name(" ann@X.test "))
                    .await
            ),
            "the same account however it is typed"
        );
        assert!(allowed(
            limiter
                .check_account(Limit::LoginAccount, &tenant, &name("bob@x.test"))
                .await
        ));
        assert!(allowed(
            limiter
                .check_account(Limit::ResetAccount, &tenant, &name("ann@x.test"))
                .await
        ));
        clock.advance(60 * SECOND);
        assert!(allowed(
            limiter
                .check_account(Limit::LoginAccount, &tenant, &name("ann@x.test"))
                .await
        ));
    }

    #[tokio::test]
    async fn ipv6_clients_are_counted_by_their_64_block() {
        let clock = Arc::new(Manual::default());
        let limiter = limiter(&clock);
        for ip in ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9"] {
            assert!(allowed(
                limiter.check_ip(Limit::LoginIp, ip.parse().unwrap()).await
            ));
        }
        assert!(!allowed(
            limiter
                .check_ip(Limit::LoginIp, "2001:db8:1:2::77".parse().unwrap())
                .await
        ));
        assert!(allowed(
            limiter
                .check_ip(Limit::LoginIp, "2001:db8:1:3::1".parse().unwrap())
                .await
        ));
        // An IPv4 client seen through an IPv6 socket is the same client.
        assert!(allowed(
            limiter
                .check_ip(Limit::LoginIp, "::ffff:192.0.2.9".parse().unwrap())
                .await
        ));
        assert!(allowed(
            limiter
                .check_ip(Limit::LoginIp, "192.0.2.9".parse().unwrap())
                .await
        ));
        assert!(!allowed(
            limiter
                .check_ip(Limit::LoginIp, "192.0.2.9".parse().unwrap())
                .await
        ));
    }
}
