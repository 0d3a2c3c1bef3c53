//! Login: credentials checked on a hashing place, failures counted towards a lock, and the
//! session opened with an outdated hash replaced in the same unit of work.

use std::time::Duration;

use serde_json::json;
use tracing::instrument;

use super::SessionService;
use crate::audit::{AuditEvent, AuditKind, LoginFailure};
use crate::domain::{SessionId, User, UserId};
use crate::lockout::{LockoutState, unknown_login_key};
use crate::repo::{
    LockoutWrites, PasswordWrites, Record, RefreshRotation, SessionReads, SessionWrites,
    UnitOfWork, UserReads,
};
use crate::service::{Credentials, IssuedTokens};
use crate::session::{ClientInfo, RefreshToken, Session};
use crate::{CoreError, now_unix};

/// What a failed login is counted against.
enum FailureTarget {
    User(UserId),
    /// A login naming no account, by [`unknown_login_key`].
    Unknown(String),
}

/// An outdated stored hash to replace at login: the new hash, the one it replaces.
struct Upgrade {
    new: String,
    old: String,
    kind: crate::password::HashKind,
}

impl<R> SessionService<R>
where
    R: UnitOfWork + UserReads + SessionReads + RefreshRotation,
    R::Tx: SessionWrites + PasswordWrites + LockoutWrites,
{
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
}
