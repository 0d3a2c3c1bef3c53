//! Accounts: sign-up and the caller's own account.

use std::sync::Arc;

use tracing::instrument;

use serde_json::json;

use super::verification::record_verification;
use super::{Origin, Registration};
use crate::action_token::FlowSettings;
use crate::audit::{AuditEvent, AuditKind};
use crate::domain::{
    Email, LoginName, NewUser, RoleName, TenantId, User, UserId, Username, order_roles,
};
use crate::error::TokenRejection;
use crate::events::{DomainEvent, MailTemplate, OutgoingMail};
use crate::password::{PasswordHasher, PasswordPolicy};
use crate::repo::{ActionTokenWrites, Record, UnitOfWork, UserReads, UserWrites};
use crate::revocation::RevocationList;
use crate::session::ClientInfo;
use crate::token::Identity;
use crate::{CoreError, StoreError, now_unix};

/// What a sign-up asked for, kept for answering a taken address as a new account.
struct Attempt {
    tenant: TenantId,
    email: Email,
    username: Option<Username>,
    roles: Vec<RoleName>,
    client: ClientInfo,
    now: i64,
}

/// Sign-up and the caller's account.
pub struct AccountService<R> {
    pub(super) repo: R,
    pub(super) hasher: PasswordHasher,
    pub(super) policy: PasswordPolicy,
    /// Where revocations made here (a password change) reach the token checks at once.
    pub(super) revocations: Arc<RevocationList>,
    /// The mailed flows: reset and verification links.
    pub(super) flows: FlowSettings,
}

impl<R> AccountService<R> {
    pub fn new(
        repo: R,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        revocations: Arc<RevocationList>,
    ) -> Self {
        Self {
            repo,
            hasher,
            policy,
            revocations,
            flows: FlowSettings::default(),
        }
    }

    /// The same service with these settings of the mailed flows.
    pub fn with_flows(mut self, flows: FlowSettings) -> Self {
        self.flows = flows;
        self
    }

    pub fn flows(&self) -> &FlowSettings {
        &self.flows
    }
}

