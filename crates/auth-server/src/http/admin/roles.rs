//! Roles of the caller's tenant and the permissions they hold.

use auth_core::CoreError;
use auth_core::domain::{Permission, RoleName};
use auth_proto::Problem;
use auth_proto::admin::{CreateRoleRequest, RoleBody, UpdateRoleRequest};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::*;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, Caller, Client};

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
