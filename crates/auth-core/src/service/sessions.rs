//! Sessions: refresh-token rotation with reuse detection and a grace window, logout, and the
//! caller's list of sessions.

use serde_json::json;
use tracing::instrument;

use super::{AuthService, IssuedTokens, Repository};
use crate::error::TokenRejection;
use crate::repo::{Rotation, RotationOutcome};
use crate::session::{AuditEvent, ClientInfo, RefreshRecord, RefreshToken, Session, Successor};
use crate::token::{AccessClaims, AccessToken};
use crate::{CoreError, now_unix};

/// A session as its owner sees it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub session: Session,
    pub current: bool,
}

impl<R: Repository> AuthService<R> {
    /// Rotates a refresh token: the presented token is retired and a successor in the same
    /// session is issued, atomically. A token rotated less than the grace window ago gets the
    /// same successor back; one rotated earlier revokes the whole session.
    #[instrument(skip_all, err(level = "info"), fields(session_id))]
    pub async fn refresh(
        &self,
        presented: &str,
        client: &ClientInfo,
    ) -> Result<IssuedTokens, CoreError> {
        let token =
            RefreshToken::parse(presented).ok_or(CoreError::Token(TokenRejection::Malformed))?;
        let hash = token.hash();
        let now = now_unix();
        // The refresh decides on what the rotation read; its write takes effect only if the
        // token is still unused and the session unrevoked (else `Raced`, answered from what a
        // fresh read finds). `issued` carries the answer (or the refusal) out of the plan.
        let mut issued: Option<Result<IssuedTokens, CoreError>> = None;
        let outcome = self
            .repo
            .rotate_refresh_token(&hash, |record| {
                match self.plan_rotation(&token, record, client, now) {
                    Ok((rotation, audit, tokens)) => {
                        issued = Some(Ok(tokens));
                        Some((rotation, audit))
                    }
                    Err(e) => {
                        issued = Some(Err(e));
                        None
                    }
                }
            })
            .await?;
        match outcome {
            RotationOutcome::Rotated | RotationOutcome::Declined => issued.unwrap_or_else(|| {
                Err(CoreError::Internal(
                    "rotation finished without an answer".into(),
                ))
            }),
            RotationOutcome::Unknown => Err(CoreError::Token(TokenRejection::Malformed)),
            RotationOutcome::Used(record) => {
                tracing::Span::current().record("session_id", record.session.id.as_str());
                self.replay(&token, *record, client, now).await
            }
            RotationOutcome::Raced => {
                // A concurrent request rotated this token first: answer with its successor.
                let record = self
                    .repo
                    .find_refresh_token(&hash)
                    .await?
                    .ok_or(CoreError::Token(TokenRejection::Malformed))?;
                self.replay(&token, record, client, now).await
            }
        }
    }

    /// Decides a rotation on the record read in its transaction: the session must be live and
    /// the user enabled; the successor and the new access token are made and sealed.
    fn plan_rotation(
        &self,
        token: &RefreshToken,
        record: &RefreshRecord,
        client: &ClientInfo,
        now: i64,
    ) -> Result<(Rotation, AuditEvent, IssuedTokens), CoreError> {
        tracing::Span::current().record("session_id", record.session.id.as_str());
        let session = &record.session;
        check_session(session, now)?;
        let user = &record.user;
        if user.disabled {
            return Err(CoreError::AccountDisabled);
        }
        let successor = RefreshToken::generate();
        let access = self
            .tokens
            .mint(user, Some(&session.id), now)
            .map_err(CoreError::Internal)?;
        let sealed = token.seal_successor(&Successor {
            refresh_token: successor.as_str().to_owned(),
            access_token: access.token.clone(),
            access_expires_at: access.claims.exp,
        });
        let idle_expires_at = self.sessions.idle_expiry(now, session.absolute_expires_at);
        let rotation = Rotation {
            successor_hash: successor.hash(),
            successor_sealed: sealed,
            now,
            idle_expires_at,
        };
        let audit = AuditEvent::new("token_refreshed", &session.tenant, now)
            .user(&session.user_id)
            .session(&session.id)
            .client(client);
        let issued = IssuedTokens {
            access,
            refresh: successor,
            refresh_expires_in: (idle_expires_at - now).max(0) as u64,
            session_id: session.id.clone(),
        };
        Ok((rotation, audit, issued))
    }

