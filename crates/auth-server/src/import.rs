//! `auth-service users import`: reads users exported from other services (a Django `dumpdata`
//! of a user model, or CSV / JSON with `email`, `password_hash`, `username?`, `roles?`,
//! `is_active?`) and hands them to the account service, which validates every record and
//! writes all of them in one transaction or none. Formats, role mapping and exit codes:
//! docs/MIGRATION.md.

use std::path::Path;
use std::process::ExitCode;

use auth_core::domain::{ROLE_ADMIN, TenantId};
use auth_core::service::{ImportRecord, ImportReport, OnConflict};
use serde::Deserialize;
use serde_json::Value;

use crate::config::Config;
use crate::startup::{build_state, open_store};

/// The format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// `manage.py dumpdata <app>.<user model>`: a JSON array of `{model, pk, fields}`.
    Django,
    /// A header line, then one user per line.
    Csv,
    /// A JSON array of user objects.
    Json,
}

/// `--on-conflict`: what to do with a user whose email already exists in the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConflictChoice {
    /// Leave the existing user as it is.
    Skip,
    /// Make the existing user match the file.
    Update,
}

/// Exit code for input that cannot be imported (unreadable file, bad records, no tenant).
const INVALID_INPUT: u8 = 2;

/// Runs the command: 0 when imported (or, with `dry_run`, importable), 2 when the input is
/// invalid (nothing written), 1 when anything else failed (nothing written).
pub async fn run(
    config: &Config,
    format: ImportFormat,
    file: &Path,
    tenant: &str,
    dry_run: bool,
    on_conflict: ConflictChoice,
) -> ExitCode {
    let tenant = match TenantId::parse(tenant) {
        Ok(t) => t,
        Err(m) => {
            eprintln!("error: --tenant: {m}");
            return ExitCode::from(INVALID_INPUT);
        }
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::from(INVALID_INPUT);
        }
    };
    let (records, unit) = match parse(format, &text) {
        Ok(parsed) => parsed,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(INVALID_INPUT);
        }
    };
    let state = match open_store(config).await {
        Ok(store) => match build_state(config, store).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let on_conflict = match on_conflict {
        ConflictChoice::Skip => OnConflict::Skip,
        ConflictChoice::Update => OnConflict::Update,
    };
    let result = state
        .accounts
        .import_users(&tenant, records, on_conflict, dry_run)
        .await;
    state.store.close().await;
    match result {
        Ok(report) => print_report(&report, unit, dry_run),
        Err(e) => {
            eprintln!("error: nothing imported: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_report(report: &ImportReport, unit: &str, dry_run: bool) -> ExitCode {
    for (at, message) in &report.errors {
        if *at == 0 {
            eprintln!("error: {message}");
        } else {
            eprintln!("error: {unit} {at}: {message}");
        }
    }
    let ImportReport {
        created,
        updated,
        unchanged,
        ..
    } = report;
    if !report.errors.is_empty() {
        println!(
            "nothing imported: {} error(s); {created} to create, {updated} to update, {unchanged} unchanged",
            report.errors.len()
        );
        return ExitCode::from(INVALID_INPUT);
    }
    if dry_run {
        println!(
            "dry run, nothing written: {created} to create, {updated} to update, {unchanged} unchanged"
        );
    } else {
        println!("imported: {created} created, {updated} updated, {unchanged} unchanged");
    }
    ExitCode::SUCCESS
}

/// Reads a file into records, with the word its positions are counted in (`line` for CSV,
/// `record` for JSON); or every problem that stops it being read at all.
pub fn parse(
    format: ImportFormat,
    text: &str,
) -> Result<(Vec<ImportRecord>, &'static str), Vec<String>> {
    match format {
        ImportFormat::Csv => parse_csv(text).map(|r| (r, "line")),
        ImportFormat::Json => parse_json(text).map(|r| (r, "record")),
        ImportFormat::Django => parse_django(text).map(|r| (r, "record")),
    }
}

const CSV_COLUMNS: [&str; 5] = ["email", "password_hash", "username", "roles", "is_active"];

fn parse_csv(text: &str) -> Result<Vec<ImportRecord>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| vec![format!("line 1: cannot read the header: {e}")])?
        .clone();
    let mut errors = Vec::new();
    let column = |name: &str| headers.iter().position(|h| h == name);
    for h in headers.iter() {
        if !CSV_COLUMNS.contains(&h) {
            errors.push(format!(
                "line 1: unknown column {h:?} (columns: {})",
                CSV_COLUMNS.join(", ")
            ));
        }
    }
    for required in ["email", "password_hash"] {
        if column(required).is_none() {
            errors.push(format!("line 1: the column {required:?} is missing"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let (email, hash) = (
        column("email").unwrap_or(0),
        column("password_hash").unwrap_or(0),
    );
    let (username, roles, active) = (column("username"), column("roles"), column("is_active"));
    // The line a record starts on, from its byte offset: the reader's own line count, and
    // its offsets, include the blank lines it skipped before the record.
    let line_at = |byte: u64| {
        let bytes = text.as_bytes();
        let mut end = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
        while end < bytes.len() && matches!(bytes[end], b'\n' | b'\r') {
            end += 1;
        }
        bytes[..end].iter().filter(|b| **b == b'\n').count() + 1
    };
    let mut records = Vec::new();
    for row in reader.records() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(p.byte()));
                errors.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let at = row.position().map_or(0, |p| line_at(p.byte()));
        let cell = |i: Option<usize>| i.and_then(|i| row.get(i)).filter(|c| !c.is_empty());
        let is_active = match cell(active).map(boolean).transpose() {
            Ok(a) => a.unwrap_or(true),
            Err(m) => {
                errors.push(format!("line {at}: is_active: {m}"));
                continue;
            }
        };
        records.push(ImportRecord {
            at,
            email: row.get(email).unwrap_or_default().to_owned(),
            username: cell(username).map(str::to_owned),
            password_hash: row.get(hash).unwrap_or_default().to_owned(),
            roles: cell(roles).map(split_roles),
            active: is_active,
        });
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(errors)
    }
}

fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" => Ok(true),
        "false" | "f" | "0" | "no" => Ok(false),
        _ => Err(format!("{text:?} is not true or false")),
    }
}

/// Roles in one cell or string: separated by `;`, `,` or spaces.
fn split_roles(text: &str) -> Vec<String> {
    text.split([';', ',', ' '])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One user of the JSON format.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonUser {
    email: String,
    password_hash: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    roles: Option<Roles>,
    #[serde(default)]
    is_active: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Roles {
    List(Vec<String>),
    Text(String),
}

fn json_array(text: &str) -> Result<Vec<Value>, Vec<String>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) => Err(vec!["the file must hold a JSON array".into()]),
        Err(e) => Err(vec![format!("not valid JSON: {e}")]),
    }
}

