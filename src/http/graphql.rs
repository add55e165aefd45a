//! `/graphql`: the perimeter (persisted operations, document limits, method) -> credentials
//! -> `Ctx` -> the role's schema (within the request timeout) -> commit -> a response of
//! bounded size.

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, ParseRequestError};
use async_graphql_axum::GraphQLBatchRequest;
use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::credentials;
use crate::app::AppState;
use crate::ctx::{CookieEffect, RequestMeta};
use crate::domain::audit::AuditRecord;
use crate::domain::rate_limit::{self, Admission};
use crate::error::AppError;
use crate::graphql::perimeter::{self, Refusal};
use crate::graphql::persisted::Resolution;
use crate::identity::{self, Credentials};
use crate::kinds::{AuditOutcome, Role};

/// `BATCHING_NOT_SUPPORTED`: the body is a JSON array of operations; send one per request.
pub const BATCHING_NOT_SUPPORTED: &str = "BATCHING_NOT_SUPPORTED";
/// `METHOD_NOT_ALLOWED`: a mutation sent with GET or HEAD (only POST runs mutations).
pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
/// `REQUEST_TIMEOUT`: the request ran longer than the request timeout; nothing of it was kept.
pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
/// `RESPONSE_TOO_LARGE`: the answer is larger than the response cap; ask for less.
pub const RESPONSE_TOO_LARGE: &str = "RESPONSE_TOO_LARGE";
/// `BAD_REQUEST`: the body is not a GraphQL request (not JSON, wrong shape).
pub const BAD_REQUEST: &str = "BAD_REQUEST";
/// `PAYLOAD_TOO_LARGE`: the body is larger than the server accepts.
pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(200).collect())
}

/// An error response shaped like a GraphQL response, for failures before execution.
fn refusal(status: StatusCode, error: AppError) -> Response {
    coded(status, error.code(), &error.public_message())
}

/// A GraphQL-shaped error response with a code and a plain message.
pub(super) fn coded(status: StatusCode, code: &str, message: &str) -> Response {
    crate::telemetry::note_error_code(code);
    let mut extensions = serde_json::json!({ "code": code });
    // An operator finds an internal error's log lines by its request id.
    if code == "INTERNAL"
        && let Some(id) = crate::telemetry::request_id()
    {
        extensions["requestId"] = serde_json::Value::String(id);
    }
    let body = serde_json::json!({
        "data": null,
        "errors": [{ "message": message, "extensions": extensions }]
    });
    (status, axum::Json(body)).into_response()
}

fn perimeter_refusal(refusal: &Refusal) -> Box<Response> {
    Box::new(coded(StatusCode::BAD_REQUEST, refusal.code(), &refusal.message()))
}

/// A body that is not a GraphQL request is answered in the same shape as any refusal.
#[derive(Debug)]
pub struct BodyRejection(ParseRequestError);

impl From<ParseRequestError> for BodyRejection {
    fn from(e: ParseRequestError) -> Self {
        BodyRejection(e)
    }
}

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        match self.0 {
            ParseRequestError::PayloadTooLarge => {
                coded(StatusCode::PAYLOAD_TOO_LARGE, PAYLOAD_TOO_LARGE, "the request body is too large")
            }
            ParseRequestError::Io(e) if e.to_string().contains("length limit exceeded") => {
                coded(StatusCode::PAYLOAD_TOO_LARGE, PAYLOAD_TOO_LARGE, "the request body is too large")
            }
            _ => coded(StatusCode::BAD_REQUEST, BAD_REQUEST, "the request is not a GraphQL request"),
        }
    }
}

