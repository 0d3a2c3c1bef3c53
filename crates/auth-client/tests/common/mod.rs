//! Token makers shared by the crate's tests: claims, HS256 and Ed25519 signing.
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://auth.test";
pub const AUDIENCE: &str = "platform";
pub const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims as the service signs them, valid for 15 minutes from now.
pub fn claims() -> Value {
    let now = now();
    json!({
        "iss": ISSUER, "sub": "0190a5c4-0000-7000-8000-000000000001", "aud": AUDIENCE,
        "exp": now + 900, "iat": now, "jti": "j-1", "client_id": "auth-service",
        "tenant": "default", "roles": ["user"], "permissions": ["profile:read"], "role": "user",
        "email": "a@example.com", "email_verified": true,
    })
}

pub fn header(alg: Algorithm, kid: Option<&str>) -> Header {
    let mut header = Header::new(alg);
    header.typ = Some("at+jwt".into());
    header.kid = kid.map(str::to_owned);
    header
}

pub fn hs256(claims: &Value) -> String {
    sign_hs(&header(Algorithm::HS256, None), claims, SECRET)
}

pub fn sign_hs(header: &Header, claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// An Ed25519 key made from a seed: its JWK and a signer.
pub struct EdKey {
    pub kid: String,
    seed: [u8; 32],
}

impl EdKey {
    pub fn new(kid: &str, seed: u8) -> Self {
        Self {
            kid: kid.to_owned(),
            seed: [seed; 32],
        }
    }

    pub fn public(&self) -> [u8; 32] {
        ed25519_dalek::SigningKey::from_bytes(&self.seed)
            .verifying_key()
            .to_bytes()
    }

    pub fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(self.public()),
               "kid": self.kid, "alg": "EdDSA", "use": "sig"})
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&self.seed);
        let header = header(Algorithm::EdDSA, Some(&self.kid));
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&der)).unwrap()
    }
}

/// A token whose parts are these JSON texts, with a made-up signature.
pub fn raw(header: &str, payload: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(b"signature")
    )
}
