//! Device sessions (login with `client: DEVICE`, `refreshSession`) and integration tokens
//! (`createIntegrationToken`, `revokeIntegrationToken`, `Authorization: Bearer cgi_…`),
//! POLICY.md section 11. Each behaviour on SQLite and PostgreSQL.

use axum::http::header;
use chrono::Duration;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;
use coachgraph::clock::Clock;

const DEVICE_LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p, client: DEVICE) \
                            { token refreshToken expiresAt csrfToken viewer { id role } } }";
const REFRESH: &str =
    "mutation($r: String!) { refreshSession(refreshToken: $r) { token refreshToken expiresAt viewer { id role } } }";
const VIEWER: &str = "{ viewer { id role } }";

/// A device session: (bearer token, refresh token).
async fn device_login(app: &TestApp, email: &str) -> (String, String) {
    let res = app.post(&Auth::None, DEVICE_LOGIN, json!({ "e": email, "p": DEMO_PASSWORD })).await;
    let login = &res.body["data"]["login"];
    assert!(login.is_object(), "device login of {email}: {}", res.body);
    (login["token"].as_str().expect("token").to_owned(), login["refreshToken"].as_str().expect("refresh").to_owned())
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Response {
    app.post(&Auth::None, REFRESH, json!({ "r": refresh_token })).await
}

/// A successful refresh: the new (bearer token, refresh token).
async fn refreshed(app: &TestApp, refresh_token: &str) -> (String, String) {
    let res = refresh(app, refresh_token).await;
    let out = &res.body["data"]["refreshSession"];
    assert!(out.is_object(), "refresh failed: {}", res.body);
    (out["token"].as_str().expect("token").to_owned(), out["refreshToken"].as_str().expect("refresh").to_owned())
}

fn assert_refused(res: &Response) {
    assert_eq!(res.error_code(), Some("UNAUTHENTICATED"), "{}", res.body);
    assert!(res.body["data"].is_null() || res.body["data"]["refreshSession"].is_null(), "{}", res.body);
}

async fn works(app: &TestApp, token: &str) -> bool {
    let res = app.post(&Auth::Bearer(token.to_owned()), VIEWER, json!({})).await;
    res.body["data"]["viewer"]["id"].is_string()
}

// --- device sessions -------------------------------------------------------------------

async fn device_login_returns_a_refresh_token_and_sets_no_cookie(app: &TestApp) {
    let res = app.post(&Auth::None, DEVICE_LOGIN, json!({ "e": email("coachee1", "acme"), "p": DEMO_PASSWORD })).await;
    let login = &res.body["data"]["login"];
    let refresh_token = login["refreshToken"].as_str().expect("a refresh token");
    assert!(refresh_token.starts_with("cgr_"), "{refresh_token}");
    assert!(res.headers.get(header::SET_COOKIE).is_none(), "a device session sets no cookie");
    assert_eq!(login["viewer"]["role"], "COACHEE");
    assert!(works(app, login["token"].as_str().expect("token")).await);
    // Only a hash is stored, and the bearer token is short-lived.
    let stored = app.count("SELECT count(*) FROM auth_sessions WHERE refresh_hash IS NOT NULL").await;
    assert_eq!(stored, 1);
    let expires: chrono::DateTime<chrono::Utc> = login["expiresAt"].as_str().expect("expiresAt").parse().expect("date");
    assert!(expires <= app.clock.now() + Duration::minutes(15), "{expires}");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'LOGIN' AND reason LIKE 'device session%'").await,
        1,
        "the device login is audited"
    );
}
both_backends!(
    device_login_returns_a_refresh_token_and_sets_no_cookie,
    device_login_returns_a_refresh_token_and_sets_no_cookie
);

async fn browser_login_returns_no_refresh_token(app: &TestApp) {
    let q = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token refreshToken } }";
    let res = app.post(&Auth::None, q, json!({ "e": email("coach1", "acme"), "p": DEMO_PASSWORD })).await;
    assert!(res.body["data"]["login"]["token"].is_string(), "{}", res.body);
    assert!(res.body["data"]["login"]["refreshToken"].is_null());
    assert!(res.headers.get(header::SET_COOKIE).is_some(), "a browser session rides in cookies");
    assert_eq!(app.count("SELECT count(*) FROM auth_sessions WHERE refresh_hash IS NOT NULL").await, 0);
}
both_backends!(browser_login_returns_no_refresh_token, browser_login_returns_no_refresh_token);

