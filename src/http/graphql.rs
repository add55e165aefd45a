//! `/graphql`: the response media type and the request as GraphQL over HTTP has them
//! ([`super::wire`]) -> the perimeter (persisted operations, document limits, method) ->
//! credentials -> `Ctx` -> the role's schema (within the request timeout) -> commit -> a
//! response of bounded size, in the negotiated media type.

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::Pos;
use async_graphql::parser::types::OperationType;
use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;

use super::credentials;
use super::wire::{self, Media};
use crate::app::AppState;
use crate::ctx::{CookieEffect, RequestMeta};
use crate::domain::audit::AuditRecord;
use crate::domain::rate_limit::{self, Admission};
use crate::error::AppError;
use crate::graphql::perimeter::{self, Refusal};
use crate::graphql::persisted::Resolution;
use crate::identity::{self, Credentials};
use crate::kinds::{AuditOutcome, Role};

/// `REQUEST_TIMEOUT`: the request ran longer than the request timeout; nothing of it was kept.
pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
/// `RESPONSE_TOO_LARGE`: the answer is larger than the response cap; ask for less.
pub const RESPONSE_TOO_LARGE: &str = "RESPONSE_TOO_LARGE";

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(200).collect())
}

/// What a request tells about its caller, besides its credentials: the source address,
/// the user agent and the AI's declared model and purpose.
pub(super) fn request_meta(
    state: &AppState,
    headers: &HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    writes: bool,
) -> RequestMeta {
    RequestMeta {
        ip: super::client::source(
            connect.map(|Extension(ConnectInfo(addr))| addr),
            headers,
            &state.settings.trusted_proxies,
        ),
        user_agent: header_string(headers, "user-agent"),
        ai_model: header_string(headers, "x-ai-model"),
        ai_purpose: header_string(headers, "x-ai-purpose"),
        writes,
    }
}

/// The HTTP status of an error met while setting the request up (before any field ran).
pub(super) fn status_of(error: &AppError, media: Media) -> StatusCode {
    match error {
        AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
        AppError::CsrfRejected => StatusCode::FORBIDDEN,
        AppError::RateLimited | AppError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => media.request_error_status(),
    }
}

/// An error response shaped like a GraphQL response, for failures before execution.
fn refusal(media: Media, status: StatusCode, error: AppError) -> Response {
    wire::error(media, status, error.code(), &error.public_message(), None)
}

/// A request error: the operation was refused before it ran (the perimeter, persisted
/// operations): HTTP 400 in application/graphql-response+json, 200 in application/json.
fn request_error(media: Media, code: &str, message: &str, at: Option<Pos>) -> Box<Response> {
    Box::new(wire::error(media, media.request_error_status(), code, message, at))
}

