//! The event outbox over HTTP: the admin API's listing (`events:read`, tenant-scoped like the
//! rest of the admin API), the backlog per channel, re-queuing a parked event
//! (`events:write`); the outbox's lag and counters are in `GET /metrics` too (`http::ops`).

use auth_core::CoreError;
use auth_core::audit::AuditPosition;
use auth_core::directory::permissions as p;
use auth_core::domain::TenantId;
use auth_core::events::EventType;
use auth_core::now_unix;
use auth_core::outbox::{EventPosition, EventRecord, EventStatus};
use auth_core::service::EventFilter;
use auth_proto::Problem;
use auth_proto::events::{ChannelBacklog, EventItem, EventPage, OutboxStats};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::{ObjectBuilder, Type};
use utoipa_axum::routes;

use super::audit::{cursor, cursor_of, limit, time};
use super::error::ApiError;
use super::extract::{ApiQuery, Caller};
use super::respond::{no_store, rfc3339};
use super::route::{Group, Needs};
use crate::config::Broker;
use crate::state::AppState;

pub fn groups() -> Vec<Group> {
    vec![
        Group::new(Needs::READS.permission(p::EVENTS_READ))
            .routes(routes!(list_events))
            .routes(routes!(event_stats)),
        Group::new(Needs::WRITES.permission(p::EVENTS_WRITE)).routes(routes!(retry_event)),
    ]
}

fn event_types() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(EventType::ALL.iter().map(|k| k.as_str())))
        .description(Some("An event type (docs/EVENTS.md lists them)"))
}

fn statuses() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(EventStatus::ALL.iter().map(|s| s.as_str())))
}

/// The filters and page of `GET /auth/admin/events`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQueryParams {
    /// Events of this type.
    #[serde(rename = "type")]
    #[param(schema_with = event_types)]
    kind: Option<String>,
    /// Events about this user (its id).
    #[param(pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    subject: Option<String>,
    /// `pending`, `delivered` or `parked`.
    #[param(schema_with = statuses)]
    status: Option<String>,
    /// Events at or after this time (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Events before this time (RFC 3339).
    #[param(format = DateTime)]
    until: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9a-f]{48}$")]
    cursor: Option<String>,
    /// Another tenant (superadmins only).
    tenant: Option<String>,
}

/// `?tenant=` of the backlog and the re-queue.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TenantParam {
    /// One tenant (superadmins only; without it they see or reach every tenant).
    tenant: Option<String>,
}

fn tenant(text: Option<&str>) -> Result<Option<TenantId>, CoreError> {
    text.map(|t| TenantId::parse(t).map_err(|m| CoreError::invalid("tenant", m)))
        .transpose()
}

/// A UUID, written as the service writes them.
fn canonical_uuid(field: &str, text: &str) -> Result<String, CoreError> {
    match uuid::Uuid::try_parse(text) {
        Ok(id) if id.hyphenated().to_string() == text => Ok(text.to_owned()),
        _ => Err(CoreError::invalid(field, "not an id")),
    }
}

fn item(e: EventRecord) -> EventItem {
    let status = e.status();
    EventItem {
        status: status.as_str().to_owned(),
        occurred_at: rfc3339(e.created_at),
        attempts: e.attempts,
        next_attempt_at: (status == EventStatus::Pending).then(|| rfc3339(e.next_attempt_at)),
        last_error: e.last_error,
        delivered_at: e.delivered_at.map(rfc3339),
        parked_at: e.parked_at.map(rfc3339),
        id: e.id,
        kind: e.kind,
        tenant: e.tenant,
        subject: e.subject,
        document: e.document,
    }
}

/// List the events of the caller's tenant (or `?tenant=` for a superadmin), newest first, a
/// page at a time, with where each stands (pending, delivered, parked).
#[utoipa::path(get, path = "/auth/admin/events", tag = "admin",
    params(EventQueryParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = EventPage),
        (status = 404, description = "`not_found`: a tenant out of the caller's reach", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventQueryParams>,
) -> Result<Response, ApiError> {
    let filter = EventFilter {
        kind: q
            .kind
            .as_deref()
            .map(|k| EventType::parse(k).ok_or_else(|| CoreError::invalid("type", "no such type")))
            .transpose()?,
        subject: q
            .subject
            .as_deref()
            .map(|s| canonical_uuid("subject", s))
            .transpose()?,
        status: q
            .status
            .as_deref()
            .map(|s| {
                EventStatus::parse(s).ok_or_else(|| {
                    CoreError::invalid("status", "must be pending, delivered or parked")
                })
            })
            .transpose()?,
        since: time("since", q.since.as_deref())?,
        until: time("until", q.until.as_deref())?,
    };
    let (limit, after) = (limit(q.limit)?, cursor(q.cursor.as_deref())?);
    let after = after.map(|p| EventPosition { at: p.at, id: p.id });
    let tenant = tenant(q.tenant.as_deref())?;
    let (items, next) = state
        .events
        .list(&caller.actor(), tenant, filter, after, limit)
        .await?;
    let body = EventPage {
        items: items.into_iter().map(item).collect(),
        next_cursor: next
            .map(|p| AuditPosition { at: p.at, id: p.id })
            .as_ref()
            .and_then(cursor_of),
    };
    Ok(no_store(Json(body).into_response()))
}

/// The outbox's backlog per channel (of the caller's tenant; of every tenant for a
/// superadmin): pending and parked entries and the age of the oldest pending one.
#[utoipa::path(get, path = "/auth/admin/events/stats", tag = "admin",
    params(TenantParam),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OutboxStats),
        (status = 404, description = "`not_found`: a tenant out of the caller's reach", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a bad tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn event_stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TenantParam>,
) -> Result<Response, ApiError> {
    let tenant = tenant(q.tenant.as_deref())?;
    let stats = state.events.stats(&caller.actor(), tenant).await?;
    let now = now_unix();
    let body = OutboxStats {
        broker: state.events_config.broker.as_ref().map(|b| match b {
            Broker::Amqp { .. } => "rabbitmq".to_owned(),
            Broker::Nats { .. } => "nats".to_owned(),
        }),
        channels: stats
            .into_iter()
            .map(|s| ChannelBacklog {
                oldest_pending_seconds: s
                    .oldest_pending_at
                    .map_or(0, |at| u64::try_from(now - at).unwrap_or(0)),
                channel: s.channel,
                pending: s.pending,
                parked: s.parked,
                delivered: s.delivered,
            })
            .collect(),
    };
    Ok(no_store(Json(body).into_response()))
}

/// Re-queue a parked event: its attempts start again and it goes out with the next batch.
#[utoipa::path(post, path = "/auth/admin/events/{id}/retry", tag = "admin",
    params(("id" = String, Path, description = "Event id"), TenantParam),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Re-queued"),
        (status = 404, description = "`not_found`: no parked event of that id in the caller's reach", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a bad tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<TenantParam>,
) -> Result<StatusCode, ApiError> {
    // Like the admin API's other paths: an id that cannot be one names nothing.
    let id = canonical_uuid("id", &id).map_err(|_| CoreError::NotFound)?;
    let tenant = tenant(q.tenant.as_deref())?;
    state.events.retry(&caller.actor(), tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
