//! The audit log as read back: the admin query (filters, pages, bounds), tenant isolation, a
//! user's own activity, and the retention purge.

use auth_core::domain::TenantId;
use reqwest::Method;
use serde_json::{Value, json};

use crate::audit::{audit, login_in, send, user_in};
use crate::helpers::{TestApp, eventually, spawn_app};

pub(crate) async fn with_events(
    app: &TestApp,
    tenant: &str,
    email: &str,
    failures: usize,
) -> String {
    let id = user_in(app, tenant, email, &[]).await;
    login_in(app, tenant, email).await;
    for _ in 0..failures {
        let body = json!({"email": email, "password": "wrong horse battery", "tenant": tenant});
        let r = send(app, Method::POST, "/auth/login", None, Some(body)).await;
        assert_eq!(r.status, 401);
    }
    id
}

pub(crate) fn types(page: &Value) -> Vec<String> {
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
        [
            "login.failed",
            "login.failed",
            "login.failed",
            "login.succeeded",
            "user.signed_up"
        ]
    );
    assert!(anns["next_cursor"].is_null());
    let failed = audit(&app, &admin, "type=login.failed").await;
    let users: Vec<&str> = failed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user_id"].as_str().unwrap())
        .collect();
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
    let ids: Vec<Value> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(paged, ids);
    assert!(ids.len() >= 10, "{all}");

    // A time range: nothing before the epoch, everything since, nothing in the future.
    let at = all["items"][0]["at"].as_str().unwrap().to_owned();
    let until_then = audit(&app, &admin, "until=1970-01-02T00:00:00Z").await;
    assert!(types(&until_then).is_empty());
    let since = audit(
        &app,
        &admin,
        &format!("since={}&limit=200", at.replace('+', "%2B")),
    )
    .await;
    assert!(!types(&since).is_empty());
    let future = audit(&app, &admin, "since=2999-01-01T00:00:00%2B02:00").await;
    assert!(types(&future).is_empty());
    let window = audit(
        &app,
        &admin,
        &format!(
            "user_id={bob}&type=login.failed&since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z"
        ),
    )
    .await;
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
        let r = send(
            &app,
            Method::GET,
            &format!("/auth/admin/audit?{query}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(r.status, 422, "{why}: {}", r.body);
        assert_eq!(r.body["code"], "validation_failed", "{why}");
    }
}

#[tokio::test]
async fn another_tenants_events_are_invisible_except_to_a_superadmin() {
    let app = spawn_app().await;
    app.state
        .directory
        .create_tenant(
            None,
            TenantId::trusted("beta"),
            "Beta".into(),
            &Default::default(),
        )
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
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["tenant"].as_str().unwrap().to_owned())
            .collect()
    };
    let defaults = audit(&app, &admin, "limit=200").await;
    assert!(seen(&defaults).iter().all(|t| t == "default"), "{defaults}");
    let betas = audit(&app, &beta_admin, "limit=200").await;
    assert!(
        !seen(&betas).is_empty() && seen(&betas).iter().all(|t| t == "beta"),
        "{betas}"
    );
    // Naming a user of the other tenant finds nothing; naming the other tenant is 404.
    assert!(types(&audit(&app, &beta_admin, &format!("user_id={ann}")).await).is_empty());
    assert!(types(&audit(&app, &admin, &format!("user_id={bea}")).await).is_empty());
    let r = send(
        &app,
        Method::GET,
        "/auth/admin/audit?tenant=default",
        Some(&beta_admin),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    // A superadmin spans tenants.
    let as_root = audit(&app, &root, &format!("tenant=beta&user_id={bea}")).await;
    assert_eq!(
        types(&as_root),
        ["login.failed", "login.succeeded", "user.signed_up"]
    );
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
    let r = send(
        &app,
        Method::POST,
        &format!("/auth/admin/users/{ann}/unlock"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    let pair = login_in(&app, "default", "ann@example.com").await;

    let r = send(
        &app,
        Method::GET,
        "/auth/me/activity",
        Some(&pair.access),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        types(&r.body),
        [
            "login.succeeded",
            "user.unlocked",
            "login.failed",
            "login.failed",
            "login.succeeded",
            "user.signed_up"
        ]
    );
    let items = r.body["items"].as_array().unwrap();
    assert!(
        items.iter().all(|e| e["user_id"] == ann.as_str()),
        "only mine"
    );
    assert!(items[0]["request_id"].is_string());
    assert_eq!(items[0]["actor_id"], ann.as_str());
    assert_eq!(items[0]["ip"], "127.0.0.1");
    let unlocked = &items[1];
    assert!(
        unlocked["actor_id"].is_null() && unlocked["ip"].is_null(),
        "{unlocked}"
    );
    assert!(
        unlocked["user_agent"].is_null() && unlocked["request_id"].is_null(),
        "{unlocked}"
    );
    assert_eq!(
        items[2]["ip"], "127.0.0.1",
        "attempts on my account show where from"
    );

    let first = send(
        &app,
        Method::GET,
        "/auth/me/activity?limit=4",
        Some(&pair.access),
        None,
    )
    .await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = send(
        &app,
        Method::GET,
        &format!("/auth/me/activity?cursor={cursor}"),
        Some(&pair.access),
        None,
    )
    .await;
    assert_eq!(types(&first.body).len() + types(&rest.body).len(), 6);
    assert!(rest.body["next_cursor"].is_null());
    for query in ["limit=0", "limit=500", "cursor=nope", "user_id=x"] {
        let r = send(
            &app,
            Method::GET,
            &format!("/auth/me/activity?{query}"),
            Some(&pair.access),
            None,
        )
        .await;
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
