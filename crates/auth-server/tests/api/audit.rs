//! The audit log: every security event is stored with who acted, about whom, from where and
//! in which request; the admin query (filters, pages, bounds, tenants), a user's own activity,
//! the retention purge and the `audit=true` log line.

use auth_core::domain::TenantId;
use auth_core::service::Registration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Pair, TestApp, eventually, spawn_app, spawn_app_with};

const AGENT: &str = "audit-suite/1.0";

/// One request as the audit log should see it: its status, request id and body.
struct Sent {
    status: StatusCode,
    request_id: String,
    body: Value,
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Sent {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("user-agent", AGENT);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let text = r.text().await.unwrap();
    Sent {
        status,
        request_id,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// A user made directly through the service, with extra roles, in a tenant; its id.
async fn user_in(app: &TestApp, tenant: &str, email: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    let reg = Registration::parse(email, None, PASSWORD.into(), &roles)
        .unwrap()
        .in_tenant(TenantId::trusted(tenant));
    let user = app.state.accounts.register(reg).await.unwrap();
    user.id.to_string()
}

async fn login_in(app: &TestApp, tenant: &str, email: &str) -> Pair {
    let body = json!({"email": email, "password": PASSWORD, "tenant": tenant});
    let r = send(app, Method::POST, "/auth/login", None, Some(body)).await;
    assert_eq!(r.status, 200, "login of {email}: {}", r.body);
    Pair::from(r.body)
}

async fn audit(app: &TestApp, token: &str, query: &str) -> Value {
    let r = send(app, Method::GET, &format!("/auth/admin/audit?{query}"), Some(token), None).await;
    assert_eq!(r.status, 200, "audit?{query}: {}", r.body);
    r.body
}

/// What an action's event must say.
struct Expect<'a> {
    kind: &'a str,
    actor: Option<&'a str>,
    user: Option<&'a str>,
    tenant: &'a str,
    outcome: &'a str,
    /// Fields the details must hold.
    details: Value,
}

/// Finds the one event of `sent`'s request of the expected type and checks every field.
async fn check(app: &TestApp, reader: &str, sent: &Sent, want: Expect<'_>) {
    assert!(sent.status.is_success() || want.outcome == "failure", "{}", sent.body);
    let query = format!("type={}&tenant={}&limit=200", want.kind, want.tenant);
    let page = audit(app, reader, &query).await;
    let found: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["request_id"] == sent.request_id.as_str())
        .collect();
    assert_eq!(found.len(), 1, "{} of request {}: {page}", want.kind, sent.request_id);
    let e = found[0];
    let what = format!("{}: {e}", want.kind);
    assert_eq!(e["type"], want.kind, "{what}");
    assert_eq!(e["actor_id"].as_str(), want.actor, "actor of {what}");
    assert_eq!(e["user_id"].as_str(), want.user, "user of {what}");
    assert_eq!(e["tenant"], want.tenant, "{what}");
    assert_eq!(e["ip"], "127.0.0.1", "{what}");
    assert_eq!(e["user_agent"], AGENT, "{what}");
    assert_eq!(e["outcome"], want.outcome, "{what}");
    for (k, v) in want.details.as_object().unwrap() {
        assert_eq!(&e["details"][k], v, "details.{k} of {what}");
    }
    assert!(
        !e.to_string().contains(PASSWORD) && !e.to_string().contains("another long passphrase"),
        "no secret in {what}"
    );
    assert!(e["at"].as_str().unwrap().ends_with('Z'), "{what}");
}

#[tokio::test]
async fn every_security_event_is_recorded_with_actor_user_client_and_request_id() {
    let app = spawn_app_with(&[("AUTH_REFRESH_GRACE_SECONDS", "0")]).await;
    let admin_id = user_in(&app, "default", "admin@example.com", &["admin"]).await;
    let root_id = user_in(&app, "default", "root@example.com", &["superadmin"]).await;
    let admin = login_in(&app, "default", "admin@example.com").await.access;
    let root = login_in(&app, "default", "root@example.com").await.access;
    let (a, r) = (Some(admin_id.as_str()), Some(root_id.as_str()));
    let ok = "success";
    let failed = "failure";

    // The user's own actions.
    let s = send(&app, Method::POST, "/auth/signup", None, Some(json!({"email": "ann@example.com", "password": PASSWORD}))).await;
    let ann = s.body["id"].as_str().unwrap().to_owned();
    let me = Some(ann.as_str());
    check(&app, &admin, &s, Expect { kind: "user.signed_up", actor: me, user: me, tenant: "default", outcome: ok, details: json!({"roles": ["user"]}) }).await;
    let s = send(&app, Method::POST, "/auth/login", None, Some(json!({"email": "ann@example.com", "password": PASSWORD}))).await;
    let pair = Pair::from(s.body.clone());
    check(&app, &admin, &s, Expect { kind: "login.succeeded", actor: me, user: me, tenant: "default", outcome: ok, details: json!({}) }).await;
    let s = send(&app, Method::POST, "/auth/login", None, Some(json!({"email": "ann@example.com", "password": "wrong horse battery"}))).await;
    check(&app, &admin, &s, Expect { kind: "login.failed", actor: None, user: me, tenant: "default", outcome: failed, details: json!({"reason": "wrong_password"}) }).await;
    let s = send(&app, Method::POST, "/auth/login", None, Some(json!({"email": "nobody@example.com", "password": PASSWORD}))).await;
    check(&app, &admin, &s, Expect { kind: "login.failed", actor: None, user: None, tenant: "default", outcome: failed, details: json!({"reason": "unknown_account"}) }).await;
    let s = send(&app, Method::POST, "/auth/refresh", None, Some(json!({"refresh_token": pair.refresh}))).await;
    let next = Pair::from(s.body.clone());
    check(&app, &admin, &s, Expect { kind: "refresh.succeeded", actor: me, user: me, tenant: "default", outcome: ok, details: json!({}) }).await;
    let s = send(&app, Method::POST, "/auth/refresh", None, Some(json!({"refresh_token": pair.refresh}))).await;
    assert_eq!(s.status, 401);
    check(&app, &admin, &s, Expect { kind: "refresh.reuse_detected", actor: me, user: me, tenant: "default", outcome: failed, details: json!({}) }).await;
    assert!(next.session_id == pair.session_id);

    let first = login_in(&app, "default", "ann@example.com").await;
    let second = login_in(&app, "default", "ann@example.com").await;
    let s = send(&app, Method::POST, "/auth/logout", None, Some(json!({"refresh_token": first.refresh}))).await;
    check(&app, &admin, &s, Expect { kind: "logout.succeeded", actor: me, user: me, tenant: "default", outcome: ok, details: json!({}) }).await;
    let s = send(&app, Method::DELETE, &format!("/auth/sessions/{}", second.session_id), Some(&second.access), None).await;
    check(&app, &admin, &s, Expect { kind: "session.revoked", actor: me, user: me, tenant: "default", outcome: ok, details: json!({}) }).await;
    let third = login_in(&app, "default", "ann@example.com").await;
    let s = send(&app, Method::PATCH, "/auth/me", Some(&third.access), Some(json!({"username": "ann_a"}))).await;
    check(&app, &admin, &s, Expect { kind: "user.updated", actor: me, user: me, tenant: "default", outcome: ok, details: json!({}) }).await;
    let new_password = "another long passphrase 1";
    let s = send(&app, Method::POST, "/auth/password/change", Some(&third.access), Some(json!({"current_password": PASSWORD, "new_password": new_password}))).await;
    check(&app, &admin, &s, Expect { kind: "password.changed", actor: me, user: me, tenant: "default", outcome: ok, details: json!({}) }).await;
    let s = send(&app, Method::POST, "/auth/logout-all", Some(&third.access), None).await;
    check(&app, &admin, &s, Expect { kind: "logout_all.succeeded", actor: me, user: me, tenant: "default", outcome: ok, details: json!({"sessions_revoked": 1}) }).await;

    // Administrators' actions name the administrator.
    let u = format!("/auth/admin/users/{ann}");
    let s = send(&app, Method::POST, "/auth/admin/users", Some(&admin), Some(json!({"email": "bob@example.com", "password": PASSWORD}))).await;
    let bob = s.body["id"].as_str().unwrap().to_owned();
    check(&app, &admin, &s, Expect { kind: "user.created", actor: a, user: Some(bob.as_str()), tenant: "default", outcome: ok, details: json!({"roles": ["user"]}) }).await;
    let s = send(&app, Method::PATCH, &u, Some(&admin), Some(json!({"username": "ann_b"}))).await;
    check(&app, &admin, &s, Expect { kind: "user.updated", actor: a, user: me, tenant: "default", outcome: ok, details: json!({}) }).await;
    let s = send(&app, Method::POST, "/auth/admin/roles", Some(&admin), Some(json!({"name": "support", "permissions": ["tickets:read"]}))).await;
    check(&app, &admin, &s, Expect { kind: "role.created", actor: a, user: None, tenant: "default", outcome: ok, details: json!({"role": "support", "permissions": ["tickets:read"]}) }).await;
    let s = send(&app, Method::PUT, "/auth/admin/roles/support", Some(&admin), Some(json!({"permissions": ["tickets:write"]}))).await;
    check(&app, &admin, &s, Expect { kind: "role.updated", actor: a, user: None, tenant: "default", outcome: ok, details: json!({"role": "support", "permissions": ["tickets:write"]}) }).await;
    let s = send(&app, Method::PATCH, &u, Some(&admin), Some(json!({"roles": ["support"]}))).await;
    check(&app, &admin, &s, Expect { kind: "user.roles_changed", actor: a, user: me, tenant: "default", outcome: ok, details: json!({"roles": ["support", "user"], "previous": ["user"]}) }).await;
    let s = send(&app, Method::DELETE, "/auth/admin/roles/support", Some(&admin), None).await;
    check(&app, &admin, &s, Expect { kind: "role.deleted", actor: a, user: None, tenant: "default", outcome: ok, details: json!({"role": "support"}) }).await;
    let s = send(&app, Method::POST, &format!("{u}/password"), Some(&admin), Some(json!({"password": "another long passphrase 2"}))).await;
    check(&app, &admin, &s, Expect { kind: "password.set", actor: a, user: me, tenant: "default", outcome: ok, details: json!({}) }).await;
    let s = send(&app, Method::POST, &format!("{u}/logout"), Some(&admin), None).await;
    check(&app, &admin, &s, Expect { kind: "user.sessions_revoked", actor: a, user: me, tenant: "default", outcome: ok, details: json!({}) }).await;
    let s = send(&app, Method::POST, &format!("{u}/unlock"), Some(&admin), None).await;
    check(&app, &admin, &s, Expect { kind: "user.unlocked", actor: a, user: me, tenant: "default", outcome: ok, details: json!({}) }).await;
    let s = send(&app, Method::POST, &format!("{u}/disable"), Some(&admin), None).await;
    check(&app, &admin, &s, Expect { kind: "user.disabled", actor: a, user: me, tenant: "default", outcome: ok, details: json!({}) }).await;
    let s = send(&app, Method::POST, "/auth/login", None, Some(json!({"email": "ann@example.com", "password": "another long passphrase 2"}))).await;
    assert_eq!(s.status, 403);
    check(&app, &admin, &s, Expect { kind: "login.failed", actor: None, user: me, tenant: "default", outcome: failed, details: json!({"reason": "account_disabled"}) }).await;
    let s = send(&app, Method::POST, &format!("{u}/enable"), Some(&admin), None).await;
    check(&app, &admin, &s, Expect { kind: "user.enabled", actor: a, user: me, tenant: "default", outcome: ok, details: json!({}) }).await;
    let s = send(&app, Method::DELETE, &format!("/auth/admin/users/{bob}"), Some(&admin), None).await;
    check(&app, &admin, &s, Expect { kind: "user.deleted", actor: a, user: None, tenant: "default", outcome: ok, details: json!({"by": "admin"}) }).await;

    // The platform's: signing keys and tenants.
    let s = send(&app, Method::POST, "/auth/admin/keys/rotate", Some(&root), None).await;
    let kid = s.body["kid"].clone();
    check(&app, &root, &s, Expect { kind: "key.rotated", actor: r, user: None, tenant: "default", outcome: ok, details: json!({"kid": kid, "trigger": "admin"}) }).await;
    let s = send(&app, Method::POST, "/auth/admin/tenants", Some(&root), Some(json!({"id": "gamma", "name": "Gamma"}))).await;
    check(&app, &root, &s, Expect { kind: "tenant.created", actor: r, user: None, tenant: "gamma", outcome: ok, details: json!({"name": "Gamma"}) }).await;

    // Erasing oneself leaves the event without the user's id, as actor or subject.
    let s = send(&app, Method::POST, "/auth/login", None, Some(json!({"email": "ann@example.com", "password": "another long passphrase 2"}))).await;
    let own = Pair::from(s.body);
    let s = send(&app, Method::DELETE, "/auth/me", Some(&own.access), Some(json!({"password": "another long passphrase 2"}))).await;
    check(&app, &admin, &s, Expect { kind: "user.deleted", actor: None, user: None, tenant: "default", outcome: ok, details: json!({"by": "self"}) }).await;
    let named = app
        .count(&format!("SELECT count(*) FROM audit_events WHERE user_id = '{ann}' OR actor_id = '{ann}'"))
        .await;
    assert_eq!(named, 0, "the erased user's id left the trail");
}

/// A user with events: one login succeeded, one failed per `failures`.
async fn with_events(app: &TestApp, tenant: &str, email: &str, failures: usize) -> String {
    let id = user_in(app, tenant, email, &[]).await;
    login_in(app, tenant, email).await;
    for _ in 0..failures {
        let body = json!({"email": email, "password": "wrong horse battery", "tenant": tenant});
        let r = send(app, Method::POST, "/auth/login", None, Some(body)).await;
        assert_eq!(r.status, 401);
    }
    id
}

fn types(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_admin_query_filters_pages_newest_first_and_refuses_bad_parameters() {
    let app = spawn_app().await;
    user_in(&app, "default", "admin@example.com", &["admin"]).await;
    let admin = login_in(&app, "default", "admin@example.com").await.access;
    let ann = with_events(&app, "default", "ann@example.com", 3).await;
    let bob = with_events(&app, "default", "bob@example.com", 1).await;

    let anns = audit(&app, &admin, &format!("user_id={ann}")).await;
    assert_eq!(
        types(&anns),
        ["login.failed", "login.failed", "login.failed", "login.succeeded", "user.signed_up"]
    );
    assert!(anns["next_cursor"].is_null());
    let failed = audit(&app, &admin, "type=login.failed").await;
    let users: Vec<&str> = failed["items"].as_array().unwrap().iter().map(|e| e["user_id"].as_str().unwrap()).collect();
    assert_eq!(users, [bob.as_str(), &ann, &ann, &ann], "newest first");

    // A page at a time: the same entries, none twice, in the same order.
    let all = audit(&app, &admin, "limit=200").await;
    let mut paged = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let page = audit(&app, &admin, &query).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        paged.extend(items.iter().map(|e| e["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("limit=2&cursor={c}"),
            None => break,
        }
    }
    let ids: Vec<Value> = all["items"].as_array().unwrap().iter().map(|e| e["id"].clone()).collect();
    assert_eq!(paged, ids);
    assert!(ids.len() >= 10, "{all}");

    // A time range: nothing before the epoch, everything since, nothing in the future.
    let at = all["items"][0]["at"].as_str().unwrap().to_owned();
    let until_then = audit(&app, &admin, "until=1970-01-02T00:00:00Z").await;
    assert!(types(&until_then).is_empty());
    let since = audit(&app, &admin, &format!("since={}&limit=200", at.replace('+', "%2B"))).await;
    assert!(!types(&since).is_empty());
    let future = audit(&app, &admin, "since=2999-01-01T00:00:00%2B02:00").await;
    assert!(types(&future).is_empty());
    let window = audit(&app, &admin, &format!("user_id={bob}&type=login.failed&since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z")).await;
    assert_eq!(types(&window), ["login.failed"]);
    let none = audit(&app, &admin, &format!("user_id={}", uuid::Uuid::nil())).await;
    assert!(types(&none).is_empty());

    for (query, why) in [
        ("limit=0", "limit below 1"),
        ("limit=201", "limit above 200"),
        ("limit=x", "limit not a number"),
        ("type=login", "an unknown type"),
        ("user_id=ann", "not a user id"),
        ("since=yesterday", "not RFC 3339"),
        ("until=2024-01-01", "a date without a time"),
        ("cursor=zz", "not a cursor"),
        ("cursor=00", "a cursor too short"),
        ("tenant=Not_A_Tenant", "a bad tenant"),
        ("colour=red", "an unknown parameter"),
    ] {
        let r = send(&app, Method::GET, &format!("/auth/admin/audit?{query}"), Some(&admin), None).await;
        assert_eq!(r.status, 422, "{why}: {}", r.body);
        assert_eq!(r.body["code"], "validation_failed", "{why}");
    }
}

#[tokio::test]
async fn another_tenants_events_are_invisible_except_to_a_superadmin() {
    let app = spawn_app().await;
    app.state
        .directory
        .create_tenant(None, TenantId::trusted("beta"), "Beta".into(), &Default::default())
        .await
        .unwrap();
    user_in(&app, "default", "admin@example.com", &["admin"]).await;
    user_in(&app, "beta", "admin@example.com", &["admin"]).await;
    user_in(&app, "default", "root@example.com", &["superadmin"]).await;
    let admin = login_in(&app, "default", "admin@example.com").await.access;
    let beta_admin = login_in(&app, "beta", "admin@example.com").await.access;
    let root = login_in(&app, "default", "root@example.com").await.access;
    let ann = with_events(&app, "default", "ann@example.com", 1).await;
    let bea = with_events(&app, "beta", "bea@example.com", 1).await;

    let seen = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|e| e["tenant"].as_str().unwrap().to_owned()).collect()
    };
    let defaults = audit(&app, &admin, "limit=200").await;
    assert!(seen(&defaults).iter().all(|t| t == "default"), "{defaults}");
    let betas = audit(&app, &beta_admin, "limit=200").await;
    assert!(!seen(&betas).is_empty() && seen(&betas).iter().all(|t| t == "beta"), "{betas}");
    // Naming a user of the other tenant finds nothing; naming the other tenant is 404.
    assert!(types(&audit(&app, &beta_admin, &format!("user_id={ann}")).await).is_empty());
    assert!(types(&audit(&app, &admin, &format!("user_id={bea}")).await).is_empty());
    let r = send(&app, Method::GET, "/auth/admin/audit?tenant=default", Some(&beta_admin), None).await;
    assert_eq!(r.status, 404);
    // A superadmin spans tenants.
    let as_root = audit(&app, &root, &format!("tenant=beta&user_id={bea}")).await;
    assert_eq!(types(&as_root), ["login.failed", "login.succeeded", "user.signed_up"]);
    // A plain user may not read the log at all.
    let user = login_in(&app, "default", "ann@example.com").await.access;
    let r = send(&app, Method::GET, "/auth/admin/audit", Some(&user), None).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn my_activity_shows_only_my_events_and_not_which_admin_acted_nor_from_where() {
    let app = spawn_app().await;
    user_in(&app, "default", "admin@example.com", &["admin"]).await;
    let admin = login_in(&app, "default", "admin@example.com").await.access;
    let ann = with_events(&app, "default", "ann@example.com", 2).await;
    with_events(&app, "default", "bob@example.com", 1).await;
    let r = send(&app, Method::POST, &format!("/auth/admin/users/{ann}/unlock"), Some(&admin), None).await;
    assert_eq!(r.status, 204);
    let pair = login_in(&app, "default", "ann@example.com").await;

    let r = send(&app, Method::GET, "/auth/me/activity", Some(&pair.access), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        types(&r.body),
        ["login.succeeded", "user.unlocked", "login.failed", "login.failed", "login.succeeded", "user.signed_up"]
    );
    let items = r.body["items"].as_array().unwrap();
    assert!(items.iter().all(|e| e["user_id"] == ann.as_str()), "only mine");
    assert!(items[0]["request_id"].is_string());
    assert_eq!(items[0]["actor_id"], ann.as_str());
    assert_eq!(items[0]["ip"], "127.0.0.1");
    let unlocked = &items[1];
    assert!(unlocked["actor_id"].is_null() && unlocked["ip"].is_null(), "{unlocked}");
    assert!(unlocked["user_agent"].is_null() && unlocked["request_id"].is_null(), "{unlocked}");
    assert_eq!(items[2]["ip"], "127.0.0.1", "attempts on my account show where from");

    let first = send(&app, Method::GET, "/auth/me/activity?limit=4", Some(&pair.access), None).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = send(&app, Method::GET, &format!("/auth/me/activity?cursor={cursor}"), Some(&pair.access), None).await;
    assert_eq!(types(&first.body).len() + types(&rest.body).len(), 6);
    assert!(rest.body["next_cursor"].is_null());
    for query in ["limit=0", "limit=500", "cursor=nope", "user_id=x"] {
        let r = send(&app, Method::GET, &format!("/auth/me/activity?{query}"), Some(&pair.access), None).await;
        assert_eq!(r.status, 422, "{query}");
    }
    let r = send(&app, Method::GET, "/auth/me/activity", None, None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn entries_past_the_retention_are_purged_and_recent_ones_kept() {
    let app = spawn_app().await;
    let now = auth_core::now_unix();
    for (id, age_days) in [("old-1", 400), ("old-2", 31), ("recent", 29), ("today", 0)] {
        sqlx::query(&format!(
            "INSERT INTO audit_events (id, tenant_id, kind, outcome, details, created_at) \
             VALUES ('{id}', 'default', 'login.failed', 'failure', '{{}}', {})",
            now - age_days * 86_400
        ))
        .execute(app.pool())
        .await
        .unwrap();
    }
    let kept = || async {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM audit_events WHERE id IN ('old-1', 'old-2', 'recent', 'today') ORDER BY id",
        )
        .fetch_all(app.pool())
        .await
        .unwrap();
        ids
    };
    // Another instance with a retention of 30 days purges at start.
    let _sibling = app.sibling(&[("AUTH_AUDIT_RETENTION_DAYS", "30")]).await;
    assert!(
        eventually(10, || async { kept().await == ["recent", "today"] }).await,
        "{:?}",
        kept().await
    );
    // `0` keeps everything.
    assert_eq!(app.state.audit.purge(0).await.unwrap(), 0);
    assert_eq!(kept().await, ["recent", "today"]);
}

#[tokio::test]
async fn each_event_is_one_json_log_line_with_audit_true_and_no_secret() {
    let (_db, url) = crate::helpers::TestDb::create().await;
    let mut cmd = crate::cli::command(&url);
    cmd.env("LOG_FORMAT", "json");
    let (server, addr, log) = crate::cli::serve_logged(cmd);
    let client = reqwest::Client::new();
    let signup = json!({"email": "logged@example.com", "password": PASSWORD});
    let r = client.post(format!("{addr}/auth/signup")).json(&signup).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let user = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let wrong = json!({"email": "logged@example.com", "password": "wrong horse battery"});
    let r = client.post(format!("{addr}/auth/login")).json(&wrong).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(crate::cli::stop(server).code(), Some(0));

    let log = log.lock().unwrap();
    let audit: Vec<Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["audit"] == true)
        .collect();
    assert_eq!(audit.len(), 2, "{log:#?}");
    assert!(audit.iter().all(|l| l["target"] == "audit" && l["level"] == "INFO"));
    assert_eq!(audit[0]["type"], "user.signed_up");
    let failed = &audit[1];
    assert_eq!(failed["type"], "login.failed");
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["user_id"], user.as_str());
    assert_eq!(failed["request_id"], request_id.as_str());
    assert_eq!(failed["ip"], "127.0.0.1");
    let details: Value = serde_json::from_str(failed["details"].as_str().unwrap()).unwrap();
    assert_eq!(details, json!({"reason": "wrong_password"}));
    assert!(log.iter().all(|l| !l.contains("horse battery")), "no password in the log");
}

#[tokio::test]
async fn rotations_by_the_command_line_and_the_schedule_leave_their_events() {
    let app = spawn_app_with(&[("AUTH_KEY_ROTATION_DAYS", "1")]).await;
    let url = secrecy::ExposeSecret::expose_secret(&app.config.database.url).to_owned();
    let out = crate::cli::command(&url)
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The scheduled key signs when due; then the active key is made two days old and the
    // upkeep (what the background task runs) rotates it.
    let due = auth_core::now_unix() + 3600;
    app.state.keys().tick(due).await.unwrap();
    sqlx::query("UPDATE signing_keys SET activated_at = activated_at - 2 * 86400 WHERE state = 'active'")
        .execute(app.pool())
        .await
        .unwrap();
    app.state.keys().tick(due).await.unwrap();
    let rows: Vec<(String, Option<String>, String, String)> = sqlx::query_as(
        "SELECT tenant_id, actor_id, outcome, details FROM audit_events \
         WHERE kind = 'key.rotated' ORDER BY created_at, id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    let triggers: Vec<String> = rows
        .iter()
        .map(|(tenant, actor, outcome, details)| {
            assert_eq!((tenant.as_str(), actor, outcome.as_str()), ("default", &None, "success"));
            let details: Value = serde_json::from_str(details).unwrap();
            assert!(details["kid"].is_string(), "{details}");
            details["trigger"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(triggers, ["cli", "schedule"]);
}
