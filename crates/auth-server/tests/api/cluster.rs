//! Several instances of the service on one PostgreSQL database and one Redis, started and
//! stopped in-process, for the tests of [`crate::instances`].

use std::collections::HashMap;
use std::time::Duration;

use auth_server::config::RawConfig;
use auth_server::startup::Application;
use auth_server::state::AppState;
use reqwest::Client;
use serde_json::{Value, json};
use sqlx::AnyPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::helpers::{PASSWORD, Pair, TestDb, base_env};

/// A service URL the run must provide: under `CI=true` its absence fails the test; elsewhere
/// the test is skipped (None) with a line saying why.
fn required(var: &str) -> Option<String> {
    if let Ok(url) = std::env::var(var) {
        return Some(url);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the instance tests need {var} under CI (.ci/run sets it)"
    );
    eprintln!("skipping: {var} is not set");
    None
}

/// One database and one Redis prefix, shared by the instances a test starts.
pub struct Cluster {
    url: String,
    redis: String,
    prefix: String,
    pub client: Client,
    _db: TestDb,
}

/// One running instance; stopped gracefully by [`Instance::stop`] (or when dropped).
pub struct Instance {
    pub addr: String,
    pub state: AppState,
    pub stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<std::io::Result<()>>,
}

impl Cluster {
    /// A fresh schema on `TEST_POSTGRES_URL` and a prefix of its own on `TEST_REDIS_URL`.
    pub async fn new() -> Option<Self> {
        let (admin_url, redis) = (required("TEST_POSTGRES_URL")?, required("TEST_REDIS_URL")?);
        sqlx::any::install_default_drivers();
        let id = uuid::Uuid::now_v7().simple().to_string();
        let schema = format!("instances_{id}");
        let pool = AnyPool::connect(&admin_url)
            .await
            .expect("TEST_POSTGRES_URL must be reachable");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options=-c%20search_path%3D{schema}");
        Some(Self {
            url,
            redis,
            prefix: format!("instances-{id}"),
            client: Client::new(),
            _db: TestDb::Postgres { admin_url, schema },
        })
    }

    /// Starts an instance listening on `bind` (port 0), with the test settings but no
    /// `AUTH_ISSUER`, plus `extra`.
    pub async fn start(&self, bind: &str, extra: &[(&str, &str)]) -> Instance {
        let mut env: HashMap<String, String> = base_env();
        env.remove("AUTH_ISSUER");
        let shared = [
            ("AUTH_BIND", bind),
            ("DATABASE_URL", &self.url),
            ("REDIS_URL", &self.redis),
            ("AUTH_RATE_REDIS_PREFIX", &self.prefix),
            ("AUTH_RATE_REDIS_TIMEOUT_MS", "2000"),
            (
                "AUTH_MASTER_KEY",
                "a master key the instances share, 32+ bytes",
            ),
            ("AUTH_REVOCATION_POLL_MS", "100"),
            ("AUTH_KEY_RELOAD_SECONDS", "1"),
            ("AUTH_KEY_PROPAGATION_SECONDS", "0"),
        ];
        for (k, v) in shared.iter().chain(extra) {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let config = RawConfig::load(None, &|n| env.get(n).cloned(), &[])
            .unwrap()
            .validate()
            .unwrap();
        let app = Application::build(&config)
            .await
            .expect("application starts");
        let addr = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Instance {
            addr,
            state,
            stop: Some(stop),
            served,
        }
    }

    pub async fn post(&self, at: &Instance, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", at.addr))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn signup_and_login(&self, at: &Instance, email: &str) -> Pair {
        let body = json!({"email": email, "password": PASSWORD});
        assert_eq!(self.post(at, "/auth/signup", &body).await.status(), 201);
        let r = self.post(at, "/auth/login", &body).await;
        assert_eq!(r.status(), 200);
        Pair::from(r.json::<Value>().await.unwrap())
    }

    pub async fn me_status(&self, at: &Instance, token: &str) -> u16 {
        self.client
            .get(format!("{}/auth/me", at.addr))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn count(&self, at: &Instance, sql: &str) -> i64 {
        sqlx::query_scalar::<sqlx::Any, i64>(sql)
            .fetch_one(at.state.store.pool())
            .await
            .unwrap()
    }
}

impl Instance {
    pub fn issuer(&self) -> String {
        self.state.checks.tokens().settings().issuer.clone()
    }

    /// Stops serving, finishing the requests in flight, and waits until it has.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = tokio::time::timeout(Duration::from_secs(30), &mut self.served).await;
        served
            .expect("stops within 30 s")
            .expect("serving task")
            .expect("served without error");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
