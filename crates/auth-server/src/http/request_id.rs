//! Request ids and request logging: every request gets an `x-request-id` (the caller's when it
//! is sane, else a new UUIDv7), echoed in the response, carried by the request span (so every
//! log line of the request has it) and available to error bodies.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use siphasher::sip128::{Hasher128, SipHasher13};
use tracing::Instrument;

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

/// Middleware: assigns the id, opens the request span, logs the outcome by status class.
pub async fn middleware(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(accept)
        .unwrap_or_else(new_id);
    let header = HeaderValue::from_str(&id).expect("request ids are visible ASCII");
    request
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), header.clone());
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
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| match status {
        // 503 is load shedding or an unreachable database: an operating condition, reported
        // where it arises, not a failure of this request.
        503 => tracing::warn!(status, elapsed_ms, "request not served"),
        500.. => tracing::error!(status, elapsed_ms, "request failed"),
        400..=499 => tracing::warn!(status, elapsed_ms, "request refused"),
        _ => tracing::info!(status, elapsed_ms, "request done"),
    });
    response.headers_mut().insert(X_REQUEST_ID.clone(), header);
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