/// Persisted operations, then the document limits, then the method: everything decided
/// from the request alone, before any credential is looked at or any SQL runs. The document
/// is parsed once, here, and handed to the executor parsed.
fn admit(state: &AppState, method: &Method, request: &mut async_graphql::Request) -> Result<bool, Box<Response>> {
    let register = match state.persisted.resolve(&request.query, request.extensions.0.get("persistedQuery")) {
        Ok(Resolution::AsSent) => None,
        Ok(Resolution::Stored(text)) => {
            request.query = text.to_string();
            None
        }
        Ok(Resolution::Register(hash)) => Some(hash),
        Err(refused) => return Err(Box::new(coded(StatusCode::BAD_REQUEST, refused.code(), refused.message()))),
    };
    let limits = &state.settings.limits;
    perimeter::check_text(&request.query, limits).map_err(|r| perimeter_refusal(&r))?;
    let doc = async_graphql::parser::parse_query(&request.query)
        .map_err(|e| perimeter_refusal(&Refusal::ParseFailed(parse_message(e))))?;
    perimeter::check_document(&doc, &request.variables, state.schemas.index(), limits)
        .map_err(|r| perimeter_refusal(&r))?;
    // Only POST runs mutations: GET and HEAD are "safe" methods that browsers, proxies and
    // link checkers send freely (a HEAD once logged a session out).
    let mutation = doc.operations.iter().any(|(_, op)| op.node.ty != OperationType::Query);
    if mutation && method != Method::POST {
        return Err(Box::new(coded(
            StatusCode::METHOD_NOT_ALLOWED,
            METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
        )));
    }
    if let Some(hash) = register {
        state.persisted.register(hash, &request.query);
    }
    let operation_name = request.operation_name.clone().or_else(|| match &doc.operations {
        async_graphql::parser::types::DocumentOperations::Single(_) => None,
        async_graphql::parser::types::DocumentOperations::Multiple(ops) if ops.len() == 1 => {
            ops.keys().next().map(|name| name.to_string())
        }
        _ => None,
    });
    crate::telemetry::note_operation(operation_name.as_deref(), if mutation { "mutation" } else { "query" });
    request.set_parsed_query(doc);
    Ok(mutation)
}

pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    jar: CookieJar,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: GraphQLBatchRequest<BodyRejection>,
) -> Response {
    if let Err(e) = credentials::check_browser_post(&method, &uri, &headers, &state.settings.cors_origins) {
        let status = match e {
            AppError::CsrfRejected => StatusCode::FORBIDDEN,
            _ => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        };
        return refusal(status, e);
    }
    let mut request = match request.into_inner() {
        BatchRequest::Single(request) => request,
        BatchRequest::Batch(_) => {
            return coded(
                StatusCode::BAD_REQUEST,
                BATCHING_NOT_SUPPORTED,
                "batched operations are not accepted: send one operation per request",
            );
        }
    };
    let writes = match admit(&state, &method, &mut request) {
        Ok(writes) => writes,
        Err(response) => return *response,
    };
    let deadline = tokio::time::Instant::now() + state.settings.request_timeout;
    let credentials = credentials::extract(&method, &headers, &jar);
    let used_cookie = matches!(credentials, Credentials::Cookie { .. });
    let meta = RequestMeta {
        ip: super::client::source(
            connect.map(|Extension(ConnectInfo(addr))| addr),
            &headers,
            &state.settings.trusted_proxies,
        ),
        user_agent: header_string(&headers, "user-agent"),
        ai_model: header_string(&headers, "x-ai-model"),
        ai_purpose: header_string(&headers, "x-ai-purpose"),
        writes,
    };

    let resolved =
        match tokio::time::timeout_at(deadline, identity::resolve_ctx(state.server(), credentials, meta)).await {
            Ok(resolved) => resolved,
            // The transaction being opened is dropped with the future, and rolled back.
            Err(_) => return timed_out(),
        };
    let ctx = match resolved {
        Ok(ctx) => {
            let p = ctx.principal();
            crate::telemetry::note_principal(
                p.map(|p| p.role.as_str()),
                p.and_then(|p| p.tenant_id).map(|t| t.to_string()),
                p.map(|p| p.user_id.to_string()),
            );
            Arc::new(ctx)
        }
        Err(e) => {
            let status = match e {
                AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
                AppError::CsrfRejected => StatusCode::FORBIDDEN,
                AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            if let AppError::Internal(detail) = &e {
                tracing::error!(%detail, "request context failed");
                return refusal(status, AppError::Internal(String::new()));
            }
            let mut response = refusal(status, e);
            if used_cookie && status == StatusCode::UNAUTHORIZED {
                append_cookies(&mut response, &CookieEffect::Clear, &state);
            }
            return response;
        }
    };

    // POLICY.md section 5: every AI_AGENT request takes a token of its tenant's bucket first;
    // without one nothing runs (HTTP 429, code RATE_LIMITED, Retry-After).
    match rate_limit::admit_ai(&ctx, &state.ai_limiter).await {
        Ok(Admission::Admitted) => {}
        Ok(Admission::Refused { retry_after_secs, .. }) => {
            if let Err(e) = crate::domain::request::finish(&ctx).await {
                tracing::error!(error = %e, "could not record a rate-limit refusal");
            }
            let mut response = refusal(StatusCode::TOO_MANY_REQUESTS, AppError::RateLimited);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return response;
        }
        Err(e) => return failed(&ctx, e).await,
    }

    // POLICY.md section 6: a program admin holding an active break-glass grant (decided now,
    // for this request only, by its `Reach`) is served the break-glass schema; every other
    // request, its role's.
    let run = async {
        let schema = match ctx.role() {
            Some(Role::ProgramAdmin) => match crate::domain::reach::of(&ctx).await {
                Ok(reach) if !reach.break_glass.is_empty() => state.schemas.break_glass(),
                Ok(_) => state.schemas.for_role(ctx.role()),
                Err(e) => return Err(e),
            },
            role => state.schemas.for_role(role),
        };
        let loaders = Arc::new(crate::domain::loaders::Loaders::new(&ctx));
        let request = request.data(ctx.clone()).data(loaders).data(state.keys.clone()).data(state.credentials.clone());
        Ok(schema.execute(request).await)
    };
    let response = match tokio::time::timeout_at(deadline, run).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => return failed(&ctx, e).await,
        Err(_) => {
            // Whatever the request did is undone: its transaction is rolled back. Not waited
            // for: a statement still in flight may first have to end (PostgreSQL's
            // statement_timeout bounds that), and the client has waited long enough.
            tracing::warn!("a GraphQL request exceeded the request timeout");
            let ctx = ctx.clone();
            tokio::spawn(async move {
                // Rolled back; its audit events (denials included) are still written.
                if let Err(e) = crate::domain::request::abandon(&ctx).await {
                    tracing::error!(error = ?e, "could not record a timed-out request");
                }
            });
            return timed_out();
        }
    };
    // POLICY.md section 5: the AI's list cap holds per request, across fields and aliases.
    // A request that read more is refused whole: nothing it read is served or logged.
    let cap = state.settings.ai_rows_per_request;
    if ctx.role() == Some(Role::AiAgent) && ctx.ai_rows_read() > cap {
        let read = ctx.ai_rows_read();
        ctx.audit(
            AuditRecord::by(&ctx, "READ", "api", AuditOutcome::Denied)
                .reason(format!("AI request read {read} rows; at most {cap} per request")),
        );
        if let Err(e) = crate::domain::request::abandon(&ctx).await {
            tracing::error!(error = ?e, "could not record a refused AI request");
        }
        return refusal(
            StatusCode::BAD_REQUEST,
            AppError::bad_input(format!(
                "an AI_AGENT request reads at most {cap} rows of coaching data in all \
                 (fields and aliases together); ask for fewer (first) and page"
            )),
        );
    }

    // A query naming a field outside the role's schema was rejected before any resolver
    // ran; it is a denial all the same, and audited as one.
    for error in &response.errors {
        if let Some((field, resource)) = state.schemas.hidden_field(&error.message) {
            ctx.audit(
                AuditRecord::by(&ctx, "READ", resource, AuditOutcome::Denied)
                    .reason(format!("field {field} is outside the role's schema"))
                    .code("FIELD_NOT_IN_SCHEMA"),
            );
        }
    }
    if let Err(e) = crate::domain::request::finish(&ctx).await {
        tracing::error!(error = %e, "could not commit the request");
        return refusal(StatusCode::INTERNAL_SERVER_ERROR, AppError::Internal(String::new()));
    }
    // Throttled or busy: the HTTP status and Retry-After say so too.
    let pushback = response.errors.iter().find_map(|e| {
        let ext = e.extensions.as_ref()?;
        let status = match ext.get("code") {
            Some(async_graphql::Value::String(c)) if c == "RATE_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
            Some(async_graphql::Value::String(c)) if c == "SERVER_BUSY" => StatusCode::SERVICE_UNAVAILABLE,
            _ => return None,
        };
        let retry = match ext.get("retryAfter") {
            Some(async_graphql::Value::Number(n)) => n.as_u64().unwrap_or(1),
            _ => 1,
        };
        Some((status, retry))
    });
    let mut http = graphql_response(&response, state.settings.max_response_bytes);
    if let Some((status, retry_after)) = pushback {
        *http.status_mut() = status;
        http.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    }
    if let Some(effect) = ctx.cookie_effect() {
        append_cookies(&mut http, &effect, &state);
    }
    http
}