/// Decided: a refresh does not end the bearer token it replaces; that token lives out its
/// short life (15 minutes at most) with its session, which the refresh keeps.
async fn refresh_rotates_the_pair_and_the_old_bearer_token_lives_out_its_short_life(app: &TestApp) {
    let (token, r1) = device_login(app, &email("coachee1", "acme")).await;
    app.clock.advance(Duration::minutes(5));
    let (token2, r2) = refreshed(app, &r1).await;
    assert_ne!(token, token2);
    assert_ne!(r1, r2);
    assert!(works(app, &token).await, "the old bearer token until it expires");
    assert!(works(app, &token2).await);
    app.clock.advance(Duration::minutes(11));
    assert!(!works(app, &token).await, "15 minutes after it was issued, the first token has expired");
    assert!(works(app, &token2).await);
    // And the chain goes on.
    let (token3, _) = refreshed(app, &r2).await;
    assert!(works(app, &token3).await);
}
both_backends!(
    refresh_rotates_the_pair_and_the_old_bearer_token_lives_out_its_short_life,
    refresh_rotates_the_pair_and_the_old_bearer_token_lives_out_its_short_life
);

async fn a_reused_refresh_token_ends_the_session(app: &TestApp) {
    let (token, r1) = device_login(app, &email("coach1", "acme")).await;
    let (token2, r2) = refreshed(app, &r1).await;
    // A thief replays the first refresh token: the whole session ends.
    assert_refused(&refresh(app, &r1).await);
    assert!(!works(app, &token2).await, "the newest bearer token stops working");
    assert!(!works(app, &token).await);
    assert_refused(&refresh(app, &r2).await);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'REFRESH_TOKEN_REUSED' AND outcome = 'ALERT'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'REFRESH_TOKEN_REUSED' AND tenant_id IS NOT NULL")
            .await,
        1,
        "the alert is on the tenant's chain"
    );
}
both_backends!(a_reused_refresh_token_ends_the_session, a_reused_refresh_token_ends_the_session);

async fn unknown_used_and_malformed_refresh_tokens_get_the_same_answer(app: &TestApp) {
    let (_, r1) = device_login(app, &email("coachee2", "acme")).await;
    refreshed(app, &r1).await;
    let used = refresh(app, &r1).await;
    // Same shape, random content: a token no session ever issued.
    let mut forged: Vec<char> = r1.chars().collect();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    let unknown = refresh(app, &forged).await;
    let malformed = refresh(app, "cgr_not-a-token").await;
    let random = refresh(app, "something else entirely").await;
    for other in [&unknown, &malformed, &random] {
        assert_eq!(used.status, other.status);
        assert_eq!(used.body, other.body, "one and the same answer");
    }
    assert_refused(&used);
}
both_backends!(
    unknown_used_and_malformed_refresh_tokens_get_the_same_answer,
    unknown_used_and_malformed_refresh_tokens_get_the_same_answer
);

async fn a_system_admin_device_session_refreshes(app: &TestApp) {
    let (_, r1) = device_login(app, "root@coachgraph.test").await;
    let (token, _) = refreshed(app, &r1).await;
    let res = app.post(&Auth::Bearer(token), VIEWER, json!({})).await;
    assert_eq!(res.body["data"]["viewer"]["role"], "SYSTEM_ADMIN", "{}", res.body);
}
both_backends!(a_system_admin_device_session_refreshes, a_system_admin_device_session_refreshes);

async fn refresh_fails_after_logout(app: &TestApp) {
    let (token, r1) = device_login(app, &email("coachee1", "acme")).await;
    let res = app.gql(&token, "mutation { logout }").await;
    assert_eq!(res["data"]["logout"], true, "{res}");
    assert_refused(&refresh(app, &r1).await);
}
both_backends!(refresh_fails_after_logout, refresh_fails_after_logout);

