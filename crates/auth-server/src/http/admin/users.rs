//! Users of the caller's tenant: listing, creation, changes, deletion, disabling, unlocking,
//! passwords and sessions.

use auth_core::CoreError;
use auth_core::directory::UserFilter;
use auth_core::domain::{Password, RoleName};
use auth_core::service::{Origin, Registration, UserChanges};
use auth_proto::admin::{
    CreateUserRequest, SessionRecord, SetPasswordRequest, UpdateUserRequest, UserPage,
};
use auth_proto::{Problem, User};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::*;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, Caller, Client};
use crate::http::respond::{no_store, user_body};

/// The filters and page of `GET /auth/admin/users`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    /// Users whose email starts with this (case-insensitive).
    email_prefix: Option<String>,
    /// Users holding this role.
    role: Option<String>,
    /// Only disabled (`true`) or enabled (`false`) users.
    disabled: Option<bool>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 128)]
    cursor: Option<String>,
    /// Another tenant (superadmins only).
    tenant: Option<String>,
}

/// List a tenant's users, in creation order, a page at a time.
#[utoipa::path(get, path = "/auth/admin/users", tag = "admin",
    params(ListUsersQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserPage),
        (status = 404, description = "`not_found`: a tenant out of the caller's reach", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListUsersQuery>,
) -> Result<Response, ApiError> {
    let limit = match q.limit {
        None => 50,
        Some(n @ 1..=200) => n as usize,
        Some(_) => return Err(CoreError::invalid("limit", "must be 1 to 200").into()),
    };
    // Any even run of hex digits is a position (the document's pattern); what lies after it in
    // the listing's order is the page.
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            cursor_position(c)
                .ok_or_else(|| CoreError::invalid("cursor", "not a cursor of this listing"))?,
        ),
    };
    let role = match q.role.as_deref() {
        Some(r) => Some(RoleName::parse(r).map_err(|m| CoreError::invalid("role", m))?),
        None => None,
    };
    let filter = UserFilter {
        email_prefix: q.email_prefix.filter(|p| !p.is_empty()),
        role,
        disabled: q.disabled,
    };
    let tenant = tenant_param(q.tenant.as_deref())?;
    let (users, next) = state
        .directory
        .list_users(&caller.actor(), tenant, &filter, after, limit)
        .await?;
    let page = UserPage {
        items: users.into_iter().map(user_body).collect(),
        next_cursor: next.map(|id| cursor_of(&id.to_string())),
    };
    Ok(no_store(Json(page).into_response()))
}

/// Create a user in the caller's tenant (or `?tenant=` for a superadmin).
#[utoipa::path(post, path = "/auth/admin/users", tag = "admin",
    params(TenantQuery),
    request_body = CreateUserRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = User),
        (status = 403, description = "`forbidden`: a role granting more than the caller holds", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: a tenant out of the caller's reach", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken` or `username_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (an unknown role) or `weak_password`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    ApiQuery(q): ApiQuery<TenantQuery>,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> Result<Response, ApiError> {
    let actor = caller.actor();
    let tenant = actor.tenant_for(tenant_param(q.tenant.as_deref())?)?;
    if !state.directory.tenant_exists(&tenant).await? {
        return Err(CoreError::NotFound.into());
    }
    let registration = Registration::parse(
        &body.email,
        body.username.as_deref(),
        body.password,
        &body.roles,
    )?
    .in_tenant(tenant.clone())
    .made_by(Origin::Admin(actor.user_id), &client);
    state
        .directory
        .check_grantable(&actor, &tenant, &registration.roles)
        .await?;
    let user = state.accounts.register(registration).await?;
    Ok((StatusCode::CREATED, Json(user_body(user))).into_response())
}

/// A user of the caller's tenant.
#[utoipa::path(get, path = "/auth/admin/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = User),
        (status = 404, description = "`not_found`: no such user in the caller's reach", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = state.directory.user(&caller.actor(), user_id(&id)?).await?;
    Ok(no_store(Json(user_body(user)).into_response()))
}

/// Change a user's email, username or roles. A role change reaches the user's new tokens at
/// once and its existing sessions at their next refresh.
#[utoipa::path(patch, path = "/auth/admin/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    request_body = UpdateUserRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = User),
        (status = 403, description = "`forbidden`: a role granting more than the caller holds", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such user in the caller's reach", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken` or `username_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a bad or unknown field (`id`, `password_hash`, `tenant`... cannot be set)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> Result<Response, ApiError> {
    let id = user_id(&id)?;
    let profile = profile_changes(
        body.email.as_deref(),
        body.username.as_ref().map(|u| u.as_deref()),
    )?;
    let roles = body
        .roles
        .as_deref()
        .map(|r| parse_roles(r, "roles"))
        .transpose()?;
    let user = state
        .directory
        .update_user(&caller.actor(), id, UserChanges { profile, roles }, &client)
        .await?;
    Ok(no_store(Json(user_body(user)).into_response()))
}

/// Erase a user: its account, sessions, tokens and roles; its audit entries keep a
/// pseudonymous id.
#[utoipa::path(delete, path = "/auth/admin/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Erased"),
        (status = 404, description = "`not_found`: no such user in the caller's reach", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .directory
        .erase_user(&caller.actor(), user_id(&id)?, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disable a user: every session is revoked at once, logins answer 403 `account_disabled`
/// (after a correct password only) and refreshes are refused.
#[utoipa::path(post, path = "/auth/admin/users/{id}/disable", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Disabled"),
        (status = 404, description = "`not_found`: no such user in the caller's reach", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn disable_user(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .directory
        .set_disabled(&caller.actor(), user_id(&id)?, true, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a disabled user again.
#[utoipa::path(post, path = "/auth/admin/users/{id}/enable", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Enabled"),
        (status = 404, description = "`not_found`: no such user in the caller's reach", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn enable_user(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .directory
        .set_disabled(&caller.actor(), user_id(&id)?, false, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clear a user's failed logins and lock.
#[utoipa::path(post, path = "/auth/admin/users/{id}/unlock", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Unlocked"),
        (status = 404, description = "`not_found`: no such user in the caller's reach", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unlock_user(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .directory
        .unlock(&caller.actor(), user_id(&id)?, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set a user's password: the policy (and history) apply; every session is revoked.
#[utoipa::path(post, path = "/auth/admin/users/{id}/password", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    request_body = SetPasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Set; every session of the user revoked"),
        (status = 403, description = "`forbidden`: the user holds more than the caller", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such user in the caller's reach", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`weak_password` or `validation_failed`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_password(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let actor = caller.actor();
    let user = state.directory.changeable(&actor, user_id(&id)?).await?;
    state
        .accounts
        .set_password(
            user.id,
            Some(&user.tenant),
            Password::new(body.password),
            Some(actor.user_id),
            &client,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke every session of a user.
#[utoipa::path(post, path = "/auth/admin/users/{id}/logout", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session revoked"),
        (status = 404, description = "`not_found`: no such user in the caller's reach", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn logout_user(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .directory
        .logout_user(&caller.actor(), user_id(&id)?, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's active sessions, newest first.
#[utoipa::path(get, path = "/auth/admin/users/{id}/sessions", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<SessionRecord>),
        (status = 404, description = "`not_found`: no such user in the caller's reach", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn user_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let sessions = state
        .directory
        .user_sessions(&caller.actor(), user_id(&id)?)
        .await?;
    let body: Vec<SessionRecord> = sessions.into_iter().map(session_record).collect();
    Ok(no_store(Json(body).into_response()))
}
