//! Identity and sessions: login, lockout, token validation, server-side sessions,
//! cookies and CSRF. Each behaviour on SQLite and PostgreSQL.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use crate::both_backends;
use crate::common::*;

const VIEWER: &str = "{ viewer { id role } }";

fn assert_unauthenticated(res: &Response) {
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    assert_eq!(res.error_code(), Some("UNAUTHENTICATED"), "{}", res.body);
    assert!(res.body["data"].is_null());
}

async fn bearer(app: &TestApp, token: &str) -> Response {
    app.post(&Auth::Bearer(token.to_owned()), VIEWER, json!({})).await
}

// --- login ---------------------------------------------------------------------------

async fn wrong_password_and_unknown_email_give_identical_errors(app: &TestApp) {
    let wrong = app.login_full(&email("coach1", "acme"), "not-the-password").await;
    let unknown = app.login_full("nobody@acme.test", "not-the-password").await;
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body, "the two answers must be identical");
    assert_eq!(wrong.error_code(), Some("INVALID_CREDENTIALS"));
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
}
both_backends!(
    wrong_password_and_unknown_email_give_identical_errors,
    wrong_password_and_unknown_email_give_identical_errors
);

async fn login_is_case_insensitive_on_email_and_returns_the_viewer(app: &TestApp) {
    let res = app.login_full("Coach1@ACME.test", DEMO_PASSWORD).await;
    let viewer = &res.body["data"]["login"]["viewer"];
    assert_eq!(viewer["role"], "COACH");
    assert!(viewer["tenantId"].is_string());
    assert!(res.body["data"]["login"]["expiresAt"].is_string());
}
both_backends!(
    login_is_case_insensitive_on_email_and_returns_the_viewer,
    login_is_case_insensitive_on_email_and_returns_the_viewer
);

async fn repeated_failures_lock_the_account_for_a_while(app: &TestApp) {
    let who = email("coachee3", "acme");
    for _ in 0..5 {
        let res = app.login_full(&who, "wrong-password").await;
        assert_eq!(res.error_code(), Some("INVALID_CREDENTIALS"));
    }
    // Locked: even the right password is refused, with the same answer as a wrong one.
    let locked = app.login_full(&who, DEMO_PASSWORD).await;
    assert_eq!(locked.error_code(), Some("INVALID_CREDENTIALS"));
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'ACCOUNT_LOCKED' AND outcome = 'ALERT'").await,
        1
    );
    app.clock.advance(Duration::minutes(16));
    let res = app.login_full(&who, DEMO_PASSWORD).await;
    assert!(res.body["data"]["login"]["token"].is_string(), "unlocked after the lockout: {}", res.body);
}
both_backends!(repeated_failures_lock_the_account_for_a_while, repeated_failures_lock_the_account_for_a_while);

async fn logins_failures_and_logouts_are_audited(app: &TestApp) {
    let s = app.login(&email("coach1", "acme")).await;
    app.login_full(&email("coach1", "acme"), "wrong").await;
    app.login_full("ghost@nowhere.test", "wrong").await;
    app.post(&Auth::Bearer(s.token.clone()), "mutation { logout }", json!({})).await;
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'LOGIN' AND outcome = 'ALLOWED'").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'LOGIN_FAILED'").await, 2);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'LOGIN_FAILED' AND tenant_id IS NULL").await,
        1,
        "an unknown email is a platform event"
    );
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'LOGOUT'").await, 1);
}
both_backends!(logins_failures_and_logouts_are_audited, logins_failures_and_logouts_are_audited);

async fn stored_hashes_are_pbkdf2_sha256_600k_and_salted_per_user(app: &TestApp) {
    let n = app.count("SELECT count(*) FROM users WHERE password_hash LIKE '$pbkdf2-sha256$i=600000,l=32$%'").await;
    let all = app.count("SELECT count(*) FROM users").await;
    assert_eq!(n, all, "every stored hash is PBKDF2-SHA256 with 600,000 iterations");
    // Every demo account has the same password and yet a different hash.
    let distinct = app.count("SELECT count(DISTINCT password_hash) FROM users").await;
    assert_eq!(distinct, all);
}
both_backends!(
    stored_hashes_are_pbkdf2_sha256_600k_and_salted_per_user,
    stored_hashes_are_pbkdf2_sha256_600k_and_salted_per_user
);

