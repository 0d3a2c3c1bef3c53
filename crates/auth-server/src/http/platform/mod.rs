//! Token checks for the platform: introspection (`/auth/validate`) and forward-auth for
//! gateways (`/auth/verify`). Neither touches the database: signature and claims are checked
//! locally and revoked sessions come from the in-memory revocation list.

mod render;

use auth_core::CoreError;
use auth_core::service::TokenChecks;
use auth_core::token::{Identity, Verified};
use auth_proto::{ErrorCode, Introspection, Problem, ValidateRequest, introspection_answer};
use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{Bearer, MaybeJsonBytes, bearer_token, parse_json};
use super::respond::no_store;
use super::route::{Group, Needs};
use crate::state::AppState;

pub fn groups() -> Vec<Group> {
    // Token checks answer from memory: no database, nothing to complete.
    vec![
        Group::new(Needs::NOTHING)
            .routes(routes!(validate))
            .routes(routes!(verify)),
    ]
}

/// The introspection of an active token: its identity's members, rendered once for all tokens
/// of that identity, and the token's times.
fn active(token: &Verified) -> Response {
    let body = render::introspection(&token.identity, |opening| {
        introspection_answer(opening, token.exp, token.iat)
    });
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
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
    MaybeJsonBytes(body): MaybeJsonBytes,
) -> Result<Response, ApiError> {
    // The token is read in place from the body (or the request's headers), not copied. A body
    // of JSON `null` is no body, as the document allows.
    let body: Option<ValidateRequest<'_>> = match body.as_deref() {
        Some(bytes) => parse_json(bytes)?,
        None => None,
    };
    let bearer = bearer.ok();
    let token = body
        .as_ref()
        .and_then(|b| b.token.as_deref())
        .or(bearer.as_deref());
    let response = match token.map(|t| state.checks.check(t)) {
        Some(Ok(verified)) => active(&verified),
        Some(Err(e)) => {
            // An inactive token is an answer (`200`, `active: false`), not a refusal: logged
            // at DEBUG only, so that a flood of bad tokens does not fill the log.
            tracing::debug!(reason = %e, "token inactive");
            Json(Introspection::default()).into_response()
        }
        None => Json(Introspection::default()).into_response(),
    };
    Ok(no_store(response))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
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
        (status = 400, description = "`malformed_request`: the query is not `role` and `permission` once each", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`token_invalid`, `token_expired` or `token_revoked`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the role or permission is missing", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let query = verify_query(request.uri().query())?;
    // The token is read in place from the request's headers, not copied.
    let token = bearer_token(request.headers()).map_err(CoreError::Token)?;
    let verified = state.checks.check(token)?;
    TokenChecks::require(
        &verified,
        query.role.as_deref(),
        query.permission.as_deref(),
    )?;
    Ok(identity_headers(&verified.identity))
}

/// The `role` and `permission` asked for, if any (most gateways ask for neither).
fn verify_query(query: Option<&str>) -> Result<VerifyQuery, ApiError> {
    let Some(query) = query else {
        return Ok(VerifyQuery::default());
    };
    serde_urlencoded::from_str(query).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest,
            "Malformed query",
        )
        .detail(e.to_string())
    })
}

/// A verified identity as `X-Auth-*` headers of an empty 200 answer.
fn identity_headers(identity: &Identity) -> Response {
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    render::forward_auth_headers(identity, |rendered| headers.clone_from(rendered));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
