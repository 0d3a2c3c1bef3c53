//! Session routes: refresh-token rotation, logout (one session or all), and the caller's
//! list of sessions.

use auth_proto::{LogoutRequest, Problem, RefreshRequest, SessionInfo, TokenResponse};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{ApiJson, Bearer, Caller, Client, MaybeJson};
use super::respond::{no_store, rfc3339, token_body};
use super::route::{Group, Needs};
use crate::limits::Limit;
use crate::state::AppState;

pub fn groups() -> Vec<Group> {
    vec![
        Group::new(Needs::WRITES.limited(Limit::RefreshIp)).routes(routes!(refresh)),
        Group::new(Needs::WRITES)
            .routes(routes!(logout))
            .routes(routes!(logout_all))
            .routes(routes!(revoke_session)),
        Group::new(Needs::READS).routes(routes!(list_sessions)),
    ]
}

/// Rotate a refresh token: returns a new access token and the successor refresh token of the
/// same session. The presented token is single-use: presenting it again within
/// `AUTH_REFRESH_GRACE_SECONDS` returns the same successor; later, it revokes the session.
#[utoipa::path(post, path = "/auth/refresh", tag = "sessions",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New token pair", body = TokenResponse),
        (status = 401, description = "`token_invalid` (unknown), `token_expired`, `token_revoked`, or `refresh_token_reused` (the session is now revoked)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let issued = state.sessions.refresh(&body.refresh_token, &client).await;
    state.counters.refresh(&issued);
    Ok(no_store(Json(token_body(issued?)).into_response()))
}

/// End a session: the one of the refresh token in the body, else the one of the bearer token.
/// Unknown refresh tokens are accepted silently (RFC 7009).
#[utoipa::path(post, path = "/auth/logout", tag = "sessions",
    request_body(content = Option<LogoutRequest>, description = "Optional when a bearer token is sent"),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Session ended"),
        (status = 401, description = "No refresh token and no valid bearer token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    Client(client): Client,
    Bearer(bearer): Bearer,
    MaybeJson(body): MaybeJson<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    match body.and_then(|b| b.refresh_token) {
        Some(token) => state.sessions.logout_refresh_token(&token, &client).await?,
        None => {
            let caller = Caller::from_bearer(bearer, &state)?;
            state
                .sessions
                .logout_session(caller.identity(), &client)
                .await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// End every session of the caller.
#[utoipa::path(post, path = "/auth/logout-all", tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "All sessions ended"),
        (status = 401, description = "`token_invalid`, `token_expired` or `token_revoked`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn logout_all(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    state
        .sessions
        .logout_all(caller.identity(), &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's active sessions, newest first; `current` marks the one of this token.
#[utoipa::path(get, path = "/auth/sessions", tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<SessionInfo>),
        (status = 401, description = "`token_invalid`, `token_expired` or `token_revoked`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let sessions = state.sessions.list_sessions(caller.identity()).await?;
    let body: Vec<SessionInfo> = sessions
        .into_iter()
        .map(|v| SessionInfo {
            id: v.session.id.to_string(),
            current: v.current,
            user_agent: v.session.client.user_agent,
            ip: v.session.client.ip,
            created_at: rfc3339(v.session.created_at),
            last_used_at: rfc3339(v.session.last_used_at),
            expires_at: rfc3339(v.session.idle_expires_at),
        })
        .collect();
    Ok(no_store(Json(body).into_response()))
}

/// Revoke one of the caller's sessions (404 for any other session).
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Session revoked"),
        (status = 401, description = "`token_invalid`, `token_expired` or `token_revoked`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such active session of the caller", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .sessions
        .revoke_own_session(caller.identity(), &id, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
