//! Email verification: a link mailed on sign-up, on an email change and on request, and its
//! confirmation, which verifies the address only while the account still has it.

use serde_json::json;
use tracing::instrument;

use super::AccountService;
use crate::StoreError;
use crate::action_token::{
    ActionPurpose, ActionToken, ActionTokenRefusal, FlowSettings, NewActionToken,
};
use crate::audit::{AuditEvent, AuditKind};
use crate::domain::User;
use crate::error::TokenRejection;
use crate::events::{DomainEvent, MailTemplate, OutgoingMail};
use crate::repo::{ActionTokenReads, ActionTokenWrites, Record, UnitOfWork, UserReads};
use crate::session::ClientInfo;
use crate::token::Identity;
use crate::{CoreError, now_unix};

/// Records on `tx` a verification link for `user`'s address: a new token (superseding the
/// earlier ones) and the `verify_email` mail that carries it.
pub(crate) async fn record_verification<T: ActionTokenWrites>(
    tx: &mut T,
    user: &User,
    flows: &FlowSettings,
    now: i64,
) -> Result<(), StoreError> {
    let token = ActionToken::generate();
    let expires_at = flows.expiry(ActionPurpose::VerifyEmail, now);
    let stored = NewActionToken {
        hash: token.hash(),
        purpose: ActionPurpose::VerifyEmail,
        user: user.id,
        email: user.email.clone(),
        created_at: now,
        expires_at,
    };
    tx.issue_action_token(&stored).await?;
    tx.mail(
        OutgoingMail::new(MailTemplate::VerifyEmail, &user.tenant, &user.email, now)
            .user(user.id)
            .token(token.as_str(), expires_at),
    );
    Ok(())
}

/// What a verification request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationRequest {
    /// A new link was mailed.
    Mailed,
    /// The address is verified already: nothing was mailed.
    AlreadyVerified,
}

impl<R> AccountService<R>
where
    R: UnitOfWork + UserReads + ActionTokenReads,
    R::Tx: ActionTokenWrites,
{
    /// Mails the caller a new verification link (earlier ones stop working), unless its
    /// address is verified already.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %who.user_id))]
    pub async fn request_verification(
        &self,
        who: &Identity,
    ) -> Result<VerificationRequest, CoreError> {
        let user = Box::pin(self.repo.get_user(who.user_id))
            .await?
            .filter(|u| u.tenant == who.tenant)
            .ok_or(CoreError::Token(TokenRejection::Claims))?;
        if user.disabled {
            return Err(CoreError::AccountDisabled);
        }
        if user.email_verified {
            return Ok(VerificationRequest::AlreadyVerified);
        }
        let flows = self.flows;
        let now = now_unix();
        Box::pin(self.repo.write(move |tx| {
            Box::pin(async move { record_verification(tx, &user, &flows, now).await })
        }))
        .await?;
        Ok(VerificationRequest::Mailed)
    }

    /// Forgets mailed tokens that expired or were used more than a day before `now` (kept
    /// that long, an expired link is still told apart as `token_expired`); how many.
    pub async fn purge_action_tokens(&self, now: i64) -> Result<u64, CoreError> {
        let before = now.saturating_sub(86_400);
        let mut purged = 0;
        loop {
            let batch = self
                .repo
                .write(move |tx| tx.purge_action_tokens(before))
                .await?;
            purged += batch;
            if batch == 0 {
                return Ok(purged);
            }
        }
    }

    /// Verifies an address with a link's token: unused, unexpired, and for the address the
    /// account has now (a link mailed to an earlier address is refused). The token is consumed
    /// and the address marked verified in one unit of work, with `user.email_verified` and
    /// `auth.email_verified`; an address verified already only consumes the token.
    #[instrument(skip_all, err(level = "info"), fields(user_id))]
    pub async fn verify_email(&self, token: &str, client: &ClientInfo) -> Result<(), CoreError> {
        let hash = ActionToken::parse(token)
            .ok_or(ActionTokenRefusal::Invalid)?
            .hash();
        let record = Box::pin(
            self.repo
                .find_action_token(&hash, ActionPurpose::VerifyEmail),
        )
        .await?
        .ok_or(ActionTokenRefusal::Invalid)?;
        let now = now_unix();
        record.usable(now)?;
        let user = Box::pin(self.repo.get_user(record.user))
            .await?
            .filter(|u| u.email.to_lowercase() == record.email.to_lowercase())
            .ok_or(ActionTokenRefusal::Invalid)?;
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        let audit = AuditEvent::new(AuditKind::EmailVerified, &user.tenant, now)
            .by_user(user.id)
            .client(client)
            .detail(json!({"by": "link"}));
        let event = DomainEvent::email_verified(&user.tenant, user.id, &user.email, now);
        let already = user.email_verified;
        let (id, email) = (user.id, user.email);
        let verified = Box::pin(self.repo.write(move |tx| {
            Box::pin(async move {
                let claimed = tx
                    .consume_action_token(&hash, ActionPurpose::VerifyEmail, now)
                    .await?;
                if claimed.is_none_or(|(owner, _)| owner != id) {
                    return Ok(false);
                }
                if already {
                    return Ok(true);
                }
                // Only while the account still has the address the link was sent to.
                if !tx.mark_email_verified(&id, &email, now).await? {
                    return Ok(false);
                }
                tx.audit(audit);
                tx.event(event);
                Ok(true)
            })
        }))
        .await?;
        if !verified {
            return Err(ActionTokenRefusal::Invalid.into());
        }
        tracing::info!("email verified");
        Ok(())
    }
}
