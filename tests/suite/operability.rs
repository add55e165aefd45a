//! Running coachgraph in production (issue 10): start-up errors that name their cause and
//! fix, a graceful shutdown, request ids, logs, `/metrics`, CORS and each command's flags.
//! What only a process shows runs the real binary (`tests/common/process.rs`).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use coachgraph::app::HttpSettings;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::process::{ScratchDir, ServerProcess, run_to_exit};
use crate::common::*;

const LONG_SECRET: &str = "an-operator-chosen-secret-of-more-than-32-bytes";

fn exits_with(dir: &ScratchDir, args: &[&str], envs: &[(&str, &str)], needles: &[&str]) {
    let (status, output) = run_to_exit(dir, args, envs);
    assert!(!status.success(), "{args:?} {envs:?} should fail:\n{output}");
    assert!(!output.contains("internal error"), "the cause, not `internal error`:\n{output}");
    for needle in needles {
        assert!(output.contains(needle), "{needle:?} missing from:\n{output}");
    }
}

// --- start-up errors ---------------------------------------------------------------------

#[test]
fn production_mode_without_a_secret_says_which_setting_and_how_to_make_one() {
    let dir = ScratchDir::new();
    let db = dir.sqlite_url();
    let envs = [("COACHGRAPH_MODE", "production"), ("DATABASE_URL", db.as_str())];
    exits_with(&dir, &["serve"], &envs, &["COACHGRAPH_JWT_SECRET", "openssl rand"]);
}

#[test]
fn a_short_secret_is_refused_with_its_length_and_the_minimum() {
    let dir = ScratchDir::new();
    let db = dir.sqlite_url();
    let envs = [("COACHGRAPH_JWT_SECRET", "short"), ("DATABASE_URL", db.as_str())];
    exits_with(&dir, &[], &envs, &["COACHGRAPH_JWT_SECRET is 5 bytes", "at least 32 bytes"]);
}

#[test]
fn production_mode_on_the_demo_data_refuses_and_says_to_use_a_new_database() {
    let dir = ScratchDir::new();
    let db = dir.sqlite_url();
    let (status, output) = run_to_exit(&dir, &["seed-demo"], &[("DATABASE_URL", db.as_str())]);
    assert!(status.success(), "{output}");
    let envs =
        [("COACHGRAPH_MODE", "production"), ("DATABASE_URL", db.as_str()), ("COACHGRAPH_JWT_SECRET", LONG_SECRET)];
    exits_with(&dir, &["serve"], &envs, &["demo data", "new database"]);
}

#[test]
fn a_port_in_use_is_named_with_the_setting_that_moves_it() {
    let dir = ScratchDir::new();
    let db = dir.sqlite_url();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let envs = [("DATABASE_URL", db.as_str()), ("COACHGRAPH_BIND", addr.as_str())];
    exits_with(&dir, &["serve"], &envs, &[&format!("cannot listen on {addr}"), "COACHGRAPH_BIND"]);
}

#[tokio::test]
async fn a_superuser_database_url_is_refused_with_the_role_to_use_instead() {
    let Some(pg) = create_pg_database().await else { return };
    let dir = ScratchDir::new();
    let owner = pg.owner_url();
    let envs = [("DATABASE_URL", owner.as_str()), ("MIGRATION_DATABASE_URL", owner.as_str())];
    exits_with(&dir, &["serve"], &envs, &["refusing to serve as database role \"postgres\"", "coachgraph_app"]);
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let dir = ScratchDir::new();
    let port = crate::common::process::free_port();
    let url = format!("postgres://coachgraph_app:hunter2-secret@127.0.0.1:{port}/nowhere");
    exits_with(
        &dir,
        &["migrate"],
        &[("DATABASE_URL", url.as_str())],
        &["cannot connect to the database", "DATABASE_URL"],
    );
    let (_, output) = run_to_exit(&dir, &["migrate"], &[("DATABASE_URL", url.as_str())]);
    assert!(!output.contains("hunter2"), "the password stays out of the message:\n{output}");
}

// --- flags -------------------------------------------------------------------------------

