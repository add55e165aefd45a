//! Where credentials come from: `Authorization: Bearer` (mobile, reporting) or the session
//! cookie (browser), in which case every POST must carry the CSRF token in a header.

use axum::http::{HeaderMap, Method, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{DateTime, Utc};

use crate::ctx::CookieEffect;
use crate::error::AppError;
use crate::identity::{Credentials, CsrfCheck};

/// `__Host-`: Secure, Path=/, no Domain, so no sibling host can set or read it.
pub const SESSION_COOKIE: &str = "__Host-coachgraph_session";
/// Readable by the page's script (not HttpOnly) so the SPA can echo it after a reload.
pub const CSRF_COOKIE: &str = "__Host-coachgraph_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn extract(method: &Method, headers: &HeaderMap, jar: &CookieJar) -> Credentials {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or("");
        // A malformed Authorization header is an (invalid) credential, never "anonymous".
        return Credentials::Bearer(token.trim().to_owned());
    }
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        let csrf = if method == Method::GET {
            CsrfCheck::NotRequired
        } else {
            CsrfCheck::Required(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned))
        };
        return Credentials::Cookie { token: cookie.value().to_owned(), csrf };
    }
    Credentials::None
}

/// Cross-site request forgery of a POST without a bearer token (a browser's: a cookie
/// session, or a login that would set one). A page on another site can send a "simple"
/// request (`text/plain`, a form) without asking first; it cannot send `application/json`
/// or set a custom header without a CORS preflight, which this server does not grant. So
/// such a POST must be JSON, and an `Origin`, when the browser sends one, must be this
/// server's own or one of the origins allowed by the CORS configuration.
pub fn check_browser_post(
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    allowed_origins: &[String],
) -> Result<(), AppError> {
    if method != Method::POST || headers.contains_key(header::AUTHORIZATION) {
        return Ok(());
    }
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("application/json") {
        return Err(AppError::bad_input("POST /graphql takes Content-Type: application/json"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        // HTTP/1.1 names the host in `Host`; HTTP/2 in the request's authority.
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .unwrap_or("");
        let origin = origin.to_str().unwrap_or("");
        if allowed_origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin)) {
            return Ok(());
        }
        let origin_host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        if host.is_empty() || origin_host != Some(host) {
            return Err(AppError::CsrfRejected);
        }
    }
    Ok(())
}

fn cookie(name: &'static str, value: String, http_only: bool, lifetime_secs: Option<i64>) -> Cookie<'static> {
    let mut c =
        Cookie::build((name, value)).path("/").secure(true).http_only(http_only).same_site(SameSite::Strict).build();
    match lifetime_secs {
        Some(secs) => c.set_max_age(cookie::time::Duration::seconds(secs.max(0))),
        None => c.make_removal(),
    }
    c
}

/// The `Set-Cookie` values an effect asks for.
pub fn set_cookie_headers(effect: &CookieEffect, now: DateTime<Utc>) -> Vec<String> {
    match effect {
        CookieEffect::SetSession { token, csrf, expires_at } => {
            let secs = (*expires_at - now).num_seconds();
            vec![
                cookie(SESSION_COOKIE, token.clone(), true, Some(secs)).to_string(),
                cookie(CSRF_COOKIE, csrf.clone(), false, Some(secs)).to_string(),
            ]
        }
        CookieEffect::Clear => vec![
            cookie(SESSION_COOKIE, String::new(), true, None).to_string(),
            cookie(CSRF_COOKIE, String::new(), false, None).to_string(),
        ],
    }
}
