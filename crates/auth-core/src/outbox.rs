//! Reading the outbox back for delivery: an entry as stored, and what delivering one can
//! answer. Relays (in the server) claim entries of one channel in order, hand each to a
//! [`Deliver`] (the broker publisher for events, the mailer for mail), and record the result:
//! delivered, retried later with exponential backoff, or parked after too many attempts.

use std::future::Future;

use crate::StoreError;

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
    /// The destination cannot be reached at all (the broker is down, the connection was
    /// lost): retried with backoff, counted against no entry, so an outage parks nothing.
    #[error("{0}")]
    Unavailable(String),
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

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventStatus {
    /// Waiting for its (next) attempt.
    Pending,
    Delivered,
    /// Given up on after too many attempts (or a permanent failure); re-queued by hand.
    Parked,
}

impl EventStatus {
    pub const ALL: [EventStatus; 3] = [Self::Pending, Self::Delivered, Self::Parked];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Parked => "parked",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// An outbox row of the event channel, as the admin API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: String,
    pub kind: String,
    pub tenant: String,
    pub subject: Option<String>,
    /// The event document as published.
    pub document: serde_json::Value,
    pub created_at: i64,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub parked_at: Option<i64>,
}

impl EventRecord {
    pub fn status(&self) -> EventStatus {
        match (self.delivered_at, self.parked_at) {
            (Some(_), _) => EventStatus::Delivered,
            (None, Some(_)) => EventStatus::Parked,
            (None, None) => EventStatus::Pending,
        }
    }
}

/// The largest page of an event listing.
pub const MAX_EVENT_PAGE: usize = 200;

/// A position in an event listing (newest first): events strictly older than it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPosition {
    pub at: i64,
    pub id: String,
}

/// Which events of a tenant a listing returns, newest first.
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub tenant: crate::domain::TenantId,
    pub kind: Option<crate::events::EventType>,
    /// Events about this user (its id).
    pub subject: Option<String>,
    pub status: Option<EventStatus>,
    /// Created at or after this time.
    pub since: Option<i64>,
    /// Created before this time.
    pub until: Option<i64>,
    pub after: Option<EventPosition>,
    pub limit: usize,
}

/// The backlog of one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub channel: String,
    /// Neither delivered nor parked.
    pub pending: u64,
    pub parked: u64,
    /// Delivered rows still in the table (events are kept for their retention; mail rows are
    /// deleted once sent).
    pub delivered: u64,
    /// When the oldest pending entry was recorded.
    pub oldest_pending_at: Option<i64>,
}

/// What a relay and the admin API need from the outbox table. Times are Unix seconds of the
/// caller's clock (instances are expected to keep their clocks in sync, as for tokens).
pub trait OutboxRepository: Send + Sync {
    /// Takes the lease of `channel` for `holder` until `until`, or renews it: only when it is
    /// free, already `holder`'s, or expired at `now` (one atomic statement). Whether `holder`
    /// now holds it.
    fn take_lease(
        &self,
        channel: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the lease up, if `holder` holds it.
    fn release_lease(
        &self,
        channel: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `limit` entries of `channel` due at `now` (neither delivered nor parked, their
    /// next attempt due), in id order. For an `ordered` channel, only those before the first
    /// pending entry that is not due yet: it holds back every entry behind it.
    fn pending_entries(
        &self,
        channel: &str,
        now: i64,
        ordered: bool,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OutboxEntry>, StoreError>> + Send;

    /// Marks an entry delivered at `at`, or deletes it (`delete`: mail, whose rows hold
    /// addresses and tokens).
    fn mark_delivered(
        &self,
        id: &str,
        at: i64,
        delete: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records a failed attempt: one more attempt, its error (clipped), and either the time
    /// of the next attempt or, with `parked_at`, the entry parked.
    fn record_failure(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: i64,
        parked_at: Option<i64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A page of a tenant's events, newest first (by time, then id).
    fn event_page(
        &self,
        query: &EventQuery,
    ) -> impl Future<Output = Result<Vec<EventRecord>, StoreError>> + Send;

    /// The backlog of each channel that has rows (of one tenant, or of all).
    fn outbox_stats(
        &self,
        tenant: Option<&crate::domain::TenantId>,
    ) -> impl Future<Output = Result<Vec<ChannelStats>, StoreError>> + Send;

    /// Re-queues a parked event (of `tenant`, when named; attempts reset, due at `now`).
    /// Whether it was one.
    fn requeue_event(
        &self,
        tenant: Option<&crate::domain::TenantId>,
        id: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes at most `batch` event rows delivered before `before` (with `undelivered`, also
    /// those recorded before it that were never delivered: no broker is configured); how many.
    fn purge_events(
        &self,
        before: i64,
        undelivered: bool,
        batch: usize,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes at most `batch` mail rows recorded before `before`, sent or not (parked mail,
    /// mail kept while the transport is `off`: its links expired long ago); how many.
    fn purge_mail(
        &self,
        before: i64,
        batch: usize,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// An error as kept on its row: at most this many characters.
pub const MAX_ERROR_CHARS: usize = 500;

/// `error` clipped to [`MAX_ERROR_CHARS`].
pub fn clip_error(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}
