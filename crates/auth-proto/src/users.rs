//! User bodies: sign-up input and the user as returned by the API.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /auth/signup`. The schema says exactly what is accepted, except what JSON Schema
/// cannot say: a password must not be the email, its local part or the username
/// (`422 weak_password`), and its minimum length is the service's `AUTH_PASSWORD_MIN_LENGTH`
/// (the served document carries the configured one).
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct SignupRequest {
    /// An ASCII address: a dot-atom local part of at most 64 characters, a domain of at least
    /// two labels (letters, digits and `-`, not first or last, nor third and fourth together).
    /// Nothing is trimmed; compared without regard to case.
    #[schema(
        format = Email,
        max_length = 254,
        pattern = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]?[A-Za-z0-9]|[A-Za-z0-9-]{2}[A-Za-z0-9]|[A-Za-z0-9-](?:[A-Za-z0-9][A-Za-z0-9-]|-[A-Za-z0-9])[A-Za-z0-9-]{0,58}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]?[A-Za-z0-9]|[A-Za-z0-9-]{2}[A-Za-z0-9]|[A-Za-z0-9-](?:[A-Za-z0-9][A-Za-z0-9-]|-[A-Za-z0-9])[A-Za-z0-9-]{0,58}[A-Za-z0-9])?)+$"
    )]
    pub email: String,
    /// Characters (Unicode code points), not bytes.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// 3 to 64 ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit.
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")]
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
