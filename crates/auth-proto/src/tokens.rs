//! Login request and token responses.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type,
};

/// `POST /auth/login`: identify by `email` or `username` (a `username` containing `@` is taken
/// as an email, as OAuth2 password forms send it), within an optional tenant. None of the
/// rules for setting an email, username or password applies: a name or tenant that matches no
/// account is `401 invalid_credentials`, like a wrong password.
#[derive(Clone, Serialize, Deserialize)]
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

/// Written by hand: the derived schema cannot say that `email` or `username` must be given.
impl utoipa::PartialSchema for LoginRequest {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        let nullable_string = |description: Option<&str>| {
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .description(description)
        };
        let fields = ObjectBuilder::new()
            .property("email", nullable_string(None))
            .property("username", nullable_string(None))
            .property("password", string())
            .property(
                "tenant",
                nullable_string(Some("Tenant id; the default tenant when absent.")),
            )
            .required("password");
        let named_by = |field: &str| {
            ObjectBuilder::new()
                .property(field, string())
                .required(field)
        };
        AllOfBuilder::new()
            .description(Some(
                "`POST /auth/login`: `password` and `email` or `username` (a `username` \
                 containing `@` is taken as an email), within an optional tenant. A name or \
                 tenant that matches no account is `401 invalid_credentials`.",
            ))
            .item(fields)
            .item(
                AnyOfBuilder::new()
                    .item(named_by("email"))
                    .item(named_by("username")),
            )
            .into()
    }
}

impl ToSchema for LoginRequest {}

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
pub struct ValidateRequest<'a> {
    // Read, the token borrows from the body unless it holds JSON escapes.
    #[serde(default, borrow)]
    pub token: Option<Cow<'a, str>>,
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

/// The answer of `POST /auth/validate` for an active token, in two steps: the members that
/// depend on whom the token is for (the same for every token of a session, so they can be
/// rendered once and kept), then each token's times ([`introspection_answer`]). Together
/// they are the JSON of an [`Introspection`] with `active: true`. `T` is whatever string type
/// the roles and permissions are held in.
#[derive(Debug)]
pub struct ActiveIdentity<'a, T: Serialize = String> {
    pub sub: &'a str,
    pub sid: Option<&'a str>,
    pub roles: &'a [T],
    pub role: Option<&'a str>,
    pub permissions: &'a [T],
    pub tenant: &'a str,
    pub email: &'a str,
}

/// The members of an [`Introspection`] in their order on the wire, up to the times.
#[derive(Serialize)]
struct IdentityMembers<'a, T: Serialize> {
    active: bool,
    sub: &'a str,
    user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    roles: &'a [T],
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    permissions: &'a [T],
    tenant: &'a str,
    email: &'a str,
}

impl<T: Serialize> ActiveIdentity<'_, T> {
    /// The answer's opening, up to the times: `{"active":true,...,"email":"..."`.
    pub fn render(&self) -> String {
        let members = IdentityMembers {
            active: true,
            sub: self.sub,
            user_id: self.sub,
            sid: self.sid,
            roles: self.roles,
            role: self.role,
            permissions: self.permissions,
            tenant: self.tenant,
            email: self.email,
        };
        let mut json = serde_json::to_string(&members).unwrap_or_default();
        // A struct of strings serializes without fail, as an object: drop its closing brace.
        json.pop();
        json
    }
}

/// The identity headers of a forward-auth answer (`GET /auth/verify`).
pub const X_AUTH_USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
pub const X_AUTH_EMAIL: HeaderName = HeaderName::from_static("x-auth-email");
/// Comma-separated.
pub const X_AUTH_ROLES: HeaderName = HeaderName::from_static("x-auth-roles");
/// Comma-separated.
pub const X_AUTH_PERMISSIONS: HeaderName = HeaderName::from_static("x-auth-permissions");
pub const X_AUTH_TENANT: HeaderName = HeaderName::from_static("x-auth-tenant");
/// Empty for a token without a session.
pub const X_AUTH_SESSION_ID: HeaderName = HeaderName::from_static("x-auth-session-id");

