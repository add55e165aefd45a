//! Hostile traffic (issue 9): credential work, brute force, lockout, login CSRF, audit
//! bounds, input checks, the AI's caps and the database files. Each on SQLite and PostgreSQL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coachgraph::app::AppState;
use coachgraph::identity::credential::CredentialGuard;
use coachgraph::identity::password::Hashing;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

/// A JSON POST to `/graphql` from `ip`, optionally with a bearer token.
fn from_ip(ip: &str, token: Option<&str>, query: &str, variables: Value) -> Request<Body> {
    let mut req = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-ai-model", "test-model")
        .header("x-ai-purpose", "test-purpose");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let mut req = req.body(Body::from(json!({ "query": query, "variables": variables }).to_string())).expect("request");
    let addr: SocketAddr = format!("{ip}:40000").parse().expect("address");
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

pub(crate) async fn login_from(state: &AppState, ip: &str, email: &str, password: &str) -> Response {
    send_to(state, from_ip(ip, None, LOGIN, json!({ "e": email, "p": password }))).await
}

/// The test's server with other credential limits; its per-source buckets where the server
/// keeps them (PostgreSQL: shared through the database).
fn with_guard(app: &TestApp, guard: CredentialGuard) -> AppState {
    let mut state = app.state.clone();
    state.credentials = Arc::new(guard.on(&app.state.db));
    state
}

async fn failures_of(app: &TestApp, email: &str) -> i64 {
    app.count(&format!("SELECT CAST(failed_login_count AS BIGINT) FROM users WHERE email = '{email}'")).await
}

// --- item 2: one credential operation per request, no connection while hashing -------------

async fn aliased_logins_run_one_credential_check_per_request(app: &TestApp) {
    let who = email("coachee3", "acme");
    let q = format!(
        "mutation {{ a: login(email: \"{who}\", password: \"wrong-one\") {{ token }} \
         b: login(email: \"{who}\", password: \"wrong-two\") {{ token }} }}"
    );
    let before = app.statements.load(std::sync::atomic::Ordering::SeqCst);
    let res = app.post(&Auth::None, &q, json!({})).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "{}", res.body);
    assert_eq!(app.statements.load(std::sync::atomic::Ordering::SeqCst), before, "refused before any statement");
    assert_eq!(failures_of(app, &who).await, 0, "no password was checked");
    // Nor beside another field, nor through a fragment.
    let beside = format!("mutation {{ login(email: \"{who}\", password: \"x\") {{ token }} logout }}");
    assert_eq!(app.post(&Auth::None, &beside, json!({})).await.error_code(), Some("BAD_USER_INPUT"));
    let fragment = format!(
        "mutation {{ ...F ...F }} fragment F on Mutation {{ login(email: \"{who}\", password: \"x\") {{ token }} }}"
    );
    assert_eq!(app.post(&Auth::None, &fragment, json!({})).await.error_code(), Some("BAD_USER_INPUT"));
    assert_eq!(failures_of(app, &who).await, 0);
    // Alone, it runs.
    let alone = format!("mutation {{ login(email: \"{who}\", password: \"wrong-one\") {{ token }} }}");
    assert_eq!(app.post(&Auth::None, &alone, json!({})).await.error_code(), Some("INVALID_CREDENTIALS"));
    assert_eq!(failures_of(app, &who).await, 1);
}
both_backends!(
    aliased_logins_run_one_credential_check_per_request,
    aliased_logins_run_one_credential_check_per_request
);

