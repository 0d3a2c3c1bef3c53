//! The audit trail: what happened (an [`AuditKind`]), to whom, from where. Events are recorded
//! on the unit of work of the change they describe ([`crate::repo::Record`]), so an event is
//! stored exactly when its change is.

use std::future::Future;

use crate::StoreError;
use crate::domain::{SessionId, TenantId, UserId};
use crate::session::ClientInfo;

/// The kinds of security events, stored by their dotted names: `<action>.<result>` for what
/// a caller attempts (`login.failed`), `<object>.<change>` for what changes
/// (`user.disabled`). docs/AUDIT.md lists them with their meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    LoginSucceeded,
    /// Details say why: `unknown_account`, `wrong_password` or `account_disabled`.
    LoginFailed,
    /// A login refused because the account is locked.
    LoginLocked,
    TokenRefreshed,
    RefreshTokenReused,
    Logout,
    LogoutAll,
    SessionRevoked,
    /// A user signed up (`POST /auth/signup`).
    SignedUp,
    /// An administrator (or the command line) created a user.
    UserCreated,
    UserUpdated,
    RolesChanged,
    UserDisabled,
    UserEnabled,
    UserUnlocked,
    /// The account reached the lockout threshold and is locked.
    UserLocked,
    UserSessionsRevoked,
    UserDeleted,
    RoleCreated,
    RoleUpdated,
    RoleDeleted,
    TenantCreated,
    /// The user changed their password (`POST /auth/password/change`).
    PasswordChanged,
    /// An administrator set a user's password.
    PasswordSet,
    /// A login re-hashed an outdated (legacy) password hash to the current scheme.
    PasswordRehashed,
    /// A password reset was asked for (`POST /auth/password-reset/request`); details say
    /// whether a link was mailed.
    PasswordResetRequested,
    /// The user set a new password with a reset link (every session revoked).
    PasswordReset,
    /// The user verified their address with a link.
    EmailVerified,
    /// A sign-up named the address of an existing account under
    /// `AUTH_REQUIRE_VERIFIED_EMAIL` (answered as a new account; the owner was mailed).
    SignupFailed,
    /// `users import` created or updated the user.
    UserImported,
    /// A new signing key was created (by an administrator, the command line or the
    /// automatic rotation).
    KeyRotated,
}

impl AuditKind {
    /// Every kind, for documentation and tests.
    pub const ALL: [AuditKind; 31] = [
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginLocked,
        Self::TokenRefreshed,
        Self::RefreshTokenReused,
        Self::Logout,
        Self::LogoutAll,
        Self::SessionRevoked,
        Self::SignedUp,
        Self::UserCreated,
        Self::UserUpdated,
        Self::RolesChanged,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::UserUnlocked,
        Self::UserLocked,
        Self::UserSessionsRevoked,
        Self::UserDeleted,
        Self::RoleCreated,
        Self::RoleUpdated,
        Self::RoleDeleted,
        Self::TenantCreated,
        Self::PasswordChanged,
        Self::PasswordSet,
        Self::PasswordRehashed,
        Self::PasswordResetRequested,
        Self::PasswordReset,
        Self::EmailVerified,
        Self::SignupFailed,
        Self::UserImported,
        Self::KeyRotated,
    ];

    /// The name stored in `audit_events.kind` (the API's `type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login.succeeded",
            Self::LoginFailed => "login.failed",
            Self::LoginLocked => "login.locked",
            Self::TokenRefreshed => "refresh.succeeded",
            Self::RefreshTokenReused => "refresh.reuse_detected",
            Self::Logout => "logout.succeeded",
            Self::LogoutAll => "logout_all.succeeded",
            Self::SessionRevoked => "session.revoked",
            Self::SignedUp => "user.signed_up",
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::RolesChanged => "user.roles_changed",
            Self::UserDisabled => "user.disabled",
            Self::UserEnabled => "user.enabled",
            Self::UserUnlocked => "user.unlocked",
            Self::UserLocked => "user.locked",
            Self::UserSessionsRevoked => "user.sessions_revoked",
            Self::UserDeleted => "user.deleted",
            Self::RoleCreated => "role.created",
            Self::RoleUpdated => "role.updated",
            Self::RoleDeleted => "role.deleted",
            Self::TenantCreated => "tenant.created",
            Self::PasswordChanged => "password.changed",
            Self::PasswordSet => "password.set",
            Self::PasswordRehashed => "password.rehashed",
            Self::PasswordResetRequested => "password.reset_requested",
            Self::PasswordReset => "password.reset",
            Self::EmailVerified => "user.email_verified",
            Self::SignupFailed => "signup.failed",
            Self::UserImported => "user.imported",
            Self::KeyRotated => "key.rotated",
        }
    }

    /// The kind of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The outcome an event of this kind has: refusals and detected attacks are failures.
    pub fn outcome(self) -> Outcome {
        match self {
            Self::LoginFailed
            | Self::LoginLocked
            | Self::RefreshTokenReused
            | Self::UserLocked
            | Self::SignupFailed => Outcome::Failure,
            _ => Outcome::Success,
        }
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether what an event records succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// Why a login failed, as its event's details say (never the password, nor whether a
/// wrong password was close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    UnknownAccount,
    WrongPassword,
    AccountDisabled,
    /// The password was right, but the address is not verified and
    /// `AUTH_REQUIRE_VERIFIED_EMAIL` is on.
    EmailNotVerified,
}

