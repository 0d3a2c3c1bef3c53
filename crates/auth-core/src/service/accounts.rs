//! Accounts: sign-up, login (which opens a session), and the caller's own account.

use std::sync::Arc;

use tracing::instrument;
use uuid::Uuid;

use super::{AuthService, Credentials, IssuedTokens, Registration, Repository};
use crate::domain::{NewUser, User};
use crate::error::TokenRejection;
use crate::session::{AuditEvent, ClientInfo, RefreshToken, Session};
use crate::token::{AccessClaims, Verified};
use crate::{CoreError, StoreError, now_unix};

impl<R: Repository> AuthService<R> {
    /// Creates an account after checking the password policy.
    #[instrument(skip_all, err(level = "info"), fields(tenant = %reg.tenant.as_str()))]
    pub async fn register(&self, reg: Registration) -> Result<User, CoreError> {
        self.policy
            .check(&reg.password, &reg.email, reg.username.as_ref())?;
        let password_hash = self.hasher.hash(&reg.password).await?;
        let user = NewUser {
            id: Uuid::now_v7(),
            tenant: reg.tenant,
            email: reg.email,
            username: reg.username,
            password_hash,
            roles: reg.roles,
            now: now_unix(),
        };
        // Boxed, as in `login`: the future waits for a hashing slot first.
        let user = Box::pin(self.repo.create_user(user))
            .await
            .map_err(|e| match e {
                StoreError::DuplicateEmail => CoreError::EmailTaken,
                StoreError::DuplicateUsername => CoreError::UsernameTaken,
                other => CoreError::Store(other),
            })?;
        tracing::info!(user_id = %user.id, "user registered");
        Ok(user)
    }

    /// Checks credentials, opens a session and issues its first token pair. Unknown users cost
    /// one hash verification like known ones and get the same answer as a wrong password; a
    /// disabled account is reported only once its password checked out.
    #[instrument(skip_all, err(level = "info"), fields(tenant = %creds.tenant.as_str(), user_id))]
    pub async fn login(&self, creds: Credentials) -> Result<IssuedTokens, CoreError> {
        // A place among the hashes first: under a login flood most logins wait for one and
        // many are shed, and a shed login should not have read the database (nor kept it and
        // the workers busy at normal priority while the hashes run at the lowest).
        let ticket = self.hasher.admit().await?;
        // The database calls are boxed: an unboxed future is as large as its largest step (the
        // queries', some 4 KB) for all of its life, the wait for a hash included.
        let found = Box::pin(self.repo.find_credentials(&creds.tenant, &creds.name)).await?;
        let (user, hash) = match found {
            Some(c) => (Some(c.user), Some(c.password_hash)),
            None => (None, None),
        };
        let verified = ticket.verify(hash, &creds.password).await?;
        let now = now_unix();
        let user = match user {
            Some(user) if verified => user,
            user => {
                let mut event = AuditEvent::new("login_failed", creds.tenant.as_str(), now)
                    .client(&creds.client);
                if let Some(u) = user {
                    event = event.user(u.id);
                }
                Box::pin(self.repo.record_audit(event)).await?;
                return Err(CoreError::InvalidCredentials);
            }
        };
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        if user.disabled {
            return Err(CoreError::AccountDisabled);
        }
        let issued = Box::pin(self.open_session(&user, &creds.client, now)).await?;
        tracing::info!(session_id = %issued.session_id, "login succeeded");
        Ok(issued)
    }

    async fn open_session(
        &self,
        user: &User,
        client: &ClientInfo,
        now: i64,
    ) -> Result<IssuedTokens, CoreError> {
        let absolute = now + self.sessions.absolute.as_secs() as i64;
        let session = Session {
            id: Uuid::now_v7().to_string(),
            user_id: user.id.to_string(),
            tenant: user.tenant.clone(),
            client: client.clone(),
            created_at: now,
            last_used_at: now,
            idle_expires_at: self.sessions.idle_expiry(now, absolute),
            absolute_expires_at: absolute,
            revoked_at: None,
        };
        let refresh = RefreshToken::generate();
        let access = self
            .tokens
            .mint(user, Some(&session.id), now)
            .map_err(CoreError::Internal)?;
        let audit = AuditEvent::new("login_succeeded", &user.tenant, now)
            .user(user.id)
            .session(&session.id)
            .client(client);
        let issued = IssuedTokens {
            access,
            refresh_expires_in: (session.idle_expires_at - now).max(0) as u64,
            session_id: session.id.clone(),
            refresh: refresh.clone(),
        };
        self.repo
            .create_session(session, refresh.hash(), audit)
            .await?;
        Ok(issued)
    }