async fn a_login_waiting_for_the_hashing_pool_holds_no_database_connection(app: &TestApp) {
    // One hashing worker, held by the test: the login waits for it. SQLite's pool is one
    // connection, so a login holding it would stall the other request below.
    let state = with_guard(app, CredentialGuard::new(Hashing::new(1, 4), 100));
    let held = state.credentials.hashing.occupy().await;
    let login_state = state.clone();
    let login =
        tokio::spawn(async move { login_from(&login_state, "198.51.100.1", "coach1@acme.test", DEMO_PASSWORD).await });
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert!(!login.is_finished(), "the login waits for a hashing turn");
    let coach = app.session_for("coach2@acme.test").await;
    let other = tokio::time::timeout(
        StdDuration::from_secs(5),
        send_to(&state, gql_request(&coach.token, "{ viewer { id role } }", json!({}))),
    )
    .await
    .expect("another request runs while a login waits to hash");
    assert_eq!(other.body["data"]["viewer"]["role"], "COACH", "{}", other.body);
    drop(held);
    let res = login.await.expect("login task");
    assert!(res.body["data"]["login"]["token"].is_string(), "{}", res.body);
}
both_backends!(
    a_login_waiting_for_the_hashing_pool_holds_no_database_connection,
    a_login_waiting_for_the_hashing_pool_holds_no_database_connection
);

async fn a_full_hashing_queue_answers_503_with_retry_after(app: &TestApp) {
    let state = with_guard(app, CredentialGuard::new(Hashing::new(1, 0), 100));
    let held = state.credentials.hashing.occupy().await;
    let res = login_from(&state, "198.51.100.2", "coach1@acme.test", DEMO_PASSWORD).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
    assert_eq!(res.error_code(), Some("SERVER_BUSY"), "{}", res.body);
    assert_eq!(res.headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("1"));
    drop(held);
    let res = login_from(&state, "198.51.100.2", "coach1@acme.test", DEMO_PASSWORD).await;
    assert!(res.body["data"]["login"]["token"].is_string(), "a free pool serves it: {}", res.body);
}
both_backends!(a_full_hashing_queue_answers_503_with_retry_after, a_full_hashing_queue_answers_503_with_retry_after);

async fn a_login_dropped_while_waiting_leaves_the_hashing_queue(app: &TestApp) {
    // One worker (held by the test), room for one waiter. A client that goes away while its
    // login waits must give its place back, or the server would answer 503 for good.
    let state = with_guard(app, CredentialGuard::new(Hashing::new(1, 1), 100));
    let held = state.credentials.hashing.occupy().await;
    let first_state = state.clone();
    let first =
        tokio::spawn(async move { login_from(&first_state, "198.51.100.3", "coach1@acme.test", DEMO_PASSWORD).await });
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    first.abort();
    let _ = first.await;
    let second_state = state.clone();
    let second =
        tokio::spawn(async move { login_from(&second_state, "198.51.100.3", "coach2@acme.test", DEMO_PASSWORD).await });
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second login waits in the freed place, it is not refused");
    drop(held);
    let res = second.await.expect("login task");
    assert!(res.body["data"]["login"]["token"].is_string(), "{}", res.body);
}
both_backends!(
    a_login_dropped_while_waiting_leaves_the_hashing_queue,
    a_login_dropped_while_waiting_leaves_the_hashing_queue
);

