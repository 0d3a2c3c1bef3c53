//! Password changes: the caller's own (`change_password`, current password required, other
//! sessions revoked) and an administrator's (`set_password`, every session revoked). Both
//! apply the policy and the history, and write the hash, the history entry, the revocations
//! and the audit event in one unit of work.

use tracing::instrument;

use super::AccountService;
use super::directory::record_revoked;
use crate::action_token::ActionPurpose;
use crate::audit::{AuditEvent, AuditKind};
use crate::domain::{Password, TenantId, UserCredentials, UserId};
use crate::error::TokenRejection;
use crate::events::{DomainEvent, MailTemplate, OutgoingMail};
use crate::password::{HashKind, PasswordPolicy, identify};
use crate::repo::{
    ActionTokenWrites, LockoutWrites, PasswordReads, PasswordWrites, Record, SessionWrites,
    UnitOfWork, UserReads, UserWrites,
};
use crate::session::{ClientInfo, RevokeReason};
use crate::token::Identity;
use crate::{CoreError, now_unix};

/// A new password's write: what it replaces and what it revokes.
pub(super) struct Change {
    pub(super) user: UserId,
    pub(super) new_hash: String,
    /// The verified current hash for a change (written only over it), none for a set.
    pub(super) expected: Option<String>,
    /// The hash replaced, recorded in the history when it is one.
    pub(super) old_hash: String,
    /// The session to keep (the caller's), for a change.
    pub(super) keep: Option<crate::domain::SessionId>,
    pub(super) reason: RevokeReason,
    /// How the password was replaced, for `auth.password_changed`: `change`, `admin`, `reset`.
    pub(super) method: &'static str,
    pub(super) audit: AuditEvent,
    /// The `password_changed` mail to the account's address.
    pub(super) notice: OutgoingMail,
    /// For a reset: the link's token, consumed in the same unit of work.
    pub(super) reset: Option<ResetClaim>,
}

/// What a reset adds to a password's write: the link's token is consumed first (nothing is
/// written unless it still can be), failed logins and lock are cleared, and an unverified
/// address is verified (the link proved the mailbox).
pub(super) struct ResetClaim {
    pub(super) token_hash: String,
    /// The account's address, the one the link was mailed to.
    pub(super) email: String,
    pub(super) verify: Option<AuditEvent>,
}

/// The `password_changed` notice for `user` at `at`.
pub(super) fn password_notice(user: &crate::domain::User, at: i64) -> OutgoingMail {
    OutgoingMail::new(MailTemplate::PasswordChanged, &user.tenant, &user.email, at).user(user.id)
}

