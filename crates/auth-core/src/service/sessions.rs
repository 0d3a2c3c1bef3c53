//! Sessions: login (which opens a session), refresh-token rotation with reuse detection and a
//! grace window, logout, and the caller's list of sessions.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tracing::instrument;

use super::directory::record_revoked;
use super::{Credentials, IssuedTokens};
use crate::audit::{AuditEvent, AuditKind, LoginFailure};
use crate::domain::{SessionId, User, UserId};
use crate::error::{InternalError, TokenRejection};
use crate::events::DomainEvent;
use crate::lockout::{LockoutState, unknown_login_key};
use crate::password::PasswordHasher;
use crate::repo::{
    LockoutWrites, PasswordWrites, Record, RefreshRotation, Rotation, RotationOutcome,
    SessionReads, SessionWrites, UnitOfWork, UserReads,
};
use crate::revocation::RevocationList;
use crate::session::{
    ClientInfo, RefreshRecord, RefreshToken, RevokeReason, Session, SessionSettings, Successor,
};
use crate::token::{AccessToken, Identity, LEEWAY_SECONDS, TokenService};
use crate::{CoreError, now_unix};

/// What a failed login is counted against.
enum FailureTarget {
    User(UserId),
    /// A login naming no account, by [`unknown_login_key`].
    Unknown(String),
}

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

    /// Checks credentials, opens a session and issues its first token pair. Unknown users cost
    /// one hash verification like known ones and get the same answer as a wrong password; a
    /// disabled account (or, when verified addresses are required, an unverified one) is
    /// reported only once its password checked out. An outdated hash (a
    /// legacy format, other Argon2 parameters) that matched is replaced by a current one in
    /// the same transaction as the session.
    #[instrument(skip_all, err(level = "info"), fields(tenant = %creds.tenant, user_id))]
    pub async fn login(&self, creds: Credentials) -> Result<IssuedTokens, CoreError> {
        // A place among the hashes first: under a login flood most logins wait for one and
        // many are shed, and a shed login should not have read the database (nor kept it and
        // the workers busy at normal priority while the hashes run at the lowest).
        let ticket = self.hasher.admit().await?;
        // The database calls are boxed: an unboxed future is as large as its largest step (the
        // queries', some 4 KB) for all of its life, the wait for a hash included.
        let found = Box::pin(self.repo.find_credentials(&creds.tenant, &creds.name)).await?;
        let (user, hash, lockout) = match found {
            Some(c) => (Some(c.user), Some(c.password_hash), c.lockout),
            None => (None, None, LockoutState::default()),
        };
        let verified = ticket
            .verify_and_upgrade(hash.clone(), &creds.password)
            .await?;
        let now = now_unix();
        let user = match user {
            Some(user) if verified.matched => user,
            user => return Err(Box::pin(self.failed_login(&creds, user, lockout, now)).await),
        };
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        if user.disabled {
            let failure = LoginFailure::AccountDisabled;
            Box::pin(self.login_failed(&creds, Some(user.id), failure, now)).await?;
            return Err(CoreError::AccountDisabled);
        }
        if let Some(left) = lockout.locked_for(now) {
            // The right password, but not now: said only to whoever knows the password.
            let event = AuditEvent::new(AuditKind::LoginLocked, &user.tenant, now)
                .user(user.id)
                .client(&creds.client)
                .detail(json!({ "locked_for_seconds": left }));
            Box::pin(self.repo.write(move |tx| {
                Box::pin(async move {
                    tx.audit(event);
                    Ok(())
                })
            }))
            .await?;
            return Err(CoreError::AccountLocked {
                retry_after: Duration::from_secs(left),
            });
        }
        if self.settings.require_verified_email && !user.email_verified {
            // Like a disabled account: said only to whoever knows the password.
            let failure = LoginFailure::EmailNotVerified;
            Box::pin(self.login_failed(&creds, Some(user.id), failure, now)).await?;
            return Err(CoreError::EmailNotVerified);
        }
        let upgrade = verified
            .upgrade
            .zip(hash)
            .map(|((new, kind), old)| Upgrade { new, old, kind });
        let clear = !lockout.is_clear();
        let issued = Box::pin(self.open_session(&user, &creds.client, now, upgrade, clear)).await?;
        tracing::info!(session_id = %issued.session_id, "login succeeded");
        Ok(issued)
    }

    /// Forgets the failed-login counts of names that match no account once they have been
    /// quiet for a day, or twice the longest lock if that is longer; how many.
    pub async fn purge_login_failures(&self, now: i64) -> Result<u64, CoreError> {
        let quiet = (2 * self.settings.lockout.max.as_secs()).max(86_400);
        let before = now.saturating_sub(i64::try_from(quiet).unwrap_or(i64::MAX));
        let mut purged = 0;
        loop {
            let batch = self
                .repo
                .write(move |tx| tx.purge_unknown_login_failures(before))
                .await?;
            purged += batch;
            if batch == 0 {
                return Ok(purged);
            }
        }
    }

    /// Records a failed login and counts it towards a lock: of the account it named, or of
    /// the name itself when it named none, so both take the same steps (one write) and answer
    /// alike. Failures while locked are not counted. The answer is always
    /// [`CoreError::InvalidCredentials`], unless the write fails.
    async fn failed_login(
        &self,
        creds: &Credentials,
        user: Option<User>,
        lockout: LockoutState,
        now: i64,
    ) -> CoreError {
        let reason = match user {
            Some(_) => LoginFailure::WrongPassword,
            None => LoginFailure::UnknownAccount,
        };
        // Whether the account was locked is said only when it was.
        let details = match lockout.locked_for(now) {
            Some(_) => json!({ "reason": reason.as_str(), "locked": true }),
            None => json!({ "reason": reason.as_str() }),
        };
        let mut event = AuditEvent::new(AuditKind::LoginFailed, &creds.tenant, now)
            .client(&creds.client)
            .detail(details);
        let (target, locked) = match user {
            Some(u) => {
                event = event.user(u.id);
                let locked = AuditEvent::new(AuditKind::UserLocked, &creds.tenant, now)
                    .user(u.id)
                    .client(&creds.client);
                (FailureTarget::User(u.id), Some(locked))
            }
            None => (
                FailureTarget::Unknown(unknown_login_key(&creds.tenant, &creds.name)),
                None,
            ),
        };
        let policy = self.settings.lockout;
        let written = self
            .repo
            .write(move |tx| {
                Box::pin(async move {
                    let until = match &target {
                        FailureTarget::User(id) => tx.count_login_failure(id, &policy, now).await?,
                        FailureTarget::Unknown(key) => {
                            tx.count_unknown_login_failure(key, &policy, now).await?
                        }
                    };
                    tx.audit(event);
                    if let (Some(until), Some(locked)) = (until, locked) {
                        tx.audit(locked.detail(json!({ "locked_until": until })));
                    }
                    Ok(until)
                })
            })
            .await;
        match written {
            Ok(Some(until)) => {
                tracing::info!(locked_until = until, "failed logins locked an account");
                CoreError::InvalidCredentials
            }
            Ok(None) => CoreError::InvalidCredentials,
            Err(e) => e.into(),
        }
    }

    /// Records a refused login: of which account (when one matched the name) and why.
    async fn login_failed(
        &self,
        creds: &Credentials,
        user: Option<UserId>,
        reason: LoginFailure,
        now: i64,
    ) -> Result<(), CoreError> {
        let mut event = AuditEvent::new(AuditKind::LoginFailed, &creds.tenant, now)
            .client(&creds.client)
            .detail(json!({ "reason": reason.as_str() }));
        if let Some(user) = user {
            event = event.user(user);
        }
        self.repo
            .write(move |tx| {
                Box::pin(async move {
                    tx.audit(event);
                    Ok(())
                })
            })
            .await?;
        Ok(())
    }

    async fn open_session(
        &self,
        user: &User,
        client: &ClientInfo,
        now: i64,
        upgrade: Option<Upgrade>,
        clear_lockout: bool,
    ) -> Result<IssuedTokens, CoreError> {
        let absolute = now + self.settings.absolute.as_secs() as i64;
        let session = Session {
            id: SessionId::generate(),
            user_id: user.id,
            tenant: user.tenant.clone(),
            client: client.clone(),
            created_at: now,
            last_used_at: now,
            idle_expires_at: self.settings.idle_expiry(now, absolute),
            absolute_expires_at: absolute,
            revoked_at: None,
        };
        let refresh = RefreshToken::generate();
        let access = self.tokens.mint(user, Some(session.id), now)?;
        let audit = AuditEvent::new(AuditKind::LoginSucceeded, &user.tenant, now)
            .by_user(user.id)
            .session(session.id)
            .client(client);
        let issued = IssuedTokens {
            access,
            refresh_expires_in: (session.idle_expires_at - now).max(0) as u64,
            session_id: session.id,
            refresh: refresh.clone(),
        };
        let token_hash = refresh.hash();
        let user_id = user.id;
        let rehashed = upgrade.as_ref().map(|u| {
            AuditEvent::new(AuditKind::PasswordRehashed, &user.tenant, now)
                .by_user(user.id)
                .client(client)
                .detail(json!({ "from": u.kind.as_str() }))
        });
        self.repo
            .write(move |tx| {
                Box::pin(async move {
                    if let (Some(u), Some(event)) = (upgrade, rehashed) {
                        // Only over the hash that was verified: a password changed meanwhile
                        // stays changed.
                        if tx
                            .set_password_hash(&user_id, &u.new, Some(&u.old), now)
                            .await?
                        {
                            tx.audit(event);
                        }
                    }
                    if clear_lockout {
                        tx.reset_login_failures(&user_id).await?;
                    }
                    tx.create_session(session, token_hash);
                    tx.audit(audit);
                    Ok(())
                })
            })
            .await?;
        Ok(issued)
    }

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
            .rotate_refresh_token(&hash, |record, records| {
                match self.plan_rotation(&token, record, client, now) {
                    Ok((rotation, audit, tokens)) => {
                        records.audit(audit);
                        issued = Some(Ok(tokens));
                        Some(rotation)
                    }
                    Err(e) => {
                        issued = Some(Err(e));
                        None
                    }
                }
            })
            .await?;
        match outcome {
            RotationOutcome::Rotated | RotationOutcome::Declined => {
                issued.unwrap_or(Err(InternalError::RotationUnanswered.into()))
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
    /// the user enabled; the successor and the new access token are made and sealed.
    fn plan_rotation(
        &self,
        token: &RefreshToken,
        record: &RefreshRecord,
        client: &ClientInfo,
        now: i64,
    ) -> Result<(Rotation, AuditEvent, IssuedTokens), CoreError> {
        tracing::Span::current().record("session_id", tracing::field::display(record.session.id));
        let session = &record.session;
        check_session(session, now)?;
        let user = &record.user;
        if user.disabled {
            return Err(CoreError::AccountDisabled);
        }
        let successor = RefreshToken::generate();
        let access = self.tokens.mint(user, Some(session.id), now)?;
        let sealed = token.seal_successor(&Successor {
            refresh_token: successor.as_str().to_owned(),
            access_token: access.token.clone(),
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
        let issued = IssuedTokens {
            access,
            refresh: successor,
            refresh_expires_in: (idle_expires_at - now).max(0) as u64,
            session_id: session.id,
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
        let grace = self.settings.grace.as_secs() as i64;
        let within_grace = grace > 0 && now - used_at <= grace;
        let successor = record
            .successor_sealed
            .as_deref()
            .and_then(|sealed| token.open_successor(sealed));
        if let (true, Some(successor)) = (within_grace, successor) {
            // The successor's access token was signed by this service a moment ago; it must
            // still verify (the key ring may have changed meanwhile).
            self.tokens
                .check(&successor.access_token, now)
                .map_err(CoreError::Token)?;
            let refresh = RefreshToken::parse(&successor.refresh_token)
                .ok_or(InternalError::CorruptSuccessor)?;
            tracing::info!("rotated refresh token replayed within the grace window");
            return Ok(IssuedTokens {
                access: AccessToken {
                    token: successor.access_token,
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

/// An outdated stored hash to replace at login: the new hash, the one it replaces.
struct Upgrade {
    new: String,
    old: String,
    kind: crate::password::HashKind,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::service::{Credentials, Registration};
    use crate::testing::{MemoryRepo, cheap_hasher, hs256_tokens};

    fn service(
        repo: &MemoryRepo,
        max_in_flight: usize,
        queue: Duration,
    ) -> SessionService<MemoryRepo> {
        let hasher = crate::password::PasswordHasher::new(
            crate::password::Argon2Settings {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            crate::password::HashingLimits {
                max_in_flight,
                queue_timeout: queue,
            },
        )
        .unwrap();
        SessionService::new(
            repo.clone(),
            hasher,
            Arc::new(hs256_tokens()),
            SessionSettings::default(),
            Arc::new(RevocationList::starting_at(0)),
        )
    }

    fn credentials(email: &str) -> Credentials {
        Credentials::parse(
            Some(email),
            None,
            "correct horse battery".into(),
            None,
            ClientInfo::default(),
        )
        .unwrap()
    }

    async fn signed_up(repo: &MemoryRepo, email: &str) -> User {
        let accounts = crate::service::AccountService::new(
            repo.clone(),
            cheap_hasher(1),
            crate::password::PasswordPolicy::default(),
            Arc::new(RevocationList::starting_at(0)),
        );
        accounts
            .register(
                Registration::parse(email, None, "correct horse battery".into(), &[]).unwrap(),
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_login_shed_for_want_of_a_hashing_place_never_reads_the_database() {
        let repo = MemoryRepo::default();
        let svc = service(&repo, 1, Duration::from_millis(20));
        // Every admitted place taken (one hash running, one prepared), as under a login flood.
        let places = [
            svc.hasher.admit().await.unwrap(),
            svc.hasher.admit().await.unwrap(),
        ];
        let err = svc
            .login(credentials("nobody@example.com"))
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::Overloaded { .. }), "{err:?}");
        assert_eq!(repo.credential_reads(), 0);
        assert!(repo.audit_kinds().is_empty());

        // Once a place is free, the same login reads its user, hashes and is refused as usual.
        drop(places);
        let err = svc
            .login(credentials("nobody@example.com"))
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::InvalidCredentials), "{err:?}");
        assert_eq!(repo.credential_reads(), 1);
        assert_eq!(repo.audit_kinds(), [AuditKind::LoginFailed]);
        assert_eq!(svc.hasher.in_flight(), 0, "the login gave its place back");
    }

    #[tokio::test]
    async fn a_login_opens_a_session_with_its_audit_event_in_one_unit_of_work() {
        let repo = MemoryRepo::default();
        let user = signed_up(&repo, "ann@example.com").await;
        let svc = service(&repo, 1, Duration::from_secs(5));
        let issued = svc.login(credentials("ann@example.com")).await.unwrap();
        let sessions = svc.repo.active_sessions(user.id, now_unix()).await.unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].id, issued.session_id);
        assert_eq!(
            repo.audit_kinds(),
            [AuditKind::SignedUp, AuditKind::LoginSucceeded]
        );
        let login = repo.audit_events().pop().unwrap();
        assert_eq!(
            (login.actor_id, login.user_id),
            (Some(user.id), Some(user.id))
        );
        assert_eq!(login.session_id, Some(issued.session_id));
    }

    #[tokio::test]
    async fn a_failed_login_says_why_in_its_event_and_never_the_password() {
        let repo = MemoryRepo::default();
        let user = signed_up(&repo, "ann@example.com").await;
        let svc = service(&repo, 1, Duration::from_secs(5));
        let attempt = |email: &str, password: &str| {
            let client = ClientInfo::default();
            Credentials::parse(Some(email), None, password.into(), None, client).unwrap()
        };
        svc.login(attempt("nobody@example.com", "correct horse battery"))
            .await
            .unwrap_err();
        svc.login(attempt("ann@example.com", "wrong horse battery"))
            .await
            .unwrap_err();
        repo.set_disabled(user.id);
        let disabled = svc.login(credentials("ann@example.com")).await.unwrap_err();
        assert!(
            matches!(disabled, CoreError::AccountDisabled),
            "{disabled:?}"
        );
        let failed: Vec<_> = repo
            .audit_events()
            .into_iter()
            .filter(|e| e.kind == AuditKind::LoginFailed)
            .collect();
        let seen: Vec<_> = failed
            .iter()
            .map(|e| (e.user_id, e.actor_id, e.detail["reason"].as_str().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [
                (None, None, "unknown_account"),
                (Some(user.id), None, "wrong_password"),
                (Some(user.id), None, "account_disabled"),
            ]
        );
        for e in &failed {
            assert_eq!(e.outcome, crate::audit::Outcome::Failure);
            assert!(!e.detail.to_string().contains("horse"), "{}", e.detail);
        }
    }

    #[tokio::test]
    async fn a_failed_write_records_nothing() {
        let repo = MemoryRepo::default();
        signed_up(&repo, "ann@example.com").await;
        let svc = service(&repo, 1, Duration::from_secs(5));
        repo.fail_next_write();
        let err = svc.login(credentials("ann@example.com")).await.unwrap_err();
        assert!(matches!(err, CoreError::Store(_)), "{err:?}");
        assert_eq!(
            repo.audit_kinds(),
            [AuditKind::SignedUp],
            "the login's audit went with the write"
        );
        assert_eq!(repo.session_count(), 0);
    }

    #[tokio::test]
    async fn a_token_rotated_twice_after_the_grace_window_revokes_its_session() {
        let repo = MemoryRepo::default();
        signed_up(&repo, "ann@example.com").await;
        let mut svc = service(&repo, 1, Duration::from_secs(5));
        svc.settings.grace = Duration::ZERO;
        let first = svc.login(credentials("ann@example.com")).await.unwrap();
        let second = svc
            .refresh(first.refresh.as_str(), &ClientInfo::default())
            .await
            .unwrap();
        assert_eq!(second.session_id, first.session_id);
        let reused = svc
            .refresh(first.refresh.as_str(), &ClientInfo::default())
            .await
            .unwrap_err();
        assert!(
            matches!(reused, CoreError::RefreshTokenReused),
            "{reused:?}"
        );
        assert!(svc.revocations.is_revoked(&first.session_id));
        let after = svc
            .refresh(second.refresh.as_str(), &ClientInfo::default())
            .await
            .unwrap_err();
        assert!(
            matches!(after, CoreError::Token(TokenRejection::Revoked)),
            "{after:?}"
        );
        assert_eq!(
            repo.audit_kinds(),
            [
                AuditKind::SignedUp,
                AuditKind::LoginSucceeded,
                AuditKind::TokenRefreshed,
                AuditKind::RefreshTokenReused
            ]
        );
    }

    #[tokio::test]
    async fn a_login_replaces_a_legacy_hash_with_its_session_or_not_at_all() {
        // passlib's bcrypt of "correct horse battery" (cost 4).
        const BCRYPT: &str = "$2b$04$VcQmkAHhCR0TZ9Idxm5l2e0dP3PnB8k/wsGPBcKEXP1.p30WOoG7C";
        let repo = MemoryRepo::default();
        let user = signed_up(&repo, "ann@example.com").await;
        repo.put_password_hash(user.id, BCRYPT);
        let svc = service(&repo, 1, Duration::from_secs(5));
        repo.fail_next_write();
        let err = svc.login(credentials("ann@example.com")).await.unwrap_err();
        assert!(matches!(err, CoreError::Store(_)), "{err:?}");
        assert_eq!(
            repo.password_hash(user.id).unwrap(),
            BCRYPT,
            "rolled back with the session"
        );
        assert_eq!(repo.session_count(), 0);

        svc.login(credentials("ann@example.com")).await.unwrap();
        let upgraded = repo.password_hash(user.id).unwrap();
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{upgraded}"
        );
        assert_eq!(
            repo.audit_kinds(),
            [
                AuditKind::SignedUp,
                AuditKind::PasswordRehashed,
                AuditKind::LoginSucceeded
            ]
        );
        svc.login(credentials("ann@example.com")).await.unwrap();
        assert_eq!(repo.password_hash(user.id).unwrap(), upgraded, "once");
    }
}
