//! The HTTP API: each resource module contributes its routes (with their OpenAPI
//! descriptions); this module merges them and adds the cross-cutting layers.

pub mod auth;
pub mod compat;
pub mod error;
pub mod extract;
pub mod meta;
pub mod platform;
pub mod request_id;
pub mod sessions;

use auth_proto::ErrorCode;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDoc, PathItem};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use self::error::ApiError;
use crate::state::AppState;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "auth-service",
        description = "Authentication and identity service: accounts, credentials and signed access tokens. \
                       Errors are RFC 9457 problem+json bodies with a stable `code`.",
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "sessions", description = "Refresh-token rotation, logout and sessions"),
        (name = "platform", description = "Token checks for gateways and services"),
        (name = "compat", description = "Contracts of the services this one replaces"),
        (name = "operations", description = "Health, keys and documentation"),
    )
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The routes and their OpenAPI document, before state and layers are applied.
fn api(in_flight: &InFlight) -> (Router<AppState>, OpenApiDoc) {
    // Every route that writes runs to its end even if its client goes away.
    let writes = OpenApiRouter::new()
        .merge(auth::router())
        .merge(sessions::router())
        .merge(compat::router())
        .layer(axum::middleware::from_fn_with_state(
            in_flight.clone(),
            to_completion,
        ));
    let (mut router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(writes)
        .merge(platform::router())
        .merge(meta::router())
        .split_for_parts();
    document_docs_routes(&mut doc);
    document_common_errors(&mut doc);
    for (alias, target) in auth::ALIASES {
        if let Some(item) = doc.paths.paths.get(*target).cloned() {
            let signup = axum::routing::post(auth::signup).layer(
                axum::middleware::from_fn_with_state(in_flight.clone(), to_completion),
            );
            router = router.route(alias, signup);
            doc.paths
                .paths
                .insert((*alias).to_owned(), alias_item(item));
        }
    }
    (router, doc)
}

/// Gives the alias operation its own id so the document stays valid.
fn alias_item(mut item: PathItem) -> PathItem {
    for op in [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.delete,
        &mut item.patch,
    ] {
        if let Some(op) = op.as_mut() {
            op.operation_id = op.operation_id.take().map(|id| format!("{id}_alias"));
        }
    }
    item
}

/// The OpenAPI 3.1 document of every route.
pub fn openapi() -> OpenApiDoc {
    api(&InFlight::new().0).1
}

/// Documents the refusals every operation of a kind can answer, where its own annotation
/// does not: a request body can be refused by the body extractors (not JSON, too large, not
/// the media type, not the shape), and an operation that reads or writes the database answers
/// 503 when the database is unreachable or the hashing pool is full. Added by rule, so a new
/// route is documented as it behaves without repeating the list.
fn document_common_errors(doc: &mut OpenApiDoc) {
    use utoipa::openapi::path::Operation;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    const BODY_ERRORS: [(&str, &str); 4] = [
        (
            "400",
            "`malformed_request`: the body is not valid JSON (or not a valid form)",
        ),
        ("413", "`payload_too_large`: the body is larger than 64 KiB"),
        (
            "415",
            "`unsupported_media_type`: the body is not of a media type this operation takes",
        ),
        (
            "422",
            "`validation_failed`: the body is not of the documented shape; `errors` names the fields",
        ),
    ];
    const UNAVAILABLE: (&str, &str) = (
        "503",
        "`unavailable`: the database is unreachable or the service too busy; retry after `Retry-After`",
    );
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    let add = |op: &mut Operation, (status, description): (&str, &str)| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description).into());
    };
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            if op.request_body.is_some() {
                for error in BODY_ERRORS {
                    add(op, error);
                }
            }
            let tags = op.tags.as_deref().unwrap_or_default();
            let health = op
                .operation_id
                .as_deref()
                .is_some_and(|id| id.contains("health"));
            let uses_database = tags
                .iter()
                .any(|t| matches!(t.as_str(), "auth" | "sessions" | "compat"));
            if uses_database && !health {
                add(op, UNAVAILABLE);
            }
        }
    }
}

/// Documents the two routes served by Swagger UI, which has no annotations of its own.
fn document_docs_routes(doc: &mut OpenApiDoc) {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    use utoipa::openapi::response::ResponseBuilder;
    for (path, summary, id) in [
        (
            "/openapi.json",
            "This OpenAPI 3.1 document",
            "openapi_document",
        ),
        (
            "/docs",
            "Interactive API documentation (Swagger UI, served from the binary)",
            "docs_page",
        ),
    ] {
        let op = OperationBuilder::new()
            .summary(Some(summary))
            .operation_id(Some(id))
            .tag("operations")
            .response("200", ResponseBuilder::new().description(summary).build())
            .build();
        doc.paths
            .paths
            .insert(path.to_owned(), PathItem::new(HttpMethod::Get, op));
    }
}