async fn credential_operations_are_limited_per_source_address(app: &TestApp) {
    let state = with_guard(app, CredentialGuard::new(Hashing::new(2, 16), 3));
    for _ in 0..3 {
        let res = login_from(&state, "203.0.113.7", "nobody@acme.test", "wrong-password").await;
        assert_eq!(res.error_code(), Some("INVALID_CREDENTIALS"), "{}", res.body);
    }
    let res = login_from(&state, "203.0.113.7", "coach1@acme.test", DEMO_PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
    assert_eq!(res.error_code(), Some("RATE_LIMITED"));
    assert!(res.headers.get(header::RETRY_AFTER).is_some());
    let res = login_from(&state, "203.0.113.8", "coach1@acme.test", DEMO_PASSWORD).await;
    assert!(res.body["data"]["login"]["token"].is_string(), "another address is not limited: {}", res.body);
}
both_backends!(
    credential_operations_are_limited_per_source_address,
    credential_operations_are_limited_per_source_address
);

// --- item 3: lockout ------------------------------------------------------------------------

async fn concurrent_wrong_passwords_each_count(app: &TestApp) {
    let who = email("coachee4", "acme");
    let state = with_guard(app, CredentialGuard::new(Hashing::new(2, 32), 100));
    let attempts = (0..10).map(|_| {
        let state = state.clone();
        let who = who.clone();
        tokio::spawn(async move { login_from(&state, "192.0.2.10", &who, "wrong-password").await })
    });
    for attempt in attempts.collect::<Vec<_>>() {
        assert_eq!(attempt.await.expect("task").error_code(), Some("INVALID_CREDENTIALS"));
    }
    assert_eq!(failures_of(app, &who).await, 10);
    assert_eq!(app.count("SELECT CAST(failures AS BIGINT) FROM login_throttles WHERE source = '192.0.2.10'").await, 10);
    let res = login_from(&state, "192.0.2.10", &who, DEMO_PASSWORD).await;
    assert_eq!(res.error_code(), Some("INVALID_CREDENTIALS"), "that address is blocked: {}", res.body);
}
both_backends!(concurrent_wrong_passwords_each_count, concurrent_wrong_passwords_each_count);

async fn an_attacker_cannot_lock_the_owner_out_from_another_address(app: &TestApp) {
    let who = email("coachee5", "acme");
    let state = with_guard(app, CredentialGuard::new(Hashing::new(2, 16), 100));
    for _ in 0..5 {
        login_from(&state, "192.0.2.66", &who, "guess-guess-guess").await;
    }
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'ACCOUNT_LOCKED'").await, 1);
    let attacker = login_from(&state, "192.0.2.66", &who, DEMO_PASSWORD).await;
    assert_eq!(attacker.error_code(), Some("INVALID_CREDENTIALS"), "the guessing address is blocked");
    let owner = login_from(&state, "198.51.100.77", &who, DEMO_PASSWORD).await;
    assert!(owner.body["data"]["login"]["token"].is_string(), "the owner signs in elsewhere: {}", owner.body);
    // The block backs off: after 15 minutes the address may try again, once more blocked sooner.
    app.clock.advance(chrono::Duration::minutes(16));
    let again = login_from(&state, "192.0.2.66", &who, DEMO_PASSWORD).await;
    assert!(again.body["data"]["login"]["token"].is_string(), "{}", again.body);
}
both_backends!(
    an_attacker_cannot_lock_the_owner_out_from_another_address,
    an_attacker_cannot_lock_the_owner_out_from_another_address
);

async fn wrong_passwords_to_change_password_and_delete_my_account_count(app: &TestApp) {
    let who = email("coachee6", "acme");
    let state = with_guard(app, CredentialGuard::new(Hashing::new(2, 16), 100));
    let s = app.session_for(&who).await;
    let change =
        "mutation { changePassword(currentPassword: \"not-it-at-all\", newPassword: \"a-new-long-password\") }";
    let res = send_to(&state, from_ip("192.0.2.20", Some(&s.token), change, json!({}))).await;
    assert_eq!(res.error_code(), Some("INVALID_CREDENTIALS"), "{}", res.body);
    let delete = "mutation { deleteMyAccount(password: \"not-it-at-all\") }";
    let res = send_to(&state, from_ip("192.0.2.20", Some(&s.token), delete, json!({}))).await;
    assert_eq!(res.error_code(), Some("INVALID_CREDENTIALS"), "{}", res.body);
    assert_eq!(failures_of(app, &who).await, 2, "both wrong passwords count");
    for _ in 0..3 {
        send_to(&state, from_ip("192.0.2.20", Some(&s.token), change, json!({}))).await;
    }
    let blocked = login_from(&state, "192.0.2.20", &who, DEMO_PASSWORD).await;
    assert_eq!(blocked.error_code(), Some("INVALID_CREDENTIALS"), "five in a row block that address");
}
both_backends!(
    wrong_passwords_to_change_password_and_delete_my_account_count,
    wrong_passwords_to_change_password_and_delete_my_account_count
);

// --- item 4: login CSRF ---------------------------------------------------------------------

async fn a_cross_site_login_is_refused(app: &TestApp) {
    let body = json!({ "query": LOGIN, "variables": { "e": "coach1@acme.test", "p": DEMO_PASSWORD } }).to_string();
    let plain = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(body.clone()))
        .expect("request");
    let res = app.send(plain).await;
    assert_eq!(res.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", res.body);
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"));
    assert!(res.headers.get(header::SET_COOKIE).is_none());
    let foreign = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::HOST, "api.coachgraph.test")
        .header(header::ORIGIN, "https://evil.test")
        .body(Body::from(body.clone()))
        .expect("request");
    let res = app.send(foreign).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    assert_eq!(res.error_code(), Some("CSRF_REJECTED"));
    assert!(res.headers.get(header::SET_COOKIE).is_none());
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'LOGIN'").await, 0, "nothing ran");
    let same = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(header::HOST, "api.coachgraph.test")
        .header(header::ORIGIN, "https://api.coachgraph.test")
        .body(Body::from(body))
        .expect("request");
    let res = app.send(same).await;
    assert!(res.body["data"]["login"]["token"].is_string(), "{}", res.body);
    assert!(res.headers.get(header::SET_COOKIE).is_some());
}
both_backends!(a_cross_site_login_is_refused, a_cross_site_login_is_refused);

