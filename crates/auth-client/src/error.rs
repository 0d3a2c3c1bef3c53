//! Why a token was refused, and how that maps to an HTTP answer.

use auth_proto::ErrorCode;

/// Why a token was not accepted. Every hostile input ends here, never in a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// Not a JWT, or one too large, or with a header we cannot accept (`crit`).
    #[error("malformed token")]
    Malformed,
    /// The header's `alg` is not the pinned algorithm.
    #[error("unexpected algorithm")]
    Algorithm,
    /// The header's `typ` is not `at+jwt`: not an access token.
    #[error("not an access token")]
    Type,
    /// No published key has the token's `kid` (after a refetch, when one was allowed).
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` in the future.
    #[error("token not yet valid")]
    Immature,
    /// `iss`, `aud` or a required claim is wrong or missing.
    #[error("invalid claims")]
    Claims,
    /// The key set could not be fetched and no earlier one is known.
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
    /// The token is valid but lacks the role or permission a route requires.
    #[error("forbidden")]
    Forbidden,
    /// Bad verifier settings (an unusable JWKS URL or algorithm).
    #[error("bad verifier settings: {0}")]
    Settings(String),
}

impl VerifyError {
    /// The HTTP status for this refusal: 401, 403, 503 for missing keys, 500 for settings.
    pub fn status(&self) -> u16 {
        match self {
            Self::Forbidden => 403,
            Self::KeysUnavailable(_) => 503,
            Self::Settings(_) => 500,
            _ => 401,
        }
    }

    /// The stable code of the problem body, as auth-service itself answers.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Expired => ErrorCode::TokenExpired,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::KeysUnavailable(_) => ErrorCode::Unavailable,
            Self::Settings(_) => ErrorCode::Internal,
            _ => ErrorCode::TokenInvalid,
        }
    }
}

pub(crate) fn rejection(kind: &jsonwebtoken::errors::ErrorKind) -> VerifyError {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => VerifyError::Expired,
        ErrorKind::ImmatureSignature => VerifyError::Immature,
        ErrorKind::InvalidSignature => VerifyError::Signature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => VerifyError::Algorithm,
        ErrorKind::InvalidIssuer
        | ErrorKind::InvalidAudience
        | ErrorKind::InvalidSubject
        | ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_) => VerifyError::Claims,
        _ => VerifyError::Malformed,
    }
}
