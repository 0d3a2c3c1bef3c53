//! The admin API: users, roles, signing keys and tenants. Every route needs a bearer token
//! holding its permission (declared per group); everything is scoped to the caller's tenant,
//! and what lies in another tenant answers 404 as if it did not exist (a `superadmin` spans
//! tenants and may name one with `?tenant=`).

use auth_core::directory::{ProfileChanges, UserFilter, permissions as p};
use auth_core::domain::{Email, Password, Permission, RoleName, TenantId, UserId, Username};
use auth_core::service::{Origin, Registration, UserChanges};
use auth_core::signing::{Rotated, RotationCause};
use auth_core::{CoreError, now_unix};
use auth_proto::admin::{
    CreateRoleRequest, CreateTenantRequest, CreateUserRequest, KeyBody, KeyRotation, RoleBody,
    SessionRecord, SetPasswordRequest, TenantBody, UpdateRoleRequest, UpdateUserRequest, UserPage,
};
use auth_proto::{Problem, User};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery, Caller, Client};
use super::respond::{no_store, rfc3339, user_body};
use super::route::{Group, Needs};
use crate::state::AppState;

pub fn groups() -> Vec<Group> {
    vec![
        Group::new(Needs::READS.permission(p::USERS_READ))
            .routes(routes!(list_users))
            .routes(routes!(get_user))
            .routes(routes!(user_sessions)),
        Group::new(Needs::WRITES.permission(p::USERS_WRITE))
            .routes(routes!(create_user))
            .routes(routes!(update_user))
            .routes(routes!(delete_user))
            .routes(routes!(disable_user))
            .routes(routes!(enable_user))
            .routes(routes!(unlock_user))
            .routes(routes!(set_password)),
        Group::new(Needs::WRITES.permission(p::SESSIONS_REVOKE)).routes(routes!(logout_user)),
        Group::new(Needs::READS.permission(p::ROLES_READ)).routes(routes!(list_roles)),
        Group::new(Needs::WRITES.permission(p::ROLES_WRITE))
            .routes(routes!(create_role))
            .routes(routes!(update_role))
            .routes(routes!(delete_role)),
        Group::new(Needs::READS.permission(p::KEYS_READ)).routes(routes!(list_keys)),
        Group::new(Needs::WRITES.permission(p::KEYS_ROTATE)).routes(routes!(rotate_keys)),
        Group::new(Needs::READS.permission(p::TENANTS_WRITE)).routes(routes!(list_tenants)),
        Group::new(Needs::WRITES.permission(p::TENANTS_WRITE)).routes(routes!(create_tenant)),
    ]
}

/// A user id from the path; anything that is not one of ours is "not found".
fn user_id(text: &str) -> Result<UserId, ApiError> {
    UserId::parse(text).ok_or_else(|| CoreError::NotFound.into())
}

fn role_name(text: &str) -> Result<RoleName, ApiError> {
    RoleName::parse(text).map_err(|_| CoreError::NotFound.into())
}

/// The `tenant` a superadmin names; for anyone else a tenant other than its own is "not
/// found".
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// Another tenant (superadmins only; default: the caller's).
    tenant: Option<String>,
}

fn tenant_param(tenant: Option<&str>) -> Result<Option<TenantId>, ApiError> {
    tenant
        .map(|t| TenantId::parse(t).map_err(|m| CoreError::invalid("tenant", m).into()))
        .transpose()
}

