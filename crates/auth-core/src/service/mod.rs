//! Use cases, one service per area, each generic only over the repository traits it uses:
//! [`AccountService`] (sign-up, the caller's account), [`SessionService`] (login, refresh,
//! logout, the caller's sessions) and [`TokenChecks`] (access-token checks, no repository);
//! signing keys are [`crate::signing::KeyManager`]'s. This module holds the validated inputs
//! they accept: input arrives as raw strings from the edge and is validated here into domain
//! values, all problems at once.

mod accounts;
mod audit;
mod checks;
mod directory;
mod events;
mod import;
mod passwords;
mod recovery;
mod sessions;
mod verification;

use crate::CoreError;
use crate::domain::{Email, LoginName, Password, RoleName, SessionId, TenantId, Username};
use crate::session::{ClientInfo, RefreshToken};
use crate::token::AccessToken;

pub use accounts::AccountService;
pub use audit::{AuditFilter, AuditPage, AuditService, PURGE_BATCH};
pub use checks::TokenChecks;
pub use directory::{DirectoryService, UserChanges, UserExport};
pub use events::{EVENT_PURGE_BATCH, EventFilter, EventPage, EventService};
pub use import::{ImportRecord, ImportReport, OnConflict};
pub use sessions::{SessionService, SessionView};
pub use verification::VerificationRequest;

/// A validated request to create an account.
#[derive(Debug)]
pub struct Registration {
    pub tenant: TenantId,
    pub email: Email,
    pub username: Option<Username>,
    pub password: Password,
    pub roles: Vec<RoleName>,
    /// Who creates the account, for its audit event.
    pub origin: Origin,
    /// The request that creates it.
    pub client: crate::session::ClientInfo,
}

/// Who creates an account: the user signing up, an administrator, the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    SignUp,
    Admin(crate::domain::UserId),
    CommandLine,
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
        let mut roles = vec![RoleName::user()];
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
                origin: Origin::SignUp,
                client: Default::default(),
            }),
            _ => Err(CoreError::Validation(problems)),
        }
    }
}

impl Registration {
    /// The same registration, made by `origin` from `client`.
    pub fn made_by(mut self, origin: Origin, client: &crate::session::ClientInfo) -> Self {
        self.origin = origin;
        self.client = client.clone();
        self
    }

    /// The same registration, in `tenant`.
    pub fn in_tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = tenant;
        self
    }
}

/// A validated login attempt.
#[derive(Debug)]
pub struct Credentials {
    pub tenant: TenantId,
    pub name: LoginName,
    pub password: Password,
    pub client: ClientInfo,
}

impl Credentials {
    /// `email` wins over `username`; a `username` that contains `@` is read as an email, since
    /// OAuth2 password forms put the email there. Only a request naming no one is invalid
    /// (422); the rules for setting an email, username or password are never applied here, so
    /// accounts made under older rules keep logging in. A name, tenant or password that no
    /// account can have (empty, a tenant id of the wrong form, over [`Password::MAX_CHARS`])
    /// is refused as invalid credentials at once, without spending a hash.
    pub fn parse(
        email: Option<&str>,
        username: Option<&str>,
        password: String,
        tenant: Option<&str>,
        client: ClientInfo,
    ) -> Result<Self, CoreError> {
        let name = match (email, username) {
            (Some(e), _) => Email::for_lookup(e).map(LoginName::Email),
            (None, Some(u)) if u.contains('@') => Email::for_lookup(u).map(LoginName::Email),
            (None, Some(u)) => Username::for_lookup(u).map(LoginName::Username),
            (None, None) => {
                return Err(CoreError::invalid("email", "email or username is required"));
            }
        };
        let tenant = match tenant {
            Some(t) => TenantId::parse(t).ok(),
            None => Some(TenantId::default_tenant()),
        };
        let (Some(name), Some(tenant)) = (name, tenant) else {
            return Err(CoreError::InvalidCredentials);
        };
        if password.chars().count() > Password::MAX_CHARS {
            // Longer passwords were never accepted; refuse before spending a hash on them.
            return Err(CoreError::InvalidCredentials);
        }
        Ok(Self {
            tenant,
            name,
            password: Password::new(password),
            client,
        })
    }
}

/// A new access token with the refresh token of its session.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access: AccessToken,
    pub refresh: RefreshToken,
    /// Seconds until the session's idle expiry.
    pub refresh_expires_in: u64,
    pub session_id: SessionId,
}
