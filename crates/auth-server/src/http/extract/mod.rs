//! Request extractors that answer bad input with problem+json: JSON bodies (415, 413, 400,
//! 422 naming the field), JSON-or-form bodies; and, in [`caller`], who is calling (the
//! client's address behind proxies in [`forwarded`]).

mod caller;
mod forwarded;

pub use caller::{
    Bearer, Caller, Client, RequirePermission, TenantScope, bearer_token, require_permission,
};
pub use forwarded::client_ip;

use auth_proto::{ErrorCode, FieldError};
use axum::RequestExt as _;
use axum::body::Bytes;
use axum::body::HttpBody as _;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header};
use http_body_util::{BodyExt as _, LengthLimitError};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The media type family of a request body.
#[derive(Debug, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
    Other,
}

fn body_kind(req: &Request) -> BodyKind {
    let Some(ct) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return BodyKind::Other;
    };
    // The common case, exactly as most clients send it.
    if ct == "application/json" {
        return BodyKind::Json;
    }
    let essence = ct.split(';').next().unwrap_or_default().trim();
    let is = |wanted: &str| essence.eq_ignore_ascii_case(wanted);
    // `application/<anything>+json`, compared without copying the header to lower case.
    let prefix = "application/";
    let suffix = "+json";
    let structured_json = essence.len() > prefix.len() + suffix.len()
        && essence
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        && essence
            .get(essence.len() - suffix.len()..)
            .is_some_and(|s| s.eq_ignore_ascii_case(suffix));
    if is("application/json") || structured_json {
        BodyKind::Json
    } else if is("application/x-www-form-urlencoded") {
        BodyKind::Form
    } else {
        BodyKind::Other
    }
}

fn unsupported(expected: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::UnsupportedMediaType,
        "Unsupported media type",
    )
    .detail(format!("send the body as {expected}"))
}

/// The whole body, within the body limit.
///
/// Read frame by frame: a body that comes in one piece is handed on as it came, and reading
/// stops as soon as the body says it has ended (a body of a declared length says so with its
/// last bytes). For this API's small bodies that is ~0.9k instructions per request fewer than
/// collecting it with axum's `Bytes` extractor (callgrind; BENCHMARKS.md, seventh round).
async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    let mut body = req.with_limited_body().into_body();
    let mut first = Bytes::new();
    let mut rest: Vec<u8> = Vec::new();
    while !body.is_end_stream() {
        let Some(frame) = body.frame().await else {
            break;
        };
        let Ok(data) = frame.map_err(unreadable)?.into_data() else {
            continue; // trailers
        };
        if first.is_empty() && rest.is_empty() {
            first = data;
        } else {
            if rest.is_empty() {
                rest.extend_from_slice(&first);
            }
            rest.extend_from_slice(&data);
        }
    }
    Ok(if rest.is_empty() { first } else { rest.into() })
}

/// A body that could not be read: too large (413), too slow (408), or cut off or malformed
/// (400).
fn unreadable(error: axum::Error) -> ApiError {
    let error = error.into_inner();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return super::edge::too_large();
        }
        if e.is::<super::edge::BodyTimedOut>() {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::RequestTimeout,
                "Request timeout",
            )
            .detail("the request body did not arrive in time");
        }
        source = e.source();
    }
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::MalformedRequest,
        "Unreadable body",
    )
}

/// Parses JSON: syntax errors are 400, shape errors 422 naming the field. Every body of this
/// API is an object (or `null` where a body is optional): an array is refused, since serde's
/// derived types would otherwise also take their fields as an array, in order.
pub fn parse_json<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, ApiError> {
    if bytes.trim_ascii_start().first() == Some(&b'[') {
        return Err(ApiError::validation(vec![FieldError {
            field: ".".into(),
            message: "invalid type: sequence, expected a JSON object".into(),
        }]));
    }
    // The common case parses once; only a failure pays for finding out what is wrong.
    let first = match serde_json::from_slice(bytes) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest,
            "Malformed JSON",
        )
        .detail(format!(
            "line {}, column {}: {}",
            e.line(),
            e.column(),
            e.classify_label()
        ))
    })?;
    let shaped: Result<T, _> = serde_path_to_error::deserialize(value);
    if shaped.is_ok() {
        // Only the text breaks a rule that its parsed value cannot show: a key given twice
        // (a parsed object keeps the last). One field, one value.
        let message = first.to_string();
        let field = message
            .strip_prefix("duplicate field `")
            .and_then(|m| m.split('`').next())
            .unwrap_or(".")
            .to_owned();
        return Err(ApiError::validation(vec![FieldError { field, message }]));
    }
    shaped.map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // serde reports a missing field at its parent; name the field itself.
        let field = match message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            Some(name) if path == "." => name.to_owned(),
            Some(name) => format!("{path}.{name}"),
            None => path,
        };
        ApiError::validation(vec![FieldError { field, message }])
    })
}

