//! Contracts of the services this one replaces, kept so their clients work unchanged:
//! Django SimpleJWT's token endpoints (with their trailing slashes and `access`/`refresh`
//! names) and health answer. Behind them are the same login and rotation as everywhere else.

use auth_core::CoreError;
use auth_core::service::Credentials;
use auth_proto::{
    CompatObtainRequest, CompatRefreshRequest, CompatTokenPair, Health, Problem, User,
};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{ApiJson, Caller, Client, JsonOrForm};
use super::limit::admit_login;
use super::respond::{no_store, user_body};
use super::route::{Group, Needs};
use crate::limits::Limit;
use crate::state::AppState;

pub fn groups() -> Vec<Group> {
    vec![
        Group::new(Needs::WRITES.limited(Limit::LoginIp)).routes(routes!(obtain_pair)),
        Group::new(Needs::WRITES.limited(Limit::RefreshIp)).routes(routes!(refresh_pair)),
        Group::new(Needs::READS).routes(routes!(me)),
        Group::new(Needs::NOTHING).routes(routes!(health)),
    ]
}

fn pair(issued: auth_core::service::IssuedTokens) -> Response {
    no_store(
        Json(CompatTokenPair {
            access: issued.access.token,
            refresh: issued.refresh.as_str().to_owned(),
        })
        .into_response(),
    )
}

/// SimpleJWT `TokenObtainPairView`: `{email, password}` (JSON or form) -> `{access, refresh}`.
#[utoipa::path(post, path = "/auth/token/", tag = "compat",
    request_body(content(
        (CompatObtainRequest = "application/json"),
        (CompatObtainRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, body = CompatTokenPair),
        (status = 401, description = "`invalid_credentials`; `detail` is SimpleJWT's message", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled`, or `email_not_verified` (with `AUTH_REQUIRE_VERIFIED_EMAIL`): the password was right", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "`account_locked`; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn obtain_pair(
    State(state): State<AppState>,
    Client(client): Client,
    JsonOrForm(body): JsonOrForm<CompatObtainRequest>,
) -> Result<Response, ApiError> {
    let credentials = Credentials::parse(Some(&body.email), None, body.password, None, client)
        .map_err(compat_login_error)?;
    admit_login(&state, &credentials).await?;
    let issued = state.sessions.login(credentials).await;
    state.counters.login(&issued);
    issued.map(pair).map_err(compat_login_error)
}

/// SimpleJWT's message on a refused login.
fn compat_login_error(e: CoreError) -> ApiError {
    match e {
        CoreError::InvalidCredentials => ApiError::from(CoreError::InvalidCredentials)
            .detail("No active account found with the given credentials"),
        e => e.into(),
    }
}

/// SimpleJWT `TokenRefreshView`: `{refresh}` -> `{access, refresh}`, with rotation.
#[utoipa::path(post, path = "/auth/token/refresh/", tag = "compat",
    request_body = CompatRefreshRequest,
    responses(
        (status = 200, body = CompatTokenPair),
        (status = 401, description = "as `POST /auth/refresh`; `detail` is SimpleJWT's message", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh_pair(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<CompatRefreshRequest>,
) -> Result<Response, ApiError> {
    let issued = state.sessions.refresh(&body.refresh, &client).await;
    state.counters.refresh(&issued);
    let issued = issued.map_err(|e| ApiError::from(e).detail("Token is invalid or expired"))?;
    Ok(pair(issued))
}

/// The caller's account, at the Django path.
#[utoipa::path(get, path = "/auth/me/", tag = "compat", operation_id = "compat_me",
    security(("bearer" = [])),
    responses(
        (status = 200, body = User),
        (status = 401, description = "`token_invalid`, `token_expired` or `token_revoked`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let user = state.accounts.current_user(caller.identity()).await?;
    Ok(no_store(Json(user_body(user)).into_response()))
}

/// The Django service's health answer.
#[utoipa::path(get, path = "/auth/health/", tag = "compat", operation_id = "compat_health",
    responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "auth-service-up".into(),
    })
}
