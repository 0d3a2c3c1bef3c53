//! What each request leaves in the log (`AUTH_ACCESS_LOG`): by default refusals and failures
//! only; with `all` successes too; with `off` none; probes and `/metrics` never at INFO.

use std::sync::{Arc, Mutex};

use crate::cli::{command, serve_logged, stop};
use crate::helpers::TestDb;

const PROBES: [&str; 5] = [
    "/health",
    "/health/ready",
    "/auth/health",
    "/auth/health/",
    "/metrics",
];

/// Serves with `AUTH_ACCESS_LOG=choice` (unset: the default), asks every probe, the keys and a
/// path that does not exist, stops, and gives back the log's request lines.
async fn request_lines(choice: Option<&str>) -> Vec<String> {
    let (_db, url) = TestDb::create().await;
    let mut cmd = command(&url);
    if let Some(choice) = choice {
        cmd.env("AUTH_ACCESS_LOG", choice);
    }
    let (server, addr, log): (_, _, Arc<Mutex<Vec<String>>>) = serve_logged(cmd);
    for path in PROBES
        .iter()
        .chain(&["/.well-known/jwks.json", "/no/such/path"])
    {
        let r = reqwest::get(format!("{addr}{path}")).await.unwrap();
        assert!(r.status().as_u16() < 500, "{path}: {}", r.status());
    }
    assert_eq!(stop(server).code(), Some(0));
    let log = log.lock().unwrap();
    log.iter()
        .filter(|l| l.contains("request done") || l.contains("request refused"))
        .cloned()
        .collect()
}

fn logged(lines: &[String], path: &str) -> bool {
    let field = format!("path={path}");
    lines
        .iter()
        .any(|l| l.split([' ', '}', ':']).any(|w| w == field))
}

#[tokio::test]
async fn by_default_only_refusals_and_failures_are_logged_per_request() {
    let lines = request_lines(None).await;
    assert!(logged(&lines, "/no/such/path"), "{lines:#?}");
    assert!(!logged(&lines, "/.well-known/jwks.json"), "{lines:#?}");
    for probe in PROBES {
        assert!(!logged(&lines, probe), "{probe}: {lines:#?}");
    }
}

#[tokio::test]
async fn all_logs_successes_but_never_the_probes_and_off_logs_nothing() {
    let lines = request_lines(Some("all")).await;
    assert!(logged(&lines, "/no/such/path"), "{lines:#?}");
    assert!(logged(&lines, "/.well-known/jwks.json"), "{lines:#?}");
    for probe in PROBES {
        assert!(!logged(&lines, probe), "{probe}: {lines:#?}");
    }
    let lines = request_lines(Some("off")).await;
    assert!(lines.is_empty(), "{lines:#?}");
}

#[tokio::test]
async fn a_refused_token_is_one_line_with_its_code_and_reason_and_an_inactive_one_none() {
    let (_db, url) = TestDb::create().await;
    let (server, addr, log): (_, _, Arc<Mutex<Vec<String>>>) = serve_logged(command(&url));
    let client = reqwest::Client::new();
    let request_id =
        |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut refused = Vec::new();
    for path in ["/auth/me", "/auth/verify"] {
        let r = client
            .get(format!("{addr}{path}"))
            .bearer_auth("not.a.token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        refused.push(request_id(&r));
    }
    let r = client
        .post(format!("{addr}/auth/validate"))
        .json(&serde_json::json!({"token": "not.a.token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let inactive = request_id(&r);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["active"],
        false
    );
    assert_eq!(stop(server).code(), Some(0));
    let log = log.lock().unwrap();
    let lines_of =
        |id: &str| -> Vec<String> { log.iter().filter(|l| l.contains(id)).cloned().collect() };
    for id in &refused {
        let lines = lines_of(id);
        assert_eq!(lines.len(), 1, "one line per refusal: {lines:#?}");
        assert!(lines[0].contains("request refused"), "{lines:#?}");
        assert!(lines[0].contains("token_invalid"), "the code: {lines:#?}");
        assert!(lines[0].contains("reason="), "the reason: {lines:#?}");
    }
    assert!(lines_of(&inactive).is_empty(), "{:#?}", lines_of(&inactive));
}
