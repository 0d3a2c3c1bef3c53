//! Wire types of auth-service: the JSON bodies its HTTP API accepts and returns, and the error
//! body with its stable codes. Shared by the server and by clients so both agree on one shape.
#![forbid(unsafe_code)]

pub mod admin;
pub mod claims;
pub mod error;
pub mod events;
pub mod jwks;
pub mod recovery;
pub mod tokens;
pub mod users;

pub use claims::{ACCESS_TOKEN_TYP, AccessClaims};
pub use error::{ErrorCode, FieldError, Problem};
pub use jwks::{Jwk, JwkSet};
pub use recovery::{Accepted, PasswordResetConfirm, PasswordResetRequest, VerifyEmailRequest};
pub use tokens::{
    ActiveIdentity, CompatObtainRequest, CompatRefreshRequest, CompatTokenPair, Introspection,
    LoginRequest, LogoutRequest, RefreshRequest, SessionInfo, TokenResponse, ValidateRequest,
    X_AUTH_EMAIL, X_AUTH_PERMISSIONS, X_AUTH_ROLES, X_AUTH_SESSION_ID, X_AUTH_TENANT,
    X_AUTH_USER_ID, introspection_answer,
};
pub use users::{ChangePasswordRequest, SignupRequest, User};

/// Liveness answer of `GET /health`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` when the process is up; `ready` / `unavailable` on the readiness probe.
    pub status: String,
}
