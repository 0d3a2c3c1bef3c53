//! `auth-service users import` against a running service's database: users from CSV, JSON and
//! Django files (with hashes made by the Python libraries) log in over HTTP; a file with
//! errors writes nothing and names each line; re-running a file changes nothing.

use std::path::PathBuf;
use std::process::Output;

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::cli::command;
use crate::helpers::{TestApp, assert_problem, spawn_app};
use crate::passwords::LEGACY_FIXTURES;

/// The ASCII fixture of a format: (hash, password).
fn fixture(format: &str) -> (String, String) {
    let doc: Value = serde_json::from_str(LEGACY_FIXTURES).unwrap();
    let f = doc["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["format"] == format && f["password_form"] == "ascii")
        .unwrap_or_else(|| panic!("no fixture {format}"));
    (
        f["hash"].as_str().unwrap().to_owned(),
        f["password"].as_str().unwrap().to_owned(),
    )
}

struct Import<'a> {
    app: &'a TestApp,
    dir: PathBuf,
}

impl<'a> Import<'a> {
    fn new(app: &'a TestApp) -> Self {
        let dir = std::env::temp_dir().join(format!("auth-import-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { app, dir }
    }

    /// Runs `users import` on a file with `content`; the output, stdout and stderr. It waits
    /// on a blocking thread: the test's runtime keeps serving the app meanwhile (a write the
    /// app has begun on SQLite would otherwise hold the lock the command waits for).
    async fn run(&self, format: &str, content: &str, extra: &[&str]) -> (Output, String, String) {
        let file = self.dir.join(format!("users.{format}"));
        std::fs::write(&file, content).unwrap();
        let url = self.app.config.database.url.expose_secret().to_owned();
        let mut cmd = command(&url);
        cmd.args(["users", "import", "--format", format])
            .arg(&file)
            .args(extra);
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out, stdout, stderr)
    }
}

impl Drop for Import<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn imported_csv_users_log_in_and_a_second_run_changes_nothing() {
    let app = spawn_app().await;
    let import = Import::new(&app);
    let (bcrypt, password) = fixture("passlib bcrypt $2b$");
    let (pbkdf2, _) = fixture("django pbkdf2_sha256");
    let (argon2, _) = fixture("django argon2");
    let csv = format!(
        "email,password_hash,username,roles,is_active\n\
         ann@example.com,{bcrypt},ann_b,admin,true\n\
         bob@example.com,\"{pbkdf2}\",,,1\n\
         \n\
         cy@example.com,\"{argon2}\",,,false\n"
    );
    let (out, stdout, stderr) = import.run("csv", &csv, &["--dry-run"]).await;
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("dry run, nothing written: 3 to create"),
        "{stdout}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);

    let (out, stdout, stderr) = import.run("csv", &csv, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("imported: 3 created, 0 updated, 0 unchanged"),
        "{stdout}"
    );
    let r = app.login("ann@example.com", &password).await;
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me: Value = app
        .get_with_token("/auth/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"], json!(["admin", "user"]));
    assert_eq!(me["username"], "ann_b");
    assert_eq!(app.login("bob@example.com", &password).await.status(), 200);
    // Inactive in the old service: disabled here, told only after the right password.
    assert_problem(
        app.login("cy@example.com", &password).await,
        403,
        "account_disabled",
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE kind = 'user.imported'")
            .await,
        3
    );

    // Again, with either conflict rule: nothing changes (the two hashes upgraded at login
    // differ from the file's now, so `update` would put them back: skip is the default).
    let (out, stdout, _) = import.run("csv", &csv, &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("0 created, 0 updated, 3 unchanged"),
        "{stdout}"
    );
    let (out, stdout, _) = import.run("csv", &csv, &["--on-conflict", "skip"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("0 created, 0 updated, 3 unchanged"),
        "{stdout}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE kind = 'user.imported'")
            .await,
        3
    );
}

