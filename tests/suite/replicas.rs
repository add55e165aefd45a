//! Two server processes over one PostgreSQL database (POLICY.md section 5: a withdrawal
//! holds "everywhere (every replica)"; section 9: logout revokes a token at once). Each
//! process has its own pool and schemas, as two replicas behind a load balancer would; what
//! one changes, the other enforces on its very next request, because nothing that decides
//! access is cached in a process: sessions, users, consents, levels and grants are read
//! again in every request's transaction. PostgreSQL only (an in-memory SQLite database
//! cannot be shared by two pools); skipped like the others when unreachable.
//!
//! What replicas share besides the data (issue 10, item 9): the rate limits (the AI's per
//! tenant, credential operations' per source address) and, in development mode without
//! `COACHGRAPH_JWT_SECRET`, the signing key, both kept in the database: in process (two
//! `AppState`s) and with two real `coachgraph serve` processes in two working directories.

use std::sync::Arc;

use axum::http::StatusCode;
use coachgraph::app::AppState;
use coachgraph::db::Db;
use coachgraph::db::entities::{coaching_sessions, users};
use coachgraph::domain::kinds::SessionStatus;
use coachgraph::identity::credential::CredentialGuard;
use coachgraph::identity::password::Hashing;
use sea_orm::{ColumnTrait, ConnectionTrait, Database, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::abuse::login_from;
use crate::common::process::{ScratchDir, ServerProcess, run_to_exit};
use crate::common::*;
use crate::consent::user_id;

async fn two_processes() -> Option<(TestApp, AppState)> {
    let app = TestApp::start(Backend::Postgres).await?;
    let second = app.second_process().await.expect("second process");
    Some((app, second))
}

async fn on(state: &AppState, token: &str, query: &str, variables: Value) -> Response {
    send_to(state, gql_request(token, query, variables)).await
}

#[tokio::test]
async fn a_consent_withdrawn_through_one_process_holds_in_the_other() {
    let Some((app, p2)) = two_processes().await else { return };
    // Demo: coachee2 grants OBSERVE and ANALYZE; its coach's level is ANALYZE.
    let coachee2 = user_id(&app, "coachee2@acme.test").await;
    let session = coaching_sessions::Entity::find()
        .filter(coaching_sessions::Column::CoacheeId.eq(coachee2))
        .filter(coaching_sessions::Column::Status.eq(SessionStatus::Completed))
        .one(&app.owner)
        .await
        .expect("q")
        .expect("session")
        .id;
    let ai = app.session_for("ai@acme.test").await;
    let goals = "query($c: ID) { goals(coacheeId: $c) { id } }";
    let read = "query($id: ID!) { session(id: $id) { id transcript } }";
    let res = on(&p2, &ai.token, goals, json!({ "c": coachee2 })).await;
    assert!(!res.body["data"]["goals"].as_array().expect("goals").is_empty(), "{}", res.body);
    let res = on(&p2, &ai.token, read, json!({ "id": session })).await;
    assert_eq!(res.body["data"]["session"]["id"], json!(session), "{}", res.body);

    // Process 1: the coachee withdraws.
    let c = app.session_for("coachee2@acme.test").await;
    let res = app.gql_vars(&c.token, "mutation { withdrawConsent(kind: SASHA_OBSERVE) { granted } }", json!({})).await;
    assert_eq!(res["data"]["withdrawConsent"]["granted"], false, "{res}");

    // Process 2, very next request: nothing, with no grace period.
    let res = on(&p2, &ai.token, goals, json!({ "c": coachee2 })).await;
    assert_eq!(res.body["data"]["goals"], json!([]), "{}", res.body);
    let res = on(&p2, &ai.token, read, json!({ "id": session })).await;
    assert!(res.body["data"]["session"].is_null(), "{}", res.body);
    assert_eq!(res.error_code(), Some("CONSENT_REQUIRED"), "{}", res.body);
}

#[tokio::test]
async fn a_logout_through_one_process_is_refused_by_the_other() {
    let Some((app, p2)) = two_processes().await else { return };
    let s = app.login("coach1@acme.test").await;
    let res = on(&p2, &s.token, "{ viewer { id } }", json!({})).await;
    assert_eq!(res.body["data"]["viewer"]["id"], json!(s.user_id), "{}", res.body);

    let res = app.gql(&s.token, "mutation { logout }").await;
    assert_eq!(res["data"]["logout"], true, "{res}");

    let res = on(&p2, &s.token, "{ viewer { id } }", json!({})).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    assert_eq!(res.error_code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn a_deactivated_user_is_refused_by_the_other_process() {
    let Some((app, p2)) = two_processes().await else { return };
    let s = app.session_for("coach2@acme.test").await;
    let res = on(&p2, &s.token, "{ me { email } }", json!({})).await;
    assert_eq!(res.body["data"]["me"]["email"], "coach2@acme.test", "{}", res.body);

    // Deactivated behind both processes' backs (as `deactivateUser` through process 1 would).
    let id: Uuid = s.user_id.parse().expect("uuid");
    let affected = users::Entity::update_many()
        .col_expr(users::Column::Status, sea_orm::sea_query::Expr::value("DEACTIVATED"))
        .filter(users::Column::Id.eq(id))
        .exec(&app.owner)
        .await
        .expect("deactivate")
        .rows_affected;
    assert_eq!(affected, 1);

    let res = on(&p2, &s.token, "{ me { email } }", json!({})).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    assert_eq!(res.error_code(), Some("UNAUTHENTICATED"));
    let res = app.post(&Auth::Bearer(s.token.clone()), "{ me { email } }", json!({})).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "process 1 alike");

    // The same through the API: an admin deactivates a coachee through process 1.
    let c = app.session_for("coachee3@acme.test").await;
    assert_eq!(on(&p2, &c.token, "{ me { email } }", json!({})).await.status, StatusCode::OK);
    let admin = app.session_for("admin1@acme.test").await;
    let res =
        app.gql_vars(&admin.token, "mutation($id: ID!) { deactivateUser(id: $id) }", json!({ "id": c.user_id })).await;
    assert_eq!(res["data"]["deactivateUser"], true, "{res}");
    let res = on(&p2, &c.token, "{ me { email } }", json!({})).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
}

#[tokio::test]
async fn a_break_glass_grant_revoked_through_one_process_is_refused_by_the_other() {
    let Some((app, p2)) = two_processes().await else { return };
    let coachee = user_id(&app, "coachee1@acme.test").await;
    let a1 = app.session_for("admin1@acme.test").await;
    let a2 = app.session_for("admin2@acme.test").await;
    let request = "mutation($c: ID!) { requestBreakGlass(coacheeId: $c, reason: \"Urgent safeguarding review\", minutes: 30) { id } }";
    let res = on(&p2, &a1.token, request, json!({ "c": coachee })).await;
    let id = res.body["data"]["requestBreakGlass"]["id"].clone();
    assert!(id.is_string(), "{}", res.body);
    let res = app
        .gql_vars(&a2.token, "mutation($id: ID!) { approveBreakGlass(id: $id) { active } }", json!({ "id": id }))
        .await;
    assert_eq!(res["data"]["approveBreakGlass"]["active"], true, "{res}");

    let goals = "query($c: ID!) { user(id: $c) { goals { id } } }";
    let res = on(&p2, &a1.token, goals, json!({ "c": coachee })).await;
    assert!(!res.body["data"]["user"]["goals"].as_array().expect("goals").is_empty(), "{}", res.body);

    let res = app
        .gql_vars(&a2.token, "mutation($id: ID!) { revokeBreakGlass(id: $id) { active } }", json!({ "id": id }))
        .await;
    assert_eq!(res["data"]["revokeBreakGlass"]["active"], false, "{res}");
    let res = on(&p2, &a1.token, goals, json!({ "c": coachee })).await;
    assert_eq!(res.body["errors"][0]["message"], "Unknown field \"goals\" on type \"User\".", "{}", res.body);
}

// --- what replicas share: rate limits and the development key (issue 10, item 9) ---------

#[tokio::test]
async fn the_ai_rate_limit_holds_across_processes() {
    let Some((app, p2)) = two_processes().await else { return };
    app.owner
        .execute_unprepared("UPDATE system_config SET value = '4' WHERE key = 'ai.rate_limit_per_minute'")
        .await
        .expect("setting");
    let ai = app.session_for("ai@acme.test").await;
    let viewer = "{ viewer { id } }";
    for (i, state) in [&app.state, &p2, &app.state, &p2].into_iter().enumerate() {
        let res = on(state, &ai.token, viewer, json!({})).await;
        assert_eq!(res.status, StatusCode::OK, "request {i}: {}", res.body);
    }
    // Four a minute in all, not four through each process.
    for state in [&p2, &app.state] {
        let res = on(state, &ai.token, viewer, json!({})).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
        assert_eq!(res.error_code(), Some("RATE_LIMITED"), "{}", res.body);
        assert_eq!(res.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("15"));
    }
    // One episode, audited once, though both processes refused.
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE reason LIKE 'AI rate limit%'").await, 1);
    // The bucket refills with the application's clock, for both.
    app.clock.advance(chrono::Duration::seconds(15));
    assert_eq!(on(&p2, &ai.token, viewer, json!({})).await.status, StatusCode::OK);
    assert_eq!(on(&app.state, &ai.token, viewer, json!({})).await.status, StatusCode::TOO_MANY_REQUESTS);
    // One bucket, a row of the database; other tenants have their own.
    assert_eq!(app.count("SELECT count(*) FROM rate_buckets WHERE scope = 'ai'").await, 1);
    let globex = app.session_for("ai@globex.test").await;
    assert_eq!(on(&p2, &globex.token, viewer, json!({})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_per_source_credential_limit_holds_across_processes() {
    let Some((app, p2)) = two_processes().await else { return };
    let guarded = |state: &AppState| {
        let mut state = state.clone();
        state.credentials = Arc::new(CredentialGuard::new(Hashing::new(2, 16), 3).on(&state.db));
        state
    };
    let (p1, p2) = (guarded(&app.state), guarded(&p2));
    for state in [&p1, &p2, &p1] {
        let res = login_from(state, "203.0.113.9", "nobody@acme.test", "wrong-password").await;
        assert_eq!(res.error_code(), Some("INVALID_CREDENTIALS"), "{}", res.body);
    }
    // Three a minute from this address in all, whichever process answers.
    for state in [&p2, &p1] {
        let res = login_from(state, "203.0.113.9", "coach1@acme.test", DEMO_PASSWORD).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
        assert_eq!(res.error_code(), Some("RATE_LIMITED"), "{}", res.body);
        assert_eq!(res.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("20"));
    }
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'CREDENTIAL_RATE_LIMITED'").await,
        1,
        "one episode, one alert"
    );
    assert_eq!(app.count("SELECT count(*) FROM rate_buckets WHERE scope = 'credential'").await, 1);
    let res = login_from(&p2, "203.0.113.10", "coach1@acme.test", DEMO_PASSWORD).await;
    assert!(res.body["data"]["login"]["token"].is_string(), "another address is not limited: {}", res.body);
}

/// A development-mode configuration on `database_url` without a secret.
fn development_config(database_url: &str) -> coachgraph::config::Config {
    use clap::Parser;
    let cli =
        coachgraph::config::Cli::try_parse_from(["coachgraph", "--database-url", database_url]).expect("configuration");
    let mut config = cli.serve_config();
    config.mode = coachgraph::config::Mode::Development;
    config.jwt_secret = None;
    config
}

#[tokio::test]
async fn servers_on_one_database_keep_one_development_key() {
    let Some(pg) = create_pg_database().await else { return };
    migrate(&Database::connect(pg.owner_url()).await.expect("owner")).await;
    let config = development_config(&pg.app_url());
    let (a, b) = (Db::connect(&pg.app_url()).await.expect("a"), Db::connect(&pg.app_url()).await.expect("b"));
    // Two servers starting together: one key, whichever inserts first.
    let (ka, kb) = tokio::join!(coachgraph::app::signing_key(&config, &a), coachgraph::app::signing_key(&config, &b));
    let (ka, kb) = (ka.expect("key a"), kb.expect("key b"));
    assert_eq!(ka, kb);
    assert_eq!(ka.len(), 32);
    assert_eq!(coachgraph::app::signing_key(&config, &b).await.expect("again"), ka, "kept, not regenerated");
    // The application role reaches the key through `app_development_key` only.
    let app_conn = Database::connect(pg.app_url()).await.expect("app role");
    for sql in ["SELECT key FROM development_signing_key", "DELETE FROM development_signing_key"] {
        let err = app_conn.execute_unprepared(sql).await.expect_err(sql).to_string();
        assert!(err.contains("permission denied"), "{sql}: {err}");
    }
    // An explicit secret wins; production still requires one.
    let secret = "an-explicit-secret-of-at-least-32-bytes";
    let mut explicit = config.clone();
    explicit.jwt_secret = Some(secret.into());
    assert_eq!(coachgraph::app::signing_key(&explicit, &a).await.expect("explicit"), secret.as_bytes());
    let mut production = config;
    production.mode = coachgraph::config::Mode::Production;
    assert!(coachgraph::app::signing_key(&production, &a).await.is_err());
}

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

/// A JSON POST to a server process: no Origin (a non-browser client), bearer when given,
/// the AI's headers. Status, `Retry-After` and body.
async fn post(
    server: &ServerProcess,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .post(server.url("/graphql"))
        .header("content-type", "application/json")
        .header("x-ai-model", "test-model")
        .header("x-ai-purpose", "test-purpose")
        .body(json!({ "query": query, "variables": variables }).to_string());
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let res = req.send().await.expect("request");
    let status = StatusCode::from_u16(res.status().as_u16()).expect("status");
    let retry = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = res.json::<Value>().await.expect("json body");
    (status, retry, body)
}

async fn login_on(server: &ServerProcess, email: &str) -> String {
    let (status, _, body) = post(server, None, LOGIN, json!({ "e": email, "p": DEMO_PASSWORD })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("login of {email}: {body}")).to_owned()
}

#[tokio::test]
async fn two_server_processes_on_one_database_share_the_key_and_the_ai_limit() {
    let Some(pg) = create_pg_database().await else { return };
    let (owner_url, app_url) = (pg.owner_url(), pg.app_url());
    let seed_dir = ScratchDir::new();
    let (status, out) =
        run_to_exit(&seed_dir, &["seed-demo"], &[("DATABASE_URL", &owner_url), ("MIGRATION_DATABASE_URL", &owner_url)]);
    assert!(status.success(), "seed-demo: {out}");
    // The platform setting (demo: 120) yields to COACHGRAPH_AI_RATE_LIMIT when absent.
    let owner = Database::connect(&owner_url).await.expect("owner");
    owner.execute_unprepared("DELETE FROM system_config WHERE key = 'ai.rate_limit_per_minute'").await.expect("unset");

    // Development mode, no secret, two working directories: started together.
    let envs =
        [("DATABASE_URL", app_url.as_str()), ("COACHGRAPH_MODE", "development"), ("COACHGRAPH_AI_RATE_LIMIT", "3")];
    let (d1, d2) = (ScratchDir::new(), ScratchDir::new());
    let (s1, s2) = tokio::join!(ServerProcess::start(&d1, &envs), ServerProcess::start(&d2, &envs));
    let key = app_scalar(&owner, "SELECT encode(key, 'hex') FROM development_signing_key").await;
    for server in [&s1, &s2] {
        server
            .wait_for_output(
                "signing key: development key kept in the database (shared by every replica on it)",
                std::time::Duration::from_secs(10),
            )
            .await;
        assert!(!server.output().contains(&key), "the key is never logged");
    }
    for dir in [&d1, &d2] {
        assert!(!dir.0.join("coachgraph.key").exists(), "no key file in {}", dir.0.display());
    }

    // A token issued by one is accepted by the other, both ways; so are its cursors.
    let ai = login_on(&s1, "ai@acme.test").await;
    let coach = login_on(&s2, "coach1@acme.test").await;
    let page = "query($after: String) { sessions(first: 1, after: $after) { pageInfo { endCursor } nodes { id } } }";
    let (status, _, first) = post(&s2, Some(&coach), page, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let cursor = first["data"]["sessions"]["pageInfo"]["endCursor"].clone();
    assert!(cursor.is_string(), "{first}");
    let (status, _, next) = post(&s1, Some(&coach), page, json!({ "after": cursor })).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert!(next.get("errors").is_none(), "{next}");
    assert_ne!(next["data"]["sessions"]["nodes"], first["data"]["sessions"]["nodes"], "the next page");

    // The AI's limit (3 a minute: a token every 20 seconds) holds across both servers.
    let viewer = "{ viewer { id role } }";
    for (i, server) in [&s2, &s1, &s2].into_iter().enumerate() {
        let (status, _, body) = post(server, Some(&ai), viewer, json!({})).await;
        assert_eq!(status, StatusCode::OK, "request {i}: {body}");
        assert_eq!(body["data"]["viewer"]["role"], "AI_AGENT", "{body}");
    }
    for server in [&s1, &s2] {
        let (status, retry, body) = post(server, Some(&ai), viewer, json!({})).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body}");
        assert!(retry.as_deref().is_some_and(|r| r.parse::<u64>().is_ok_and(|s| (1..=20).contains(&s))), "{retry:?}");
    }
    drop(owner);
}

async fn app_scalar(conn: &sea_orm::DatabaseConnection, sql: &str) -> String {
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, sql.to_owned()))
        .await
        .expect(sql)
        .expect("a row");
    row.try_get_by_index::<String>(0).expect("text")
}
