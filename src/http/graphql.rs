//! `/graphql`: credentials -> `Ctx` -> the role's schema -> commit -> response.

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
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
use crate::identity::{self, Credentials};
use crate::kinds::{AuditOutcome, Role};

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(200).collect())
}

/// An error response shaped like a GraphQL response, for failures before execution.
fn refusal(status: StatusCode, error: AppError) -> Response {
    let body = serde_json::json!({
        "data": null,
        "errors": [{ "message": error.public_message(), "extensions": { "code": error.code() } }]
    });
    (status, axum::Json(body)).into_response()
}

/// GET may only carry queries: a mutation over GET is refused before anything runs.
fn is_mutation(request: &async_graphql::Request) -> bool {
    match async_graphql::parser::parse_query(&request.query) {
        Ok(doc) => doc.operations.iter().any(|(_, op)| op.node.ty != OperationType::Query),
        Err(_) => false,
    }
}

pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    jar: CookieJar,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: GraphQLRequest,
) -> Response {
    let request = request.into_inner();
    if method == Method::GET && is_mutation(&request) {
        return refusal(StatusCode::METHOD_NOT_ALLOWED, AppError::bad_input("mutations must be sent with POST"));
    }
    if let Err(e) = credentials::check_browser_post(&method, &headers) {
        let status = match e {
            AppError::CsrfRejected => StatusCode::FORBIDDEN,
            _ => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        };
        return refusal(status, e);
    }
    let credentials = credentials::extract(&method, &headers, &jar);
    let used_cookie = matches!(credentials, Credentials::Cookie { .. });
    let meta = RequestMeta {
        ip: connect.map(|Extension(ConnectInfo(addr))| addr.ip().to_string()),
        user_agent: header_string(&headers, "user-agent"),
        ai_model: header_string(&headers, "x-ai-model"),
        ai_purpose: header_string(&headers, "x-ai-purpose"),
        writes: is_mutation(&request),
    };

    let ctx = match identity::resolve_ctx(state.server(), credentials, meta).await {
        Ok(ctx) => Arc::new(ctx),
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
    let schema = match ctx.role() {
        Some(Role::ProgramAdmin) => match crate::domain::reach::of(&ctx).await {
            Ok(reach) if !reach.break_glass.is_empty() => state.schemas.break_glass(),
            Ok(_) => state.schemas.for_role(ctx.role()),
            Err(e) => return failed(&ctx, e).await,
        },
        role => state.schemas.for_role(role),
    };
    let loaders = Arc::new(crate::domain::loaders::Loaders::new(&ctx));
    let response = schema
        .execute(request.data(ctx.clone()).data(loaders).data(state.keys.clone()).data(state.credentials.clone()))
        .await;

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
                    .reason(format!("field {field} is outside the role's schema")),
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
    let mut http = GraphQLResponse::from(response).into_response();
    if let Some((status, retry_after)) = pushback {
        *http.status_mut() = status;
        http.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    }
    if let Some(effect) = ctx.cookie_effect() {
        append_cookies(&mut http, &effect, &state);
    }
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