// --- item 5: a failure persists whatever else the request does -------------------------------

async fn a_failed_login_stays_counted_and_audited_when_the_request_fails_later(app: &TestApp) {
    // Once a 500 at commit that lost the counters: two tenants' accounts in one request.
    let acme = email("coachee7", "acme");
    let globex = email("coachee1", "globex");
    let q = format!(
        "mutation {{ a: login(email: \"{acme}\", password: \"wrong-password\") {{ token }} \
         b: login(email: \"{globex}\", password: \"{DEMO_PASSWORD}\") {{ token }} }}"
    );
    let res = app.post(&Auth::None, &q, json!({})).await;
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "refused whole, never a 500: {}", res.body);
    // A wrong password is counted and audited in the account's chain before the answer, and
    // the rest of the request is anonymous again (its own events are written, no 500).
    let res = app.post(&Auth::None, LOGIN, json!({ "e": acme, "p": "wrong-password" })).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.error_code(), Some("INVALID_CREDENTIALS"));
    assert_eq!(failures_of(app, &acme).await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events a JOIN users u ON u.id = a.actor_id \
             WHERE a.action = 'LOGIN_FAILED' AND u.email = '{acme}' AND a.tenant_id = u.tenant_id"
        ))
        .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'LOGIN'").await, 0);
}
both_backends!(
    a_failed_login_stays_counted_and_audited_when_the_request_fails_later,
    a_failed_login_stays_counted_and_audited_when_the_request_fails_later
);

// --- item 6: a sealed cursor out of range; a failed request's audit events ---------------------

async fn a_cursor_with_a_huge_offset_is_bad_user_input(app: &TestApp) {
    // Only the server's key seals cursors; the tests know it, so they can forge the worst one.
    let keys = coachgraph::identity::token::TokenKeys::new(SECRET, ISSUER, AUDIENCE).expect("keys");
    let mut bytes = serde_json::to_vec(&json!(["auditEvents", { "Skip": u64::MAX }])).expect("payload");
    let tag = keys.cursor_tag(&bytes);
    bytes.extend_from_slice(&tag);
    let cursor = URL_SAFE_NO_PAD.encode(bytes);
    let admin = app.session_for("admin1@acme.test").await;
    let q = "query($a: String) { auditEvents(first: 5, after: $a) { nodes { id } } }";
    let res = app.gql_vars(&admin.token, q, json!({ "a": cursor })).await;
    let error = &res["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{res}");
    assert_eq!(error["message"], "after is out of range");
}
both_backends!(a_cursor_with_a_huge_offset_is_bad_user_input, a_cursor_with_a_huge_offset_is_bad_user_input);

