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
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
    /// Opaque; present it to `POST /auth/refresh` for the next pair. Each is single-use.
    pub refresh_token: String,
    /// Seconds until the session expires unless refreshed.
    pub refresh_expires_in: u64,
    pub session_id: String,
}

/// `POST /auth/refresh`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `POST /auth/logout`: the refresh token of the session to end (or send a bearer token).
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct LogoutRequest {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// `POST /auth/validate`: the access token to check (or send it as a bearer token).
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ValidateRequest {
    #[serde(default)]
    pub token: Option<String>,
}

/// RFC 7662-style answer of `POST /auth/validate`. When `active` is false nothing else is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Same as `sub`, for clients of the roadmap service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

/// The answer of `POST /auth/validate` for an active token, serialized from borrowed claims:
/// the same JSON as an [`Introspection`] with `active: true`, without copying a string. `T` is
/// whatever string type the roles and permissions are held in.
#[derive(Debug, Serialize)]
pub struct ActiveIntrospection<'a, T: Serialize = String> {
    pub active: bool,
    pub sub: &'a str,
    pub user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<&'a str>,
    pub roles: &'a [T],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'a str>,
    pub permissions: &'a [T],
    pub tenant: &'a str,
    pub email: &'a str,
    pub exp: i64,
    pub iat: i64,
}

/// One of the caller's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    pub id: String,
    pub current: bool,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub last_used_at: String,
    /// When the session ends unless refreshed before (RFC 3339).
    pub expires_at: String,
}

/// Django SimpleJWT `POST /auth/token/`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CompatObtainRequest {
    pub email: String,
    pub password: String,
}

/// Django SimpleJWT `POST /auth/token/refresh/`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CompatRefreshRequest {
    pub refresh: String,
}

/// Django SimpleJWT token pair.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CompatTokenPair {
    pub access: String,
    pub refresh: String,
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

macro_rules! redacted_debug {
    ($($ty:ident),*) => {$(
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($ty), "([redacted])"))
            }
        }
    )*};
}

redacted_debug!(
    RefreshRequest,
    LogoutRequest,
    ValidateRequest,
    CompatObtainRequest,
    CompatRefreshRequest,
    CompatTokenPair
);
redacted_debug!(TokenResponse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_introspection_serializes_like_the_owned_one() {
        let (roles, permissions) = (
            vec!["admin".to_string(), "user".to_string()],
            vec!["users:write".to_string()],
        );
        for (sid, role) in [(Some("s-1"), Some("admin")), (None, None)] {
            let owned = Introspection {
                active: true,
                sub: Some("u-1".into()),
                user_id: Some("u-1".into()),
                sid: sid.map(Into::into),
                roles: Some(roles.clone()),
                role: role.map(Into::into),
                permissions: Some(permissions.clone()),
                tenant: Some("acme".into()),
                email: Some("a\"b@example.com".into()),
                exp: Some(2_000_000_000),
                iat: Some(1_999_999_100),
            };
            let borrowed = ActiveIntrospection {
                active: true,
                sub: "u-1",
                user_id: "u-1",
                sid,
                roles: &roles,
                role,
                permissions: &permissions,
                tenant: "acme",
                email: "a\"b@example.com",
                exp: 2_000_000_000,
                iat: 1_999_999_100,
            };
            assert_eq!(
                serde_json::to_string(&borrowed).unwrap(),
                serde_json::to_string(&owned).unwrap()
            );
        }
    }
}
