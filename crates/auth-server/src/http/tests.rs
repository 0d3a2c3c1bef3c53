//! Tests of the router's shared rules.

use super::*;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A write route wrapped as [`router`] wraps the routes that write, under its layers.
fn wrapped(in_flight: &InFlight) -> Router {
    async fn panics() -> Response {
        panic!("a bug in a handler")
    }
    Router::new()
        .route("/write", axum::routing::post(panics))
        .route("/fine", axum::routing::post(|| async { "done" }))
        .layer(axum::middleware::from_fn_with_state(
            in_flight.clone(),
            to_completion,
        ))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn(request_id::identified))
}

async fn post(router: &Router, path: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let request = Request::post(path).body(Body::empty()).expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, kind, body.to_vec())
}

#[tokio::test]
async fn a_panicking_handler_gets_a_problem_answer_and_is_not_resumed() {
    let (in_flight, drained) = InFlight::new();
    let router = wrapped(&in_flight);
    let (status, kind, body) = post(&router, "/write").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(kind.as_deref(), Some("application/problem+json"));
    let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body["code"], "internal");
    assert_eq!(body["status"], 500);
    assert!(
        !body.to_string().contains("a bug in a handler"),
        "the panic's message stays out of the answer: {body}"
    );
    // The server goes on answering.
    let (status, _, body) = post(&router, "/fine").await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"done"[..]));
    // Once the router is gone nothing holds the in-flight count: shutdown does not wait
    // on a request that panicked.
    drop((router, in_flight));
    tokio::time::timeout(std::time::Duration::from_secs(5), drained.wait())
        .await
        .expect("nothing left in flight");
}

/// The application's state on a SQLite file of its own.
async fn state(dir: &std::path::Path) -> AppState {
    let env: std::collections::HashMap<&str, String> = [
        (
            "DATABASE_URL",
            format!("sqlite://{}/auth.db", dir.display()),
        ),
        ("AUTH_ARGON2_MEMORY_KIB", "256".into()),
        ("AUTH_ARGON2_ITERATIONS", "1".into()),
    ]
    .into_iter()
    .collect();
    let config = crate::config::RawConfig::load(None, &|n| env.get(n).cloned(), &[])
        .expect("raw configuration")
        .validate()
        .expect("valid configuration");
    let store = crate::startup::open_store(&config).await.expect("store");
    crate::startup::build_state(&config, store)
        .await
        .expect("state")
}

/// A group that declares a permission has its caller checked before its handler runs:
/// no token 401, a token without the permission 403, with it the handler gets the caller;
/// a route of another group is not affected.
#[tokio::test]
async fn a_group_that_needs_a_permission_checks_the_caller_before_its_handler() {
    use auth_core::domain::SessionId;

    async fn whoami(caller: extract::Caller) -> String {
        caller.identity().user_id.to_string()
    }
    let dir = std::env::temp_dir().join(format!("auth-http-{}", uuid::Uuid::now_v7()));
    let state = state(&dir).await;
    let (in_flight, _drained) = InFlight::new();
    let groups = vec![
        (
            Router::new().route("/admin", axum::routing::get(whoami)),
            Needs::READS.permission("users:read"),
        ),
        (
            Router::new().route("/open", axum::routing::get(whoami)),
            Needs::READS,
        ),
    ];
    let app = with_needs(groups, &state, &in_flight).with_state(state.clone());
    let token = |permissions: &[&str]| {
        let user = auth_core::testing::user("default", permissions);
        let minted = state
            .checks
            .tokens()
            .mint(&user, Some(SessionId::generate()), auth_core::now_unix())
            .expect("token");
        (user.id, minted.token)
    };
    let get = |path: &'static str, token: Option<String>| {
        let app = app.clone();
        async move {
            let mut request = Request::get(path);
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let response = app
                .oneshot(request.body(Body::empty()).expect("request"))
                .await
                .expect("infallible");
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (status, body) = get("/admin", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (plain_id, plain) = token(&[]);
    let (status, body) = get("/admin", Some(plain.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("\"forbidden\"") && body.contains("users:read"),
        "{body}"
    );
    let (admin_id, admin) = token(&["users:read"]);
    assert_eq!(
        get("/admin", Some(admin)).await,
        (StatusCode::OK, admin_id.to_string())
    );
    assert_eq!(
        get("/open", Some(plain)).await,
        (StatusCode::OK, plain_id.to_string()),
        "another group's route needs no permission"
    );
    state.store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