    /// A token that was already rotated: within the grace window its sealed successor is
    /// returned; after it, this is reuse and the session is revoked.
    async fn replay(
        &self,
        token: &RefreshToken,
        record: RefreshRecord,
        client: &ClientInfo,
        now: i64,
    ) -> Result<IssuedTokens, CoreError> {
        let session = record.session;
        check_session(&session, now)?;
        let used_at = record.used_at.unwrap_or(now);
        let grace = self.sessions.grace.as_secs() as i64;
        let within_grace = grace > 0 && now - used_at <= grace;
        let successor = record
            .successor_sealed
            .as_deref()
            .and_then(|sealed| token.open_successor(sealed));
        if let (true, Some(successor)) = (within_grace, successor) {
            let claims = self
                .tokens
                .verify(&successor.access_token, now)
                .map_err(CoreError::Token)?;
            let refresh = RefreshToken::parse(&successor.refresh_token).ok_or_else(|| {
                CoreError::Internal("sealed successor is not a refresh token".into())
            })?;
            tracing::info!("rotated refresh token replayed within the grace window");
            return Ok(IssuedTokens {
                access: AccessToken {
                    token: successor.access_token,
                    expires_in: (successor.access_expires_at - now).max(0) as u64,
                    claims: std::sync::Arc::unwrap_or_clone(claims),
                },
                refresh,
                refresh_expires_in: (session.idle_expires_at - now).max(0) as u64,
                session_id: session.id,
            });
        }
        let audit = AuditEvent::new("refresh_token_reused", &session.tenant, now)
            .user(&session.user_id)
            .session(&session.id)
            .client(client)
            .detail(json!({ "rotated_at": used_at }));
        self.revoke(&session.id, None, "refresh_token_reused", audit)
            .await?;
        tracing::warn!(session_id = %session.id, user_id = %session.user_id, "refresh token reuse detected; session revoked");
        Err(CoreError::RefreshTokenReused)
    }

    async fn revoke(
        &self,
        session_id: &str,
        user_id: Option<&str>,
        reason: &str,
        audit: AuditEvent,
    ) -> Result<bool, CoreError> {
        let now = audit.at;
        let revoked = self
            .repo
            .revoke_session(session_id, user_id, reason, audit)
            .await?;
        if revoked {
            self.revocations.insert([(session_id.to_owned(), now)]);
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
        let audit = AuditEvent::new("logout", &s.tenant, now_unix())
            .user(&s.user_id)
            .session(&s.id)
            .client(client);
        self.revoke(&s.id, None, "logout", audit).await?;
        Ok(())
    }

    /// Ends the session of an access token.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %claims.sub))]
    pub async fn logout_session(
        &self,
        claims: &AccessClaims,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let Some(sid) = claims.sid.as_deref() else {
            return Ok(());
        };
        let audit = AuditEvent::new("logout", &claims.tenant, now_unix())
            .user(&claims.sub)
            .session(sid)
            .client(client);
        self.revoke(sid, Some(&claims.sub), "logout", audit).await?;
        Ok(())
    }

    /// Ends every session of the caller.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %claims.sub))]
    pub async fn logout_all(
        &self,
        claims: &AccessClaims,
        client: &ClientInfo,
    ) -> Result<usize, CoreError> {
        let now = now_unix();
        let audit = AuditEvent::new("logout_all", &claims.tenant, now)
            .user(&claims.sub)
            .client(client);
        let ids = self
            .repo
            .revoke_user_sessions(&claims.sub, "logout_all", audit)
            .await?;
        let count = ids.len();
        self.revocations.insert(ids.into_iter().map(|id| (id, now)));
        Ok(count)
    }

    /// The caller's active sessions, the current one marked.
    pub async fn list_sessions(
        &self,
        claims: &AccessClaims,
    ) -> Result<Vec<SessionView>, CoreError> {
        let sessions = self.repo.active_sessions(&claims.sub, now_unix()).await?;
        Ok(sessions
            .into_iter()
            .map(|session| SessionView {
                current: claims.sid.as_deref() == Some(session.id.as_str()),
                session,
            })
            .collect())
    }

    /// Revokes one of the caller's own sessions; anyone else's is "not found".
    #[instrument(skip_all, err(level = "info"), fields(user_id = %claims.sub))]
    pub async fn revoke_own_session(
        &self,
        claims: &AccessClaims,
        session_id: &str,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let audit = AuditEvent::new("session_revoked", &claims.tenant, now_unix())
            .user(&claims.sub)
            .session(session_id)
            .client(client);
        if self
            .revoke(session_id, Some(&claims.sub), "revoked_by_user", audit)
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
            - 2 * crate::token::LEEWAY_SECONDS as i64;
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