#[tokio::test]
async fn update_makes_existing_users_match_the_file_once() {
    let app = spawn_app().await;
    let import = Import::new(&app);
    let (bcrypt, password) = fixture("passlib bcrypt $2y$");
    let (other, _) = fixture("django bcrypt_sha256");
    let first = json!([{"email": "d@example.com", "password_hash": bcrypt, "roles": []}]);
    let (out, _, stderr) = import.run("json", &first.to_string(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let second = json!([{"email": "D@example.com", "password_hash": other, "username": "dee",
                         "roles": ["admin"], "is_active": false}]);
    for (expected, run) in [
        ("0 created, 1 updated", 1),
        ("0 created, 0 updated, 1 unchanged", 2),
    ] {
        let (out, stdout, stderr) = import
            .run("json", &second.to_string(), &["--on-conflict", "update"])
            .await;
        assert_eq!(out.status.code(), Some(0), "run {run}: {stderr}");
        assert!(stdout.contains(expected), "run {run}: {stdout}");
    }
    assert_problem(
        app.login("d@example.com", &password).await,
        403,
        "account_disabled",
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM user_roles r JOIN users u ON u.id = r.user_id WHERE u.username = 'dee'")
            .await,
        2
    );
}

#[tokio::test]
async fn a_django_dumpdata_imports_superusers_as_admins() {
    let app = spawn_app().await;
    let import = Import::new(&app);
    let (pbkdf2, password) = fixture("django pbkdf2_sha256");
    let dump = json!([
        {"model": "contenttypes.contenttype", "pk": 1, "fields": {"app_label": "accounts", "model": "user"}},
        {"model": "accounts.user", "pk": 1, "fields": {"password": pbkdf2, "last_login": null,
            "is_superuser": true, "email": "root@example.com", "is_active": true, "is_staff": true,
            "date_joined": "2026-11-22T06:40:00Z", "groups": [], "user_permissions": []}},
        {"model": "accounts.user", "pk": 2, "fields": {"password": pbkdf2, "last_login": null,
            "is_superuser": false, "email": "staff@example.com", "is_active": true, "is_staff": true,
            "date_joined": "2026-11-22T06:40:00Z", "groups": [], "user_permissions": []}}
    ]);
    let (out, stdout, stderr) = import.run("django", &dump.to_string(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("2 created"), "{stdout}");
    assert!(
        stderr.contains("1 record(s) of models without a password field skipped"),
        "{stderr}"
    );
    for (email, roles) in [
        ("root@example.com", json!(["admin", "user"])),
        ("staff@example.com", json!(["user"])),
    ] {
        let r = app.login(email, &password).await;
        assert_eq!(r.status(), 200, "{email}");
        let token = r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let me: Value = app
            .get_with_token("/auth/me", &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["roles"], roles, "{email}");
    }
}

#[tokio::test]
async fn a_file_with_errors_writes_nothing_and_names_each_line() {
    let app = spawn_app().await;
    let import = Import::new(&app);
    let (bcrypt, _) = fixture("passlib bcrypt $2b$");
    let csv = format!(
        "email,password_hash,roles\n\
         ok@example.com,{bcrypt},\n\
         bad@example.com,md5$abc$def,\n\
         no-at-sign,{bcrypt},\n\
         role@example.com,{bcrypt},nope\n\
         OK@example.com,{bcrypt},\n"
    );
    let (out, stdout, stderr) = import.run("csv", &csv, &[]).await;
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    for expected in [
        "error: line 3: password_hash: unknown password hash format",
        "error: line 4: email: must contain @",
        "error: line 5: roles: role \"nope\" does not exist in tenant default",
        "error: line 6: email: also on line/record 2",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert!(!stderr.contains("line 2:"), "{stderr}");
    assert!(stdout.contains("nothing imported: 4 error(s)"), "{stdout}");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);

    let cases: [(&str, &str, &[&str], &str); 4] = [
        (
            "json",
            "{\"not\": \"an array\"}",
            &[],
            "must hold a JSON array",
        ),
        (
            "json",
            "[{\"email\": \"x@example.com\"}]",
            &[],
            "record 1: missing field `password_hash`",
        ),
        (
            "csv",
            "email,password\n",
            &[],
            "unknown column \"password\"",
        ),
        (
            "csv",
            "email,password_hash\n",
            &["--tenant", "acme"],
            "tenant \"acme\" does not exist",
        ),
    ];
    for (format, content, extra, expected) in cases {
        let (out, _, stderr) = import.run(format, content, extra).await;
        assert_eq!(out.status.code(), Some(2), "{content}: {stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}
