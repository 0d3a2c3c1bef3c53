//! The admin API: users, roles, signing keys and tenants. Every route needs a bearer token
//! holding its permission (declared per group); everything is scoped to the caller's tenant,
//! and what lies in another tenant answers 404 as if it did not exist (a `superadmin` spans
//! tenants and may name one with `?tenant=`).

use auth_core::CoreError;
use auth_core::directory::{ProfileChanges, permissions as p};
use auth_core::domain::{Email, RoleName, TenantId, UserId, Username};
use auth_proto::admin::SessionRecord;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use super::error::ApiError;
use super::respond::rfc3339;
use super::route::{Group, Needs};
use crate::state::AppState;

mod keys;
mod roles;
mod users;

use keys::*;
use roles::*;
use users::*;

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
