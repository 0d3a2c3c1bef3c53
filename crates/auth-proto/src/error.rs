//! The RFC 9457 problem body returned by every failed request, and its stable machine codes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Media type of error bodies.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Stable, machine-readable error codes. Clients branch on these, never on `title` or `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidCredentials,
    AccountLocked,
    AccountDisabled,
    EmailNotVerified,
    RateLimited,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
    RefreshTokenReused,
    MalformedRequest,
    ValidationFailed,
    WeakPassword,
    EmailTaken,
    UsernameTaken,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    MethodNotAllowed,
    Forbidden,
    GatewayRequired,
    NotFound,
    RoleExists,
    TenantExists,
    BuiltinRole,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::AccountLocked => "account_locked",
            Self::AccountDisabled => "account_disabled",
            Self::EmailNotVerified => "email_not_verified",
            Self::RateLimited => "rate_limited",
            Self::TokenExpired => "token_expired",
            Self::TokenInvalid => "token_invalid",
            Self::TokenRevoked => "token_revoked",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::MalformedRequest => "malformed_request",
            Self::ValidationFailed => "validation_failed",
            Self::WeakPassword => "weak_password",
            Self::EmailTaken => "email_taken",
            Self::UsernameTaken => "username_taken",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Forbidden => "forbidden",
            Self::GatewayRequired => "gateway_required",
            Self::NotFound => "not_found",
            Self::RoleExists => "role_exists",
            Self::TenantExists => "tenant_exists",
            Self::BuiltinRole => "builtin_role",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field (`email`, `roles[2]`); `.` for the body as a whole.
    pub field: String,
    pub message: String,
}

/// RFC 9457 problem details, extended with `code`, `request_id` and per-field `errors`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`urn:auth-service:error:<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub code: ErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: u16, code: ErrorCode, title: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:auth-service:error:{}", code.as_str()),
            title: title.into(),
            status,
            detail: None,
            code,
            request_id: None,
            errors: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in [
            ErrorCode::InvalidCredentials,
            ErrorCode::WeakPassword,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
        }
    }

    #[test]
    fn problem_names_its_type_after_the_code() {
        let p = Problem::new(409, ErrorCode::EmailTaken, "Email taken");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["type"], "urn:auth-service:error:email_taken");
        assert_eq!(json["code"], "email_taken");
        assert!(json.get("errors").is_none());
    }
}