/// The complete application router.
pub fn router(state: AppState, in_flight: &InFlight) -> Router {
    let (api, doc) = api(in_flight);
    let docs = utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", doc);
    api.merge(docs)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn(request_id::middleware))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "No such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "Method not allowed",
    )
}

/// Requests running on tasks of their own ([`to_completion`]): each task holds a clone until
/// it ends, so shutdown can wait for them before it closes the database pool.
#[derive(Clone)]
pub struct InFlight {
    _open: mpsc::Sender<()>,
}

/// Completes once every [`InFlight`] clone is gone.
pub struct Drained(mpsc::Receiver<()>);

impl InFlight {
    pub fn new() -> (Self, Drained) {
        let (tx, rx) = mpsc::channel(1);
        (Self { _open: tx }, Drained(rx))
    }
}

impl Drained {
    /// Waits until the router and every request task it handed off are gone.
    pub async fn wait(mut self) {
        while self.0.recv().await.is_some() {}
    }
}

/// Runs the rest of the request to its end even if its client does not wait for it. When a
/// client gives up (a timeout, a closed connection), hyper drops the request's future wherever
/// it waits, also between a transaction's statements; sqlx's SQLite driver can then be left
/// believing a transaction is still open on the writer connection, and every later write fails
/// (reproduced under load; the test `clients_that_give_up_mid_request_leave_no_transaction_behind`).
/// A login, refresh or logout whose client left is completed: it is the same as one whose answer
/// was lost on the way back. The request runs in place, and only if it is dropped unfinished
/// does the rest of it move to a task of its own (spawning every request's task cost a task, a
/// copy of its future and a wake-up each).
async fn to_completion(
    State(in_flight): State<InFlight>,
    request: Request,
    next: Next,
) -> Response {
    let handled = request_id::carried(next.run(request)).instrument(tracing::Span::current());
    Completing(Some((Box::pin(handled), in_flight))).await
}

/// A request's future that, dropped before it is done, finishes on a task of its own; its
/// [`InFlight`] clone goes with it, so shutdown waits for it.
struct Completing<F: Future<Output = Response> + Send + 'static>(Option<(Pin<Box<F>>, InFlight)>);

impl<F: Future<Output = Response> + Send + 'static> Future for Completing<F> {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let Some((handled, _)) = self.0.as_mut() else {
            return Poll::Ready(
                ApiError::internal(&"request polled after it ended").into_response(),
            );
        };
        let response = std::task::ready!(handled.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(response)
    }
}

impl<F: Future<Output = Response> + Send + 'static> Drop for Completing<F> {
    fn drop(&mut self) {
        // A request that panicked is not resumed (CatchPanicLayer answers it); nor is one
        // whose runtime is gone (shutdown is over).
        if std::thread::panicking() {
            return;
        }
        if let Some((handled, in_flight)) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _in_flight = in_flight;
                handled.await
            });
        }
    }
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(&"handler panicked").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// A write route wrapped as [`api`] wraps them, under the layers [`router`] adds.
    fn wrapped(in_flight: &InFlight) -> Router {
        async fn panics() -> Response {
            panic!("a bug in a handler")
        }
        Router::new()
            .route("/write", axum::routing::post(panics))
            .route("/fine", axum::routing::post(|| async { "done" }))
            .layer(axum::middleware::from_fn_with_state(
                in_flight.clone(),
                to_completion,
            ))
            .layer(CatchPanicLayer::custom(panicked))
            .layer(axum::middleware::from_fn(request_id::middleware))
    }

    async fn post(router: &Router, path: &str) -> (StatusCode, Option<String>, Vec<u8>) {
        let request = Request::post(path).body(Body::empty()).expect("request");
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, kind, body.to_vec())
    }

    #[tokio::test]
    async fn a_panicking_handler_gets_a_problem_answer_and_is_not_resumed() {
        let (in_flight, drained) = InFlight::new();
        let router = wrapped(&in_flight);
        let (status, kind, body) = post(&router, "/write").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(kind.as_deref(), Some("application/problem+json"));
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["code"], "internal");
        assert_eq!(body["status"], 500);
        assert!(
            !body.to_string().contains("a bug in a handler"),
            "the panic's message stays out of the answer: {body}"
        );
        // The server goes on answering.
        let (status, _, body) = post(&router, "/fine").await;
        assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"done"[..]));
        // Once the router is gone nothing holds the in-flight count: shutdown does not wait
        // on a request that panicked.
        drop((router, in_flight));
        tokio::time::timeout(std::time::Duration::from_secs(5), drained.wait())
            .await
            .expect("nothing left in flight");
    }
}
