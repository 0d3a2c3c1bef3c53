//! The audit trail's table: how an event recorded on a unit of work is written.

use auth_core::audit::AuditEvent;

use crate::dialect::{Arg, Backend, Stmt, portable};

/// The columns of `audit_events` an event fills, in the order of [`audit_args`].
pub(crate) const AUDIT_COLUMNS: &str =
    "id, tenant_id, kind, user_id, session_id, ip, user_agent, detail, created_at";

/// Placeholders of [`AUDIT_COLUMNS`].
pub(crate) const AUDIT_VALUES: &str = "?, ?, ?, ?, ?, ?, ?, ?, ?";

/// Client details are capped in size so a hostile user agent cannot bloat the table.
pub(crate) fn clip(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|v| v.chars().take(512).collect())
}

/// The values of an event's row, in the order of [`AUDIT_COLUMNS`].
pub(crate) fn audit_args(e: &AuditEvent) -> [Arg; 9] {
    [
        uuid::Uuid::now_v7().to_string().into(),
        e.tenant.as_str().into(),
        e.kind.as_str().into(),
        e.user_id.map(|id| id.to_string()).into(),
        e.session_id.map(|id| id.to_string()).into(),
        clip(&e.client.ip).into(),
        clip(&e.client.user_agent).into(),
        e.detail.to_string().into(),
        e.at.into(),
    ]
}

/// The insert of one event.
pub(crate) fn audit_insert(backend: Backend, event: &AuditEvent) -> Stmt {
    let sql = portable!(
        backend,
        format!("INSERT INTO audit_events ({AUDIT_COLUMNS}) VALUES ({AUDIT_VALUES})")
    );
    Stmt::new(sql).extend(audit_args(event))
}
