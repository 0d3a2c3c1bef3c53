//! Events for other services (`auth.user_created`, ...) and mail to send, recorded on the unit
//! of work of the change they announce ([`crate::repo::Record`]) and written to the outbox
//! table in its transaction; relays deliver them afterwards (at least once). docs/EVENTS.md
//! is the catalog; `schemas/events/` holds a JSON Schema per type.

use serde_json::{Value, json};

use crate::domain::{RoleName, SessionId, TenantId, User, UserId};
use crate::secret::{Sealer, b64url, b64url_decode};
use crate::session::RevokeReason;

/// The version of the event documents' shape, carried as `version` in each.
pub const EVENT_VERSION: u32 = 1;

/// The types of events, by the names consumers subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    UserCreated,
    UserUpdated,
    UserDeleted,
    UserDisabled,
    UserEnabled,
    PasswordChanged,
    EmailVerified,
    RolesChanged,
    SessionRevoked,
    RefreshReuseDetected,
}

impl EventType {
    pub const ALL: [EventType; 10] = [
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::PasswordChanged,
        Self::EmailVerified,
        Self::RolesChanged,
        Self::SessionRevoked,
        Self::RefreshReuseDetected,
    ];

    /// The type's name: the routing key on RabbitMQ, the subject on NATS.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "auth.user_created",
            Self::UserUpdated => "auth.user_updated",
            Self::UserDeleted => "auth.user_deleted",
            Self::UserDisabled => "auth.user_disabled",
            Self::UserEnabled => "auth.user_enabled",
            Self::PasswordChanged => "auth.password_changed",
            Self::EmailVerified => "auth.email_verified",
            Self::RolesChanged => "auth.roles_changed",
            Self::SessionRevoked => "auth.session_revoked",
            Self::RefreshReuseDetected => "auth.refresh_reuse_detected",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event about a user (its subject), as recorded on a unit of work.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    pub kind: EventType,
    pub tenant: TenantId,
    pub subject: UserId,
    pub at: i64,
    /// What the type's schema says; never a secret.
    pub data: Value,
}

impl DomainEvent {
    pub fn new(kind: EventType, tenant: &TenantId, subject: UserId, at: i64) -> Self {
        Self {
            kind,
            tenant: tenant.clone(),
            subject,
            at,
            data: Value::Object(Default::default()),
        }
    }

    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// `auth.user_created`: `origin` is `signup`, `admin`, `cli` or `import`.
    pub fn user_created(user: &User, origin: &str, at: i64) -> Self {
        Self::new(EventType::UserCreated, &user.tenant, user.id, at).data(json!({
            "email": user.email,
            "username": user.username,
            "roles": user.roles,
            "email_verified": user.email_verified,
            "origin": origin,
        }))
    }

    /// `auth.user_updated`: the profile as it now is, and which fields changed.
    pub fn user_updated(user: &User, changed: &[&str], at: i64) -> Self {
        Self::new(EventType::UserUpdated, &user.tenant, user.id, at).data(json!({
            "email": user.email,
            "username": user.username,
            "changed": changed,
        }))
    }

    /// `auth.roles_changed`: the roles the user now holds, and those it held.
    pub fn roles_changed(user: &User, roles: &[RoleName], at: i64) -> Self {
        Self::new(EventType::RolesChanged, &user.tenant, user.id, at).data(json!({
            "roles": roles,
            "previous": user.roles,
        }))
    }

    /// `auth.password_changed`: `method` is `change` (by the user), `reset` (a reset link)
    /// or `admin` (set by an administrator).
    pub fn password_changed(tenant: &TenantId, user: UserId, method: &str, at: i64) -> Self {
        Self::new(EventType::PasswordChanged, tenant, user, at).data(json!({ "method": method }))
    }

    /// `auth.email_verified`: the address now verified.
    pub fn email_verified(tenant: &TenantId, user: UserId, email: &str, at: i64) -> Self {
        Self::new(EventType::EmailVerified, tenant, user, at).data(json!({ "email": email }))
    }

