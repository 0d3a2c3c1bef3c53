use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{TestDb, base_env};

const BIN: &str = env!("CARGO_BIN_EXE_auth-service");

/// The binary with the test settings and a fresh database; no inherited AUTH_* variables.
pub fn command(db_url: &str) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("AUTH_")
            || k.starts_with("JWT_")
            || k.starts_with("DATABASE_")
            || k == "PORT"
            || k == "REDIS_URL"
        {
            cmd.env_remove(k);
        }
    }
    cmd.envs(base_env())
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "info");
    cmd
}

#[tokio::test]
async fn config_check_prints_the_redacted_configuration_or_each_problem() {
    let (_db, url) = TestDb::create().await;
    let out = command(&url)
        .args(["config", "check"])
        .env("JWT_SECRET_KEY", "s3cr3t-value-of-more-than-32-bytes!!")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("jwt_secret_key = \"[redacted]\""), "{text}");
    assert!(!text.contains("s3cr3t"));

    let out = command(&url)
        .args(["config", "check"])
        .env("JWT_ALGORITHM", "HS256")
        .env("JWT_SECRET_KEY", "short")
        .env("PORT", "x")
        .env("AUTH_TYPO", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        2,
        "{err}"
    );
    assert!(
        err.contains("warning: unknown environment variable AUTH_TYPO"),
        "{err}"
    );
    assert!(!err.contains("short"), "the secret is not echoed: {err}");

    // serve refuses to start with the same problems, exit 2.
    let out = command(&url)
        .env("JWT_ALGORITHM", "HS256")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET_KEY): required"));
}

#[tokio::test]
async fn openapi_prints_the_document() {
    let out = Command::new(BIN).arg("openapi").output().unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["paths"]["/auth/login"].is_object());
}

