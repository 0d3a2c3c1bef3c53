//! The outbox table: how the events and mails recorded on a unit of work are written in its
//! transaction, and how the relays are told that there is something new to deliver.

use std::sync::Arc;

use auth_core::events::{DomainEvent, MailSeal, OutgoingMail};
use tokio::sync::Notify;

use crate::dialect::{Backend, Stmt, portable};

/// The outbox channel of events for other services.
pub const EVENT_CHANNEL: &str = "event";
/// The outbox channel of mail to send.
pub const MAIL_CHANNEL: &str = "mail";

/// What the store needs to write the outbox and wake its relays.
#[derive(Clone, Default)]
pub(crate) struct OutboxHooks {
    pub(crate) seal: MailSeal,
    pub(crate) events_ready: Arc<Notify>,
    pub(crate) mail_ready: Arc<Notify>,
}

/// A new outbox row id (UUIDv7: rows sort in the order they were recorded).
pub(crate) fn new_outbox_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

const INSERT: &str = "INSERT INTO outbox (id, channel, kind, tenant_id, subject, payload, \
                      created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

/// The insert of an event's row.
pub(crate) fn event_insert(backend: Backend, event: &DomainEvent) -> Stmt {
    let id = new_outbox_id();
    let document = event.document(&id).to_string();
    Stmt::new(portable!(backend, INSERT)).extend([
        id.into(),
        EVENT_CHANNEL.into(),
        event.kind.as_str().into(),
        event.tenant.as_str().into(),
        Some(event.subject.to_string()).into(),
        document.into(),
        event.at.into(),
        event.at.into(),
    ])
}

/// The insert of a mail's row, its token sealed with `seal`.
pub(crate) fn mail_insert(backend: Backend, mail: &OutgoingMail, seal: &MailSeal) -> Stmt {
    let id = new_outbox_id();
    let payload = mail.payload(&id, seal).to_string();
    Stmt::new(portable!(backend, INSERT)).extend([
        id.into(),
        MAIL_CHANNEL.into(),
        mail.template.as_str().into(),
        mail.tenant.as_str().into(),
        mail.user.map(|u| u.to_string()).into(),
        payload.into(),
        mail.at.into(),
        mail.at.into(),
    ])
}