impl<R> AccountService<R>
where
    R: UnitOfWork + UserReads + PasswordReads,
    R::Tx: UserWrites + PasswordWrites + SessionWrites + ActionTokenWrites + LockoutWrites,
{
    /// Changes the caller's password: the current one must verify (else
    /// [`CoreError::InvalidCredentials`]), the new one must meet the policy and the history.
    /// Every other session of the user is revoked; the caller's is kept.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %who.user_id))]
    pub async fn change_password(
        &self,
        who: &Identity,
        current: Password,
        new: Password,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let ticket = self.hasher.admit().await?;
        let creds = Box::pin(self.repo.credentials_by_id(who.user_id))
            .await?
            .filter(|c| c.user.tenant == who.tenant)
            .ok_or(CoreError::Token(TokenRejection::Claims))?;
        if creds.user.disabled {
            return Err(CoreError::AccountDisabled);
        }
        let verified = ticket
            .verify(Some(creds.password_hash.clone()), &current)
            .await?;
        if !verified {
            return Err(CoreError::InvalidCredentials);
        }
        let new_hash = self.checked_hash(&creds, &new).await?;
        let now = now_unix();
        let audit = AuditEvent::new(AuditKind::PasswordChanged, &creds.user.tenant, now)
            .by_user(creds.user.id)
            .client(client);
        let audit = match who.session_id {
            Some(sid) => audit.session(sid),
            None => audit,
        };
        self.write_change(Change {
            user: creds.user.id,
            new_hash,
            expected: Some(creds.password_hash.clone()),
            old_hash: creds.password_hash,
            keep: who.session_id,
            reason: RevokeReason::PasswordChanged,
            method: "change",
            audit,
            notice: password_notice(&creds.user, now),
            reset: None,
        })
        .await?
        // The password changed between its check and this write: the current password
        // that was verified is no longer the current one.
        .then_some(())
        .ok_or(CoreError::InvalidCredentials)
    }

    /// Sets a user's password for an administrator acting within `tenant` (`None`: any
    /// tenant, a superadmin); a user of another tenant is [`CoreError::NotFound`]. The policy
    /// and the history apply; every session of the user is revoked. `by` is the
    /// administrator, kept in the audit event.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %user))]
    pub async fn set_password(
        &self,
        user: UserId,
        tenant: Option<&TenantId>,
        new: Password,
        by: Option<UserId>,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let creds = Box::pin(self.repo.credentials_by_id(user))
            .await?
            .filter(|c| tenant.is_none_or(|t| *t == c.user.tenant))
            .ok_or(CoreError::NotFound)?;
        let new_hash = self.checked_hash(&creds, &new).await?;
        let now = now_unix();
        let audit = AuditEvent::new(AuditKind::PasswordSet, &creds.user.tenant, now)
            .user(creds.user.id)
            .actor(by)
            .client(client);
        self.write_change(Change {
            user: creds.user.id,
            new_hash,
            expected: None,
            old_hash: creds.password_hash,
            keep: None,
            reason: RevokeReason::PasswordSet,
            method: "admin",
            audit,
            notice: password_notice(&creds.user, now),
            reset: None,
        })
        .await?
        // Deleted meanwhile.
        .then_some(())
        .ok_or(CoreError::NotFound)
    }

    /// The policy, then the history (the current hash and the newest `history - 1` earlier
    /// ones, verified in one turn on a hashing thread), then the new hash.
    pub(super) async fn checked_hash(
        &self,
        creds: &UserCredentials,
        new: &Password,
    ) -> Result<String, CoreError> {
        self.policy
            .check_stored(new, &creds.user.email, creds.user.username.as_deref())?;
        let history = self.policy.history.min(PasswordPolicy::MAX_HISTORY);
        if history > 0 {
            let mut hashes = vec![creds.password_hash.clone()];
            if history > 1 {
                hashes.extend(
                    Box::pin(self.repo.password_history(creds.user.id, history - 1)).await?,
                );
            }
            let reused = self.hasher.admit().await?.matches_any(hashes, new).await?;
            if reused {
                return Err(CoreError::WeakPassword(format!(
                    "must not be one of the last {history} passwords of the account"
                )));
            }
        }
        self.hasher.hash(new).await
    }

    /// Writes a change in one unit of work; false when nothing was written (the expected
    /// hash was no longer the stored one, the user is gone, or a reset's token was used).
    pub(super) async fn write_change(&self, change: Change) -> Result<bool, CoreError> {
        let keep_history = self.policy.history.min(PasswordPolicy::MAX_HISTORY);
        let at = change.audit.at;
        // Only Argon2 hashes go to the history (a legacy hash replaced is not kept).
        let record_old = keep_history > 1 && identify(&change.old_hash) == Ok(HashKind::Argon2);
        let revoked = Box::pin(self.repo.write(move |tx| {
            Box::pin(async move {
                let Change {
                    user,
                    new_hash,
                    expected,
                    old_hash,
                    keep,
                    reason,
                    method,
                    audit,
                    notice,
                    reset,
                } = change;
                if let Some(reset) = &reset {
                    let claimed = tx
                        .consume_action_token(&reset.token_hash, ActionPurpose::PasswordReset, at)
                        .await?;
                    let ours = claimed.is_some_and(|(owner, email)| {
                        owner == user && email.to_lowercase() == reset.email.to_lowercase()
                    });
                    if !ours {
                        return Ok(None);
                    }
                }
                let written = tx
                    .set_password_hash(&user, &new_hash, expected.as_deref(), at)
                    .await?;
                if !written {
                    return Ok(None);
                }
                if record_old {
                    tx.push_password_history(&user, &old_hash, at, keep_history - 1)
                        .await?;
                }
                let ids = match keep {
                    Some(sid) => tx.revoke_other_sessions(&user, &sid, reason, at).await?,
                    None => tx.revoke_user_sessions(&user, reason, at).await?,
                };
                let tenant = audit.tenant.clone();
                tx.audit(audit);
                tx.event(DomainEvent::password_changed(&tenant, user, method, at));
                record_revoked(tx, &tenant, user, &ids, reason, at);
                tx.mail(notice);
                if let Some(reset) = reset {
                    // A reset proves control of the mailbox: the lock goes, and so does doubt
                    // about the address.
                    tx.reset_login_failures(&user).await?;
                    if let Some(verified) = reset.verify
                        && tx.mark_email_verified(&user, &reset.email, at).await?
                    {
                        tx.audit(verified);
                        tx.event(DomainEvent::email_verified(&tenant, user, &reset.email, at));
                    }
                }
                Ok(Some(ids))
            })
        }))
        .await?;
        let Some(ids) = revoked else {
            return Ok(false);
        };
        tracing::info!(revoked = ids.len(), "password replaced");
        self.revocations.insert(ids.into_iter().map(|id| (id, at)));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::audit::AuditKind;
    use crate::domain::SessionId;
    use crate::password::PasswordPolicy;
    use crate::repo::{SessionWrites, UnitOfWork};
    use crate::revocation::RevocationList;
    use crate::service::Registration;
    use crate::session::Session;
    use crate::testing::{MemoryRepo, cheap_hasher};

    const FIRST: &str = "correct horse battery staple";
    const SECOND: &str = "a second long passphrase";

    fn service(repo: &MemoryRepo, history: usize) -> AccountService<MemoryRepo> {
        AccountService::new(
            repo.clone(),
            cheap_hasher(1),
            PasswordPolicy {
                history,
                ..PasswordPolicy::default()
            },
            Arc::new(RevocationList::starting_at(0)),
        )
    }

    async fn user_with_sessions(
        svc: &AccountService<MemoryRepo>,
        repo: &MemoryRepo,
    ) -> (Arc<Identity>, SessionId) {
        let user = svc
            .register(
                Registration::parse("ann@example.com", Some("ann_h"), FIRST.into(), &[]).unwrap(),
            )
            .await
            .unwrap();
        let [mine, other] = [SessionId::generate(), SessionId::generate()];
        let sessions = [mine, other].map(|id| Session {
            id,
            user_id: user.id,
            tenant: user.tenant.clone(),
            client: ClientInfo::default(),
            created_at: 0,
            last_used_at: 0,
            idle_expires_at: i64::MAX,
            absolute_expires_at: i64::MAX,
            revoked_at: None,
        });
        repo.write(move |tx| {
            Box::pin(async move {
                for (i, s) in sessions.into_iter().enumerate() {
                    tx.create_session(s, format!("hash-{i}"));
                }
                Ok(())
            })
        })
        .await
        .unwrap();
        let tokens = crate::testing::hs256_tokens();
        let access = tokens.mint(&user, Some(mine), crate::now_unix()).unwrap();
        let identity = tokens.check(&access.token, crate::now_unix()).unwrap();
        (identity.identity.clone(), other)
    }

    #[tokio::test]
    async fn a_change_needs_the_current_password_keeps_this_session_and_revokes_the_others() {
        let repo = MemoryRepo::default();
        let svc = service(&repo, 0);
        let (me, other) = user_with_sessions(&svc, &repo).await;
        let before = repo.password_hash(me.user_id).unwrap();
        let pw = |s: &str| Password::new(s.into());
        let client = ClientInfo::default();

        let wrong = svc
            .change_password(&me, pw("not the password"), pw(SECOND), &client)
            .await;
        assert!(
            matches!(wrong, Err(CoreError::InvalidCredentials)),
            "{wrong:?}"
        );
        let weak = svc
            .change_password(&me, pw(FIRST), pw("short"), &client)
            .await;
        assert!(matches!(weak, Err(CoreError::WeakPassword(_))), "{weak:?}");
        assert_eq!(
            repo.password_hash(me.user_id).unwrap(),
            before,
            "nothing written"
        );
        assert!(repo.revoked_sessions(me.user_id).is_empty());

        svc.change_password(&me, pw(FIRST), pw(SECOND), &client)
            .await
            .unwrap();
        assert_ne!(repo.password_hash(me.user_id).unwrap(), before);
        assert_eq!(repo.revoked_sessions(me.user_id), [other]);
        assert!(svc.revocations.is_revoked(&other));
        assert!(!svc.revocations.is_revoked(&me.session_id.unwrap()));
        assert_eq!(
            repo.audit_kinds(),
            [AuditKind::SignedUp, AuditKind::PasswordChanged]
        );
        use crate::events::EventType;
        assert_eq!(
            repo.event_types(),
            [
                EventType::UserCreated,
                EventType::PasswordChanged,
                EventType::SessionRevoked
            ],
            "events recorded with the change, the revoked session named"
        );
        let events = repo.events();
        assert_eq!(events[1].data["method"], "change");
        assert_eq!(events[2].data["session_id"], other.to_string());
        assert_eq!(events[2].data["reason"], "password_changed");
        assert!(events.iter().all(|e| e.subject == me.user_id));
        assert_eq!(
            repo.history_len(me.user_id),
            0,
            "no history kept by default"
        );
    }

    #[tokio::test]
    async fn the_history_refuses_the_last_passwords_and_keeps_only_what_it_needs() {
        let repo = MemoryRepo::default();
        let svc = service(&repo, 2);
        let (me, _) = user_with_sessions(&svc, &repo).await;
        let pw = |s: &str| Password::new(s.into());
        let client = ClientInfo::default();
        let same = svc
            .change_password(&me, pw(FIRST), pw(FIRST), &client)
            .await;
        assert!(
            matches!(same, Err(CoreError::WeakPassword(ref m)) if m.contains("last 2")),
            "{same:?}"
        );
        svc.change_password(&me, pw(FIRST), pw(SECOND), &client)
            .await
            .unwrap();
        let back = svc
            .change_password(&me, pw(SECOND), pw(FIRST), &client)
            .await;
        assert!(matches!(back, Err(CoreError::WeakPassword(_))), "{back:?}");
        svc.change_password(&me, pw(SECOND), pw("a third passphrase here"), &client)
            .await
            .unwrap();
        assert_eq!(
            repo.history_len(me.user_id),
            1,
            "history - 1 entries besides the current"
        );
        // The first password has left the history of 2: allowed again.
        svc.change_password(&me, pw("a third passphrase here"), pw(FIRST), &client)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_administrator_sets_a_password_within_a_tenant_and_every_session_ends() {
        let repo = MemoryRepo::default();
        let svc = service(&repo, 0);
        let (me, other) = user_with_sessions(&svc, &repo).await;
        let client = ClientInfo::default();
        let elsewhere = TenantId::trusted("acme");
        let hidden = svc
            .set_password(
                me.user_id,
                Some(&elsewhere),
                Password::new(SECOND.into()),
                None,
                &client,
            )
            .await;
        assert!(matches!(hidden, Err(CoreError::NotFound)), "{hidden:?}");
        let unknown = svc
            .set_password(
                UserId::generate(),
                None,
                Password::new(SECOND.into()),
                None,
                &client,
            )
            .await;
        assert!(matches!(unknown, Err(CoreError::NotFound)), "{unknown:?}");
        svc.set_password(
            me.user_id,
            Some(&me.tenant),
            Password::new(SECOND.into()),
            None,
            &client,
        )
        .await
        .unwrap();
        let mut revoked = repo.revoked_sessions(me.user_id);
        revoked.sort();
        let mut both = vec![me.session_id.unwrap(), other];
        both.sort();
        assert_eq!(revoked, both);
        assert_eq!(
            repo.audit_kinds(),
            [AuditKind::SignedUp, AuditKind::PasswordSet]
        );
    }
}
