//! Local verification of auth-service access tokens for downstream services, and the service's
//! wire types ([`proto`]). See `docs/CLIENT.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), auth_client::VerifyError> {
//! use auth_client::{Audience, Verifier, VerifierSettings};
//! let settings = VerifierSettings::new("https://auth.example.com", Audience::expect("api"));
//! let verifier = Verifier::jwks("https://auth.example.com/.well-known/jwks.json", settings)?;
//! let claims = verifier.verify("eyJ...").await?;
//! println!("{} has roles {:?}", claims.sub, claims.roles);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod error;
mod extract;
mod fetch;
mod jwks;
mod layer;
mod verify;

/// The wire types of auth-service: request and response bodies, the problem body and its codes.
pub use auth_proto as proto;
pub use auth_proto::{ACCESS_TOKEN_TYP, AccessClaims};
pub use error::VerifyError;
pub use extract::AuthUser;
pub use jsonwebtoken::Algorithm;
pub use jwks::CacheSettings;
pub use layer::{Require, RequireLayer, require_auth, require_permission, require_role};
pub use verify::{Audience, Verifier, VerifierSettings};
