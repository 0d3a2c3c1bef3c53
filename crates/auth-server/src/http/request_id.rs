//! Request ids, request logging and request metrics: every request gets an `x-request-id` (the
//! caller's when it is sane, else a new UUIDv7), echoed in the response, carried by the request
//! span (so every log line of the request has it) and available to error bodies; it is timed
//! into its route's histogram and logged as `AUTH_ACCESS_LOG` says.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use siphasher::sip128::{Hasher128, SipHasher13};
use tracing::Instrument;

use crate::config::AccessLog;
use crate::http::error::Refusal;
use crate::metrics::requests::RequestMetrics;
use crate::state::AppState;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if called inside one.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// `future` with the id of the request being handled, for a task spawned to handle it (task
/// locals stay with their task).
pub fn carried<F: Future>(future: F) -> impl Future<Output = F::Output> {
    REQUEST_ID.scope(current().unwrap_or_else(new_id), future)
}

/// A new UUIDv7 request id: the time in milliseconds and 74 bits of SipHash-1-3 of a per-thread
/// counter under a per-thread random key. Ids are unique and unguessable without a system call
/// per request (`Uuid::now_v7` asks the kernel for randomness on every call).
fn new_id() -> String {
    thread_local! {
        static KEY: [u8; 16] = auth_core::secret::random_bytes();
        static COUNTER: Cell<u64> = const { Cell::new(0) };
    }
    let n = COUNTER.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    let mut hasher = KEY.with(SipHasher13::new_with_key);
    std::hash::Hasher::write_u64(&mut hasher, n);
    let random = hasher.finish128().as_u128().to_le_bytes();
    let mut tail = [0u8; 10];
    tail.copy_from_slice(&random[..10]);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    uuid::Builder::from_unix_timestamp_millis(millis, &tail)
        .into_uuid()
        .to_string()
}

fn accept(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| s.to_owned())
}

/// The request's id (the caller's when sane, else a new one), set on the request.
fn assign(request: &mut Request) -> (String, HeaderValue) {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(accept)
        .unwrap_or_else(new_id);
    let header = HeaderValue::from_str(&id).expect("request ids are visible ASCII");
    request
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), header.clone());
    (id, header)
}

/// Middleware of the starting service: the id alone, no log line and no metrics.
pub async fn identified(mut request: Request, next: Next) -> Response {
    let (id, header) = assign(&mut request);
    let mut response = REQUEST_ID.scope(id, next.run(request)).await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), header);
    response
}

/// What the request middleware needs: the access-log choice, the latency histograms, and the
/// state (whether the service is draining).
#[derive(Clone)]
pub struct Observer(Arc<Observing>);

struct Observing {
    access_log: AccessLog,
    requests: Arc<RequestMetrics>,
    state: AppState,
}

impl Observer {
    pub fn new(access_log: AccessLog, requests: Arc<RequestMetrics>, state: AppState) -> Self {
        Self(Arc::new(Observing {
            access_log,
            requests,
            state,
        }))
    }
}

/// Probes and the scraper: asked every few seconds by machines, never logged above DEBUG.
pub const QUIET_PATHS: [&str; 5] = [
    "/health",
    "/health/ready",
    "/auth/health",
    "/auth/health/",
    "/metrics",
];

/// Middleware: assigns the id, opens the request span, times the request into its route's
/// histogram, logs the outcome as the access-log setting says, and while the service drains
/// tells keep-alive clients to go (`Connection: close`).
pub async fn middleware(
    State(observer): State<Observer>,
    mut request: Request,
    next: Next,
) -> Response {
    let (id, header) = assign(&mut request);
    let observing = &*observer.0;
    let matched = request.extensions().get::<MatchedPath>();
    let route = observing.requests.route(matched.map(MatchedPath::as_str));
    let quiet = QUIET_PATHS.contains(&request.uri().path());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let started = std::time::Instant::now();
    let mut response = REQUEST_ID
        .scope(id, next.run(request))
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    observing.requests.observe(route, status, elapsed);
    if observing.access_log != AccessLog::Off {
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        let all = observing.access_log == AccessLog::All;
        // A refusal's problem code and reason (a refused token's) are in its one line.
        let refusal = response.extensions().get::<Refusal>();
        let code = refusal.map(|r| r.code.as_str());
        let reason = refusal.and_then(|r| r.reason.as_deref());
        span.in_scope(|| match status {
            _ if quiet => tracing::debug!(status, elapsed_ms, "request done"),
            // 503 is load shedding or an unreachable database: an operating condition, reported
            // where it arises, not a failure of this request.
            503 => tracing::warn!(status, elapsed_ms, code, "request not served"),
            500.. => tracing::error!(status, elapsed_ms, code, "request failed"),
            400..=499 => tracing::warn!(status, elapsed_ms, code, reason, "request refused"),
            _ if all => tracing::info!(status, elapsed_ms, "request done"),
            _ => tracing::debug!(status, elapsed_ms, "request done"),
        });
    }
    let headers = response.headers_mut();
    headers.insert(X_REQUEST_ID.clone(), header);
    if observing.state.draining() {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_distinct_version_7_uuids() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(10) {
            let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 7);
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
        }
        let other = std::thread::spawn(new_id).join().unwrap();
        assert!(!ids.contains(&other), "another thread draws its own key");
    }
}
