//! Test harness: a running application on port 0 with its own database, and typed helpers.

use std::collections::HashMap;
use std::path::PathBuf;

use auth_client::proto::{Problem, TokenResponse};
use auth_core::events::{MailSeal, OutgoingMail};
use auth_server::config::{Config, RawConfig};
use auth_server::startup::Application;
use auth_server::state::AppState;
use reqwest::{Client, Response};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::AnyPool;

pub const PASSWORD: &str = "correct horse battery";

/// A database of one test, removed when the test ends.
pub enum TestDb {
    Sqlite(PathBuf),
    Postgres { admin_url: String, schema: String },
}

impl TestDb {
    /// PostgreSQL when `TEST_DATABASE_URL` is a postgres URL (a fresh schema in it),
    /// else a SQLite file in a fresh temporary folder.
    pub async fn create() -> (Self, String) {
        let id = uuid::Uuid::now_v7().simple().to_string();
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if url.starts_with("postgres") => {
                sqlx::any::install_default_drivers();
                let schema = format!("t_{id}");
                let pool = AnyPool::connect(&url)
                    .await
                    .expect("TEST_DATABASE_URL must be reachable");
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                let sep = if url.contains('?') { '&' } else { '?' };
                let test_url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
                (
                    Self::Postgres {
                        admin_url: url,
                        schema,
                    },
                    test_url,
                )
            }
            _ => {
                let dir = std::env::temp_dir().join(format!("auth-service-test-{id}"));
                let url = format!("sqlite://{}/auth.db", dir.display());
                (Self::Sqlite(dir), url)
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            TestDb::Postgres { admin_url, schema } => {
                run_admin_from_drop(admin_url, vec![format!("DROP SCHEMA {schema} CASCADE")]);
            }
        }
    }
}

/// Runs administrative statements on `url` from a drop, which runs inside a test's runtime:
/// from a thread with a runtime of its own, ignoring failures (it is clean-up).
///
/// Waits 10 s at most: the test's runtime is blocked meanwhile, and a task of the application
/// it runs may be in the middle of a transaction (a relay renewing its lease) whose locks a
/// `DROP SCHEMA` waits for. That transaction ends when the runtime does, right after the test,
/// and the statements finish then on their own thread.
pub fn run_admin_from_drop(url: &str, statements: Vec<String>) {
    let url = url.to_owned();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let pool = AnyPool::connect(&url).await.ok()?;
            for sql in statements {
                let _ = sqlx::query(&sql).execute(&pool).await;
            }
            pool.close().await;
            Some(())
        });
        done.send(()).ok()
    });
    let _ = finished.recv_timeout(std::time::Duration::from_secs(10));
}

pub struct TestApp {
    pub addr: String,
    pub client: Client,
    pub state: AppState,
    pub config: Config,
    _db: Option<TestDb>,
}

/// The rate-limit settings, each set `off` by [`base_env`].
pub const RATE_LIMITS: [&str; 6] = [
    "AUTH_RATE_LOGIN_IP",
    "AUTH_RATE_LOGIN_ACCOUNT",
    "AUTH_RATE_SIGNUP_IP",
    "AUTH_RATE_REFRESH_IP",
    "AUTH_RATE_RESET_ACCOUNT",
    "AUTH_RATE_RESET_IP",
];

/// Settings every test uses: a free port, cheap Argon2 parameters, no rate limits (tests sign
/// up and log in many times from 127.0.0.1; the rate-limit tests set their own) and no mail.
pub fn base_env() -> HashMap<String, String> {
    [
        ("PORT", "0"),
        ("AUTH_ISSUER", "https://auth.test"),
        ("AUTH_AUDIENCE", "platform"),
        ("AUTH_ARGON2_MEMORY_KIB", "256"),
        ("AUTH_ARGON2_ITERATIONS", "1"),
        // Mail stays in the outbox, where tests read it; the mail tests pick a transport.
        ("AUTH_MAIL_TRANSPORT", "off"),
        // Shutdown stops at once; the tests of the delay set their own.
        ("AUTH_SHUTDOWN_DELAY_SECONDS", "0"),
    ]
    .into_iter()
    .chain(RATE_LIMITS.map(|name| (name, "off")))
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the application with extra environment settings.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let (db, url) = TestDb::create().await;
    let (addr, state, config) = start(&url, extra).await;
    TestApp {
        addr,
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        config,
        _db: Some(db),
    }
}

/// Serves the application with extra settings on a database a test made, which the app
/// removes when it drops (another process may already serve it).
pub async fn spawn_app_in(db: TestDb, database_url: &str, extra: &[(&str, &str)]) -> TestApp {
    let (addr, state, config) = start(database_url, extra).await;
    TestApp {
        addr,
        client: Client::new(),
        state,
        config,
        _db: Some(db),
    }
}

/// Serves the application on a database a test already made (and removes).
pub async fn spawn_app_on(database_url: &str) -> TestApp {
    let (addr, state, config) = start(database_url, &[]).await;
    TestApp {
        addr,
        client: Client::new(),
        state,
        config,
        _db: None,
    }
}

/// The configuration of the test settings plus `extra` on `database_url`.
pub fn config(database_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut env = base_env();
    env.insert("DATABASE_URL".into(), database_url.to_owned());
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    RawConfig::load(None, &|n| env.get(n).cloned(), &[])
        .unwrap()
        .validate()
        .unwrap()
}

/// Builds the application on `database_url` with the test settings plus `extra`, not serving.
pub async fn build(database_url: &str, extra: &[(&str, &str)]) -> (Application, Config) {
    let config = config(database_url, extra);
    let app = Application::build(&config)
        .await
        .expect("application starts");
    (app, config)
}

