//! The outbox of [`MemoryRepo`]: rows written at commit like the store's (UUIDv7 ids), the
//! channel leases, and the relay's and admin API's reads and writes, with the store's rules.

use crate::StoreError;
use crate::domain::TenantId;
use crate::events::{DomainEvent, MailSeal, OutgoingMail};
use crate::outbox::{
    ChannelStats, EventQuery, EventRecord, EventStatus, OutboxEntry, OutboxRepository, clip_error,
};

use super::MemoryRepo;

/// An outbox row: its channel and what the admin API shows of it.
#[derive(Debug, Clone)]
pub(super) struct OutboxRow {
    pub(super) channel: String,
    pub(super) record: EventRecord,
}

/// The rows of events and mails written by a commit.
pub(super) fn rows_of(events: &[DomainEvent], mails: &[OutgoingMail]) -> Vec<OutboxRow> {
    let row = |channel: &str, kind: &str, tenant: &TenantId, subject, at, document| OutboxRow {
        channel: channel.to_owned(),
        record: EventRecord {
            id: String::new(),
            kind: kind.to_owned(),
            tenant: tenant.as_str().to_owned(),
            subject,
            document,
            created_at: at,
            attempts: 0,
            next_attempt_at: at,
            last_error: None,
            delivered_at: None,
            parked_at: None,
        },
    };
    let events = events.iter().map(|e| {
        let id = uuid::Uuid::now_v7().to_string();
        let mut r = row(
            "event",
            e.kind.as_str(),
            &e.tenant,
            Some(e.subject.to_string()),
            e.at,
            e.document(&id),
        );
        r.record.id = id;
        r
    });
    let mails = mails.iter().map(|m| {
        let id = uuid::Uuid::now_v7().to_string();
        let payload = m.payload(&id, &MailSeal::default());
        let subject = m.user.map(|u| u.to_string());
        let mut r = row(
            "mail",
            m.template.as_str(),
            &m.tenant,
            subject,
            m.at,
            payload,
        );
        r.record.id = id;
        r
    });
    events.chain(mails).collect()
}

impl MemoryRepo {
    /// Writes an event to the outbox as if a unit of work had recorded it.
    pub fn push_event(&self, event: DomainEvent) {
        let rows = rows_of(std::slice::from_ref(&event), &[]);
        let mut state = self.state();
        state.events.push(event);
        state.outbox.extend(rows);
    }

    /// The outbox rows of `channel`, in id order, as the admin API shows them.
    pub fn outbox_rows(&self, channel: &str) -> Vec<EventRecord> {
        let mut rows: Vec<EventRecord> = self
            .state()
            .outbox
            .iter()
            .filter(|r| r.channel == channel)
            .map(|r| r.record.clone())
            .collect();
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        rows
    }
}

fn pending(r: &EventRecord) -> bool {
    r.delivered_at.is_none() && r.parked_at.is_none()
}