trait ClassifyLabel {
    fn classify_label(&self) -> &'static str;
}

impl ClassifyLabel for serde_json::Error {
    fn classify_label(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "unexpected end of input",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data | serde_json::error::Category::Io => "invalid data",
        }
    }
}

/// A JSON body, or a problem+json refusal.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        if body_kind(&req) != BodyKind::Json {
            return Err(unsupported("application/json"));
        }
        let bytes = read_body(req).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A body sent as JSON or as an HTML/OAuth2 form (`application/x-www-form-urlencoded`).
pub struct JsonOrForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonOrForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        match body_kind(&req) {
            BodyKind::Json => parse_json(&read_body(req).await?).map(JsonOrForm),
            BodyKind::Form => {
                let bytes = read_body(req).await?;
                serde_urlencoded::from_bytes(&bytes)
                    .map(JsonOrForm)
                    .map_err(|e| {
                        let message = e.to_string();
                        let field = message
                            .strip_prefix("missing field `")
                            .and_then(|m| m.split('`').next())
                            .unwrap_or(".")
                            .to_owned();
                        ApiError::validation(vec![FieldError { field, message }])
                    })
            }
            BodyKind::Other => Err(unsupported(
                "application/json or application/x-www-form-urlencoded",
            )),
        }
    }
}

/// An optional JSON body: `None` when the request has no body at all, or a body of JSON
/// `null` (which the OpenAPI document allows for an optional body).
pub struct MaybeJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match MaybeJsonBytes::from_request(req, state).await? {
            MaybeJsonBytes(Some(bytes)) => parse_json(&bytes).map(MaybeJson),
            MaybeJsonBytes(None) => Ok(MaybeJson(None)),
        }
    }
}

/// An optional JSON body, not parsed yet, for a body type that borrows from it (parse it
/// with [`parse_json`]): `None` when the request has no body at all.
pub struct MaybeJsonBytes(pub Option<Bytes>);

impl<S: Send + Sync> FromRequest<S> for MaybeJsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let declared_empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
        let no_body = req.headers().get(header::CONTENT_TYPE).is_none()
            && (declared_empty || !req.headers().contains_key(header::TRANSFER_ENCODING));
        if no_body {
            let bytes = read_body(req).await?;
            return if bytes.is_empty() {
                Ok(MaybeJsonBytes(None))
            } else {
                Err(unsupported("application/json"))
            };
        }
        if body_kind(&req) != BodyKind::Json {
            return Err(unsupported("application/json"));
        }
        read_body(req)
            .await
            .map(|bytes| MaybeJsonBytes(Some(bytes)))
    }
}

/// Query parameters, or a 422 naming the parameter that is wrong.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| {
                ApiError::validation(vec![FieldError {
                    field: "query".into(),
                    message: e.to_string(),
                }])
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn kind(content_type: &str) -> BodyKind {
        let request = Request::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::empty())
            .unwrap();
        body_kind(&request)
    }

    #[test]
    fn media_types_match_whatever_their_case_and_parameters() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/json ;",
            "application/merge-patch+json",
            "APPLICATION/VND.API+JSON",
        ] {
            assert_eq!(kind(json), BodyKind::Json, "{json}");
        }
        for form in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
        ] {
            assert_eq!(kind(form), BodyKind::Form, "{form}");
        }
        for other in [
            "text/plain",
            "application/jsonx",
            "application/+json",
            "text/x+json",
            "application/xml",
            "",
        ] {
            assert_eq!(kind(other), BodyKind::Other, "{other}");
        }
    }
}