async fn refresh_fails_after_a_password_change(app: &TestApp) {
    let who = email("coachee1", "acme");
    let (_, r1) = device_login(app, &who).await;
    let browser = app.login(&who).await;
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let res = app.gql_vars(&browser.token, change, json!({ "c": DEMO_PASSWORD, "n": "a-brand-new-password-42" })).await;
    assert_eq!(res["data"]["changePassword"], true, "{res}");
    assert_refused(&refresh(app, &r1).await);
}
both_backends!(refresh_fails_after_a_password_change, refresh_fails_after_a_password_change);

async fn refresh_fails_after_deactivation(app: &TestApp) {
    let who = email("coachee3", "acme");
    let (_, r1) = device_login(app, &who).await;
    let admin = app.session_for(&email("admin1", "acme")).await;
    let id = app.user_id(&who).await;
    let res = app.gql_vars(&admin.token, "mutation($id: ID!) { deactivateUser(id: $id) }", json!({ "id": id })).await;
    assert_eq!(res["data"]["deactivateUser"], true, "{res}");
    assert_refused(&refresh(app, &r1).await);
}
both_backends!(refresh_fails_after_deactivation, refresh_fails_after_deactivation);

async fn refresh_fails_after_the_inactivity_timeout(app: &TestApp) {
    let (_, r1) = device_login(app, &email("coachee1", "acme")).await;
    // The demo tenant's inactivity timeout is 30 minutes.
    app.clock.advance(Duration::minutes(29));
    let (_, r2) = refreshed(app, &r1).await;
    app.clock.advance(Duration::minutes(31));
    assert_refused(&refresh(app, &r2).await);
}
both_backends!(refresh_fails_after_the_inactivity_timeout, refresh_fails_after_the_inactivity_timeout);

async fn refresh_fails_after_the_device_lifetime(app: &TestApp) {
    let admin = app.session_for(&email("admin1", "acme")).await;
    let set = "mutation { updateTenantSettings(input: { deviceSessionDays: 1, sessionTimeoutMinutes: 480 }) \
               { deviceSessionDays sessionTimeoutMinutes } }";
    let res = app.gql(&admin.token, set).await;
    assert_eq!(res["data"]["updateTenantSettings"]["deviceSessionDays"], 1, "{res}");
    let (_, mut r) = device_login(app, &email("coachee1", "acme")).await;
    // Used every seven hours: never idle for long, and yet over after a day.
    for _ in 0..3 {
        app.clock.advance(Duration::hours(7));
        r = refreshed(app, &r).await.1;
    }
    app.clock.advance(Duration::hours(4));
    assert_refused(&refresh(app, &r).await);
    // The other tenant keeps its 30 days.
    let res = app
        .gql(&app.session_for(&email("admin1", "globex")).await.token, "{ tenantSettings { deviceSessionDays } }")
        .await;
    assert_eq!(res["data"]["tenantSettings"]["deviceSessionDays"], 30, "{res}");
}
both_backends!(refresh_fails_after_the_device_lifetime, refresh_fails_after_the_device_lifetime);

async fn device_session_days_outside_1_to_90_is_bad_user_input(app: &TestApp) {
    let admin = app.session_for(&email("admin1", "acme")).await;
    let set = "mutation($d: Int) { updateTenantSettings(input: { deviceSessionDays: $d }) { deviceSessionDays } }";
    for bad in [0, -1, 91, 100_000] {
        let res = app.post(&Auth::Bearer(admin.token.clone()), set, json!({ "d": bad })).await;
        assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "{bad}: {}", res.body);
    }
    let res = app.gql_vars(&admin.token, set, json!({ "d": 90 })).await;
    assert_eq!(res["data"]["updateTenantSettings"]["deviceSessionDays"], 90, "{res}");
    let coach = app.session_for(&email("coach1", "acme")).await;
    let res = app.post(&Auth::Bearer(coach.token), set, json!({ "d": 5 })).await;
    assert!(res.body["data"].is_null(), "a coach cannot: {}", res.body);
}
both_backends!(
    device_session_days_outside_1_to_90_is_bad_user_input,
    device_session_days_outside_1_to_90_is_bad_user_input
);

