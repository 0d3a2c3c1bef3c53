//! Who is calling: the bearer token ([`Bearer`]), the verified caller ([`Caller`]) with the
//! tenants it may act on ([`TenantScope`]), a permission required of it ([`RequirePermission`],
//! or a route group's declared permission, checked by [`require_permission`]), and where the
//! request came from ([`Client`]).

use std::marker::PhantomData;
use std::net::SocketAddr;

use auth_core::CoreError;
use auth_core::directory::Actor;
use auth_core::error::TokenRejection;
use auth_core::service::TokenChecks;
use auth_core::session::ClientInfo;
use auth_core::token::{Identity, Verified};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::forwarded::client_ip;
use crate::http::error::ApiError;
use crate::state::AppState;

pub use auth_core::directory::TenantScope;

/// The raw bearer token of the request, if any was sent.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, TokenRejection> {
    // Read as bytes: a token is checked in full by whoever verifies it, so checking its every
    // byte here too (as `HeaderValue::to_str` does) would only cost time.
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(TokenRejection::Missing)?
        .as_bytes();
    let space = value
        .iter()
        .position(|&b| b == b' ')
        .ok_or(TokenRejection::Malformed)?;
    let (scheme, token) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(TokenRejection::Missing);
    }
    let token = token.trim_ascii();
    if token.is_empty() {
        return Err(TokenRejection::Missing);
    }
    std::str::from_utf8(token).map_err(|_| TokenRejection::Malformed)
}

/// The raw bearer token, or why there is none; verification is left to the handler.
pub struct Bearer(pub Result<String, TokenRejection>);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Bearer(bearer_token(&parts.headers).map(str::to_owned)))
    }
}

/// Where the request came from: the peer address, or the client named by `X-Forwarded-For`
/// or `Forwarded` when the peer is a trusted proxy ([`client_ip`]); the user agent; and the
/// request id, for audit events.
pub struct Client(pub ClientInfo);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let ip = peer.map(|peer| client_ip(peer, &parts.headers, &state.trusted_proxies));
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Set by the request-id middleware (the caller's when sane, else a new one).
        let request_id = parts
            .headers
            .get(&crate::http::request_id::X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Client(ClientInfo {
            ip: ip.map(|ip| ip.to_string()),
            user_agent,
            request_id,
        }))
    }
}

/// The verified caller: a valid access token of a live session, and its tenant scope.
#[derive(Debug, Clone)]
pub struct Caller {
    pub verified: Verified,
    pub scope: TenantScope,
}

impl Caller {
    pub fn identity(&self) -> &Identity {
        &self.verified.identity
    }

    /// The caller as the admin API's actor.
    pub fn actor(&self) -> Actor {
        let identity = self.identity();
        Actor::new(
            identity.user_id,
            identity.tenant.clone(),
            identity.permissions.to_vec(),
        )
    }

    /// The caller of a request with these headers, holding `permission` when one is asked
    /// for: 401 without a valid token, 403 `forbidden` without the permission.
    pub fn authorize(
        checks: &TokenChecks,
        headers: &HeaderMap,
        permission: Option<&str>,
    ) -> Result<Self, ApiError> {
        let token = bearer_token(headers).map_err(CoreError::Token)?;
        Self::of_token(checks, token, permission)
    }

    fn of_token(
        checks: &TokenChecks,
        token: &str,
        permission: Option<&str>,
    ) -> Result<Self, ApiError> {
        let verified = checks.check(token)?;
        TokenChecks::require(&verified, None, permission)?;
        let scope = TenantScope::of(&verified.identity.tenant, &verified.identity.permissions);
        Ok(Self { verified, scope })
    }

    /// Verifies a bearer token taken with [`Bearer`].
    pub fn from_bearer(
        bearer: Result<String, TokenRejection>,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let token = bearer.map_err(CoreError::Token)?;
        Self::of_token(&state.checks, &token, None)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// The caller checked by its route group ([`require_permission`]), or else verified now.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        Caller::authorize(&state.checks, &parts.headers, None)
    }
}

