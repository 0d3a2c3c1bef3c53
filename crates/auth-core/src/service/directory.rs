//! The directory: what administrators do to users, roles and tenants (always within the
//! caller's reach: anything of a tenant out of reach is "not found"), and what a user does to
//! its own profile (change it, erase it, export it). Roles and tenants are in `roles`.

mod roles;

use std::sync::Arc;

use serde_json::json;
use tracing::instrument;

use super::verification::record_verification;
use crate::action_token::FlowSettings;
use crate::audit::{AuditEvent, AuditKind, AuditRecord};
use crate::directory::{Actor, MAX_PAGE, ProfileChanges, UserFilter};
use crate::domain::{
    LoginName, Password, Permission, ROLE_USER, RoleName, SessionId, TenantId, User, UserId,
};
use crate::error::Requirement;
use crate::events::{DomainEvent, EventType};
use crate::password::PasswordHasher;
use crate::repo::{
    ActionTokenWrites, DirectoryReads, DirectoryWrites, Record, SessionReads, SessionWrites,
    UnitOfWork, UserReads,
};
use crate::revocation::RevocationList;
use crate::session::{ClientInfo, RevokeReason, Session};
use crate::{CoreError, StoreError, now_unix};

/// Everything held about a user, for its own export.
#[derive(Debug, Clone)]
pub struct UserExport {
    pub user: User,
    pub sessions: Vec<Session>,
    pub audit: Vec<AuditRecord>,
}

/// Changes an administrator makes to a user.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub profile: ProfileChanges,
    /// The user's new roles (`user` is always kept).
    pub roles: Option<Vec<RoleName>>,
}

/// The admin API's users, roles and tenants, and a user's own profile.
pub struct DirectoryService<R> {
    repo: R,
    hasher: PasswordHasher,
    revocations: Arc<RevocationList>,
    /// A changed email is mailed a verification link by these settings.
    flows: FlowSettings,
}

/// Maps the conflicts of a profile change.
fn profile_conflicts(e: StoreError) -> CoreError {
    match e {
        StoreError::DuplicateEmail => CoreError::EmailTaken,
        StoreError::DuplicateUsername => CoreError::UsernameTaken,
        other => CoreError::Store(other),
    }
}

