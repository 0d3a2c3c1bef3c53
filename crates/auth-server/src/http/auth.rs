//! Account routes: sign-up, login (JSON or OAuth2 password form) and the caller's own account.

use auth_core::service::{Credentials, IssuedTokens, Registration};
use auth_proto::{LoginRequest, Problem, SignupRequest, TokenResponse, User};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{ApiJson, Authenticated, Client, JsonOrForm};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(me))
}

/// Paths that answer exactly like another documented path.
pub const ALIASES: &[(&str, &str)] = &[("/auth/register", "/auth/signup")];

/// The domain user as the API shows it.
pub fn user_body(user: auth_core::domain::User) -> User {
    let created_at = time::OffsetDateTime::from_unix_timestamp(user.created_at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    User {
        id: user.id.to_string(),
        email: user.email,
        username: user.username,
        roles: user.roles,
        permissions: user.permissions,
        tenant: user.tenant,
        email_verified: user.email_verified,
        disabled: user.disabled,
        created_at,
    }
}

/// The token pair as the API returns it.
pub fn token_body(issued: IssuedTokens) -> TokenResponse {
    TokenResponse {
        access_token: issued.access.token,
        token_type: "bearer".into(),
        expires_in: issued.access.expires_in,
        refresh_token: issued.refresh.as_str().to_owned(),
        refresh_expires_in: issued.refresh_expires_in,
        session_id: issued.session_id,
    }
}

/// Unix seconds as RFC 3339.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Marks a response that carries a token or personal data as not cacheable (RFC 6749 5.1).
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Create an account (alias: `POST /auth/register`).
#[utoipa::path(post, path = "/auth/signup", tag = "auth",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Account created", body = User),
        (status = 409, description = "`email_taken` or `username_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` or `weak_password`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too busy; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignupRequest>,
) -> Result<Response, ApiError> {
    let registration =
        Registration::parse(&body.email, body.username.as_deref(), body.password, &[])?;
    let user = state.auth.register(registration).await?;
    Ok((StatusCode::CREATED, Json(user_body(user))).into_response())
}

/// Log in with email (or username) and password; JSON or `application/x-www-form-urlencoded`.
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body(content(
        (LoginRequest = "application/json"),
        (LoginRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Access token", body = TokenResponse),
        (status = 401, description = "`invalid_credentials`, for unknown users and wrong passwords alike", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too busy; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    JsonOrForm(body): JsonOrForm<LoginRequest>,
) -> Result<Response, ApiError> {
    let credentials = Credentials::parse(
        body.email.as_deref(),
        body.username.as_deref(),
        body.password,
        body.tenant.as_deref(),
        client,
    )?;
    let issued = state.auth.login(credentials).await?;
    Ok(no_store(Json(token_body(issued)).into_response()))
}

/// The account of the bearer token.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = User),
        (status = 401, description = "`token_invalid` or `token_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Response, ApiError> {
    let user = state.auth.current_user(&claims).await?;
    Ok(no_store(Json(user_body(user)).into_response()))
}
