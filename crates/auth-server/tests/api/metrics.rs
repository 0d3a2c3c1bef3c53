//! `GET /metrics` read by a real Prometheus text parser (`prometheus_client`'s, in Python):
//! counters move by what the requests did, and latency is labelled by route template.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::python_with;
use crate::helpers::{PASSWORD, TestApp, TestDb, build, spawn_app_with};

/// Parses the text format and prints every sample as JSON: name, labels, value.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name,
                    "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// The samples of a scrape, as the parser read them.
struct Scrape(Vec<Value>);

impl Scrape {
    /// The value of the sample `name` with exactly these labels (0 when absent).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: HashMap<&str, &str> = labels.iter().copied().collect();
        self.0
            .iter()
            .find(|s| {
                s["name"] == name && {
                    let have = s["labels"].as_object().unwrap();
                    have.len() == want.len()
                        && want.iter().all(|(k, v)| have.get(*k) == Some(&json!(v)))
                }
            })
            .map_or(0.0, |s| s["value"].as_f64().unwrap())
    }

    fn routes(&self) -> Vec<String> {
        let mut routes: Vec<String> = self
            .0
            .iter()
            .filter(|s| s["name"] == "auth_http_request_duration_seconds_count")
            .map(|s| s["labels"]["route"].as_str().unwrap().to_owned())
            .collect();
        routes.sort();
        routes.dedup();
        routes
    }
}

async fn scrape(python: &str, url: &str) -> Scrape {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    let mut child = Command::new(python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Scrape(serde_json::from_slice(&out.stdout).unwrap())
}

async fn scrape_app(python: &str, app: &TestApp) -> Scrape {
    scrape(python, &app.url("/metrics")).await
}

#[tokio::test]
async fn counters_move_by_what_the_requests_did_and_latency_has_route_templates() {
    let Some(python) = python_with("prometheus_client.parser") else {
        return;
    };
    let app = spawn_app_with(&[("AUTH_REFRESH_GRACE_SECONDS", "0")]).await;
    app.signup("counted@example.com").await;
    let before = scrape_app(&python, &app).await;

    let pair = app.login_pair("counted@example.com").await;
    let r = app.login("counted@example.com", "not the password").await;
    assert_eq!(r.status(), 401);
    // A token checked twice: verified in full, then answered from the cache.
    for _ in 0..2 {
        let r = app.get_with_token("/auth/verify", &pair.access).await;
        assert!(r.status().is_success(), "{}", r.status());
    }
    // Reuse revokes the session (and its access tokens): after the checks.
    let r = app.refresh(&pair.refresh).await;
    assert_eq!(r.status(), 200);
    let r = app.refresh(&pair.refresh).await;
    assert_eq!(r.status(), 401, "reused");
    let id = uuid::Uuid::now_v7().to_string();
    let r = app.get(&format!("/auth/admin/users/{id}")).await;
    assert_eq!(r.status(), 401);
    assert_eq!(app.get("/no/such/route/at/all").await.status(), 404);
    let after = scrape_app(&python, &app).await;

    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    let result = |r| [("result", r)];
    assert_eq!(moved("auth_logins_total", &result("succeeded")), 1.0);
    assert_eq!(moved("auth_logins_total", &result("failed")), 1.0);
    assert_eq!(moved("auth_refreshes_total", &result("succeeded")), 1.0);
    assert_eq!(moved("auth_refreshes_total", &result("failed")), 1.0);
    assert_eq!(moved("auth_refresh_reuse_detected_total", &[]), 1.0);
    let cache = |c| [("cache", c)];
    assert_eq!(moved("auth_tokens_verified_total", &cache("miss")), 1.0);
    assert_eq!(moved("auth_tokens_verified_total", &cache("hit")), 1.0);
    assert_eq!(after.value("auth_password_hashes_queued", &[]), 0.0);
    assert_eq!(after.value("auth_password_hashes_shed_total", &[]), 0.0);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(after.value("auth_build_info", &[("version", version)]), 1.0);
    assert!(after.value("auth_db_connections", &[("state", "idle")]) >= 0.0);
    assert!(
        after.0.iter().any(|s| s["family"] == "auth_outbox_pending"),
        "the outbox families are there too"
    );

    // Latency by route template and status class, never by raw path.
    let count = "auth_http_request_duration_seconds_count";
    let login = [("route", "/auth/login"), ("status", "2xx")];
    assert_eq!(
        after.value(count, &login) - before.value(count, &login),
        1.0
    );
    let refused = [("route", "/auth/login"), ("status", "4xx")];
    assert_eq!(after.value(count, &refused), 1.0);
    let user = [("route", "/auth/admin/users/{id}"), ("status", "4xx")];
    assert_eq!(after.value(count, &user), 1.0);
    let unmatched = [("route", "unmatched"), ("status", "4xx")];
    assert_eq!(after.value(count, &unmatched), 1.0);
    let routes = after.routes();
    assert!(
        routes
            .iter()
            .all(|r| !r.contains(&id) && !r.contains("no/such")),
        "{routes:?}"
    );
    let le = [("route", "/auth/login"), ("status", "2xx"), ("le", "+Inf")];
    assert_eq!(
        after.value("auth_http_request_duration_seconds_bucket", &le),
        after.value(count, &login)
    );
}

/// With `AUTH_METRICS_BIND`, `/metrics` is served there (plain HTTP) and not on the API's port.
#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let Some(python) = python_with("prometheus_client.parser") else {
        return;
    };
    let (_db, url) = TestDb::create().await;
    let (app, _config) = build(&url, &[("AUTH_METRICS_BIND", "127.0.0.1:0")]).await;
    let addr = format!("http://{}", app.local_addr());
    let metrics = format!("http://{}/metrics", app.metrics_addr().unwrap());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{addr}/auth/signup"))
        .json(&json!({"email": "apart@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client.get(format!("{addr}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let scraped = scrape(&python, &metrics).await;
    let signup = [("route", "/auth/signup"), ("status", "2xx")];
    assert_eq!(
        scraped.value("auth_http_request_duration_seconds_count", &signup),
        1.0
    );
    let r = client
        .get(metrics.replace("/metrics", "/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "the metrics listener serves /metrics alone"
    );
}