async fn refresh_session_must_be_alone_in_its_operation(app: &TestApp) {
    let (_, r1) = device_login(app, &email("coachee1", "acme")).await;
    let q = "mutation($r: String!) { a: refreshSession(refreshToken: $r) { token } b: refreshSession(refreshToken: $r) { token } }";
    let res = app.post(&Auth::None, q, json!({ "r": r1 })).await;
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "{}", res.body);
    // Nothing was used up.
    refreshed(app, &r1).await;
}
both_backends!(refresh_session_must_be_alone_in_its_operation, refresh_session_must_be_alone_in_its_operation);

// --- integration tokens ----------------------------------------------------------------

const CREATE: &str =
    "mutation($n: String!) { createIntegrationToken(name: $n) { secret token { id name createdAt lastUsedAt } } }";
const LIST: &str = "{ integrationTokens { id name createdAt lastUsedAt } }";
const REVOKE: &str = "mutation($id: ID!) { revokeIntegrationToken(id: $id) }";

/// A new token of the session's user: (id, secret).
async fn create_token(app: &TestApp, session_token: &str, name: &str) -> (String, String) {
    let res = app.gql_vars(session_token, CREATE, json!({ "n": name })).await;
    let out = &res["data"]["createIntegrationToken"];
    assert!(out.is_object(), "{res}");
    (out["token"]["id"].as_str().expect("id").to_owned(), out["secret"].as_str().expect("secret").to_owned())
}

const COACH_READS: &str = "query($mine: ID!, $other: ID!, $far: ID!) { coachees(first: 100) { totalCount nodes { id } } \
                           mine: user(id: $mine) { id goals { title } } \
                           other: user(id: $other) { id } far: user(id: $far) { id } }";

async fn an_integration_token_reads_exactly_what_its_owner_reads_until_revoked(app: &TestApp) {
    let coach = app.session_for(&email("coach1", "acme")).await;
    let (id, secret) = create_token(app, &coach.token, "weekly report").await;
    assert!(secret.starts_with("cgi_"), "{secret}");
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM integration_tokens WHERE token_hash = '{}'", sha256_hex(&secret)))
            .await,
        1,
        "stored as its hash"
    );
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM integration_tokens WHERE token_hash LIKE '%{}%'", &secret[4..20]))
            .await,
        0
    );
    let listed = app.gql(&coach.token, LIST).await;
    let tokens = listed["data"]["integrationTokens"].as_array().expect("list").clone();
    assert_eq!(tokens.len(), 1, "{listed}");
    assert_eq!(tokens[0]["name"], "weekly report");
    assert!(tokens[0]["lastUsedAt"].is_null());
    assert!(!listed.to_string().contains(&secret), "the secret is shown once only");

    let vars = json!({
        "mine": app.user_id(&email("coachee1", "acme")).await,
        "other": app.user_id(&email("coachee7", "acme")).await,
        "far": app.user_id(&email("coachee1", "globex")).await,
    });
    let as_session = app.post(&Auth::Bearer(coach.token.clone()), COACH_READS, vars.clone()).await;
    let as_token = app.post(&Auth::Bearer(secret.clone()), COACH_READS, vars.clone()).await;
    assert_eq!(as_session.status, as_token.status);
    assert_eq!(as_session.body, as_token.body, "the owner's rights, no more, no less");
    assert_eq!(as_token.body["data"]["coachees"]["totalCount"], 6, "{}", as_token.body);
    assert!(as_token.body["data"]["mine"]["id"].is_string());
    assert!(as_token.body["data"]["other"].is_null(), "an unassigned coachee");
    assert!(as_token.body["data"]["far"].is_null(), "another tenant's coachee");
    let viewer = app.gql(&secret, VIEWER).await;
    assert_eq!(viewer["data"]["viewer"]["id"], coach.user_id.as_str());

    let listed = app.gql(&coach.token, LIST).await;
    assert!(listed["data"]["integrationTokens"][0]["lastUsedAt"].is_string(), "{listed}");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'INTEGRATION_TOKEN_USED'").await,
        1,
        "use is audited once per hour, not per request"
    );

    let res = app.gql_vars(&coach.token, REVOKE, json!({ "id": id })).await;
    assert_eq!(res["data"]["revokeIntegrationToken"], true, "{res}");
    let after = app.post(&Auth::Bearer(secret.clone()), VIEWER, json!({})).await;
    assert_eq!(after.error_code(), Some("UNAUTHENTICATED"), "{}", after.body);
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'REVOKE_INTEGRATION_TOKEN'").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'CREATE_INTEGRATION_TOKEN'").await, 1);
    let listed = app.gql(&coach.token, LIST).await;
    assert_eq!(listed["data"]["integrationTokens"], json!([]), "{listed}");
}
both_backends!(
    an_integration_token_reads_exactly_what_its_owner_reads_until_revoked,
    an_integration_token_reads_exactly_what_its_owner_reads_until_revoked
);