// --- tokens ----------------------------------------------------------------------------

async fn a_valid_token_is_accepted(app: &TestApp) {
    let s = app.login(&email("coachee1", "acme")).await;
    let res = bearer(app, &s.token).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["data"]["viewer"]["role"], "COACHEE");
}
both_backends!(a_valid_token_is_accepted, a_valid_token_is_accepted);

fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

fn sign(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(jsonwebtoken::Algorithm::HS256), claims, &EncodingKey::from_secret(SECRET))
        .expect("sign")
}

async fn forged_and_malformed_tokens_are_refused(app: &TestApp) {
    let s = app.login(&email("coachee1", "acme")).await;
    let claims = claims_of(&s.token);

    // Tampered payload (role raised), original signature.
    let parts: Vec<&str> = s.token.split('.').collect();
    let mut raised = claims.clone();
    raised["role"] = json!("PROGRAM_ADMIN");
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(raised.to_string()), parts[2]);
    assert_unauthenticated(&bearer(app, &tampered).await);

    // Correctly signed, but for another audience / issuer.
    let mut other_aud = claims.clone();
    other_aud["aud"] = json!("another-api");
    assert_unauthenticated(&bearer(app, &sign(&other_aud)).await);
    let mut other_iss = claims.clone();
    other_iss["iss"] = json!("someone-else");
    assert_unauthenticated(&bearer(app, &sign(&other_iss)).await);

    // Correctly signed, `exp` as a string.
    let mut string_exp = claims.clone();
    string_exp["exp"] = json!(claims["exp"].to_string());
    assert_unauthenticated(&bearer(app, &sign(&string_exp)).await);

    // alg: none.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert_unauthenticated(&bearer(app, &none).await);

    // Another tenant's id in an otherwise valid token finds no session.
    let mut other_tenant = claims.clone();
    other_tenant["tid"] = json!(uuid::Uuid::new_v4());
    assert_unauthenticated(&bearer(app, &sign(&other_tenant)).await);

    // Garbage and an empty bearer.
    assert_unauthenticated(&bearer(app, "not.a.jwt").await);
    assert_unauthenticated(&bearer(app, "").await);

    // The genuine token still works.
    assert_eq!(bearer(app, &s.token).await.status, StatusCode::OK);
}
both_backends!(forged_and_malformed_tokens_are_refused, forged_and_malformed_tokens_are_refused);

async fn an_expired_token_is_refused(app: &TestApp) {
    let s = app.login(&email("coach1", "acme")).await;
    let mut claims = claims_of(&s.token);
    claims["exp"] = json!(t0().timestamp() - 1);
    claims["iat"] = json!(t0().timestamp() - 100);
    assert_unauthenticated(&bearer(app, &sign(&claims)).await);
}
both_backends!(an_expired_token_is_refused, an_expired_token_is_refused);

// --- sessions --------------------------------------------------------------------------

async fn a_token_is_refused_right_after_logout(app: &TestApp) {
    let s = app.login(&email("coach2", "globex")).await;
    let res = app.post(&Auth::Bearer(s.token.clone()), "mutation { logout }", json!({})).await;
    assert_eq!(res.body["data"]["logout"], true);
    assert_unauthenticated(&bearer(app, &s.token).await);
}
both_backends!(a_token_is_refused_right_after_logout, a_token_is_refused_right_after_logout);

async fn inactivity_beyond_the_tenant_timeout_ends_the_session(app: &TestApp) {
    let s = app.login(&email("coachee2", "acme")).await;
    // Activity keeps it alive: 25 + 25 minutes with a request in between.
    app.clock.advance(Duration::minutes(25));
    assert_eq!(bearer(app, &s.token).await.status, StatusCode::OK);
    app.clock.advance(Duration::minutes(25));
    assert_eq!(bearer(app, &s.token).await.status, StatusCode::OK);
    // 31 idle minutes end it (default timeout 30).
    app.clock.advance(Duration::minutes(31));
    assert_unauthenticated(&bearer(app, &s.token).await);
}
both_backends!(
    inactivity_beyond_the_tenant_timeout_ends_the_session,
    inactivity_beyond_the_tenant_timeout_ends_the_session
);

