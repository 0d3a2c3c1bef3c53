//! The admin API: who may call what (a table of every operation and caller), tenant
//! isolation, roles and their grants, disabled users, listings, and mass assignment.

use auth_core::domain::TenantId;
use auth_core::service::Registration;
use auth_core::session::ClientInfo;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Pair, TestApp, assert_problem, spawn_app};

/// Creates a user with extra roles in a tenant, directly through the service.
async fn user_in(app: &TestApp, tenant: &str, email: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    let reg = Registration::parse(email, None, PASSWORD.into(), &roles)
        .unwrap()
        .in_tenant(TenantId::trusted(tenant));
    app.state
        .accounts
        .register(reg)
        .await
        .unwrap()
        .id
        .to_string()
}

async fn login_in(app: &TestApp, tenant: &str, email: &str) -> Pair {
    let r = app
        .post_json(
            "/auth/login",
            &json!({"email": email, "password": PASSWORD, "tenant": tenant}),
        )
        .await;
    assert_eq!(r.status(), 200, "login of {email} in {tenant}");
    Pair::from(r.json::<Value>().await.unwrap())
}

async fn tenant(app: &TestApp, id: &str) {
    app.state
        .directory
        .create_tenant(
            None,
            TenantId::trusted(id),
            id.into(),
            &ClientInfo::default(),
        )
        .await
        .unwrap();
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap()
}

/// Callers of the permission table.
struct Callers {
    plain: String,
    /// The admin of another tenant (`beta`).
    other: String,
    admin: String,
    superadmin: String,
}

async fn callers(app: &TestApp) -> Callers {
    tenant(app, "beta").await;
    user_in(app, "default", "plain@example.com", &[]).await;
    user_in(app, "beta", "other@example.com", &["admin"]).await;
    user_in(app, "default", "admin@example.com", &["admin"]).await;
    user_in(app, "default", "root@example.com", &["superadmin"]).await;
    Callers {
        plain: login_in(app, "default", "plain@example.com").await.access,
        other: login_in(app, "beta", "other@example.com").await.access,
        admin: login_in(app, "default", "admin@example.com").await.access,
        superadmin: login_in(app, "default", "root@example.com").await.access,
    }
}