    /// Verifies a bearer token: signature, claims, and that its session is not revoked.
    pub fn authenticate(&self, token: &str) -> Result<Arc<AccessClaims>, CoreError> {
        let claims = self
            .tokens
            .verify(token, now_unix())
            .map_err(CoreError::Token)?;
        self.refuse_revoked(claims.sid.as_deref())
            .map_err(CoreError::Token)?;
        Ok(claims)
    }

    /// Refuses a token of a revoked session.
    fn refuse_revoked(&self, sid: Option<&str>) -> Result<(), TokenRejection> {
        if sid.is_some_and(|sid| self.revocations.is_revoked(sid)) {
            return Err(TokenRejection::Revoked);
        }
        Ok(())
    }

    /// Checks a bearer token like [`AuthService::authenticate`], answering with what token
    /// checks need (see [`crate::token::TokenService::check`]).
    pub fn check(&self, token: &str) -> Result<Verified, CoreError> {
        let verified = self
            .tokens
            .check(token, now_unix())
            .map_err(CoreError::Token)?;
        self.refuse_revoked(verified.identity.sid.as_deref())
            .map_err(CoreError::Token)?;
        Ok(verified)
    }

    /// Refuses verified claims that lack `role` or `permission` (when given).
    pub fn require(
        claims: &Verified,
        role: Option<&str>,
        permission: Option<&str>,
    ) -> Result<(), CoreError> {
        let identity = &claims.identity;
        if let Some(role) = role.filter(|r| !identity.roles.iter().any(|have| &**have == *r)) {
            return Err(CoreError::Forbidden(format!("role {role} required")));
        }
        if let Some(p) =
            permission.filter(|p| !identity.permissions.iter().any(|have| &**have == *p))
        {
            return Err(CoreError::Forbidden(format!("permission {p} required")));
        }
        Ok(())
    }

    /// The account a verified token belongs to.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %claims.sub))]
    pub async fn current_user(&self, claims: &AccessClaims) -> Result<User, CoreError> {
        let user = self.user_of(&claims.sub).await?;
        if user.disabled {
            return Err(CoreError::AccountDisabled);
        }
        Ok(user)
    }

    pub(super) async fn user_of(&self, id: &str) -> Result<User, CoreError> {
        let id = Uuid::parse_str(id).map_err(|_| CoreError::Token(TokenRejection::Claims))?;
        self.repo
            .get_user(id)
            .await?
            .ok_or(CoreError::Token(TokenRejection::Claims))
    }
}

#[cfg(test)]
mod tests {
    use std::future::{Future, ready};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use secrecy::SecretString;

    use super::*;
    use crate::domain::{LoginName, TenantId, UserCredentials};
    use crate::password::{Argon2Settings, HashingLimits, PasswordHasher, PasswordPolicy};
    use crate::repo::{Rotation, RotationOutcome, SessionRepository, UserRepository};
    use crate::revocation::RevocationList;
    use crate::service::Credentials;
    use crate::session::{RefreshRecord, SessionSettings};
    use crate::token::{TokenService, TokenSettings};

    /// Knows no user; counts the reads of credentials and the audit events.
    #[derive(Default)]
    struct CountingRepo {
        credential_reads: AtomicUsize,
        audits: AtomicUsize,
    }

    fn unused<T: Send>() -> impl Future<Output = Result<T, StoreError>> + Send {
        ready(Err(StoreError::Other("not used by these tests".into())))
    }

