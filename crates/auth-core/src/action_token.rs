//! Single-use tokens mailed as links (password reset, email verification): 256 random bits,
//! base64url; only their SHA-256 is stored, bound to a user, a purpose and the address they
//! were sent to. The settings of the flows that mail them live here too.

use std::time::Duration;

use crate::domain::UserId;
use crate::secret::{b64url, b64url_decode, random_bytes, sha256};

/// What a token may be used for; a token of one purpose is unknown to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionPurpose {
    PasswordReset,
    VerifyEmail,
}

impl ActionPurpose {
    /// The name stored in `action_tokens.purpose`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::VerifyEmail => "verify_email",
        }
    }
}

/// A token as mailed: the secret itself, never stored nor logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ActionToken(String);

impl std::fmt::Debug for ActionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActionToken([redacted])")
    }
}

impl ActionToken {
    /// 256 random bits, base64url without padding (43 characters).
    pub fn generate() -> Self {
        Self(b64url(&random_bytes::<32>()))
    }

    /// What a client sends back; anything that cannot be one of ours is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 43 {
            return None;
        }
        let bytes = b64url_decode(text)?;
        (bytes.len() == 32).then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What is stored and looked up: base64url of the SHA-256 of the token. Lookups compare
    /// hashes of a 256-bit secret in the database, never the token itself.
    pub fn hash(&self) -> String {
        b64url(&sha256(self.0.as_bytes()))
    }
}

/// A token to store: its hash, for whom and what, sent where, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActionToken {
    pub hash: String,
    pub purpose: ActionPurpose,
    pub user: UserId,
    /// The address the token was mailed to (as the account had it).
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A stored token as a lookup finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionTokenRecord {
    pub user: UserId,
    pub email: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

impl ActionTokenRecord {
    /// Whether it can still be used at `now`; why not otherwise.
    pub fn usable(&self, now: i64) -> Result<(), ActionTokenRefusal> {
        if self.used_at.is_some() {
            Err(ActionTokenRefusal::Invalid)
        } else if self.expires_at <= now {
            Err(ActionTokenRefusal::Expired)
        } else {
            Ok(())
        }
    }
}

/// Why a token was refused: answered `token_expired`, or `token_invalid` for every other
/// reason (unknown, used, superseded, of another purpose, for an address the account no
/// longer has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ActionTokenRefusal {
    #[error("the link has expired")]
    Expired,
    #[error("the link is not valid (unknown, already used or replaced by a newer one)")]
    Invalid,
}

/// The mailed flows: how long their tokens last, whether sign-up mails a verification link,
/// and whether a login needs a verified address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSettings {
    pub reset_ttl: Duration,
    pub verify_ttl: Duration,
    /// Login answers `403 email_not_verified` until the address is verified; sign-up with a
    /// taken address answers as a new one (and mails the owner).
    pub require_verified_email: bool,
    /// Sign-up and email changes mail a verification link.
    pub send_verification: bool,
}

impl Default for FlowSettings {
    fn default() -> Self {
        Self {
            reset_ttl: Duration::from_secs(30 * 60),
            verify_ttl: Duration::from_secs(48 * 3600),
            require_verified_email: false,
            send_verification: true,
        }
    }
}

impl FlowSettings {
    /// Whether verification links are mailed (always when verified addresses are required).
    pub fn mails_verification(&self) -> bool {
        self.send_verification || self.require_verified_email
    }

    /// When a token of `purpose` issued at `now` expires.
    pub fn expiry(&self, purpose: ActionPurpose, now: i64) -> i64 {
        let ttl = match purpose {
            ActionPurpose::PasswordReset => self.reset_ttl,
            ActionPurpose::VerifyEmail => self.verify_ttl,
        };
        now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_hashed_and_never_printed() {
        let t = ActionToken::generate();
        assert_eq!(t.as_str().len(), 43);
        assert_eq!(ActionToken::parse(t.as_str()), Some(t.clone()));
        assert_ne!(t.hash(), t.as_str());
        assert_eq!(t.hash(), ActionToken::parse(t.as_str()).unwrap().hash());
        assert!(!format!("{t:?}").contains(t.as_str()));
        for bad in ["", "short", &"a".repeat(44), &"!".repeat(43)] {
            assert!(ActionToken::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_record_is_usable_only_unused_and_before_its_expiry() {
        let record = |used_at, expires_at| ActionTokenRecord {
            user: UserId::generate(),
            email: "a@example.com".into(),
            expires_at,
            used_at,
        };
        assert_eq!(record(None, 11).usable(10), Ok(()));
        assert_eq!(
            record(None, 10).usable(10),
            Err(ActionTokenRefusal::Expired)
        );
        assert_eq!(
            record(Some(5), 11).usable(10),
            Err(ActionTokenRefusal::Invalid)
        );
    }
}
