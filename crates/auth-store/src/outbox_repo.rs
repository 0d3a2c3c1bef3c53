//! The outbox read back: the channel leases that let one relay per channel run among
//! instances, the entries a relay delivers and what it records of each attempt, and the admin
//! API's listing, backlog, re-queue and retention purge.

use auth_core::StoreError;
use auth_core::domain::TenantId;
use auth_core::outbox::{
    ChannelStats, EventQuery, EventRecord, EventStatus, OutboxEntry, OutboxRepository, clip_error,
};
use auth_core::repo::UnitOfWork;
use sqlx::FromRow;
use tracing::instrument;

use crate::dialect::{Arg, Stmt, portable, sql};
use crate::outbox::{EVENT_CHANNEL, MAIL_CHANNEL};
use crate::{Store, map_err};

/// The columns of an outbox row, in the order of [`Row`].
const COLUMNS: &str = "id, channel, kind, tenant_id, subject, payload, created_at, attempts, \
                       next_attempt_at, last_error, delivered_at, parked_at";

type Row = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

fn payload(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

fn entry(r: Row) -> OutboxEntry {
    OutboxEntry {
        payload: payload(&r.5),
        id: r.0,
        channel: r.1,
        kind: r.2,
        tenant: r.3,
        subject: r.4,
        created_at: r.6,
        attempts: u32::try_from(r.7).unwrap_or(u32::MAX),
    }
}

fn record(r: Row) -> EventRecord {
    EventRecord {
        document: payload(&r.5),
        id: r.0,
        kind: r.2,
        tenant: r.3,
        subject: r.4,
        created_at: r.6,
        attempts: u32::try_from(r.7).unwrap_or(u32::MAX),
        next_attempt_at: r.8,
        last_error: r.9,
        delivered_at: r.10,
        parked_at: r.11,
    }
}

async fn fetch_rows(store: &Store, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
    let rows = stmt
        .query()
        .fetch_all(store.pool())
        .await
        .map_err(map_err)?;
    rows.iter()
        .map(|r| Row::from_row(r).map_err(map_err))
        .collect()
}

impl Store {
    /// Runs one statement as its own unit of work; the number of rows it changed.
    async fn write_one(&self, stmt: Stmt) -> Result<u64, StoreError> {
        self.write(move |tx| Box::pin(async move { tx.execute(stmt).await }))
            .await
    }
}

/// The filters of an event listing that are set, as bits of the statement's shape.
const KIND: usize = 1;
const SUBJECT: usize = 2;
const SINCE: usize = 4;
const UNTIL: usize = 8;
const AFTER: usize = 16;
const PENDING: usize = 32;
const DELIVERED: usize = 64;
const PARKED: usize = 128;

impl OutboxRepository for Store {
    #[instrument(skip_all, err, fields(channel, holder))]
    async fn take_lease(
        &self,
        channel: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        // One statement, atomic on both backends: a free lease is inserted; a held one is
        // updated only when it is the caller's or has expired (else nothing changes).
        let upsert = portable!(
            self.backend(),
            "INSERT INTO outbox_leases (channel, holder, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (channel) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE outbox_leases.holder = excluded.holder OR outbox_leases.expires_at <= ?"
        );
        let stmt = Stmt::new(upsert)
            .bind(channel)
            .bind(holder)
            .bind(until)
            .bind(now);
        Ok(self.write_one(stmt).await? == 1)
    }

    #[instrument(skip_all, err, fields(channel, holder))]
    async fn release_lease(&self, channel: &str, holder: &str) -> Result<(), StoreError> {
        let delete = portable!(
            self.backend(),
            "DELETE FROM outbox_leases WHERE channel = ? AND holder = ?"
        );
        self.write_one(Stmt::new(delete).bind(channel).bind(holder))
            .await?;
        Ok(())
    }

    #[instrument(skip_all, err, fields(channel))]
    async fn pending_entries(
        &self,
        channel: &str,
        now: i64,
        ordered: bool,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        // Both read the partial index of pending rows (channel, id).
        let rows = if ordered {
            // In id order up to the first not due: it holds back those behind it.
            let select = portable!(
                self.backend(),
                format!(
                    "SELECT {COLUMNS} FROM outbox WHERE channel = ? AND delivered_at IS NULL \
                     AND parked_at IS NULL ORDER BY id LIMIT ?"
                )
            );
            let stmt = Stmt::new(select).bind(channel).bind(limit as i64);
            let rows = fetch_rows(self, stmt).await?;
            rows.into_iter().take_while(|r| r.8 <= now).collect()
        } else {
            let select = portable!(
                self.backend(),
                format!(
                    "SELECT {COLUMNS} FROM outbox WHERE channel = ? AND delivered_at IS NULL \
                     AND parked_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?"
                )
            );
            let stmt = Stmt::new(select).bind(channel).bind(now).bind(limit as i64);
            fetch_rows(self, stmt).await?
        };
        Ok(rows.into_iter().map(entry).collect())
    }

    #[instrument(skip_all, err, fields(id))]
    async fn mark_delivered(&self, id: &str, at: i64, delete: bool) -> Result<(), StoreError> {
        let stmt = if delete {
            Stmt::new(portable!(self.backend(), "DELETE FROM outbox WHERE id = ?")).bind(id)
        } else {
            let update = portable!(
                self.backend(),
                "UPDATE outbox SET delivered_at = ?, last_error = NULL WHERE id = ?"
            );
            Stmt::new(update).bind(at).bind(id)
        };
        self.write_one(stmt).await?;
        Ok(())
    }

    #[instrument(skip_all, err, fields(id))]
    async fn record_failure(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: i64,
        parked_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let update = portable!(
            self.backend(),
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, \
             parked_at = ? WHERE id = ? AND delivered_at IS NULL"
        );
        let stmt = Stmt::new(update)
            .bind(clip_error(error))
            .bind(next_attempt_at)
            .bind(parked_at)
            .bind(id);
        self.write_one(stmt).await?;
        Ok(())
    }

    #[instrument(skip_all, err, fields(tenant = %q.tenant))]
    async fn event_page(&self, q: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let status = match q.status {
            None => 0,
            Some(EventStatus::Pending) => PENDING,
            Some(EventStatus::Delivered) => DELIVERED,
            Some(EventStatus::Parked) => PARKED,
        };
        let shape = [
            (KIND, q.kind.is_some()),
            (SUBJECT, q.subject.is_some()),
            (SINCE, q.since.is_some()),
            (UNTIL, q.until.is_some()),
            (AFTER, q.after.is_some()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .fold(status, |bits, (bit, _)| bits | bit);
        let select = sql!(self.backend(), shape, || {
            let mut text = format!(
                "SELECT {COLUMNS} FROM outbox WHERE tenant_id = ? AND channel = '{EVENT_CHANNEL}'"
            );
            for (bit, filter) in [
                (KIND, " AND kind = ?"),
                (SUBJECT, " AND subject = ?"),
                (SINCE, " AND created_at >= ?"),
                (UNTIL, " AND created_at < ?"),
                (
                    AFTER,
                    " AND (created_at < ? OR (created_at = ? AND id < ?))",
                ),
                (PENDING, " AND delivered_at IS NULL AND parked_at IS NULL"),
                (DELIVERED, " AND delivered_at IS NOT NULL"),
                (
                    PARKED,
                    " AND delivered_at IS NULL AND parked_at IS NOT NULL",
                ),
            ] {
                if shape & bit != 0 {
                    text.push_str(filter);
                }
            }
            text.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
            text
        });
        let mut args: Vec<Arg> = vec![q.tenant.as_str().into()];
        if let Some(kind) = q.kind {
            args.push(kind.as_str().into());
        }
        if let Some(subject) = &q.subject {
            args.push(subject.as_str().into());
        }
        args.extend(q.since.map(Arg::from));
        args.extend(q.until.map(Arg::from));
        if let Some(after) = &q.after {
            args.extend([after.at.into(), after.at.into(), after.id.as_str().into()]);
        }
        args.push((q.limit as i64).into());
        let rows = fetch_rows(self, Stmt::new(select).extend(args)).await?;
        Ok(rows.into_iter().map(record).collect())
    }

    #[instrument(skip_all, err)]
    async fn outbox_stats(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<ChannelStats>, StoreError> {
        const PENDING_ROW: &str = "delivered_at IS NULL AND parked_at IS NULL";
        let shape = usize::from(tenant.is_some());
        let select = sql!(self.backend(), shape, || {
            format!(
                "SELECT channel, \
                 SUM(CASE WHEN {PENDING_ROW} THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN delivered_at IS NULL AND parked_at IS NOT NULL THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END), \
                 MIN(CASE WHEN {PENDING_ROW} THEN created_at END) \
                 FROM outbox{} GROUP BY channel ORDER BY channel",
                if shape == 1 {
                    " WHERE tenant_id = ?"
                } else {
                    ""
                }
            )
        });
        let mut stmt = Stmt::new(select);
        if let Some(tenant) = tenant {
            stmt = stmt.bind(tenant.as_str());
        }
        let rows = stmt.query().fetch_all(self.pool()).await.map_err(map_err)?;
        let count = |n: Option<i64>| u64::try_from(n.unwrap_or(0)).unwrap_or(0);
        rows.iter()
            .map(|row| {
                let (channel, pending, parked, delivered, oldest) =
                    <(String, Option<i64>, Option<i64>, Option<i64>, Option<i64>)>::from_row(row)
                        .map_err(map_err)?;
                Ok(ChannelStats {
                    channel,
                    pending: count(pending),
                    parked: count(parked),
                    delivered: count(delivered),
                    oldest_pending_at: oldest,
                })
            })
            .collect()
    }

    #[instrument(skip_all, err, fields(id))]
    async fn requeue_event(
        &self,
        tenant: Option<&TenantId>,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let shape = usize::from(tenant.is_some());
        let update = sql!(self.backend(), shape, || {
            format!(
                "UPDATE outbox SET parked_at = NULL, attempts = 0, next_attempt_at = ? \
                 WHERE id = ? AND channel = '{EVENT_CHANNEL}' AND delivered_at IS NULL \
                 AND parked_at IS NOT NULL{}",
                if shape == 1 { " AND tenant_id = ?" } else { "" }
            )
        });
        let mut stmt = Stmt::new(update).bind(now).bind(id);
        if let Some(tenant) = tenant {
            stmt = stmt.bind(tenant.as_str());
        }
        let requeued = self.write_one(stmt).await? == 1;
        if requeued {
            self.outbox.events_ready.notify_one();
        }
        Ok(requeued)
    }

    #[instrument(skip_all, err)]
    async fn purge_events(
        &self,
        before: i64,
        undelivered: bool,
        batch: usize,
    ) -> Result<u64, StoreError> {
        // Nothing due (the usual case): a read, and no write at all.
        let (due, delete) = if undelivered {
            (
                portable!(
                    self.backend(),
                    format!(
                        "SELECT id FROM outbox WHERE channel = '{EVENT_CHANNEL}' \
                         AND created_at < ? LIMIT 1"
                    )
                ),
                portable!(
                    self.backend(),
                    format!(
                        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
                         WHERE channel = '{EVENT_CHANNEL}' AND created_at < ? LIMIT ?)"
                    )
                ),
            )
        } else {
            (
                portable!(
                    self.backend(),
                    format!(
                        "SELECT id FROM outbox WHERE channel = '{EVENT_CHANNEL}' \
                         AND delivered_at < ? LIMIT 1"
                    )
                ),
                portable!(
                    self.backend(),
                    format!(
                        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
                         WHERE channel = '{EVENT_CHANNEL}' AND delivered_at < ? LIMIT ?)"
                    )
                ),
            )
        };
        let found = Stmt::new(due)
            .bind(before)
            .query()
            .fetch_optional(self.pool());
        if found.await.map_err(map_err)?.is_none() {
            return Ok(0);
        }
        self.write_one(Stmt::new(delete).bind(before).bind(batch as i64))
            .await
    }

    async fn purge_mail(&self, before: i64, batch: usize) -> Result<u64, StoreError> {
        let due = portable!(
            self.backend(),
            format!(
                "SELECT id FROM outbox WHERE channel = '{MAIL_CHANNEL}' AND created_at < ? LIMIT 1"
            )
        );
        let found = Stmt::new(due)
            .bind(before)
            .query()
            .fetch_optional(self.pool());
        if found.await.map_err(map_err)?.is_none() {
            return Ok(0);
        }
        let delete = portable!(
            self.backend(),
            format!(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
                 WHERE channel = '{MAIL_CHANNEL}' AND created_at < ? LIMIT ?)"
            )
        );
        self.write_one(Stmt::new(delete).bind(before).bind(batch as i64))
            .await
    }
}