impl LoginFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownAccount => "unknown_account",
            Self::WrongPassword => "wrong_password",
            Self::AccountDisabled => "account_disabled",
            Self::EmailNotVerified => "email_not_verified",
        }
    }
}

/// One security event for the audit trail.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub tenant: TenantId,
    pub kind: AuditKind,
    /// Who acted: the user itself, an administrator; `None` for the command line, the
    /// service's own tasks, or a caller not (yet) known (a failed login).
    pub actor_id: Option<UserId>,
    /// The user the event is about.
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    /// Client address, user agent and request id of the request that caused it.
    pub client: ClientInfo,
    pub outcome: Outcome,
    /// Never a secret: why a login failed, when a reused token was rotated, ...
    pub detail: serde_json::Value,
    pub at: i64,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, tenant: &TenantId, at: i64) -> Self {
        Self {
            tenant: tenant.clone(),
            kind,
            actor_id: None,
            user_id: None,
            session_id: None,
            client: ClientInfo::default(),
            outcome: kind.outcome(),
            detail: serde_json::Value::Object(Default::default()),
            at,
        }
    }

    pub fn user(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// The user acting on its own account: actor and subject.
    pub fn by_user(self, user_id: UserId) -> Self {
        self.user(user_id).actor(Some(user_id))
    }

    pub fn actor(mut self, actor_id: Option<UserId>) -> Self {
        self.actor_id = actor_id;
        self
    }

    pub fn session(mut self, session_id: SessionId) -> Self {
        self.session_id = Some(session_id);
        self
    }

    pub fn client(mut self, client: &ClientInfo) -> Self {
        self.client = client.clone();
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// An audit entry as stored.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: String,
    pub tenant: String,
    /// The dotted kind (kinds written by other versions are kept as they are).
    pub kind: String,
    pub actor_id: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    pub detail: serde_json::Value,
    pub at: i64,
}

/// The largest page of an audit listing.
pub const MAX_AUDIT_PAGE: usize = 200;

/// A position in an audit listing (newest first): entries strictly older than it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPosition {
    pub at: i64,
    pub id: String,
}

/// Which entries of a tenant an audit listing returns, newest first.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub tenant: TenantId,
    /// Entries about this user (a user id, or the pseudonym of an erased one).
    pub user: Option<String>,
    pub kind: Option<AuditKind>,
    /// At or after this time.
    pub since: Option<i64>,
    /// Before this time.
    pub until: Option<i64>,
    /// After this position (the last entry of the previous page).
    pub after: Option<AuditPosition>,
    pub limit: usize,
}

/// Reading and purging the audit trail.
pub trait AuditRepository: Send + Sync {
    /// A page of entries, newest first (by time, then id).
    fn audit_page(
        &self,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;

    /// Deletes at most `batch` entries older than `before`, in one short transaction (none
    /// when nothing is due: a read tells); how many it deleted.
    fn purge_audit(
        &self,
        before: i64,
        batch: usize,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_dotted_names_that_read_back() {
        let mut names = std::collections::HashSet::new();
        for kind in AuditKind::ALL {
            assert!(kind.as_str().contains('.'), "{kind}");
            assert!(names.insert(kind.as_str()), "{kind} twice");
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AuditKind::parse("login_succeeded"), None);
    }

    #[test]
    fn every_kind_is_in_the_table_of_docs_audit() {
        let doc = include_str!("../../../docs/AUDIT.md");
        for kind in AuditKind::ALL {
            assert!(
                doc.contains(&format!("| `{kind}`")) || doc.contains(&format!(", `{kind}`")),
                "docs/AUDIT.md has no row for {kind}"
            );
        }
    }

    #[test]
    fn refusals_and_attacks_are_failures() {
        for kind in AuditKind::ALL {
            let failure = kind.as_str().ends_with(".failed")
                || kind.as_str().ends_with(".locked")
                || kind == AuditKind::RefreshTokenReused;
            let expected = if failure {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            assert_eq!(kind.outcome(), expected, "{kind}");
        }
    }
}
