//! The event outbox through the service: every event a run of the service records validates
//! against its JSON Schema (schemas/events/), the admin API's permission matrix and tenant
//! scoping, re-queuing a parked event, erasure, and `/metrics`.

use std::path::PathBuf;
use std::process::Command;

use auth_core::events::EventType;
use reqwest::Method;
use serde_json::{Value, json};

use crate::audit::{login_in, send, user_in};
use crate::helpers::python_with;
use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with};

pub(crate) fn schema_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/events"))
}

const VALIDATE: &str = r#"
import json, sys, pathlib, jsonschema
schemas, docs = pathlib.Path(sys.argv[1]), json.load(sys.stdin)
bad = []
for doc in docs:
    schema = json.loads((schemas / (doc.get("type", "?") + ".json")).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    bad += [f"{doc.get('type')}: {e.message}" for e in v.iter_errors(doc)]
print("\n".join(bad))
sys.exit(1 if bad else 0)
"#;

/// Validates event documents against their schemas with Python's `jsonschema`; panics with
/// every error.
pub(crate) fn validate_documents(python: &str, docs: &[Value]) {
    use std::io::Write;
    let mut child = Command::new(python)
        .args(["-c", VALIDATE, schema_dir().to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(docs).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "documents not valid against their schemas:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The event documents in the outbox, oldest first.
pub(crate) async fn outbox_documents(app: &TestApp) -> Vec<Value> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE channel = 'event' ORDER BY id")
            .fetch_all(app.pool())
            .await
            .unwrap();
    rows.iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

/// A request and the status it must get.
type Call<'a> = (Method, String, Option<&'a str>, Option<Value>, u16);

/// Drives every change that records an event through HTTP (sign-up, profile update, role
/// change, disable/enable, password change, logout, logout-all, refresh reuse, deletion).
pub(crate) async fn drive_every_event(app: &TestApp, admin: &str, email: &str) -> String {
    let id = app.signup(email).await["id"].as_str().unwrap().to_owned();
    let pair = app.login_pair(email).await;
    let to = |path: String| path;
    let calls: Vec<Call> = vec![
        (
            Method::PATCH,
            to(format!("/auth/admin/users/{id}")),
            Some(admin),
            Some(json!({"username": format!("u{}", &id[..8])})),
            200,
        ),
        (
            Method::PATCH,
            to(format!("/auth/admin/users/{id}")),
            Some(admin),
            Some(json!({"roles": ["user", "admin"]})),
            200,
        ),
        (
            Method::POST,
            to(format!("/auth/admin/users/{id}/disable")),
            Some(admin),
            None,
            204,
        ),
        (
            Method::POST,
            to(format!("/auth/admin/users/{id}/enable")),
            Some(admin),
            None,
            204,
        ),
    ];
    for (method, path, token, body, status) in calls {
        let r = send(app, method, &path, token, body).await;
        assert_eq!(r.status.as_u16(), status, "{path}: {}", r.body);
    }
    let pair2 = app.login_pair(email).await;
    let new_password = "another correct horse battery";
    let r = send(
        app,
        Method::POST,
        "/auth/password/change",
        Some(&pair2.access),
        Some(json!({"current_password": PASSWORD, "new_password": new_password})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let login = || async {
        let body = json!({"email": email, "password": new_password});
        let r = app.post_json("/auth/login", &body).await;
        r.json::<Value>().await.unwrap()
    };
    let (a, b, c) = (login().await, login().await, login().await);
    let r = send(
        app,
        Method::POST,
        "/auth/logout",
        None,
        Some(json!({"refresh_token": a["refresh_token"]})),
    )
    .await;
    assert_eq!(r.status, 204);
    // Reuse: a rotated token presented again after the grace window.
    let first = app.refresh(b["refresh_token"].as_str().unwrap()).await;
    let next: Value = first.json().await.unwrap();
    let _ = app.refresh(next["refresh_token"].as_str().unwrap()).await;
    let _ = app.refresh(b["refresh_token"].as_str().unwrap()).await;
    let r = send(
        app,
        Method::POST,
        "/auth/logout-all",
        Some(c["access_token"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    let _ = pair;
    let r = send(
        app,
        Method::DELETE,
        &format!("/auth/admin/users/{id}"),
        Some(admin),
        None,
    )
    .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.body);
    id
}

async fn admin_token(app: &TestApp, email: &str, roles: &[&str]) -> String {
    user_in(app, "default", email, roles).await;
    login_in(app, "default", email).await.access
}

#[test]
fn every_event_type_has_a_schema_that_names_it() {
    for t in EventType::ALL {
        let path = schema_dir().join(format!("{}.json", t.as_str()));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path:?}"));
        let schema: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(schema["properties"]["type"]["const"], t.as_str());
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }
    let files = std::fs::read_dir(schema_dir()).unwrap().count();
    assert_eq!(files, EventType::ALL.len(), "a schema of no event type");
}

#[tokio::test]
async fn every_event_the_service_records_is_valid_against_its_schema() {
    // No grace window: a rotated refresh token presented again is reuse at once.
    let app = spawn_app_with(&[("AUTH_REFRESH_GRACE_SECONDS", "0")]).await;
    let admin = admin_token(&app, "root@example.com", &["superadmin"]).await;
    let subject = drive_every_event(&app, &admin, "events@example.com").await;
    let docs = outbox_documents(&app).await;
    let mine: Vec<&Value> = docs
        .iter()
        .filter(|d| d["subject"] == subject.as_str())
        .collect();
    let types: std::collections::BTreeSet<&str> =
        mine.iter().map(|d| d["type"].as_str().unwrap()).collect();
    for expected in [
        "auth.user_created",
        "auth.user_updated",
        "auth.roles_changed",
        "auth.user_disabled",
        "auth.user_enabled",
        "auth.password_changed",
        "auth.session_revoked",
        "auth.refresh_reuse_detected",
        "auth.user_deleted",
    ] {
        assert!(
            types.contains(expected),
            "{expected} missing from {types:?}"
        );
    }
    let Some(python) = python_with("jsonschema") else {
        return;
    };
    validate_documents(&python, &docs);
}

#[tokio::test]
async fn the_admin_api_answers_each_caller_as_its_permissions_and_tenant_say() {
    let app = spawn_app().await;
    app.state
        .directory
        .create_tenant(
            None,
            auth_core::domain::TenantId::trusted("beta"),
            "beta".into(),
            &Default::default(),
        )
        .await
        .unwrap();
    let admin = admin_token(&app, "admin@example.com", &["admin"]).await;
    let root = admin_token(&app, "root@example.com", &["superadmin"]).await;
    let plain = admin_token(&app, "plain@example.com", &[]).await;
    user_in(&app, "beta", "b@example.com", &["admin"]).await;
    let beta = login_in(&app, "beta", "b@example.com").await.access;
    let list = "/auth/admin/events";
    for (token, path, status) in [
        (None, list, 401),
        (Some(plain.as_str()), list, 403),
        (Some(admin.as_str()), list, 200),
        (Some(admin.as_str()), "/auth/admin/events?tenant=beta", 404),
        (Some(root.as_str()), "/auth/admin/events?tenant=beta", 200),
        (Some(admin.as_str()), "/auth/admin/events?type=nope", 422),
        (Some(admin.as_str()), "/auth/admin/events?status=lost", 422),
        (Some(plain.as_str()), "/auth/admin/events/stats", 403),
        (Some(admin.as_str()), "/auth/admin/events/stats", 200),
    ] {
        let r = send(&app, Method::GET, path, token, None).await;
        assert_eq!(r.status.as_u16(), status, "{path} {token:?}: {}", r.body);
    }
    // The default tenant's admin sees its tenant's events, not beta's.
    let page = send(
        &app,
        Method::GET,
        "/auth/admin/events?type=auth.user_created&limit=2",
        Some(&admin),
        None,
    )
    .await
    .body;
    let tenants: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["default", "default"]);
    assert!(
        page["next_cursor"].is_string(),
        "three users were created in default"
    );
    let rest = send(
        &app,
        Method::GET,
        &format!(
            "/auth/admin/events?type=auth.user_created&limit=2&cursor={}",
            page["next_cursor"].as_str().unwrap()
        ),
        Some(&admin),
        None,
    )
    .await
    .body;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let beta_page = send(&app, Method::GET, list, Some(&beta), None).await.body;
    assert_eq!(beta_page["items"].as_array().unwrap().len(), 1);
    assert_eq!(beta_page["items"][0]["tenant"], "beta");
    // Without a broker every event stays pending.
    let stats = send(
        &app,
        Method::GET,
        "/auth/admin/events/stats",
        Some(&admin),
        None,
    )
    .await
    .body;
    assert!(stats["broker"].is_null());
    assert_eq!(stats["channels"][0]["channel"], "event");
    assert_eq!(stats["channels"][0]["pending"], 3);

    // Re-queue: only a parked event of the caller's reach.
    let beta_event = beta_page["items"][0]["id"].as_str().unwrap().to_owned();
    sqlx::query(&format!(
        "UPDATE outbox SET parked_at = 1, attempts = 10 WHERE id = '{beta_event}'"
    ))
    .execute(app.pool())
    .await
    .unwrap();
    let retry = format!("/auth/admin/events/{beta_event}/retry");
    for (token, path, status) in [
        (None, retry.as_str(), 401),
        (Some(plain.as_str()), retry.as_str(), 403),
        (Some(admin.as_str()), retry.as_str(), 404),
        (
            Some(admin.as_str()),
            "/auth/admin/events/not-an-id/retry",
            404,
        ),
        (Some(beta.as_str()), retry.as_str(), 204),
        (Some(beta.as_str()), retry.as_str(), 404),
    ] {
        let r = send(&app, Method::POST, path, token, None).await;
        assert_eq!(r.status.as_u16(), status, "{path} {token:?}: {}", r.body);
    }
    let (parked, attempts): (Option<i64>, i64) = sqlx::query_as(&format!(
        "SELECT parked_at, attempts FROM outbox WHERE id = '{beta_event}'"
    ))
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!((parked, attempts), (None, 0));
}

#[tokio::test]
async fn metrics_show_the_outbox_backlog_per_channel() {
    let app = spawn_app().await;
    app.signup("m1@example.com").await;
    app.signup("m2@example.com").await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    for line in [
        "auth_outbox_pending{channel=\"event\"} 2",
        "auth_outbox_parked{channel=\"event\"} 0",
        "auth_outbox_delivered_total{channel=\"event\"} 0",
        "auth_outbox_failures_total{channel=\"mail\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(text.contains("auth_outbox_oldest_pending_seconds{channel=\"event\"} "));
}

#[tokio::test]
async fn erasure_blanks_delivered_events_and_keeps_undelivered_ones_whole() {
    let app = spawn_app().await;
    let root = admin_token(&app, "root@example.com", &["superadmin"]).await;
    let id = app.signup("gone@example.com").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sqlx::query(&format!(
        "UPDATE outbox SET delivered_at = 1 WHERE subject = '{id}'"
    ))
    .execute(app.pool())
    .await
    .unwrap();
    let r = send(
        &app,
        Method::PATCH,
        &format!("/auth/admin/users/{id}"),
        Some(&root),
        Some(json!({"email": "still@example.com"})),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        &app,
        Method::DELETE,
        &format!("/auth/admin/users/{id}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(r.status.as_u16(), 204);
    let docs: Vec<Value> = outbox_documents(&app)
        .await
        .into_iter()
        .filter(|d| d["subject"] == id.as_str())
        .collect();
    let by_type = |t: &str| docs.iter().find(|d| d["type"] == t).unwrap().clone();
    assert_eq!(
        by_type("auth.user_created")["data"],
        json!({}),
        "delivered: blanked"
    );
    assert_eq!(
        by_type("auth.user_updated")["data"]["email"],
        "still@example.com",
        "pending: whole"
    );
    assert_eq!(by_type("auth.user_deleted")["data"]["by"], "admin");
    assert_eq!(
        by_type("auth.user_created")["id"].as_str().map(str::len),
        Some(36)
    );
}
