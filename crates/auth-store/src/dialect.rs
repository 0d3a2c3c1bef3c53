//! The one place where SQLite and PostgreSQL differ in SQL. Statements are written once, in
//! a portable dialect with `?` placeholders in the order their arguments are bound; [`sql`]
//! numbers them (`$1`, `$2`, ..., which both backends read) and keeps the result, built once
//! per call site, backend and shape. Where the dialects differ (aggregating a list, one
//! statement for several writes), the functions here say how.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use sqlx::Any;
use sqlx::any::AnyArguments;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Recognizes `sqlite:` and `postgres:` / `postgresql:` URLs.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    /// SQL aggregating `expr` of a group into one string, separated by [`LIST_SEPARATOR`].
    pub(crate) fn aggregate(self, expr: &str) -> String {
        match self {
            Backend::Sqlite => format!("group_concat({expr}, char(31))"),
            Backend::Postgres => format!("string_agg({expr}, chr(31))"),
        }
    }
}

impl Backend {
    /// SQL of `column`, a JSON object stored as text, with its `data` member made `{}`.
    pub(crate) fn json_without_data(self, column: &str) -> String {
        match self {
            Backend::Sqlite => format!("json_set({column}, '$.data', json('{{}}'))"),
            Backend::Postgres => {
                format!("jsonb_set({column}::jsonb, '{{data}}', '{{}}'::jsonb)::text")
            }
        }
    }
}

/// Separator of aggregated names ([`Backend::aggregate`]): the ASCII unit separator, which no
/// role or permission name contains.
pub(crate) const LIST_SEPARATOR: char = '\u{1f}';

