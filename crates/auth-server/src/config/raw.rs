//! How raw values are gathered: environment first (names compatible with the services this one
//! replaces), then the TOML file; what neither sets takes the setting's default.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Secrecy, redact_url, settings};

/// Environment variables that are not settings but are understood.
const OTHER_ENV: &[&str] = &["AUTH_CONFIG"];

/// Where each raw value came from, for `config check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Env(&'static str),
    File,
    Default,
}

/// Raw values before validation: those the environment or the file set.
pub struct RawConfig {
    values: BTreeMap<&'static str, (String, Source)>,
    /// Non-fatal findings, such as unknown `AUTH_*` variables.
    pub warnings: Vec<String>,
}

impl RawConfig {
    /// Reads the file (if any) and the environment through `env`.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        env_names: &[String],
    ) -> Result<Self, Vec<String>> {
        let file_values = match file {
            Some(path) => read_file(path)?,
            None => BTreeMap::new(),
        };
        let mut values = BTreeMap::new();
        for s in settings() {
            let from_env = s
                .env()
                .iter()
                .find_map(|name| env(name).map(|v| (v, Source::Env(name))));
            let value =
                from_env.or_else(|| file_values.get(s.key()).map(|v| (v.clone(), Source::File)));
            if let Some(v) = value {
                values.insert(s.key(), v);
            }
        }
        let warnings = env_names
            .iter()
            .filter(|n| n.starts_with("AUTH_"))
            .filter(|n| {
                !OTHER_ENV.contains(&n.as_str())
                    && !settings().any(|s| s.env().contains(&n.as_str()))
            })
            .map(|n| format!("unknown environment variable {n} is ignored"))
            .collect();
        Ok(Self { values, warnings })
    }

    /// Reads the process environment and the file named by `--config` or `AUTH_CONFIG`.
    pub fn from_process(config_file: Option<&Path>) -> Result<Self, Vec<String>> {
        let env_file = std::env::var_os("AUTH_CONFIG").map(std::path::PathBuf::from);
        let file = config_file.map(Path::to_path_buf).or(env_file);
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .collect();
        Self::load(file.as_deref(), &|n| std::env::var(n).ok(), &names)
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// The effective settings, secrets redacted, one `key = value  # source` line each.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for s in settings() {
            let (value, source) = match self.values.get(s.key()) {
                Some((v, source)) => (Some(v.clone()), *source),
                None => (s.default_text(), Source::Default),
            };
            let value = match (value, s.secrecy()) {
                (None, _) => "(unset)".to_owned(),
                (Some(v), Secrecy::Public) => format!("{v:?}"),
                (Some(v), Secrecy::UrlPassword) => format!("{:?}", redact_url(&v)),
                (Some(_), Secrecy::Secret) => "\"[redacted]\"".to_owned(),
            };
            let source = match source {
                Source::Env(name) => format!("from {name}"),
                Source::File => "from the config file".to_owned(),
                Source::Default => "default".to_owned(),
            };
            out.push_str(&format!("{} = {value}  # {source}\n", s.key()));
        }
        out
    }
}

/// Reads a flat TOML file whose keys are the settings' keys.
fn read_file(path: &Path) -> Result<BTreeMap<String, String>, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("config file {}: {e}", path.display())])?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| vec![format!("config file {}: {e}", path.display())])?;
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, value) in table {
        if !settings().any(|s| s.key() == key) {
            problems.push(format!(
                "config file {}: unknown key {key:?}",
                path.display()
            ));
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                problems.push(format!(
                    "config file {}: {key} has an unsupported type ({})",
                    path.display(),
                    other.type_str()
                ));
                continue;
            }
        };
        values.insert(key, text);
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}
