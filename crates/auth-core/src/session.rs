//! Sessions and refresh tokens: opaque 256-bit tokens of which only a SHA-256 is stored, the
//! expiry rules, and the sealed successor kept for the grace window.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::{SessionId, TenantId, UserId};
use crate::lockout::LockoutPolicy;
use crate::secret::{Sealer, b64url, b64url_decode, random_bytes, sha256};

/// Lifetimes of sessions and the reuse grace window.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// Idle timeout, extended by each refresh.
    pub idle: Duration,
    /// Absolute lifetime from login; no refresh extends past it.
    pub absolute: Duration,
    /// How long after a rotation the rotated token still gets the same successor back.
    pub grace: Duration,
    /// When failed logins lock an account.
    pub lockout: LockoutPolicy,
    /// A login needs a verified address (`403 email_not_verified` otherwise).
    pub require_verified_email: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(7 * 24 * 3600),
            absolute: Duration::from_secs(30 * 24 * 3600),
            grace: Duration::from_secs(10),
            lockout: LockoutPolicy::default(),
            require_verified_email: false,
        }
    }
}

impl SessionSettings {
    /// The idle expiry after activity at `now`, capped by the absolute expiry.
    pub fn idle_expiry(&self, now: i64, absolute_expires_at: i64) -> i64 {
        (now + self.idle.as_secs() as i64).min(absolute_expires_at)
    }
}

/// Where a request came from, recorded with sessions and audit events (sessions keep the
/// address and user agent; audit events also the request id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub tenant: TenantId,
    pub client: ClientInfo,
    pub created_at: i64,
    pub last_used_at: i64,
    pub idle_expires_at: i64,
    pub absolute_expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl Session {
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.idle_expires_at && now < self.absolute_expires_at
    }
}

/// Why a session was revoked, as stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// Its owner logged out of it.
    Logout,
    /// Its owner logged out of every session.
    LogoutAll,
    /// Its owner ended it from the list of sessions.
    RevokedByUser,
    /// A rotated refresh token of it came back after the grace window.
    RefreshTokenReused,
    /// An administrator ended it (or every session of its user).
    RevokedByAdmin,
    /// Its user was disabled.
    UserDisabled,
    /// Its user changed their password (every session but the one that changed it).
    PasswordChanged,
    /// An administrator set the user's password.
    PasswordSet,
    /// The user set a new password with a reset link.
    PasswordReset,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::RevokedByUser => "revoked_by_user",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::RevokedByAdmin => "revoked_by_admin",
            Self::UserDisabled => "user_disabled",
            Self::PasswordChanged => "password_changed",
            Self::PasswordSet => "password_set",
            Self::PasswordReset => "password_reset",
        }
    }
}

/// A refresh token as the client holds it. Never stored; never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

impl RefreshToken {
    /// 256 random bits, base64url without padding (43 characters).
    pub fn generate() -> Self {
        Self(b64url(&random_bytes::<32>()))
    }

    /// Accepts what a client sends back; anything that cannot be one of ours is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = b64url_decode(text)?;
        (bytes.len() == 32).then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What is stored: base64url of the SHA-256 of the token.
    pub fn hash(&self) -> String {
        b64url(&sha256(self.0.as_bytes()))
    }

    /// A sealer only the holder of this token can reproduce.
    fn sealer(&self) -> Sealer {
        Sealer::derive(self.0.as_bytes(), "refresh-successor")
    }

    /// Seals the successor pair under a key derived from this (parent) token.
    pub fn seal_successor(&self, successor: &Successor) -> String {
        let json = serde_json::to_vec(successor).expect("successor serializes");
        b64url(&self.sealer().seal(&json, self.hash().as_bytes()))
    }

    /// Opens what [`RefreshToken::seal_successor`] sealed with this same token.
    pub fn open_successor(&self, sealed: &str) -> Option<Successor> {
        let bytes = b64url_decode(sealed)?;
        let json = self.sealer().open(&bytes, self.hash().as_bytes())?;
        serde_json::from_slice(&json).ok()
    }
}