fn help_of(args: &[&str]) -> String {
    let dir = ScratchDir::new();
    let (status, output) = run_to_exit(&dir, args, &[]);
    assert!(status.success(), "{output}");
    output
}

#[test]
fn each_command_help_shows_its_own_flags_only() {
    let serve = help_of(&["serve", "--help"]);
    for flag in [
        "--pool-size",
        "--max-body-bytes",
        "--request-timeout-ms",
        "--statement-timeout-ms",
        "--trusted-proxies",
        "--cors-origins",
        "--shutdown-grace-secs",
        "--database-url",
    ] {
        assert!(serve.contains(flag), "serve --help lacks {flag}:\n{serve}");
    }
    let migrate = help_of(&["migrate", "--help"]);
    assert!(migrate.contains("--database-url"), "{migrate}");
    let export = help_of(&["export-schema", "--help"]);
    assert!(export.contains("--out-dir"), "{export}");
    for (command, help) in [("migrate", &migrate), ("export-schema", &export)] {
        for server_flag in ["--bind", "--pool-size", "--max-cost", "--cors-origins", "--jwt-secret"] {
            assert!(!help.contains(server_flag), "{command} --help shows the server's {server_flag}:\n{help}");
        }
    }
    assert!(!export.contains("--database-url"), "export-schema needs no database:\n{export}");
    let top = help_of(&["--help"]);
    assert!(top.contains("--log-format") && top.contains("migrate"), "{top}");
}

#[test]
fn a_wildcard_or_a_path_is_not_a_cors_origin() {
    use clap::Parser;
    for bad in ["*", "https://*.example.com", "https://app.example.com/path", "app.example.com"] {
        let parsed = coachgraph::config::Cli::try_parse_from(["coachgraph", "--cors-origins", bad]);
        assert!(parsed.is_err(), "{bad} accepted");
    }
    let cli = coachgraph::config::Cli::try_parse_from([
        "coachgraph",
        "serve",
        "--cors-origins",
        "https://Dashboard.example.com/,http://localhost:5173",
        "--pool-size",
        "4",
        "--max-body-bytes",
        "1000",
    ])
    .expect("valid");
    let config = cli.serve_config();
    assert_eq!(config.cors_origins, ["https://dashboard.example.com", "http://localhost:5173"]);
    assert_eq!(config.pool_size, 4);
    assert_eq!(HttpSettings::from_config(&config).max_body_bytes, 1000);
}

#[tokio::test]
async fn the_pool_size_setting_bounds_the_postgresql_pool() {
    let Some(pg) = create_pg_database().await else { return };
    let db = coachgraph::db::Db::connect_with(&pg.owner_url(), None, Some(3)).await.expect("pool");
    assert_eq!(db.pool_stats().max, 3);
}

// --- client disconnects -------------------------------------------------------------------

/// The state and last statement of the pool's backends (the application role's), seen from
/// the owner's connection.
async fn app_backends(owner: &DatabaseConnection) -> Vec<(String, String)> {
    let sql = format!(
        "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() AND usename = '{}'",
        migrations::APP_ROLE
    );
    owner
        .query_all_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, sql))
        .await
        .expect("pg_stat_activity")
        .iter()
        .map(|r| (r.try_get_by_index(0).unwrap_or_default(), r.try_get_by_index(1).unwrap_or_default()))
        .collect()
}

/// A one-connection pool on a migrated database (so the next request gets the very
/// connection a dropped request had), and the owner's connection to watch it.
async fn one_connection_pool() -> Option<(PgDatabase, DatabaseConnection, coachgraph::db::Db)> {
    let pg = create_pg_database().await?;
    let owner = Database::connect(pg.owner_url()).await.expect("owner");
    migrate(&owner).await;
    let db = coachgraph::db::Db::connect_with(&pg.app_url(), None, Some(1)).await.expect("pool");
    db.ping().await.expect("ping");
    Some((pg, owner, db))
}

