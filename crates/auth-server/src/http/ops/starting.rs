//! What the service answers while it starts (migrations, keys): the listener is bound first,
//! liveness answers 200, and everything else, readiness included, 503 `unavailable` with
//! `Retry-After`, so a probe or a client sees a service on its way, not a refused connection.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::edge::{self, Edge};
use crate::http::error::ApiError;
use crate::http::request_id;

/// The router served until the application is ready.
pub fn router(edge: &Edge) -> Router {
    let alive = || async { (StatusCode::OK, super::alive()).into_response() };
    Router::new()
        .route("/health", axum::routing::get(alive))
        .route("/auth/health", axum::routing::get(alive))
        .route("/auth/health/", axum::routing::get(alive))
        .fallback(starting)
        .layer(axum::middleware::from_fn_with_state(
            edge.clone(),
            edge::middleware,
        ))
        .layer(axum::middleware::from_fn(request_id::identified))
}

async fn starting() -> Response {
    ApiError::not_ready("Service starting").into_response()
}
