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
