//! Rate limits at the edge: a route group's per-IP limit, checked before its handler runs
//! (before its body is read, before any database read or hash), and the answers of a limit:
//! `429 rate_limited` with `Retry-After` and the fields of
//! draft-ietf-httpapi-ratelimit-headers-10 (`RateLimit-Policy`, `RateLimit`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use auth_core::service::Credentials;
use auth_proto::ErrorCode;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::client_ip;
use crate::limits::{Limit, Status, Verdict};
use crate::state::AppState;

static POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Checks the group's per-IP limit of the caller's address; answers 429 (or 503 when the
/// limits cannot be checked and the configuration says closed) without running the handler.
pub async fn limit_ip(
    State((state, limit)): State<(AppState, Limit)>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let Some(peer) = peer else {
        // Not served over a socket (in-process tests): no address to count.
        return next.run(request).await;
    };
    let ip: IpAddr = client_ip(peer, request.headers(), &state.trusted_proxies);
    match admit(state.limits.check_ip(limit, ip).await) {
        Err(refused) => refused.into_response(),
        Ok(status) => {
            let mut response = next.run(request).await;
            if let Some(status) = status {
                // A refusal by another limit (the account's) already says its own.
                if !response.headers().contains_key(&RATELIMIT) {
                    describe(response.headers_mut(), &status);
                }
            }
            response
        }
    }
}

/// Checks the per-account login limit of the account a login names (every login route calls
/// it before the password is hashed).
pub async fn admit_login(state: &AppState, credentials: &Credentials) -> Result<(), ApiError> {
    let verdict = state
        .limits
        .check_account(Limit::LoginAccount, &credentials.tenant, &credentials.name)
        .await;
    admit(verdict).map(drop)
}

/// A verdict as the handler goes on with it: the limit's status when it passed, else the
/// answer to give.
pub fn admit(verdict: Verdict) -> Result<Option<Status>, ApiError> {
    match verdict {
        Verdict::Unlimited => Ok(None),
        Verdict::Allowed(status) => Ok(Some(status)),
        Verdict::Refused(status) => Err(refusal(&status)),
        Verdict::Unavailable => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "Service unavailable",
        )
        .detail("rate limits cannot be checked right now")
        .retry_after(Duration::from_secs(1))),
    }
}

/// `429 rate_limited`, with `Retry-After` in whole seconds (rounded up) and the limit's fields.
fn refusal(status: &Status) -> ApiError {
    // The request's own log line already says 429 at warn level: one line per refusal.
    tracing::debug!(limit = status.limit.name(), "rate limit reached");
    let retry = ceil_seconds(status.retry_after).max(1);
    let mut headers = HeaderMap::new();
    describe(&mut headers, status);
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        "Too many requests",
    )
    .detail(format!(
        "too many requests ({}: {}); retry in {retry} s",
        status.limit.name(),
        status.quota
    ))
    .retry_after(Duration::from_secs(retry));
    for (name, value) in headers.iter() {
        error = error.header(name.clone(), value.clone());
    }
    error
}

/// `RateLimit-Policy: "login-ip";q=20;w=60` and `RateLimit: "login-ip";r=0;t=3`: the quota
/// and window (seconds), what remains and when it is whole again (when refused: when one
/// more request passes).
fn describe(headers: &mut HeaderMap, status: &Status) {
    let name = status.limit.name();
    let policy = format!(
        "\"{name}\";q={};w={}",
        status.quota.count,
        status.quota.period.as_secs()
    );
    let reset = if status.remaining == 0 {
        status.retry_after.max(Duration::from_secs(1))
    } else {
        status.reset_after
    };
    let now = format!(
        "\"{name}\";r={};t={}",
        status.remaining,
        ceil_seconds(reset)
    );
    for (field, value) in [(&POLICY, policy), (&RATELIMIT, now)] {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(field.clone(), value);
        }
    }
}

fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Quota;

    #[test]
    fn a_refusal_says_when_to_retry_and_names_its_policy() {
        let status = Status {
            limit: Limit::LoginIp,
            quota: Quota {
                count: 20,
                period: Duration::from_secs(60),
            },
            remaining: 0,
            retry_after: Duration::from_millis(2_100),
            reset_after: Duration::from_secs(59),
        };
        let response = refusal(&status).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let h = response.headers();
        assert_eq!(h["retry-after"], "3");
        assert_eq!(h["ratelimit-policy"], "\"login-ip\";q=20;w=60");
        assert_eq!(h["ratelimit"], "\"login-ip\";r=0;t=3");
    }
}