/// An operation of the table: method, path, body, and the answers to an admin of another
/// tenant and to the admin (the superadmin for platform operations), platform or not.
type Op = (Method, &'static str, Option<Value>, u16, u16, bool);

#[tokio::test]
async fn every_admin_operation_answers_each_kind_of_caller_as_the_table_says() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    // (method, path with {user} and {role}, body, the answer to: an admin of another
    // tenant, the admin (or superadmin where `platform`)).
    let ops: Vec<Op> = vec![
        (
            Method::GET,
            "/auth/admin/users?tenant=default",
            None,
            404,
            200,
            false,
        ),
        (
            Method::POST,
            "/auth/admin/users?tenant=default",
            Some(json!({"email": "new-{n}@example.com", "password": PASSWORD})),
            404,
            201,
            false,
        ),
        (
            Method::GET,
            "/auth/admin/users/{user}",
            None,
            404,
            200,
            false,
        ),
        (
            Method::PATCH,
            "/auth/admin/users/{user}",
            Some(json!({"username": "renamed_{n}"})),
            404,
            200,
            false,
        ),
        (
            Method::POST,
            "/auth/admin/users/{user}/disable",
            None,
            404,
            204,
            false,
        ),
        (
            Method::POST,
            "/auth/admin/users/{user}/enable",
            None,
            404,
            204,
            false,
        ),
        (
            Method::POST,
            "/auth/admin/users/{user}/unlock",
            None,
            404,
            204,
            false,
        ),
        (
            Method::POST,
            "/auth/admin/users/{user}/logout",
            None,
            404,
            204,
            false,
        ),
        (
            Method::POST,
            "/auth/admin/users/{user}/password",
            Some(json!({"password": "another long passphrase {n}"})),
            404,
            204,
            false,
        ),
        (
            Method::GET,
            "/auth/admin/users/{user}/sessions",
            None,
            404,
            200,
            false,
        ),
        (
            Method::DELETE,
            "/auth/admin/users/{user}",
            None,
            404,
            204,
            false,
        ),
        (
            Method::GET,
            "/auth/admin/roles?tenant=default",
            None,
            404,
            200,
            false,
        ),
        (
            Method::POST,
            "/auth/admin/roles?tenant=default",
            Some(json!({"name": "made-{n}", "permissions": ["orders:read"]})),
            404,
            201,
            false,
        ),
        (
            Method::PUT,
            "/auth/admin/roles/{role}?tenant=default",
            Some(json!({"permissions": ["orders:write"]})),
            404,
            200,
            false,
        ),
        (
            Method::DELETE,
            "/auth/admin/roles/{role}?tenant=default",
            None,
            404,
            204,
            false,
        ),
        (
            Method::GET,
            "/auth/admin/audit?tenant=default",
            None,
            404,
            200,
            false,
        ),
        (
            Method::GET,
            "/auth/admin/audit?user_id={user}",
            None,
            200,
            200,
            false,
        ),
        (Method::GET, "/auth/admin/keys", None, 403, 200, true),
        (
            Method::POST,
            "/auth/admin/keys/rotate",
            None,
            403,
            200,
            true,
        ),
        (Method::GET, "/auth/admin/tenants", None, 403, 200, true),
        (
            Method::POST,
            "/auth/admin/tenants",
            Some(json!({"id": "made-{n}"})),
            403,
            201,
            true,
        ),
    ];
    for (n, (method, path, body, other, ok, platform)) in ops.into_iter().enumerate() {
        // A fresh target each time: a user of the default tenant with a session, a role.
        let email = format!("target-{n}@example.com");
        let user = user_in(&app, "default", &email, &[]).await;
        login_in(&app, "default", &email).await;
        let role = format!("role-{n}");
        let r = call(
            &app,
            Method::POST,
            "/auth/admin/roles",
            Some(&c.admin),
            Some(&json!({"name": role, "permissions": ["orders:read"]})),
        )
        .await;
        assert_eq!(r.status(), 201);
        let path = path.replace("{user}", &user).replace("{role}", &role);
        let body = body.map(|b| {
            serde_json::from_str::<Value>(&b.to_string().replace("{n}", &n.to_string())).unwrap()
        });
        let admin = if platform { &c.superadmin } else { &c.admin };
        let expected = [
            (None, 401),
            (Some(&c.plain), 403),
            (Some(&c.other), other),
            (Some(admin), ok),
        ];
        for (who, (token, status)) in ["no token", "plain user", "other tenant's admin", "admin"]
            .iter()
            .zip(expected)
        {
            let r = call(
                &app,
                method.clone(),
                &path,
                token.map(String::as_str),
                body.as_ref(),
            )
            .await;
            let got = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert_eq!(got, status, "{method} {path} by {who}: {text}");
        }
    }
}

