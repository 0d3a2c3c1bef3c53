//! Use cases: sign-up, login, and reading the caller's own account. Input arrives as raw
//! strings from the edge and is validated here into domain values, all problems at once.

use std::sync::Arc;

use tracing::instrument;
use uuid::Uuid;

use crate::domain::{
    Email, LoginName, NewUser, Password, ROLE_USER, RoleName, TenantId, User, Username,
};
use crate::error::TokenRejection;
use crate::password::{PasswordHasher, PasswordPolicy};
use crate::repo::UserRepository;
use crate::token::{AccessClaims, AccessToken, TokenService};
use crate::{CoreError, StoreError, now_unix};

/// A validated request to create an account.
#[derive(Debug)]
pub struct Registration {
    pub tenant: TenantId,
    pub email: Email,
    pub username: Option<Username>,
    pub password: Password,
    pub roles: Vec<RoleName>,
}

impl Registration {
    /// Validates every field and reports all invalid ones together. New accounts get the
    /// `user` role plus `extra_roles`.
    pub fn parse(
        email: &str,
        username: Option<&str>,
        password: String,
        extra_roles: &[String],
    ) -> Result<Self, CoreError> {
        let mut problems = Vec::new();
        let email = Email::parse(email).map_err(|m| problems.push(("email".to_owned(), m)));
        let username = match username.map(Username::parse).transpose() {
            Ok(u) => u,
            Err(m) => {
                problems.push(("username".to_owned(), m));
                None
            }
        };
        let mut roles = vec![RoleName::parse(ROLE_USER).expect("built-in role name is valid")];
        for (i, role) in extra_roles.iter().enumerate() {
            match RoleName::parse(role) {
                Ok(r) if !roles.contains(&r) => roles.push(r),
                Ok(_) => {}
                Err(m) => problems.push((format!("roles[{i}]"), m)),
            }
        }
        match email {
            Ok(email) if problems.is_empty() => Ok(Self {
                tenant: TenantId::default_tenant(),
                email,
                username,
                password: Password::new(password),
                roles,
            }),
            _ => Err(CoreError::Validation(problems)),
        }
    }
}

/// A validated login attempt.
#[derive(Debug)]
pub struct Credentials {
    pub tenant: TenantId,
    pub name: LoginName,
    pub password: Password,
}

impl Credentials {
    /// `email` wins over `username`; a `username` that contains `@` is read as an email, since
    /// OAuth2 password forms put the email there.
    pub fn parse(
        email: Option<&str>,
        username: Option<&str>,
        password: String,
        tenant: Option<&str>,
    ) -> Result<Self, CoreError> {
        let name = match (email, username) {
            (Some(e), _) => {
                LoginName::Email(Email::parse(e).map_err(|m| CoreError::invalid("email", m))?)
            }
            (None, Some(u)) if u.contains('@') => {
                LoginName::Email(Email::parse(u).map_err(|m| CoreError::invalid("username", m))?)
            }
            (None, Some(u)) => LoginName::Username(
                Username::parse(u).map_err(|m| CoreError::invalid("username", m))?,
            ),
            (None, None) => {
                return Err(CoreError::invalid("email", "email or username is required"));
            }
        };
        let tenant = match tenant {
            Some(t) => TenantId::parse(t).map_err(|m| CoreError::invalid("tenant", m))?,
            None => TenantId::default_tenant(),
        };
        if password.len() > Password::MAX_BYTES {
            // Longer passwords were never accepted; refuse before spending a hash on them.
            return Err(CoreError::InvalidCredentials);
        }
        Ok(Self {
            tenant,
            name,
            password: Password::new(password),
        })
    }
}

/// The account use cases, over any user repository.
pub struct AuthService<R> {
    users: R,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    tokens: Arc<TokenService>,
}

impl<R: UserRepository> AuthService<R> {
    pub fn new(
        users: R,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        tokens: Arc<TokenService>,
    ) -> Self {
        Self {
            users,
            hasher,
            policy,
            tokens,
        }
    }

    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

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
        let user = self.users.create_user(user).await.map_err(|e| match e {
            StoreError::DuplicateEmail => CoreError::EmailTaken,
            StoreError::DuplicateUsername => CoreError::UsernameTaken,
            other => CoreError::Store(other),
        })?;
        tracing::info!(user_id = %user.id, "user registered");
        Ok(user)
    }

    /// Checks credentials and mints an access token. Unknown users cost one hash verification
    /// like known ones, and get the same answer as a wrong password; a disabled account is
    /// reported only once its password checked out.
    #[instrument(skip_all, err(level = "info"), fields(tenant = %creds.tenant.as_str(), user_id))]
    pub async fn login(&self, creds: Credentials) -> Result<(User, AccessToken), CoreError> {
        let found = self
            .users
            .find_credentials(&creds.tenant, &creds.name)
            .await?;
        let (user, hash) = match found {
            Some(c) => (Some(c.user), Some(c.password_hash)),
            None => (None, None),
        };
        let verified = self.hasher.verify(hash, &creds.password).await?;
        let user = match user {
            Some(user) if verified => user,
            _ => return Err(CoreError::InvalidCredentials),
        };
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        if user.disabled {
            return Err(CoreError::AccountDisabled);
        }
        let token = self
            .tokens
            .mint(&user, None, now_unix())
            .map_err(CoreError::Internal)?;
        tracing::info!("login succeeded");
        Ok((user, token))
    }

    /// Verifies a bearer token.
    pub fn authenticate(&self, token: &str) -> Result<AccessClaims, CoreError> {
        self.tokens
            .verify(token, now_unix())
            .map_err(CoreError::Token)
    }

    /// The account a verified token belongs to.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %claims.sub))]
    pub async fn current_user(&self, claims: &AccessClaims) -> Result<User, CoreError> {
        let id =
            Uuid::parse_str(&claims.sub).map_err(|_| CoreError::Token(TokenRejection::Claims))?;
        let user = self
            .users
            .get_user(id)
            .await?
            .ok_or(CoreError::Token(TokenRejection::Claims))?;
        if user.disabled {
            return Err(CoreError::AccountDisabled);
        }
        Ok(user)
    }
}
