//! HTTP: the router, security headers, health checks and the GraphQL endpoint.

mod client;
mod credentials;
mod graphql;
mod observe;
mod playground;
mod wire;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;

pub use credentials::{CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE};

pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/graphql", get(graphql::handle).post(graphql::handle))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    // Off by default in production mode (COACHGRAPH_PLAYGROUND): then `/` and everything
    // under `/playground` is a 404.
    if state.settings.playground {
        router = playground::routes(router);
    }
    // Unless it has a listener of its own (COACHGRAPH_METRICS_BIND).
    if state.settings.metrics_on_api {
        router = router.route("/metrics", get(metrics));
    }
    let cors = cors(&state.settings.cors_origins);
    let observed = state.clone();
    // Every answer is JSON, also for an unknown route or a method a route does not take (the
    // 405 keeps axum's `Allow` header). The body limit is the GraphQL handler's: it is the
    // only one that reads a body, and refuses a large one in GraphQL JSON (413).
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_| {
            // A panic never reaches the client as text (and gets the security headers below).
            tracing::error!("a request handler panicked");
            let request_id = crate::telemetry::request_id().unwrap_or_default();
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({
                    "errors": [{"message": "internal error", "extensions": {"code": "INTERNAL", "requestId": request_id}}]
                })),
            )
                .into_response()
        }))
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cache-control"),
            HeaderValue::from_static("no-store"),
        ))
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(observed, observe::observe))
}

/// `/metrics` alone, for its own listener (COACHGRAPH_METRICS_BIND).
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

/// Cross-origin access for the configured origins only, with credentials (cookies), so never
/// a wildcard. With none configured, no CORS headers at all: same origin only.
fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    if allowed.is_empty() {
        return CorsLayer::new();
    }
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_credentials(true)
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static(credentials::CSRF_HEADER),
            observe::X_REQUEST_ID.clone(),
            HeaderName::from_static("x-ai-model"),
            HeaderName::from_static("x-ai-purpose"),
        ])
        .expose_headers([observe::X_REQUEST_ID.clone(), header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let pool = state.db.pool_stats();
    let pool =
        crate::telemetry::metrics::Pool { in_use: pool.in_use, idle: pool.idle, waiting: pool.waiting, max: pool.max };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        state.metrics.render(pool),
    )
}

async fn not_found() -> Response {
    wire::error(wire::Media::Json, StatusCode::NOT_FOUND, wire::NOT_FOUND, "no such route", None)
}

async fn method_not_allowed() -> Response {
    wire::error(
        wire::Media::Json,
        StatusCode::METHOD_NOT_ALLOWED,
        wire::METHOD_NOT_ALLOWED,
        "this route does not take this method (see the Allow header)",
        None,
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
