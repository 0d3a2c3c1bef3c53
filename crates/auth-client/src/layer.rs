//! Tower layers that admit a request only with a valid token ([`require_auth`]), a role
//! ([`require_role`]) or a permission ([`require_permission`]); the verified identity is left
//! in the request for the [`AuthUser`] extractor.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use auth_proto::AccessClaims;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::error::VerifyError;
use crate::extract::AuthUser;
use crate::verify::Verifier;

#[derive(Debug, Clone)]
enum Requirement {
    Authenticated,
    Role(Arc<str>),
    Permission(Arc<str>),
}

impl Requirement {
    fn admits(&self, claims: &AccessClaims) -> bool {
        match self {
            Self::Authenticated => true,
            Self::Role(role) => claims.has_role(role),
            Self::Permission(permission) => claims.has_permission(permission),
        }
    }
}

/// Admits requests whose bearer token verifies and meets a requirement: 401 otherwise, 403
/// for a valid token without the role or permission.
#[derive(Debug, Clone)]
pub struct RequireLayer {
    verifier: Verifier,
    requirement: Requirement,
}

/// Any valid token.
pub fn require_auth(verifier: &Verifier) -> RequireLayer {
    RequireLayer {
        verifier: verifier.clone(),
        requirement: Requirement::Authenticated,
    }
}

/// A valid token whose `roles` hold `role`.
pub fn require_role(verifier: &Verifier, role: &str) -> RequireLayer {
    RequireLayer {
        verifier: verifier.clone(),
        requirement: Requirement::Role(role.into()),
    }
}

/// A valid token whose `permissions` hold `permission` (`users:write`, ...).
pub fn require_permission(verifier: &Verifier, permission: &str) -> RequireLayer {
    RequireLayer {
        verifier: verifier.clone(),
        requirement: Requirement::Permission(permission.into()),
    }
}

impl<S> Layer<S> for RequireLayer {
    type Service = Require<S>;

    fn layer(&self, inner: S) -> Require<S> {
        Require {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of a [`RequireLayer`].
#[derive(Debug, Clone)]
pub struct Require<S> {
    inner: S,
    layer: RequireLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request> for Require<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone that was made ready goes with the request; a fresh one stays here.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let layer = self.layer.clone();
        Box::pin(async move {
            let claims = match request.extensions().get::<AuthUser>() {
                Some(user) => Ok(user.0.clone()),
                None => layer.verifier.authenticate(request.headers()).await,
            };
            let admitted = claims.and_then(|claims| {
                if layer.requirement.admits(&claims) {
                    Ok(claims)
                } else {
                    Err(VerifyError::Forbidden)
                }
            });
            match admitted {
                Ok(claims) => {
                    request.extensions_mut().insert(AuthUser(claims));
                    inner.call(request).await
                }
                Err(refused) => Ok(refused.into_response()),
            }
        })
    }
}
