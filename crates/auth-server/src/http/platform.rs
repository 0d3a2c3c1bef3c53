//! Token checks for the platform: introspection (`/auth/validate`) and forward-auth for
//! gateways (`/auth/verify`). Neither touches the database: signature and claims are checked
//! locally and revoked sessions come from the in-memory revocation list.

use auth_core::CoreError;
use auth_core::service::AuthService;
use auth_core::token::{Identity, Verified};
use auth_proto::{Introspection, Problem, ValidateRequest, introspection_answer};
use auth_store::Store;
use axum::Json;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::no_store;
use super::error::ApiError;
use super::extract::{Bearer, MaybeJson, bearer_token};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(validate))
        .routes(routes!(verify))
}

/// The introspection of an active token: its identity's members, rendered once for all tokens
/// of that identity, and the token's times.
fn active(token: &Verified) -> Response {
    let body = introspection_answer(token.identity.introspection(), token.exp, token.iat);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Introspect an access token (RFC 7662 style): `{active: true, ...claims}` for a valid token
/// of a live session, `{active: false}` for anything else. Never an error for a bad token.
#[utoipa::path(post, path = "/auth/validate", tag = "platform",
    request_body(content = Option<ValidateRequest>, description = "Optional when the token is sent as a bearer token"),
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = Introspection),
        (status = 400, description = "`malformed_request`: the body is not JSON", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn validate(
    State(state): State<AppState>,
    Bearer(bearer): Bearer,
    MaybeJson(body): MaybeJson<ValidateRequest>,
) -> Response {
    let token = body.and_then(|b| b.token).or(bearer.ok());
    let token = token.as_deref();
    let response = match token.map(|t| state.auth.check(t)) {
        Some(Ok(verified)) => active(&verified),
        Some(Err(e)) => {
            tracing::info!(reason = %e, "token inactive");
            Json(Introspection::default()).into_response()
        }
        None => Json(Introspection::default()).into_response(),
    };
    no_store(response)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct VerifyQuery {
    /// Answer 403 unless the token has this role.
    role: Option<String>,
    /// Answer 403 unless the token has this permission.
    permission: Option<String>,
}

/// Forward-auth for nginx `auth_request` and Traefik `forwardAuth`: 200 with the identity in
/// `X-Auth-*` headers, 401 without a valid token, 403 when `role` or `permission` is missing.
#[utoipa::path(get, path = "/auth/verify", tag = "platform",
    params(VerifyQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Authenticated; identity in `X-Auth-User-Id`, `X-Auth-Email`, `X-Auth-Roles`, `X-Auth-Permissions`, `X-Auth-Tenant`, `X-Auth-Session-Id`"),
        (status = 401, description = "`token_invalid`, `token_expired` or `token_revoked`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the role or permission is missing", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify(
    State(state): State<AppState>,
    Query(query): Query<VerifyQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    // The token is read in place from the request's headers, not copied.
    let token = bearer_token(request.headers()).map_err(CoreError::Token)?;
    let verified = state.auth.check(token)?;
    AuthService::<Store>::require(
        &verified,
        query.role.as_deref(),
        query.permission.as_deref(),
    )?;
    Ok(identity_headers(&verified.identity))
}

/// A verified identity as `X-Auth-*` headers of an empty 200 answer.
fn identity_headers(identity: &Identity) -> Response {
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.reserve(10);
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    put("x-auth-user-id", &identity.sub);
    put("x-auth-email", &identity.email);
    put("x-auth-roles", &join(&identity.roles));
    put("x-auth-permissions", &join(&identity.permissions));
    put("x-auth-tenant", &identity.tenant);
    put(
        "x-auth-session-id",
        identity.sid.as_deref().unwrap_or_default(),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Comma-separated values, without a new allocation for the common single value.
fn join(values: &[Box<str>]) -> std::borrow::Cow<'_, str> {
    match values {
        [] => "".into(),
        [one] => (**one).into(),
        many => many.join(",").into(),
    }
}