/// The pair issued by a rotation, kept sealed in the parent's row for the grace window.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Successor {
    pub refresh_token: String,
    #[serde(flatten)]
    pub access: SealedAccess,
    pub access_expires_at: i64,
}

/// The access token of a sealed pair.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SealedAccess {
    /// Its signing input ([`crate::token::TokenService::prepare`]): a refresh seals the pair
    /// before its write and signs after it, off the database connection; a replay signs the
    /// input again, which gives the same token (signatures are deterministic).
    #[serde(rename = "access_input")]
    Unsigned(String),
    /// The whole token, as pairs were sealed until signing moved after the write: a row an
    /// earlier version rotated is still answered within its grace window.
    #[serde(rename = "access_token")]
    Signed(String),
}

impl std::fmt::Debug for SealedAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unsigned(_) => "Unsigned([redacted])",
            Self::Signed(_) => "Signed([redacted])",
        })
    }
}

impl std::fmt::Debug for Successor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Successor([redacted])")
    }
}

/// What the store knows about a presented refresh token: its session and the session's user
/// (with current roles), read together.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub session: Session,
    pub user: crate::domain::User,
    pub used_at: Option<i64>,
    pub successor_sealed: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_256_bits_and_only_their_hash_is_kept() {
        let t = RefreshToken::generate();
        assert_eq!(t.as_str().len(), 43);
        assert_eq!(RefreshToken::parse(t.as_str()), Some(t.clone()));
        assert_ne!(t.hash(), t.as_str());
        assert_eq!(t.hash().len(), 43);
        assert!(RefreshToken::parse("short").is_none());
        assert!(RefreshToken::parse("eyJhbGciOiJFZERTQSJ9.e30.sig").is_none());
        assert!(!format!("{t:?}").contains(t.as_str()));
    }

    #[test]
    fn only_the_parent_token_opens_its_sealed_successor() {
        let parent = RefreshToken::generate();
        let successor = Successor {
            refresh_token: "next".into(),
            access: SealedAccess::Unsigned("header.claims".into()),
            access_expires_at: 5,
        };
        let sealed = parent.seal_successor(&successor);
        assert!(!sealed.contains("next") && !sealed.contains("claims"));
        assert_eq!(parent.open_successor(&sealed), Some(successor));
        assert_eq!(RefreshToken::generate().open_successor(&sealed), None);
    }

    #[test]
    fn pairs_sealed_with_the_whole_access_token_still_open() {
        // The form sealed before signing moved after the rotation's write.
        let parent = RefreshToken::generate();
        let earlier = br#"{"refresh_token":"next","access_token":"h.c.s","access_expires_at":5}"#;
        let sealed = b64url(&parent.sealer().seal(earlier, parent.hash().as_bytes()));
        let opened = parent.open_successor(&sealed).expect("opens");
        assert_eq!(opened.refresh_token, "next");
        assert_eq!(opened.access, SealedAccess::Signed("h.c.s".into()));
        assert_eq!(opened.access_expires_at, 5);
        let now = parent.seal_successor(&Successor {
            access: SealedAccess::Unsigned("h.c".into()),
            ..opened
        });
        let json = parent
            .sealer()
            .open(&b64url_decode(&now).unwrap(), parent.hash().as_bytes());
        let json: serde_json::Value = serde_json::from_slice(&json.unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"refresh_token": "next", "access_input": "h.c", "access_expires_at": 5})
        );
    }

    #[test]
    fn idle_expiry_slides_but_never_past_the_absolute_expiry() {
        let s = SessionSettings::default();
        assert_eq!(s.idle_expiry(100, 1_000_000_000), 100 + 7 * 24 * 3600);
        assert_eq!(s.idle_expiry(100, 200), 200);
    }
}
