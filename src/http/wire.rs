//! GraphQL over HTTP (<https://graphql.github.io/graphql-over-http/draft/>): the media type a
//! response is written in, how a request is read from GET and POST, and the shape of every
//! refusal: a GraphQL response with `errors` only (no `data` entry: nothing ran), each error
//! with a plain message and `extensions.code`, never a Rust debug string.
//!
//! Statuses. A request that is not a well-formed GraphQL-over-HTTP request (a body that is not
//! JSON, not an object, a batch, a `query` that is not a string, no query) is a 4xx whatever the
//! media type. A well-formed request whose operation is refused before it runs (parse,
//! validation, the perimeter's limits, persisted operations) is a *request error*: HTTP 400 in
//! `application/graphql-response+json`, HTTP 200 in `application/json` (where the spec asks
//! for 200, since a legacy client cannot tell a 4xx JSON body from an intermediary's).
//! Conditions of HTTP itself keep their statuses in both: 401, 403, 405, 406, 413, 415, 429,
//! 503.

use async_graphql::{Pos, Variables};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Map, Value};

/// The GraphQL-over-HTTP response media type.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// `BAD_REQUEST`: the body is not a GraphQL request (not JSON, wrong shape, no query).
pub const BAD_REQUEST: &str = "BAD_REQUEST";
/// `BATCHING_NOT_SUPPORTED`: the body is a JSON array of operations; send one per request.
pub const BATCHING_NOT_SUPPORTED: &str = "BATCHING_NOT_SUPPORTED";
/// `PAYLOAD_TOO_LARGE` (413): the body is larger than the server accepts.
pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
/// `BAD_USER_INPUT` (415): a POST body that is not `application/json` (the code the login
/// CSRF check has always answered with).
pub const UNSUPPORTED_MEDIA_TYPE: &str = "BAD_USER_INPUT";
/// `NOT_ACCEPTABLE` (406): the `Accept` header allows neither response media type.
pub const NOT_ACCEPTABLE: &str = "NOT_ACCEPTABLE";
/// `METHOD_NOT_ALLOWED` (405): a mutation over GET or HEAD, or a method a route does not take.
pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
/// `NOT_FOUND` (404): no such route.
pub const NOT_FOUND: &str = "NOT_FOUND";
/// `GRAPHQL_VALIDATION_FAILED`: the document does not validate against the caller's schema
/// (including a field outside the role's schema, which reads exactly like a typo).
pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

/// The media type a GraphQL response is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: the status tells a request error (400) from an
    /// executed operation (200).
    GraphqlResponse,
    /// `application/json`: the legacy type; a well-formed request's answer is 200.
    Json,
}

impl Media {
    pub fn content_type(self) -> HeaderValue {
        match self {
            Media::GraphqlResponse => HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
            Media::Json => HeaderValue::from_static("application/json; charset=utf-8"),
        }
    }

    /// The status of a request error: an operation refused before it ran.
    pub fn request_error_status(self) -> StatusCode {
        match self {
            Media::GraphqlResponse => StatusCode::BAD_REQUEST,
            Media::Json => StatusCode::OK,
        }
    }
}

/// One media range of an `Accept` header: its type, its quality (in thousandths) and its place.
struct Range {
    media: String,
    quality: u16,
}

fn quality(value: &str) -> u16 {
    match value.trim().parse::<f32>() {
        Ok(q) if (0.0..=1.0).contains(&q) => (q * 1000.0).round() as u16,
        _ => 0,
    }
}

fn ranges(headers: &HeaderMap) -> Vec<Range> {
    let mut out = Vec::new();
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split(',') {
            let mut params = part.split(';');
            let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
            if media.is_empty() {
                continue;
            }
            let mut range = Range { media, quality: 1000 };
            let mut utf8 = true;
            for param in params {
                let Some((name, value)) = param.split_once('=') else { continue };
                let name = name.trim();
                if name.eq_ignore_ascii_case("q") {
                    range.quality = quality(value);
                } else if name.eq_ignore_ascii_case("charset") {
                    let charset = value.trim().trim_matches('"');
                    utf8 = charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8");
                }
            }
            // Responses are UTF-8 only: a range asking for another charset matches nothing.
            if utf8 {
                out.push(range);
            }
        }
    }
    out
}

/// How a media type is accepted: the quality of the most specific range naming it (RFC 9110
/// section 12.5.1), how specific that range is (2: by name, 1: `application/*`, 0: `*/*`) and
/// its place in the header.
fn acceptance(ranges: &[Range], media: &str) -> Option<(u16, u8, usize)> {
    let specificity = |range: &str| match range {
        r if r == media => Some(2),
        "application/*" => Some(1),
        "*/*" => Some(0),
        _ => None,
    };
    let mut best: Option<(u16, u8, usize)> = None;
    for (place, range) in ranges.iter().enumerate() {
        if let Some(s) = specificity(&range.media)
            && best.is_none_or(|(_, b, _)| s > b)
        {
            best = Some((range.quality, s, place));
        }
    }
    best.filter(|(q, _, _)| *q > 0)
}

