//! The audit log as read back: the admin API's listing (tenant-scoped, filtered, a page at a
//! time), a user's own recent security events, and the purge of entries past their retention.

use tracing::instrument;

use crate::audit::{
    AuditKind, AuditPosition, AuditQuery, AuditRecord, AuditRepository, MAX_AUDIT_PAGE,
};
use crate::directory::Actor;
use crate::domain::{TenantId, UserId};
use crate::{CoreError, now_unix};

/// What an administrator filters an audit listing by.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// A user id, or the pseudonym of an erased user.
    pub user: Option<String>,
    pub kind: Option<AuditKind>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
}

/// A page of entries and the position after its last one, when another page may follow.
pub type AuditPage = (Vec<AuditRecord>, Option<AuditPosition>);

/// Entries purged per transaction: small enough that SQLite's writer is never held long.
pub const PURGE_BATCH: usize = 500;

/// Reading and purging the audit log.
pub struct AuditService<R> {
    repo: R,
}

impl<R: AuditRepository> AuditService<R> {
    pub fn new(repo: R) -> Self {
        Self { repo }
    }

    /// A page of a tenant's entries (the actor's own tenant unless it spans tenants), newest
    /// first.
    pub async fn list(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: AuditFilter,
        after: Option<AuditPosition>,
        limit: usize,
    ) -> Result<AuditPage, CoreError> {
        let tenant = actor.tenant_for(tenant)?;
        self.page(AuditQuery {
            tenant,
            user: filter.user,
            kind: filter.kind,
            since: filter.since,
            until: filter.until,
            after,
            limit: limit.clamp(1, MAX_AUDIT_PAGE),
        })
        .await
    }

    /// The caller's own recent security events, newest first. An event an administrator
    /// caused shows neither who it was nor where it came from (its actor, address, user
    /// agent and request id are left out); everything else is the user's own.
    pub async fn own_activity(
        &self,
        user: UserId,
        tenant: &TenantId,
        after: Option<AuditPosition>,
        limit: usize,
    ) -> Result<AuditPage, CoreError> {
        let own = user.to_string();
        let (mut items, next) = self
            .page(AuditQuery {
                tenant: tenant.clone(),
                user: Some(own.clone()),
                kind: None,
                since: None,
                until: None,
                after,
                limit: limit.clamp(1, MAX_AUDIT_PAGE),
            })
            .await?;
        for item in &mut items {
            if item.actor_id.as_ref().is_some_and(|a| *a != own) {
                item.actor_id = None;
                item.ip = None;
                item.user_agent = None;
                item.request_id = None;
            }
        }
        Ok((items, next))
    }

