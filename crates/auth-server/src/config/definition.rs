//! What a setting is (key, environment names, typed default, range, help, secrecy), how its raw
//! text becomes a typed value, and the problems found on the way, one line each.

use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use auth_core::token::JwtAlgorithm;
use secrecy::{ExposeSecret, SecretString};

use super::{AccessLog, IpNet, LogFormat, RawConfig, RedisFailure, TransportKind, settings};

/// One setting, declared by the area that reads it.
pub struct Setting<T: 'static> {
    /// Its key in the TOML file and in `config check`.
    pub key: &'static str,
    /// The environment variables that set it; the first one found wins.
    pub env: &'static [&'static str],
    pub default: DefaultTo<T>,
    /// The values allowed when it is set (a default is not checked against it).
    pub range: Option<RangeInclusive<T>>,
    pub secrecy: Secrecy,
    /// One line for the configuration table (docs/CONFIGURATION.md).
    pub help: &'static str,
}

/// The value a setting has when neither the environment nor the file sets it.
pub enum DefaultTo<T> {
    /// A value of its own, shown by `config check` and in the configuration table
    /// (docs/CONFIGURATION.md).
    Value(fn() -> T),
    /// Computed by the area from other settings or the machine, in one place; the text says
    /// how, as the configuration table (docs/CONFIGURATION.md) does.
    Derived(&'static str),
    /// None: the setting is optional.
    Nothing,
}

/// How `config check` shows a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    Public,
    /// Never shown.
    Secret,
    /// A URL shown without its password.
    UrlPassword,
}

/// A setting seen without its type: what the list of all settings holds.
pub trait Definition: Sync {
    fn key(&self) -> &'static str;
    fn env(&self) -> &'static [&'static str];
    fn secrecy(&self) -> Secrecy;
    fn help(&self) -> &'static str;
    /// The default as a text that reads back as the default value, if it has one of its own.
    fn default_text(&self) -> Option<String>;
    /// How a default of no value of its own comes about (`DefaultTo::Derived`).
    fn derived_default(&self) -> Option<&'static str>;

    /// `key (ENV / ENV)`, the start of each of its problems.
    fn label(&self) -> String {
        format!("{} ({})", self.key(), self.env().join(" / "))
    }
}

impl<T: Value> Definition for Setting<T> {
    fn key(&self) -> &'static str {
        self.key
    }

    fn env(&self) -> &'static [&'static str] {
        self.env
    }

    fn secrecy(&self) -> Secrecy {
        self.secrecy
    }

    fn help(&self) -> &'static str {
        self.help
    }

    fn default_text(&self) -> Option<String> {
        match &self.default {
            DefaultTo::Value(value) => Some(value().show()),
            DefaultTo::Derived(_) | DefaultTo::Nothing => None,
        }
    }

    fn derived_default(&self) -> Option<&'static str> {
        match &self.default {
            DefaultTo::Derived(how) => Some(how),
            DefaultTo::Value(_) | DefaultTo::Nothing => None,
        }
    }
}

impl<T: Value> Setting<T> {
    /// The value set, else the default. `None` when the value set is invalid (the problem is
    /// recorded). For settings whose default is a value of their own.
    pub fn value(&self, raw: &RawConfig, problems: &mut Problems) -> Option<T> {
        let DefaultTo::Value(default) = &self.default else {
            panic!("{} has no default value: read it with `optional`", self.key);
        };
        self.optional(raw, problems)
            .map(|set| set.unwrap_or_else(default))
    }

    /// The value set (`Some(None)` when unset), or `None` when it is invalid (the problem is
    /// recorded). For settings without a default value of their own.
    pub fn optional(&self, raw: &RawConfig, problems: &mut Problems) -> Option<Option<T>> {
        debug_assert!(
            settings().any(|s| s.key() == self.key),
            "{} is missing from its area's SETTINGS",
            self.key
        );
        let Some(text) = raw.get(self.key) else {
            return Some(None);
        };
        match T::read(text) {
            Ok(value) => match &self.range {
                Some(range) if !value.within(range) => {
                    problems.add(
                        self,
                        format!(
                            "must be between {} and {}",
                            range.start().show(),
                            range.end().show()
                        ),
                    );
                    None
                }
                _ => Some(Some(value)),
            },
            Err(errors) => {
                for e in errors {
                    match self.secrecy {
                        Secrecy::Public => problems.add(self, e),
                        Secrecy::Secret | Secrecy::UrlPassword => problems.add(self, "cannot read"),
                    }
                }
                None
            }
        }
    }
}

