//! The claims of an access token (RFC 9068 JWT) as the service signs them and as downstream
//! services read them after verification.

use serde::{Deserialize, Serialize};

/// The `typ` header of access tokens (RFC 9068 section 2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Claims of an access token. Readers ignore claims they do not know, so claims added later
/// (`token_type`, `user_id`, ...) do not break older clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    /// The audience; absent on tokens of a service configured without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub client_id: String,
    pub tenant: String,
    pub roles: Vec<String>,
    /// Permissions granted by the roles (`users:write`, ...).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The first role, for clients of the older services that read a single `role`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub email: String,
    /// Whether the address was verified when the token was issued (as `/auth/me` says).
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `access`, so Django SimpleJWT accepts the token (absent from tokens of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// The subject again, under the name SimpleJWT reads (`USER_ID_CLAIM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl AccessClaims {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|have| have == role)
    }

    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|have| have == permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_read_tokens_with_extra_claims_and_without_an_audience() {
        let json = serde_json::json!({
            "iss": "https://auth.test", "sub": "u-1", "exp": 2, "iat": 1, "jti": "j",
            "client_id": "auth-service", "tenant": "default", "roles": ["admin", "user"],
            "email": "a@example.com", "token_type": "access", "user_id": "u-1",
        });
        let claims: AccessClaims = serde_json::from_value(json).unwrap();
        assert_eq!(claims.aud, None);
        assert!(claims.has_role("admin") && !claims.has_role("adm"));
        assert!(!claims.has_permission("users:read"));
        let back = serde_json::to_value(&claims).unwrap();
        assert!(back.get("aud").is_none() && back.get("sid").is_none());
    }
}
