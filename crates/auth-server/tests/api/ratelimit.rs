//! Rate limits over HTTP: per client IP (told by `X-Forwarded-For` from the trusted
//! 127.0.0.1) and per account, their 429 answers, `off`, the refill; and, with Redis, a budget
//! shared by two instances and a Redis that stops mid-test.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem, eventually, spawn_app_with};

const TRUSTED: (&str, &str) = ("AUTH_TRUSTED_PROXIES", "127.0.0.1");

impl TestApp {
    /// POSTs JSON as if from `ip` behind the trusted proxy.
    async fn post_from(&self, ip: &str, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .header("x-forwarded-for", ip)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn login_from(&self, ip: &str, email: &str, password: &str) -> Response {
        self.post_from(
            ip,
            "/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }
}

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asserts a 429 of `policy`, with `Retry-After` and the draft's fields; returns the body.
async fn assert_limited(r: Response, policy: &str, quota: &str) -> Value {
    let retry: u64 = header(&r, "retry-after")
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry >= 1, "Retry-After {retry}");
    assert_eq!(
        header(&r, "ratelimit-policy"),
        format!("\"{policy}\";{quota}")
    );
    assert_eq!(
        header(&r, "ratelimit"),
        format!("\"{policy}\";r=0;t={retry}")
    );
    let body = assert_problem(r, 429, "rate_limited").await;
    assert!(body["detail"].as_str().unwrap().contains(policy), "{body}");
    body
}

#[tokio::test]
async fn logins_are_limited_per_client_ip_before_the_body_is_read() {
    let app = spawn_app_with(&[TRUSTED, ("AUTH_RATE_LOGIN_IP", "2/1h")]).await;
    app.signup("ann@example.com").await;
    let first = app
        .login_from("198.51.100.1", "ann@example.com", PASSWORD)
        .await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "ratelimit"), "\"login-ip\";r=1;t=1800");
    let wrong = app
        .login_from("198.51.100.1", "ann@example.com", "wrong password!")
        .await;
    assert_eq!(wrong.status(), 401);
    let audited = app.count("SELECT COUNT(*) FROM audit_events").await;

    let refused = app
        .login_from("198.51.100.1", "ann@example.com", PASSWORD)
        .await;
    assert_limited(refused, "login-ip", "q=2;w=3600").await;
    // Refused before the body is read (no 400 for a body that is not JSON), and before any
    // database read or hash: nothing was recorded.
    let garbage = app
        .client
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", "198.51.100.1")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 429);
    // The SimpleJWT contract shares the budget of logins.
    let compat = app
        .post_from(
            "198.51.100.1",
            "/auth/token/",
            &json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_limited(compat, "login-ip", "q=2;w=3600").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events").await,
        audited
    );

