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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::SessionId;
    use crate::events::EventType;
    use crate::password::PasswordPolicy;
    use crate::revocation::RevocationList;
    use crate::service::{Credentials, Registration, SessionService};
    use crate::session::SessionSettings;
    use crate::testing::{MemoryRepo, cheap_hasher, hs256_tokens};

    const PASSWORD: &str = "correct horse battery";

    fn service(repo: &MemoryRepo, require: bool) -> AccountService<MemoryRepo> {
        AccountService::new(
            repo.clone(),
            cheap_hasher(1),
            PasswordPolicy::default(),
            Arc::new(RevocationList::starting_at(0)),
        )
        .with_flows(FlowSettings {
            require_verified_email: require,
            ..FlowSettings::default()
        })
    }

    fn signup(email: &str, username: Option<&str>) -> Registration {
        Registration::parse(email, username, PASSWORD.into(), &[]).unwrap()
    }

    fn link(repo: &MemoryRepo, to: &str) -> String {
        let mail = repo
            .mails()
            .into_iter()
            .rev()
            .find(|m| m.template == MailTemplate::VerifyEmail && m.to == to);
        mail.and_then(|m| m.token).expect("a verification mail")
    }

    fn identity(user: &User) -> Arc<Identity> {
        let tokens = hs256_tokens();
        let access = tokens
            .mint(user, Some(SessionId::generate()), now_unix())
            .unwrap();
        tokens.check(&access.token, now_unix()).unwrap().identity
    }

    #[tokio::test]
    async fn a_sign_up_mails_a_link_that_verifies_the_address_once() {
        let repo = MemoryRepo::default();
        let svc = service(&repo, false);
        let ann = svc.register(signup("Ann@example.com", None)).await.unwrap();
        let token = link(&repo, "Ann@example.com");
        assert_eq!(repo.action_tokens(ActionPurpose::VerifyEmail).len(), 1);
        assert!(!repo.email_verified(ann.id));
        let client = ClientInfo::default();
        svc.verify_email(&token, &client).await.unwrap();
        assert!(repo.email_verified(ann.id));
        assert_eq!(repo.audit_kinds().last(), Some(&AuditKind::EmailVerified));
        let event = repo.events().into_iter().last().unwrap();
        assert_eq!(
            (event.kind, event.data["email"].as_str()),
            (EventType::EmailVerified, Some("Ann@example.com"))
        );
        let again = svc.verify_email(&token, &client).await;
        assert!(
            matches!(
                again,
                Err(CoreError::ActionToken(ActionTokenRefusal::Invalid))
            ),
            "{again:?}"
        );
        // Verified: a request mails nothing.
        let before = repo.mails().len();
        let ann = repo.get_user(ann.id).await.unwrap().unwrap();
        let asked = svc.request_verification(&identity(&ann)).await.unwrap();
        assert_eq!(asked, VerificationRequest::AlreadyVerified);
        assert_eq!(repo.mails().len(), before);
    }

    #[tokio::test]
    async fn a_new_link_supersedes_the_old_one_and_expired_links_say_so() {
        let repo = MemoryRepo::default();
        let svc = service(&repo, false);
        let ann = svc.register(signup("ann@example.com", None)).await.unwrap();
        let first = link(&repo, "ann@example.com");
        let asked = svc.request_verification(&identity(&ann)).await.unwrap();
        assert_eq!(asked, VerificationRequest::Mailed);
        let second = link(&repo, "ann@example.com");
        assert_ne!(first, second);
        let client = ClientInfo::default();
        let old = svc.verify_email(&first, &client).await;
        assert!(
            matches!(
                old,
                Err(CoreError::ActionToken(ActionTokenRefusal::Invalid))
            ),
            "{old:?}"
        );
        repo.expire_action_tokens(now_unix());
        let late = svc.verify_email(&second, &client).await;
        assert!(
            matches!(
                late,
                Err(CoreError::ActionToken(ActionTokenRefusal::Expired))
            ),
            "{late:?}"
        );
        assert!(!repo.email_verified(ann.id));
        assert_eq!(
            svc.purge_action_tokens(now_unix() + 86_401).await.unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn under_required_verification_a_taken_email_signs_up_as_a_new_one_and_mails_the_owner() {
        let repo = MemoryRepo::default();
        let svc = service(&repo, true);
        let owner = svc
            .register(signup("ann@example.com", Some("ann")))
            .await
            .unwrap();
        let again = svc.register(signup("ANN@example.com", None)).await.unwrap();
        assert_ne!(again.id, owner.id);
        assert_eq!(again.email, "ANN@example.com");
        assert!(!again.email_verified && again.permissions.is_empty());
        assert_eq!(again.roles, owner.roles);
        assert_eq!(repo.user_count(), 1, "no second account");
        let attempt = repo.mails().into_iter().last().unwrap();
        assert_eq!(
            (attempt.template, attempt.to.as_str()),
            (MailTemplate::SignupAttempt, "ann@example.com")
        );
        assert_eq!((attempt.user, attempt.token), (Some(owner.id), None));
        let audit = repo.audit_events().into_iter().last().unwrap();
        assert_eq!(
            (audit.kind, audit.user_id),
            (AuditKind::SignupFailed, Some(owner.id))
        );
        // A taken username is still said, whatever the email.
        let name = svc.register(signup("ann@example.com", Some("ANN"))).await;
        assert!(matches!(name, Err(CoreError::UsernameTaken)), "{name:?}");
        let name = svc.register(signup("new@example.com", Some("ann"))).await;
        assert!(matches!(name, Err(CoreError::UsernameTaken)), "{name:?}");
        // Without the setting the conflict stays.
        let plain = service(&repo, false)
            .register(signup("ann@example.com", None))
            .await;
        assert!(matches!(plain, Err(CoreError::EmailTaken)), "{plain:?}");
    }

    #[tokio::test]
    async fn under_required_verification_only_a_verified_address_logs_in() {
        let repo = MemoryRepo::default();
        let svc = service(&repo, true);
        let sessions = SessionService::new(
            repo.clone(),
            cheap_hasher(1),
            Arc::new(hs256_tokens()),
            SessionSettings {
                require_verified_email: true,
                ..SessionSettings::default()
            },
            Arc::new(RevocationList::starting_at(0)),
        );
        svc.register(signup("ann@example.com", None)).await.unwrap();
        let login = |password: &str| {
            let creds = Credentials::parse(
                Some("ann@example.com"),
                None,
                password.into(),
                None,
                ClientInfo::default(),
            );
            sessions.login(creds.unwrap())
        };
        let wrong = login("not the password at all").await;
        assert!(
            matches!(wrong, Err(CoreError::InvalidCredentials)),
            "{wrong:?}"
        );
        let unverified = login(PASSWORD).await;
        assert!(
            matches!(unverified, Err(CoreError::EmailNotVerified)),
            "{unverified:?}"
        );
        let audit = repo.audit_events().into_iter().last().unwrap();
        assert_eq!(audit.detail["reason"], "email_not_verified");
        svc.verify_email(&link(&repo, "ann@example.com"), &ClientInfo::default())
            .await
            .unwrap();
        let issued = login(PASSWORD).await.unwrap();
        let claims = hs256_tokens()
            .verify_signature(&issued.access.token, now_unix())
            .unwrap();
        assert!(claims.email_verified);
    }
}