async fn the_tenant_setting_decides_the_inactivity_timeout(app: &TestApp) {
    app.owner.execute_unprepared("UPDATE tenant_settings SET session_timeout_minutes = 5").await.expect("update");
    let s = app.login(&email("coachee2", "acme")).await;
    app.clock.advance(Duration::minutes(6));
    assert_unauthenticated(&bearer(app, &s.token).await);
}
both_backends!(the_tenant_setting_decides_the_inactivity_timeout, the_tenant_setting_decides_the_inactivity_timeout);

async fn an_active_session_still_ends_at_its_absolute_lifetime(app: &TestApp) {
    let s = app.login(&email("exec1", "acme")).await;
    // Busy all day: a request every 25 minutes for 11h40.
    for _ in 0..28 {
        app.clock.advance(Duration::minutes(25));
        assert_eq!(bearer(app, &s.token).await.status, StatusCode::OK);
    }
    app.clock.advance(Duration::minutes(25)); // 12h05 after login
    assert_unauthenticated(&bearer(app, &s.token).await);
}
both_backends!(
    an_active_session_still_ends_at_its_absolute_lifetime,
    an_active_session_still_ends_at_its_absolute_lifetime
);

async fn changing_the_password_ends_the_other_sessions(app: &TestApp) {
    let who = email("coachee4", "acme");
    let s1 = app.login(&who).await;
    let s2 = app.login(&who).await;
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let res = app.gql_vars(&s1.token, change, json!({ "c": DEMO_PASSWORD, "n": "a much better passphrase" })).await;
    assert_eq!(res["data"]["changePassword"], true, "{res}");
    assert_eq!(bearer(app, &s1.token).await.status, StatusCode::OK, "the session that changed it continues");
    assert_unauthenticated(&bearer(app, &s2.token).await);
    assert_eq!(app.login_full(&who, DEMO_PASSWORD).await.error_code(), Some("INVALID_CREDENTIALS"));
    assert!(app.login_full(&who, "a much better passphrase").await.body["data"]["login"].is_object());
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'PASSWORD_CHANGED'").await, 1);
}
both_backends!(changing_the_password_ends_the_other_sessions, changing_the_password_ends_the_other_sessions);

async fn change_password_rejects_a_wrong_current_password_and_a_short_new_one(app: &TestApp) {
    let s = app.login(&email("coachee4", "globex")).await;
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let wrong =
        app.post(&Auth::Bearer(s.token.clone()), change, json!({ "c": "nope", "n": "a much better passphrase" })).await;
    assert_eq!(wrong.error_code(), Some("INVALID_CREDENTIALS"));
    let short = app.post(&Auth::Bearer(s.token.clone()), change, json!({ "c": DEMO_PASSWORD, "n": "short" })).await;
    assert_eq!(short.error_code(), Some("BAD_USER_INPUT"));
    assert!(app.login_full(&email("coachee4", "globex"), DEMO_PASSWORD).await.body["data"]["login"].is_object());
}
both_backends!(
    change_password_rejects_a_wrong_current_password_and_a_short_new_one,
    change_password_rejects_a_wrong_current_password_and_a_short_new_one
);

// --- browser: cookies and CSRF ----------------------------------------------------------

async fn login_sets_host_only_secure_httponly_strict_cookies(app: &TestApp) {
    let s = app.login(&email("coach1", "acme")).await;
    let session = s.set_cookies.iter().find(|c| c.starts_with("__Host-coachgraph_session=")).expect("session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attr), "{attr} missing in {session}");
    }
    assert!(!session.contains("Domain"), "a __Host- cookie has no Domain");
    let csrf = s.set_cookies.iter().find(|c| c.starts_with("__Host-coachgraph_csrf=")).expect("csrf cookie");
    assert!(csrf.contains("Secure") && csrf.contains("SameSite=Strict"));
    assert!(!csrf.contains("HttpOnly"), "the page's script must be able to read the CSRF token");
}
both_backends!(
    login_sets_host_only_secure_httponly_strict_cookies,
    login_sets_host_only_secure_httponly_strict_cookies
);

