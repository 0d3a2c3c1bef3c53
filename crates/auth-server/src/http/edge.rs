//! The edge of the HTTP API, one middleware around everything else: a request must carry the
//! gateway's secret (when one is set), a body declared larger than the limit is refused before
//! it is read, a body must arrive within its deadline, and every answer carries the security
//! headers (HSTS when serving TLS).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use auth_proto::ErrorCode;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::time::{Instant, Sleep};

use super::BODY_LIMIT;
use super::error::ApiError;

/// The header that carries the gateway's secret.
pub static X_GATEWAY_SECRET: HeaderName = HeaderName::from_static("x-gateway-secret");

/// Paths answered without the gateway's secret: health checks (probes of the orchestrator and
/// the gateway), metrics (the scraper), and the public keys and discovery document, which
/// downstream services fetch and which hold nothing secret.
pub const OPEN_PATHS: [&str; 7] = [
    "/health",
    "/auth/health",
    "/auth/health/",
    "/health/ready",
    "/metrics",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
];

/// The policy of the answers of the API: JSON only, nothing to load, never in a frame.
static API_CSP: HeaderValue =
    HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'");

/// The policy of the docs page (Swagger UI served from the binary, checked in headless
/// Chromium): its own scripts and styles (the page has no inline script or style), and the
/// one `<style>` its scripts add (the logo's colours, by its hash), the inline SVG images of
/// its stylesheet, requests to this origin only ("Try it out").
static DOCS_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'",
);

/// Two years, as the HSTS preload list asks.
static HSTS: HeaderValue = HeaderValue::from_static("max-age=63072000");

/// What the edge checks, from the configuration.
#[derive(Clone)]
pub struct Edge(Arc<Rules>);

struct Rules {
    gateway_secret: Option<SecretString>,
    body_timeout: Duration,
    tls: bool,
}

impl Edge {
    pub fn new(config: &crate::config::Edge) -> Self {
        Self(Arc::new(Rules {
            gateway_secret: config.gateway_secret.clone(),
            body_timeout: config.body_timeout,
            tls: config.tls.is_some(),
        }))
    }

    /// Whether requests must carry the gateway's secret.
    pub fn gated(&self) -> bool {
        self.0.gateway_secret.is_some()
    }
}

/// Middleware: refuses what the edge does not admit, secures every answer.
pub async fn middleware(State(edge): State<Edge>, request: Request, next: Next) -> Response {
    let docs = is_docs(request.uri().path());
    let mut response = match edge.0.admit(request) {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    };
    let csp = if docs { &DOCS_CSP } else { &API_CSP };
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::CONTENT_SECURITY_POLICY, csp.clone()),
    ] {
        headers.insert(name, value);
    }
    if edge.0.tls {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HSTS.clone());
    }
    // The rest of a body cut off, or never read, is not waited for.
    if matches!(
        response.status(),
        StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE
    ) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn is_docs(path: &str) -> bool {
    path.strip_prefix("/docs")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Rules {
    fn admit(&self, request: Request) -> Result<Request, ApiError> {
        if let Some(secret) = &self.gateway_secret
            && !OPEN_PATHS.contains(&request.uri().path())
        {
            let sent = request
                .headers()
                .get(&X_GATEWAY_SECRET)
                .map_or(&[][..], HeaderValue::as_bytes);
            if !bool::from(sent.ct_eq(secret.expose_secret().as_bytes())) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::GatewayRequired,
                    "Gateway required",
                )
                .detail("this service answers requests that come through the API gateway only"));
            }
        }
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
            return Err(too_large());
        }
        if request.body().is_end_stream() {
            return Ok(request);
        }
        let deadline = Instant::now() + self.body_timeout;
        Ok(request.map(|body| Body::new(Deadline::new(body, deadline))))
    }
}

/// 413 for a body over the limit.
pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        "Body too large",
    )
    .detail(format!(
        "request bodies are limited to {} KiB",
        BODY_LIMIT / 1024
    ))
}

/// The error of a body that did not arrive by its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// A body that fails with [`BodyTimedOut`] once its deadline has passed. The timer is made
/// only when the body has to be waited for: a body that has arrived costs none.
struct Deadline {
    body: Body,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    fn new(body: Body, deadline: Instant) -> Self {
        Self {
            body,
            deadline,
            timer: None,
        }
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Documents the gateway's secret in the served document, when requests must carry it: a
/// security scheme every operation but the open ones requires (with its bearer token where it
/// takes one), and their `403`.
pub fn document_gateway(doc: &mut serde_json::Value) {
    use serde_json::json;
    doc["components"]["securitySchemes"]["gateway"] = json!({
        "type": "apiKey",
        "in": "header",
        "name": "X-Gateway-Secret",
        "description": "The gateway's secret (`AUTH_GATEWAY_SECRET`): the gateway adds it to every request it forwards",
    });
    let refused = "`gateway_required`: the request did not come through the gateway (no or a wrong `X-Gateway-Secret`)";
    let paths = doc["paths"].as_object_mut().into_iter().flatten();
    for (_, item) in paths.filter(|(path, _)| !OPEN_PATHS.contains(&path.as_str())) {
        for (_, op) in item.as_object_mut().into_iter().flatten() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let security = match op.get("security").and_then(|s| s.as_array()) {
                Some(options) if !options.is_empty() => options
                    .iter()
                    .map(|option| {
                        let mut option = option.clone();
                        option["gateway"] = json!([]);
                        option
                    })
                    .collect(),
                _ => vec![json!({"gateway": []})],
            };
            op.insert("security".into(), json!(security));
            let responses = op.entry("responses").or_insert_with(|| json!({}));
            match responses.get_mut("403") {
                Some(forbidden) => {
                    let said = forbidden["description"].as_str().unwrap_or_default();
                    forbidden["description"] = json!(format!("{said}; or {refused}"));
                }
                None => {
                    responses["403"] = json!({
                        "description": refused,
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_paths_are_the_docs_page_and_its_files_only() {
        for path in ["/docs", "/docs/", "/docs/swagger-ui.css"] {
            assert!(is_docs(path), "{path}");
        }
        for path in ["/docsx", "/", "/auth/docs", "/openapi.json"] {
            assert!(!is_docs(path), "{path}");
        }
    }

    #[test]
    fn the_gateway_scheme_is_required_with_the_bearer_where_an_operation_takes_one() {
        let mut doc = serde_json::json!({
            "paths": {
                "/health": {"get": {"responses": {"200": {"description": "ok"}}}},
                "/auth/me": {"get": {
                    "security": [{"bearer": []}],
                    "responses": {"403": {"description": "`forbidden`"}},
                }},
                "/auth/login": {"post": {"responses": {}}},
            },
        });
        document_gateway(&mut doc);
        assert_eq!(
            doc["components"]["securitySchemes"]["gateway"]["in"],
            "header"
        );
        assert!(doc["paths"]["/health"]["get"].get("security").is_none());
        assert_eq!(
            doc["paths"]["/auth/me"]["get"]["security"],
            serde_json::json!([{"bearer": [], "gateway": []}])
        );
        let me_403 = doc["paths"]["/auth/me"]["get"]["responses"]["403"]["description"]
            .as_str()
            .unwrap();
        assert!(me_403.starts_with("`forbidden`") && me_403.contains("gateway_required"));
        assert_eq!(
            doc["paths"]["/auth/login"]["post"]["security"],
            serde_json::json!([{"gateway": []}])
        );
        assert!(doc["paths"]["/auth/login"]["post"]["responses"]["403"].is_object());
    }
}
