//! The axum extractor [`AuthUser`] and the problem+json answer of a refused token.

use std::ops::Deref;

use auth_proto::error::PROBLEM_CONTENT_TYPE;
use auth_proto::{AccessClaims, Problem};
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};

use crate::error::VerifyError;
use crate::verify::Verifier;

/// The verified caller of a request. Extracting it takes the identity a layer
/// ([`crate::require_role`], ...) already verified, else verifies the bearer token with the
/// [`Verifier`] found in the request's extensions (`.layer(Extension(verifier))`).
/// Refused tokens are answered 401 (problem+json, `WWW-Authenticate: Bearer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser(pub AccessClaims);

impl Deref for AuthUser {
    type Target = AccessClaims;

    fn deref(&self) -> &AccessClaims {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = VerifyError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, VerifyError> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let Some(verifier) = parts.extensions.get::<Verifier>().cloned() else {
            tracing::error!("AuthUser needs a Verifier extension or an auth layer");
            return Err(VerifyError::Settings("no verifier for this route".into()));
        };
        let claims = verifier.authenticate(&parts.headers).await?;
        parts.extensions.insert(AuthUser(claims.clone()));
        Ok(AuthUser(claims))
    }
}

impl IntoResponse for VerifyError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let title = match &self {
            Self::Missing | Self::Expired | Self::Forbidden => self.to_string(),
            // Settings and fetch failures stay in the log, not in the answer.
            Self::KeysUnavailable(_) => "signing keys unavailable".to_owned(),
            Self::Settings(_) => "internal error".to_owned(),
            _ => "invalid token".to_owned(),
        };
        let problem = Problem::new(status.as_u16(), self.code(), title);
        let mut response = (status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        let challenge = match self {
            Self::Missing => Some("Bearer"),
            Self::Forbidden => Some("Bearer error=\"insufficient_scope\""),
            Self::KeysUnavailable(_) | Self::Settings(_) => None,
            _ => Some("Bearer error=\"invalid_token\""),
        };
        if let Some(challenge) = challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