#[tokio::test]
async fn an_admin_of_one_tenant_reaches_nothing_of_another() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    // The same email in two tenants is two users.
    let ours = user_in(&app, "default", "twin@example.com", &[]).await;
    let theirs = user_in(&app, "beta", "twin@example.com", &[]).await;
    assert_ne!(ours, theirs);
    let pair = login_in(&app, "beta", "twin@example.com").await;
    let me: Value = app
        .get_with_token("/auth/me", &pair.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["tenant"], "beta");
    assert_eq!(me["id"], theirs.as_str());

    // Beta's admin sees only beta: its listing, never default's users.
    let page: Value = app
        .get_with_token("/auth/admin/users", &c.other)
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert!(
        emails.contains(&"twin@example.com") && emails.contains(&"other@example.com"),
        "{emails:?}"
    );
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["tenant"] == "beta")
    );
    // Default's user cannot be revoked, disabled or read from beta; it stays as it was.
    for (method, path) in [
        (Method::POST, format!("/auth/admin/users/{ours}/logout")),
        (Method::POST, format!("/auth/admin/users/{ours}/disable")),
        (Method::GET, format!("/auth/admin/users/{ours}")),
    ] {
        assert_problem(
            call(&app, method, &path, Some(&c.other), None).await,
            404,
            "not_found",
        )
        .await;
    }
    let disabled = app
        .count(&format!(
            "SELECT count(*) FROM users WHERE id = '{ours}' AND disabled_at IS NOT NULL"
        ))
        .await;
    assert_eq!(disabled, 0);
    // And the other way round: default's admin does not reach beta's user.
    assert_problem(
        app.get_with_token(&format!("/auth/admin/users/{theirs}"), &c.admin)
            .await,
        404,
        "not_found",
    )
    .await;
    // A superadmin spans tenants.
    let r = app
        .get_with_token(&format!("/auth/admin/users/{theirs}"), &c.superadmin)
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .get_with_token("/auth/admin/users?tenant=beta", &c.superadmin)
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn callers_grant_no_more_than_they_hold_and_built_in_roles_stay() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/roles",
        Some(&c.admin),
        Some(&json!({"name": "root", "permissions": ["superadmin"]})),
    )
    .await;
    assert_problem(r, 403, "forbidden").await;
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/roles",
        Some(&c.admin),
        Some(&json!({"name": "keys", "permissions": ["keys:rotate"]})),
    )
    .await;
    assert_problem(r, 403, "forbidden").await;
    // The superadmin role exists in the default tenant only, and an admin cannot hand it out.
    let target = user_in(&app, "default", "t@example.com", &[]).await;
    let r = call(
        &app,
        Method::PATCH,
        &format!("/auth/admin/users/{target}"),
        Some(&c.admin),
        Some(&json!({"roles": ["superadmin"]})),
    )
    .await;
    assert_problem(r, 403, "forbidden").await;
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/users",
        Some(&c.other),
        Some(&json!({"email": "x@example.com", "password": PASSWORD, "roles": ["superadmin"]})),
    )
    .await;
    assert_problem(r, 422, "validation_failed").await;
    // An admin cannot demote a superadmin either.
    let root = app.count("SELECT count(*) FROM users").await;
    assert!(root > 0);
    let root_id: String = sqlx::query_scalar::<sqlx::Any, String>(
        "SELECT id FROM users WHERE email = 'root@example.com'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    let r = call(
        &app,
        Method::PATCH,
        &format!("/auth/admin/users/{root_id}"),
        Some(&c.admin),
        Some(&json!({"roles": []})),
    )
    .await;
    assert_problem(r, 403, "forbidden").await;
    // Nor disable, erase or log out someone holding more than it does.
    for action in ["disable", "logout"] {
        let r = call(
            &app,
            Method::POST,
            &format!("/auth/admin/users/{root_id}/{action}"),
            Some(&c.admin),
            None,
        )
        .await;
        assert_problem(r, 403, "forbidden").await;
    }
    let r = call(
        &app,
        Method::DELETE,
        &format!("/auth/admin/users/{root_id}"),
        Some(&c.admin),
        None,
    )
    .await;
    assert_problem(r, 403, "forbidden").await;
    assert_eq!(
        app.get_with_token("/auth/me", &c.superadmin).await.status(),
        200
    );

    for name in ["admin", "user", "superadmin"] {
        let r = call(
            &app,
            Method::DELETE,
            &format!("/auth/admin/roles/{name}"),
            Some(&c.superadmin),
            None,
        )
        .await;
        assert_problem(r, 409, "builtin_role").await;
    }
    let r = call(
        &app,
        Method::PUT,
        "/auth/admin/roles/admin",
        Some(&c.superadmin),
        Some(&json!({"permissions": []})),
    )
    .await;
    assert_problem(r, 409, "builtin_role").await;
    // `user` may be given what every user holds.
    let r = call(
        &app,
        Method::PUT,
        "/auth/admin/roles/user",
        Some(&c.admin),
        Some(&json!({"permissions": ["profile:read"]})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/roles",
        Some(&c.admin),
        Some(&json!({"name": "admin", "permissions": []})),
    )
    .await;
    assert_problem(r, 409, "role_exists").await;
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/roles",
        Some(&c.admin),
        Some(&json!({"name": "Bad Name"})),
    )
    .await;
    assert_problem(r, 422, "validation_failed").await;
    let roles: Value = app
        .get_with_token("/auth/admin/roles", &c.admin)
        .await
        .json()
        .await
        .unwrap();
    let admin = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap();
    assert_eq!(admin["builtin"], true);
    assert!(
        admin["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("users:write"))
    );
}