fn parse_json(text: &str) -> Result<Vec<ImportRecord>, Vec<String>> {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in json_array(text)?.into_iter().enumerate() {
        let at = i + 1;
        match serde_json::from_value::<JsonUser>(item) {
            Ok(u) => records.push(ImportRecord {
                at,
                email: u.email,
                username: u.username,
                password_hash: u.password_hash,
                roles: u.roles.map(|r| match r {
                    Roles::List(list) => list,
                    Roles::Text(text) => split_roles(&text),
                }),
                active: u.is_active.unwrap_or(true),
            }),
            Err(e) => errors.push(format!("record {at}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(errors)
    }
}

/// A Django `dumpdata` record of a user model (`auth.user` or a custom one); other fields
/// (`last_login`, `date_joined`, `groups`, `user_permissions`, ...) are ignored.
#[derive(Deserialize)]
struct DjangoRecord {
    model: String,
    fields: DjangoUser,
}

#[derive(Deserialize)]
struct DjangoUser {
    password: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default = "yes")]
    is_active: bool,
    #[serde(default)]
    is_superuser: bool,
}

fn yes() -> bool {
    true
}

/// Django users: `is_superuser` maps to the `admin` role; `is_staff`, groups and
/// permissions carry no role (docs/MIGRATION.md says why). Records of other models (no
/// `password` field) are skipped with a note.
fn parse_django(text: &str) -> Result<Vec<ImportRecord>, Vec<String>> {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let mut skipped = 0;
    for (i, item) in json_array(text)?.into_iter().enumerate() {
        let at = i + 1;
        let is_user = item.get("fields").and_then(|f| f.get("password")).is_some();
        if !is_user {
            skipped += 1;
            continue;
        }
        match serde_json::from_value::<DjangoRecord>(item) {
            Ok(DjangoRecord { model, fields: u }) => {
                tracing::debug!(%model, record = at, "django user");
                records.push(ImportRecord {
                    at,
                    email: u.email.unwrap_or_default(),
                    username: u.username,
                    password_hash: u.password,
                    roles: Some(if u.is_superuser {
                        vec![ROLE_ADMIN.to_owned()]
                    } else {
                        Vec::new()
                    }),
                    active: u.is_active,
                })
            }
            Err(e) => errors.push(format!("record {at}: {e}")),
        }
    }
    if skipped > 0 {
        eprintln!("note: {skipped} record(s) of models without a password field skipped");
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_keep_their_line_numbers_and_bad_headers_are_refused() {
        let text = "email,password_hash,username,roles,is_active\n\
                    a@example.com,$2b$12$x,ann,admin;user,1\n\
                    \n\
                    \"b@example.com\",\"pbkdf2_sha256$1$s$h\",,,false\n";
        let (records, unit) = parse(ImportFormat::Csv, text).unwrap();
        assert_eq!(unit, "line");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].at, 2);
        assert_eq!(
            records[0].roles.as_deref(),
            Some(&["admin".to_owned(), "user".to_owned()][..])
        );
        assert_eq!(records[1].at, 4);
        assert!(!records[1].active && records[1].username.is_none() && records[1].roles.is_none());

        let cases = [
            ("email,hash\n", "unknown column \"hash\""),
            ("email\n", "\"password_hash\" is missing"),
            (
                "email,password_hash,is_active\na@b.co,x,maybe\n",
                "line 2: is_active",
            ),
        ];
        for (text, expected) in cases {
            let errors = parse(ImportFormat::Csv, text).unwrap_err();
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{text:?}: {errors:?}"
            );
        }
    }

    #[test]
    fn json_and_django_records_are_numbered_and_mapped() {
        let json = r#"[{"email":"a@example.com","password_hash":"h","roles":"admin"},
                       {"email":"b@example.com","password_hash":"h","is_active":false,"roles":["x"]}]"#;
        let (records, unit) = parse(ImportFormat::Json, json).unwrap();
        assert_eq!((unit, records.len(), records[1].at), ("record", 2, 2));
        assert_eq!(records[0].roles.as_deref(), Some(&["admin".to_owned()][..]));
        let errors = parse(
            ImportFormat::Json,
            r#"[{"email":"a@example.com"}, {"email":"b","password_hash":"h","pw":1}]"#,
        )
        .unwrap_err();
        assert!(
            errors[0].starts_with("record 1:") && errors[1].starts_with("record 2:"),
            "{errors:?}"
        );
        assert!(parse(ImportFormat::Json, "{}").is_err());

        let django = r#"[{"model":"contenttypes.contenttype","pk":1,"fields":{"app_label":"x"}},
            {"model":"accounts.user","pk":1,"fields":{"password":"pbkdf2_sha256$1$s$h","email":"root@example.com","is_active":true,"is_superuser":true,"is_staff":true,"last_login":null}},
            {"model":"auth.user","pk":2,"fields":{"password":"!x","username":"bob","email":"","is_active":false,"is_superuser":false}}]"#;
        let (records, _) = parse(ImportFormat::Django, django).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].at, records[1].at), (2, 3));
        assert_eq!(records[0].roles.as_deref(), Some(&["admin".to_owned()][..]));
        assert_eq!(records[1].roles.as_deref(), Some(&[][..]));
        assert!(!records[1].active);
        assert_eq!(records[1].username.as_deref(), Some("bob"));
    }
}
