//! The event outbox as the admin API reads it: a tenant's events (filtered, a page at a time),
//! the backlog of each channel, re-queuing a parked event, and the retention purge.

use tracing::instrument;

use crate::directory::{Actor, TenantScope};
use crate::domain::TenantId;
use crate::events::EventType;
use crate::outbox::{
    ChannelStats, EventPosition, EventQuery, EventRecord, EventStatus, MAX_EVENT_PAGE,
    OutboxRepository,
};
use crate::{CoreError, now_unix};

/// What an administrator filters an event listing by.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub kind: Option<EventType>,
    /// A user id.
    pub subject: Option<String>,
    pub status: Option<EventStatus>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
}

/// A page of events and the position after its last one, when another page may follow.
pub type EventPage = (Vec<EventRecord>, Option<EventPosition>);

/// Event rows purged per transaction.
pub const EVENT_PURGE_BATCH: usize = 500;

/// The tenant an action is limited to: the one asked for (within reach) or the actor's own;
/// none (every tenant) for an actor that spans tenants and named none.
fn reach(actor: &Actor, tenant: Option<TenantId>) -> Result<Option<TenantId>, CoreError> {
    match tenant {
        None if actor.scope == TenantScope::All => Ok(None),
        asked => actor.tenant_for(asked).map(Some),
    }
}

/// Days a mail row is kept at most (sent rows are deleted at once).
pub const MAIL_KEPT_DAYS: i64 = 7;

/// Reading, re-queuing and purging the event outbox.
pub struct EventService<R> {
    repo: R,
}

impl<R: OutboxRepository> EventService<R> {
    pub fn new(repo: R) -> Self {
        Self { repo }
    }

    /// A page of a tenant's events (the actor's own tenant unless it spans tenants), newest
    /// first.
    pub async fn list(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: EventFilter,
        after: Option<EventPosition>,
        limit: usize,
    ) -> Result<EventPage, CoreError> {
        let tenant = actor.tenant_for(tenant)?;
        let limit = limit.clamp(1, MAX_EVENT_PAGE);
        let query = EventQuery {
            tenant,
            kind: filter.kind,
            subject: filter.subject,
            status: filter.status,
            since: filter.since,
            until: filter.until,
            after,
            // One more than asked tells whether another page follows.
            limit: limit + 1,
        };
        let mut items = self.repo.event_page(&query).await?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|e| EventPosition {
                at: e.created_at,
                id: e.id.clone(),
            })
        } else {
            None
        };
        Ok((items, next))
    }

    /// The backlog of each channel: of the actor's tenant, or of every tenant for one that
    /// spans tenants (`tenant` names one of them).
    pub async fn stats(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
    ) -> Result<Vec<ChannelStats>, CoreError> {
        let scope = reach(actor, tenant)?;
        Ok(self.repo.outbox_stats(scope.as_ref()).await?)
    }

    /// The backlog of every channel, every tenant (for metrics).
    pub async fn all_stats(&self) -> Result<Vec<ChannelStats>, CoreError> {
        Ok(self.repo.outbox_stats(None).await?)
    }

    /// Re-queues a parked event of the actor's reach: [`CoreError::NotFound`] when there is
    /// no parked event of that id in its tenant (or, for one that spans tenants, in any).
    #[instrument(skip_all, err(level = "warn"), fields(id))]
    pub async fn retry(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        id: &str,
    ) -> Result<(), CoreError> {
        let scope = reach(actor, tenant)?;
        if self
            .repo
            .requeue_event(scope.as_ref(), id, now_unix())
            .await?
        {
            tracing::info!(id, "parked event re-queued");
            Ok(())
        } else {
            Err(CoreError::NotFound)
        }
    }

    /// Deletes mail rows recorded more than `MAIL_KEPT_DAYS` ago, sent or not: parked mail
    /// and mail kept while the transport is `off` (their links have long expired). How many.
    pub async fn purge_mail(&self) -> Result<u64, CoreError> {
        let before = now_unix() - MAIL_KEPT_DAYS * 86_400;
        let mut purged = 0;
        loop {
            let n = self.repo.purge_mail(before, EVENT_PURGE_BATCH).await?;
            purged += n;
            if n < EVENT_PURGE_BATCH as u64 {
                break;
            }
        }
        if purged > 0 {
            tracing::info!(purged, "old mail purged from the outbox");
        }
        Ok(purged)
    }

    /// Deletes the event rows delivered more than `retention_days` ago (none when it is 0);
    /// with `undelivered` (no broker configured), also those recorded before then. How many.
    #[instrument(skip_all, err(level = "warn"), fields(retention_days))]
    pub async fn purge(&self, retention_days: u32, undelivered: bool) -> Result<u64, CoreError> {
        if retention_days == 0 {
            return Ok(0);
        }
        let before = now_unix() - i64::from(retention_days) * 86_400;
        let mut purged = 0;
        loop {
            let n = self
                .repo
                .purge_events(before, undelivered, EVENT_PURGE_BATCH)
                .await?;
            purged += n;
            if n < EVENT_PURGE_BATCH as u64 {
                break;
            }
        }
        if purged > 0 {
            tracing::info!(purged, "events past their retention purged");
        }
        Ok(purged)
    }
}
