//! The one place where errors become HTTP responses: `CoreError` variants map to status and
//! code in one exhaustive match; bodies are RFC 9457 problem+json with the request id.

use std::time::Duration;

use auth_core::action_token::ActionTokenRefusal;
use auth_core::error::{Conflict, TokenRejection};
use auth_core::{CoreError, StoreError};
use auth_proto::error::PROBLEM_CONTENT_TYPE;
use auth_proto::{ErrorCode, FieldError, Problem};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::request_id;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    problem: Box<Problem>,
    retry_after: Option<Duration>,
    /// `WWW-Authenticate` value of a 401.
    challenge: &'static str,
    /// More headers of the answer (the rate-limit fields of a 429).
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Why, for the log only (a refused token's precise reason), never for the caller.
    reason: Option<String>,
}

/// What the access log says of a refused or failed request besides its status: the problem's
/// `code` and, where there is one, the reason kept from the caller. A response extension set
/// by [`ApiError`], read by the request middleware, so that a refusal is one log line.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: ErrorCode,
    pub reason: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, title: &str) -> Self {
        Self {
            status,
            problem: Box::new(Problem::new(status.as_u16(), code, title)),
            retry_after: None,
            challenge: "Bearer error=\"invalid_token\"",
            headers: Vec::new(),
            reason: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.problem.detail = Some(detail.into());
        self
    }

    pub fn fields(mut self, errors: Vec<FieldError>) -> Self {
        self.problem.errors = errors;
        self
    }

    /// The same error with its field errors on `field` said to be on `to` (a body whose
    /// password field has another name).
    pub fn rename_field(mut self, field: &str, to: &str) -> Self {
        for e in &mut self.problem.errors {
            if e.field == field {
                e.field = to.to_owned();
            }
        }
        self
    }

    /// The same error with one more header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.problem.code
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 503 for a dependency that is away; the cause goes to the log only.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "Service unavailable",
        )
        .retry_after(Duration::from_secs(1))
    }

    /// 503 of a service that is starting or leaving: nothing is wrong, so nothing is logged.
    pub fn not_ready(title: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            title,
        )
        .retry_after(Duration::from_secs(1))
    }

    /// 500; the cause goes to the log only.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "Internal server error",
        )
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
            "Validation failed",
        )
        .fields(errors)
    }
}

fn token_error(rejection: TokenRejection) -> ApiError {
    let reason = Some(rejection.to_string());
    let mut error = match rejection {
        TokenRejection::Expired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::TokenExpired,
            "Token expired",
        ),
        TokenRejection::Missing => ApiError {
            // RFC 6750 section 3.1: no error attribute when no credentials were sent.
            challenge: "Bearer",
            ..ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::TokenInvalid,
                "Authentication required",
            )
            .detail("send an access token as `Authorization: Bearer <token>`")
        },
        TokenRejection::Revoked => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::TokenRevoked,
            "Session revoked",
        ),
        TokenRejection::Malformed
        | TokenRejection::Algorithm
        | TokenRejection::Type
        | TokenRejection::UnknownKey
        | TokenRejection::Signature
        | TokenRejection::Claims
        | TokenRejection::Immature => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::TokenInvalid,
            "Invalid token",
        ),
    };
    error.reason = reason;
    error
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::InvalidCredentials => ApiError {
                challenge: "Bearer",
                ..ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::InvalidCredentials,
                    "Invalid credentials",
                )
            },
            CoreError::AccountDisabled => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::AccountDisabled,
                "Account disabled",
            ),
            CoreError::EmailNotVerified => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::EmailNotVerified,
                "Email not verified",
            )
            .detail("verify the address with the link mailed to it, then log in again"),
            CoreError::ActionToken(refusal) => {
                let code = match refusal {
                    ActionTokenRefusal::Expired => ErrorCode::TokenExpired,
                    ActionTokenRefusal::Invalid => ErrorCode::TokenInvalid,
                };
                ApiError::new(StatusCode::BAD_REQUEST, code, "Link refused")
                    .detail(refusal.to_string())
            }
            CoreError::AccountLocked { retry_after } => ApiError::new(
                StatusCode::LOCKED,
                ErrorCode::AccountLocked,
                "Account locked",
            )
            .detail(format!(
                "too many failed logins; the account is locked for {} more seconds",
                retry_after.as_secs()
            ))
            .retry_after(retry_after),
            CoreError::Validation(fields) => ApiError::validation(
                fields
                    .into_iter()
                    .map(|(field, message)| FieldError { field, message })
                    .collect(),
            ),
            CoreError::WeakPassword(message) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::WeakPassword,
                "Password too weak",
            )
            .detail(format!("the password {message}"))
            .fields(vec![FieldError {
                field: "password".into(),
                message,
            }]),
            CoreError::EmailTaken => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::EmailTaken,
                "Email already registered",
            ),
            CoreError::UsernameTaken => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::UsernameTaken,
                "Username already taken",
            ),
            CoreError::Token(rejection) => token_error(rejection),
            CoreError::RefreshTokenReused => ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::RefreshTokenReused,
                "Refresh token reused; the session has been revoked",
            ),
            CoreError::Forbidden(missing) => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, "Forbidden")
                    .detail(missing.to_string())
            }
            CoreError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "Not found")
            }
            CoreError::Conflict(conflict) => {
                let code = match conflict {
                    Conflict::RoleExists => ErrorCode::RoleExists,
                    Conflict::TenantExists => ErrorCode::TenantExists,
                    Conflict::BuiltinRole => ErrorCode::BuiltinRole,
                };
                ApiError::new(StatusCode::CONFLICT, code, "Conflict").detail(conflict.to_string())
            }
            CoreError::Overloaded { retry_after } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "Too busy, retry shortly",
            )
            .retry_after(retry_after),
            CoreError::Store(e @ StoreError::Unavailable(_)) => ApiError::unavailable(&chain(&e)),
            CoreError::Store(
                e @ (StoreError::DuplicateEmail
                | StoreError::DuplicateUsername
                | StoreError::Conflict(_)
                | StoreError::MissingReference(_)
                | StoreError::Other(_)),
            ) => ApiError::internal(&chain(&e)),
            CoreError::Internal(e) => ApiError::internal(&chain(&e)),
        }
    }
}

/// An error and its causes on one line, for the log.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut problem = self.problem;
        problem.request_id = request_id::current();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(self.challenge),
            );
        }
        if let Some(after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(after.as_secs().max(1)),
            );
        }
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response.extensions_mut().insert(Refusal {
            code: problem.code,
            reason: self.reason,
        });
        response
    }
}
