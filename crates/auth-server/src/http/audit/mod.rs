//! The audit log over HTTP: the admin API's query (`audit:read`, tenant-scoped like the rest
//! of the admin API) and the caller's own recent security events.

use auth_core::CoreError;
use auth_core::audit::{AuditKind, AuditPosition, AuditRecord, MAX_AUDIT_PAGE};
use auth_core::directory::permissions as p;
use auth_core::domain::TenantId;
use auth_core::service::AuditFilter;
use auth_proto::Problem;
use auth_proto::admin::{AuditItem, AuditPage};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::{ObjectBuilder, Type};
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{ApiQuery, Caller};
use super::respond::{no_store, rfc3339};
use super::route::{Group, Needs};
use crate::format::parse_rfc3339;
use crate::state::AppState;

pub fn groups() -> Vec<Group> {
    vec![
        Group::new(Needs::READS.permission(p::AUDIT_READ)).routes(routes!(list_audit)),
        Group::new(Needs::READS).routes(routes!(my_activity)),
    ]
}

/// Audit cursors: the position's time (16 hex digits) and id (a UUID's 32), so that any text
/// of this pattern names a position. Written out in the parameters' attributes (which take a
/// literal); a test holds them to these.
#[cfg(test)]
const CURSOR_PATTERN: &str = "^[0-9a-f]{48}$";
/// A user id, or the pseudonym an erased user's entries keep.
#[cfg(test)]
const USER_PATTERN: &str =
    "^(erased:)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
/// The default page.
const DEFAULT_LIMIT: usize = 50;

/// The schema of `type`: one of the event types.
fn audit_types() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(AuditKind::ALL.iter().map(|k| k.as_str())))
        .description(Some("An event type (docs/AUDIT.md lists them)"))
}

/// The filters and page of `GET /auth/admin/audit`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQueryParams {
    /// Entries about this user (a user id, or an erased user's `erased:<id>`).
    #[param(pattern = "^(erased:)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    user_id: Option<String>,
    /// Entries of this type.
    #[serde(rename = "type")]
    #[param(schema_with = audit_types)]
    kind: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Entries before this time (RFC 3339).
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

/// The page of `GET /auth/me/activity`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9a-f]{48}$")]
    cursor: Option<String>,
}

pub(super) fn limit(asked: Option<u32>) -> Result<usize, CoreError> {
    match asked {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_AUDIT_PAGE as u32).contains(&n) => Ok(n as usize),
        Some(_) => Err(CoreError::invalid("limit", "must be 1 to 200")),
    }
}

fn is_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The cursor of the position after `entry`.
pub(super) fn cursor_of(position: &AuditPosition) -> Option<String> {
    let id = uuid::Uuid::parse_str(&position.id).ok()?;
    let at = u64::try_from(position.at).unwrap_or(0);
    Some(format!("{at:016x}{}", id.simple()))
}

/// The position a cursor names (any text of [`CURSOR_PATTERN`] names one).
fn cursor_position(cursor: &str) -> Result<AuditPosition, CoreError> {
    let refused = || CoreError::invalid("cursor", "not a cursor of this listing");
    if cursor.len() != 48 || !is_hex(cursor) {
        return Err(refused());
    }
    let (at, id) = cursor.split_at(16);
    let at = u64::from_str_radix(at, 16).map_err(|_| refused())?;
    let id = uuid::Uuid::try_parse(id).map_err(|_| refused())?;
    Ok(AuditPosition {
        at: i64::try_from(at).unwrap_or(i64::MAX),
        id: id.hyphenated().to_string(),
    })
}

pub(super) fn cursor(text: Option<&str>) -> Result<Option<AuditPosition>, CoreError> {
    text.map(cursor_position).transpose()
}

/// A `user_id` filter: one of our user ids, or an erased user's pseudonym.
fn user_filter(text: &str) -> Result<String, CoreError> {
    let id = text.strip_prefix("erased:").unwrap_or(text);
    let canonical = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
        });
    // Any id of the pattern is taken (one of no user matches nothing).
    if canonical {
        Ok(text.to_owned())
    } else {
        Err(CoreError::invalid("user_id", "not a user id"))
    }
}

pub(super) fn time(field: &str, text: Option<&str>) -> Result<Option<i64>, CoreError> {
    text.map(|t| {
        parse_rfc3339(t).ok_or_else(|| CoreError::invalid(field, "not an RFC 3339 date-time"))
    })
    .transpose()
}

fn item(e: AuditRecord) -> AuditItem {
    AuditItem {
        id: e.id,
        at: rfc3339(e.at),
        kind: e.kind,
        actor_id: e.actor_id,
        user_id: e.user_id,
        session_id: e.session_id,
        tenant: e.tenant,
        ip: e.ip,
        user_agent: e.user_agent,
        request_id: e.request_id,
        outcome: e.outcome,
        details: e.detail,
    }
}

