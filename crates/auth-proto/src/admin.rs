//! Bodies of the admin API (`/auth/admin/*`) and of a user's own profile changes, erasure and
//! export. Request bodies refuse fields they do not know (422), so that a field such as
//! `password_hash`, `tenant` or `roles` can never be set where it is not allowed.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::users::User;

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /auth/admin/users`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub username: Option<String>,
    /// Roles besides `user`, which every user holds.
    #[serde(default)]
    pub roles: Vec<String>,
}

impl std::fmt::Debug for CreateUserRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUserRequest")
            .field("email", &self.email)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// `PATCH /auth/admin/users/{id}`: only the fields present change.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default)]
    pub email: Option<String>,
    /// `null` removes the username.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub username: Option<Option<String>>,
    /// The user's roles (`user` is always kept).
    #[serde(default)]
    pub roles: Option<Vec<String>>,
}

/// `POST /auth/admin/users/{id}/password`: a new password set by an administrator.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// Must meet the password policy (see `weak_password`).
    pub password: String,
}

impl std::fmt::Debug for SetPasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetPasswordRequest { password: [redacted] }")
    }
}

/// `PATCH /auth/me`: a user changes its own email and username, never its roles.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    #[serde(default)]
    pub email: Option<String>,
    /// `null` removes the username.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub username: Option<Option<String>>,
}

/// `DELETE /auth/me`: the current password confirms the erasure.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMeRequest {
    pub password: String,
}

impl std::fmt::Debug for DeleteMeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeleteMeRequest { password: [redacted] }")
    }
}

/// A page of users.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A role with the permissions it grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoleBody {
    pub name: String,
    pub description: String,
    /// Built-in roles (`admin`, `user`, `superadmin`) cannot be deleted.
    pub builtin: bool,
    pub permissions: Vec<String>,
    pub tenant: String,
}

/// `POST /auth/admin/roles`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleRequest {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// `PUT /auth/admin/roles/{name}`: the role's permissions are replaced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoleRequest {
    #[serde(default)]
    pub description: Option<String>,
    pub permissions: Vec<String>,
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantBody {
    /// The slug users name at sign-up and login, and the `tenant` claim.
    pub id: String,
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
}

/// `POST /auth/admin/tenants`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// 1 to 64 characters of `a-z`, `0-9` and `-`.
    pub id: String,
    /// Defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
}

/// A signing key, public parts only.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyBody {
    pub kid: String,
    pub alg: String,
    /// `next`, `active`, `retired` or `removed`.
    pub state: String,
    /// RFC 3339.
    pub created_at: String,
    pub activated_at: Option<String>,
    pub retired_at: Option<String>,
}

/// `POST /auth/admin/keys/rotate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyRotation {
    /// The key that signs now or will.
    pub kid: String,
    /// When it signs from (RFC 3339).
    pub signs_from: String,
    /// False when a rotation was already scheduled (nothing new was made).
    pub created: bool,
}

/// A session as the admin API and a user's export show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionRecord {
    pub id: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub last_used_at: String,
    /// When the session ends unless refreshed before (RFC 3339).
    pub expires_at: String,
    /// When it was ended, if it was.
    pub revoked_at: Option<String>,
}

/// One audit entry, as a user's export shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub kind: String,
    pub session_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// RFC 3339.
    pub at: String,
}

/// `GET /auth/me/export`: everything held about the caller (never a password hash).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserExportBody {
    pub user: User,
    /// Every session, ended ones included.
    pub sessions: Vec<SessionRecord>,
    pub audit: Vec<AuditEntry>,
    /// RFC 3339.
    pub exported_at: String,
}

/// One audit log entry (`GET /auth/admin/audit`, `GET /auth/me/activity`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditItem {
    pub id: String,
    /// RFC 3339.
    pub at: String,
    /// The event type, a dotted name such as `login.failed` (docs/AUDIT.md lists them).
    #[serde(rename = "type")]
    pub kind: String,
    /// Who acted: the user itself or an administrator; `null` for the command line, the
    /// service's own tasks and callers not known (a failed login). In a user's own activity,
    /// `null` also when an administrator acted.
    pub actor_id: Option<String>,
    /// The user the event is about.
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub tenant: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The `x-request-id` of the request that caused it.
    pub request_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// What else is known, never a secret (why a login failed, the roles given, ...).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// A page of audit entries, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditItem>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}
