//! The audit trail: what happened (an [`AuditKind`]), to whom, from where. Events are recorded
//! on the unit of work of the change they describe ([`crate::repo::Record`]), so an event is
//! stored exactly when its change is.

use crate::domain::{SessionId, TenantId, UserId};
use crate::session::ClientInfo;

/// The kinds of security events, stored by their dotted names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    LoginSucceeded,
    LoginFailed,
    /// A login with the right password refused because the account is locked.
    LoginLocked,
    /// Failed logins reached the threshold: the account is locked.
    UserLocked,
    TokenRefreshed,
    RefreshTokenReused,
    Logout,
    LogoutAll,
    SessionRevoked,
    UserUpdated,
    RolesChanged,
    UserDisabled,
    UserEnabled,
    UserUnlocked,
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
    /// `users import` created or updated the user.
    UserImported,
}

impl AuditKind {
    /// Every kind, for documentation and tests.
    pub const ALL: [AuditKind; 24] = [
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginLocked,
        Self::UserLocked,
        Self::TokenRefreshed,
        Self::RefreshTokenReused,
        Self::Logout,
        Self::LogoutAll,
        Self::SessionRevoked,
        Self::UserUpdated,
        Self::RolesChanged,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::UserUnlocked,
        Self::UserSessionsRevoked,
        Self::UserDeleted,
        Self::RoleCreated,
        Self::RoleUpdated,
        Self::RoleDeleted,
        Self::TenantCreated,
        Self::PasswordChanged,
        Self::PasswordSet,
        Self::PasswordRehashed,
        Self::UserImported,
    ];

    /// The name stored in `audit_events.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login.succeeded",
            Self::LoginFailed => "login.failed",
            Self::LoginLocked => "login.locked",
            Self::UserLocked => "user.locked",
            Self::TokenRefreshed => "token.refreshed",
            Self::RefreshTokenReused => "refresh_token.reused",
            Self::Logout => "session.logout",
            Self::LogoutAll => "session.logout_all",
            Self::SessionRevoked => "session.revoked",
            Self::UserUpdated => "user.updated",
            Self::RolesChanged => "user.roles_changed",
            Self::UserDisabled => "user.disabled",
            Self::UserEnabled => "user.enabled",
            Self::UserUnlocked => "user.unlocked",
            Self::UserSessionsRevoked => "user.sessions_revoked",
            Self::UserDeleted => "user.deleted",
            Self::RoleCreated => "role.created",
            Self::RoleUpdated => "role.updated",
            Self::RoleDeleted => "role.deleted",
            Self::TenantCreated => "tenant.created",
            Self::PasswordChanged => "password.changed",
            Self::PasswordSet => "password.set",
            Self::PasswordRehashed => "password.rehashed",
            Self::UserImported => "user.imported",
        }
    }

    /// The kind of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One security event for the audit trail.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub tenant: TenantId,
    pub kind: AuditKind,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub client: ClientInfo,
    /// Never a secret: why a login failed, when a reused token was rotated, ...
    pub detail: serde_json::Value,
    pub at: i64,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, tenant: &TenantId, at: i64) -> Self {
        Self {
            tenant: tenant.clone(),
            kind,
            user_id: None,
            session_id: None,
            client: ClientInfo::default(),
            detail: serde_json::Value::Object(Default::default()),
            at,
        }
    }

    pub fn user(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
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
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: serde_json::Value,
    pub at: i64,
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
}