    /// `auth.refresh_reuse_detected`: a rotated refresh token of the session came back; the
    /// session is revoked.
    pub fn refresh_reuse_detected(
        tenant: &TenantId,
        user: UserId,
        session: SessionId,
        at: i64,
    ) -> Self {
        Self::new(EventType::RefreshReuseDetected, tenant, user, at)
            .data(json!({ "session_id": session.to_string() }))
    }

    /// `auth.session_revoked` for one session.
    pub fn session_revoked(
        tenant: &TenantId,
        user: UserId,
        session: SessionId,
        reason: RevokeReason,
        at: i64,
    ) -> Self {
        Self::new(EventType::SessionRevoked, tenant, user, at).data(json!({
            "session_id": session.to_string(),
            "reason": reason.as_str(),
        }))
    }

    /// The message published for this event under `id`: the JSON document consumers get.
    pub fn document(&self, id: &str) -> Value {
        json!({
            "id": id,
            "type": self.kind.as_str(),
            "version": EVENT_VERSION,
            "occurred_at": rfc3339(self.at),
            "tenant": self.tenant.as_str(),
            "subject": self.subject.to_string(),
            "data": self.data,
        })
    }
}

/// A Unix time as RFC 3339 in UTC (`2026-12-03T07:42:48Z`).
pub fn rfc3339(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// The mails the service sends, each with a text and an HTML template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailTemplate {
    /// A link to set a new password (`/auth/password-reset/confirm`).
    PasswordReset,
    /// The password was changed or reset: if it was not you, act.
    PasswordChanged,
    /// A link that verifies the address (`/auth/verify-email`).
    VerifyEmail,
    /// Someone tried to sign up with an address that already has an account.
    SignupAttempt,
}

impl MailTemplate {
    pub const ALL: [MailTemplate; 4] = [
        Self::PasswordReset,
        Self::PasswordChanged,
        Self::VerifyEmail,
        Self::SignupAttempt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::PasswordChanged => "password_changed",
            Self::VerifyEmail => "verify_email",
            Self::SignupAttempt => "signup_attempt",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Seals the token a mail carries while it waits in the outbox, under a key derived from
/// `AUTH_MASTER_KEY`; without one, the token is stored as it is (it is single use, short
/// lived, and the row is deleted once sent).
#[derive(Clone, Default)]
pub struct MailSeal {
    master: Option<Vec<u8>>,
}

impl std::fmt::Debug for MailSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSeal")
            .field("sealed", &self.master.is_some())
            .finish()
    }
}

const MAIL_SEAL_PURPOSE: &str = "outbox-mail-token";

impl MailSeal {
    pub fn new(master: Option<&[u8]>) -> Self {
        Self {
            master: master.map(<[u8]>::to_vec),
        }
    }

    fn sealer(&self) -> Option<Sealer> {
        self.master
            .as_deref()
            .map(|m| Sealer::derive(m, MAIL_SEAL_PURPOSE))
    }
}

/// A mail to send, as recorded on a unit of work.
#[derive(Clone, PartialEq)]
pub struct OutgoingMail {
    pub template: MailTemplate,
    pub tenant: TenantId,
    pub user: Option<UserId>,
    pub to: String,
    /// The single-use token its link carries, if any.
    pub token: Option<String>,
    /// When that token expires (Unix seconds), for the text of the mail.
    pub expires_at: Option<i64>,
    pub at: i64,
}