impl<R> DirectoryService<R>
where
    R: UnitOfWork + UserReads + DirectoryReads + SessionReads,
    R::Tx: DirectoryWrites + SessionWrites + ActionTokenWrites,
{
    pub fn new(repo: R, hasher: PasswordHasher, revocations: Arc<RevocationList>) -> Self {
        Self {
            repo,
            hasher,
            revocations,
            flows: FlowSettings::default(),
        }
    }

    /// The same service with these settings of the mailed flows.
    pub fn with_flows(mut self, flows: FlowSettings) -> Self {
        self.flows = flows;
        self
    }

    /// The user a profile change leaves, when its address changed and is to be mailed a
    /// verification link (the new address is unverified).
    fn to_verify(&self, user: &User, profile: &ProfileChanges) -> Option<User> {
        let changed = profile
            .email
            .as_ref()
            .is_some_and(|e| e.normalized() != user.email.to_lowercase());
        (changed && self.flows.mails_verification()).then(|| with_profile(user, profile))
    }

    /// A user within the actor's reach; any other (or none) is "not found".
    pub async fn user(&self, actor: &Actor, id: UserId) -> Result<User, CoreError> {
        match self.repo.get_user(id).await? {
            Some(user) if actor.scope.allows(&user.tenant) => Ok(user),
            _ => Err(CoreError::NotFound),
        }
    }

    /// A user the actor may change: within reach, and holding no permission of the service
    /// that the actor does not hold (an admin cannot disable, erase or log out a superadmin).
    pub async fn changeable(&self, actor: &Actor, id: UserId) -> Result<User, CoreError> {
        let user = self.user(actor, id).await?;
        match actor.missing(&user.permissions).first() {
            Some(p) => Err(CoreError::Forbidden(Requirement::Permission(p.clone()))),
            None => Ok(user),
        }
    }

    /// A page of a tenant's users (the actor's own unless it spans tenants), and the cursor
    /// of the next page when there may be one.
    pub async fn list_users(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: &UserFilter,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<User>, Option<UserId>), CoreError> {
        let tenant = actor.tenant_for(tenant)?;
        let limit = limit.clamp(1, MAX_PAGE);
        // One more than asked tells whether another page follows.
        let mut users = self
            .repo
            .list_users(&tenant, filter, after, limit + 1)
            .await?;
        let next = if users.len() > limit {
            users.truncate(limit);
            users.last().map(|u| u.id)
        } else {
            None
        };
        Ok((users, next))
    }

    /// Refuses roles that do not exist in `tenant`, or that grant reserved permissions the
    /// actor does not hold.
    pub async fn check_grantable(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        roles: &[RoleName],
    ) -> Result<(), CoreError> {
        let known = self.repo.roles(tenant).await?;
        let mut problems = Vec::new();
        let mut granted: Vec<&Permission> = Vec::new();
        for (i, name) in roles.iter().enumerate() {
            match known.iter().find(|r| &r.name == name) {
                Some(role) => granted.extend(role.permissions.iter()),
                None => problems.push((format!("roles[{i}]"), format!("no role {name}"))),
            }
        }
        if !problems.is_empty() {
            return Err(CoreError::Validation(problems));
        }
        match actor.missing(granted).first() {
            Some(p) => Err(CoreError::Forbidden(Requirement::Permission(p.clone()))),
            None => Ok(()),
        }
    }

    /// Changes a user's profile and/or roles, in one transaction.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %id))]
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: UserId,
        changes: UserChanges,
        client: &ClientInfo,
    ) -> Result<User, CoreError> {
        let user = self.changeable(actor, id).await?;
        let roles = match changes.roles {
            Some(mut roles) => {
                if !roles.iter().any(|r| r.as_str() == ROLE_USER) {
                    roles.push(RoleName::user());
                }
                crate::domain::order_roles(&mut roles);
                self.check_grantable(actor, &user.tenant, &roles).await?;
                // Taking a role away needs its permissions too: an admin cannot demote
                // someone who holds more than it does.
                let removed: Vec<RoleName> = user
                    .roles
                    .iter()
                    .filter(|r| !roles.contains(r))
                    .cloned()
                    .collect();
                self.check_grantable(actor, &user.tenant, &removed).await?;
                Some(roles)
            }
            None => None,
        };
        let now = now_unix();
        let profile = changes.profile;
        let tenant = user.tenant.clone();
        let verify = self.to_verify(&user, &profile);
        let flows = self.flows;
        let mut events = Vec::new();
        let mut changes = Vec::new();
        if !profile.is_empty() {
            events.push(self.event(AuditKind::UserUpdated, actor, &user, client, now));
            changes.push(DomainEvent::user_updated(
                &with_profile(&user, &profile),
                &profile_fields(&profile),
                now,
            ));
        }
        if let Some(roles) = &roles {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            let previous: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
            events.push(
                self.event(AuditKind::RolesChanged, actor, &user, client, now)
                    .detail(json!({"roles": names, "previous": previous})),
            );
            changes.push(DomainEvent::roles_changed(&user, roles, now));
        }
        self.repo
            .write(move |tx| {
                Box::pin(async move {
                    if !profile.is_empty() && !tx.update_profile(&id, &profile, now).await? {
                        return Ok(false);
                    }
                    if let Some(changed) = &verify {
                        record_verification(tx, changed, &flows, now).await?;
                    }
                    if let Some(roles) = &roles {
                        tx.replace_roles(&id, &tenant, roles, now).await?;
                    }
                    for e in events {
                        tx.audit(e);
                    }
                    for e in changes {
                        tx.event(e);
                    }
                    Ok(true)
                })
            })
            .await
            .map_err(profile_conflicts)?
            .then_some(())
            .ok_or(CoreError::NotFound)?;
        self.repo.get_user(id).await?.ok_or(CoreError::NotFound)
    }

    /// Disables a user (every session revoked at once) or enables it again.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %id))]
    pub async fn set_disabled(
        &self,
        actor: &Actor,
        id: UserId,
        disabled: bool,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let user = self.changeable(actor, id).await?;
        let now = now_unix();
        let kind = if disabled {
            AuditKind::UserDisabled
        } else {
            AuditKind::UserEnabled
        };
        let event = self.event(kind, actor, &user, client, now);
        let tenant = user.tenant.clone();
        let revoked = self
            .repo
            .write(move |tx| {
                Box::pin(async move {
                    if !tx.set_disabled(&id, disabled.then_some(now), now).await? {
                        return Ok(None);
                    }
                    let revoked = if disabled {
                        tx.revoke_user_sessions(&id, RevokeReason::UserDisabled, now)
                            .await?
                    } else {
                        Vec::new()
                    };
                    tx.audit(event);
                    let kind = if disabled {
                        EventType::UserDisabled
                    } else {
                        EventType::UserEnabled
                    };
                    tx.event(DomainEvent::new(kind, &tenant, id, now));
                    record_revoked(tx, &tenant, id, &revoked, RevokeReason::UserDisabled, now);
                    Ok(Some(revoked))
                })
            })
            .await?
            .ok_or(CoreError::NotFound)?;
        self.forget(revoked, now);
        Ok(())
    }

    /// Clears a user's failed logins and lock.
    pub async fn unlock(
        &self,
        actor: &Actor,
        id: UserId,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let user = self.changeable(actor, id).await?;
        let event = self.event(AuditKind::UserUnlocked, actor, &user, client, now_unix());
        let found = self
            .repo
            .write(move |tx| {
                Box::pin(async move {
                    let found = tx.clear_lockout(&id).await?;
                    if found {
                        tx.audit(event);
                    }
                    Ok(found)
                })
            })
            .await?;
        found.then_some(()).ok_or(CoreError::NotFound)
    }

    /// Revokes every session of a user.
    pub async fn logout_user(
        &self,
        actor: &Actor,
        id: UserId,
        client: &ClientInfo,
    ) -> Result<usize, CoreError> {
        let user = self.changeable(actor, id).await?;
        let now = now_unix();
        let event = self.event(AuditKind::UserSessionsRevoked, actor, &user, client, now);
        let tenant = user.tenant.clone();
        let revoked = self
            .repo
            .write(move |tx| {
                Box::pin(async move {
                    let reason = RevokeReason::RevokedByAdmin;
                    let revoked = tx.revoke_user_sessions(&id, reason, now).await?;
                    tx.audit(event);
                    record_revoked(tx, &tenant, id, &revoked, reason, now);
                    Ok(revoked)
                })
            })
            .await?;
        let count = revoked.len();
        self.forget(revoked, now);
        Ok(count)
    }

    /// A user's sessions that are neither revoked nor expired.
    pub async fn user_sessions(
        &self,
        actor: &Actor,
        id: UserId,
    ) -> Result<Vec<Session>, CoreError> {
        self.user(actor, id).await?;
        Ok(self.repo.active_sessions(id, now_unix()).await?)
    }

    /// Erases a user within the actor's reach.
    #[instrument(skip_all, err(level = "info"), fields(user_id = %id))]
    pub async fn erase_user(
        &self,
        actor: &Actor,
        id: UserId,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let user = self.changeable(actor, id).await?;
        self.erase(&user, Some(actor.user_id), client).await
    }

    /// Erases the caller's own account once its password checks out (401 otherwise).
    #[instrument(skip_all, err(level = "info"), fields(user_id = %id))]
    pub async fn erase_own(
        &self,
        id: UserId,
        password: Password,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let user = self.own(id).await?;
        self.check_password(&user, &password).await?;
        self.erase(&user, None, client).await
    }

    /// Changes the caller's own email and/or username (never its roles).
    pub async fn update_own(
        &self,
        id: UserId,
        profile: ProfileChanges,
        client: &ClientInfo,
    ) -> Result<User, CoreError> {
        let user = self.own(id).await?;
        if profile.is_empty() {
            return Ok(user);
        }
        let now = now_unix();
        let event = AuditEvent::new(AuditKind::UserUpdated, &user.tenant, now)
            .by_user(id)
            .client(client);
        let change = DomainEvent::user_updated(
            &with_profile(&user, &profile),
            &profile_fields(&profile),
            now,
        );
        let verify = self.to_verify(&user, &profile);
        let flows = self.flows;
        let found = self
            .repo
            .write(move |tx| {
                Box::pin(async move {
                    let found = tx.update_profile(&id, &profile, now).await?;
                    if found {
                        tx.audit(event);
                        tx.event(change);
                        if let Some(changed) = &verify {
                            record_verification(tx, changed, &flows, now).await?;
                        }
                    }
                    Ok(found)
                })
            })
            .await
            .map_err(profile_conflicts)?;
        if !found {
            return Err(CoreError::NotFound);
        }
        self.repo.get_user(id).await?.ok_or(CoreError::NotFound)
    }

    /// Everything held about the caller: profile, roles, sessions and audit entries.
    pub async fn export_own(&self, id: UserId) -> Result<UserExport, CoreError> {
        let user = self.own(id).await?;
        let sessions = self.repo.all_sessions(id).await?;
        let audit = self.repo.audit_of(id).await?;
        Ok(UserExport {
            user,
            sessions,
            audit,
        })
    }

    /// The caller's own account; a disabled one is refused, a gone one is an invalid token.
    async fn own(&self, id: UserId) -> Result<User, CoreError> {
        let user = self
            .repo
            .get_user(id)
            .await?
            .ok_or(CoreError::Token(crate::error::TokenRejection::Claims))?;
        if user.disabled {
            return Err(CoreError::AccountDisabled);
        }
        Ok(user)
    }

    async fn check_password(&self, user: &User, password: &Password) -> Result<(), CoreError> {
        let email =
            crate::domain::Email::parse(&user.email).map_err(|_| CoreError::InvalidCredentials)?;
        let found = self
            .repo
            .find_credentials(&user.tenant, &LoginName::Email(email))
            .await?
            .filter(|c| c.user.id == user.id)
            .map(|c| c.password_hash);
        if self.hasher.verify(found, password).await? {
            Ok(())
        } else {
            Err(CoreError::InvalidCredentials)
        }
    }

    async fn erase(
        &self,
        user: &User,
        actor: Option<UserId>,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let now = now_unix();
        // The audit trail keeps what happened, under an id that names no one.
        let pseudonym = format!("erased:{}", UserId::generate());
        // Erased by an administrator, the event names it; erased by the user itself, it names
        // no one (the user's own id leaves the trail).
        let by = if actor.is_some() { "admin" } else { "self" };
        let event = AuditEvent::new(AuditKind::UserDeleted, &user.tenant, now)
            .actor(actor)
            .client(client)
            .detail(json!({"subject": pseudonym, "by": by}));
        let id = user.id;
        let deleted = DomainEvent::new(EventType::UserDeleted, &user.tenant, id, now)
            .data(json!({ "by": by }));
        let sessions = self
            .repo
            .write(move |tx| {
                Box::pin(async move {
                    let sessions = tx.erase_user(&id, &pseudonym, now).await?;
                    tx.audit(event);
                    if sessions.is_some() {
                        tx.event(deleted);
                    }
                    Ok(sessions)
                })
            })
            .await?
            .ok_or(CoreError::NotFound)?;
        self.forget(sessions, now);
        tracing::info!("user erased");
        Ok(())
    }

    /// Makes revoked sessions' access tokens invalid here at once (other instances learn of
    /// them from the store).
    fn forget(&self, sessions: Vec<SessionId>, at: i64) {
        self.revocations
            .insert(sessions.into_iter().map(|id| (id, at)));
    }

    fn event(
        &self,
        kind: AuditKind,
        actor: &Actor,
        user: &User,
        client: &ClientInfo,
        at: i64,
    ) -> AuditEvent {
        AuditEvent::new(kind, &user.tenant, at)
            .user(user.id)
            .actor(Some(actor.user_id))
            .client(client)
    }
}

/// The user as a profile change leaves it (a new email is unverified).
fn with_profile(user: &User, profile: &ProfileChanges) -> User {
    let mut user = user.clone();
    if let Some(email) = &profile.email {
        user.email = email.as_str().to_owned();
        user.email_verified = false;
    }
    if let Some(username) = &profile.username {
        user.username = username.as_ref().map(|u| u.as_str().to_owned());
    }
    user
}

/// The fields a profile change sets.
fn profile_fields(profile: &ProfileChanges) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if profile.email.is_some() {
        fields.push("email");
    }
    if profile.username.is_some() {
        fields.push("username");
    }
    fields
}

/// Records `auth.session_revoked` for each session a write revoked.
pub(crate) fn record_revoked(
    tx: &mut impl Record,
    tenant: &TenantId,
    user: UserId,
    sessions: &[SessionId],
    reason: RevokeReason,
    at: i64,
) {
    for session in sessions {
        tx.event(DomainEvent::session_revoked(
            tenant, user, *session, reason, at,
        ));
    }
}