fn parse_roles(roles: &[String], field: &str) -> Result<Vec<RoleName>, ApiError> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (i, r) in roles.iter().enumerate() {
        match RoleName::parse(r) {
            Ok(r) => out.push(r),
            Err(m) => problems.push((format!("{field}[{i}]"), m)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(CoreError::Validation(problems).into())
    }
}

fn parse_permissions(permissions: &[String]) -> Result<Vec<Permission>, ApiError> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (i, text) in permissions.iter().enumerate() {
        match Permission::parse(text) {
            Ok(p) => out.push(p),
            Err(m) => problems.push((format!("permissions[{i}]"), m)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(CoreError::Validation(problems).into())
    }
}

/// Profile changes from a body's `email` and `username`, validated together.
pub fn profile_changes(
    email: Option<&str>,
    username: Option<Option<&str>>,
) -> Result<ProfileChanges, ApiError> {
    let mut problems = Vec::new();
    let email = match email.map(Email::parse).transpose() {
        Ok(e) => e,
        Err(m) => {
            problems.push(("email".to_owned(), m));
            None
        }
    };
    let username = match username {
        Some(Some(u)) => match Username::parse(u) {
            Ok(u) => Some(Some(u)),
            Err(m) => {
                problems.push(("username".to_owned(), m));
                None
            }
        },
        Some(None) => Some(None),
        None => None,
    };
    if problems.is_empty() {
        Ok(ProfileChanges { email, username })
    } else {
        Err(CoreError::Validation(problems).into())
    }
}

fn role_body(role: auth_core::directory::Role) -> RoleBody {
    RoleBody {
        name: role.name.as_str().to_owned(),
        description: role.description,
        builtin: role.builtin,
        permissions: role
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        tenant: role.tenant.as_str().to_owned(),
    }
}

pub fn session_record(s: auth_core::session::Session) -> SessionRecord {
    SessionRecord {
        id: s.id.to_string(),
        user_agent: s.client.user_agent,
        ip: s.client.ip,
        created_at: rfc3339(s.created_at),
        last_used_at: rfc3339(s.last_used_at),
        expires_at: rfc3339(s.idle_expires_at),
        revoked_at: s.revoked_at.map(rfc3339),
    }
}

/// The cursor of a listing position: its text in hex, opaque to clients.
fn cursor_of(position: &str) -> String {
    position.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The position a cursor names; `None` unless it is an even run of hex digits.
fn cursor_position(cursor: &str) -> Option<String> {
    if cursor.is_empty() || !cursor.len().is_multiple_of(2) || cursor.len() > 128 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect();
    Some(String::from_utf8_lossy(&bytes?).into_owned())
}

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

/// The tenant's roles with their permissions.
#[utoipa::path(get, path = "/auth/admin/roles", tag = "admin",
    params(TenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<RoleBody>),
        (status = 404, description = "`not_found`: a tenant out of the caller's reach", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_roles(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TenantQuery>,
) -> Result<Response, ApiError> {
    let tenant = tenant_param(q.tenant.as_deref())?;
    let roles = state.directory.roles(&caller.actor(), tenant).await?;
    let body: Vec<RoleBody> = roles.into_iter().map(role_body).collect();
    Ok(Json(body).into_response())
}

/// Create a role. Permissions the service checks (`users:*`, `roles:*`, `sessions:*`,
/// `audit:*`, `keys:*`, `tenants:*`, `superadmin`) can be granted only by a caller holding
/// them; any other permission (`orders:read`) is the platform's to define.
#[utoipa::path(post, path = "/auth/admin/roles", tag = "admin",
    params(TenantQuery),
    request_body = CreateRoleRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = RoleBody),
        (status = 403, description = "`forbidden`: a permission the caller does not hold", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: a tenant out of the caller's reach", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`role_exists`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_role(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    ApiQuery(q): ApiQuery<TenantQuery>,
    ApiJson(body): ApiJson<CreateRoleRequest>,
) -> Result<Response, ApiError> {
    let name = RoleName::parse(&body.name).map_err(|m| CoreError::invalid("name", m))?;
    let permissions = parse_permissions(&body.permissions)?;
    let tenant = tenant_param(q.tenant.as_deref())?;
    let role = state
        .directory
        .create_role(
            &caller.actor(),
            tenant,
            name,
            body.description,
            permissions,
            &client,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(role_body(role))).into_response())
}

/// Replace a role's permissions (and description). `admin` and `superadmin` are fixed;
/// `user` may be given permissions every user holds. Holders get the change at their next
/// login or refresh.
#[utoipa::path(put, path = "/auth/admin/roles/{name}", tag = "admin",
    params(("name" = String, Path, description = "Role name"), TenantQuery),
    request_body = UpdateRoleRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = RoleBody),
        (status = 403, description = "`forbidden`: a permission the caller does not hold", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`builtin_role`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_role(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<TenantQuery>,
    ApiJson(body): ApiJson<UpdateRoleRequest>,
) -> Result<Response, ApiError> {
    let name = role_name(&name)?;
    let permissions = parse_permissions(&body.permissions)?;
    let tenant = tenant_param(q.tenant.as_deref())?;
    let role = state
        .directory
        .update_role(
            &caller.actor(),
            tenant,
            name,
            body.description,
            permissions,
            &client,
        )
        .await?;
    Ok(Json(role_body(role)).into_response())
}

/// Delete a role that is not built in; its holders lose it.
#[utoipa::path(delete, path = "/auth/admin/roles/{name}", tag = "admin",
    params(("name" = String, Path, description = "Role name"), TenantQuery),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: the role grants what the caller does not hold", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`builtin_role`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_role(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<TenantQuery>,
) -> Result<StatusCode, ApiError> {
    let name = role_name(&name)?;
    let tenant = tenant_param(q.tenant.as_deref())?;
    state
        .directory
        .delete_role(&caller.actor(), tenant, name, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signing keys, public parts only.
#[utoipa::path(get, path = "/auth/admin/keys", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<KeyBody>)))]
pub async fn list_keys(State(state): State<AppState>) -> Result<Response, ApiError> {
    let keys = state.keys().list().await?;
    let body: Vec<KeyBody> = keys
        .into_iter()
        .map(|k| KeyBody {
            kid: k.kid,
            alg: k.algorithm,
            state: k.state.as_str().to_owned(),
            created_at: rfc3339(k.created_at),
            activated_at: k.activated_at.map(rfc3339),
            retired_at: k.retired_at.map(rfc3339),
        })
        .collect();
    Ok(Json(body).into_response())
}

/// Rotate the signing key: a new key is published at once and signs after the propagation
/// delay (`AUTH_KEY_PROPAGATION_SECONDS`).
#[utoipa::path(post, path = "/auth/admin/keys/rotate", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, body = KeyRotation),
        (status = 403, description = "`forbidden`: HS256 deployments have no signing keys", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_keys(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
) -> Result<Response, ApiError> {
    let now = now_unix();
    let actor = caller.actor();
    let cause = RotationCause::Admin {
        actor: &actor,
        client: &client,
    };
    let answer = match state.keys().rotate(now, cause).await? {
        Rotated::Active(kid) => KeyRotation {
            kid,
            signs_from: rfc3339(now),
            created: true,
        },
        Rotated::Scheduled { kid, activates_at } => KeyRotation {
            kid,
            signs_from: rfc3339(activates_at),
            created: true,
        },
        Rotated::AlreadyScheduled { kid, activates_at } => KeyRotation {
            kid,
            signs_from: rfc3339(activates_at),
            created: false,
        },
    };
    Ok(Json(answer).into_response())
}

fn tenant_body(t: auth_core::directory::Tenant) -> TenantBody {
    TenantBody {
        id: t.id.as_str().to_owned(),
        name: t.name,
        created_at: rfc3339(t.created_at),
    }
}

/// Every tenant (superadmins only).
#[utoipa::path(get, path = "/auth/admin/tenants", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<TenantBody>)))]
pub async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let tenants = state.directory.tenants(Some(&caller.actor())).await?;
    let body: Vec<TenantBody> = tenants.into_iter().map(tenant_body).collect();
    Ok(Json(body).into_response())
}

/// Create a tenant with its built-in roles `admin` and `user` (superadmins only).
#[utoipa::path(post, path = "/auth/admin/tenants", tag = "admin",
    request_body = CreateTenantRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = TenantBody),
        (status = 409, description = "`tenant_exists`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_tenant(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    ApiJson(body): ApiJson<CreateTenantRequest>,
) -> Result<Response, ApiError> {
    let id = TenantId::parse(&body.id).map_err(|m| CoreError::invalid("id", m))?;
    let name = body.name.unwrap_or_else(|| body.id.clone());
    let tenant = state
        .directory
        .create_tenant(Some(&caller.actor()), id, name, &client)
        .await?;
    Ok((StatusCode::CREATED, Json(tenant_body(tenant))).into_response())
}