impl<R> AccountService<R>
where
    R: UnitOfWork + UserReads,
    R::Tx: UserWrites + ActionTokenWrites,
{
    /// The rules a new password must meet.
    pub fn policy(&self) -> PasswordPolicy {
        self.policy
    }

    /// Creates an account after checking the password policy. A sign-up mails a verification
    /// link (unless `send_verification` is off), recorded with the account. Under
    /// `require_verified_email` a sign-up with a taken address is answered as a new account
    /// would be, and the owner is mailed instead ([`Self::signup_attempted`]).
    #[instrument(skip_all, err(level = "info"), fields(tenant = %reg.tenant))]
    pub async fn register(&self, reg: Registration) -> Result<User, CoreError> {
        self.policy
            .check(&reg.password, &reg.email, reg.username.as_ref())?;
        let password_hash = self.hasher.hash(&reg.password).await?;
        let id = UserId::generate();
        let now = now_unix();
        let signup = reg.origin == Origin::SignUp;
        let flows = self.flows;
        let verify = signup && flows.mails_verification();
        let attempt = Attempt {
            tenant: reg.tenant.clone(),
            email: reg.email.clone(),
            username: reg.username.clone(),
            roles: reg.roles.clone(),
            client: reg.client.clone(),
            now,
        };
        let (kind, actor, origin) = match reg.origin {
            Origin::SignUp => (AuditKind::SignedUp, Some(id), "signup"),
            Origin::Admin(admin) => (AuditKind::UserCreated, Some(admin), "admin"),
            Origin::CommandLine => (AuditKind::UserCreated, None, "cli"),
        };
        let roles: Vec<&str> = reg.roles.iter().map(|r| r.as_str()).collect();
        let event = AuditEvent::new(kind, &reg.tenant, now)
            .user(id)
            .actor(actor)
            .client(&reg.client)
            .detail(json!({ "roles": roles }));
        let user = NewUser {
            id,
            tenant: reg.tenant,
            email: reg.email,
            username: reg.username,
            password_hash,
            roles: reg.roles,
            now,
        };
        // Boxed: the future waits for a hashing place first, and an unboxed one is as large
        // as its largest step (the queries') for all of its life.
        let user = Box::pin(self.repo.write(move |tx| {
            Box::pin(async move {
                let user = tx.insert_user(user).await?;
                tx.audit(event);
                tx.event(DomainEvent::user_created(&user, origin, now));
                if verify {
                    record_verification(tx, &user, &flows, now).await?;
                }
                Ok(user)
            })
        }))
        .await;
        if signup && flows.require_verified_email && matches!(user, Err(StoreError::DuplicateEmail))
        {
            return self.signup_attempted(attempt).await;
        }
        let user = user.map_err(|e| match e {
            StoreError::DuplicateEmail => CoreError::EmailTaken,
            StoreError::DuplicateUsername => CoreError::UsernameTaken,
            // A role deleted (or a tenant unknown) since the request was checked.
            StoreError::MissingReference(_) => {
                CoreError::invalid("roles", "a role or the tenant does not exist")
            }
            other => CoreError::Store(other),
        })?;
        tracing::info!(user_id = %user.id, "user registered");
        Ok(user)
    }

    /// A sign-up that named a taken address, under `require_verified_email`: answered with
    /// what a new account would look like (a fresh id, never stored), while the owner gets a
    /// `signup_attempt` mail and the attempt a `signup.failed` audit entry, in one unit of
    /// work. The password was hashed as for a new account, so both take the same time. A taken
    /// username is still `409 username_taken` (usernames are public handles): checked here
    /// too, so that the answer does not depend on which of the two the database noticed.
    async fn signup_attempted(&self, attempt: Attempt) -> Result<User, CoreError> {
        if let Some(username) = &attempt.username {
            let name = LoginName::Username(username.clone());
            if Box::pin(self.repo.find_credentials(&attempt.tenant, &name))
                .await?
                .is_some()
            {
                return Err(CoreError::UsernameTaken);
            }
        }
        let name = LoginName::Email(attempt.email.clone());
        let owner = Box::pin(self.repo.find_credentials(&attempt.tenant, &name)).await?;
        let now = attempt.now;
        if let Some(owner) = owner.map(|c| c.user) {
            let audit = AuditEvent::new(AuditKind::SignupFailed, &owner.tenant, now)
                .user(owner.id)
                .client(&attempt.client)
                .detail(json!({ "reason": "email_taken" }));
            let mail = OutgoingMail::new(
                MailTemplate::SignupAttempt,
                &owner.tenant,
                &owner.email,
                now,
            )
            .user(owner.id);
            Box::pin(self.repo.write(move |tx| {
                Box::pin(async move {
                    tx.audit(audit);
                    tx.mail(mail);
                    Ok(())
                })
            }))
            .await?;
        }
        tracing::info!("sign-up with a taken email answered as a new account");
        let mut roles = attempt.roles;
        order_roles(&mut roles);
        Ok(User {
            id: UserId::generate(),
            tenant: attempt.tenant,
            email: attempt.email.as_str().to_owned(),
            username: attempt.username.map(|u| u.as_str().to_owned()),
            roles,
            // The built-in `user` role (the only one a sign-up gets) grants nothing.
            permissions: Vec::new(),
            email_verified: false,
            disabled: false,
            created_at: now,
            updated_at: now,
        })
    }

    /// The account a verified token belongs to.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %who.user_id))]
    pub async fn current_user(&self, who: &Identity) -> Result<User, CoreError> {
        let user = self
            .repo
            .get_user(who.user_id)
            .await?
            .ok_or(CoreError::Token(TokenRejection::Claims))?;
        if user.disabled {
            return Err(CoreError::AccountDisabled);
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Registration;
    use crate::testing::{MemoryRepo, cheap_hasher};

    fn service(repo: &MemoryRepo) -> AccountService<MemoryRepo> {
        AccountService::new(
            repo.clone(),
            cheap_hasher(1),
            PasswordPolicy::default(),
            Arc::new(RevocationList::starting_at(0)),
        )
    }

    fn registration(email: &str, password: &str) -> Registration {
        Registration::parse(email, None, password.into(), &[]).unwrap()
    }

    #[tokio::test]
    async fn a_registered_user_has_the_user_role_and_a_hash_not_the_password() {
        let repo = MemoryRepo::default();
        let user = service(&repo)
            .register(registration("Ann@Example.com", "correct horse battery"))
            .await
            .unwrap();
        assert_eq!(user.email, "Ann@Example.com");
        assert_eq!(
            user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            ["user"]
        );
        let stored = repo.password_hash(user.id).unwrap();
        assert!(stored.starts_with("$argon2id$") && !stored.contains("correct"));
        assert_eq!(repo.audit_kinds(), [crate::audit::AuditKind::SignedUp]);
    }

    #[tokio::test]
    async fn a_taken_email_or_a_weak_password_creates_nothing() {
        let repo = MemoryRepo::default();
        let svc = service(&repo);
        svc.register(registration("a@example.com", "correct horse battery"))
            .await
            .unwrap();
        let taken = svc
            .register(registration("A@EXAMPLE.COM", "another long password"))
            .await
            .unwrap_err();
        assert!(matches!(taken, CoreError::EmailTaken), "{taken:?}");
        let weak = svc
            .register(registration("b@example.com", "short"))
            .await
            .unwrap_err();
        assert!(matches!(weak, CoreError::WeakPassword(_)), "{weak:?}");
        assert_eq!(repo.user_count(), 1);
    }
}
