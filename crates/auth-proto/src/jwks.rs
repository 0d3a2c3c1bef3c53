//! JSON Web Key Set (RFC 7517) as published at `/.well-known/jwks.json`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One public key. Only Ed25519 (`kty: OKP`, `crv: Ed25519`) keys are published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub usage: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}
