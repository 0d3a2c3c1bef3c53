//! The audit log: every security event is stored with who acted, about whom, from where and
//! in which request (a table of every action), key rotations that no request makes, and the
//! `audit=true` log line. The query, tenants, own activity and retention: `audit_query`.

use auth_core::domain::TenantId;
use auth_core::service::Registration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Pair, TestApp, spawn_app_with};

const AGENT: &str = "audit-suite/1.0";

/// One request as the audit log should see it: its status, request id and body.
pub(crate) struct Sent {
    pub status: StatusCode,
    pub request_id: String,
    pub body: Value,
}

pub(crate) async fn send(
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
pub(crate) async fn user_in(app: &TestApp, tenant: &str, email: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    let reg = Registration::parse(email, None, PASSWORD.into(), &roles)
        .unwrap()
        .in_tenant(TenantId::trusted(tenant));
    let user = app.state.accounts.register(reg).await.unwrap();
    user.id.to_string()
}

pub(crate) async fn login_in(app: &TestApp, tenant: &str, email: &str) -> Pair {
    let body = json!({"email": email, "password": PASSWORD, "tenant": tenant});
    let r = send(app, Method::POST, "/auth/login", None, Some(body)).await;
    assert_eq!(r.status, 200, "login of {email}: {}", r.body);
    Pair::from(r.body)
}

pub(crate) async fn audit(app: &TestApp, token: &str, query: &str) -> Value {
    let r = send(
        app,
        Method::GET,
        &format!("/auth/admin/audit?{query}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "audit?{query}: {}", r.body);
    r.body
}

/// Who an event names, resolved to an id once the action ran.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    /// Ann, the user whose account the actions are about.
    Ann,
    /// Bob, created by the admin.
    Bob,
    Admin,
    Root,
    Nobody,
}
use Who::{Admin, Ann, Bob, Nobody, Root};

const OK: &str = "success";
const NO: &str = "failure";
const D: &str = "default";
const P2: &str = "another long passphrase 2";

/// Checks the one event of `sent`'s request of type `kind` (read by a superadmin).
async fn check(app: &TestApp, root: &str, sent: &Sent, row: &Row, ids: &[(Who, Option<&str>)]) {
    let (kind, actor, user, tenant, outcome, details) = row;
    let id = |who: &Who| ids.iter().find(|(w, _)| w == who).unwrap().1;
    let page = audit(app, root, &format!("type={kind}&tenant={tenant}&limit=200")).await;
    let found: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["request_id"] == sent.request_id.as_str())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{kind} of request {}: {page}",
        sent.request_id
    );
    let e = found[0];
    let what = format!("{kind}: {e}");
    assert_eq!(e["type"], *kind, "{what}");
    assert_eq!(e["actor_id"].as_str(), id(actor), "actor of {what}");
    assert_eq!(e["user_id"].as_str(), id(user), "user of {what}");
    assert_eq!(e["tenant"], *tenant, "{what}");
    assert_eq!(e["ip"], "127.0.0.1", "{what}");
    assert_eq!(e["user_agent"], AGENT, "{what}");
    assert_eq!(e["outcome"], *outcome, "{what}");
    for (k, v) in details.as_object().unwrap() {
        assert_eq!(&e["details"][k], v, "details.{k} of {what}");
    }
    let text = e.to_string();
    assert!(
        !text.contains(PASSWORD) && !text.contains(P2),
        "no secret in {what}"
    );
    assert!(e["at"].as_str().unwrap().ends_with('Z'), "{what}");
}