async fn cookie_posts_need_the_csrf_token(app: &TestApp) {
    let s = app.login(&email("coach1", "acme")).await;
    let without = app.post(&Auth::Cookie { token: s.token.clone(), csrf: None }, VIEWER, json!({})).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    assert_eq!(without.error_code(), Some("CSRF_REJECTED"));
    let wrong =
        app.post(&Auth::Cookie { token: s.token.clone(), csrf: Some("forged".into()) }, VIEWER, json!({})).await;
    assert_eq!(wrong.error_code(), Some("CSRF_REJECTED"));
    let right = app.post(&Auth::Cookie { token: s.token.clone(), csrf: Some(s.csrf.clone()) }, VIEWER, json!({})).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    assert_eq!(right.body["data"]["viewer"]["role"], "COACH");
    // A logout through the cookie clears both cookies.
    let out = app
        .post(&Auth::Cookie { token: s.token.clone(), csrf: Some(s.csrf.clone()) }, "mutation { logout }", json!({}))
        .await;
    let cleared: Vec<_> =
        out.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap_or("").to_owned()).collect();
    assert!(
        cleared.iter().any(|c| c.starts_with("__Host-coachgraph_session=;") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
}
both_backends!(cookie_posts_need_the_csrf_token, cookie_posts_need_the_csrf_token);

async fn mutations_over_get_are_refused(app: &TestApp) {
    let s = app.login(&email("coach1", "acme")).await;
    let uri = format!("/graphql?query={}", urlencode("mutation { logout }"));
    let req = Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", s.token))
        .body(Body::empty())
        .expect("req");
    let res = app.send(req).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    // The session is untouched.
    assert_eq!(bearer(app, &s.token).await.status, StatusCode::OK);
    // A query over GET works.
    let uri = format!("/graphql?query={}", urlencode(VIEWER));
    let req = Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", s.token))
        .body(Body::empty())
        .expect("req");
    let res = app.send(req).await;
    assert_eq!(res.body["data"]["viewer"]["role"], "COACH", "{}", res.body);
}
both_backends!(mutations_over_get_are_refused, mutations_over_get_are_refused);

async fn responses_carry_hsts(app: &TestApp) {
    let res = app.send(Request::get("/healthz").body(Body::empty()).expect("req")).await;
    let hsts = res.headers.get(header::STRICT_TRANSPORT_SECURITY).expect("hsts").to_str().expect("str");
    assert!(hsts.contains("max-age="));
    let ready = app.send(Request::get("/readyz").body(Body::empty()).expect("req")).await;
    assert_eq!(ready.status, StatusCode::OK);
}
both_backends!(responses_carry_hsts, responses_carry_hsts);

async fn a_deactivated_user_is_refused_at_once(app: &TestApp) {
    let s = app.login(&email("coachee6", "acme")).await;
    app.owner
        .execute_unprepared("UPDATE users SET status = 'DEACTIVATED' WHERE email = 'coachee6@acme.test'")
        .await
        .expect("deactivate");
    assert_unauthenticated(&bearer(app, &s.token).await);
}
both_backends!(a_deactivated_user_is_refused_at_once, a_deactivated_user_is_refused_at_once);

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

use sea_orm::ConnectionTrait;

async fn an_invitation_in_another_tenant_does_not_lock_out_the_owner_of_the_email(app: &TestApp) {
    let admin = app.login(&email("admin1", "globex")).await;
    let invite = "mutation { inviteUser(email: \"coach1@acme.test\", displayName: \"Squatter\", role: COACH) { id } }";
    let res = app.gql(&admin.token, invite).await;
    assert!(res["data"]["inviteUser"]["id"].is_string(), "{res}");
    let res = app.login_full(&email("coach1", "acme"), DEMO_PASSWORD).await;
    assert_eq!(res.body["data"]["login"]["viewer"]["role"], "COACH", "{}", res.body);
}
both_backends!(
    an_invitation_in_another_tenant_does_not_lock_out_the_owner_of_the_email,
    an_invitation_in_another_tenant_does_not_lock_out_the_owner_of_the_email
);