#[tokio::test]
async fn user_create_reads_the_password_from_stdin_and_the_user_can_log_in() {
    let (_db, url) = TestDb::create().await;
    let mut child = command(&url)
        .args([
            "user",
            "create",
            "--email",
            "root@example.com",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a first administrator password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin, user"));

    let mut child = command(&url)
        .args([
            "user",
            "create",
            "--email",
            "weak@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("weak password"));

    let (server, addr) = start_server(&url);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{addr}/auth/login"))
        .json(&json!({"email": "root@example.com", "password": "a first administrator password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me: Value = client
        .get(format!("{addr}/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"], json!(["admin", "user"]));
    stop(server);
}

/// Starts `serve` and reads the listening address from its log line.
fn start_server(url: &str) -> (std::process::Child, String) {
    let (child, addr, _) = start_server_logged(url);
    (child, addr)
}

/// Starts `serve`; the log lines after the listening one are collected.
fn start_server_logged(
    url: &str,
) -> (
    std::process::Child,
    String,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    serve_logged(command(url))
}

/// Starts `serve` with `cmd` (its settings); the log lines after the listening one are
/// collected, pretty or JSON.
pub fn serve_logged(
    mut cmd: Command,
) -> (
    std::process::Child,
    String,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            let end = |c: char| c.is_whitespace() || c == '"';
            break rest.split(end).next().unwrap().to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let collected = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            collected.lock().unwrap().push(line);
        }
    });
    (child, addr, log)
}

/// Refusals a client earns (a taken email, a wrong password, a bad token) are answered and
/// logged below `ERROR`: that level is for what an operator must look at. A log written to a
/// pipe (as here) has no terminal colour codes.
#[tokio::test]
async fn client_errors_are_not_logged_as_errors_and_a_piped_log_has_no_colours() {
    let (_db, url) = TestDb::create().await;
    let (server, addr, log) = start_server_logged(&url);
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{addr}{path}")).json(&body).send();
    let signup = json!({"email": "twice@example.com", "password": "a long password"});
    assert_eq!(
        post("/auth/signup", signup.clone()).await.unwrap().status(),
        201
    );
    assert_eq!(post("/auth/signup", signup).await.unwrap().status(), 409);
    let wrong = json!({"email": "twice@example.com", "password": "not the password"});
    assert_eq!(post("/auth/login", wrong).await.unwrap().status(), 401);
    let bad = json!({"refresh_token": "not-a-token"});
    assert_eq!(post("/auth/refresh", bad).await.unwrap().status(), 401);
    assert_eq!(stop(server).code(), Some(0));
    let log = log.lock().unwrap();
    assert!(
        log.iter().any(|l| l.contains("request refused")),
        "{log:#?}"
    );
    let errors: Vec<&String> = log.iter().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(log.iter().all(|l| !l.contains('\u{1b}')), "{log:#?}");
}

pub fn stop(mut child: std::process::Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap()
}

#[tokio::test]
async fn serve_starts_with_migrations_and_a_key_and_exits_0_on_sigterm() {
    let (_db, url) = TestDb::create().await;
    let (server, addr) = start_server(&url);
    let r = reqwest::get(format!("{addr}/.well-known/jwks.json"))
        .await
        .unwrap();
    let jwks: Value = r.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let status = stop(server);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test]
async fn keys_rotate_and_list_from_the_command_line() {
    let (_db, url) = TestDb::create().await;
    let run = |args: &[&str]| {
        command(&url)
            .args(args)
            .env("AUTH_KEY_PROPAGATION_SECONDS", "0")
            .output()
            .unwrap()
    };
    let out = run(&["keys", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        list.lines().filter(|l| l.contains(" active ")).count(),
        1,
        "{list}"
    );

    let out = run(&["keys", "rotate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("is now signing"));
    let list = String::from_utf8_lossy(&run(&["keys", "list"]).stdout).to_string();
    assert_eq!(
        list.lines().filter(|l| l.contains(" active ")).count(),
        1,
        "{list}"
    );
    assert_eq!(
        list.lines().filter(|l| l.contains(" retired ")).count(),
        1,
        "{list}"
    );
}

/// Creates a user from the command line: a second process writing to the service's database.
fn create_user_from_the_command_line(url: &str, email: &str) -> std::process::Output {
    let mut child = command(url)
        .args(["user", "create", "--email", email, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a password from the cli\n")
        .unwrap();
    child.wait_with_output().unwrap()
}

/// With SQLite the command line is another process on the same file: while the service
/// rotates refresh tokens as fast as it can, the command line's writes wait for the write lock
/// (busy timeout) instead of failing, and the service's writes do not fail either.
#[tokio::test]
async fn the_command_line_writes_while_the_service_is_busy_writing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let app = crate::helpers::spawn_app().await;
    let mut chains = Vec::new();
    for i in 0..4 {
        let email = format!("busy{i}@example.com");
        app.signup(&email).await;
        chains.push(app.login_pair(&email).await.refresh);
    }
    let done = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for mut token in chains {
        let (client, url, done) = (app.client.clone(), app.url("/auth/refresh"), done.clone());
        workers.push(tokio::spawn(async move {
            let mut rotations = 0u64;
            while !done.load(Ordering::Relaxed) {
                let r = client
                    .post(&url)
                    .json(&json!({"refresh_token": token}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    r.status(),
                    200,
                    "a rotation failed: {}",
                    r.text().await.unwrap()
                );
                let body: Value = r.json().await.unwrap();
                token = body["refresh_token"].as_str().unwrap().to_owned();
                rotations += 1;
            }
            rotations
        }));
    }
    let url = app.config.database.url.expose_secret().to_owned();
    for i in 0..5 {
        let (url, email) = (url.clone(), format!("cli{i}@example.com"));
        let out =
            tokio::task::spawn_blocking(move || create_user_from_the_command_line(&url, &email))
                .await
                .unwrap();
        assert!(
            out.status.success(),
            "user create #{i} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    done.store(true, Ordering::Relaxed);
    let mut rotations = 0;
    for w in workers {
        let n = w.await.unwrap();
        assert!(n > 0, "every chain rotated while the command line wrote");
        rotations += n;
    }
    let created = app
        .count("SELECT COUNT(*) FROM users WHERE email LIKE 'cli%@example.com'")
        .await;
    assert_eq!(created, 5);
    // Every rotation left exactly one new token; nothing was half-written.
    let tokens = app.count("SELECT COUNT(*) FROM refresh_tokens").await;
    assert_eq!(tokens, 4 + rotations as i64);
    let r = app
        .login("cli4@example.com", "a password from the cli")
        .await;
    assert_eq!(r.status(), 200);
}

/// Runs the binary with `args` and a password on standard input.
fn run_with_password(url: &str, args: &[&str], password: &str) -> std::process::Output {
    let mut child = command(url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn tenants_are_created_and_listed_and_users_created_in_them() {
    let (_db, url) = TestDb::create().await;
    let out = command(&url)
        .args(["tenant", "create", "acme", "--name", "Acme Corp"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Again: refused, exit 2, nothing changed.
    let out = command(&url)
        .args(["tenant", "create", "acme"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tenant"));
    let out = command(&url)
        .args(["tenant", "create", "Not A Slug"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = command(&url).args(["tenant", "list"]).output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    let slugs: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(slugs, ["acme", "default"], "{listing}");
    assert!(listing.contains("Acme Corp"));

    let args = [
        "user",
        "create",
        "--tenant",
        "acme",
        "--email",
        "boss@acme.example",
        "--role",
        "admin",
        "--password-stdin",
    ];
    let out = run_with_password(&url, &args, "a passphrase for the chief");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = [
        "user",
        "create",
        "--tenant",
        "nowhere",
        "--email",
        "x@example.com",
        "--password-stdin",
    ];
    let out = run_with_password(&url, &args, "a passphrase for nobody");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant nowhere"));

    // The boss logs in to acme, not to the default tenant, and administers acme.
    let app = crate::helpers::spawn_app_on(&url).await;
    let r = app
        .post_json(
            "/auth/login",
            &json!({"email": "boss@acme.example", "password": "a passphrase for the chief", "tenant": "acme"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let page: Value = app
        .get_with_token("/auth/admin/users", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["tenant"], "acme");
    let r = app
        .post_json(
            "/auth/login",
            &json!({"email": "boss@acme.example", "password": "a passphrase for the chief"}),
        )
        .await;
    assert_eq!(r.status(), 401);
}