/// Persisted operations, then the document limits, then the method: everything decided
/// from the request alone, before any credential is looked at or any SQL runs. The document
/// is parsed once, here (or taken from the documents parsed before), and handed to the
/// executor parsed.
fn admit(
    state: &AppState,
    method: &Method,
    media: Media,
    request: &mut async_graphql::Request,
) -> Result<bool, Box<Response>> {
    let register = match state.persisted.resolve(&request.query, request.extensions.0.get("persistedQuery")) {
        Ok(Resolution::AsSent) => None,
        Ok(Resolution::Stored(text)) => {
            request.query = text.to_string();
            None
        }
        Ok(Resolution::Register(hash)) => Some(hash),
        Err(refused) => return Err(request_error(media, refused.code(), refused.message(), None)),
    };
    let limits = &state.settings.limits;
    let refuse = |r: Refusal| request_error(media, r.code(), &r.message(), None);
    let tokens = perimeter::check_text(&request.query, limits).map_err(refuse)?;
    let held = state.documents.get(&request.query);
    let parsed_now = held.is_none();
    let doc = match held {
        Some(doc) => doc,
        None => async_graphql::parser::parse_query(&request.query).map_err(|e| {
            let (message, at) = parse_message(e);
            let refused = Refusal::ParseFailed(message);
            request_error(media, refused.code(), &refused.message(), at)
        })?,
    };
    perimeter::check_document(&doc, &request.variables, state.schemas.index(), limits).map_err(refuse)?;
    if parsed_now {
        state.documents.keep(&request.query, &doc, tokens);
    }
    // Only POST runs mutations: GET and HEAD are "safe" methods that browsers, proxies and
    // link checkers send freely (a HEAD once logged a session out).
    let mutation = doc.operations.iter().any(|(_, op)| op.node.ty != OperationType::Query);
    if mutation && method != Method::POST {
        let mut response = wire::error(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            wire::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
            None,
        );
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Err(Box::new(response));
    }
    if let Some(hash) = register {
        state.persisted.register(hash, &request.query);
    }
    // The operation's name as the document declares it (never the client's `operationName`
    // text as such: it goes into the access log and a metrics label).
    let operation_name = match &doc.operations {
        async_graphql::parser::types::DocumentOperations::Single(_) => None,
        async_graphql::parser::types::DocumentOperations::Multiple(ops) => match request.operation_name.as_deref() {
            Some(wanted) => ops.keys().find(|name| name.as_str() == wanted).map(|name| name.to_string()),
            None if ops.len() == 1 => ops.keys().next().map(|name| name.to_string()),
            None => None,
        },
    };
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
    body: Body,
) -> Response {
    // The media type first: every answer below, refusals included, is written in it.
    let Some(media) = wire::negotiate(&headers) else { return wire::not_acceptable() };
    if let Err(e) = credentials::check_browser_post(&method, &uri, &headers, &state.settings.cors_origins) {
        let status = match e {
            AppError::CsrfRejected => StatusCode::FORBIDDEN,
            _ => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        };
        return refusal(media, status, e);
    }
    // The deadline covers reading the body too: a client trickling it in holds nothing for long.
    let deadline = tokio::time::Instant::now() + state.settings.request_timeout;
    let read = wire::read_request(&method, &uri, &headers, body, state.settings.max_body_bytes);
    let mut request = match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(request)) => request,
        Ok(Err(malformed)) => return malformed.into_response(media),
        Err(_) => return timed_out(media),
    };
    let writes = match admit(&state, &method, media, &mut request) {
        Ok(writes) => writes,
        Err(response) => return *response,
    };
    let credentials = credentials::extract(&method, &headers, &jar);
    let used_cookie = matches!(credentials, Credentials::Cookie { .. });
    let meta = request_meta(&state, &headers, connect, writes);

    let resolved =
        match tokio::time::timeout_at(deadline, identity::resolve_ctx(state.server(), credentials, meta)).await {
            Ok(resolved) => resolved,
            // The transaction being opened is dropped with the future, and rolled back.
            Err(_) => return timed_out(media),
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
            let status = status_of(&e, media);
            if let AppError::Internal(detail) = &e {
                tracing::error!(%detail, "request context failed");
                return refusal(media, status, AppError::Internal(String::new()));
            }
            let retry_after = e.retry_after_secs();
            let mut response = refusal(media, status, e);
            if let Some(secs) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
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
            let mut response = refusal(media, StatusCode::TOO_MANY_REQUESTS, AppError::RateLimited);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return response;
        }
        Err(e @ AppError::Busy { .. }) => {
            let retry_after = e.retry_after_secs().unwrap_or(1);
            if let Err(e) = crate::domain::request::abandon(&ctx).await {
                tracing::error!(error = ?e, "could not record a busy refusal");
            }
            let mut response = refusal(media, StatusCode::SERVICE_UNAVAILABLE, e);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return response;
        }
        Err(e) => return failed(&ctx, e, media).await,
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
        let loaders = Arc::new(crate::domain::loaders::Loaders::new(&ctx, writes));
        let request = request.data(ctx.clone()).data(loaders).data(state.keys.clone()).data(state.credentials.clone());
        Ok(crate::graphql::schema::execute(schema, request).await)
    };
    let response = match tokio::time::timeout_at(deadline, run).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => return failed(&ctx, e, media).await,
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
            return timed_out(media);
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
        // Nothing of it is served: a request error, like a refused document.
        return refusal(
            media,
            media.request_error_status(),
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
        return refusal(media, StatusCode::INTERNAL_SERVER_ERROR, AppError::Internal(String::new()));
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
    let mut http = graphql_response(response, state.settings.max_response_bytes, media);
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
/// excerpt of the document it draws, and where it is.
fn parse_message(e: async_graphql::parser::Error) -> (String, Option<Pos>) {
    let error = async_graphql::ServerError::from(e);
    let why = error.message.lines().rev().find_map(|l| l.trim().strip_prefix("= ")).unwrap_or("invalid syntax");
    match error.locations.first() {
        Some(at) => (format!("the query is not valid GraphQL: {why} at {}:{}", at.line, at.column), Some(*at)),
        None => (format!("the query is not valid GraphQL: {why}"), None),
    }
}

fn timed_out(media: Media) -> Response {
    wire::error(
        media,
        StatusCode::SERVICE_UNAVAILABLE,
        REQUEST_TIMEOUT,
        "the request took too long and was cancelled; nothing of it was kept",
        None,
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

/// Whether the executor refused the request before running any field: validation (a field
/// outside the role's schema included), variable values, the operation to run. Then there is
/// no data and no error has a path (every field error has one: see
/// `crate::graphql::schema::with_error_paths`).
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// The executor's answer as HTTP, or, when its JSON would exceed `max_bytes`, a
/// RESPONSE_TOO_LARGE error instead. The request's transaction is not affected: it has
/// finished by now. A request error has no `data` entry, each error the code
/// GRAPHQL_VALIDATION_FAILED (unless it has one), and the status of a request error.
fn graphql_response(mut response: async_graphql::Response, max_bytes: usize, media: Media) -> Response {
    let mut body = Capped { bytes: Vec::new(), limit: max_bytes };
    let (status, written) = if is_request_error(&response) {
        for error in &mut response.errors {
            let extensions = error.extensions.get_or_insert_with(Default::default);
            if extensions.get("code").is_none() {
                extensions.set("code", wire::GRAPHQL_VALIDATION_FAILED);
            }
        }
        let errors = serde_json::json!({ "errors": response.errors });
        (media.request_error_status(), serde_json::to_writer(&mut body, &errors))
    } else {
        (StatusCode::OK, serde_json::to_writer(&mut body, &response))
    };
    for error in &response.errors {
        match error.extensions.as_ref().and_then(|ext| ext.get("code")) {
            Some(async_graphql::Value::String(code)) => crate::telemetry::note_error_code(code),
            _ => crate::telemetry::note_error_code("UNCODED"),
        }
    }
    if written.is_err() {
        crate::telemetry::note_error_code(RESPONSE_TOO_LARGE);
        tracing::warn!(max_bytes, "a GraphQL response exceeded the response cap");
        let message = format!("the response is larger than {max_bytes} bytes; ask for fewer fields or smaller pages");
        let body = serde_json::json!({
            "data": null,
            "errors": [{ "message": message, "extensions": { "code": RESPONSE_TOO_LARGE } }]
        });
        let mut http = Response::new(Body::from(body.to_string()));
        http.headers_mut().insert(header::CONTENT_TYPE, media.content_type());
        return http;
    }
    let mut http = Response::new(Body::from(body.bytes));
    *http.status_mut() = status;
    http.headers_mut().insert(header::CONTENT_TYPE, media.content_type());
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
async fn failed(ctx: &crate::ctx::Ctx, e: AppError, media: Media) -> Response {
    tracing::error!(error = ?e, "request setup failed");
    if let Err(e) = crate::domain::request::abandon(ctx).await {
        tracing::error!(error = ?e, "could not record a failed request's audit events");
    }
    refusal(media, StatusCode::INTERNAL_SERVER_ERROR, AppError::Internal(String::new()))
}

fn append_cookies(response: &mut Response, effect: &CookieEffect, state: &AppState) {
    for value in credentials::set_cookie_headers(effect, state.clock.now()) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}
