//! Account routes: sign-up, login (JSON or OAuth2 password form), the caller's own account and
//! password change.

use auth_core::CoreError;
use auth_core::domain::{Password, TenantId};
use auth_core::service::{Credentials, Origin, Registration};
use auth_proto::admin::{AuditEntry, DeleteMeRequest, UpdateMeRequest, UserExportBody};
use auth_proto::{
    ChangePasswordRequest, LoginRequest, Problem, SignupRequest, TokenResponse, User,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use utoipa_axum::routes;

use super::admin::{profile_changes, session_record};
use super::error::ApiError;
use super::extract::{ApiJson, Caller, Client, JsonOrForm};
use super::limit::admit_login;
use super::respond::{no_store, rfc3339, token_body, user_body};
use super::route::{Group, Needs};
use crate::limits::Limit;
use crate::state::AppState;

pub fn groups() -> Vec<Group> {
    vec![
        Group::new(Needs::WRITES.limited(Limit::SignupIp)).routes(routes!(signup)),
        Group::new(Needs::WRITES.limited(Limit::LoginIp)).routes(routes!(login)),
        Group::new(Needs::WRITES).routes(routes!(change_password)),
        Group::new(Needs::READS)
            .routes(routes!(me))
            .routes(routes!(export_me)),
        Group::new(Needs::WRITES)
            .routes(routes!(update_me))
            .routes(routes!(delete_me)),
    ]
}

/// Paths that answer exactly like another documented path: (alias, documented path, route).
pub fn aliases() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![(
        "/auth/register",
        "/auth/signup",
        axum::routing::post(signup),
    )]
}

/// Create an account (alias: `POST /auth/register`).
#[utoipa::path(post, path = "/auth/signup", tag = "auth",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Account created (a verification link is mailed). With `AUTH_REQUIRE_VERIFIED_EMAIL` a taken email gets the same answer, and its owner a mail instead", body = User),
        (status = 404, description = "`not_found`: no such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`username_taken`, or `email_taken` (only without `AUTH_REQUIRE_VERIFIED_EMAIL`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` or `weak_password`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too busy; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<SignupRequest>,
) -> Result<Response, ApiError> {
    let mut registration =
        Registration::parse(&body.email, body.username.as_deref(), body.password, &[])?
            .made_by(Origin::SignUp, &client);
    if let Some(tenant) = body.tenant.as_deref() {
        let tenant = TenantId::parse(tenant).map_err(|m| CoreError::invalid("tenant", m))?;
        if !state.directory.tenant_exists(&tenant).await? {
            return Err(CoreError::NotFound.into());
        }
        registration = registration.in_tenant(tenant);
    }
    let user = state.accounts.register(registration).await?;
    Ok((StatusCode::CREATED, Json(user_body(user))).into_response())
}

/// Log in with email (or username) and password; JSON or `application/x-www-form-urlencoded`.
/// Limited per client IP and per account (`AUTH_RATE_LOGIN_IP`, `AUTH_RATE_LOGIN_ACCOUNT`).
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body(content(
        (LoginRequest = "application/json"),
        (LoginRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Access token", body = TokenResponse),
        (status = 401, description = "`invalid_credentials`, for unknown users and wrong passwords alike (locked accounts included)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled`, or `email_not_verified` (with `AUTH_REQUIRE_VERIFIED_EMAIL`): the password was right", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "`account_locked`: the password was right but failed logins locked the account; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
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
    admit_login(&state, &credentials).await?;
    let issued = state.sessions.login(credentials).await;
    state.counters.login(&issued);
    Ok(no_store(Json(token_body(issued?)).into_response()))
}

/// The account of the bearer token.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = User),
        (status = 401, description = "`token_invalid` or `token_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let user = state.accounts.current_user(caller.identity()).await?;
    Ok(no_store(Json(user_body(user)).into_response()))
}

/// Change the caller's email and/or username (never its roles: an unknown field is 422).
#[utoipa::path(patch, path = "/auth/me", tag = "auth",
    request_body = UpdateMeRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed account", body = User),
        (status = 401, description = "`token_invalid` or `token_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken` or `username_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    ApiJson(body): ApiJson<UpdateMeRequest>,
) -> Result<Response, ApiError> {
    let changes = profile_changes(
        body.email.as_deref(),
        body.username.as_ref().map(|u| u.as_deref()),
    )?;
    let user = state
        .directory
        .update_own(caller.identity().user_id, changes, &client)
        .await?;
    Ok(no_store(Json(user_body(user)).into_response()))
}

/// Erase the caller's account (the current password confirms it): the account, its
/// sessions, tokens and roles; audit entries keep a pseudonymous id, not the email.
#[utoipa::path(delete, path = "/auth/me", tag = "auth",
    request_body = DeleteMeRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Erased"),
        (status = 401, description = "`invalid_credentials` (wrong password), `token_invalid` or `token_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_me(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    ApiJson(body): ApiJson<DeleteMeRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .directory
        .erase_own(
            caller.identity().user_id,
            Password::new(body.password),
            &client,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everything held about the caller: profile, roles, every session and its audit entries
/// (never a password hash).
#[utoipa::path(get, path = "/auth/me/export", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserExportBody),
        (status = 401, description = "`token_invalid` or `token_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export_me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let export = state
        .directory
        .export_own(caller.identity().user_id)
        .await?;
    let body = UserExportBody {
        user: user_body(export.user),
        sessions: export.sessions.into_iter().map(session_record).collect(),
        audit: export
            .audit
            .into_iter()
            .map(|a| AuditEntry {
                id: a.id,
                kind: a.kind,
                session_id: a.session_id,
                ip: a.ip,
                user_agent: a.user_agent,
                detail: a.detail,
                at: rfc3339(a.at),
            })
            .collect(),
        exported_at: rfc3339(auth_core::now_unix()),
    };
    Ok(no_store(Json(body).into_response()))
}
/// Change the caller's password. The current password is required; the new one must meet the
/// password policy. Every other session of the account is revoked (their access tokens are
/// refused from now on); the session of this token is kept.
#[utoipa::path(post, path = "/auth/password/change", tag = "auth",
    request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Password changed; other sessions revoked"),
        (status = 401, description = "`invalid_credentials` (wrong current password), `token_invalid`, `token_expired` or `token_revoked`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, or `weak_password` (too short, over 1024 characters, common, containing the email's name or the username, or one of the last `AUTH_PASSWORD_HISTORY` passwords)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too busy; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    if body.current_password.chars().count() > Password::MAX_CHARS {
        // Never accepted as a password; refused before spending a hash on it.
        return Err(auth_core::CoreError::InvalidCredentials.into());
    }
    let (current, new) = (
        Password::new(body.current_password),
        Password::new(body.new_password),
    );
    state
        .accounts
        .change_password(caller.identity(), current, new, &client)
        .await
        .map_err(|e| ApiError::from(e).rename_field("password", "new_password"))?;
    Ok(StatusCode::NO_CONTENT)
}