/// The response media type the `Accept` header asks for, or `None` when it allows neither
/// (406). The type with the higher quality wins; at equal quality the one named (not by a
/// wildcard), then the one named first. No `Accept` header, or only wildcards, means
/// `application/json`: what graphql-http's audit asks of a server and what every legacy client
/// reads (the spec's own default moves to application/graphql-response+json in 2025; a client
/// that wants it says so).
pub fn negotiate(headers: &HeaderMap) -> Option<Media> {
    let ranges = ranges(headers);
    if ranges.is_empty()
        && headers.get_all(header::ACCEPT).iter().all(|v| v.as_bytes().iter().all(u8::is_ascii_whitespace))
    {
        return Some(Media::Json);
    }
    let modern = acceptance(&ranges, GRAPHQL_RESPONSE_JSON);
    let legacy = acceptance(&ranges, "application/json");
    match (modern, legacy) {
        (None, None) => None,
        (Some(_), None) => Some(Media::GraphqlResponse),
        (None, Some(_)) => Some(Media::Json),
        (Some((qm, sm, pm)), Some((ql, sl, pl))) => {
            let modern_wins = match (qm.cmp(&ql), sm.cmp(&sl)) {
                (std::cmp::Ordering::Equal, std::cmp::Ordering::Equal) => sm == 2 && pm < pl,
                (std::cmp::Ordering::Equal, by_name) => by_name.is_gt(),
                (by_quality, _) => by_quality.is_gt(),
            };
            Some(if modern_wins { Media::GraphqlResponse } else { Media::Json })
        }
    }
}

/// A GraphQL response holding one error: `{"errors": [{"message", "locations"?, "extensions":
/// {"code"}}]}`. No `data` entry: nothing was executed.
pub fn error(media: Media, status: StatusCode, code: &str, message: &str, at: Option<Pos>) -> Response {
    let mut error = serde_json::json!({ "message": message });
    if let Some(at) = at {
        error["locations"] = serde_json::json!([{ "line": at.line, "column": at.column }]);
    }
    error["extensions"] = serde_json::json!({ "code": code });
    // An operator finds an internal error's log lines by its request id.
    if code == "INTERNAL"
        && let Some(id) = crate::telemetry::request_id()
    {
        error["extensions"]["requestId"] = serde_json::Value::String(id);
    }
    crate::telemetry::note_error_code(code);
    let body = serde_json::json!({ "errors": [error] });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, media.content_type());
    response
}

/// 406: the client accepts neither media type; answered in `application/json`.
pub fn not_acceptable() -> Response {
    error(
        Media::Json,
        StatusCode::NOT_ACCEPTABLE,
        NOT_ACCEPTABLE,
        "the response is application/graphql-response+json or application/json; the Accept header allows neither",
        None,
    )
}

/// A request that is not a well-formed GraphQL-over-HTTP request.
#[derive(Debug)]
pub struct Malformed {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Malformed {
    fn bad(message: impl Into<String>) -> Self {
        Malformed { status: StatusCode::BAD_REQUEST, code: BAD_REQUEST, message: message.into() }
    }

    pub fn into_response(self, media: Media) -> Response {
        error(media, self.status, self.code, &self.message, None)
    }
}

/// Whether a POST's `Content-Type` is `application/json` (in UTF-8, the only encoding read).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let mut parts = value.split(';');
    if !parts.next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let charset = value.trim().trim_matches('"');
            charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    })
}

/// The GraphQL request of a GET (the URL's query component) or a POST (a JSON body of at most
/// `limit` bytes). Any other method never gets here (the router answers 405).
pub async fn read_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<async_graphql::Request, Malformed> {
    if method != Method::POST {
        return from_query_string(uri);
    }
    if !is_json(headers) {
        return Err(Malformed {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: UNSUPPORTED_MEDIA_TYPE,
            message: "POST /graphql takes Content-Type: application/json".to_owned(),
        });
    }
    let bytes = read_body(headers, body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Malformed::bad("the request has no body: send a JSON object with a query"));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Malformed::bad(format!("the body is not valid JSON (line {}, column {})", e.line(), e.column()))
    })?;
    match value {
        Value::Object(params) => from_params(params),
        Value::Array(_) => Err(Malformed {
            status: StatusCode::BAD_REQUEST,
            code: BATCHING_NOT_SUPPORTED,
            message: "batched operations are not accepted: send one operation per request".to_owned(),
        }),
        _ => Err(Malformed::bad("the body must be a JSON object with a query")),
    }
}

fn too_large() -> Malformed {
    Malformed {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: PAYLOAD_TOO_LARGE,
        message: "the request body is too large".to_owned(),
    }
}

