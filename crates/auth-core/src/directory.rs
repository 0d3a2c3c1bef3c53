//! The directory an administrator manages: tenants, roles with their permissions, and the
//! rules of who may grant what. Values here are validated; the admin service
//! ([`crate::service::AdminService`]) applies them.

use crate::domain::{
    Email, Permission, ROLE_ADMIN, ROLE_USER, RoleName, TenantId, UserId, Username,
};

/// The permissions the service itself checks. Every other permission (`orders:read`, ...) is
/// the platform's own: roles may hold it and tokens carry it, for downstream services.
pub mod permissions {
    pub const USERS_READ: &str = "users:read";
    pub const USERS_WRITE: &str = "users:write";
    pub const SESSIONS_REVOKE: &str = "sessions:revoke";
    pub const ROLES_READ: &str = "roles:read";
    pub const ROLES_WRITE: &str = "roles:write";
    pub const AUDIT_READ: &str = "audit:read";
    pub const KEYS_READ: &str = "keys:read";
    pub const KEYS_ROTATE: &str = "keys:rotate";
    pub const TENANTS_WRITE: &str = "tenants:write";
    /// The event outbox: list events and see the backlog.
    pub const EVENTS_READ: &str = "events:read";
    /// The event outbox: re-queue parked events.
    pub const EVENTS_WRITE: &str = "events:write";
    /// Spans tenants: its holder acts on every tenant.
    pub const SUPERADMIN: &str = "superadmin";

    /// What a tenant's built-in `admin` role holds.
    pub const TENANT_ADMIN: [&str; 8] = [
        USERS_READ,
        USERS_WRITE,
        ROLES_READ,
        ROLES_WRITE,
        SESSIONS_REVOKE,
        AUDIT_READ,
        EVENTS_READ,
        EVENTS_WRITE,
    ];

    /// Whether a permission is one the service checks (and so one a caller may grant only
    /// when it holds it itself).
    pub fn is_reserved(permission: &str) -> bool {
        permission == SUPERADMIN
            || [
                "users:",
                "roles:",
                "sessions:",
                "audit:",
                "keys:",
                "tenants:",
                "events:",
            ]
            .iter()
            .any(|p| permission.starts_with(p))
    }
}

/// The role of the default tenant that holds `superadmin`.
pub const ROLE_SUPERADMIN: &str = "superadmin";

/// Whether a role is built in: it cannot be deleted, and only `user`'s permissions may be
/// changed (`admin` holds every admin permission of its tenant by definition).
pub fn is_builtin_role(name: &RoleName) -> bool {
    [ROLE_ADMIN, ROLE_USER, ROLE_SUPERADMIN].contains(&name.as_str())
}

/// The tenants a caller may act on: its own, or every one for a `superadmin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantScope {
    Only(TenantId),
    All,
}

impl TenantScope {
    /// The scope of a caller of `tenant` holding `permissions`.
    pub fn of(tenant: &TenantId, permissions: &[Permission]) -> Self {
        if permissions
            .iter()
            .any(|p| p.as_str() == permissions::SUPERADMIN)
        {
            Self::All
        } else {
            Self::Only(tenant.clone())
        }
    }

    /// Whether something of `tenant` is within reach; what is not is answered as if it did
    /// not exist (404), never as forbidden.
    pub fn allows(&self, tenant: &TenantId) -> bool {
        match self {
            Self::All => true,
            Self::Only(own) => own == tenant,
        }
    }
}

/// Who acts through the admin API: the caller's tenant, its scope and what it holds.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: UserId,
    pub tenant: TenantId,
    pub scope: TenantScope,
    pub permissions: Vec<Permission>,
}

impl Actor {
    pub fn new(user_id: UserId, tenant: TenantId, permissions: Vec<Permission>) -> Self {
        let scope = TenantScope::of(&tenant, &permissions);
        Self {
            user_id,
            tenant,
            scope,
            permissions,
        }
    }

    pub fn holds(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p.as_str() == permission)
    }

    /// The tenant an operation acts on: the one asked for, if within reach, else the
    /// caller's own. A tenant out of reach is [`crate::CoreError::NotFound`].
    pub fn tenant_for(&self, asked: Option<TenantId>) -> Result<TenantId, crate::CoreError> {
        match asked {
            Some(t) if self.scope.allows(&t) => Ok(t),
            Some(_) => Err(crate::CoreError::NotFound),
            None => Ok(self.tenant.clone()),
        }
    }

    /// The reserved permissions among `granted` that the caller does not hold itself: a
    /// caller cannot grant (through a role it edits or a role it assigns) more than it has.
    pub fn missing<'a>(&self, granted: impl IntoIterator<Item = &'a Permission>) -> Vec<String> {
        let mut missing: Vec<String> = granted
            .into_iter()
            .filter(|p| permissions::is_reserved(p.as_str()) && !self.holds(p.as_str()))
            .map(|p| p.as_str().to_owned())
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: i64,
}

/// A role of a tenant with the permissions it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub tenant: TenantId,
    pub name: RoleName,
    pub description: String,
    pub builtin: bool,
    /// Sorted, without duplicates.
    pub permissions: Vec<Permission>,
    pub created_at: i64,
}

/// Which users a listing returns.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Users whose normalised email starts with this (lower-cased).
    pub email_prefix: Option<String>,
    pub role: Option<RoleName>,
    pub disabled: Option<bool>,
}

/// Changes to a user's profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    pub email: Option<Email>,
    /// `Some(None)` removes the username.
    pub username: Option<Option<Username>>,
}

impl ProfileChanges {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.username.is_none()
    }
}

/// The largest page of a user listing.
pub const MAX_PAGE: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(tenant: &str, perms: &[&str]) -> Actor {
        Actor::new(
            UserId::generate(),
            TenantId::trusted(tenant),
            perms.iter().map(|p| Permission::trusted(*p)).collect(),
        )
    }

    #[test]
    fn a_caller_grants_only_reserved_permissions_it_holds() {
        let admin = actor("acme", &permissions::TENANT_ADMIN);
        let wanted = [
            Permission::trusted("orders:read"),
            Permission::trusted("users:write"),
            Permission::trusted("superadmin"),
            Permission::trusted("keys:rotate"),
        ];
        assert_eq!(admin.missing(&wanted), ["keys:rotate", "superadmin"]);
        let root = actor("default", &["superadmin", "keys:rotate"]);
        assert!(root.missing(&wanted[2..]).is_empty());
    }

    #[test]
    fn tenants_out_of_reach_are_not_found() {
        let admin = actor("acme", &["users:read"]);
        assert_eq!(admin.tenant_for(None).unwrap().as_str(), "acme");
        assert!(admin.tenant_for(Some(TenantId::trusted("beta"))).is_err());
        let root = actor("default", &["superadmin"]);
        assert_eq!(root.scope, TenantScope::All);
        assert_eq!(
            root.tenant_for(Some(TenantId::trusted("beta")))
                .unwrap()
                .as_str(),
            "beta"
        );
    }
}