async fn a_failed_request_still_writes_its_audit_events(app: &TestApp) {
    // The AI's access log cannot be written: the request fails at its end (500), after a
    // denial was queued. The denial is on record all the same.
    let ai = app.session_for("ai@acme.test").await;
    let closed = app.completed_session_of("coachee4@acme.test").await;
    use sea_orm::ConnectionTrait;
    app.owner.execute_unprepared("ALTER TABLE ai_access_log RENAME TO ai_access_log_away").await.expect("rename");
    let before = app.count("SELECT count(*) FROM audit_events WHERE outcome = 'DENIED'").await;
    let coachee2 = app.user_id("coachee2@acme.test").await;
    let q = "query($s: ID!, $b: ID) { s: session(id: $s) { id } b: goals(coacheeId: $b) { id } }";
    let res = app.post(&Auth::Bearer(ai.token.clone()), q, json!({ "s": closed, "b": coachee2 })).await;
    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", res.body);
    assert_eq!(res.error_code(), Some("INTERNAL"));
    assert!(!res.body.to_string().contains("ai_access_log"), "no SQL text: {}", res.body);
    app.owner.execute_unprepared("ALTER TABLE ai_access_log_away RENAME TO ai_access_log").await.expect("rename");
    let after = app.count("SELECT count(*) FROM audit_events WHERE outcome = 'DENIED'").await;
    assert!(after > before, "the denial of coachee4's session (the AI may not read it) is recorded");
}
both_backends!(a_failed_request_still_writes_its_audit_events, a_failed_request_still_writes_its_audit_events);

// --- item 7: NUL and bidi controls ----------------------------------------------------------

async fn nul_and_bidi_characters_are_bad_user_input(app: &TestApp) {
    let res = app.post(&Auth::None, LOGIN, json!({ "e": "coach1\u{0}@acme.test", "p": DEMO_PASSWORD })).await;
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "{}", res.body);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'LOGIN_FAILED' AND reason = 'malformed email'")
            .await,
        1,
        "the probe is audited"
    );
    let res = app.post(&Auth::None, LOGIN, json!({ "e": "coach1@acme.test\u{202E}", "p": DEMO_PASSWORD })).await;
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "{}", res.body);
    let res = app.post(&Auth::None, LOGIN, json!({ "e": "coach1@acme.test", "p": "pass\u{0}word" })).await;
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "{}", res.body);
    let coach = app.session_for("coach1@acme.test").await;
    let coachee1 = app.user_id("coachee1@acme.test").await;
    let q = "mutation($c: ID!, $t: String!) { createGoal(coacheeId: $c, title: $t) { id } }";
    let res = app.gql_vars(&coach.token, q, json!({ "c": coachee1, "t": "Lead \u{202E}ylno" })).await;
    let error = &res["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{res}");
    assert_eq!(error["message"], "title contains bidirectional control characters", "{res}");
    let res = app.gql_vars(&coach.token, q, json!({ "c": coachee1, "t": "Lead calmer" })).await;
    assert!(res["data"]["createGoal"]["id"].is_string(), "the same without it is fine: {res}");
}
both_backends!(nul_and_bidi_characters_are_bad_user_input, nul_and_bidi_characters_are_bad_user_input);

// --- item 8: bounded audit writes, alerts per source ------------------------------------------

