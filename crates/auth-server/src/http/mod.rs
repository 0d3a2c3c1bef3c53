//! The HTTP API: each area (`accounts`, `recovery`, `sessions`, `platform`, `compat`, `ops`) defines its
//! routes, with their OpenAPI descriptions, in groups that declare what they need
//! ([`route::Needs`]); this module merges them, applies what each group needs, and adds the
//! cross-cutting layers.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod compat;
pub mod completion;
pub mod edge;
pub mod error;
pub mod events;
pub mod extract;
pub mod limit;
pub mod ops;
pub mod platform;
pub mod recovery;
pub mod request_id;
pub mod respond;
pub mod route;
pub mod sessions;

use std::sync::Arc;

use auth_core::password::PasswordPolicy;
use auth_proto::ErrorCode;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDoc, PathItem};
use utoipa::{Modify, OpenApi};

pub use completion::{Drained, InFlight};

use self::completion::to_completion;
use self::error::ApiError;
use self::route::{Group, Needs};
use crate::metrics::requests::RequestMetrics;
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
        (name = "admin", description = "Users, roles, keys and tenants, for callers holding the permission each operation names"),
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

/// Every area's groups of routes.
fn groups() -> Vec<Group> {
    [
        accounts::groups(),
        recovery::groups(),
        admin::groups(),
        audit::groups(),
        events::groups(),
        sessions::groups(),
        platform::groups(),
        compat::groups(),
        ops::groups(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The routes, each group with what it needs, and their OpenAPI document, before state and
/// layers are applied.
fn api() -> (Vec<(Router<AppState>, Needs)>, OpenApiDoc) {
    let mut doc = ApiDoc::openapi();
    let mut routers = Vec::new();
    let mut needs_of = std::collections::HashMap::new();
    for group in groups() {
        let (router, mut part) = group.routes.split_for_parts();
        route::document_needs(&mut part, group.needs);
        needs_of.extend(part.paths.paths.keys().map(|p| (p.clone(), group.needs)));
        doc.merge(part);
        routers.push((router, group.needs));
    }
    // An alias needs what the path it stands for needs.
    for (alias, target, handler) in accounts::aliases() {
        if let (Some(item), Some(needs)) =
            (doc.paths.paths.get(target).cloned(), needs_of.get(target))
        {
            doc.paths.paths.insert(alias.to_owned(), alias_item(item));
            routers.push((Router::new().route(alias, handler), *needs));
        }
    }
    document_docs_routes(&mut doc);
    route::document_body_refusals(&mut doc);
    route::describe_answers(&mut doc);
    (routers, doc)
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

/// The OpenAPI 3.1 document of every route, for a service with this password policy (and
/// the gateway's secret required, when `gated`), as JSON.
pub fn openapi(policy: PasswordPolicy, gated: bool) -> serde_json::Value {
    let mut document = constrained(&api().1, policy);
    if gated {
        edge::document_gateway(&mut document);
    }
    document
}

/// Gives every field of the document the rules the service applies to it, written once: the
/// new passwords the configured minimum length, and every email, username and new password the
/// rules of sign-up's (the annotated source); role names, permissions and tenant ids theirs.
/// So a request the document allows is one the service takes.
fn constrained(doc: &OpenApiDoc, policy: PasswordPolicy) -> serde_json::Value {
    use serde_json::{Value, json};
    let Ok(mut value) = serde_json::to_value(doc) else {
        debug_assert!(false, "the document serializes");
        return Value::Null;
    };
    let schemas = &mut value["components"]["schemas"];
    schemas["SignupRequest"]["properties"]["password"]["minLength"] = json!(policy.min_chars);
    let signup = schemas["SignupRequest"]["properties"].clone();
    let string = |pattern: &str| json!({"type": "string", "pattern": pattern});
    let role = string(ROLE_PATTERN);
    let list = |items: Value| json!({"type": "array", "items": items});
    let permissions = list(string(PERMISSION_PATTERN));
    // What a `PATCH` leaves out it leaves as it is; `null` too (and removes the username).
    let nullable = |mut rule: Value| {
        let kind = rule["type"].clone();
        if kind.is_string() {
            rule["type"] = json!([kind, "null"]);
        }
        rule
    };
    let fields: [(&str, &str, Value); 18] = [
        ("SignupRequest", "tenant", nullable(string(TENANT_PATTERN))),
        (
            "PasswordResetRequest",
            "tenant",
            nullable(string(TENANT_PATTERN)),
        ),
        (
            "PasswordResetConfirm",
            "new_password",
            signup["password"].clone(),
        ),
        ("CreateUserRequest", "email", signup["email"].clone()),
        ("CreateUserRequest", "password", signup["password"].clone()),
        ("CreateUserRequest", "username", signup["username"].clone()),
        ("CreateUserRequest", "roles", list(role.clone())),
        (
            "UpdateUserRequest",
            "email",
            nullable(signup["email"].clone()),
        ),
        (
            "UpdateUserRequest",
            "username",
            nullable(signup["username"].clone()),
        ),
        ("UpdateUserRequest", "roles", nullable(list(role.clone()))),
        (
            "UpdateMeRequest",
            "email",
            nullable(signup["email"].clone()),
        ),
        (
            "UpdateMeRequest",
            "username",
            nullable(signup["username"].clone()),
        ),
        ("SetPasswordRequest", "password", signup["password"].clone()),
        (
            "ChangePasswordRequest",
            "new_password",
            signup["password"].clone(),
        ),
        ("CreateRoleRequest", "name", role.clone()),
        ("CreateRoleRequest", "permissions", permissions.clone()),
        ("UpdateRoleRequest", "permissions", permissions),
        ("CreateTenantRequest", "id", string(TENANT_PATTERN)),
    ];
    for (schema, field, rule) in fields {
        let property = &mut schemas[schema]["properties"][field];
        debug_assert!(property.is_object(), "{schema}.{field} is documented");
        *property = rule;
    }
    // The admin API's query and path parameters: the same rules, and a parameter that breaks
    // one is refused with 422.
    let refused = json!({
        "description": "`validation_failed`: a parameter breaks its rule",
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    });
    let admin = value["paths"].as_object_mut().into_iter().flatten();
    for (_, item) in admin.filter(|(path, _)| path.starts_with("/auth/admin/")) {
        for (_, op) in item.as_object_mut().into_iter().flatten() {
            if op["parameters"].as_array().is_some_and(|p| !p.is_empty())
                && op["responses"]["422"].is_null()
            {
                op["responses"]["422"] = refused.clone();
            }
            // `get_mut`: indexing a missing key mutably would insert a `null` parameter list.
            let params = op.get_mut("parameters").and_then(Value::as_array_mut);
            for param in params.into_iter().flatten() {
                let pattern = match param["name"].as_str() {
                    Some("tenant") => TENANT_PATTERN,
                    Some("role") | Some("name") => ROLE_PATTERN,
                    // The audit log's cursors state their own pattern.
                    Some("cursor") if param["schema"]["pattern"].is_null() => CURSOR_PATTERN,
                    _ => continue,
                };
                param["schema"]["pattern"] = json!(pattern);
            }
        }
    }
    value
}

/// Role names ([`auth_core::domain::RoleName`]).
const ROLE_PATTERN: &str = "^[a-z0-9_:-]{1,64}$";
/// Permissions ([`auth_core::domain::Permission`]).
const PERMISSION_PATTERN: &str = "^[a-z0-9_.*:-]{1,128}$";
/// Tenant ids ([`auth_core::domain::TenantId`]).
const TENANT_PATTERN: &str = "^[a-z0-9-]{1,64}$";
/// Listing cursors ([`admin::list_users`]).
const CURSOR_PATTERN: &str = "^(?:[0-9a-f]{2}){1,64}$";

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

/// The complete application router: each group with what it needs (the caller checked for
/// its permission, writes run to completion), then the cross-cutting layers, the edge's
/// checks outside all but the request id.
pub fn router(
    state: AppState,
    in_flight: &InFlight,
    edge: &edge::Edge,
    access_log: crate::config::AccessLog,
) -> Router {
    let (groups, doc) = api();
    let mut document = constrained(&doc, state.accounts.policy());
    // The histograms' route labels: every template of the route table, once.
    let templates = doc.paths.paths.keys().map(String::as_str);
    let docs_routes = ["/openapi.json", "/docs", "/docs/", "/docs/{*rest}"];
    let requests = Arc::new(RequestMetrics::new(templates.chain(docs_routes)));
    let _ = state.requests.set(requests.clone());
    let observer = request_id::Observer::new(access_log, requests, state.clone());
    drop(doc);
    if edge.gated() {
        edge::document_gateway(&mut document);
    }
    // Served as it was written once: a process keeps the document's bytes, not its structure.
    let document = axum::body::Bytes::from(serde_json::to_vec(&document).unwrap_or_default());
    let app = with_needs(groups, &state, in_flight).route(
        "/openapi.json",
        axum::routing::get(move || {
            let document = document.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        axum::http::HeaderValue::from_static("application/json"),
                    )],
                    document,
                )
            }
        }),
    );
    let docs = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .config(utoipa_swagger_ui::Config::new(["/openapi.json"]));
    app.merge(docs)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn_with_state(
            edge.clone(),
            edge::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(
            observer,
            request_id::middleware,
        ))
}

/// Each group's routes with what they need applied, merged.
fn with_needs(
    groups: Vec<(Router<AppState>, Needs)>,
    state: &AppState,
    in_flight: &InFlight,
) -> Router<AppState> {
    let mut app = Router::new();
    for (mut routes, needs) in groups {
        if let Some(permission) = needs.permission {
            routes = routes.route_layer(axum::middleware::from_fn_with_state(
                (state.clone(), permission),
                extract::require_permission,
            ));
        }
        if needs.to_completion {
            routes = routes.layer(axum::middleware::from_fn_with_state(
                in_flight.clone(),
                to_completion,
            ));
        }
        if let Some(limit) = needs.limit.filter(|l| state.limits.is_on(*l)) {
            // Outermost: a refused request reads no body and starts nothing.
            routes = routes.route_layer(axum::middleware::from_fn_with_state(
                (state.clone(), limit),
                limit::limit_ip,
            ));
        }
        app = app.merge(routes);
    }
    app
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "No such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "Method not allowed",
    )
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(&"handler panicked").into_response()
}

#[cfg(test)]
mod tests;
