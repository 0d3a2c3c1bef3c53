//! Errors of the domain layer. The HTTP layer maps each variant to a status and code in one place.

use std::time::Duration;

/// A boxed cause kept for the log; never shown to clients.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a token was refused. Only `Expired` is told apart on the wire (`token_expired`);
/// every other reason answers `token_invalid` and is kept for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("token missing")]
    Missing,
    #[error("token malformed")]
    Malformed,
    #[error("token algorithm not accepted")]
    Algorithm,
    #[error("token type not accepted")]
    Type,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("token signature invalid")]
    Signature,
    #[error("token claims invalid")]
    Claims,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    Immature,
    #[error("session revoked")]
    Revoked,
}

/// What can go wrong in a use case.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("account disabled")]
    AccountDisabled,
    /// The password was right, but a login needs a verified address
    /// (`AUTH_REQUIRE_VERIFIED_EMAIL`) and this one is not.
    #[error("email not verified")]
    EmailNotVerified,
    /// A mailed link's token (password reset, email verification) was refused.
    #[error("link refused: {0}")]
    ActionToken(#[from] crate::action_token::ActionTokenRefusal),
    /// The password was right but the account is locked for this long after failed logins
    /// (a wrong password on a locked account is [`CoreError::InvalidCredentials`]).
    #[error("account locked")]
    AccountLocked { retry_after: Duration },
    #[error("validation failed")]
    Validation(Vec<(String, String)>),
    #[error("weak password: {0}")]
    WeakPassword(String),
    #[error("email already registered")]
    EmailTaken,
    #[error("username already taken")]
    UsernameTaken,
    #[error("token refused: {0}")]
    Token(TokenRejection),
    /// A rotated refresh token came back after the grace window; its session is revoked.
    #[error("refresh token reused")]
    RefreshTokenReused,
    #[error("forbidden: {0}")]
    Forbidden(Requirement),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// Too much work queued (password hashing); retry after the given delay.
    #[error("overloaded")]
    Overloaded { retry_after: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(#[from] InternalError),
}

/// Why a change conflicts with what exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("a role of that name exists")]
    RoleExists,
    #[error("a tenant of that id exists")]
    TenantExists,
    #[error("built-in roles cannot be changed or deleted")]
    BuiltinRole,
}

/// What a caller lacked for a [`CoreError::Forbidden`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Requirement {
    #[error("role {0} required")]
    Role(String),
    #[error("permission {0} required")]
    Permission(String),
    #[error("signing keys are not used with JWT_ALGORITHM=HS256")]
    EdDsaSigning,
}

/// Failures of the service itself (never the client's doing): answered 500, logged whole.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error("minting an access token: {0}")]
    Mint(#[from] MintError),
    #[error("signing keys: {0}")]
    Keys(#[from] crate::keys::KeyVaultError),
    #[error("password hashing: {0}")]
    Hashing(#[from] HashingError),
    /// A rotated token's sealed successor opened, but not as a token pair.
    #[error("a sealed successor is not a token pair")]
    CorruptSuccessor,
    /// A rotation was written, yet its plan left no answer.
    #[error("a rotation finished without an answer")]
    RotationUnanswered,
}

/// Why an access token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("no active signing key")]
    NoSigningKey,
    #[error("encoding the token")]
    Encoding(#[source] BoxError),
    /// What was to be signed is not a header and claims ([`crate::token::TokenService::sign`]).
    #[error("not a signing input")]
    NotSigningInput,
}

/// Why a password could not be hashed or verified.
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error("the hashing places are closed")]
    Closed,
    #[error("the hashing threads stopped")]
    ThreadsStopped,
    #[error("a hashing task was lost")]
    TaskLost,
    #[error("argon2: {0}")]
    Argon2(String),
}

impl From<MintError> for CoreError {
    fn from(e: MintError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<HashingError> for CoreError {
    fn from(e: HashingError) -> Self {
        Self::Internal(e.into())
    }
}

impl CoreError {
    /// One invalid field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![(field.to_owned(), message.into())])
    }
}

/// Errors reported by repository implementations, with constraint violations already turned
/// into domain meaning.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("email already registered")]
    DuplicateEmail,
    #[error("username already taken")]
    DuplicateUsername,
    #[error("conflicting write: {0}")]
    Conflict(String),
    #[error("referenced row not found: {0}")]
    MissingReference(String),
    #[error("database unavailable")]
    Unavailable(#[source] BoxError),
    #[error("database error")]
    Other(#[source] BoxError),
}
