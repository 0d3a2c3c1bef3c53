//! Logging: the format of log lines (the filter is `RUST_LOG`, read by the telemetry module).

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

pub(super) static SETTINGS: &[&dyn Definition] = &[&FORMAT];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct Logging {
    pub format: LogFormat,
}

pub(super) fn load(raw: &RawConfig, p: &mut Problems) -> Option<Logging> {
    Some(Logging {
        format: FORMAT.value(raw, p)?,
    })
}
