//! Signing keys (public parts, rotation) and tenants.

use auth_core::domain::TenantId;
use auth_core::signing::{Rotated, RotationCause};
use auth_core::{CoreError, now_unix};
use auth_proto::Problem;
use auth_proto::admin::{CreateTenantRequest, KeyBody, KeyRotation, TenantBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::*;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, Caller, Client};
use crate::http::respond::rfc3339;

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
