//! Reading the outbox back for delivery: an entry as stored, and what delivering one can
//! answer. Relays (in the server) claim entries of one channel in order, hand each to a
//! [`Deliver`] (the broker publisher for events, the mailer for mail), and record the result:
//! delivered, retried later with exponential backoff, or parked after too many attempts.

use std::future::Future;

/// An outbox entry as a relay reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// UUIDv7: entries are delivered in the order of their ids.
    pub id: String,
    /// `event` or `mail`.
    pub channel: String,
    /// The event type (`auth.user_created`) or the mail template (`password_reset`).
    pub kind: String,
    pub tenant: String,
    /// The user it is about, if any.
    pub subject: Option<String>,
    /// The event document, or the mail ([`crate::events::OutgoingMail::payload`]).
    pub payload: serde_json::Value,
    pub created_at: i64,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// Why an entry was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth another attempt later (the broker or the mail server is down, busy, ...).
    #[error("{0}")]
    Retry(String),
    /// Will never succeed (a malformed entry, an address the mail server refuses): parked
    /// at once.
    #[error("{0}")]
    Permanent(String),
}

/// Delivers outbox entries of one channel.
pub trait Deliver: Send + Sync {
    fn deliver(
        &self,
        entry: &OutboxEntry,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}