    impl UserRepository for CountingRepo {
        fn create_user(&self, _: NewUser) -> impl Future<Output = Result<User, StoreError>> + Send {
            unused()
        }
        fn find_credentials(
            &self,
            _: &TenantId,
            _: &LoginName,
        ) -> impl Future<Output = Result<Option<UserCredentials>, StoreError>> + Send {
            self.credential_reads.fetch_add(1, Ordering::SeqCst);
            ready(Ok(None))
        }
        fn get_user(
            &self,
            _: Uuid,
        ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send {
            unused()
        }
    }

    impl SessionRepository for CountingRepo {
        fn create_session(
            &self,
            _: Session,
            _: String,
            _: AuditEvent,
        ) -> impl Future<Output = Result<(), StoreError>> + Send {
            unused()
        }
        fn find_refresh_token(
            &self,
            _: &str,
        ) -> impl Future<Output = Result<Option<RefreshRecord>, StoreError>> + Send {
            unused()
        }
        fn rotate_refresh_token<F>(
            &self,
            _: &str,
            _: F,
        ) -> impl Future<Output = Result<RotationOutcome, StoreError>> + Send
        where
            F: FnOnce(&RefreshRecord) -> Option<(Rotation, AuditEvent)> + Send,
        {
            unused()
        }
        fn revoke_session(
            &self,
            _: &str,
            _: Option<&str>,
            _: &str,
            _: AuditEvent,
        ) -> impl Future<Output = Result<bool, StoreError>> + Send {
            unused()
        }
        fn revoke_user_sessions(
            &self,
            _: &str,
            _: &str,
            _: AuditEvent,
        ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
            unused()
        }
        fn active_sessions(
            &self,
            _: &str,
            _: i64,
        ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send {
            unused()
        }
        fn revoked_since(
            &self,
            _: i64,
        ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send {
            unused()
        }
        fn record_audit(
            &self,
            _: AuditEvent,
        ) -> impl Future<Output = Result<(), StoreError>> + Send {
            self.audits.fetch_add(1, Ordering::SeqCst);
            ready(Ok(()))
        }
    }

    fn service(max_in_flight: usize, queue_timeout: Duration) -> AuthService<CountingRepo> {
        let hasher = PasswordHasher::new(
            Argon2Settings {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            HashingLimits {
                max_in_flight,
                queue_timeout,
            },
        )
        .unwrap();
        let tokens = TokenService::with_shared_secret(
            TokenSettings {
                issuer: "https://auth.test".into(),
                audience: "platform".into(),
                access_ttl: Duration::from_secs(900),
            },
            &SecretString::from("x".repeat(32)),
        );
        AuthService::new(
            CountingRepo::default(),
            hasher,
            PasswordPolicy::default(),
            Arc::new(tokens),
            SessionSettings::default(),
            Arc::new(RevocationList::starting_at(0)),
        )
    }

    fn credentials() -> Credentials {
        Credentials::parse(
            Some("nobody@example.com"),
            None,
            "correct horse battery".into(),
            None,
            ClientInfo::default(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_login_shed_for_want_of_a_hashing_place_never_reads_the_database() {
        let svc = service(1, Duration::from_millis(20));
        // Every admitted place taken (one hash running, one prepared), as under a login flood.
        let places = [
            svc.hasher.admit().await.unwrap(),
            svc.hasher.admit().await.unwrap(),
        ];
        let err = svc.login(credentials()).await.unwrap_err();
        assert!(matches!(err, CoreError::Overloaded { .. }), "{err:?}");
        assert_eq!(svc.repo.credential_reads.load(Ordering::SeqCst), 0);
        assert_eq!(svc.repo.audits.load(Ordering::SeqCst), 0);

        // Once a place is free, the same login reads its user, hashes and is refused as usual.
        drop(places);
        let err = svc.login(credentials()).await.unwrap_err();
        assert!(matches!(err, CoreError::InvalidCredentials), "{err:?}");
        assert_eq!(svc.repo.credential_reads.load(Ordering::SeqCst), 1);
        assert_eq!(svc.repo.audits.load(Ordering::SeqCst), 1);
        assert_eq!(svc.hasher.in_flight(), 0, "the login gave its place back");
    }
}
