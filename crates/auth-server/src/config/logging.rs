//! Logging: the format of log lines (the filter is `RUST_LOG`, read by the telemetry module),
//! which requests get a line of their own, and how long the audit log keeps its entries.

use super::RawConfig;
use super::definition::{DefaultTo, Definition, Problems, Secrecy, Setting};

static FORMAT: Setting<LogFormat> = Setting {
    key: "log_format",
    env: &["LOG_FORMAT"],
    default: DefaultTo::Value(|| LogFormat::Pretty),
    range: None,
    secrecy: Secrecy::Public,
    help: "`pretty` or `json` (one JSON object per line)",
};

static AUDIT_RETENTION_DAYS: Setting<u64> = Setting {
    key: "audit_retention_days",
    env: &["AUTH_AUDIT_RETENTION_DAYS"],
    default: DefaultTo::Value(|| 365),
    range: Some(0..=36_500),
    secrecy: Secrecy::Public,
    help: "audit entries older than this many days are purged (`0` = kept forever)",
};

static ACCESS_LOG: Setting<AccessLog> = Setting {
    key: "access_log",
    env: &["AUTH_ACCESS_LOG"],
    default: DefaultTo::Value(|| AccessLog::Errors),
    range: None,
    secrecy: Secrecy::Public,
    help: "per-request log lines: `all` (every answer, successes at INFO), `errors` (4xx at WARN, 5xx at ERROR; successes at DEBUG) or `off` (none); probes and `/metrics` never at INFO",
};

pub(super) static SETTINGS: &[&dyn Definition] = &[&FORMAT, &ACCESS_LOG, &AUDIT_RETENTION_DAYS];

/// Which requests get a line of their own in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLog {
    /// Every answer: successes at INFO, refusals at WARN, failures at ERROR.
    All,
    /// Refusals and failures; successes at DEBUG.
    Errors,
    /// No per-request line (failures are still logged where they arise).
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct Logging {
    pub format: LogFormat,
    pub access_log: AccessLog,
    /// Days the audit log keeps an entry; 0 keeps them forever.
    pub audit_retention_days: u32,
}

pub(super) fn load(raw: &RawConfig, p: &mut Problems) -> Option<Logging> {
    let format = FORMAT.value(raw, p);
    let access_log = ACCESS_LOG.value(raw, p);
    let retention = AUDIT_RETENTION_DAYS.value(raw, p);
    Some(Logging {
        format: format?,
        access_log: access_log?,
        // Within the range checked above.
        audit_retention_days: u32::try_from(retention?).unwrap_or(u32::MAX),
    })
}