async fn a_request_refused_many_times_writes_a_bounded_number_of_audit_rows(app: &TestApp) {
    // Within the alias limit (15), one request names a field outside its schema 14 times.
    let coachee = app.session_for("coachee1@acme.test").await;
    let aliases: String = (0..14).map(|i| format!("a{i}: me {{ coachNotes {{ id }} }} ")).collect();
    let before = app.count("SELECT count(*) FROM audit_events").await;
    app.gql(&coachee.token, &format!("{{ {aliases} }}")).await;
    assert_eq!(app.count("SELECT count(*) FROM audit_events").await - before, 1, "alike refusals are one row");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE reason LIKE '%(14 alike refusals in one request)'").await,
        1
    );

    // An anonymous caller names fields of other roles' schemas, of many kinds.
    let fields = [
        "me { id }",
        "goals { id }",
        "sessions { nodes { id } }",
        "auditEvents { nodes { id } }",
        "actionItems { nodes { id } }",
        "coachees { nodes { id } }",
        "users { nodes { id } }",
        "aiAccessLog { nodes { id } }",
        "myConsents { kind }",
        "insights { id }",
        "breakGlassRequests { id }",
        "integrationTokens { id }",
        "tenantSettings { sessionTimeoutMinutes }",
        "systemConfig { key }",
        "accountStatus(userId: \"x\") { active }",
    ];
    let probes: String = fields.iter().enumerate().map(|(i, f)| format!("p{i}: {f} ")).collect();
    let before = app.count("SELECT count(*) FROM audit_events").await;
    app.post(&Auth::None, &format!("{{ {probes} }}"), json!({})).await;
    let written = app.count("SELECT count(*) FROM audit_events").await - before;
    let bound = coachgraph::domain::audit::MAX_DENIALS_PER_REQUEST as i64 + 1;
    assert!((1..=bound).contains(&written), "{written} rows for one request");
}
both_backends!(
    a_request_refused_many_times_writes_a_bounded_number_of_audit_rows,
    a_request_refused_many_times_writes_a_bounded_number_of_audit_rows
);

async fn anonymous_floods_raise_an_alert_per_source_address(app: &TestApp) {
    for _ in 0..20 {
        send_to(&app.state, from_ip("203.0.113.50", None, "{ me { id } }", json!({}))).await;
    }
    send_to(&app.state, from_ip("203.0.113.51", None, "{ me { id } }", json!({}))).await;
    let alerts =
        |ip: &str| format!("SELECT count(*) FROM audit_events WHERE action = 'SECURITY_ALERT' AND ip_address = '{ip}'");
    assert_eq!(app.count(&alerts("203.0.113.50")).await, 1);
    assert_eq!(app.count(&alerts("203.0.113.51")).await, 0);
}
both_backends!(anonymous_floods_raise_an_alert_per_source_address, anonymous_floods_raise_an_alert_per_source_address);

// --- item 9: the AI's row cap holds per request -----------------------------------------------

