//! `GET /metrics`: every family in the Prometheus text format, on the API's port or, with
//! `AUTH_METRICS_BIND`, on a listener of its own.

use auth_core::now_unix;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;
use crate::http::respond::no_store;
use crate::state::AppState;

/// Metrics in the Prometheus text format (answered without credentials, like the probes):
/// request latency by route and status class, logins, refreshes, reuse, token checks, the
/// password hashing queue, the database pool, the outbox's backlog and counts, build info.
/// Not on this port when `AUTH_METRICS_BIND` gives it a listener of its own (404 here then).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 404, description = "`not_found`: served on `AUTH_METRICS_BIND` instead", body = auth_proto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.metrics_elsewhere {
        return Err(crate::http::not_found().await);
    }
    scrape(&state).await
}

/// The router of the metrics listener: `/metrics` alone.
pub fn listener_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(state): State<AppState>| async move { scrape(&state).await }),
        )
        .with_state(state)
}

/// Renders every family; the outbox's gauges read the database (one grouped query).
async fn scrape(state: &AppState) -> Result<Response, ApiError> {
    let stats = state.events.all_stats().await?;
    let mut families = crate::metrics::service::families(state);
    families.extend(crate::metrics::outbox_families(
        &stats,
        &state.outbox_counters,
        now_unix(),
    ));
    let mut text = crate::metrics::render(&families);
    if let Some(requests) = state.requests.get() {
        requests.write(&mut text);
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(no_store(response))
}
