//! Roles and tenants: an administrator's roles and their permissions (never more than the
//! administrator holds), and the tenants a superadmin creates.

use serde_json::json;

use super::DirectoryService;
use crate::audit::{AuditEvent, AuditKind};
use crate::directory::{Actor, Role, Tenant, is_builtin_role, permissions};
use crate::domain::{Permission, ROLE_USER, RoleName, TenantId};
use crate::error::{Conflict, Requirement};
use crate::repo::{
    ActionTokenWrites, DirectoryReads, DirectoryWrites, Record, SessionReads, SessionWrites,
    UnitOfWork, UserReads,
};
use crate::session::ClientInfo;
use crate::{CoreError, StoreError, now_unix};

impl<R> DirectoryService<R>
where
    R: UnitOfWork + UserReads + DirectoryReads + SessionReads,
    R::Tx: DirectoryWrites + SessionWrites + ActionTokenWrites,
{
    /// A tenant's roles, within the actor's reach.
    pub async fn roles(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
    ) -> Result<Vec<Role>, CoreError> {
        let tenant = actor.tenant_for(tenant)?;
        let roles = self.repo.roles(&tenant).await?;
        // Every tenant has its built-in roles: none means no such tenant.
        if roles.is_empty() {
            return Err(CoreError::NotFound);
        }
        Ok(roles)
    }

    /// Creates a role (409 `role_exists` when the name is taken).
    pub async fn create_role(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        name: RoleName,
        description: String,
        permissions: Vec<Permission>,
        client: &ClientInfo,
    ) -> Result<Role, CoreError> {
        let tenant = actor.tenant_for(tenant)?;
        if is_builtin_role(&name) {
            return Err(CoreError::Conflict(Conflict::RoleExists));
        }
        let permissions = self.grantable(actor, permissions)?;
        let now = now_unix();
        let role = Role {
            tenant: tenant.clone(),
            name,
            description,
            builtin: false,
            permissions,
            created_at: now,
        };
        let event = AuditEvent::new(AuditKind::RoleCreated, &tenant, now)
            .actor(Some(actor.user_id))
            .client(client)
            .detail(role_detail(&role));
        let stored = role.clone();
        self.repo
            .write(move |tx| {
                Box::pin(async move {
                    tx.insert_role(&stored).await?;
                    tx.audit(event);
                    Ok(())
                })
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => CoreError::Conflict(Conflict::RoleExists),
                // The tenant a superadmin named does not exist.
                StoreError::MissingReference(_) => CoreError::NotFound,
                other => CoreError::Store(other),
            })?;
        Ok(role)
    }

    /// Replaces a role's description and permissions. `admin` and `superadmin` are fixed;
    /// `user` may be given permissions every user holds.
    pub async fn update_role(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        name: RoleName,
        description: Option<String>,
        permissions: Vec<Permission>,
        client: &ClientInfo,
    ) -> Result<Role, CoreError> {
        let tenant = actor.tenant_for(tenant)?;
        let existing = self.role(&tenant, &name).await?;
        if existing.builtin && name.as_str() != ROLE_USER {
            return Err(CoreError::Conflict(Conflict::BuiltinRole));
        }
        let permissions = self.grantable(actor, permissions)?;
        // What the role held and the caller does not may not be taken away by it either.
        if let Some(p) = actor.missing(&existing.permissions).first() {
            return Err(CoreError::Forbidden(Requirement::Permission(p.clone())));
        }
        let role = Role {
            description: description.unwrap_or(existing.description),
            permissions,
            ..existing
        };
        let event = AuditEvent::new(AuditKind::RoleUpdated, &tenant, now_unix())
            .actor(Some(actor.user_id))
            .client(client)
            .detail(role_detail(&role));
        let stored = role.clone();
        let found = self
            .repo
            .write(move |tx| {
                Box::pin(async move {
                    let found = tx
                        .update_role(
                            &stored.tenant,
                            &stored.name,
                            &stored.description,
                            &stored.permissions,
                        )
                        .await?;
                    if found {
                        tx.audit(event);
                    }
                    Ok(found)
                })
            })
            .await?;
        found.then_some(role).ok_or(CoreError::NotFound)
    }

    /// Deletes a role that is not built in; users holding it lose it.
    pub async fn delete_role(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        name: RoleName,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let tenant = actor.tenant_for(tenant)?;
        let existing = self.role(&tenant, &name).await?;
        if existing.builtin {
            return Err(CoreError::Conflict(Conflict::BuiltinRole));
        }
        if let Some(p) = actor.missing(&existing.permissions).first() {
            return Err(CoreError::Forbidden(Requirement::Permission(p.clone())));
        }
        let event = AuditEvent::new(AuditKind::RoleDeleted, &tenant, now_unix())
            .actor(Some(actor.user_id))
            .client(client)
            .detail(role_detail(&existing));
        let found = self
            .repo
            .write(move |tx| {
                Box::pin(async move {
                    let found = tx.delete_role(&tenant, &name).await?;
                    if found {
                        tx.audit(event);
                    }
                    Ok(found)
                })
            })
            .await?;
        found.then_some(()).ok_or(CoreError::NotFound)
    }

    /// Every tenant (the actor must span tenants).
    pub async fn tenants(&self, actor: Option<&Actor>) -> Result<Vec<Tenant>, CoreError> {
        require_superadmin(actor)?;
        Ok(self.repo.tenants().await?)
    }

    /// Creates a tenant with its built-in roles `admin` and `user`. `actor` is `None` for the
    /// command line.
    pub async fn create_tenant(
        &self,
        actor: Option<&Actor>,
        id: TenantId,
        name: String,
        client: &ClientInfo,
    ) -> Result<Tenant, CoreError> {
        require_superadmin(actor)?;
        let tenant = Tenant {
            id,
            name,
            created_at: now_unix(),
        };
        let event = AuditEvent::new(AuditKind::TenantCreated, &tenant.id, tenant.created_at)
            .actor(actor.map(|a| a.user_id))
            .client(client)
            .detail(json!({"name": tenant.name}));
        let stored = tenant.clone();
        self.repo
            .write(move |tx| {
                Box::pin(async move {
                    tx.insert_tenant(&stored).await?;
                    tx.audit(event);
                    Ok(())
                })
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => CoreError::Conflict(Conflict::TenantExists),
                other => CoreError::Store(other),
            })?;
        Ok(tenant)
    }

    /// Whether a tenant exists.
    pub async fn tenant_exists(&self, id: &TenantId) -> Result<bool, CoreError> {
        Ok(self.repo.tenant(id).await?.is_some())
    }

    async fn role(&self, tenant: &TenantId, name: &RoleName) -> Result<Role, CoreError> {
        self.repo
            .roles(tenant)
            .await?
            .into_iter()
            .find(|r| &r.name == name)
            .ok_or(CoreError::NotFound)
    }

    /// Sorted and deduplicated permissions the actor may grant.
    fn grantable(
        &self,
        actor: &Actor,
        mut permissions: Vec<Permission>,
    ) -> Result<Vec<Permission>, CoreError> {
        permissions.sort();
        permissions.dedup();
        match actor.missing(&permissions).first() {
            Some(p) => Err(CoreError::Forbidden(Requirement::Permission(p.clone()))),
            None => Ok(permissions),
        }
    }
}

fn require_superadmin(actor: Option<&Actor>) -> Result<(), CoreError> {
    match actor {
        Some(a) if !a.holds(permissions::SUPERADMIN) => Err(CoreError::Forbidden(
            Requirement::Permission(permissions::SUPERADMIN.into()),
        )),
        _ => Ok(()),
    }
}

fn role_detail(role: &Role) -> serde_json::Value {
    json!({
        "role": role.name.as_str(),
        "permissions": role.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
    })
}