impl OutboxRepository for MemoryRepo {
    async fn take_lease(
        &self,
        channel: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.leases.iter_mut().find(|(c, _, _)| c == channel) {
            Some((_, h, expires)) if h == holder || *expires <= now => {
                *h = holder.to_owned();
                *expires = until;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => {
                state
                    .leases
                    .push((channel.to_owned(), holder.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, channel: &str, holder: &str) -> Result<(), StoreError> {
        self.state()
            .leases
            .retain(|(c, h, _)| !(c == channel && h == holder));
        Ok(())
    }

    async fn pending_entries(
        &self,
        channel: &str,
        now: i64,
        ordered: bool,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut rows: Vec<&OutboxRow> = Vec::new();
        let state = self.state();
        rows.extend(
            state
                .outbox
                .iter()
                .filter(|r| r.channel == channel && pending(&r.record)),
        );
        rows.sort_by(|a, b| a.record.id.cmp(&b.record.id));
        let due = |r: &&OutboxRow| r.record.next_attempt_at <= now;
        let rows: Vec<&OutboxRow> = if ordered {
            rows.into_iter().take_while(due).collect()
        } else {
            rows.into_iter().filter(due).collect()
        };
        Ok(rows
            .into_iter()
            .take(limit)
            .map(|r| OutboxEntry {
                id: r.record.id.clone(),
                channel: r.channel.clone(),
                kind: r.record.kind.clone(),
                tenant: r.record.tenant.clone(),
                subject: r.record.subject.clone(),
                payload: r.record.document.clone(),
                created_at: r.record.created_at,
                attempts: r.record.attempts,
            })
            .collect())
    }

    async fn mark_delivered(&self, id: &str, at: i64, delete: bool) -> Result<(), StoreError> {
        let mut state = self.state();
        if delete {
            state.outbox.retain(|r| r.record.id != id);
        } else if let Some(r) = state.outbox.iter_mut().find(|r| r.record.id == id) {
            r.record.delivered_at = Some(at);
            r.record.last_error = None;
        }
        Ok(())
    }

    async fn record_failure(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: i64,
        parked_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(r) = state
            .outbox
            .iter_mut()
            .find(|r| r.record.id == id && r.record.delivered_at.is_none())
        {
            r.record.attempts += 1;
            r.record.last_error = Some(clip_error(error));
            r.record.next_attempt_at = next_attempt_at;
            r.record.parked_at = parked_at;
        }
        Ok(())
    }

    async fn event_page(&self, q: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let mut rows: Vec<EventRecord> = self
            .state()
            .outbox
            .iter()
            .filter(|r| r.channel == "event" && r.record.tenant == q.tenant.as_str())
            .map(|r| r.record.clone())
            .filter(|r| q.kind.is_none_or(|k| r.kind == k.as_str()))
            .filter(|r| q.subject.is_none() || r.subject == q.subject)
            .filter(|r| q.status.is_none_or(|s| r.status() == s))
            .filter(|r| q.since.is_none_or(|t| r.created_at >= t))
            .filter(|r| q.until.is_none_or(|t| r.created_at < t))
            .filter(|r| {
                q.after
                    .as_ref()
                    .is_none_or(|p| (r.created_at, r.id.as_str()) < (p.at, p.id.as_str()))
            })
            .collect();
        rows.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        rows.truncate(q.limit);
        Ok(rows)
    }

    async fn outbox_stats(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<ChannelStats>, StoreError> {
        let mut stats: Vec<ChannelStats> = Vec::new();
        for r in self.state().outbox.iter() {
            if tenant.is_some_and(|t| t.as_str() != r.record.tenant) {
                continue;
            }
            let i = match stats.iter().position(|s| s.channel == r.channel) {
                Some(i) => i,
                None => {
                    stats.push(ChannelStats {
                        channel: r.channel.clone(),
                        ..ChannelStats::default()
                    });
                    stats.len() - 1
                }
            };
            let s = &mut stats[i];
            match r.record.status() {
                EventStatus::Pending => {
                    s.pending += 1;
                    let at = r.record.created_at;
                    s.oldest_pending_at = Some(s.oldest_pending_at.map_or(at, |o| o.min(at)));
                }
                EventStatus::Parked => s.parked += 1,
                EventStatus::Delivered => s.delivered += 1,
            }
        }
        stats.sort_by(|a, b| a.channel.cmp(&b.channel));
        Ok(stats)
    }

    async fn requeue_event(
        &self,
        tenant: Option<&TenantId>,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let found = state.outbox.iter_mut().find(|r| {
            r.channel == "event"
                && r.record.id == id
                && r.record.status() == EventStatus::Parked
                && tenant.is_none_or(|t| t.as_str() == r.record.tenant)
        });
        Ok(found.is_some_and(|r| {
            r.record.parked_at = None;
            r.record.attempts = 0;
            r.record.next_attempt_at = now;
            true
        }))
    }

    async fn purge_events(
        &self,
        before: i64,
        undelivered: bool,
        batch: usize,
    ) -> Result<u64, StoreError> {
        let mut state = self.state();
        let mut purged = 0;
        state.outbox.retain(|r| {
            let due = r.channel == "event"
                && (r.record.delivered_at.is_some_and(|d| d < before)
                    || (undelivered && r.record.created_at < before));
            let purge = due && purged < batch;
            purged += usize::from(purge);
            !purge
        });
        Ok(purged as u64)
    }

    async fn purge_mail(&self, before: i64, batch: usize) -> Result<u64, StoreError> {
        let mut state = self.state();
        let mut purged = 0;
        state.outbox.retain(|r| {
            let purge = r.channel == "mail" && r.record.created_at < before && purged < batch;
            purged += usize::from(purge);
            !purge
        });
        Ok(purged as u64)
    }
}
