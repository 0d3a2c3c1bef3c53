//! Login request and token responses.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /auth/login`: identify by `email` or `username` (a `username` containing `@` is taken
/// as an email, as OAuth2 password forms send it), within an optional tenant.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    pub password: String,
    /// Tenant id; the default tenant when absent.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// A superset of the OAuth 2.0 token response (RFC 6749 section 5.1).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
}

/// Redacts the password.
impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("email", &self.email)
            .field("username", &self.username)
            .field("tenant", &self.tenant)
            .field("password", &"[redacted]")
            .finish()
    }
}
