//! User bodies: sign-up input and the user as returned by the API.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /auth/signup`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct SignupRequest {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub username: Option<String>,
    /// The tenant (slug) to join; default `default`.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// `POST /auth/password/change`: the caller's current password and the new one.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// Must meet the password policy (see `weak_password`).
    pub new_password: String,
}

/// A user as the API shows it. Never carries a password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub username: Option<String>,
    pub roles: Vec<String>,
    /// Permissions granted by the roles.
    pub permissions: Vec<String>,
    pub tenant: String,
    pub email_verified: bool,
    pub disabled: bool,
    /// RFC 3339.
    pub created_at: String,
}

/// Redacts the password.
impl std::fmt::Debug for SignupRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignupRequest")
            .field("email", &self.email)
            .field("username", &self.username)
            .field("tenant", &self.tenant)
            .field("password", &"[redacted]")
            .finish()
    }
}