/// Checks the permission a route group declares ([`crate::http::route::Needs::permission`])
/// before the handler runs, and hands the [`Caller`] on to it.
pub async fn require_permission(
    State((state, permission)): State<(AppState, &'static str)>,
    mut request: Request,
    next: Next,
) -> Response {
    match Caller::authorize(&state.checks, request.headers(), Some(permission)) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refused) => refused.into_response(),
    }
}

/// A permission's name, as a type (for [`RequirePermission`]).
pub trait PermissionName {
    const NAME: &'static str;
}

/// The caller, holding the permission `P`; 401 or 403 otherwise.
pub struct RequirePermission<P: PermissionName>(pub Caller, PhantomData<P>);

impl<P: PermissionName> FromRequestParts<AppState> for RequirePermission<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::authorize(&state.checks, &parts.headers, Some(P::NAME))?;
        Ok(Self(caller, PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use auth_core::directory::permissions::SUPERADMIN;
    use auth_core::domain::{SessionId, TenantId};
    use auth_core::revocation::RevocationList;
    use auth_proto::ErrorCode;
    use axum::http::{HeaderValue, StatusCode};

    use super::*;

    fn checks() -> TokenChecks {
        let tokens = auth_core::testing::hs256_tokens();
        TokenChecks::new(Arc::new(tokens), Arc::new(RevocationList::starting_at(0)))
    }

    fn bearer(
        checks: &TokenChecks,
        tenant: &str,
        permissions: &[&str],
        sid: SessionId,
    ) -> HeaderMap {
        let user = auth_core::testing::user(tenant, permissions);
        let token = checks
            .tokens()
            .mint(&user, Some(sid), auth_core::now_unix())
            .unwrap()
            .token;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::try_from(format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    fn refused(result: Result<Caller, ApiError>) -> (StatusCode, ErrorCode) {
        let e = result.expect_err("refused");
        (e.status(), e.code())
    }

    #[test]
    fn callers_are_refused_without_a_token_or_the_permission_and_scoped_to_their_tenant() {
        let checks = checks();
        let sid = SessionId::generate();
        let none = HeaderMap::new();
        assert_eq!(
            refused(Caller::authorize(&checks, &none, Some("users:read"))),
            (StatusCode::UNAUTHORIZED, ErrorCode::TokenInvalid)
        );
        let plain = bearer(&checks, "acme", &[], sid);
        assert_eq!(
            refused(Caller::authorize(&checks, &plain, Some("users:read"))),
            (StatusCode::FORBIDDEN, ErrorCode::Forbidden)
        );
        let caller = Caller::authorize(&checks, &plain, None).unwrap();
        assert_eq!(caller.scope, TenantScope::Only(TenantId::trusted("acme")));

        let admin = bearer(&checks, "acme", &["users:read"], SessionId::generate());
        let caller = Caller::authorize(&checks, &admin, Some("users:read")).unwrap();
        assert!(caller.scope.allows(&TenantId::trusted("acme")));
        assert!(
            !caller.scope.allows(&TenantId::trusted("other")),
            "an admin of one tenant does not reach another"
        );

        let superadmin = bearer(
            &checks,
            "default",
            &["users:read", SUPERADMIN],
            SessionId::generate(),
        );
        let caller = Caller::authorize(&checks, &superadmin, Some("users:read")).unwrap();
        assert_eq!(caller.scope, TenantScope::All);
        assert!(caller.scope.allows(&TenantId::trusted("other")));

        // A token of a revoked session is refused whatever it holds.
        checks.revocations().insert([(sid, 1)]);
        assert_eq!(
            refused(Caller::authorize(&checks, &plain, None)),
            (StatusCode::UNAUTHORIZED, ErrorCode::TokenRevoked)
        );
    }
}
