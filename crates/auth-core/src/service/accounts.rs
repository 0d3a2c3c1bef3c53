//! Accounts: sign-up and the caller's own account.

use std::sync::Arc;

use tracing::instrument;

use serde_json::json;

use super::{Origin, Registration};
use crate::audit::{AuditEvent, AuditKind};
use crate::domain::{NewUser, User, UserId};
use crate::error::TokenRejection;
use crate::events::DomainEvent;
use crate::password::{PasswordHasher, PasswordPolicy};
use crate::repo::{Record, UnitOfWork, UserReads, UserWrites};
use crate::revocation::RevocationList;
use crate::token::Identity;
use crate::{CoreError, StoreError, now_unix};

/// Sign-up and the caller's account.
pub struct AccountService<R> {
    pub(super) repo: R,
    pub(super) hasher: PasswordHasher,
    pub(super) policy: PasswordPolicy,
    /// Where revocations made here (a password change) reach the token checks at once.
    pub(super) revocations: Arc<RevocationList>,
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
        }
    }
}

impl<R> AccountService<R>
where
    R: UnitOfWork + UserReads,
    R::Tx: UserWrites,
{
    /// The rules a new password must meet.
    pub fn policy(&self) -> PasswordPolicy {
        self.policy
    }

    /// Creates an account after checking the password policy.
    #[instrument(skip_all, err(level = "info"), fields(tenant = %reg.tenant))]
    pub async fn register(&self, reg: Registration) -> Result<User, CoreError> {
        self.policy
            .check(&reg.password, &reg.email, reg.username.as_ref())?;
        let password_hash = self.hasher.hash(&reg.password).await?;
        let id = UserId::generate();
        let now = now_unix();
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
                Ok(user)
            })
        }))
        .await
        .map_err(|e| match e {
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
