//! Limits shared by every instance: the GCRA step as one Lua script on Redis's own clock, so
//! instances whose clocks differ still agree. Each call waits at most the configured timeout;
//! while Redis does not answer, calls are not even tried for a second at a time, and the
//! change is logged once each way.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::{Client, Script};
use secrecy::ExposeSecret;

use super::gcra::{Decision, Gcra};
use crate::config::{RedisFailure, RedisLimits};

/// KEYS[1]: the key; ARGV: interval and period in microseconds. Returns
/// `{allowed, remaining, retry_after_us, reset_after_us}`. The TAT is stored as an integer
/// text (Lua numbers are doubles: `tostring` would round it), expiring when the budget is full.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((period - (new_tat - now)) / interval), 0, new_tat - now}
";

/// How long calls are not tried after Redis failed to answer one.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

pub struct RedisStore {
    connection: ConnectionManager,
    script: Script,
    timeout: Duration,
    prefix: String,
    pub failure: RedisFailure,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    /// Set while Redis is taken as down: calls are not tried before this time.
    down_until: Option<Instant>,
}

impl RedisStore {
    /// Connects lazily: the service starts whether Redis answers or not.
    pub fn new(config: &RedisLimits) -> Result<Self, redis::RedisError> {
        let client = Client::open(config.url.expose_secret())?;
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(RETRY_AFTER_FAILURE);
        let connection = ConnectionManager::new_lazy_with_config(client, manager)?;
        Ok(Self {
            connection,
            script: Script::new(GCRA),
            timeout: config.timeout,
            prefix: config.prefix.clone(),
            failure: config.failure,
            health: Mutex::new(Health::default()),
        })
    }

    /// Decides a request of `key` under `limit`; `None` when Redis did not answer in time
    /// (or is taken as down).
    pub async fn check(&self, limit: &str, key: &str, gcra: Gcra) -> Option<Decision> {
        if self.resting() {
            return None;
        }
        let mut connection = self.connection.clone();
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(format!("{}{limit}:{key}", self.prefix))
            .arg(gcra.interval_us)
            .arg(gcra.period_us);
        let call = invocation.invoke_async::<(i64, i64, i64, i64)>(&mut connection);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok((allowed, remaining, retry_after, reset_after))) => {
                self.answered();
                let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
                Some(Decision {
                    allowed: allowed == 1,
                    tat: 0,
                    remaining: u64::try_from(remaining).unwrap_or(0),
                    retry_after: us(retry_after),
                    reset_after: us(reset_after),
                })
            }
            Ok(Err(e)) => {
                self.failed(&e);
                None
            }
            Err(_) => {
                self.failed(&format!("no answer within {:?}", self.timeout));
                None
            }
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn resting(&self) -> bool {
        self.health()
            .down_until
            .is_some_and(|until| Instant::now() < until)
    }

    fn failed(&self, cause: &dyn std::fmt::Display) {
        let mut health = self.health();
        if health.down_until.is_none() {
            let instead = match self.failure {
                RedisFailure::Memory => "this instance's own in-memory limits apply",
                RedisFailure::Open => "requests are not limited",
                RedisFailure::Closed => "rate-limited requests are refused with 503",
            };
            tracing::warn!(error = %cause, "Redis does not answer rate-limit checks; until it does, {instead}");
        }
        health.down_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
    }

    fn answered(&self) {
        let mut health = self.health();
        if health.down_until.take().is_some() {
            tracing::info!("Redis answers rate-limit checks again; limits are shared again");
        }
    }
}
