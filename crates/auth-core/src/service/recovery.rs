//! Password reset: a request mails a single-use link to an account's address (answered the
//! same whether or not there is one), and its confirmation sets a new password through the
//! password-change machinery (policy, history, every session revoked) in the unit of work that
//! consumes the link.

use serde_json::json;
use tracing::instrument;

use super::AccountService;
use super::passwords::{Change, ResetClaim, password_notice};
use crate::action_token::{ActionPurpose, ActionToken, ActionTokenRefusal, NewActionToken};
use crate::audit::{AuditEvent, AuditKind};
use crate::domain::{Email, LoginName, Password, TenantId, UserCredentials};
use crate::events::{MailTemplate, OutgoingMail};
use crate::repo::{
    ActionTokenReads, ActionTokenWrites, LockoutWrites, PasswordReads, PasswordWrites, Record,
    SessionWrites, UnitOfWork, UserReads, UserWrites,
};
use crate::session::{ClientInfo, RevokeReason};
use crate::{CoreError, now_unix};

impl<R> AccountService<R>
where
    R: UnitOfWork + UserReads + PasswordReads + ActionTokenReads,
    R::Tx: UserWrites + PasswordWrites + SessionWrites + ActionTokenWrites + LockoutWrites,
{
    /// Asks for a reset link for the account of `email` (as a login looks it up; `None`: a
    /// name no account can have) in `tenant`. An enabled account gets a new token
    /// (superseding earlier ones) and a `password_reset` mail; an unknown or disabled one
    /// gets nothing. Every case takes the same steps (one read, one write with its audit
    /// event) and answers the same.
    #[instrument(skip_all, err(level = "info"), fields(tenant = %tenant))]
    pub async fn request_password_reset(
        &self,
        tenant: &TenantId,
        email: Option<&Email>,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let found = match email {
            Some(email) => {
                let name = LoginName::Email(email.clone());
                Box::pin(self.repo.find_credentials(tenant, &name)).await?
            }
            None => None,
        };
        let now = now_unix();
        let mut audit =
            AuditEvent::new(AuditKind::PasswordResetRequested, tenant, now).client(client);
        let mut issue = None;
        match found.map(|c| c.user) {
            None => audit = audit.detail(json!({"mailed": false, "reason": "unknown_account"})),
            Some(user) if user.disabled => {
                audit = audit
                    .user(user.id)
                    .detail(json!({"mailed": false, "reason": "account_disabled"}));
            }
            Some(user) => {
                let token = ActionToken::generate();
                let expires_at = self.flows.expiry(ActionPurpose::PasswordReset, now);
                let mail =
                    OutgoingMail::new(MailTemplate::PasswordReset, &user.tenant, &user.email, now)
                        .user(user.id)
                        .token(token.as_str(), expires_at);
                let stored = NewActionToken {
                    hash: token.hash(),
                    purpose: ActionPurpose::PasswordReset,
                    user: user.id,
                    email: user.email.clone(),
                    created_at: now,
                    expires_at,
                };
                audit = audit.user(user.id).detail(json!({"mailed": true}));
                issue = Some((stored, mail));
            }
        }
        Box::pin(self.repo.write(move |tx| {
            Box::pin(async move {
                if let Some((stored, mail)) = issue {
                    tx.issue_action_token(&stored).await?;
                    tx.mail(mail);
                }
                tx.audit(audit);
                Ok(())
            })
        }))
        .await?;
        Ok(())
    }

    /// Sets a new password with a reset link's token. The token must be unused, unexpired and
    /// for the account's current address; the password must meet the policy and the history
    /// (a refused password leaves the token usable). The token is consumed, the password
    /// written, every session revoked, failed logins cleared and an unverified address
    /// verified in one unit of work, with `password.reset`, `auth.password_changed` (method
    /// `reset`) and a `password_changed` mail. Of concurrent confirmations one succeeds.
    #[instrument(skip_all, err(level = "info"), fields(user_id))]
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new: Password,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let (creds, hash) = self.reset_holder(token).await?;
        tracing::Span::current().record("user_id", tracing::field::display(creds.user.id));
        let new_hash = self.checked_hash(&creds, &new).await?;
        let now = now_unix();
        let user = &creds.user;
        let audit = AuditEvent::new(AuditKind::PasswordReset, &user.tenant, now)
            .by_user(user.id)
            .client(client);
        let verify = (!user.email_verified).then(|| {
            AuditEvent::new(AuditKind::EmailVerified, &user.tenant, now)
                .by_user(user.id)
                .client(client)
                .detail(json!({"by": "password_reset"}))
        });
        let written = self
            .write_change(Change {
                user: user.id,
                new_hash,
                expected: None,
                old_hash: creds.password_hash.clone(),
                keep: None,
                reason: RevokeReason::PasswordReset,
                method: "reset",
                audit,
                notice: password_notice(user, now),
                reset: Some(ResetClaim {
                    token_hash: hash,
                    email: user.email.clone(),
                    verify,
                }),
            })
            .await?;
        // Used by a concurrent confirmation, or the account went away meanwhile.
        written
            .then_some(())
            .ok_or(ActionTokenRefusal::Invalid.into())
    }

    /// The account a reset token is for, with the token's hash, while the token is usable:
    /// unused, unexpired, the account enabled and still at the address the link was sent to.
    async fn reset_holder(&self, token: &str) -> Result<(UserCredentials, String), CoreError> {
        let hash = ActionToken::parse(token)
            .ok_or(ActionTokenRefusal::Invalid)?
            .hash();
        let record = Box::pin(
            self.repo
                .find_action_token(&hash, ActionPurpose::PasswordReset),
        )
        .await?
        .ok_or(ActionTokenRefusal::Invalid)?;
        record.usable(now_unix())?;
        let creds = Box::pin(self.repo.credentials_by_id(record.user))
            .await?
            .filter(|c| !c.user.disabled)
            .filter(|c| c.user.email.to_lowercase() == record.email.to_lowercase())
            .ok_or(ActionTokenRefusal::Invalid)?;
        Ok((creds, hash))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::{SessionId, User};
    use crate::events::EventType;
    use crate::lockout::LockoutState;
    use crate::password::PasswordPolicy;
    use crate::revocation::RevocationList;
    use crate::service::Registration;
    use crate::session::Session;
    use crate::testing::{MemoryRepo, cheap_hasher};

    const NEW: &str = "a brand new long passphrase";

    fn service(repo: &MemoryRepo) -> AccountService<MemoryRepo> {
        AccountService::new(
            repo.clone(),
            cheap_hasher(1),
            PasswordPolicy::default(),
            Arc::new(RevocationList::starting_at(0)),
        )
    }

    async fn user(svc: &AccountService<MemoryRepo>, repo: &MemoryRepo, email: &str) -> User {
        let user = svc
            .register(
                Registration::parse(email, None, "correct horse battery".into(), &[]).unwrap(),
            )
            .await
            .unwrap();
        let session = Session {
            id: SessionId::generate(),
            user_id: user.id,
            tenant: user.tenant.clone(),
            client: ClientInfo::default(),
            created_at: 0,
            last_used_at: 0,
            idle_expires_at: i64::MAX,
            absolute_expires_at: i64::MAX,
            revoked_at: None,
        };
        repo.write(move |tx| {
            Box::pin(async move {
                tx.create_session(session, "hash".into());
                Ok(())
            })
        })
        .await
        .unwrap();
        user
    }

    /// Asks for a link for `email` and returns the token it mails, if it mails one.
    async fn ask(
        svc: &AccountService<MemoryRepo>,
        repo: &MemoryRepo,
        email: &str,
    ) -> Option<String> {
        let before = repo.mails().len();
        let tenant = TenantId::default_tenant();
        svc.request_password_reset(
            &tenant,
            Email::for_lookup(email).as_ref(),
            &ClientInfo::default(),
        )
        .await
        .unwrap();
        let mails = repo.mails();
        mails[before..]
            .iter()
            .find(|m| m.template == MailTemplate::PasswordReset)
            .map(|m| m.token.clone().expect("a token"))
    }

    fn refused(result: Result<(), CoreError>) -> ActionTokenRefusal {
        match result {
            Err(CoreError::ActionToken(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn only_an_enabled_account_is_mailed_and_every_request_is_audited_alike() {
        let repo = MemoryRepo::default();
        let svc = service(&repo);
        let ann = user(&svc, &repo, "ann@example.com").await;
        let bob = user(&svc, &repo, "bob@example.com").await;
        repo.set_disabled(bob.id);
        assert!(ask(&svc, &repo, " ANN@example.com ").await.is_some());
        assert!(ask(&svc, &repo, "nobody@example.com").await.is_none());
        assert!(ask(&svc, &repo, "bob@example.com").await.is_none());
        assert!(ask(&svc, &repo, "   ").await.is_none());
        let tokens = repo.action_tokens(ActionPurpose::PasswordReset);
        assert_eq!(tokens.len(), 1);
        assert_eq!(
            (tokens[0].0.user, tokens[0].0.email.as_str()),
            (ann.id, "ann@example.com")
        );
        let requests: Vec<_> = repo
            .audit_events()
            .into_iter()
            .filter(|e| e.kind == AuditKind::PasswordResetRequested)
            .collect();
        assert_eq!(requests.len(), 4, "one entry per request, mailed or not");
        assert_eq!(requests[0].detail["mailed"], true);
        assert_eq!(requests[1].detail["reason"], "unknown_account");
        assert_eq!(requests[2].detail["reason"], "account_disabled");
        assert!(
            requests
                .iter()
                .all(|e| !e.detail.to_string().contains("token"))
        );
    }

    #[tokio::test]
    async fn a_reset_sets_the_password_once_revokes_everything_and_says_so() {
        let repo = MemoryRepo::default();
        let svc = service(&repo);
        let ann = user(&svc, &repo, "ann@example.com").await;
        repo.put_lockout(
            ann.id,
            LockoutState {
                failed_logins: 4,
                locked_until: Some(i64::MAX),
                lockouts: 1,
            },
        );
        let token = ask(&svc, &repo, "ann@example.com").await.unwrap();
        let before = repo.password_hash(ann.id).unwrap();
        let client = ClientInfo::default();

        let weak = svc
            .confirm_password_reset(&token, Password::new("short".into()), &client)
            .await;
        assert!(matches!(weak, Err(CoreError::WeakPassword(_))), "{weak:?}");
        assert_eq!(
            repo.action_tokens(ActionPurpose::PasswordReset)[0].1,
            None,
            "still usable"
        );
        assert_eq!(repo.password_hash(ann.id).unwrap(), before);

        svc.confirm_password_reset(&token, Password::new(NEW.into()), &client)
            .await
            .unwrap();
        assert_ne!(repo.password_hash(ann.id).unwrap(), before);
        assert_eq!(repo.revoked_sessions(ann.id).len(), 1, "every session");
        assert_eq!(repo.lockout(ann.id), Some(LockoutState::default()));
        assert!(repo.email_verified(ann.id), "the link proved the mailbox");
        let kinds = repo.audit_kinds();
        assert!(
            kinds.ends_with(&[AuditKind::PasswordReset, AuditKind::EmailVerified]),
            "{kinds:?}"
        );
        let events = repo.events();
        let changed = events
            .iter()
            .find(|e| e.kind == EventType::PasswordChanged)
            .unwrap();
        assert_eq!(changed.data["method"], "reset");
        assert!(events.iter().any(|e| e.kind == EventType::EmailVerified));
        assert!(events.iter().any(|e| e.kind == EventType::SessionRevoked));
        let notice = repo.mails().into_iter().last().unwrap();
        assert_eq!(
            (notice.template, notice.to.as_str()),
            (MailTemplate::PasswordChanged, "ann@example.com")
        );
        assert_eq!(notice.token, None);

        let again = svc
            .confirm_password_reset(
                &token,
                Password::new("yet another passphrase".into()),
                &client,
            )
            .await;
        assert_eq!(refused(again), ActionTokenRefusal::Invalid);
    }

    #[tokio::test]
    async fn expired_superseded_foreign_and_malformed_tokens_are_refused() {
        let repo = MemoryRepo::default();
        let svc = service(&repo);
        let ann = user(&svc, &repo, "ann@example.com").await;
        let client = ClientInfo::default();
        let pw = || Password::new(NEW.into());
        let first = ask(&svc, &repo, "ann@example.com").await.unwrap();
        let second = ask(&svc, &repo, "ann@example.com").await.unwrap();
        assert_eq!(
            refused(svc.confirm_password_reset(&first, pw(), &client).await),
            ActionTokenRefusal::Invalid
        );
        for malformed in ["", "not a token", &"A".repeat(44)] {
            assert_eq!(
                refused(svc.confirm_password_reset(malformed, pw(), &client).await),
                ActionTokenRefusal::Invalid
            );
        }
        // A verification token is no reset token.
        let verify = repo
            .mails()
            .into_iter()
            .find(|m| m.template == MailTemplate::VerifyEmail)
            .unwrap();
        assert_eq!(
            refused(
                svc.confirm_password_reset(&verify.token.unwrap(), pw(), &client)
                    .await
            ),
            ActionTokenRefusal::Invalid
        );
        repo.expire_action_tokens(now_unix() - 1);
        assert_eq!(
            refused(svc.confirm_password_reset(&second, pw(), &client).await),
            ActionTokenRefusal::Expired
        );
        // A link mailed to an address the account no longer has.
        let stale = ActionToken::generate();
        let stored = NewActionToken {
            hash: stale.hash(),
            purpose: ActionPurpose::PasswordReset,
            user: ann.id,
            email: "old@example.com".into(),
            created_at: 0,
            expires_at: i64::MAX,
        };
        repo.write(move |tx| Box::pin(async move { tx.issue_action_token(&stored).await }))
            .await
            .unwrap();
        assert_eq!(
            refused(
                svc.confirm_password_reset(stale.as_str(), pw(), &client)
                    .await
            ),
            ActionTokenRefusal::Invalid
        );
        assert!(repo.revoked_sessions(ann.id).is_empty(), "nothing changed");
    }
}