    async fn page(&self, mut query: AuditQuery) -> Result<AuditPage, CoreError> {
        let limit = query.limit;
        // One more than asked tells whether another page follows.
        query.limit = limit + 1;
        let mut items = self.repo.audit_page(&query).await?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|e| AuditPosition {
                at: e.at,
                id: e.id.clone(),
            })
        } else {
            None
        };
        Ok((items, next))
    }

    /// Deletes the entries older than `retention_days` (none when it is 0), a bounded batch
    /// per transaction; how many.
    #[instrument(skip_all, err(level = "warn"), fields(retention_days))]
    pub async fn purge(&self, retention_days: u32) -> Result<u64, CoreError> {
        if retention_days == 0 {
            return Ok(0);
        }
        let before = now_unix() - i64::from(retention_days) * 86_400;
        let mut purged = 0;
        loop {
            let n = self.repo.purge_audit(before, PURGE_BATCH).await?;
            purged += n;
            if n < PURGE_BATCH as u64 {
                break;
            }
        }
        if purged > 0 {
            tracing::info!(purged, "audit entries past their retention purged");
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::audit::AuditEvent;
    use crate::domain::Permission;
    use crate::session::ClientInfo;
    use crate::testing::MemoryRepo;

    fn client(ip: &str) -> ClientInfo {
        ClientInfo {
            ip: Some(ip.into()),
            user_agent: Some("ua".into()),
            request_id: Some(format!("req-{ip}")),
        }
    }

    fn admin_of(tenant: &str) -> Actor {
        Actor::new(
            UserId::generate(),
            TenantId::trusted(tenant),
            vec![Permission::trusted("audit:read")],
        )
    }

    #[tokio::test]
    async fn a_listing_is_its_tenants_newest_first_a_page_at_a_time() {
        let repo = MemoryRepo::default();
        let acme = TenantId::trusted("acme");
        let user = UserId::generate();
        for at in 1..=5 {
            repo.push_audit(AuditEvent::new(AuditKind::LoginSucceeded, &acme, at).by_user(user));
        }
        repo.push_audit(AuditEvent::new(
            AuditKind::LoginFailed,
            &TenantId::trusted("beta"),
            9,
        ));
        let audit = AuditService::new(repo);
        let admin = admin_of("acme");
        let (first, next) = audit
            .list(&admin, None, AuditFilter::default(), None, 2)
            .await
            .unwrap();
        assert_eq!(first.iter().map(|e| e.at).collect::<Vec<_>>(), [5, 4]);
        let (rest, end) = audit
            .list(&admin, None, AuditFilter::default(), next, 10)
            .await
            .unwrap();
        assert_eq!(rest.iter().map(|e| e.at).collect::<Vec<_>>(), [3, 2, 1]);
        assert!(end.is_none());
        let beta = audit
            .list(
                &admin,
                Some(TenantId::trusted("beta")),
                AuditFilter::default(),
                None,
                10,
            )
            .await;
        assert!(matches!(beta, Err(CoreError::NotFound)), "{beta:?}");
        let failed = AuditFilter {
            kind: Some(AuditKind::LoginFailed),
            ..Default::default()
        };
        let (none, _) = audit.list(&admin, None, failed, None, 10).await.unwrap();
        assert!(none.is_empty(), "beta's failed login is not acme's");
    }

    #[tokio::test]
    async fn own_activity_hides_who_an_administrator_was_and_where_from() {
        let repo = MemoryRepo::default();
        let acme = TenantId::trusted("acme");
        let (user, admin, other) = (UserId::generate(), UserId::generate(), UserId::generate());
        repo.push_audit(
            AuditEvent::new(AuditKind::LoginSucceeded, &acme, 1)
                .by_user(user)
                .client(&client("10.0.0.1")),
        );
        repo.push_audit(
            AuditEvent::new(AuditKind::UserDisabled, &acme, 2)
                .user(user)
                .actor(Some(admin))
                .client(&client("10.9.9.9")),
        );
        repo.push_audit(
            AuditEvent::new(AuditKind::LoginFailed, &acme, 3)
                .user(user)
                .client(&client("10.6.6.6"))
                .detail(json!({"reason": "wrong_password"})),
        );
        repo.push_audit(AuditEvent::new(AuditKind::LoginSucceeded, &acme, 4).by_user(other));
        let audit = AuditService::new(repo);
        let (items, _) = audit.own_activity(user, &acme, None, 50).await.unwrap();
        let kinds: Vec<&str> = items.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["login.failed", "user.disabled", "login.succeeded"]);
        assert_eq!(
            items[0].ip.as_deref(),
            Some("10.6.6.6"),
            "an attempt on the account shows"
        );
        assert_eq!(items[1].actor_id, None);
        assert_eq!(items[1].ip, None);
        assert_eq!(items[1].request_id, None);
        assert_eq!(items[2].actor_id, Some(user.to_string()));
        assert_eq!(items[2].request_id.as_deref(), Some("req-10.0.0.1"));
    }

    #[tokio::test]
    async fn a_purge_removes_what_is_past_retention_in_batches_and_zero_keeps_all() {
        let repo = MemoryRepo::default();
        let t = TenantId::trusted("acme");
        let old = now_unix() - 40 * 86_400;
        for _ in 0..(PURGE_BATCH * 2 + 3) {
            repo.push_audit(AuditEvent::new(AuditKind::LoginFailed, &t, old));
        }
        repo.push_audit(AuditEvent::new(AuditKind::LoginFailed, &t, now_unix()));
        let audit = AuditService::new(repo.clone());
        assert_eq!(audit.purge(0).await.unwrap(), 0);
        assert_eq!(audit.purge(60).await.unwrap(), 0);
        assert_eq!(audit.purge(30).await.unwrap(), (PURGE_BATCH * 2 + 3) as u64);
        assert_eq!(repo.audit_events().len(), 1);
    }
}