#[tokio::test]
async fn a_role_change_reaches_new_tokens_and_existing_sessions_at_their_next_refresh() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let id = user_in(&app, "default", "grow@example.com", &[]).await;
    let pair = login_in(&app, "default", "grow@example.com").await;
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/roles",
        Some(&c.admin),
        Some(&json!({"name": "editor", "permissions": ["posts:write"]})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let r = call(
        &app,
        Method::PATCH,
        &format!("/auth/admin/users/{id}"),
        Some(&c.admin),
        Some(&json!({"roles": ["editor"]})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["roles"], json!(["editor", "user"]));
    assert_eq!(user["permissions"], json!(["posts:write"]));
    // The token issued before still says what it said; the next refresh says the new.
    let verify = |token: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/auth/verify?permission=posts:write"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(verify(pair.access.clone()).await, 403);
    let r = app.refresh(&pair.refresh).await;
    assert_eq!(r.status(), 200);
    let refreshed = Pair::from(r.json::<Value>().await.unwrap());
    assert_eq!(verify(refreshed.access).await, 200);
    // Deleting the role takes it away at the next refresh too.
    let r = call(
        &app,
        Method::DELETE,
        "/auth/admin/roles/editor",
        Some(&c.admin),
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = app.refresh(&refreshed.refresh).await;
    let again = Pair::from(r.json::<Value>().await.unwrap());
    assert_eq!(verify(again.access).await, 403);
}

#[tokio::test]
async fn a_disabled_user_loses_every_session_and_cannot_log_in_until_enabled() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let id = user_in(&app, "default", "off@example.com", &[]).await;
    let pair = login_in(&app, "default", "off@example.com").await;
    let r = call(
        &app,
        Method::POST,
        &format!("/auth/admin/users/{id}/disable"),
        Some(&c.admin),
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_problem(
        app.get_with_token("/auth/me", &pair.access).await,
        401,
        "token_revoked",
    )
    .await;
    assert_eq!(app.refresh(&pair.refresh).await.status(), 401);
    // A wrong password stays 401; only the right one learns that the account is disabled.
    assert_problem(
        app.login("off@example.com", "a wrong password, long enough")
            .await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_problem(
        app.login("off@example.com", PASSWORD).await,
        403,
        "account_disabled",
    )
    .await;
    let live = app
        .count(&format!(
            "SELECT count(*) FROM sessions WHERE user_id = '{id}' AND revoked_at IS NULL"
        ))
        .await;
    assert_eq!(live, 0);
    let listed: Value = app
        .get_with_token("/auth/admin/users?disabled=true", &c.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["disabled"], true);
    let r = call(
        &app,
        Method::POST,
        &format!("/auth/admin/users/{id}/enable"),
        Some(&c.admin),
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.login("off@example.com", PASSWORD).await.status(), 200);
    let kinds = app.count(&format!("SELECT count(*) FROM audit_events WHERE user_id = '{id}' AND kind IN ('user.disabled', 'user.enabled')")).await;
    assert_eq!(kinds, 2);
}

#[tokio::test]
async fn the_admin_logout_revokes_every_session_of_the_user() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let id = user_in(&app, "default", "many@example.com", &[]).await;
    let a = login_in(&app, "default", "many@example.com").await;
    let b = login_in(&app, "default", "many@example.com").await;
    let sessions: Value = app
        .get_with_token(&format!("/auth/admin/users/{id}/sessions"), &c.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 2);
    assert!(sessions[0].get("revoked_at").is_some());
    let r = call(
        &app,
        Method::POST,
        &format!("/auth/admin/users/{id}/logout"),
        Some(&c.admin),
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    for pair in [a, b] {
        assert_eq!(
            app.get_with_token("/auth/me", &pair.access).await.status(),
            401
        );
        assert_eq!(app.refresh(&pair.refresh).await.status(), 401);
    }
    let sessions: Value = app
        .get_with_token(&format!("/auth/admin/users/{id}/sessions"), &c.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions, json!([]));
}

#[tokio::test]
async fn users_are_listed_a_page_at_a_time_in_a_stable_order_with_filters() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    for i in 0..5 {
        user_in(&app, "default", &format!("page-{i}@example.com"), &[]).await;
    }
    user_in(&app, "default", "page_x@example.com", &["admin"]).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/auth/admin/users?email_prefix=page-&limit=2&cursor={c}"),
            None => "/auth/admin/users?email_prefix=page-&limit=2".to_owned(),
        };
        let page: Value = app
            .get_with_token(&path, &c.admin)
            .await
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    // `_` in the prefix is a literal, not a wildcard: page_x is not a `page-` user.
    assert_eq!(
        seen,
        (0..5)
            .map(|i| format!("page-{i}@example.com"))
            .collect::<Vec<_>>()
    );
    let admins: Value = app
        .get_with_token("/auth/admin/users?role=admin", &c.admin)
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = admins["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["admin@example.com", "page_x@example.com"]);
    for bad in [
        "limit=0",
        "limit=201",
        "cursor=nonsense",
        "disabled=maybe",
        "role=Bad%20Role",
        "unknown=1",
    ] {
        let r = app
            .get_with_token(&format!("/auth/admin/users?{bad}"), &c.admin)
            .await;
        assert_problem(r, 422, "validation_failed").await;
    }
}

#[tokio::test]
async fn fields_that_may_not_be_set_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let id = user_in(&app, "default", "mass@example.com", &[]).await;
    let pair = login_in(&app, "default", "mass@example.com").await;
    for field in [
        json!({"id": "00000000-0000-7000-8000-000000000000"}),
        json!({"password_hash": "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"}),
        json!({"tenant": "beta"}),
        json!({"created_at": 0}),
        json!({"email_verified": true}),
    ] {
        let r = call(
            &app,
            Method::PATCH,
            &format!("/auth/admin/users/{id}"),
            Some(&c.admin),
            Some(&field),
        )
        .await;
        assert_problem(r, 422, "validation_failed").await;
        let r = call(
            &app,
            Method::PATCH,
            "/auth/me",
            Some(&pair.access),
            Some(&field),
        )
        .await;
        assert_problem(r, 422, "validation_failed").await;
    }
    // A user never changes its own roles.
    let r = call(
        &app,
        Method::PATCH,
        "/auth/me",
        Some(&pair.access),
        Some(&json!({"roles": ["admin"]})),
    )
    .await;
    assert_problem(r, 422, "validation_failed").await;
    let row: (String, String) = sqlx::query_as::<sqlx::Any, (String, String)>(&format!(
        "SELECT tenant_id, email FROM users WHERE id = '{id}'"
    ))
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(row, ("default".to_owned(), "mass@example.com".to_owned()));
    let roles = app
        .count(&format!(
            "SELECT count(*) FROM user_roles WHERE user_id = '{id}'"
        ))
        .await;
    assert_eq!(roles, 1);
}

#[tokio::test]
async fn admins_create_users_with_roles_and_the_policy_applies() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let r = call(&app, Method::POST, "/auth/admin/users", Some(&c.admin), Some(&json!({"email": "made@example.com", "password": PASSWORD, "username": "made", "roles": ["admin"]}))).await;
    assert_eq!(r.status(), 201);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["roles"], json!(["admin", "user"]));
    assert_eq!(user["tenant"], "default");
    assert_eq!(app.login("made@example.com", PASSWORD).await.status(), 200);
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/users",
        Some(&c.admin),
        Some(&json!({"email": "made@example.com", "password": PASSWORD})),
    )
    .await;
    assert_problem(r, 409, "email_taken").await;
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/users",
        Some(&c.admin),
        Some(&json!({"email": "weak@example.com", "password": "short"})),
    )
    .await;
    assert_problem(r, 422, "weak_password").await;
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/users",
        Some(&c.admin),
        Some(&json!({"email": "r@example.com", "password": PASSWORD, "roles": ["nope"]})),
    )
    .await;
    assert_problem(r, 422, "validation_failed").await;
    // A superadmin creates users in another tenant.
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/users?tenant=beta",
        Some(&c.superadmin),
        Some(&json!({"email": "b@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["tenant"], "beta");
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/users?tenant=nowhere",
        Some(&c.superadmin),
        Some(&json!({"email": "n@example.com", "password": PASSWORD})),
    )
    .await;
    assert_problem(r, 404, "not_found").await;
}

#[tokio::test]
async fn tenants_are_created_with_their_roles_and_sign_up_and_login_name_them() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/tenants",
        Some(&c.superadmin),
        Some(&json!({"id": "gamma", "name": "Gamma Inc"})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/tenants",
        Some(&c.superadmin),
        Some(&json!({"id": "gamma"})),
    )
    .await;
    assert_problem(r, 409, "tenant_exists").await;
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/tenants",
        Some(&c.superadmin),
        Some(&json!({"id": "Not A Slug"})),
    )
    .await;
    assert_problem(r, 422, "validation_failed").await;
    let tenants: Value = app
        .get_with_token("/auth/admin/tenants", &c.superadmin)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = tenants
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["beta", "default", "gamma"]);
    let roles = app
        .count("SELECT count(*) FROM roles WHERE tenant_id = 'gamma' AND builtin = 1")
        .await;
    assert_eq!(roles, 2);

    let r = app
        .post_json(
            "/auth/signup",
            &json!({"email": "g@example.com", "password": PASSWORD, "tenant": "gamma"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["tenant"], "gamma");
    let r = app
        .post_json(
            "/auth/signup",
            &json!({"email": "g@example.com", "password": PASSWORD, "tenant": "nowhere"}),
        )
        .await;
    assert_problem(r, 404, "not_found").await;
    let r = app
        .post_json(
            "/auth/signup",
            &json!({"email": "g@example.com", "password": PASSWORD, "tenant": "Bad Slug"}),
        )
        .await;
    assert_problem(r, 422, "validation_failed").await;
    // Roles of a tenant that does not exist are not found either (a superadmin may name any).
    let r = app
        .get_with_token("/auth/admin/roles?tenant=nowhere", &c.superadmin)
        .await;
    assert_problem(r, 404, "not_found").await;
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/roles?tenant=nowhere",
        Some(&c.superadmin),
        Some(&json!({"name": "x"})),
    )
    .await;
    assert_problem(r, 404, "not_found").await;
    // The login names the tenant; the default tenant does not know this user.
    assert_problem(
        app.login("g@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    let pair = login_in(&app, "gamma", "g@example.com").await;
    let claims = app.state.checks.check(&pair.access).unwrap();
    assert_eq!(claims.identity.tenant.as_str(), "gamma");
}

#[tokio::test]
async fn keys_are_listed_without_private_parts_and_rotated() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let r = app.get_with_token("/auth/admin/keys", &c.superadmin).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        !text.contains("private") && !text.contains("sealed:") && !text.contains("plain:"),
        "{text}"
    );
    let keys: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1);
    let r = call(
        &app,
        Method::POST,
        "/auth/admin/keys/rotate",
        Some(&c.superadmin),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let rotation: Value = r.json().await.unwrap();
    assert_eq!(rotation["created"], true);
    let keys: Value = app
        .get_with_token("/auth/admin/keys", &c.superadmin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let audit = app.count("SELECT count(*) FROM signing_keys").await;
    assert_eq!(audit, 2);
}

#[tokio::test]
async fn concurrent_changes_to_one_user_or_role_name_never_fail_the_server() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    for name in ["a", "b", "c"] {
        let r = call(
            &app,
            Method::POST,
            "/auth/admin/roles",
            Some(&c.admin),
            Some(&json!({"name": name})),
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    let id = user_in(&app, "default", "race@example.com", &[]).await;
    let path = format!("/auth/admin/users/{id}");
    let (x, y, z) = (
        json!({"roles": ["a", "b"]}),
        json!({"roles": ["b", "c"]}),
        json!({"roles": ["a", "c"]}),
    );
    let admin = Some(c.admin.as_str());
    let answers = tokio::join!(
        call(&app, Method::PATCH, &path, admin, Some(&x)),
        call(&app, Method::PATCH, &path, admin, Some(&y)),
        call(&app, Method::PATCH, &path, admin, Some(&z)),
    );
    for r in [answers.0, answers.1, answers.2] {
        assert_eq!(r.status(), 200);
    }
    let roles = app
        .count(&format!(
            "SELECT count(*) FROM user_roles WHERE user_id = '{id}'"
        ))
        .await;
    assert!(
        (3..=4).contains(&roles),
        "user plus one change's two roles (or a mix): {roles}"
    );
    let create = json!({"name": "same", "permissions": ["x:y"]});
    let answers = tokio::join!(
        call(
            &app,
            Method::POST,
            "/auth/admin/roles",
            admin,
            Some(&create)
        ),
        call(
            &app,
            Method::POST,
            "/auth/admin/roles",
            admin,
            Some(&create)
        ),
        call(
            &app,
            Method::POST,
            "/auth/admin/roles",
            admin,
            Some(&create)
        ),
    );
    let mut statuses: Vec<u16> = [answers.0, answers.1, answers.2]
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409]);
}

