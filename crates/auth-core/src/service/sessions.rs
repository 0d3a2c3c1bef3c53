//! Sessions: the service, logout and the caller's list of sessions; login (which opens a
//! session) and refresh-token rotation are in the modules below.

mod login;
mod refresh;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::json;
use tracing::instrument;

use super::directory::record_revoked;
use crate::audit::{AuditEvent, AuditKind};
use crate::domain::{SessionId, UserId};
use crate::error::TokenRejection;
use crate::events::DomainEvent;
use crate::password::PasswordHasher;
use crate::repo::{
    LockoutWrites, PasswordWrites, Record, RefreshRotation, SessionReads, SessionWrites,
    UnitOfWork, UserReads,
};
use crate::revocation::RevocationList;
use crate::session::{ClientInfo, RefreshToken, RevokeReason, Session, SessionSettings};
use crate::token::{Identity, LEEWAY_SECONDS, TokenService};
use crate::{CoreError, now_unix};

/// A session as its owner sees it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub session: Session,
    pub current: bool,
}

/// Login, refresh, logout and the caller's sessions.
pub struct SessionService<R> {
    repo: R,
    hasher: PasswordHasher,
    tokens: Arc<TokenService>,
    settings: SessionSettings,
    revocations: Arc<RevocationList>,
}

impl<R> SessionService<R>
where
    R: UnitOfWork + UserReads + SessionReads + RefreshRotation,
    R::Tx: SessionWrites + PasswordWrites + LockoutWrites,
{
    pub fn new(
        repo: R,
        hasher: PasswordHasher,
        tokens: Arc<TokenService>,
        settings: SessionSettings,
        revocations: Arc<RevocationList>,
    ) -> Self {
        Self {
            repo,
            hasher,
            tokens,
            settings,
            revocations,
        }
    }

    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// Revokes a session (of `owner`, when given) with its audit event, in one unit of work,
    /// and refuses its access tokens here at once.
    async fn revoke(
        &self,
        id: SessionId,
        owner: Option<UserId>,
        reason: RevokeReason,
        audit: AuditEvent,
    ) -> Result<bool, CoreError> {
        self.revoke_with(id, owner, reason, audit, None).await
    }

    /// [`Self::revoke`], recording `event` first when it revokes.
    async fn revoke_with(
        &self,
        id: SessionId,
        owner: Option<UserId>,
        reason: RevokeReason,
        audit: AuditEvent,
        event: Option<DomainEvent>,
    ) -> Result<bool, CoreError> {
        let at = audit.at;
        let revoked = self
            .repo
            .write(move |tx| {
                Box::pin(async move {
                    let revoked = tx.revoke_session(&id, owner.as_ref(), reason, at).await?;
                    if revoked {
                        let user = audit.user_id;
                        let tenant = audit.tenant.clone();
                        tx.audit(audit);
                        if let Some(event) = event {
                            tx.event(event);
                        }
                        // Every revocation's audit event names the session's user.
                        if let Some(user) = user {
                            tx.event(DomainEvent::session_revoked(&tenant, user, id, reason, at));
                        }
                    }
                    Ok(revoked)
                })
            })
            .await?;
        if revoked {
            self.revocations.insert([(id, at)]);
        }
        Ok(revoked)
    }

    /// Ends the session of a refresh token. Unknown or already revoked tokens are accepted
    /// silently (RFC 7009 section 2.2).
    #[instrument(skip_all, err(level = "info"))]
    pub async fn logout_refresh_token(
        &self,
        presented: &str,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let Some(token) = RefreshToken::parse(presented) else {
            return Ok(());
        };
        let Some(record) = self.repo.find_refresh_token(&token.hash()).await? else {
            return Ok(());
        };
        let s = &record.session;
        let audit = AuditEvent::new(AuditKind::Logout, &s.tenant, now_unix())
            .by_user(s.user_id)
            .session(s.id)
            .client(client);
        self.revoke(s.id, None, RevokeReason::Logout, audit).await?;
        Ok(())
    }

    /// Ends the session of an access token.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %who.user_id))]
    pub async fn logout_session(
        &self,
        who: &Identity,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let Some(sid) = who.session_id else {
            return Ok(());
        };
        let audit = AuditEvent::new(AuditKind::Logout, &who.tenant, now_unix())
            .by_user(who.user_id)
            .session(sid)
            .client(client);
        self.revoke(sid, Some(who.user_id), RevokeReason::Logout, audit)
            .await?;
        Ok(())
    }

    /// Ends every session of the caller.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %who.user_id))]
    pub async fn logout_all(
        &self,
        who: &Identity,
        client: &ClientInfo,
    ) -> Result<usize, CoreError> {
        let now = now_unix();
        let audit = AuditEvent::new(AuditKind::LogoutAll, &who.tenant, now)
            .by_user(who.user_id)
            .client(client);
        let user = who.user_id;
        let ids = self
            .repo
            .write(move |tx| {
                Box::pin(async move {
                    let reason = RevokeReason::LogoutAll;
                    let ids = tx.revoke_user_sessions(&user, reason, now).await?;
                    let tenant = audit.tenant.clone();
                    tx.audit(audit.detail(json!({ "sessions_revoked": ids.len() })));
                    record_revoked(tx, &tenant, user, &ids, reason, now);
                    Ok(ids)
                })
            })
            .await?;
        let count = ids.len();
        self.revocations.insert(ids.into_iter().map(|id| (id, now)));
        Ok(count)
    }

    /// The caller's active sessions, the current one marked.
    pub async fn list_sessions(&self, who: &Identity) -> Result<Vec<SessionView>, CoreError> {
        let sessions = self.repo.active_sessions(who.user_id, now_unix()).await?;
        Ok(sessions
            .into_iter()
            .map(|session| SessionView {
                current: who.session_id == Some(session.id),
                session,
            })
            .collect())
    }

    /// Revokes one of the caller's own sessions; anyone else's, and any id that is not a
    /// session id, is "not found".
    #[instrument(skip_all, err(level = "info"), fields(user_id = %who.user_id))]
    pub async fn revoke_own_session(
        &self,
        who: &Identity,
        session_id: &str,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let Some(id) = SessionId::parse(session_id) else {
            return Err(CoreError::NotFound);
        };
        let audit = AuditEvent::new(AuditKind::SessionRevoked, &who.tenant, now_unix())
            .by_user(who.user_id)
            .session(id)
            .client(client);
        if self
            .revoke(id, Some(who.user_id), RevokeReason::RevokedByUser, audit)
            .await?
        {
            Ok(())
        } else {
            Err(CoreError::NotFound)
        }
    }

    /// Reads revocations made by other instances into the in-memory list.
    pub async fn sync_revocations(&self) -> Result<usize, CoreError> {
        let since = self.revocations.cursor();
        let rows = self.repo.revoked_since(since).await?;
        let n = rows.len();
        let keep_after = now_unix()
            - self.tokens.settings().access_ttl.as_secs() as i64
            - 2 * LEEWAY_SECONDS as i64;
        self.revocations.merge(rows, keep_after);
        Ok(n)
    }
}

/// Refuses revoked and expired sessions.
fn check_session(session: &Session, now: i64) -> Result<(), CoreError> {
    if session.revoked_at.is_some() {
        return Err(CoreError::Token(TokenRejection::Revoked));
    }
    if !session.is_active(now) {
        return Err(CoreError::Token(TokenRejection::Expired));
    }
    Ok(())
}