impl<T: Serialize + AsRef<str>> ActiveIdentity<'_, T> {
    /// The `X-Auth-*` headers of a forward-auth answer for this identity. A member that cannot
    /// be a header value (it holds a control character) is left out rather than mangled.
    pub fn headers(&self) -> HeaderMap {
        let joined = |values: &[T]| match values {
            [one] => one.as_ref().to_owned(),
            many => many.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(","),
        };
        let members = [
            (X_AUTH_USER_ID, self.sub.to_owned()),
            (X_AUTH_EMAIL, self.email.to_owned()),
            (X_AUTH_ROLES, joined(self.roles)),
            (X_AUTH_PERMISSIONS, joined(self.permissions)),
            (X_AUTH_TENANT, self.tenant.to_owned()),
            (X_AUTH_SESSION_ID, self.sid.unwrap_or_default().to_owned()),
        ];
        // Room for the headers every answer adds (cache control, request id), so that a clone
        // of this map takes them without rehashing.
        let mut headers = HeaderMap::with_capacity(members.len() + 4);
        for (name, value) in members {
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.insert(name, value);
            }
        }
        headers
    }
}

/// The whole answer for a token whose identity rendered `opening` ([`ActiveIdentity::render`]).
pub fn introspection_answer(opening: &str, exp: i64, iat: i64) -> Vec<u8> {
    let mut digits = itoa::Buffer::new();
    let mut body = Vec::with_capacity(opening.len() + 48);
    body.extend_from_slice(opening.as_bytes());
    body.extend_from_slice(b",\"exp\":");
    body.extend_from_slice(digits.format(exp).as_bytes());
    body.extend_from_slice(b",\"iat\":");
    body.extend_from_slice(digits.format(iat).as_bytes());
    body.push(b'}');
    body
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
    ($($ty:ident $(<$lt:lifetime>)?),*) => {$(
        impl std::fmt::Debug for $ty$(<$lt>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($ty), "([redacted])"))
            }
        }
    )*};
}

redacted_debug!(
    RefreshRequest,
    LogoutRequest,
    ValidateRequest<'_>,
    CompatObtainRequest,
    CompatRefreshRequest,
    CompatTokenPair
);
redacted_debug!(TokenResponse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_auth_headers_carry_every_member_that_can_be_a_header_value() {
        let roles = ["admin".to_string(), "user".to_string()];
        let identity = ActiveIdentity {
            sub: "u-1",
            sid: None,
            roles: &roles,
            role: Some("admin"),
            permissions: &[],
            tenant: "bad\ntenant",
            email: "zoë@example.com",
        };
        let headers = identity.headers();
        assert_eq!(headers[X_AUTH_USER_ID], "u-1");
        assert_eq!(
            headers[X_AUTH_EMAIL].as_bytes(),
            "zoë@example.com".as_bytes()
        );
        assert_eq!(headers[X_AUTH_ROLES], "admin,user");
        assert_eq!(headers[X_AUTH_PERMISSIONS], "");
        assert_eq!(headers[X_AUTH_SESSION_ID], "");
        assert!(
            !headers.contains_key(X_AUTH_TENANT),
            "a newline cannot be sent"
        );
        assert_eq!(headers.len(), 5);
        // Room for the answer's own headers.
        assert!(headers.capacity() >= headers.len() + 2);

        let one = ["user".to_string()];
        let identity = ActiveIdentity {
            sid: Some("s-1"),
            roles: &one,
            permissions: &one,
            tenant: "acme",
            ..identity
        };
        let headers = identity.headers();
        assert_eq!(headers[X_AUTH_ROLES], "user");
        assert_eq!(headers[X_AUTH_PERMISSIONS], "user");
        assert_eq!(headers[X_AUTH_TENANT], "acme");
        assert_eq!(headers[X_AUTH_SESSION_ID], "s-1");
    }

    #[test]
    fn an_active_introspection_in_two_steps_is_the_owned_one() {
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
            let identity = ActiveIdentity {
                sub: "u-1",
                sid,
                roles: &roles,
                role,
                permissions: &permissions,
                tenant: "acme",
                email: "a\"b@example.com",
            };
            let answer = introspection_answer(&identity.render(), 2_000_000_000, 1_999_999_100);
            assert_eq!(
                String::from_utf8(answer).unwrap(),
                serde_json::to_string(&owned).unwrap()
            );
            assert_eq!(
                serde_json::from_slice::<Introspection>(&introspection_answer(
                    &identity.render(),
                    -1,
                    0
                ))
                .unwrap()
                .exp,
                Some(-1)
            );
        }
    }
}