async fn the_ai_row_cap_holds_across_aliases(app: &TestApp) {
    // coachee2 consents to ANALYZE in the demo; coachee3 and coachee6 (coach levels ACT and
    // ANALYZE) grant it here. Each has 6 action items and 3 sessions.
    for who in ["coachee3@acme.test", "coachee6@acme.test"] {
        let s = app.session_for(who).await;
        for kind in ["SASHA_OBSERVE", "SASHA_ANALYZE"] {
            let res = app
                .gql_vars(
                    &s.token,
                    "mutation($k: ConsentKind!) { grantConsent(kind: $k) { granted } }",
                    json!({ "k": kind }),
                )
                .await;
            assert_eq!(res["data"]["grantConsent"]["granted"], true, "{res}");
        }
    }
    let ids = json!({
        "a": app.user_id("coachee2@acme.test").await,
        "b": app.user_id("coachee3@acme.test").await,
        "c": app.user_id("coachee6@acme.test").await,
    });
    let ai = app.session_for("ai@acme.test").await;
    let rows = |res: &Value| -> usize {
        res["data"].as_object().map_or(0, |fields| {
            fields.values().map(|v| v["nodes"].as_array().or_else(|| v.as_array()).map_or(0, Vec::len)).sum()
        })
    };
    // Each coachee's action items, sessions and goals, one request per coachee: each well
    // under the cap, and more than 25 rows in all.
    let per_coachee = "query($c: ID) { i: actionItems(coacheeId: $c) { nodes { id } } \
                       s: sessions(coacheeId: $c) { nodes { id } } g: goals(coacheeId: $c) { id } }";
    let mut total = 0;
    for key in ["a", "b", "c"] {
        let res = app.post(&Auth::Bearer(ai.token.clone()), per_coachee, json!({ "c": ids[key] })).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert!(res.body["errors"].is_null(), "{}", res.body);
        total += rows(&res.body);
    }
    assert!(total > 25, "{total} rows");
    let logged_before = app.count("SELECT count(*) FROM ai_access_log").await;
    // The same lists as aliases of one request.
    let mut fields = String::new();
    for (n, v) in [("a", "$a"), ("b", "$b"), ("c", "$c")] {
        fields.push_str(&format!(
            "i{n}: actionItems(coacheeId: {v}) {{ nodes {{ id }} }} s{n}: sessions(coacheeId: {v}) {{ nodes {{ id }} }} \
             g{n}: goals(coacheeId: {v}) {{ id }} "
        ));
    }
    let over = format!("query($a: ID, $b: ID, $c: ID) {{ {fields} }}");
    let res = app.post(&Auth::Bearer(ai.token.clone()), &over, ids).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"));
    assert!(res.body["data"].is_null(), "nothing read is served: {}", res.body);
    assert_eq!(app.count("SELECT count(*) FROM ai_access_log").await, logged_before, "nor logged as read");
}
both_backends!(the_ai_row_cap_holds_across_aliases, the_ai_row_cap_holds_across_aliases);

// --- item 10: the AI's declared purpose is a label --------------------------------------------

async fn the_ai_purpose_is_a_short_label_not_text(app: &TestApp) {
    let ai = app.session_for("ai@acme.test").await;
    let request = |purpose: &str| {
        Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", ai.token))
            .header("x-ai-model", "acme/model-2")
            .header("x-ai-purpose", purpose)
            .body(Body::from(json!({ "query": "{ viewer { role } }" }).to_string()))
            .expect("request")
    };
    let res = app.send(request("Your account is locked. Visit https://evil.test/reset now")).await;
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "{}", res.body);
    let res = app.send(request(&"a".repeat(65))).await;
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "{}", res.body);
    let res = app.send(request("session-summary")).await;
    assert_eq!(res.body["data"]["viewer"]["role"], "AI_AGENT", "{}", res.body);
}
both_backends!(the_ai_purpose_is_a_short_label_not_text, the_ai_purpose_is_a_short_label_not_text);