impl std::fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("template", &self.template)
            .field("tenant", &self.tenant)
            .field("user", &self.user)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("expires_at", &self.expires_at)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl OutgoingMail {
    pub fn new(template: MailTemplate, tenant: &TenantId, to: &str, at: i64) -> Self {
        Self {
            template,
            tenant: tenant.clone(),
            user: None,
            to: to.to_owned(),
            token: None,
            expires_at: None,
            at,
        }
    }

    pub fn user(mut self, user: UserId) -> Self {
        self.user = Some(user);
        self
    }

    /// The token its link carries, valid until `expires_at`.
    pub fn token(mut self, token: &str, expires_at: i64) -> Self {
        self.token = Some(token.to_owned());
        self.expires_at = Some(expires_at);
        self
    }

    /// The payload stored in the outbox under `id`, the token sealed when `seal` has a key.
    pub fn payload(&self, id: &str, seal: &MailSeal) -> Value {
        let token = self.token.as_ref().map(|t| match seal.sealer() {
            Some(s) => json!({ "sealed": b64url(&s.seal(t.as_bytes(), id.as_bytes())) }),
            None => json!({ "plain": t }),
        });
        json!({
            "template": self.template.as_str(),
            "tenant": self.tenant.as_str(),
            "user_id": self.user.map(|u| u.to_string()),
            "to": self.to,
            "token": token,
            "expires_at": self.expires_at,
            "at": self.at,
        })
    }

    /// Reads a payload stored under `id` back; `None` when it is not one, or its token
    /// cannot be opened with `seal` (another master key).
    pub fn from_payload(id: &str, payload: &Value, seal: &MailSeal) -> Option<Self> {
        let template = MailTemplate::parse(payload.get("template")?.as_str()?)?;
        let tenant = TenantId::parse(payload.get("tenant")?.as_str()?).ok()?;
        let user = match payload.get("user_id") {
            Some(Value::String(u)) => Some(UserId::parse(u)?),
            _ => None,
        };
        let to = payload.get("to")?.as_str()?.to_owned();
        let expires_at = payload.get("expires_at").and_then(Value::as_i64);
        let at = payload.get("at").and_then(Value::as_i64).unwrap_or(0);
        let token = match payload.get("token") {
            None | Some(Value::Null) => None,
            Some(t) => Some(match (t.get("plain"), t.get("sealed")) {
                (Some(Value::String(plain)), _) => plain.clone(),
                (_, Some(Value::String(sealed))) => {
                    let bytes = b64url_decode(sealed)?;
                    let opened = seal.sealer()?.open(&bytes, id.as_bytes())?;
                    String::from_utf8(opened).ok()?
                }
                _ => return None,
            }),
        };
        Some(Self {
            template,
            tenant,
            user,
            to,
            token,
            expires_at,
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_have_distinct_names_under_auth() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::ALL {
            assert!(t.as_str().starts_with("auth."), "{t}");
            assert!(seen.insert(t.as_str()));
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn documents_carry_the_envelope() {
        let user = UserId::generate();
        let e = DomainEvent::new(
            EventType::UserCreated,
            &TenantId::default_tenant(),
            user,
            1_800_000_000,
        )
        .data(json!({"email": "a@example.com"}));
        let doc = e.document("id-1");
        assert_eq!(doc["type"], "auth.user_created");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["occurred_at"], "2027-01-15T08:00:00Z");
        assert_eq!(doc["tenant"], "default");
        assert_eq!(doc["subject"], user.to_string());
        assert_eq!(doc["data"]["email"], "a@example.com");
    }

    #[test]
    fn mail_tokens_are_sealed_under_a_master_key_and_bound_to_the_row() {
        let mail = OutgoingMail::new(
            MailTemplate::PasswordReset,
            &TenantId::default_tenant(),
            "a@example.com",
            1,
        )
        .user(UserId::generate())
        .token("secret-token", 1_800);
        let seal = MailSeal::new(Some(b"0123456789abcdef0123456789abcdef"));
        let payload = mail.payload("row-1", &seal);
        assert!(!payload.to_string().contains("secret-token"));
        let back = OutgoingMail::from_payload("row-1", &payload, &seal).expect("opens");
        assert_eq!(back.token.as_deref(), Some("secret-token"));
        assert_eq!(back, mail);
        assert!(OutgoingMail::from_payload("row-2", &payload, &seal).is_none());
        assert!(OutgoingMail::from_payload("row-1", &payload, &MailSeal::default()).is_none());

        let plain = mail.payload("row-1", &MailSeal::default());
        let back = OutgoingMail::from_payload("row-1", &plain, &MailSeal::default()).unwrap();
        assert_eq!(back.token.as_deref(), Some("secret-token"));
        assert!(format!("{mail:?}").contains("redacted"));
    }
}
