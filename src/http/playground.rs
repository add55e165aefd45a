//! The development playground (`playground/`, built into `playground/dist/`, which is
//! checked in so that `cargo run` needs no Node): its page and assets, embedded in the
//! binary, the demo accounts, and the caller's own role's schema with each field's tag.
//! Routed only when `settings.playground` is on (development by default).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::LazyLock;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use axum_extra::extract::cookie::CookieJar;

use super::credentials;
use super::wire::{self, Media};
use crate::app::AppState;
use crate::error::AppError;
use crate::graphql::visibility::{RoleSchemaView, role_views};
use crate::identity::{self, Credentials};
use crate::kinds::Role;

const INDEX: &str = include_str!("../../playground/dist/index.html");
const SCRIPT: &[u8] = include_bytes!("../../playground/dist/assets/playground.js");
const STYLE: &[u8] = include_bytes!("../../playground/dist/assets/playground.css");
const LICENSES: &[u8] = include_bytes!("../../playground/dist/THIRD_PARTY_LICENSES.txt");
/// The page's placeholder for the per-response CSP nonce: CodeMirror writes its styles
/// into `<style>` elements, which carry it (`EditorView.cspNonce`).
const NONCE_SLOT: &str = "__CSP_NONCE__";

pub fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/", get(page))
        .route("/playground", get(page))
        .route("/playground/", get(page))
        .route("/playground/assets/playground.js", get(|| asset(SCRIPT, "text/javascript; charset=utf-8")))
        .route("/playground/assets/playground.css", get(|| asset(STYLE, "text/css; charset=utf-8")))
        .route("/playground/THIRD_PARTY_LICENSES.txt", get(|| asset(LICENSES, "text/plain; charset=utf-8")))
        .route("/playground/accounts.json", get(accounts))
        .route("/playground/schema.json", get(role_schema))
}

/// Scripts, styles, requests and images from this origin only (styles also by nonce, images
/// also as `data:` URLs: CodeMirror's lint marks); nothing inline, no other host.
async fn page() -> Response {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    let mut response = INDEX.replacen(NONCE_SLOT, &nonce, 1).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

async fn asset(bytes: &'static [u8], content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        bytes,
    )
        .into_response()
}

/// The demo accounts by tenant and role. Their password is public demo data (README);
/// served only where the playground is, which production mode turns off.
async fn accounts() -> Response {
    let mut tenants: Vec<serde_json::Value> = Vec::new();
    let accounts = crate::seed::demo_accounts();
    let mut slugs: Vec<Option<&str>> = Vec::new();
    for (tenant, _, _) in &accounts {
        if !slugs.contains(tenant) {
            slugs.push(*tenant);
        }
    }
    for slug in slugs {
        let list: Vec<_> = accounts
            .iter()
            .filter(|(t, _, _)| *t == slug)
            .map(|(_, email, role)| serde_json::json!({ "email": email, "role": role.as_str() }))
            .collect();
        tenants.push(serde_json::json!({
            "slug": slug,
            "name": slug.unwrap_or("platform (no tenant)"),
            "accounts": list,
        }));
    }
    Json(serde_json::json!({
        "password": crate::seed::DEMO_PASSWORD,
        "defaultIdleMinutes": identity::session::DEFAULT_INACTIVITY_MINUTES,
        "tenants": tenants,
    }))
    .into_response()
}

static VIEWS: LazyLock<Result<HashMap<Role, RoleSchemaView>, String>> =
    LazyLock::new(|| role_views(&crate::graphql::catalog()).map_err(|e| e.0));

/// The caller's own role's SDL and, for each of its fields, the tag and the roles that see
/// it: introspection does not carry directive applications. Signed-in callers only (bearer
/// or cookie, the way `/graphql` resolves them), and only their own role's.
async fn role_schema(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let refuse =
        |status: StatusCode, e: AppError| wire::error(Media::Json, status, e.code(), &e.public_message(), None);
    let credentials = credentials::extract(&Method::GET, &headers, &jar);
    if matches!(credentials, Credentials::None) {
        return refuse(StatusCode::UNAUTHORIZED, AppError::Unauthenticated);
    }
    let meta = super::graphql::request_meta(&state, &headers, connect, false);
    let ctx = match identity::resolve_ctx(state.server(), credentials, meta).await {
        Ok(ctx) => ctx,
        Err(AppError::Internal(detail)) => {
            tracing::error!(%detail, "playground schema: request context failed");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, AppError::Internal(String::new()));
        }
        // Not GraphQL: a refusal is a 4xx, as `/graphql` answers it in its current media type.
        Err(e) => return refuse(super::graphql::status_of(&e, Media::GraphqlResponse), e),
    };
    let role = ctx.role();
    if let Err(e) = crate::domain::request::finish(&ctx).await {
        tracing::error!(error = %e, "playground schema: could not end the request");
    }
    let Some(role) = role else { return refuse(StatusCode::UNAUTHORIZED, AppError::Unauthenticated) };
    match VIEWS.as_ref() {
        Ok(views) => match views.get(&role) {
            Some(view) => Json(view).into_response(),
            None => refuse(StatusCode::INTERNAL_SERVER_ERROR, AppError::Internal(String::new())),
        },
        Err(e) => {
            tracing::error!(error = %e, "playground schema: the role views could not be built");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, AppError::Internal(String::new()))
        }
    }
}