async fn last_used_at_is_written_at_most_every_30_seconds(app: &TestApp) {
    let coachee = app.session_for(&email("coachee1", "acme")).await;
    let (_, secret) = create_token(app, &coachee.token, "sync").await;
    assert!(app.gql(&secret, VIEWER).await["data"]["viewer"].is_object());
    let first = app.gql(&coachee.token, LIST).await["data"]["integrationTokens"][0]["lastUsedAt"].clone();
    app.clock.advance(Duration::seconds(10));
    app.gql(&secret, VIEWER).await;
    let second = app.gql(&coachee.token, LIST).await["data"]["integrationTokens"][0]["lastUsedAt"].clone();
    assert_eq!(first, second, "not rewritten within 30 seconds");
    app.clock.advance(Duration::seconds(30));
    app.gql(&secret, VIEWER).await;
    let third = app.gql(&coachee.token, LIST).await["data"]["integrationTokens"][0]["lastUsedAt"].clone();
    assert_ne!(first, third);
    app.clock.advance(Duration::hours(1));
    app.gql(&secret, VIEWER).await;
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'INTEGRATION_TOKEN_USED'").await, 2);
}
both_backends!(last_used_at_is_written_at_most_every_30_seconds, last_used_at_is_written_at_most_every_30_seconds);

async fn an_integration_token_cannot_mint_or_change_credentials(app: &TestApp) {
    let coachee = app.session_for(&email("coachee1", "acme")).await;
    let (id, secret) = create_token(app, &coachee.token, "mobile sync").await;
    let refused: [(&str, Value); 5] = [
        (CREATE, json!({ "n": "another" })),
        (REVOKE, json!({ "id": id })),
        (
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
            json!({ "c": DEMO_PASSWORD, "n": "a-brand-new-password-42" }),
        ),
        ("mutation($p: String!) { deleteMyAccount(password: $p) }", json!({ "p": DEMO_PASSWORD })),
        ("mutation { logout }", json!({})),
    ];
    for (q, vars) in refused {
        let res = app.post(&Auth::Bearer(secret.clone()), q, vars).await;
        assert_eq!(res.error_code(), Some("FORBIDDEN"), "{q}: {}", res.body);
    }
    // Nothing changed: still one token, still working, the password unchanged.
    assert_eq!(app.count("SELECT count(*) FROM integration_tokens WHERE revoked_at IS NULL").await, 1);
    assert!(works(app, &secret).await);
    app.login(&email("coachee1", "acme")).await;
    // login and refreshSession are not in an authenticated caller's schema at all.
    let res = app
        .post(
            &Auth::Bearer(secret.clone()),
            DEVICE_LOGIN,
            json!({ "e": email("coachee1", "acme"), "p": DEMO_PASSWORD }),
        )
        .await;
    assert!(res.body["data"].is_null() || res.body["data"]["login"].is_null(), "{}", res.body);
    let res = app.post(&Auth::Bearer(secret), REFRESH, json!({ "r": "cgr_x" })).await;
    assert!(res.body["errors"].is_array(), "{}", res.body);
}
both_backends!(
    an_integration_token_cannot_mint_or_change_credentials,
    an_integration_token_cannot_mint_or_change_credentials
);

async fn another_users_token_cannot_be_revoked(app: &TestApp) {
    let coachee = app.session_for(&email("coachee1", "acme")).await;
    let (id, secret) = create_token(app, &coachee.token, "mine").await;
    for other in [email("coach1", "acme"), email("coachee2", "acme"), email("coachee1", "globex")] {
        let session = app.session_for(&other).await;
        let res = app.post(&Auth::Bearer(session.token), REVOKE, json!({ "id": id })).await;
        assert_eq!(res.error_code(), Some("NOT_FOUND"), "{other}: {}", res.body);
    }
    let unknown = app.post(&Auth::Bearer(coachee.token.clone()), REVOKE, json!({ "id": uuid::Uuid::new_v4() })).await;
    assert_eq!(unknown.error_code(), Some("NOT_FOUND"), "an unknown id answers alike");
    assert!(works(app, &secret).await, "still the owner's");
}
both_backends!(another_users_token_cannot_be_revoked, another_users_token_cannot_be_revoked);