fn page((items, next): auth_core::service::AuditPage) -> Response {
    let body = AuditPage {
        items: items.into_iter().map(item).collect(),
        next_cursor: next.as_ref().and_then(cursor_of),
    };
    no_store(Json(body).into_response())
}

/// Query the audit log of the caller's tenant (or `?tenant=` for a superadmin), newest first,
/// a page at a time.
#[utoipa::path(get, path = "/auth/admin/audit", tag = "admin",
    params(AuditQueryParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = AuditPage),
        (status = 404, description = "`not_found`: a tenant out of the caller's reach", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQueryParams>,
) -> Result<Response, ApiError> {
    let filter = AuditFilter {
        user: q.user_id.as_deref().map(user_filter).transpose()?,
        kind: match q.kind.as_deref() {
            None => None,
            Some(k) => Some(
                AuditKind::parse(k).ok_or_else(|| CoreError::invalid("type", "no such type"))?,
            ),
        },
        since: time("since", q.since.as_deref())?,
        until: time("until", q.until.as_deref())?,
    };
    let (limit, after) = (limit(q.limit)?, cursor(q.cursor.as_deref())?);
    let tenant = q
        .tenant
        .as_deref()
        .map(|t| TenantId::parse(t).map_err(|m| CoreError::invalid("tenant", m)))
        .transpose()?;
    let found = state
        .audit
        .list(&caller.actor(), tenant, filter, after, limit)
        .await?;
    Ok(page(found))
}

/// The caller's own recent security events, newest first: logins (failed ones included),
/// refreshes, logouts, password and profile changes, and what administrators did to the
/// account (without saying who, nor from where).
#[utoipa::path(get, path = "/auth/me/activity", tag = "auth",
    params(ActivityQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = AuditPage),
        (status = 401, description = "`token_invalid` or `token_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn my_activity(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ActivityQuery>,
) -> Result<Response, ApiError> {
    let (limit, after) = (limit(q.limit)?, cursor(q.cursor.as_deref())?);
    let who = caller.identity();
    let found = state
        .audit
        .own_activity(who.user_id, &who.tenant, after, limit)
        .await?;
    Ok(page(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_states_the_patterns_and_types_the_service_applies() {
        let doc = crate::http::openapi(auth_core::password::PasswordPolicy::default(), false);
        for (path, names) in [
            (
                "/auth/admin/audit",
                &["user_id", "cursor", "type", "limit"][..],
            ),
            ("/auth/me/activity", &["cursor", "limit"][..]),
        ] {
            let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
            let param = |name: &str| {
                params
                    .iter()
                    .find(|p| p["name"] == name)
                    .unwrap_or_else(|| panic!("{path} {name}"))["schema"]
                    .clone()
            };
            for name in names {
                let schema = param(name);
                match *name {
                    "user_id" => assert_eq!(schema["pattern"], USER_PATTERN),
                    "cursor" => assert_eq!(schema["pattern"], CURSOR_PATTERN),
                    "limit" => assert_eq!(
                        (schema["minimum"].clone(), schema["maximum"].clone()),
                        (1.into(), 200.into())
                    ),
                    _ => assert_eq!(
                        schema["enum"].as_array().unwrap().len(),
                        AuditKind::ALL.len(),
                        "{schema}"
                    ),
                }
            }
            assert!(
                doc["paths"][path]["get"]["responses"]["422"].is_object(),
                "{path}"
            );
        }
    }

    #[test]
    fn cursors_read_back_and_any_text_of_the_pattern_is_a_position() {
        let position = AuditPosition {
            at: 1_700_000_000,
            id: uuid::Uuid::now_v7().to_string(),
        };
        let cursor = cursor_of(&position).unwrap();
        assert!(
            regex::Regex::new(CURSOR_PATTERN).unwrap().is_match(&cursor),
            "{cursor}"
        );
        assert_eq!(cursor_position(&cursor).unwrap(), position);
        assert!(cursor_position(&"f".repeat(48)).is_ok());
        for bad in ["", "00", &"g".repeat(48), &"A".repeat(48), &"0".repeat(50)] {
            assert!(cursor_position(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_filters_are_what_the_documented_pattern_allows() {
        let pattern = regex::Regex::new(USER_PATTERN).unwrap();
        let id = auth_core::domain::UserId::generate().to_string();
        let erased = format!("erased:{}", uuid::Uuid::now_v7());
        let nil = uuid::Uuid::nil().to_string();
        for good in [&id, &erased, &nil] {
            assert!(pattern.is_match(good), "{good}");
            assert_eq!(user_filter(good).unwrap(), *good);
        }
        for bad in [
            "",
            "erased:",
            "alice",
            &id.to_uppercase(),
            &format!("{id}x"),
        ] {
            assert!(!pattern.is_match(bad), "{bad:?}");
            assert!(user_filter(bad).is_err(), "{bad:?}");
        }
    }
}
