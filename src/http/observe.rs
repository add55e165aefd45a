//! The outermost middleware: a request id, a tracing span, one access log line and the
//! metrics of every request.
//!
//! Hand-written rather than tower-http's `TraceLayer` + request-id layers: those would set
//! the header, but the span needs fields that only the GraphQL handler learns (tenant, role,
//! principal), the access line needs the statement count, and an incoming id must be
//! checked before it reaches a log line. One function does all four in one place.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::app::AppState;
use crate::telemetry::{self, RequestScope};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The incoming `x-request-id` when well-formed (a load balancer's, say), else a new one.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| telemetry::well_formed_request_id(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().clone();
    // The path only: a GET query string is a GraphQL document, which may carry personal data.
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        path = %path,
        tenant = tracing::field::Empty,
        role = tracing::field::Empty,
        principal = tracing::field::Empty,
    );
    let scope = RequestScope::new(id.clone());
    let mut response = telemetry::within(scope.clone(), next.run(request)).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    let notes = scope.notes();
    let status = response.status().as_u16();
    let statements = scope.statements();
    state.metrics.observe(&path, status, elapsed, statements, &notes);
    if path != "/healthz" && path != "/readyz" && path != "/metrics" {
        span.in_scope(|| {
            tracing::info!(
                target: "access",
                method = %method,
                operation = notes.operation.as_deref().unwrap_or("-"),
                operation_type = notes.operation_type.unwrap_or("-"),
                status,
                duration_ms = (elapsed.as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
                statements,
                role = notes.role.unwrap_or("-"),
                tenant = notes.tenant.as_deref().unwrap_or("-"),
                errors = notes.error_codes.len(),
                "access"
            );
        });
    }
    response
}
