//! Access-token checks: one path from a token to a verified identity of a live session,
//! without a database query (signature and claims locally, cached; revoked sessions from the
//! in-memory revocation list).

use std::sync::Arc;

use crate::error::{Requirement, TokenRejection};
use crate::revocation::RevocationList;
use crate::token::{TokenService, Verified};
use crate::{CoreError, now_unix};

/// Checks access tokens. Cheap to share.
pub struct TokenChecks {
    tokens: Arc<TokenService>,
    revocations: Arc<RevocationList>,
}

impl TokenChecks {
    pub fn new(tokens: Arc<TokenService>, revocations: Arc<RevocationList>) -> Self {
        Self {
            tokens,
            revocations,
        }
    }

    /// A valid access token of a session that is not revoked.
    pub fn check(&self, token: &str) -> Result<Verified, CoreError> {
        let verified = self
            .tokens
            .check(token, now_unix())
            .map_err(CoreError::Token)?;
        if verified
            .identity
            .session_id
            .is_some_and(|sid| self.revocations.is_revoked(&sid))
        {
            return Err(CoreError::Token(TokenRejection::Revoked));
        }
        Ok(verified)
    }

    /// Refuses a verified token that lacks `role` or `permission` (when given).
    pub fn require(
        verified: &Verified,
        role: Option<&str>,
        permission: Option<&str>,
    ) -> Result<(), CoreError> {
        let identity = &verified.identity;
        if let Some(role) = role.filter(|r| !identity.has_role(r)) {
            return Err(CoreError::Forbidden(Requirement::Role(role.to_owned())));
        }
        if let Some(p) = permission.filter(|p| !identity.has_permission(p)) {
            return Err(CoreError::Forbidden(Requirement::Permission(p.to_owned())));
        }
        Ok(())
    }

    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    pub fn revocations(&self) -> &RevocationList {
        &self.revocations
    }
}