/// Polls `step` by hand and drops it (its client disconnected) once the pool's backend shows
/// `state` after `statement`: PostgreSQL has run the statement and its answer is unread.
/// Returns false if the step got past that point in one poll.
async fn drop_when_backend_shows<F: Future>(owner: &DatabaseConnection, step: F, state: &str, statement: &str) -> bool {
    let mut step = std::pin::pin!(step);
    for _ in 0..200 {
        if futures_util::poll!(step.as_mut()).is_ready() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        if app_backends(owner).await.iter().any(|(s, q)| s == state && q == statement) {
            return true;
        }
    }
    false
}

/// Runs `attempt` (a request dropped at one point, see [`drop_when_backend_shows`]) until it
/// catches that point, at most 20 times: an attempt that got past it in one poll is tried again.
async fn until_caught(mut attempt: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..20 {
        if attempt().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Waits (up to 2 s) for the pool's backends to settle as `settled` says, and returns them.
async fn settled_backends(
    owner: &DatabaseConnection,
    settled: impl Fn(&(String, String)) -> bool,
) -> Vec<(String, String)> {
    let mut backends = app_backends(owner).await;
    for _ in 0..100 {
        if backends.iter().all(&settled) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        backends = app_backends(owner).await;
    }
    backends
}

#[tokio::test]
async fn a_request_dropped_while_its_transaction_begins_leaves_no_transaction_open_on_postgres() {
    let Some((_pg, owner, db)) = one_connection_pool().await else { return };
    let caught = until_caught(async || {
        let tx = db.begin(coachgraph::db::DbScope::ANONYMOUS);
        drop_when_backend_shows(&owner, tx.conn(), "idle in transaction", "BEGIN").await
    })
    .await;
    assert!(caught, "never saw the request's BEGIN in flight");
    // The connection goes back to the pool out of any transaction.
    let backends = settled_backends(&owner, |(state, _)| state == "idle").await;
    assert!(
        backends.iter().all(|(state, _)| state == "idle"),
        "a pooled connection was left inside the dropped request's transaction: {backends:?}"
    );
    // And the next request's transaction is its own.
    let next = db.begin(coachgraph::db::DbScope::ANONYMOUS);
    let started_with_it = next
        .conn()
        .await
        .expect("next transaction")
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT now() > statement_timestamp() - interval '1 second'",
        ))
        .await
        .expect("now")
        .and_then(|r| r.try_get_by_index::<bool>(0).ok());
    assert_eq!(started_with_it, Some(true), "the transaction began with this request, not before it");
    next.commit().await.expect("commit");
}

#[tokio::test]
async fn a_request_dropped_while_it_commits_sends_no_rollback_after_its_commit_on_postgres() {
    let Some((_pg, owner, db)) = one_connection_pool().await else { return };
    let caught = until_caught(async || {
        let tx = db.begin(coachgraph::db::DbScope::ANONYMOUS);
        drop(tx.conn().await.expect("open"));
        drop_when_backend_shows(&owner, tx.commit(), "idle", "COMMIT").await
    })
    .await;
    assert!(caught, "never saw the request's COMMIT in flight");
    // The pool's ping on release sends no statement: the last one the backend ran is the
    // COMMIT, not a ROLLBACK queued behind it (which PostgreSQL answers with a warning).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let backends = settled_backends(&owner, |(state, _)| state == "idle").await;
    assert_eq!(backends, [("idle".to_owned(), "COMMIT".to_owned())]);
}

async fn a_body_over_the_configured_limit_is_refused_413(app: &TestApp) {
    let settings = HttpSettings { max_body_bytes: 1_000, ..HttpSettings::default() };
    let state = app.state.clone().with_settings(settings).expect("state");
    let query = format!("{{ me {{ id }} }} # {}", "x".repeat(2_000));
    let res = send_to(&state, gql_request("token", &query, json!({}))).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.body);
    assert_eq!(res.error_code(), Some("PAYLOAD_TOO_LARGE"), "{}", res.body);
}
both_backends!(a_body_over_the_configured_limit_is_refused_413, a_body_over_the_configured_limit_is_refused_413);

// --- request ids -------------------------------------------------------------------------

fn request_id_of(res: &Response) -> String {
    res.headers.get("x-request-id").and_then(|v| v.to_str().ok()).expect("x-request-id").to_owned()
}