#[tokio::test]
async fn an_admin_sets_a_password_under_the_policy_and_every_session_ends() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let id = user_in(&app, "default", "reset@example.com", &[]).await;
    let pair = login_in(&app, "default", "reset@example.com").await;
    let path = format!("/auth/admin/users/{id}/password");
    let r = call(
        &app,
        Method::POST,
        &path,
        Some(&c.admin),
        Some(&json!({"password": "short"})),
    )
    .await;
    assert_problem(r, 422, "weak_password").await;
    assert_eq!(
        app.get_with_token("/auth/me", &pair.access).await.status(),
        200
    );
    let r = call(
        &app,
        Method::POST,
        &path,
        Some(&c.admin),
        Some(&json!({"password": "a fresh admin-chosen passphrase", "roles": ["admin"]})),
    )
    .await;
    assert_problem(r, 422, "validation_failed").await;
    let r = call(
        &app,
        Method::POST,
        &path,
        Some(&c.admin),
        Some(&json!({"password": "a fresh admin-chosen passphrase"})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        app.get_with_token("/auth/me", &pair.access).await.status(),
        401
    );
    assert_eq!(app.refresh(&pair.refresh).await.status(), 401);
    assert_eq!(app.login("reset@example.com", PASSWORD).await.status(), 401);
    assert_eq!(
        app.login("reset@example.com", "a fresh admin-chosen passphrase")
            .await
            .status(),
        200
    );
    let set = app
        .count(&format!(
            "SELECT count(*) FROM audit_events WHERE user_id = '{id}' AND kind = 'password.set'"
        ))
        .await;
    assert_eq!(set, 1);
    // Another tenant's admin reaches nothing; nobody sets a superadmin's password but its peers.
    let r = call(
        &app,
        Method::POST,
        &path,
        Some(&c.other),
        Some(&json!({"password": "a third long passphrase"})),
    )
    .await;
    assert_problem(r, 404, "not_found").await;
    let root: String = sqlx::query_scalar::<sqlx::Any, String>(
        "SELECT id FROM users WHERE email = 'root@example.com'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    let r = call(
        &app,
        Method::POST,
        &format!("/auth/admin/users/{root}/password"),
        Some(&c.admin),
        Some(&json!({"password": "a takeover passphrase"})),
    )
    .await;
    assert_problem(r, 403, "forbidden").await;
}
