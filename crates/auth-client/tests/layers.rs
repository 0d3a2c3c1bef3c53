//! The axum glue in a tiny app: the extractor and the role and permission layers admit and
//! refuse with problem+json answers.

mod common;

use auth_client::proto::Problem;
use auth_client::{
    Audience, AuthUser, Verifier, VerifierSettings, require_auth, require_permission, require_role,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use common::*;
use tower::ServiceExt;

fn app(verifier: &Verifier) -> Router {
    let me = |user: AuthUser| async move { user.email.clone() };
    Router::new()
        .route("/me", get(me))
        .route("/any", get(me).layer(require_auth(verifier)))
        .route("/admin", get(me).layer(require_role(verifier, "admin")))
        .route(
            "/read",
            get(me).layer(require_permission(verifier, "profile:read")),
        )
        .route(
            "/write",
            get(me).layer(require_permission(verifier, "users:write")),
        )
        .layer(Extension(verifier.clone()))
}

async fn call(app: &Router, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    if status.is_client_error() {
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    if status == StatusCode::UNAUTHORIZED {
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    if status.is_client_error() {
        let problem: Problem = serde_json::from_str(&text).unwrap();
        return (status, problem.code.as_str().to_owned());
    }
    (status, text)
}

#[tokio::test]
async fn layers_and_the_extractor_admit_by_token_role_and_permission() {
    let settings = VerifierSettings::new(ISSUER, Audience::expect(AUDIENCE));
    let verifier = Verifier::shared_secret(SECRET, settings).unwrap();
    let app = app(&verifier);
    let user = hs256(&claims());
    let mut admin_claims = claims();
    admin_claims["roles"] = serde_json::json!(["admin", "user"]);
    let admin = hs256(&admin_claims);
    let mut old = claims();
    old["exp"] = (now() - 3600).into();
    old["iat"] = (now() - 4500).into();
    let expired = hs256(&old);

    let cases = [
        (
            "/me",
            Some(user.as_str()),
            200,
            "a@example.com",
            "extractor",
        ),
        ("/me", None, 401, "token_invalid", "extractor, no token"),
        (
            "/me",
            Some(expired.as_str()),
            401,
            "token_expired",
            "expired",
        ),
        (
            "/any",
            Some(user.as_str()),
            200,
            "a@example.com",
            "any token",
        ),
        ("/any", Some("x.y.z"), 401, "token_invalid", "garbage"),
        (
            "/admin",
            Some(user.as_str()),
            403,
            "forbidden",
            "not an admin",
        ),
        (
            "/admin",
            Some(admin.as_str()),
            200,
            "a@example.com",
            "an admin",
        ),
        (
            "/read",
            Some(user.as_str()),
            200,
            "a@example.com",
            "has the permission",
        ),
        (
            "/write",
            Some(admin.as_str()),
            403,
            "forbidden",
            "lacks the permission",
        ),
    ];
    for (path, token, status, body, why) in cases {
        let (got, text) = call(&app, path, token).await;
        assert_eq!(
            (got.as_u16(), text.as_str()),
            (status, body),
            "{path}: {why}"
        );
    }
}

#[tokio::test]
async fn the_extractor_without_a_verifier_is_a_server_error_not_a_panic() {
    let app = Router::new().route("/me", get(|user: AuthUser| async move { user.sub.clone() }));
    let (status, code) = {
        let response = app
            .oneshot(Request::get("/me").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let problem: Problem = serde_json::from_slice(&body).unwrap();
        (status, problem.code.as_str().to_owned())
    };
    assert_eq!((status.as_u16(), code.as_str()), (500, "internal"));
}