async fn every_response_carries_a_request_id_kept_from_the_client_when_well_formed(app: &TestApp) {
    let health = app.send(Request::get("/healthz").body(Body::empty()).expect("request")).await;
    let made = request_id_of(&health);
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "a new id is a UUID: {made}");

    let token = app.session_for("coach1@acme.test").await.token;
    let with_id = |id: &str| {
        Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header("x-request-id", id)
            .body(Body::from(json!({ "query": "{ me { id } }" }).to_string()))
            .expect("request")
    };
    let res = app.send(with_id("lb-7f3a.42")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(request_id_of(&res), "lb-7f3a.42");
    // A malformed id (spaces and quotes, as a forged log line would have) is replaced.
    let res = app.send(with_id("x\" status=200 forged")).await;
    let replaced = request_id_of(&res);
    assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{replaced}");
    // Refusals before any credential carry one too.
    let res = app.send(Request::post("/graphql").body(Body::from("{")).expect("request")).await;
    assert!(res.status.is_client_error());
    assert!(!request_id_of(&res).is_empty());
}
both_backends!(
    every_response_carries_a_request_id_kept_from_the_client_when_well_formed,
    every_response_carries_a_request_id_kept_from_the_client_when_well_formed
);

async fn an_internal_error_names_its_request_id_and_nothing_else(app: &TestApp) {
    use sea_orm::ConnectionTrait;
    let coachee = app.session_for("coachee1@acme.test").await;
    app.owner.execute_unprepared("ALTER TABLE goals RENAME TO goals_away").await.expect("rename");
    let req = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", coachee.token))
        .header("x-request-id", "incident-probe-1")
        .body(Body::from(json!({ "query": "{ me { goals { id } } }" }).to_string()))
        .expect("request");
    let res = app.send(req).await;
    app.owner.execute_unprepared("ALTER TABLE goals_away RENAME TO goals").await.expect("rename back");
    let error = res.body["errors"]
        .as_array()
        .and_then(|errors| errors.iter().find(|e| e["extensions"]["code"] == "INTERNAL"))
        .unwrap_or_else(|| panic!("an INTERNAL error: {}", res.body));
    assert_eq!(error["extensions"]["requestId"], "incident-probe-1", "{}", res.body);
    assert!(!res.body.to_string().contains("goals_away"), "no SQL text: {}", res.body);
}
both_backends!(
    an_internal_error_names_its_request_id_and_nothing_else,
    an_internal_error_names_its_request_id_and_nothing_else
);

// --- metrics -----------------------------------------------------------------------------