// --- item 12: the SQLite files are the owner's only -------------------------------------------

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_database_and_its_wal_and_shm_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("coachgraph-mode-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("private.db");
    let db = coachgraph::db::Db::connect(&format!("sqlite://{}?mode=rwc", file.display())).await.expect("connect");
    migrate(coachgraph::db::testing::connection(&db)).await;
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", file.display()));
        let mode = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{} is {:o}", path.display(), mode & 0o777);
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

// --- item 1 (SQLite): readers are not serialised behind one slow request ----------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_sqlite_file_an_open_reader_and_the_writer_do_not_hold_up_other_readers() {
    use coachgraph::db::{Db, DbScope};
    use sea_orm::ConnectionTrait;
    let dir = std::env::temp_dir().join(format!("coachgraph-readers-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = Db::connect(&format!("sqlite://{}?mode=rwc", dir.join("readers.db").display())).await.expect("connect");
    migrate(coachgraph::db::testing::connection(&db)).await;
    coachgraph::seed::seed_demo(&db, t0()).await.expect("seed");
    let clock = coachgraph::clock::ManualClock::new(t0());
    let state = AppState::new(db.clone(), SECRET, ISSUER, AUDIENCE, Arc::new(clock)).expect("state");
    let login =
        send_to(&state, from_ip("127.0.0.1", None, LOGIN, json!({ "e": "coach1@acme.test", "p": DEMO_PASSWORD })))
            .await;
    let token = login.body["data"]["login"]["token"].as_str().expect("token").to_owned();

    // A slow request reading, and another holding the write lock, both still open.
    let reader = db.begin(DbScope::ANONYMOUS);
    reader.conn().await.expect("reader").execute_unprepared("SELECT count(*) FROM tenants").await.expect("read");
    let writer = db.begin_writing(DbScope::ANONYMOUS);
    writer.conn().await.expect("writer").execute_unprepared("SELECT count(*) FROM tenants").await.expect("lock");

    let answer = tokio::time::timeout(
        StdDuration::from_secs(5),
        send_to(&state, gql_request(&token, "{ viewer { role } sessions(first: 2) { nodes { id } } }", json!({}))),
    )
    .await
    .expect("a reader runs beside an open reader and the writer");
    assert_eq!(answer.body["data"]["viewer"]["role"], "COACH", "{}", answer.body);
    reader.rollback().await.expect("rollback");
    writer.rollback().await.expect("rollback");
    drop(state);
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

// --- the source address: X-Forwarded-For only from a trusted proxy ----------------------------

async fn forwarded_for_names_the_source_only_behind_a_trusted_proxy(app: &TestApp) {
    let mut state = app.state.clone();
    state.settings = Arc::new(coachgraph::app::HttpSettings {
        trusted_proxies: vec![coachgraph::config::parse_proxy("10.0.0.1").expect("proxy")],
        ..coachgraph::app::HttpSettings::default()
    });
    let probe = |peer: &str| {
        let mut req = from_ip(peer, None, "{ me { id } }", json!({}));
        req.headers_mut().insert("x-forwarded-for", "198.51.100.200, 203.0.113.99".parse().expect("header"));
        req
    };
    send_to(&state, probe("10.0.0.1")).await;
    send_to(&state, probe("192.0.2.44")).await;
    let from = |ip: &str| format!("SELECT count(*) FROM audit_events WHERE outcome = 'DENIED' AND ip_address = '{ip}'");
    assert_eq!(app.count(&from("203.0.113.99")).await, 1, "the proxy's client");
    assert_eq!(app.count(&from("192.0.2.44")).await, 1, "an untrusted peer's own header is ignored");
    assert_eq!(app.count(&from("198.51.100.200")).await, 0, "the spoofable left end is never believed");
}
both_backends!(
    forwarded_for_names_the_source_only_behind_a_trusted_proxy,
    forwarded_for_names_the_source_only_behind_a_trusted_proxy
);

async fn a_password_changed_while_a_login_hashes_is_not_let_in(app: &TestApp) {
    // The login reads the account, then waits for a hashing turn (held by the test) with no
    // transaction open; meanwhile the password changes. The old password opens nothing.
    let state = with_guard(app, CredentialGuard::new(Hashing::new(1, 4), 100));
    let held = state.credentials.hashing.occupy().await;
    let login_state = state.clone();
    let login =
        tokio::spawn(async move { login_from(&login_state, "198.51.100.4", "coach2@acme.test", DEMO_PASSWORD).await });
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    use sea_orm::ConnectionTrait;
    let fresh = coachgraph::identity::password::hash("a-brand-new-password".to_owned()).await.expect("hash");
    app.owner
        .execute_unprepared(&format!("UPDATE users SET password_hash = '{fresh}' WHERE email = 'coach2@acme.test'"))
        .await
        .expect("change");
    drop(held);
    let res = login.await.expect("login task");
    assert_eq!(res.error_code(), Some("INVALID_CREDENTIALS"), "{}", res.body);
}
both_backends!(
    a_password_changed_while_a_login_hashes_is_not_let_in,
    a_password_changed_while_a_login_hashes_is_not_let_in
);
