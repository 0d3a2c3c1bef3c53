//! How an area declares what its routes need, and what follows from each need: a route that
//! uses the database is documented as able to answer 503; one that writes runs to its end
//! even if its client goes away; one that needs a permission gets the caller checked before
//! its handler runs, 401/403 documented and the permission named (`x-required-permission`);
//! one that is rate-limited per client IP gets that limit checked before its handler runs and
//! 429 documented.
//! Declared once per group of routes, in the area that defines them, never inferred from
//! names or tags.

use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDoc, Ref, ResponseBuilder};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::limits::Limit;
use crate::state::AppState;

/// What the routes of a [`Group`] need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Reads or writes the database (or waits for a hashing place): can answer 503.
    pub database: bool,
    /// Writes: a request whose client went away still runs to its end.
    pub to_completion: bool,
    /// A bearer token whose caller holds this permission.
    pub permission: Option<&'static str>,
    /// A rate limit per client IP, checked before the handler: can answer 429.
    pub limit: Option<Limit>,
}

impl Needs {
    /// Nothing: answered from memory.
    pub const NOTHING: Needs = Needs {
        database: false,
        to_completion: false,
        permission: None,
        limit: None,
    };
    /// Reads the database.
    pub const READS: Needs = Needs {
        database: true,
        ..Self::NOTHING
    };
    /// Writes to the database.
    pub const WRITES: Needs = Needs {
        database: true,
        to_completion: true,
        ..Self::NOTHING
    };

    /// The same, for callers holding `permission` only.
    pub const fn permission(self, permission: &'static str) -> Self {
        Needs {
            permission: Some(permission),
            ..self
        }
    }

    /// The same, rate-limited per client IP by `limit`.
    pub const fn limited(self, limit: Limit) -> Self {
        Needs {
            limit: Some(limit),
            ..self
        }
    }
}

/// Routes that need the same things.
pub struct Group {
    pub needs: Needs,
    pub routes: OpenApiRouter<AppState>,
}

impl Group {
    pub fn new(needs: Needs) -> Self {
        Self {
            needs,
            routes: OpenApiRouter::new(),
        }
    }

    pub fn routes(mut self, routes: UtoipaMethodRouter<AppState>) -> Self {
        self.routes = self.routes.routes(routes);
        self
    }
}

/// Documents what every operation of a group can answer because of what it needs, where its
/// own annotation does not say it already.
pub fn document_needs(doc: &mut OpenApiDoc, needs: Needs) {
    let mut refusals: Vec<(&str, &str)> = Vec::new();
    if needs.database {
        refusals.push((
            "503",
            "`unavailable`: the database is unreachable or the service too busy; retry after `Retry-After`",
        ));
    }
    if needs.permission.is_some() {
        refusals.push((
            "401",
            "`token_invalid`, `token_expired` or `token_revoked`: no valid bearer token",
        ));
        refusals.push(("403", "`forbidden`: the caller lacks the permission"));
    }
    if needs.limit.is_some() {
        refusals.push((
            "429",
            "`rate_limited`: too many requests from this client (or for this account); retry after `Retry-After` seconds. `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10) describe the limit",
        ));
    }
    for op in operations(doc) {
        for refusal in &refusals {
            add_problem(op, *refusal);
        }
        // Named for readers and tools (CI's schemathesis run calls these with an admin's token).
        if let Some(permission) = needs.permission {
            let named = ExtensionsBuilder::new()
                .add("x-required-permission", permission)
                .build();
            op.extensions
                .get_or_insert_with(Default::default)
                .merge(named);
        }
    }
}

/// Documents the refusals of a request body on every operation that takes one: the body
/// extractors answer them (not JSON, too large, not the media type, not the shape).
pub fn document_body_refusals(doc: &mut OpenApiDoc) {
    const BODY_ERRORS: [(&str, &str); 5] = [
        (
            "400",
            "`malformed_request`: the body is not valid JSON (or not a valid form)",
        ),
        (
            "408",
            "`request_timeout`: the body did not arrive within `AUTH_BODY_TIMEOUT_MS`; the connection is closed",
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
    for op in operations(doc) {
        if op.request_body.is_some() {
            for error in BODY_ERRORS {
                add_problem(op, error);
            }
        }
    }
}

/// Gives every answer an operation documents without a description the status's reason
/// phrase: OpenAPI requires one, and validators refuse a document without it.
pub fn describe_answers(doc: &mut OpenApiDoc) {
    for op in operations(doc) {
        for (status, answer) in op.responses.responses.iter_mut() {
            if let utoipa::openapi::RefOr::T(answer) = answer
                && answer.description.is_empty()
            {
                answer.description = status
                    .parse::<u16>()
                    .ok()
                    .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("Answer")
                    .to_owned();
            }
        }
    }
}

fn operations(doc: &mut OpenApiDoc) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
    })
}

fn add_problem(op: &mut Operation, (status, description): (&str, &str)) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
                .into()
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    use utoipa::openapi::{OpenApiBuilder, PathItem, PathsBuilder};

    #[test]
    fn an_operation_that_needs_a_permission_names_it_and_documents_401_and_403() {
        let doc = |needs: Needs| {
            let op = OperationBuilder::new()
                .response("200", ResponseBuilder::new().description("ok").build())
                .build();
            let mut doc = OpenApiBuilder::new()
                .paths(PathsBuilder::new().path("/x", PathItem::new(HttpMethod::Get, op)))
                .build();
            document_needs(&mut doc, needs);
            serde_json::to_value(&doc).expect("JSON")["paths"]["/x"]["get"].clone()
        };
        let guarded = doc(Needs::READS.permission("users:read"));
        assert_eq!(guarded["x-required-permission"], "users:read");
        for status in ["401", "403", "503"] {
            assert!(
                guarded["responses"].get(status).is_some(),
                "{status}: {guarded}"
            );
        }
        let open = doc(Needs::READS);
        assert!(open.get("x-required-permission").is_none(), "{open}");
        assert!(open["responses"].get("403").is_none(), "{open}");
    }
}