/// The parser's verdict in one plain line ("expected selection_set at 1:3"), without the
/// excerpt of the document it draws.
fn parse_message(e: async_graphql::parser::Error) -> String {
    let error = async_graphql::ServerError::from(e);
    let why = error.message.lines().rev().find_map(|l| l.trim().strip_prefix("= ")).unwrap_or("invalid syntax");
    match error.locations.first() {
        Some(at) => format!("the query is not valid GraphQL: {why} at {}:{}", at.line, at.column),
        None => format!("the query is not valid GraphQL: {why}"),
    }
}

fn timed_out() -> Response {
    coded(
        StatusCode::SERVICE_UNAVAILABLE,
        REQUEST_TIMEOUT,
        "the request took too long and was cancelled; nothing of it was kept",
    )
}

/// A `Vec` that refuses to grow beyond `limit` bytes: serialising stops at the limit.
struct Capped {
    bytes: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            return Err(std::io::Error::other("response cap"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The executor's answer as HTTP (as `async_graphql_axum::GraphQLResponse` would write it),
/// or, when its JSON would exceed `max_bytes`, a RESPONSE_TOO_LARGE error instead. The
/// request's transaction is not affected: it has finished by now.
fn graphql_response(response: &async_graphql::Response, max_bytes: usize) -> Response {
    for error in &response.errors {
        match error.extensions.as_ref().and_then(|ext| ext.get("code")) {
            Some(async_graphql::Value::String(code)) => crate::telemetry::note_error_code(code),
            _ => crate::telemetry::note_error_code("UNCODED"),
        }
    }
    let mut body = Capped { bytes: Vec::new(), limit: max_bytes };
    if serde_json::to_writer(&mut body, response).is_err() {
        tracing::warn!(max_bytes, "a GraphQL response exceeded the response cap");
        return coded(
            StatusCode::OK,
            RESPONSE_TOO_LARGE,
            &format!("the response is larger than {max_bytes} bytes; ask for fewer fields or smaller pages"),
        );
    }
    let mut http = Response::new(axum::body::Body::from(body.bytes));
    http.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/graphql-response+json"));
    if response.is_ok()
        && let Some(value) = response.cache_control.value()
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        http.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    http.headers_mut().extend(response.http_headers.clone());
    http
}

/// A failure while setting the request up: nothing is kept, the client learns nothing.
async fn failed(ctx: &crate::ctx::Ctx, e: AppError) -> Response {
    tracing::error!(error = ?e, "request setup failed");
    if let Err(e) = crate::domain::request::abandon(ctx).await {
        tracing::error!(error = ?e, "could not record a failed request's audit events");
    }
    refusal(StatusCode::INTERNAL_SERVER_ERROR, AppError::Internal(String::new()))
}

fn append_cookies(response: &mut Response, effect: &CookieEffect, state: &AppState) {
    for value in credentials::set_cookie_headers(effect, state.clock.now()) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}