/// Builds and serves the application on `database_url` with the test settings plus `extra`.
async fn start(database_url: &str, extra: &[(&str, &str)]) -> (String, AppState, Config) {
    let (app, config) = build(database_url, extra).await;
    let addr = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    (addr, state, config)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.addr)
    }

    pub fn pool(&self) -> &AnyPool {
        self.state.store.pool()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn signup(&self, email: &str) -> Value {
        let r = self
            .post_json(
                "/auth/signup",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status(), 201, "signup of {email}");
        r.json().await.unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Signs up and logs in; returns the access token.
    pub async fn token_for(&self, email: &str) -> String {
        self.signup(email).await;
        self.login_pair(email).await.access
    }

    /// Logs in an existing user with [`PASSWORD`].
    pub async fn login_pair(&self, email: &str) -> Pair {
        let r = self.login(email, PASSWORD).await;
        assert_eq!(r.status(), 200, "login of {email}");
        Pair::from(r.json::<Value>().await.unwrap())
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json("/auth/refresh", &json!({"refresh_token": refresh_token}))
            .await
    }

    /// Another instance of the service on the same database, with extra settings.
    pub async fn sibling(&self, extra: &[(&str, &str)]) -> (String, AppState) {
        let url = self.config.database.url.expose_secret().to_owned();
        let (addr, state, _) = start(&url, extra).await;
        (addr, state)
    }

    /// The same database through another instance listening at `addr` ([`Self::sibling`]).
    pub fn through(&self, addr: String) -> TestApp {
        TestApp {
            addr,
            client: self.client.clone(),
            state: self.state.clone(),
            config: self.config.clone(),
            _db: None,
        }
    }

    /// The mails of template `kind` waiting in the outbox, oldest first, read back as the
    /// mailer reads them (a token sealed under `AUTH_MASTER_KEY` opened).
    pub async fn mails(&self, kind: &str) -> Vec<OutgoingMail> {
        let rows: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT id, payload FROM outbox WHERE channel = 'mail' AND kind = '{kind}' ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await
        .unwrap();
        let master = self.config.keys.master_key.as_ref();
        let seal = MailSeal::new(master.map(|k| k.expose_secret().as_bytes()));
        rows.iter()
            .map(|(id, payload)| {
                let payload: Value = serde_json::from_str(payload).unwrap();
                OutgoingMail::from_payload(id, &payload, &seal).expect("a mail the mailer reads")
            })
            .collect()
    }

    /// The token of the newest mail of template `kind` to `to`.
    pub async fn mailed_token(&self, kind: &str, to: &str) -> String {
        let mails = self.mails(kind).await;
        let mail = mails.iter().rev().find(|m| m.to == to);
        let mail = mail.unwrap_or_else(|| panic!("no {kind} mail to {to}: {mails:?}"));
        mail.token.clone().expect("the mail carries a token")
    }

    /// The `data` of the events of type `kind` in the outbox, oldest first.
    pub async fn events(&self, kind: &str) -> Vec<Value> {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT payload FROM outbox WHERE channel = 'event' AND kind = '{kind}' ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await
        .unwrap();
        rows.iter()
            .map(|(p,)| serde_json::from_str::<Value>(p).unwrap()["data"].clone())
            .collect()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<sqlx::Any, i64>(sql)
            .fetch_one(self.pool())
            .await
            .unwrap()
    }
}

/// An access token with its refresh token and session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub access: String,
    pub refresh: String,
    pub session_id: String,
    pub body: Value,
}

/// Read as the client reads it ([`TokenResponse`]), keeping the body for other members.
impl From<Value> for Pair {
    fn from(body: Value) -> Self {
        let tokens: TokenResponse = serde_json::from_value(body.clone()).expect("a token response");
        Self {
            access: tokens.access_token,
            refresh: tokens.refresh_token,
            session_id: tokens.session_id,
            body,
        }
    }
}

/// Polls `check` every 50 ms until it holds, for at most `seconds`; for effects that are
/// eventually consistent by design (another instance's poll), never for start-up.
pub async fn eventually<F, Fut>(seconds: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// Asserts a problem+json answer with the given status and code, returning the body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let ct = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    let problem: Problem = serde_json::from_value(body.clone()).expect("a problem body");
    assert_eq!(problem.code.as_str(), code, "body: {body}");
    assert_eq!(problem.status, status);
    assert_eq!(problem.request_id.as_deref(), Some(request_id.as_str()));
    body
}

/// The Python interpreter for the tests' independent checks: `AUTH_TEST_PYTHON`, else
/// `python3`, if it can `import {modules}` (e.g. `"jwt, cryptography"`). None (the test is
/// skipped, saying why) only outside CI; under `CI=true` a missing module fails the test.
pub fn python_with(modules: &str) -> Option<String> {
    let python = std::env::var("AUTH_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "`import {modules}` fails under CI: set AUTH_TEST_PYTHON to a python with \
         crates/auth-server/tests/requirements.txt installed"
    );
    eprintln!("skipping: {python} cannot import {modules} (set AUTH_TEST_PYTHON)");
    None
}

/// The `kid` header of a signed token.
pub fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Rotates the signing key of the instance with `state` as the CLI does; it must sign with the
/// new key at once (`AUTH_KEY_PROPAGATION_SECONDS=0`). Returns the new key's id.
pub async fn rotate_key_now(state: &AppState) -> String {
    let rotated = state
        .keys()
        .rotate(
            auth_core::now_unix(),
            auth_core::signing::RotationCause::CommandLine,
        )
        .await
        .unwrap();
    let auth_core::signing::Rotated::Active(kid) = rotated else {
        panic!("expected an active key, got {rotated:?}")
    };
    kid
}