/// The problems of a configuration, all of them, one line each.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    /// A problem of one setting: `key (ENV): problem`.
    pub fn add(&mut self, setting: &dyn Definition, problem: impl Display) {
        self.0.push(format!("{}: {problem}", setting.label()));
    }

    /// A problem of several settings together, said whole.
    pub fn add_text(&mut self, problem: String) {
        self.0.push(problem);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// A type a setting can hold.
pub trait Value: Sized + Sync + 'static {
    /// Reads a raw text; each error is one problem, said without the setting's name.
    fn read(text: &str) -> Result<Self, Vec<String>>;
    /// The text that reads back as this value.
    fn show(&self) -> String;
    /// Whether the value lies in `range`; types without an order have no range.
    fn within(&self, range: &RangeInclusive<Self>) -> bool;
}

/// Numbers and addresses: surrounding spaces are ignored.
macro_rules! ordered {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn read(text: &str) -> Result<Self, Vec<String>> {
                text.trim().parse().map_err(|_| vec![format!("cannot read {text:?}")])
            }

            fn show(&self) -> String {
                self.to_string()
            }

            fn within(&self, range: &RangeInclusive<Self>) -> bool {
                range.contains(self)
            }
        }
    )*};
}

ordered!(u16, u32, u64, usize, IpAddr, SocketAddr);

impl Value for String {
    fn read(text: &str) -> Result<Self, Vec<String>> {
        Ok(text.to_owned())
    }

    fn show(&self) -> String {
        self.clone()
    }

    fn within(&self, range: &RangeInclusive<Self>) -> bool {
        range.contains(self)
    }
}

impl Value for SecretString {
    fn read(text: &str) -> Result<Self, Vec<String>> {
        Ok(SecretString::from(text.to_owned()))
    }

    /// Only defaults are shown, and `config check` redacts by the setting's [`Secrecy`].
    fn show(&self) -> String {
        self.expose_secret().to_owned()
    }

    fn within(&self, _: &RangeInclusive<Self>) -> bool {
        true
    }
}

/// `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`, in any case).
impl Value for bool {
    fn read(text: &str) -> Result<Self, Vec<String>> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(vec![format!("must be true or false, not {text:?}")]),
        }
    }

    fn show(&self) -> String {
        self.to_string()
    }

    fn within(&self, _: &RangeInclusive<Self>) -> bool {
        true
    }
}

/// A comma-separated list of networks; blanks are ignored, each bad item is one problem.
impl Value for Vec<IpNet> {
    fn read(text: &str) -> Result<Self, Vec<String>> {
        let mut nets = Vec::new();
        let mut errors = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.parse::<IpNet>() {
                Ok(net) => nets.push(net),
                Err(e) => errors.push(format!("{item:?}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(nets)
        } else {
            Err(errors)
        }
    }

    fn show(&self) -> String {
        self.iter()
            .map(IpNet::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn within(&self, _: &RangeInclusive<Self>) -> bool {
        true
    }
}

/// A choice among names, spelled exactly.
macro_rules! choice {
    ($t:ty: $($name:literal => $value:path),+) => {
        impl Value for $t {
            fn read(text: &str) -> Result<Self, Vec<String>> {
                match text {
                    $($name => Ok($value),)+
                    other => Err(vec![format!(
                        "must be {}, not {other:?}",
                        [$($name),+].join(" or ")
                    )]),
                }
            }

            fn show(&self) -> String {
                match self {
                    $($value => $name.to_owned(),)+
                }
            }

            fn within(&self, _: &RangeInclusive<Self>) -> bool {
                true
            }
        }
    };
}

choice!(JwtAlgorithm: "EdDSA" => JwtAlgorithm::EdDSA, "HS256" => JwtAlgorithm::HS256);
choice!(LogFormat: "pretty" => LogFormat::Pretty, "json" => LogFormat::Json);
choice!(AccessLog: "all" => AccessLog::All, "errors" => AccessLog::Errors, "off" => AccessLog::Off);
choice!(RedisFailure: "memory" => RedisFailure::Memory, "open" => RedisFailure::Open, "closed" => RedisFailure::Closed);
choice!(TransportKind: "smtp" => TransportKind::Smtp, "file" => TransportKind::File, "log" => TransportKind::Log, "off" => TransportKind::Off);
