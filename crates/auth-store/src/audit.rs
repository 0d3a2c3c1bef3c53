//! The audit trail's table: how an event recorded on a unit of work is written (and logged
//! once its transaction commits), listed for the admin API and purged after its retention.

use auth_core::StoreError;
use auth_core::audit::{AuditEvent, AuditQuery, AuditRecord, AuditRepository};
use auth_core::repo::UnitOfWork;
use sqlx::FromRow;
use tracing::instrument;

use crate::dialect::{Arg, Backend, Stmt, portable, sql};
use crate::{Store, map_err};

/// The columns of `audit_events` an event fills, in the order of [`audit_args`].
pub(crate) const AUDIT_COLUMNS: &str = "id, tenant_id, kind, actor_id, user_id, session_id, ip, \
                                        user_agent, request_id, outcome, details, created_at";

/// Placeholders of [`AUDIT_COLUMNS`].
pub(crate) const AUDIT_VALUES: &str = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?";

/// Client details are capped in size so a hostile user agent cannot bloat the table.
pub(crate) fn clip(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|v| v.chars().take(512).collect())
}

/// A new event id (UUIDv7: ids of one second sort in the order they were made).
pub(crate) fn new_audit_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The values of an event's row with this id, in the order of [`AUDIT_COLUMNS`].
pub(crate) fn audit_args(id: &str, e: &AuditEvent) -> [Arg; 12] {
    [
        id.into(),
        e.tenant.as_str().into(),
        e.kind.as_str().into(),
        e.actor_id.map(|id| id.to_string()).into(),
        e.user_id.map(|id| id.to_string()).into(),
        e.session_id.map(|id| id.to_string()).into(),
        clip(&e.client.ip).into(),
        clip(&e.client.user_agent).into(),
        clip(&e.client.request_id).into(),
        e.outcome.as_str().into(),
        e.detail.to_string().into(),
        e.at.into(),
    ]
}

/// The insert of one event with this id.
pub(crate) fn audit_insert(backend: Backend, id: &str, event: &AuditEvent) -> Stmt {
    let sql = portable!(
        backend,
        format!("INSERT INTO audit_events ({AUDIT_COLUMNS}) VALUES ({AUDIT_VALUES})")
    );
    Stmt::new(sql).extend(audit_args(id, event))
}

/// Logs stored events, once their transaction has committed: one line each, target
/// `audit`, field `audit=true` (details hold no secret by construction).
pub(crate) fn log_committed<'a>(events: impl IntoIterator<Item = (&'a String, &'a AuditEvent)>) {
    for (id, e) in events {
        tracing::info!(
            target: "audit",
            audit = true,
            id = %id,
            r#type = e.kind.as_str(),
            outcome = e.outcome.as_str(),
            tenant = e.tenant.as_str(),
            actor_id = e.actor_id.map(tracing::field::display),
            user_id = e.user_id.map(tracing::field::display),
            session_id = e.session_id.map(tracing::field::display),
            ip = e.client.ip.as_deref(),
            user_agent = clip(&e.client.user_agent).as_deref(),
            request_id = e.client.request_id.as_deref(),
            details = %e.detail,
            at = e.at,
            "audit event"
        );
    }
}

type AuditRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
);

/// What a select of [`AUDIT_COLUMNS`] reads.
pub(crate) fn audit_record(row: AuditRow) -> AuditRecord {
    let (id, tenant, kind, actor_id, user_id, session_id, ip, user_agent, request_id, outcome) = (
        row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9,
    );
    AuditRecord {
        id,
        tenant,
        kind,
        actor_id,
        user_id,
        session_id,
        ip,
        user_agent,
        request_id,
        outcome,
        detail: serde_json::from_str(&row.10).unwrap_or(serde_json::Value::Null),
        at: row.11,
    }
}

/// Reads the rows of a select of [`AUDIT_COLUMNS`] with its arguments.
pub(crate) async fn fetch_audit(
    store: &Store,
    select: &'static str,
    args: Vec<Arg>,
) -> Result<Vec<AuditRecord>, StoreError> {
    let query = Stmt::new(select).extend(args).query();
    let rows = query.fetch_all(store.pool()).await.map_err(map_err)?;
    rows.iter()
        .map(AuditRow::from_row)
        .map(|r| r.map(audit_record).map_err(map_err))
        .collect()
}

/// The filters of an audit listing that are set, as bits of the statement's shape.
const USER: usize = 1;
const KIND: usize = 2;
const SINCE: usize = 4;
const UNTIL: usize = 8;
const AFTER: usize = 16;

impl AuditRepository for Store {
    #[instrument(skip_all, err, fields(tenant = %q.tenant))]
    async fn audit_page(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let shape = [
            (USER, q.user.is_some()),
            (KIND, q.kind.is_some()),
            (SINCE, q.since.is_some()),
            (UNTIL, q.until.is_some()),
            (AFTER, q.after.is_some()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .fold(0, |bits, (bit, _)| bits | bit);
        // One statement per set of filters, so each can use its index: (user_id, created_at)
        // when a user is named, else (tenant_id, created_at).
        let select = sql!(self.backend(), shape, || {
            let mut text = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE tenant_id = ?");
            for (bit, filter) in [
                (USER, " AND user_id = ?"),
                (KIND, " AND kind = ?"),
                (SINCE, " AND created_at >= ?"),
                (UNTIL, " AND created_at < ?"),
                (
                    AFTER,
                    " AND (created_at < ? OR (created_at = ? AND id < ?))",
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
        if let Some(user) = &q.user {
            args.push(user.as_str().into());
        }
        if let Some(kind) = q.kind {
            args.push(kind.as_str().into());
        }
        args.extend(q.since.map(Arg::from));
        args.extend(q.until.map(Arg::from));
        if let Some(after) = &q.after {
            args.extend([after.at.into(), after.at.into(), after.id.as_str().into()]);
        }
        args.push((q.limit as i64).into());
        fetch_audit(self, select, args).await
    }

    #[instrument(skip_all, err)]
    async fn purge_audit(&self, before: i64, batch: usize) -> Result<u64, StoreError> {
        // Nothing due (the usual case): a read on the time index, and no write at all.
        let due = portable!(
            self.backend(),
            "SELECT id FROM audit_events WHERE created_at < ? LIMIT 1"
        );
        let found = Stmt::new(due)
            .bind(before)
            .query()
            .fetch_optional(self.pool());
        if found.await.map_err(map_err)?.is_none() {
            return Ok(0);
        }
        // A bounded batch per transaction: SQLite's one writer is held only briefly, and other
        // writes queue in between batches.
        let delete = portable!(
            self.backend(),
            "DELETE FROM audit_events WHERE id IN \
             (SELECT id FROM audit_events WHERE created_at < ? LIMIT ?)"
        );
        let stmt = Stmt::new(delete).bind(before).bind(batch as i64);
        self.write(move |tx| Box::pin(async move { tx.execute(stmt).await }))
            .await
    }
}