async fn metrics_text(app: &TestApp) -> String {
    let res = app.router();
    let response = tower::ServiceExt::oneshot(res, Request::get("/metrics").body(Body::empty()).expect("request"))
        .await
        .expect("router");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// The value of the sample whose line starts with `prefix` (0 when absent).
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn metrics_move_after_traffic(app: &TestApp) {
    let before = metrics_text(app).await;
    let coachee = app.session_for("coachee1@acme.test").await;
    let res = app.post(&Auth::Bearer(coachee.token.clone()), "query Dashboard { me { id } }", json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    // A wrong password, and a field outside the coachee's schema (a denial).
    let login = "mutation { login(email: \"coach1@acme.test\", password: \"not-the-password\") { token } }";
    let res = app.post(&Auth::None, login, json!({})).await;
    assert_eq!(res.error_code(), Some("INVALID_CREDENTIALS"), "{}", res.body);
    let res =
        app.post(&Auth::Bearer(coachee.token.clone()), "{ auditEvents(first: 1) { nodes { id } } }", json!({})).await;
    assert!(res.body["errors"][0]["message"].is_string(), "{}", res.body);
    let after = metrics_text(app).await;

    let moved = |prefix: &str| {
        let (b, a) = (sample(&before, prefix), sample(&after, prefix));
        assert!(a > b, "{prefix}: {b} -> {a}\n{after}");
    };
    moved("coachgraph_requests_total{operation=\"Dashboard\",outcome=\"ok\"}");
    moved("coachgraph_login_failures_total");
    moved("coachgraph_errors_total{code=\"INVALID_CREDENTIALS\"}");
    moved("coachgraph_denials_total{reason=\"FIELD_NOT_IN_SCHEMA\"");
    moved("coachgraph_request_duration_seconds_count");
    moved("coachgraph_statements_per_request_count");
    moved("coachgraph_statements_per_request_sum");
    assert!(after.contains("coachgraph_db_pool_connections{state=\"idle\"}"), "{after}");
    assert!(after.contains("coachgraph_db_pool_connections{state=\"waiting\"} 0"), "{after}");
    assert!(after.contains("coachgraph_rate_limited_total"), "{after}");
    // Nothing personal: no email, no token.
    assert!(!after.contains("acme.test") && !after.contains(&coachee.token), "{after}");
}
both_backends!(metrics_move_after_traffic, metrics_move_after_traffic);

async fn rate_limit_refusals_are_counted(app: &TestApp) {
    use coachgraph::identity::credential::CredentialGuard;
    use coachgraph::identity::password::Hashing;
    let before = metrics_text(app).await;
    // One hashing worker, held, and no room to wait: the login is refused SERVER_BUSY.
    let mut state = app.state.clone();
    state.credentials = std::sync::Arc::new(CredentialGuard::new(Hashing::new(1, 0), 100));
    let held = state.credentials.hashing.occupy().await;
    let login = format!("mutation {{ login(email: \"coach1@acme.test\", password: \"{DEMO_PASSWORD}\") {{ token }} }}");
    let req = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "query": login }).to_string()))
        .expect("request");
    let res = send_to(&state, req).await;
    drop(held);
    assert_eq!(res.error_code(), Some("SERVER_BUSY"), "{}", res.body);
    let after = metrics_text(app).await;
    let prefix = "coachgraph_rate_limited_total{code=\"SERVER_BUSY\"}";
    assert!(sample(&after, prefix) > sample(&before, prefix), "{after}");
}
both_backends!(rate_limit_refusals_are_counted, rate_limit_refusals_are_counted);

// --- CORS --------------------------------------------------------------------------------

const DASHBOARD: &str = "https://dashboard.example.com";

async fn cors_answers_preflight_for_listed_origins_only_and_never_with_a_wildcard(app: &TestApp) {
    let settings = HttpSettings { cors_origins: vec![DASHBOARD.to_owned()], ..HttpSettings::default() };
    let state = app.state.clone().with_settings(settings).expect("state");
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/graphql")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type,x-csrf-token")
            .body(Body::empty())
            .expect("request")
    };
    let res = send_to(&state, preflight(DASHBOARD)).await;
    assert!(res.status.is_success(), "{:?}", res.status);
    assert_eq!(res.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).expect("allow-origin"), DASHBOARD);
    assert_eq!(res.headers.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).expect("credentials"), "true");
    let allowed_headers = res.headers.get(header::ACCESS_CONTROL_ALLOW_HEADERS).expect("headers").to_str().expect("s");
    assert!(allowed_headers.contains("x-csrf-token"), "{allowed_headers}");

    let res = send_to(&state, preflight("https://evil.example")).await;
    assert!(res.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{:?}", res.headers);

    // The dashboard signs in from its origin: its POST passes the origin check, another's does not.
    let login = json!({ "query": format!(
        "mutation {{ login(email: \"coach1@acme.test\", password: \"{DEMO_PASSWORD}\") {{ viewer {{ id }} }} }}"
    ) })
    .to_string();
    let post = |origin: &str| {
        Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::HOST, "api.example.com")
            .header(header::ORIGIN, origin)
            .body(Body::from(login.clone()))
            .expect("request")
    };
    let res = send_to(&state, post(DASHBOARD)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(res.body["data"]["login"]["viewer"]["id"].is_string(), "{}", res.body);
    assert_eq!(res.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).expect("allow-origin"), DASHBOARD);
    let res = send_to(&state, post("https://evil.example")).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    assert_eq!(res.error_code(), Some("CSRF_REJECTED"));

    // Without configured origins: no CORS headers at all.
    let res = app.send(preflight(DASHBOARD)).await;
    assert!(res.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{:?}", res.headers);
}
both_backends!(
    cors_answers_preflight_for_listed_origins_only_and_never_with_a_wildcard,
    cors_answers_preflight_for_listed_origins_only_and_never_with_a_wildcard
);