/// An expected event: type, actor, user, tenant, outcome, fields of the details.
type Row = (&'static str, Who, Who, &'static str, &'static str, Value);

#[tokio::test]
async fn every_security_event_is_recorded_with_actor_user_client_and_request_id() {
    let app = spawn_app_with(&[("AUTH_REFRESH_GRACE_SECONDS", "0")]).await;
    let admin_id = user_in(&app, D, "admin@example.com", &["admin"]).await;
    let root_id = user_in(&app, D, "root@example.com", &["superadmin"]).await;
    let admin = login_in(&app, D, "admin@example.com").await.access;
    let root = login_in(&app, D, "root@example.com").await.access;
    let post = |path: &str, token: Option<&str>, body: Value| {
        let (path, token) = (path.to_owned(), token.map(str::to_owned));
        let app = &app;
        async move { send(app, Method::POST, &path, token.as_deref(), Some(body)).await }
    };
    let call = |method: Method, path: &str, token: &str, body: Option<Value>| {
        let (path, token) = (path.to_owned(), token.to_owned());
        let app = &app;
        async move { send(app, method, &path, Some(&token), body).await }
    };
    let ann_login =
        |password: &'static str| json!({"email": "ann@example.com", "password": password});
    let mut sent = Vec::new();

    // The user's own actions.
    let signup = json!({"email": "ann@example.com", "password": PASSWORD});
    let s = post("/auth/signup", None, signup).await;
    let ann = s.body["id"].as_str().unwrap().to_owned();
    sent.push(s);
    let s = post("/auth/login", None, ann_login(PASSWORD)).await;
    let pair = Pair::from(s.body.clone());
    sent.push(s);
    sent.push(post("/auth/login", None, ann_login("wrong horse battery")).await);
    let nobody = json!({"email": "nobody@example.com", "password": PASSWORD});
    sent.push(post("/auth/login", None, nobody).await);
    let presented = json!({"refresh_token": pair.refresh});
    sent.push(post("/auth/refresh", None, presented.clone()).await);
    sent.push(post("/auth/refresh", None, presented).await);
    let first = login_in(&app, D, "ann@example.com").await;
    let second = login_in(&app, D, "ann@example.com").await;
    let third = login_in(&app, D, "ann@example.com").await;
    sent.push(
        post(
            "/auth/logout",
            None,
            json!({"refresh_token": first.refresh}),
        )
        .await,
    );
    let own_session = format!("/auth/sessions/{}", second.session_id);
    sent.push(call(Method::DELETE, &own_session, &second.access, None).await);
    let rename = json!({"username": "ann_a"});
    sent.push(call(Method::PATCH, "/auth/me", &third.access, Some(rename)).await);
    let change = json!({"current_password": PASSWORD, "new_password": "another long passphrase 1"});
    sent.push(post("/auth/password/change", Some(&third.access), change).await);
    sent.push(post("/auth/logout-all", Some(&third.access), json!({})).await);

    // Administrators' actions, then the platform's.
    let u = format!("/auth/admin/users/{ann}");
    let new_user = json!({"email": "bob@example.com", "password": PASSWORD});
    let s = post("/auth/admin/users", Some(&admin), new_user).await;
    let bob = s.body["id"].as_str().unwrap().to_owned();
    sent.push(s);
    let rename = json!({"username": "ann_b"});
    sent.push(call(Method::PATCH, &u, &admin, Some(rename)).await);
    let role = json!({"name": "support", "permissions": ["tickets:read"]});
    sent.push(post("/auth/admin/roles", Some(&admin), role).await);
    let perms = json!({"permissions": ["tickets:write"]});
    sent.push(
        call(
            Method::PUT,
            "/auth/admin/roles/support",
            &admin,
            Some(perms),
        )
        .await,
    );
    let roles = json!({"roles": ["support"]});
    sent.push(call(Method::PATCH, &u, &admin, Some(roles)).await);
    sent.push(call(Method::DELETE, "/auth/admin/roles/support", &admin, None).await);
    sent.push(
        post(
            &format!("{u}/password"),
            Some(&admin),
            json!({"password": P2}),
        )
        .await,
    );
    sent.push(post(&format!("{u}/logout"), Some(&admin), json!({})).await);
    sent.push(post(&format!("{u}/unlock"), Some(&admin), json!({})).await);
    sent.push(post(&format!("{u}/disable"), Some(&admin), json!({})).await);
    sent.push(post("/auth/login", None, ann_login(P2)).await);
    sent.push(post(&format!("{u}/enable"), Some(&admin), json!({})).await);
    let carl = user_in(&app, D, "carl@example.com", &[]).await;
    let erase_carl = format!("/auth/admin/users/{carl}");
    sent.push(call(Method::DELETE, &erase_carl, &admin, None).await);
    let s = post("/auth/admin/keys/rotate", Some(&root), json!({})).await;
    let kid = s.body["kid"].clone();
    sent.push(s);
    let gamma = json!({"id": "gamma", "name": "Gamma"});
    sent.push(post("/auth/admin/tenants", Some(&root), gamma).await);
    let table: Vec<Row> = vec![
        (
            "user.signed_up",
            Ann,
            Ann,
            D,
            OK,
            json!({"roles": ["user"]}),
        ),
        ("login.succeeded", Ann, Ann, D, OK, json!({})),
        (
            "login.failed",
            Nobody,
            Ann,
            D,
            NO,
            json!({"reason": "wrong_password"}),
        ),
        (
            "login.failed",
            Nobody,
            Nobody,
            D,
            NO,
            json!({"reason": "unknown_account"}),
        ),
        ("refresh.succeeded", Ann, Ann, D, OK, json!({})),
        ("refresh.reuse_detected", Ann, Ann, D, NO, json!({})),
        ("logout.succeeded", Ann, Ann, D, OK, json!({})),
        ("session.revoked", Ann, Ann, D, OK, json!({})),
        ("user.updated", Ann, Ann, D, OK, json!({})),
        ("password.changed", Ann, Ann, D, OK, json!({})),
        (
            "logout_all.succeeded",
            Ann,
            Ann,
            D,
            OK,
            json!({"sessions_revoked": 1}),
        ),
        (
            "user.created",
            Admin,
            Bob,
            D,
            OK,
            json!({"roles": ["user"]}),
        ),
        ("user.updated", Admin, Ann, D, OK, json!({})),
        (
            "role.created",
            Admin,
            Nobody,
            D,
            OK,
            json!({"role": "support"}),
        ),
        (
            "role.updated",
            Admin,
            Nobody,
            D,
            OK,
            json!({"permissions": ["tickets:write"]}),
        ),
        (
            "user.roles_changed",
            Admin,
            Ann,
            D,
            OK,
            json!({"roles": ["support", "user"]}),
        ),
        (
            "role.deleted",
            Admin,
            Nobody,
            D,
            OK,
            json!({"role": "support"}),
        ),
        ("password.set", Admin, Ann, D, OK, json!({})),
        ("user.sessions_revoked", Admin, Ann, D, OK, json!({})),
        ("user.unlocked", Admin, Ann, D, OK, json!({})),
        ("user.disabled", Admin, Ann, D, OK, json!({})),
        (
            "login.failed",
            Nobody,
            Ann,
            D,
            NO,
            json!({"reason": "account_disabled"}),
        ),
        ("user.enabled", Admin, Ann, D, OK, json!({})),
        ("user.deleted", Admin, Nobody, D, OK, json!({"by": "admin"})),
        (
            "key.rotated",
            Root,
            Nobody,
            D,
            OK,
            json!({"kid": kid, "trigger": "admin"}),
        ),
        (
            "tenant.created",
            Root,
            Nobody,
            "gamma",
            OK,
            json!({"name": "Gamma"}),
        ),
    ];
    assert_eq!(sent.len(), table.len());
    let ids = [
        (Ann, Some(ann.as_str())),
        (Bob, Some(bob.as_str())),
        (Admin, Some(admin_id.as_str())),
        (Root, Some(root_id.as_str())),
        (Nobody, None),
    ];
    for (s, row) in sent.iter().zip(&table) {
        let refused = row.4 == NO;
        assert!(
            s.status.is_success() != refused,
            "{}: {} {}",
            row.0,
            s.status,
            s.body
        );
        check(&app, &root, s, row, &ids).await;
    }

    // Erasing oneself: the event names no one, and the user's id leaves the trail.
    let own = Pair::from(post("/auth/login", None, ann_login(P2)).await.body);
    let erase = json!({"password": P2});
    sent.push(call(Method::DELETE, "/auth/me", &own.access, Some(erase)).await);

    let row = ("user.deleted", Nobody, Nobody, D, OK, json!({"by": "self"}));
    check(&app, &root, sent.last().unwrap(), &row, &ids).await;
    let named = app
        .count(&format!(
            "SELECT count(*) FROM audit_events WHERE user_id = '{ann}' OR actor_id = '{ann}'"
        ))
        .await;
    assert_eq!(named, 0, "the erased user's id left the trail");
}

#[tokio::test]
async fn each_event_is_one_json_log_line_with_audit_true_and_no_secret() {
    let (_db, url) = crate::helpers::TestDb::create().await;
    let mut cmd = crate::cli::command(&url);
    cmd.env("LOG_FORMAT", "json");
    let (server, addr, log) = crate::cli::serve_logged(cmd);
    let client = reqwest::Client::new();
    let signup = json!({"email": "logged@example.com", "password": PASSWORD});
    let r = client
        .post(format!("{addr}/auth/signup"))
        .json(&signup)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let user = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = json!({"email": "logged@example.com", "password": "wrong horse battery"});
    let r = client
        .post(format!("{addr}/auth/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
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
    assert!(
        audit
            .iter()
            .all(|l| l["target"] == "audit" && l["level"] == "INFO")
    );
    assert_eq!(audit[0]["type"], "user.signed_up");
    let failed = &audit[1];
    assert_eq!(failed["type"], "login.failed");
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["user_id"], user.as_str());
    assert_eq!(failed["request_id"], request_id.as_str());
    assert_eq!(failed["ip"], "127.0.0.1");
    let details: Value = serde_json::from_str(failed["details"].as_str().unwrap()).unwrap();
    assert_eq!(details, json!({"reason": "wrong_password"}));
    assert!(
        log.iter().all(|l| !l.contains("horse battery")),
        "no password in the log"
    );
}

#[tokio::test]
async fn rotations_by_the_command_line_and_the_schedule_leave_their_events() {
    let app = spawn_app_with(&[("AUTH_KEY_ROTATION_DAYS", "1")]).await;
    let url = secrecy::ExposeSecret::expose_secret(&app.config.database.url).to_owned();
    let out = crate::cli::command(&url)
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The scheduled key signs when due; then the active key is made two days old and the
    // upkeep (what the background task runs) rotates it.
    let due = auth_core::now_unix() + 3600;
    app.state.keys().tick(due).await.unwrap();
    sqlx::query(
        "UPDATE signing_keys SET activated_at = activated_at - 2 * 86400 WHERE state = 'active'",
    )
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
            assert_eq!(
                (tenant.as_str(), actor, outcome.as_str()),
                ("default", &None, "success")
            );
            let details: Value = serde_json::from_str(details).unwrap();
            assert!(details["kid"].is_string(), "{details}");
            details["trigger"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(triggers, ["cli", "schedule"]);
}
