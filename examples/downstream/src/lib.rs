//! An example service downstream of auth-service: `/hello` needs a valid access token and
//! `/admin` the role `admin`; tokens are verified locally against the published JWKS.
#![forbid(unsafe_code)]

use auth_client::{Audience, AuthUser, Verifier, VerifierSettings, require_role};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

/// The verifier from `AUTH_JWKS_URL`, `AUTH_ISSUER` and `AUTH_AUDIENCE` (`none`: tokens
/// without an audience), read through `var` (`std::env::var` in the binary).
pub fn verifier_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Verifier, String> {
    let required = |name: &str| var(name).ok_or_else(|| format!("{name} is required"));
    let url = required("AUTH_JWKS_URL")?;
    let issuer = required("AUTH_ISSUER")?;
    let audience = Audience::from_setting(&required("AUTH_AUDIENCE")?);
    Verifier::jwks(&url, VerifierSettings::new(issuer, audience)).map_err(|e| e.to_string())
}

/// The service's routes.
pub fn router(verifier: Verifier) -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/admin", get(admin).layer(require_role(&verifier, "admin")))
        .layer(Extension(verifier))
}

async fn hello(user: AuthUser) -> Json<Value> {
    Json(json!({"hello": user.email, "sub": user.sub, "roles": user.roles}))
}

async fn admin(user: AuthUser) -> Json<Value> {
    Json(json!({"admin": user.sub}))
}