// --- the process: logs and shutdown --------------------------------------------------------

async fn login_over_http(server: &ServerProcess, email: &str) -> reqwest::Response {
    let query = format!("mutation Login {{ login(email: \"{email}\", password: \"{DEMO_PASSWORD}\") {{ token }} }}");
    reqwest::Client::new()
        .post(server.url("/graphql"))
        .header("content-type", "application/json")
        .body(json!({ "query": query }).to_string())
        .send()
        .await
        .expect("login request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_login_answers_it_then_exits_zero() {
    let dir = ScratchDir::new();
    let db = dir.sqlite_url();
    let envs = [("DATABASE_URL", db.as_str()), ("RUST_LOG", "info,coachgraph::identity=debug")];
    // A fresh file is seeded only at the default path: seed it explicitly.
    let (status, output) = run_to_exit(&dir, &["seed-demo"], &[("DATABASE_URL", db.as_str())]);
    assert!(status.success(), "{output}");
    let mut server = ServerProcess::start(&dir, &envs).await;
    let url = server.url("/graphql");
    let login = tokio::spawn({
        let query = format!(
            "mutation Login {{ login(email: \"coach1@acme.test\", password: \"{DEMO_PASSWORD}\") {{ token }} }}"
        );
        async move {
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(json!({ "query": query }).to_string())
                .send()
                .await
        }
    });
    // The login is in flight once the server has begun hashing; SIGTERM then.
    server.wait_for_output("credential check started", Duration::from_secs(30)).await;
    server.signal("TERM");
    let res = login.await.expect("task").expect("an answer, not a cut connection");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
    let status = server.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status}:\n{}", server.output());
    let output = server.output();
    let draining = output.find("shutting down").expect("the stop is logged");
    let answered = output.find("operation=Login").or_else(|| output.find("operation=\"Login\"")).expect("access line");
    assert!(draining < answered, "the login was answered after the signal:\n{output}");
    assert!(output.contains("coachgraph stopped"), "{output}");
    // After the signal, nothing new is accepted.
    assert!(reqwest::get(server.url("/healthz")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_one_access_line_per_request_with_its_id_and_no_personal_data() {
    let dir = ScratchDir::new();
    let db = dir.sqlite_url();
    let (status, output) = run_to_exit(&dir, &["seed-demo"], &[("DATABASE_URL", db.as_str())]);
    assert!(status.success(), "{output}");
    let envs = [("DATABASE_URL", db.as_str()), ("COACHGRAPH_LOG_FORMAT", "json")];
    let mut server = ServerProcess::start(&dir, &envs).await;
    let res = login_over_http(&server, "coachee1@acme.test").await;
    let token = res.json::<Value>().await.expect("json")["data"]["login"]["token"].as_str().expect("token").to_owned();
    // A field outside the coachee's schema: refused and audited as a denial.
    let res = reqwest::Client::new()
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("x-request-id", "probe-42")
        .body(json!({ "query": "query Peek { auditEvents(first: 1) { nodes { id } } }" }).to_string())
        .send()
        .await
        .expect("query");
    assert_eq!(res.headers().get("x-request-id").expect("id"), "probe-42");
    server.signal("INT");
    assert!(server.wait_exit(Duration::from_secs(30)).await.success());

    let output = server.output();
    let lines: Vec<Value> = output.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty() && lines.len() == output.lines().count(), "every line is JSON:\n{output}");
    let access = lines
        .iter()
        .find(|l| l["message"] == "access" && l["operation"] == "Peek")
        .unwrap_or_else(|| panic!("an access line for Peek:\n{output}"));
    assert_eq!(access["span"]["request_id"], "probe-42", "{access}");
    assert_eq!(access["role"], "COACHEE", "{access}");
    assert!(access["tenant"].as_str().is_some_and(|t| uuid::Uuid::parse_str(t).is_ok()), "{access}");
    assert!(access["status"].is_number() && access["statements"].is_number() && access["duration_ms"].is_number());
    assert_eq!(access["level"], "INFO");
    let denial = lines
        .iter()
        .find(|l| l["message"] == "denied" && l["span"]["request_id"] == "probe-42")
        .unwrap_or_else(|| panic!("the denial at info:\n{output}"));
    assert_eq!(denial["reason"], "FIELD_NOT_IN_SCHEMA", "{denial}");
    assert_eq!(denial["level"], "INFO");
    assert_eq!(lines.iter().filter(|l| l["message"] == "access").count(), 2, "one line per request:\n{output}");
    for personal in ["coachee1@acme.test", token.as_str(), DEMO_PASSWORD] {
        assert!(!output.contains(personal), "{personal} in the logs:\n{output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_to_a_file_or_pipe_carry_no_colour_codes() {
    let dir = ScratchDir::new();
    let db = dir.sqlite_url();
    let mut server = ServerProcess::start(&dir, &[("DATABASE_URL", db.as_str())]).await;
    let _ = reqwest::get(server.url("/graphql?query=%7B__typename%7D")).await.expect("request");
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).await.success());
    let output = server.output();
    assert!(output.contains("access"), "{output}");
    assert!(!output.contains('\u{1b}'), "ANSI escape codes in piped logs:\n{output}");
}

// --- the deploy files ----------------------------------------------------------------------

#[test]
fn the_deploy_example_sets_only_settings_the_server_knows() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let help = help_of(&["serve", "--help"]);
    let example = std::fs::read_to_string(root.join("deploy/coachgraph.env.example")).expect("env example");
    let unit = std::fs::read_to_string(root.join("deploy/coachgraph.service")).expect("unit");
    let mut names: Vec<&str> = example
        .lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    names.extend(
        unit.lines().filter_map(|l| l.strip_prefix("Environment=")).filter_map(|kv| kv.split_once('=')).map(|(k, _)| k),
    );
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        assert!(help.contains(&format!("[env: {name}")), "{name} is not a setting of `serve`:\n{help}");
    }
    assert!(unit.contains("ExecStart=/usr/local/bin/coachgraph serve"), "{unit}");
    assert!(example.contains("COACHGRAPH_MODE=production"), "{example}");
}

