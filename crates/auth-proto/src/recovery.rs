//! Bodies of the mailed flows: password reset and email verification.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /auth/password-reset/request`: the address of the account, within an optional tenant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PasswordResetRequest {
    /// The account's address: compared without regard to case, surrounding spaces ignored
    /// (as a login compares it). Exactly one string.
    #[schema(min_length = 1, max_length = 254)]
    pub email: String,
    /// The tenant (slug); default `default`.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// `POST /auth/password-reset/confirm`: the token of the mailed link and the new password.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct PasswordResetConfirm {
    /// The `token` parameter of the link (43 characters of base64url).
    #[schema(pattern = r"^[A-Za-z0-9_-]{43}$")]
    pub token: String,
    /// Must meet the password policy (see `weak_password`).
    pub new_password: String,
}

/// `POST /auth/verify-email`: the token of the mailed link.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyEmailRequest {
    /// The `token` parameter of the link (43 characters of base64url).
    #[schema(pattern = r"^[A-Za-z0-9_-]{43}$")]
    pub token: String,
}

/// The answer of a request whose outcome is mailed (or not): always the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// Always `accepted`.
    pub status: String,
}

impl Accepted {
    pub fn new() -> Self {
        Self {
            status: "accepted".into(),
        }
    }
}

impl Default for Accepted {
    fn default() -> Self {
        Self::new()
    }
}

/// Redacts the token and the password.
impl std::fmt::Debug for PasswordResetConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordResetConfirm")
            .finish_non_exhaustive()
    }
}

/// Redacts the token.
impl std::fmt::Debug for VerifyEmailRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyEmailRequest").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_must_be_exactly_one_string() {
        let ok: PasswordResetRequest = serde_json::from_str(r#"{"email":"a@b.co"}"#).unwrap();
        assert_eq!(ok.email, "a@b.co");
        for bad in [
            r#"{"email":["a@b.co","c@d.co"]}"#,
            r#"{"email":1}"#,
            r#"{"email":"a@b.co","email":"c@d.co"}"#,
            r#"{}"#,
        ] {
            assert!(
                serde_json::from_str::<PasswordResetRequest>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let body = PasswordResetConfirm {
            token: "t0ken".into(),
            new_password: "hunter2hunter2".into(),
        };
        let shown = format!("{body:?}");
        assert!(
            !shown.contains("t0ken") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
