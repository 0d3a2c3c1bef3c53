//! Response helpers shared by every area: the API's views of domain values and the headers
//! of answers that must not be cached.

use auth_core::service::IssuedTokens;
use auth_proto::{TokenResponse, User};
use axum::http::{HeaderValue, header};
use axum::response::Response;

pub use crate::format::rfc3339;

/// The domain user as the API shows it.
pub fn user_body(user: auth_core::domain::User) -> User {
    User {
        id: user.id.to_string(),
        email: user.email,
        username: user.username,
        roles: user.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        permissions: user
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        tenant: user.tenant.as_str().to_owned(),
        email_verified: user.email_verified,
        disabled: user.disabled,
        created_at: rfc3339(user.created_at),
    }
}

/// The token pair as the API returns it.
pub fn token_body(issued: IssuedTokens) -> TokenResponse {
    TokenResponse {
        access_token: issued.access.token,
        token_type: "bearer".into(),
        expires_in: issued.access.expires_in,
        refresh_token: issued.refresh.as_str().to_owned(),
        refresh_expires_in: issued.refresh_expires_in,
        session_id: issued.session_id.to_string(),
    }
}

/// Marks a response that carries a token or personal data as not cacheable (RFC 6749 5.1).
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
