//! Operational routes: liveness, readiness, metrics, the published keys, the OpenAPI document
//! and the docs page (Swagger UI, served from the binary); and what the service answers while
//! it starts.

pub mod metrics;
pub mod starting;

use std::time::Duration;

use auth_core::repo::HealthRepository;
use auth_proto::{Health, JwkSet, Problem};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;

use super::error::ApiError;
use super::route::{Group, Needs};
use crate::state::AppState;

pub fn groups() -> Vec<Group> {
    vec![
        Group::new(Needs::NOTHING)
            .routes(routes!(health))
            .routes(routes!(auth_health))
            .routes(routes!(jwks))
            .routes(routes!(metrics::metrics)),
        // Readiness documents its own 503: it is the answer, not a refusal.
        Group::new(Needs::NOTHING).routes(routes!(ready)),
    ]
}

fn alive() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    alive()
}

/// Liveness, under the gateway's `/auth` prefix.
#[utoipa::path(get, path = "/auth/health", tag = "operations",
    responses((status = 200, body = Health)))]
pub async fn auth_health() -> Json<Health> {
    alive()
}

/// Readiness: 200 when the database answers within two seconds, else 503 `unavailable`
/// (also while the service starts); 503 `{"status": "draining"}` during shutdown's delay
/// (`AUTH_SHUTDOWN_DELAY_SECONDS`), while every other request is still served.
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, body = Health),
        (status = 503, description = "`unavailable` (problem+json: starting, or the database does not answer), or `{\"status\": \"draining\"}` (shutting down)",
            content(
                (Problem = "application/problem+json"),
                (Health = "application/json"),
            )),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.draining() {
        let body = Json(Health {
            status: "draining".into(),
        });
        let retry = [(header::RETRY_AFTER, HeaderValue::from_static("1"))];
        return Ok((StatusCode::SERVICE_UNAVAILABLE, retry, body).into_response());
    }
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(Health {
            status: "ready".into(),
        })
        .into_response()),
        Ok(Err(e)) => Err(ApiError::unavailable(&e)),
        Err(_) => Err(ApiError::unavailable(&"database ping timed out")),
    }
}

/// The public keys that verify access tokens (RFC 7517). Empty in HS256 mode.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations",
    responses((status = 200, body = JwkSet)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let set = state.checks.tokens().jwks();
    let mut response = Json(&*set).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
