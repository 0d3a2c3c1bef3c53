//! The edge: the gateway's secret, security headers, slow and oversized requests.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app, spawn_app_with};

const SECRET: &str = "a gateway secret of at least 32 bytes";

/// A request sent with the gateway's secret, or with `secret` in its place.
fn through(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    secret: Option<&str>,
) -> reqwest::RequestBuilder {
    let request = app.client.request(method, app.url(path));
    match secret {
        Some(secret) => request.header("x-gateway-secret", secret),
        None => request,
    }
}

#[tokio::test]
async fn edge_requests_without_the_gateway_secret_are_refused_but_health_and_keys_are_open() {
    let app = spawn_app_with(&[("AUTH_GATEWAY_SECRET", SECRET)]).await;
    let get = reqwest::Method::GET;
    let almost = &SECRET[..SECRET.len() - 1];
    let wrong = "a gateway secret of at least 32 bytez";
    for (path, secret, why) in [
        ("/auth/me", None, "no secret"),
        ("/auth/me", Some(wrong), "a wrong secret of the same length"),
        ("/auth/me", Some(almost), "a prefix of the secret"),
        ("/auth/me", Some(""), "an empty secret"),
        ("/no/such/route", None, "an unknown route"),
        ("/openapi.json", None, "the document"),
        ("/docs/", None, "the docs page"),
    ] {
        let r = through(&app, get.clone(), path, secret)
            .send()
            .await
            .unwrap();
        let body = assert_problem(r, 403, "gateway_required").await;
        assert!(!body.to_string().contains(SECRET), "{why}: {body}");
    }
    // A body is not read before the secret is checked, nor is a user created.
    let r = through(&app, reqwest::Method::POST, "/auth/signup", None)
        .json(&json!({"email": "gw@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 403, "gateway_required").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);

    for path in [
        "/health",
        "/auth/health",
        "/auth/health/",
        "/health/ready",
        "/.well-known/jwks.json",
    ] {
        let r = through(&app, get.clone(), path, None).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} is open");
    }
    // With the secret everything answers as usual.
    let r = through(&app, reqwest::Method::POST, "/auth/signup", Some(SECRET))
        .json(&json!({"email": "gw@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = through(&app, get.clone(), "/auth/me", Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "token_invalid").await;
    let r = through(&app, get.clone(), "/no/such/route", Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
    let r = through(&app, get, "/docs/", Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn edge_the_document_names_the_gateway_secret_only_when_one_is_required() {
    let open = spawn_app().await;
    let doc: Value = open.get("/openapi.json").await.json().await.unwrap();
    assert!(
        doc["components"]["securitySchemes"]
            .get("gateway")
            .is_none()
    );
    assert!(
        doc["paths"]["/auth/login"]["post"]
            .get("security")
            .is_none()
    );
    assert!(doc["paths"]["/auth/login"]["post"]["responses"]["408"].is_object());

    let gated = spawn_app_with(&[("AUTH_GATEWAY_SECRET", SECRET)]).await;
    let r = through(&gated, reqwest::Method::GET, "/openapi.json", Some(SECRET))
        .send()
        .await
        .unwrap();
    let doc: Value = r.json().await.unwrap();
    let scheme = &doc["components"]["securitySchemes"]["gateway"];
    assert_eq!(
        (scheme["in"].as_str(), scheme["name"].as_str()),
        (Some("header"), Some("X-Gateway-Secret"))
    );
    let login = &doc["paths"]["/auth/login"]["post"];
    assert_eq!(login["security"], json!([{"gateway": []}]));
    assert!(
        login["responses"]["403"]["description"]
            .as_str()
            .unwrap()
            .contains("gateway_required")
    );
    assert_eq!(
        doc["paths"]["/auth/me"]["get"]["security"],
        json!([{"bearer": [], "gateway": []}])
    );
    assert!(doc["paths"]["/health"]["get"].get("security").is_none());
    assert!(
        doc["paths"]["/.well-known/jwks.json"]["get"]
            .get("security")
            .is_none()
    );
}

fn assert_secured(r: &reqwest::Response, csp: &str, what: &str) {
    let h = r.headers();
    let get = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        get("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        get("referrer-policy").as_deref(),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(get("x-frame-options").as_deref(), Some("DENY"), "{what}");
    let policy = get("content-security-policy").unwrap_or_default();
    assert!(policy.starts_with(csp), "{what}: {policy}");
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{what}: {policy}"
    );
    assert_eq!(
        get("strict-transport-security"),
        None,
        "{what}: no HSTS over plain HTTP"
    );
}

#[tokio::test]
async fn edge_every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    let api = "default-src 'none'";
    let r = app.get("/health").await;
    assert_eq!(r.status(), 200);
    assert_secured(&r, api, "200");
    let r = app.get("/auth/me").await;
    assert_eq!(r.status(), 401);
    assert_secured(&r, api, "401");
    let r = app.get("/no/such/route").await;
    assert_eq!(r.status(), 404);
    assert_secured(&r, api, "404");
    let r = app.post_json("/auth/signup", &json!({"email": 7})).await;
    assert_eq!(r.status(), 422);
    assert_secured(&r, api, "422");
    let r = app.client.delete(app.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_secured(&r, api, "405");
    let r = app.get("/openapi.json").await;
    assert_secured(&r, api, "the document");
    // The docs page and its files may load their own scripts and styles, nothing else.
    for path in [
        "/docs/",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_secured(
            &r,
            "default-src 'none'; script-src 'self'; style-src 'self'",
            path,
        );
    }
    // Each `<style>` element the scripts create is allowed by its hash, and nothing else is.
    let policy = app.get("/docs/").await.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut hashes = Vec::new();
    for script in ["swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"] {
        let code = app
            .get(&format!("/docs/{script}"))
            .await
            .text()
            .await
            .unwrap();
        for created in code.split("createElement(\"style\",null,\"").skip(1) {
            let css = created.split('"').next().unwrap();
            let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(css));
            hashes.push(format!("'sha256-{hash}'"));
        }
    }
    assert!(
        !hashes.is_empty(),
        "the logo's style is found in the scripts"
    );
    let allowed: Vec<&str> = policy
        .split_whitespace()
        .filter(|w| w.starts_with("'sha256-"))
        .collect();
    for hash in &hashes {
        assert!(
            allowed.iter().any(|a| a.trim_end_matches(';') == hash),
            "{hash} in {policy}"
        );
    }
    assert_eq!(allowed.len(), hashes.len(), "{policy}");
    // The page has no inline script or style that the policy would block.
    let page = app.get("/docs/").await.text().await.unwrap();
    assert!(!page.contains("<style"), "{page}");
    for script in page.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap();
        assert!(tag.contains("src="), "an inline script: <script{script}");
    }
}

/// Sends `head` (and nothing more) on a new connection and reads what comes back until the
/// server closes it, for at most `seconds`; `None` when it was not closed by then.
async fn send_and_read_to_close(app: &TestApp, head: &str, seconds: u64) -> Option<String> {
    let addr = app.addr.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(seconds),
        stream.read_to_end(&mut answer),
    );
    match read.await {
        // A reset after the answer is a close too.
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

/// The status and the JSON body of a raw HTTP/1.1 answer.
fn parse_answer(answer: &str) -> (u16, String, Value) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("a complete answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn edge_a_body_that_arrives_too_slowly_is_answered_408_and_the_connection_closed() {
    let app = spawn_app_with(&[("AUTH_BODY_TIMEOUT_MS", "300")]).await;
    // Ten of a hundred declared bytes, then nothing.
    let head = "POST /auth/login HTTP/1.1\r\nHost: auth\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n{\"email\":";
    let answer = send_and_read_to_close(&app, head, 20)
        .await
        .expect("answered and closed well before 20 s");
    let (status, head, body) = parse_answer(&answer);
    assert_eq!(status, 408, "{answer}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(head.contains("connection: close"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert_eq!(body["code"], "request_timeout", "{body}");
    assert_eq!(body["status"], 408);

    // A body that comes in time, in pieces, is read as usual.
    app.signup("slow@example.com").await;
    let addr = app.addr.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = json!({"email": "slow@example.com", "password": PASSWORD}).to_string();
    let head = format!(
        "POST /auth/login HTTP/1.1\r\nHost: auth\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (first, rest) = body.split_at(10);
    stream.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert_eq!(parse_answer(&answer).0, 200, "{answer}");
}

#[tokio::test]
async fn edge_a_declared_body_over_the_limit_is_refused_before_it_is_read() {
    // A long body deadline: an answer within seconds is the declared length's refusal.
    let app = spawn_app_with(&[("AUTH_BODY_TIMEOUT_MS", "120000")]).await;
    let head = "POST /auth/signup HTTP/1.1\r\nHost: auth\r\nContent-Type: application/json\r\n\
                Content-Length: 100000000\r\n\r\n";
    let answer = send_and_read_to_close(&app, head, 20)
        .await
        .expect("answered and closed well before the body deadline");
    let (status, head, body) = parse_answer(&answer);
    assert_eq!(status, 413, "{answer}");
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(body["code"], "payload_too_large", "{body}");
    // At the limit it is read (and here found malformed).
    let r = app
        .client
        .post(app.url("/auth/signup"))
        .header("content-type", "application/json")
        .body(vec![b' '; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed_request").await;
}

#[tokio::test]
async fn edge_headers_that_arrive_too_slowly_close_the_connection() {
    let app = spawn_app_with(&[("AUTH_HEADER_TIMEOUT_MS", "300")]).await;
    let answer = send_and_read_to_close(&app, "GET /health HTTP/1.1\r\nHost: auth\r\n", 20)
        .await
        .expect("closed well before 20 s");
    assert!(!answer.contains(" 200 "), "{answer}");
    // Headers sent in time are answered.
    let answer = send_and_read_to_close(
        &app,
        "GET /health HTTP/1.1\r\nHost: auth\r\nConnection: close\r\n\r\n",
        20,
    )
    .await
    .expect("answered");
    assert_eq!(parse_answer(&answer).0, 200, "{answer}");
}