async fn only_coachees_and_coaches_have_integration_tokens(app: &TestApp) {
    for (who, role) in ROLE_ACCOUNTS {
        let session = app.session_for(who).await;
        let res = app.post(&Auth::Bearer(session.token), CREATE, json!({ "n": "x" })).await;
        let created = res.body["data"]["createIntegrationToken"]["secret"].is_string();
        assert_eq!(created, matches!(role, "COACHEE" | "COACH"), "{role}: {}", res.body);
        if !created {
            let message = res.body["errors"][0]["message"].as_str().unwrap_or("");
            assert!(message.contains("createIntegrationToken"), "not in the {role} schema: {}", res.body);
        }
    }
}
both_backends!(only_coachees_and_coaches_have_integration_tokens, only_coachees_and_coaches_have_integration_tokens);

async fn a_token_name_must_have_1_to_100_characters(app: &TestApp) {
    let coach = app.session_for(&email("coach1", "acme")).await;
    for bad in ["".to_owned(), "   ".to_owned(), "x".repeat(101)] {
        let res = app.post(&Auth::Bearer(coach.token.clone()), CREATE, json!({ "n": bad })).await;
        assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "{}", res.body);
    }
    create_token(app, &coach.token, &"x".repeat(100)).await;
    assert_eq!(app.count("SELECT count(*) FROM integration_tokens WHERE name LIKE 'xxxx%'").await, 1);
}
both_backends!(a_token_name_must_have_1_to_100_characters, a_token_name_must_have_1_to_100_characters);

async fn a_deactivated_owners_token_stops_working(app: &TestApp) {
    let who = email("coachee4", "acme");
    let coachee = app.session_for(&who).await;
    let (_, secret) = create_token(app, &coachee.token, "sync").await;
    assert!(works(app, &secret).await);
    let admin = app.session_for(&email("admin1", "acme")).await;
    let id = app.user_id(&who).await;
    app.gql_vars(&admin.token, "mutation($id: ID!) { deactivateUser(id: $id) }", json!({ "id": id })).await;
    let res = app.post(&Auth::Bearer(secret), VIEWER, json!({})).await;
    assert_eq!(res.error_code(), Some("UNAUTHENTICATED"), "{}", res.body);
}
both_backends!(a_deactivated_owners_token_stops_working, a_deactivated_owners_token_stops_working);

async fn a_tampered_or_cross_tenant_integration_token_is_refused(app: &TestApp) {
    let coach = app.session_for(&email("coach1", "acme")).await;
    let (_, secret) = create_token(app, &coach.token, "report").await;
    // The same token id presented as another tenant's, and the secret with one byte changed.
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = URL_SAFE_NO_PAD.decode(&secret[4..]).expect("b64");
    let globex = app.uuid_of("SELECT id FROM tenants WHERE slug = 'globex'").await;
    let mut moved = raw.clone();
    moved[..16].copy_from_slice(uuid::Uuid::parse_str(&globex).expect("uuid").as_bytes());
    let last = raw.len() - 1;
    raw[last] ^= 1;
    for bad in [
        format!("cgi_{}", URL_SAFE_NO_PAD.encode(moved)),
        format!("cgi_{}", URL_SAFE_NO_PAD.encode(raw)),
        "cgi_x".into(),
    ] {
        let res = app.post(&Auth::Bearer(bad), VIEWER, json!({})).await;
        assert_eq!(res.error_code(), Some("UNAUTHENTICATED"), "{}", res.body);
    }
}
both_backends!(
    a_tampered_or_cross_tenant_integration_token_is_refused,
    a_tampered_or_cross_tenant_integration_token_is_refused
);

fn sha256_hex(s: &str) -> String {
    coachgraph::identity::session::sha256_hex(s)
}