    // Another client, and the proxy's own address, have budgets of their own.
    let other = app
        .login_from("198.51.100.2", "ann@example.com", PASSWORD)
        .await;
    assert_eq!(other.status(), 200);
    assert_eq!(app.login("ann@example.com", PASSWORD).await.status(), 200);
    // Without a trusted peer the header is not believed: 127.0.0.1 is not trusted here.
    let untrusted = spawn_app_with(&[("AUTH_RATE_LOGIN_IP", "1/1h")]).await;
    untrusted.signup("bob@example.com").await;
    assert_eq!(
        untrusted
            .login_from("192.0.2.1", "bob@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let spoofed = untrusted
        .login_from("192.0.2.2", "bob@example.com", PASSWORD)
        .await;
    assert_limited(spoofed, "login-ip", "q=1;w=3600").await;
}

#[tokio::test]
async fn logins_are_limited_per_account_whatever_address_they_come_from() {
    let app = spawn_app_with(&[TRUSTED, ("AUTH_RATE_LOGIN_ACCOUNT", "2/1h")]).await;
    app.signup("ann@example.com").await;
    app.signup("bob@example.com").await;
    let wrong = "not the right password";
    assert_eq!(
        app.login_from("192.0.2.1", "ann@example.com", wrong)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.login_from("192.0.2.2", "ann@example.com", wrong)
            .await
            .status(),
        401
    );
    // Even the right password, from a third address, and however the address is typed.
    let refused = app
        .login_from("192.0.2.3", "ann@example.com", PASSWORD)
        .await;
    assert_limited(refused, "login-account", "q=2;w=3600").await;
    let typed = app
        .login_from("192.0.2.4", "  ANN@Example.com ", PASSWORD)
        .await;
    assert_limited(typed, "login-account", "q=2;w=3600").await;
    let compat = app
        .post_from(
            "192.0.2.5",
            "/auth/token/",
            &json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_limited(compat, "login-account", "q=2;w=3600").await;
    // Another account from the same address is not affected; an unknown one is counted too.
    assert_eq!(
        app.login_from("192.0.2.3", "bob@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    for _ in 0..2 {
        let r = app
            .login_from("192.0.2.3", "nobody@example.com", wrong)
            .await;
        assert_problem(r, 401, "invalid_credentials").await;
    }
    let unknown = app
        .login_from("192.0.2.3", "nobody@example.com", wrong)
        .await;
    assert_limited(unknown, "login-account", "q=2;w=3600").await;
}

#[tokio::test]
async fn signups_and_refreshes_are_limited_per_client_ip_aliases_included() {
    let app = spawn_app_with(&[
        TRUSTED,
        ("AUTH_RATE_SIGNUP_IP", "2/1h"),
        ("AUTH_RATE_REFRESH_IP", "2/1h"),
    ])
    .await;
    let signup = |n: u32| json!({"email": format!("user{n}@example.com"), "password": PASSWORD});
    assert_eq!(
        app.post_from("192.0.2.1", "/auth/signup", &signup(1))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.post_from("192.0.2.1", "/auth/register", &signup(2))
            .await
            .status(),
        201
    );
    for path in ["/auth/signup", "/auth/register"] {
        let refused = app.post_from("192.0.2.1", path, &signup(3)).await;
        assert_limited(refused, "signup-ip", "q=2;w=3600").await;
    }
    let refused = "SELECT COUNT(*) FROM users WHERE email = 'user3@example.com'";
    assert_eq!(
        app.count(refused).await,
        0,
        "a refused sign-up creates nothing"
    );
    assert_eq!(
        app.post_from("192.0.2.2", "/auth/signup", &signup(3))
            .await
            .status(),
        201
    );

    let pair = app.login_pair("user1@example.com").await;
    let first = app
        .post_from(
            "192.0.2.1",
            "/auth/refresh",
            &json!({"refresh_token": pair.refresh}),
        )
        .await;
    assert_eq!(first.status(), 200);
    let next: Value = first.json().await.unwrap();
    let next = next["refresh_token"].as_str().unwrap().to_owned();
    let second = app
        .post_from(
            "192.0.2.1",
            "/auth/token/refresh/",
            &json!({"refresh": next}),
        )
        .await;
    assert_eq!(second.status(), 200);
    let latest: Value = second.json().await.unwrap();
    let latest = latest["refresh"].as_str().unwrap().to_owned();
    let refused = app
        .post_from(
            "192.0.2.1",
            "/auth/refresh",
            &json!({"refresh_token": latest}),
        )
        .await;
    assert_limited(refused, "refresh-ip", "q=2;w=3600").await;
    let refused = app
        .post_from(
            "192.0.2.1",
            "/auth/token/refresh/",
            &json!({"refresh": latest}),
        )
        .await;
    assert_limited(refused, "refresh-ip", "q=2;w=3600").await;
    // The refused rotation did not happen: the token still rotates, from elsewhere.
    let elsewhere = app
        .post_from(
            "192.0.2.9",
            "/auth/refresh",
            &json!({"refresh_token": latest}),
        )
        .await;
    assert_eq!(elsewhere.status(), 200);
}

#[tokio::test]
async fn a_limit_set_off_lets_everything_through_and_says_nothing() {
    let app = spawn_app_with(&[
        ("AUTH_RATE_LOGIN_IP", "off"),
        ("AUTH_RATE_LOGIN_ACCOUNT", "off"),
        ("AUTH_RATE_SIGNUP_IP", "1/1h"),
    ])
    .await;
    app.signup("ann@example.com").await;
    for _ in 0..12 {
        let r = app.login("ann@example.com", PASSWORD).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("ratelimit").is_none());
    }
    // The limits that are on still apply.
    let r = app
        .post_json(
            "/auth/signup",
            &json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    assert_limited(r, "signup-ip", "q=1;w=3600").await;
}

#[tokio::test]
async fn the_budget_refills_one_request_per_interval() {
    let app = spawn_app_with(&[("AUTH_RATE_LOGIN_IP", "1/1s")]).await;
    app.signup("ann@example.com").await;
    assert_eq!(app.login("ann@example.com", PASSWORD).await.status(), 200);
    let refused = app.login("ann@example.com", PASSWORD).await;
    assert_limited(refused, "login-ip", "q=1;w=1").await;
    // Refusals cost nothing, so asking until it passes does not push the refill back.
    assert!(
        eventually(10, || async {
            app.login("ann@example.com", PASSWORD).await.status() == 200
        })
        .await,
        "the budget refilled"
    );
}

#[tokio::test]
async fn the_document_gives_429_to_exactly_the_rate_limited_operations() {
    let app = spawn_app_with(&[]).await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let limited = [
        "post /auth/login",
        "post /auth/token/",
        "post /auth/signup",
        "post /auth/register",
        "post /auth/refresh",
        "post /auth/token/refresh/",
        "post /auth/password-reset/request",
        "post /auth/verify-email/request",
    ];
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["responses"].get("429").is_some() {
                found.push(format!("{method} {path}"));
            }
        }
    }
    found.sort();
    let mut want: Vec<String> = limited.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(found, want);
}

/// The machine's Redis (`TEST_REDIS_URL`, default `redis://127.0.0.1:6379`); a test that needs
/// it fails, never skips, when it does not answer.
fn redis_url() -> String {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let answers = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(std::time::Duration::from_secs(2)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    if let Err(e) = answers {
        panic!("this test needs Redis at {url} (TEST_REDIS_URL; .ci/run starts it): {e}");
    }
    url
}

/// Settings of an instance sharing limits through Redis under a prefix of this test's own.
/// The timeout is generous: a busy test machine must not pass for a Redis that is away (a
/// stopped one refuses connections at once).
fn shared(url: &str, prefix: &str) -> Vec<(String, String)> {
    [
        ("REDIS_URL", url),
        ("AUTH_RATE_REDIS_PREFIX", prefix),
        ("AUTH_RATE_REDIS_TIMEOUT_MS", "2000"),
        ("AUTH_RATE_LOGIN_IP", "3/1h"),
        ("AUTH_RATE_LOGIN_ACCOUNT", "4/1h"),
        (
            "AUTH_MASTER_KEY",
            "a master key of at least thirty-two bytes",
        ),
        TRUSTED,
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn refs(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test]
async fn two_instances_on_one_redis_share_one_budget() {
    let url = redis_url();
    let prefix = format!("test-{}:", uuid::Uuid::now_v7().simple());
    let settings = shared(&url, &prefix);
    let a = spawn_app_with(&refs(&settings)).await;
    let (b_addr, _) = a.sibling(&refs(&settings)).await;
    a.signup("ann@example.com").await;
    let body = json!({"email": "ann@example.com", "password": PASSWORD});
    let post = |base: String, ip: &'static str| {
        let (client, body) = (a.client.clone(), body.clone());
        async move {
            client
                .post(format!("{base}/auth/login"))
                .header("x-forwarded-for", ip)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    for base in [&a.addr, &b_addr, &a.addr] {
        assert_eq!(post(base.clone(), "192.0.2.1").await.status(), 200);
    }
    assert_limited(
        post(b_addr.clone(), "192.0.2.1").await,
        "login-ip",
        "q=3;w=3600",
    )
    .await;
    // The account's budget is shared too: one login left, from any address and instance.
    assert_eq!(post(b_addr.clone(), "192.0.2.2").await.status(), 200);
    assert_limited(
        post(a.addr.clone(), "192.0.2.3").await,
        "login-account",
        "q=4;w=3600",
    )
    .await;

    // The keys are under the prefix, and hold neither the address nor the email.
    let mut c = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut c)
        .unwrap();
    assert_eq!(keys.len(), 4, "{keys:?}");
    for key in &keys {
        assert!(!key.contains("192.0.2") && !key.contains("ann"), "{key}");
    }
    let _: () = redis::cmd("DEL").arg(&keys).query(&mut c).unwrap();
}

/// A `redis-server` of one test, on a free port, keeping nothing on disk; killed when dropped.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        let started = std::time::Instant::now();
        while client.get_connection().is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "redis-server did not answer on port {}",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn a_redis_that_stops_mid_test_never_makes_a_500() {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let with = |failure: &str| {
        let mut s = shared(&url, "t:");
        s.push(("AUTH_RATE_REDIS_FAILURE".into(), failure.into()));
        s.push(("AUTH_RATE_LOGIN_ACCOUNT".into(), "off".into()));
        s
    };
    let memory = spawn_app_with(&refs(&with("memory"))).await;
    let (closed, _) = memory.sibling(&refs(&with("closed"))).await;
    let (open, _) = memory.sibling(&refs(&with("open"))).await;
    memory.signup("ann@example.com").await;
    let login = |base: &str, ip: &'static str| {
        let request = memory
            .client
            .post(format!("{base}/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": "ann@example.com", "password": PASSWORD}));
        async move { request.send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(login(&memory.addr, "192.0.2.1").await.status(), 200);
    }
    assert_eq!(
        login(&closed, "192.0.2.1").await.status(),
        429,
        "shared through Redis"
    );

    redis.stop();
    // `memory`: this instance's own limits, which never saw 192.0.2.1.
    for _ in 0..3 {
        assert_eq!(login(&memory.addr, "192.0.2.1").await.status(), 200);
    }
    let refused = login(&memory.addr, "192.0.2.1").await;
    assert_limited(refused, "login-ip", "q=3;w=3600").await;
    // `closed`: 503 with Retry-After and a stable code.
    for _ in 0..2 {
        let r = login(&closed, "192.0.2.1").await;
        assert!(r.headers().contains_key("retry-after"));
        assert_problem(r, 503, "unavailable").await;
    }
    // `open`: no limit.
    for _ in 0..5 {
        assert_eq!(login(&open, "192.0.2.1").await.status(), 200);
    }

    // Back to Redis once it answers again (an empty one here: 192.0.2.1 starts afresh).
    redis.restart();
    assert!(
        eventually(10, || async {
            login(&memory.addr, "192.0.2.1").await.status() == 200
        })
        .await,
        "limits go back to Redis"
    );
    assert!(
        eventually(10, || async {
            login(&closed, "192.0.2.1").await.status() == 200
        })
        .await,
        "closed answers again"
    );
}