/// The body, refused as soon as it is known to exceed `limit` (by its `Content-Length`, or
/// while it streams in).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, Malformed> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Malformed::bad("the request body could not be read"))?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// GET: `query`, `operationName`, and `variables` and `extensions` as JSON strings, in the
/// URL's query component (`application/x-www-form-urlencoded`).
fn from_query_string(uri: &Uri) -> Result<async_graphql::Request, Malformed> {
    let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|_| Malformed::bad("the URL's query string is not application/x-www-form-urlencoded"))?
        .0;
    let mut params = Map::new();
    for (name, value) in pairs {
        let value = match name.as_str() {
            "query" | "operationName" => Value::String(value),
            "variables" | "extensions" => serde_json::from_str(&value)
                .map_err(|_| Malformed::bad(format!("the {name} parameter is not a JSON object")))?,
            _ => continue,
        };
        if params.insert(name.clone(), value).is_some() {
            return Err(Malformed::bad(format!("the {name} parameter is given more than once")));
        }
    }
    from_params(params)
}

/// The request parameters, each of its type or absent (`null` is absent).
fn from_params(mut params: Map<String, Value>) -> Result<async_graphql::Request, Malformed> {
    let mut take = |name: &str| params.remove(name).filter(|v| !v.is_null());
    let query = match take("query") {
        None => None,
        Some(Value::String(query)) => Some(query),
        Some(_) => return Err(Malformed::bad("query must be a string")),
    };
    let operation_name = match take("operationName") {
        None => None,
        Some(Value::String(name)) => Some(name).filter(|n| !n.is_empty()),
        Some(_) => return Err(Malformed::bad("operationName must be a string")),
    };
    let object = |value: Option<Value>, name: &str| match value {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Malformed::bad(format!("{name} must be a JSON object"))),
    };
    let variables = object(take("variables"), "variables")?;
    let extensions = object(take("extensions"), "extensions")?;
    // A persisted operation may be sent by its hash alone (`extensions.persistedQuery`).
    let persisted = extensions.as_ref().is_some_and(|e| e.contains_key("persistedQuery"));
    if query.is_none() && !persisted {
        return Err(Malformed::bad("the request has no query"));
    }
    let mut request = async_graphql::Request::new(query.unwrap_or_default());
    if let Some(name) = operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = variables {
        request = request.variables(Variables::from_json(Value::Object(variables)));
    }
    for (name, value) in extensions.into_iter().flatten() {
        let value = async_graphql::Value::from_json(value).map_err(|_| Malformed::bad("extensions is not valid"))?;
        request.extensions.0.insert(name, value);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> Option<Media> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
        }
        negotiate(&headers)
    }

    #[test]
    fn accept_negotiation() {
        use Media::*;
        assert_eq!(accept(&[]), Some(Json));
        assert_eq!(accept(&["*/*"]), Some(Json));
        assert_eq!(accept(&["application/*"]), Some(Json));
        assert_eq!(accept(&["application/json"]), Some(Json));
        assert_eq!(accept(&["application/graphql-response+json"]), Some(GraphqlResponse));
        assert_eq!(accept(&["application/graphql-response+json, application/json"]), Some(GraphqlResponse));
        assert_eq!(accept(&["application/json, application/graphql-response+json"]), Some(Json));
        assert_eq!(
            accept(&["application/graphql-response+json; charset=utf-8, application/json; charset=utf-8"]),
            Some(GraphqlResponse)
        );
        assert_eq!(accept(&["application/json;q=0.9, application/graphql-response+json"]), Some(GraphqlResponse));
        assert_eq!(accept(&["application/graphql-response+json;q=0.5, */*"]), Some(Json));
        assert_eq!(accept(&["application/graphql-response+json, */*;q=0.1"]), Some(GraphqlResponse));
        assert_eq!(accept(&["text/html", "application/graphql-response+json"]), Some(GraphqlResponse));
        assert_eq!(accept(&["text/html,application/xhtml+xml,*/*;q=0.8"]), Some(Json));
        assert_eq!(accept(&["text/html"]), None);
        assert_eq!(accept(&["application/json;q=0"]), None);
        assert_eq!(accept(&["application/json; charset=latin1"]), None);
        assert_eq!(accept(&["*/*", "application/json;q=0"]), Some(GraphqlResponse));
    }

    #[test]
    fn request_parameters() {
        let ok = |v: Value| from_params(v.as_object().cloned().expect("object"));
        assert!(ok(serde_json::json!({ "query": "{ a }", "variables": null, "operationName": null })).is_ok());
        assert_eq!(ok(serde_json::json!({ "query": "{ a }", "operationName": "" })).expect("ok").operation_name, None);
        for bad in [
            serde_json::json!({ "qeury": "{ a }" }),
            serde_json::json!({ "query": 0 }),
            serde_json::json!({ "query": ["{ a }"] }),
            serde_json::json!({ "query": "{ a }", "operationName": false }),
            serde_json::json!({ "query": "{ a }", "variables": "x" }),
            serde_json::json!({ "query": "{ a }", "variables": [] }),
            serde_json::json!({ "query": "{ a }", "extensions": 0 }),
        ] {
            let refused = ok(bad.clone()).expect_err("malformed");
            assert_eq!((refused.status, refused.code), (StatusCode::BAD_REQUEST, BAD_REQUEST), "{bad}");
        }
        // The hash alone is a request (persisted operations).
        assert!(ok(serde_json::json!({ "extensions": { "persistedQuery": { "version": 1 } } })).is_ok());
    }
}
