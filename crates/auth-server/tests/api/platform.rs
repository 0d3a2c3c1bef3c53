use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn validate_introspects_tokens_from_the_body_or_the_bearer_header() {
    let app = spawn_app().await;
    app.signup("v@example.com").await;
    let pair = app.login_pair("v@example.com").await;
    let by_body: Value = app
        .post_json("/auth/validate", &json!({"token": pair.access}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_body["active"], true);
    assert_eq!(by_body["sid"], pair.session_id.as_str());
    assert_eq!(by_body["role"], "user");
    assert_eq!(by_body["roles"], json!(["user"]));
    assert_eq!(by_body["tenant"], "default");
    assert_eq!(by_body["email"], "v@example.com");
    assert_eq!(by_body["sub"], by_body["user_id"]);
    assert!(by_body["exp"].as_i64().unwrap() > by_body["iat"].as_i64().unwrap());

    let r = app
        .client
        .post(app.url("/auth/validate"))
        .bearer_auth(&pair.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.json::<Value>().await.unwrap(), by_body);

    for body in [
        json!({"token": "garbage"}),
        json!({}),
        json!({"token": pair.refresh}),
    ] {
        let r = app.post_json("/auth/validate", &body).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"active": false}),
            "{body}"
        );
    }
    let r = app
        .client
        .post(app.url("/auth/validate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"active": false}));
}

/// The claims a token carries, read from its payload.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn each_token_of_a_session_is_introspected_with_its_own_times_cached_or_not() {
    // The verified-token cache shares one identity between the tokens of a session: each
    // answer must still carry the times of its own token, first (verified in full) and
    // again (from the cache).
    let app = spawn_app().await;
    app.signup("times@example.com").await;
    let pair = app.login_pair("times@example.com").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let refreshed: Value = app.refresh(&pair.refresh).await.json().await.unwrap();
    let second = refreshed["access_token"].as_str().unwrap().to_owned();
    for round in ["verified", "cached"] {
        for token in [pair.access.as_str(), second.as_str()] {
            let answer: Value = app
                .post_json("/auth/validate", &json!({"token": token}))
                .await
                .json()
                .await
                .unwrap();
            let claims = claims_of(token);
            for member in [
                "sub",
                "sid",
                "roles",
                "role",
                "permissions",
                "tenant",
                "email",
                "exp",
                "iat",
            ] {
                assert_eq!(answer[member], claims[member], "{round}: {member}");
            }
            assert_eq!(answer["active"], true);
            assert_eq!(answer["user_id"], claims["sub"]);
            assert_eq!(answer.as_object().unwrap().len(), 11, "{round}: {answer}");
        }
    }
    assert_ne!(claims_of(&pair.access)["iat"], claims_of(&second)["iat"]);
}

#[tokio::test]
async fn verify_answers_the_gateway_with_identity_headers() {
    let app = spawn_app().await;
    let body = app.signup("fw@example.com").await;
    let pair = app.login_pair("fw@example.com").await;
    // Verified in full, then answered from the cache with the identity's rendered headers.
    let mut request_ids = Vec::new();
    for _ in 0..2 {
        let r = app.get_with_token("/auth/verify", &pair.access).await;
        assert_eq!(r.status(), 200);
        let h = r.headers();
        assert_eq!(h["x-auth-user-id"], body["id"].as_str().unwrap());
        assert_eq!(h["x-auth-email"], "fw@example.com");
        assert_eq!(h["x-auth-roles"], "user");
        assert_eq!(h["x-auth-tenant"], "default");
        assert_eq!(h["x-auth-session-id"], pair.session_id.as_str());
        assert!(h.contains_key("x-auth-permissions"));
        assert_eq!(h["cache-control"], "no-store");
        request_ids.push(h["x-request-id"].clone());
    }
    assert_ne!(request_ids[0], request_ids[1]);

    for query in ["role=user&role=admin", "permission=a&permission=b"] {
        let r = app
            .get_with_token(&format!("/auth/verify?{query}"), &pair.access)
            .await;
        assert_problem(r, 400, "malformed_request").await;
    }
    // Unknown parameters are ignored, as gateways may add their own.
    let r = app
        .get_with_token("/auth/verify?role=user&from=gateway", &pair.access)
        .await;
    assert_eq!(r.status(), 200);
    for authorization in [
        format!("bearer {}", pair.access),
        format!("BEARER   {}  ", pair.access),
    ] {
        let r = app
            .client
            .get(app.url("/auth/verify"))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the scheme is case-insensitive");
    }
    for authorization in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    "] {
        let r = app
            .client
            .get(app.url("/auth/verify"))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        assert_problem(r, 401, "token_invalid").await;
    }
    let r = app
        .client
        .get(app.url("/auth/verify"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer caf\xc3\xa9.x.y").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "token_invalid").await;

    let r = app.get("/auth/verify").await;
    assert!(r.headers().contains_key("www-authenticate"));
    assert_problem(r, 401, "token_invalid").await;
    assert_eq!(
        app.get_with_token("/auth/verify?role=user", &pair.access)
            .await
            .status(),
        200
    );
    assert_problem(
        app.get_with_token("/auth/verify?role=admin", &pair.access)
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get_with_token("/auth/verify?permission=users:read", &pair.access)
            .await,
        403,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn permissions_follow_the_roles() {
    let app = spawn_app().await;
    let body = app.signup("adm@example.com").await;
    sqlx::query("INSERT INTO user_roles (user_id, tenant_id, role_name, granted_at) VALUES ($1, 'default', 'admin', 0)")
        .bind(body["id"].as_str().unwrap())
        .execute(app.pool())
        .await
        .unwrap();
    let pair = app.login_pair("adm@example.com").await;
    let r = app
        .get_with_token(
            "/auth/verify?role=admin&permission=users:write",
            &pair.access,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["x-auth-permissions"]
            .to_str()
            .unwrap()
            .contains("users:write")
    );
    assert_eq!(r.headers()["x-auth-roles"], "admin,user");
    let me: Value = app
        .get_with_token("/auth/me", &pair.access)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("users:read"))
    );
    let verified = app.state.checks.check(&pair.access).unwrap();
    assert_eq!(verified.identity.role().map(|r| r.as_str()), Some("admin"));
}