#[tokio::test]
async fn production_serves_metrics_only_on_their_own_listener() {
    use clap::Parser;
    let app = TestApp::start(Backend::Sqlite).await.expect("app");
    let settings_of = |args: &[&str]| {
        let cli = coachgraph::config::Cli::try_parse_from(std::iter::once("coachgraph").chain(args.iter().copied()))
            .expect("arguments");
        HttpSettings::from_config(&cli.serve_config())
    };
    assert!(settings_of(&[]).metrics_on_api, "development: on the API's address");
    assert!(!settings_of(&["--metrics-bind", "127.0.0.1:9464"]).metrics_on_api);
    let production = settings_of(&["--mode", "production"]);
    assert!(!production.metrics_on_api);
    let state = app.state.clone().with_settings(production).expect("state");
    let res = send_to(&state, Request::get("/metrics").body(Body::empty()).expect("request")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
}

async fn a_body_trickled_in_past_the_request_timeout_is_cut_off(app: &TestApp) {
    let settings = HttpSettings { request_timeout: Duration::from_millis(300), ..HttpSettings::default() };
    let state = app.state.clone().with_settings(settings).expect("state");
    use futures_util::StreamExt;
    // One byte, then nothing more, ever.
    let chunks = futures_util::stream::once(async { Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{")) })
        .chain(futures_util::stream::pending());
    let req = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/graphql-response+json")
        .header(header::AUTHORIZATION, "Bearer whatever")
        .body(Body::from_stream(chunks))
        .expect("request");
    let res = tokio::time::timeout(Duration::from_secs(10), send_to(&state, req)).await.expect("answered in time");
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
    assert_eq!(res.error_code(), Some("REQUEST_TIMEOUT"), "{}", res.body);
}
both_backends!(
    a_body_trickled_in_past_the_request_timeout_is_cut_off,
    a_body_trickled_in_past_the_request_timeout_is_cut_off
);
