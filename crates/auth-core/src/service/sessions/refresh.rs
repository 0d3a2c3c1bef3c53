//! Refresh: rotation of a refresh token, its grace window and reuse detection.

use serde_json::json;
use tracing::instrument;

use super::{SessionService, check_session};
use crate::audit::{AuditEvent, AuditKind};
use crate::error::{InternalError, TokenRejection};
use crate::events::DomainEvent;
use crate::repo::{
    LockoutWrites, PasswordWrites, Record, RefreshRotation, Rotation, RotationOutcome,
    SessionReads, SessionWrites, UnitOfWork, UserReads,
};
use crate::service::IssuedTokens;
use crate::session::{
    ClientInfo, RefreshRecord, RefreshToken, RevokeReason, SealedAccess, Successor,
};
use crate::token::{AccessToken, UnsignedToken};
use crate::{CoreError, now_unix};

impl<R> SessionService<R>
where
    R: UnitOfWork + UserReads + SessionReads + RefreshRotation,
    R::Tx: SessionWrites + PasswordWrites + LockoutWrites,
{
    /// Rotates a refresh token: the presented token is retired and a successor in the same
    /// session is issued, atomically. A token rotated less than the grace window ago gets the
    /// same successor back; one rotated earlier revokes the whole session. The new access
    /// token is signed once the write is done and its connection given back: a signature
    /// between the read and the write kept the connection, and a PostgreSQL server process
    /// sleeping and waking on it, ~15-20% of the store's rotations a second.
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
        // fresh read finds). `planned` carries the answer (or the refusal) out of the plan.
        let mut planned: Option<Result<Planned, CoreError>> = None;
        let outcome = self
            .repo
            .rotate_refresh_token(&hash, |record, records| {
                match self.plan_rotation(&token, record, client, now) {
                    Ok((rotation, audit, answer)) => {
                        records.audit(audit);
                        planned = Some(Ok(answer));
                        Some(rotation)
                    }
                    Err(e) => {
                        planned = Some(Err(e));
                        None
                    }
                }
            })
            .await?;
        match outcome {
            RotationOutcome::Rotated | RotationOutcome::Declined => {
                let planned = planned.unwrap_or(Err(InternalError::RotationUnanswered.into()))?;
                let access = AccessToken {
                    token: self.tokens.sign(planned.access.input)?,
                    expires_in: planned.access.expires_in,
                    expires_at: planned.access.expires_at,
                };
                Ok(IssuedTokens {
                    access,
                    refresh: planned.refresh,
                    refresh_expires_in: planned.refresh_expires_in,
                    session_id: planned.session_id,
                })
            }
            RotationOutcome::Unknown => Err(CoreError::Token(TokenRejection::Malformed)),
            RotationOutcome::Used(record) => {
                tracing::Span::current()
                    .record("session_id", tracing::field::display(record.session.id));
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
    /// the user enabled; the successor and the new access token (unsigned) are made and sealed.
    fn plan_rotation(
        &self,
        token: &RefreshToken,
        record: &RefreshRecord,
        client: &ClientInfo,
        now: i64,
    ) -> Result<(Rotation, AuditEvent, Planned), CoreError> {
        tracing::Span::current().record("session_id", tracing::field::display(record.session.id));
        let session = &record.session;
        check_session(session, now)?;
        let user = &record.user;
        if user.disabled {
            return Err(CoreError::AccountDisabled);
        }
        let successor = RefreshToken::generate();
        let access = self.tokens.prepare(user, Some(session.id), now)?;
        let sealed = token.seal_successor(&Successor {
            refresh_token: successor.as_str().to_owned(),
            access: SealedAccess::Unsigned(access.input.clone()),
            access_expires_at: access.expires_at,
        });
        let idle_expires_at = self.settings.idle_expiry(now, session.absolute_expires_at);
        let rotation = Rotation {
            successor_hash: successor.hash(),
            successor_sealed: sealed,
            now,
            idle_expires_at,
        };
        let audit = AuditEvent::new(AuditKind::TokenRefreshed, &session.tenant, now)
            .by_user(session.user_id)
            .session(session.id)
            .client(client);
        let planned = Planned {
            access,
            refresh: successor,
            refresh_expires_in: (idle_expires_at - now).max(0) as u64,
            session_id: session.id,
        };
        Ok((rotation, audit, planned))
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
        let grace = self.settings.grace.as_secs() as i64;
        let within_grace = grace > 0 && now - used_at <= grace;
        let successor = record
            .successor_sealed
            .as_deref()
            .and_then(|sealed| token.open_successor(sealed));
        if let (true, Some(successor)) = (within_grace, successor) {
            // Signed again, the input gives the token of the first answer (by the key active
            // now, if the ring changed meanwhile); it must verify.
            let access_token = match successor.access {
                SealedAccess::Unsigned(input) => self.tokens.sign(input)?,
                SealedAccess::Signed(token) => token,
            };
            self.tokens
                .check(&access_token, now)
                .map_err(CoreError::Token)?;
            let refresh = RefreshToken::parse(&successor.refresh_token)
                .ok_or(InternalError::CorruptSuccessor)?;
            tracing::info!("rotated refresh token replayed within the grace window");
            return Ok(IssuedTokens {
                access: AccessToken {
                    token: access_token,
                    expires_in: (successor.access_expires_at - now).max(0) as u64,
                    expires_at: successor.access_expires_at,
                },
                refresh,
                refresh_expires_in: (session.idle_expires_at - now).max(0) as u64,
                session_id: session.id,
            });
        }
        let audit = AuditEvent::new(AuditKind::RefreshTokenReused, &session.tenant, now)
            .by_user(session.user_id)
            .session(session.id)
            .client(client)
            .detail(json!({ "rotated_at": used_at }));
        let detected =
            DomainEvent::refresh_reuse_detected(&session.tenant, session.user_id, session.id, now);
        self.revoke_with(
            session.id,
            None,
            RevokeReason::RefreshTokenReused,
            audit,
            Some(detected),
        )
        .await?;
        tracing::warn!(session_id = %session.id, user_id = %session.user_id, "refresh token reuse detected; session revoked");
        Err(CoreError::RefreshTokenReused)
    }
}

/// A rotation's answer as planned before its write: the access token still to be signed.
struct Planned {
    access: UnsignedToken,
    refresh: RefreshToken,
    refresh_expires_in: u64,
    session_id: crate::domain::SessionId,
}