/// Splits a list aggregated in SQL.
pub(crate) fn split_list(list: Option<String>) -> Vec<String> {
    list.map(|l| {
        l.split(LIST_SEPARATOR)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// The statements of one call site ([`sql!`]), built once per backend and shape and kept for
/// the process: the first shapes in place (an atomic load to read), any other in a list.
pub(crate) struct Kept {
    first: [[OnceLock<&'static str>; FIRST_SHAPES]; 2],
    other: Mutex<Vec<(Backend, usize, &'static str)>>,
}

const FIRST_SHAPES: usize = 4;

impl Kept {
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: OnceLock<&'static str> = OnceLock::new();
    #[allow(clippy::declare_interior_mutable_const)]
    const ROW: [OnceLock<&'static str>; FIRST_SHAPES] = [Self::EMPTY; FIRST_SHAPES];

    pub(crate) const fn new() -> Self {
        Self {
            first: [Self::ROW; 2],
            other: Mutex::new(Vec::new()),
        }
    }

    /// The statement `build` writes for `backend` and `shape`, numbered. `build` must depend
    /// on nothing else: what it writes the first time is what every later call gets.
    pub(crate) fn get(
        &self,
        backend: Backend,
        shape: usize,
        build: impl FnOnce() -> String,
    ) -> &'static str {
        let leak = |text: String| -> &'static str { Box::leak(numbered(&text).into_boxed_str()) };
        if let Some(slot) = self.first[backend as usize].get(shape) {
            return slot.get_or_init(|| leak(build()));
        }
        let found = self
            .other
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(b, s, _)| *b == backend && *s == shape)
            .map(|(_, _, sql)| *sql);
        if let Some(sql) = found {
            return sql;
        }
        // Built outside the lock: a build may itself ask for statements.
        let sql = leak(build());
        let mut other = self.other.lock().unwrap_or_else(|e| e.into_inner());
        match other.iter().find(|(b, s, _)| *b == backend && *s == shape) {
            Some((_, _, kept)) => kept,
            None => {
                other.push((backend, shape, sql));
                sql
            }
        }
    }
}

/// The statement a call site writes for a backend (portable SQL, `?` placeholders), numbered;
/// built on the first call with that backend and shape (anything that changes the text, such
/// as a number of repeated parts), then kept for the process ([`Kept`]).
macro_rules! sql {
    ($backend:expr, $shape:expr, $build:expr) => {{
        static KEPT: $crate::dialect::Kept = $crate::dialect::Kept::new();
        KEPT.get($backend, $shape, $build)
    }};
}
pub(crate) use sql;

/// A statement that is the same on both backends.
macro_rules! portable {
    ($backend:expr, $text:expr) => {
        $crate::dialect::sql!($backend, 0, || String::from($text))
    };
}
pub(crate) use portable;

/// `?` placeholders numbered `$1`, `$2`, ... in order, outside quoted strings and
/// identifiers.
pub(crate) fn numbered(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut n = 0;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (None, '?') => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

/// Several numbered statements as one ([`one_call`]), numbered as a whole; built once per
/// backend and sequence of statements, then kept for the process.
pub(crate) fn composed(backend: Backend, parts: &[&'static str]) -> &'static str {
    type Key = (Backend, Vec<(usize, usize)>);
    static KEPT: Mutex<Option<HashMap<Key, &'static str>>> = Mutex::new(None);
    let key = (
        backend,
        parts
            .iter()
            .map(|p| (p.as_ptr() as usize, p.len()))
            .collect(),
    );
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    let kept = kept.get_or_insert_with(HashMap::new);
    kept.entry(key).or_insert_with(|| {
        let parts: Vec<String> = parts.iter().map(|p| unnumber(p)).collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        Box::leak(numbered(&one_call(backend, &parts)).into_boxed_str())
    })
}

/// A numbered statement back to `?` placeholders, to be numbered again as part of a whole.
fn unnumber(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '$') if chars.peek().is_some_and(char::is_ascii_digit) => {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                out.push('?');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// Several writes that read nothing back, as one statement: on PostgreSQL the first ones
/// become data-modifying `WITH` parts of the last (one statement is one transaction); on
/// SQLite they are written out with their `BEGIN IMMEDIATE` and `COMMIT`, which sqlx runs in
/// one call to the connection's thread. Placeholders stay in order either way.
pub(crate) fn one_call(backend: Backend, statements: &[&str]) -> String {
    match (backend, statements) {
        (_, []) => String::new(),
        (Backend::Postgres, [only]) => (*only).to_owned(),
        (Backend::Postgres, [first @ .., last]) => {
            let parts: Vec<String> = first
                .iter()
                .enumerate()
                .map(|(i, s)| format!("w{i} AS ({s})"))
                .collect();
            format!("WITH {} {last}", parts.join(", "))
        }
        (Backend::Sqlite, all) => format!("BEGIN IMMEDIATE; {}; COMMIT", all.join("; ")),
    }
}

/// One argument of a statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Vec<u8>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Arg::Bytes(v)
    }
}

/// A statement with its arguments, in the order of its placeholders.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub(crate) sql: &'static str,
    pub(crate) args: Vec<Arg>,
}

/// A query of the portable dialect, with its arguments bound.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

impl Stmt {
    pub(crate) fn new(sql: &'static str) -> Self {
        Self {
            sql,
            args: Vec::new(),
        }
    }

    pub(crate) fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub(crate) fn extend(mut self, args: impl IntoIterator<Item = Arg>) -> Self {
        self.args.extend(args);
        self
    }

    /// The sqlx query of this statement.
    pub(crate) fn query(self) -> AnyQuery<'static> {
        self.args
            .into_iter()
            .fold(sqlx::query(self.sql), |q, arg| match arg {
                Arg::Int(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
                Arg::Bytes(v) => q.bind(v),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order_outside_quotes() {
        assert_eq!(
            numbered("SELECT ? , '?' , \"a?\" FROM t WHERE a = ? AND b = ?"),
            "SELECT $1 , '?' , \"a?\" FROM t WHERE a = $2 AND b = $3"
        );
    }

    #[test]
    fn numbered_statements_compose_into_one_numbered_whole() {
        let sql = "INSERT INTO t VALUES ($1, '$2', $10)";
        assert_eq!(unnumber(sql), "INSERT INTO t VALUES (?, '$2', ?)");
        let a: &'static str = "INSERT INTO a VALUES ($1, $2)";
        let b: &'static str = "INSERT INTO b VALUES ($1)";
        assert_eq!(
            composed(Backend::Postgres, &[a, b]),
            "WITH w0 AS (INSERT INTO a VALUES ($1, $2)) INSERT INTO b VALUES ($3)"
        );
        assert!(std::ptr::eq(
            composed(Backend::Postgres, &[a, b]),
            composed(Backend::Postgres, &[a, b])
        ));
    }

    #[test]
    fn several_writes_are_one_statement_or_one_call() {
        let parts = ["INSERT INTO a VALUES (?)", "INSERT INTO b VALUES (?)"];
        assert_eq!(
            one_call(Backend::Postgres, &parts),
            "WITH w0 AS (INSERT INTO a VALUES (?)) INSERT INTO b VALUES (?)"
        );
        assert_eq!(
            one_call(Backend::Sqlite, &parts),
            "BEGIN IMMEDIATE; INSERT INTO a VALUES (?); INSERT INTO b VALUES (?); COMMIT"
        );
        assert_eq!(one_call(Backend::Postgres, &parts[..1]), parts[0]);
    }

    #[test]
    fn statements_are_built_once_per_site_backend_and_shape() {
        let mut built = 0;
        let mut at = |backend, shape| {
            sql!(backend, shape, || {
                built += 1;
                format!("SELECT ? -- {shape}")
            })
        };
        let first = at(Backend::Sqlite, 1);
        assert_eq!(first, "SELECT $1 -- 1");
        assert!(std::ptr::eq(first, at(Backend::Sqlite, 1)));
        at(Backend::Postgres, 1);
        at(Backend::Sqlite, 2);
        let far = at(Backend::Sqlite, 9);
        assert_eq!(far, "SELECT $1 -- 9");
        assert!(std::ptr::eq(far, at(Backend::Sqlite, 9)));
        assert_eq!(built, 4);
    }

    #[test]
    fn backends_are_recognized_by_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://data/auth.db"),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::from_url("mysql://u@h/db"), None);
    }
}
