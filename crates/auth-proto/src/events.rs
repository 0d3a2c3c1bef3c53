//! Wire types of the event outbox's admin API (`/auth/admin/events`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One event of the outbox (`GET /auth/admin/events`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventItem {
    /// The event id (UUIDv7), also the published message's id.
    pub id: String,
    /// The event type (`auth.user_created`, ...; docs/EVENTS.md lists them).
    #[serde(rename = "type")]
    pub kind: String,
    pub tenant: String,
    /// The user the event is about.
    pub subject: Option<String>,
    /// `pending`, `delivered` or `parked`.
    pub status: String,
    /// RFC 3339: when the change happened.
    pub occurred_at: String,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// RFC 3339: when the next attempt is due (pending events).
    pub next_attempt_at: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// RFC 3339.
    pub delivered_at: Option<String>,
    /// RFC 3339.
    pub parked_at: Option<String>,
    /// The event document as published (schemas/events/).
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
}

/// A page of events, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventItem>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// The backlog of one outbox channel.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChannelBacklog {
    /// `event` or `mail`.
    pub channel: String,
    /// Entries waiting for delivery.
    pub pending: u64,
    /// Entries given up on (re-queue with `POST /auth/admin/events/{id}/retry`).
    pub parked: u64,
    /// Delivered rows still kept (events, until their retention).
    pub delivered: u64,
    /// Age of the oldest pending entry, in seconds (0 when none): the relay's lag.
    pub oldest_pending_seconds: u64,
}

/// The outbox's backlog (`GET /auth/admin/events/stats`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutboxStats {
    /// Whether events are published to a broker (`EVENTS_URL`); without one they stay here.
    pub broker: Option<String>,
    pub channels: Vec<ChannelBacklog>,
}
