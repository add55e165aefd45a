//! The execution perimeter (issue 9, "hostile traffic costs nothing"): every limit on a
//! GraphQL document is on by default and configurable; a request just under a limit runs,
//! one just over is refused with its code before a single SQL statement, and the server
//! answers a normal query right after. Also: cost multiplies by list size, responses are
//! capped, requests time out, only POST runs mutations, and production mode turns
//! introspection and the playground off.
//!
//! No timing here (project rule): `cargo bench --bench refusals` prints the server time of
//! each refusal.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use clap::Parser;
use coachgraph::app::{AppState, HttpSettings};
use coachgraph::graphql::perimeter::{self, Limits};
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

const VIEWER: &str = "{ viewer { id role } }";

/// The server of `app` with other settings (same database, same statement counter).
pub(crate) fn with(app: &TestApp, change: impl FnOnce(&mut HttpSettings)) -> AppState {
    let mut settings = (*app.state.settings).clone();
    change(&mut settings);
    app.state.clone().with_settings(settings).expect("settings")
}

/// Sends `request` and checks it was refused with `code` without running any SQL.
pub(crate) async fn refused_before_sql(
    app: &TestApp,
    state: &AppState,
    request: Request<Body>,
    code: &str,
) -> Response {
    let before = app.statements.load(Ordering::SeqCst);
    let res = send_to(state, request).await;
    let ran = app.statements.load(Ordering::SeqCst) - before;
    assert_eq!(res.error_code(), Some(code), "{}", res.body);
    assert_eq!(ran, 0, "{code}: the refusal ran {ran} SQL statements");
    assert!(res.body["data"].is_null(), "{}", res.body);
    let message = res.body["errors"][0]["message"].as_str().expect("a message");
    assert!(!message.contains("SELECT") && !message.contains("panicked"), "{message}");
    res
}

/// The query runs (no error at all).
pub(crate) async fn runs(state: &AppState, token: &str, query: &str, variables: Value) -> Value {
    let res = send_to(state, gql_request(token, query, variables)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(res.body["errors"].is_null(), "{}", res.body);
    res.body
}

/// The server answers a normal query right after a refusal.
pub(crate) async fn still_answers(state: &AppState, token: &str) {
    let body = runs(state, token, VIEWER, json!({})).await;
    assert!(body["data"]["viewer"]["id"].is_string(), "{body}");
}

fn aliases(n: usize) -> String {
    let fields: Vec<String> = (0..n).map(|i| format!("a{i}: viewer {{ id }}")).collect();
    format!("{{ {} }}", fields.join(" "))
}

async fn an_operation_with_sixteen_aliases_is_refused_before_any_statement(app: &TestApp) {
    let token = app.session_for("coach1@acme.test").await.token;
    let state = app.state.clone();
    let body = runs(&state, &token, &aliases(15), json!({})).await;
    assert!(body["data"]["a14"]["id"].is_string(), "{body}");
    let res = refused_before_sql(app, &state, gql_request(&token, &aliases(16), json!({})), "TOO_MANY_ALIASES").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    still_answers(&state, &token).await;
    // Configurable: at 3, four aliases are too many.
    let three = with(app, |s| s.limits.max_aliases = 3);
    runs(&three, &token, &aliases(3), json!({})).await;
    refused_before_sql(app, &three, gql_request(&token, &aliases(4), json!({})), "TOO_MANY_ALIASES").await;
}
both_backends!(
    an_operation_with_sixteen_aliases_is_refused_before_any_statement,
    an_operation_with_sixteen_aliases_is_refused_before_any_statement
);

fn directives(n: usize) -> String {
    format!("{{ viewer {{ id }} {} }}", "__typename @include(if: true) ".repeat(n))
}

async fn an_operation_with_fifty_one_directives_is_refused_before_any_statement(app: &TestApp) {
    let token = app.session_for("coach1@acme.test").await.token;
    let state = app.state.clone();
    runs(&state, &token, &directives(50), json!({})).await;
    refused_before_sql(app, &state, gql_request(&token, &directives(51), json!({})), "TOO_MANY_DIRECTIVES").await;
    still_answers(&state, &token).await;
}
both_backends!(
    an_operation_with_fifty_one_directives_is_refused_before_any_statement,
    an_operation_with_fifty_one_directives_is_refused_before_any_statement
);

/// `{ __schema { queryType { fields { type { ofType { ... name } } } } } }`: depth `depth`.
fn nested(depth: usize) -> String {
    let of_types = depth - 5;
    format!(
        "{{ __schema {{ queryType {{ fields {{ type {{ {}name{} }} }} }} }} }}",
        "ofType { ".repeat(of_types),
        " }".repeat(of_types)
    )
}

async fn a_query_seventeen_levels_deep_is_refused_before_any_statement(app: &TestApp) {
    let token = app.session_for("coach1@acme.test").await.token;
    let state = app.state.clone();
    runs(&state, &token, &nested(16), json!({})).await;
    refused_before_sql(app, &state, gql_request(&token, &nested(17), json!({})), "QUERY_TOO_DEEP").await;
    still_answers(&state, &token).await;
    // Fragments count where they are spread.
    let spread = format!("{{ ...F }} fragment F on Query {}", nested(17));
    refused_before_sql(app, &state, gql_request(&token, &spread, json!({})), "QUERY_TOO_DEEP").await;
    // Absurd nesting never reaches the parser.
    let brackets = format!("{}{}", "{ viewer ".repeat(5_000), "}".repeat(5_000));
    let depth = with(app, |s| s.limits.max_document_bytes = 100_000);
    refused_before_sql(app, &depth, gql_request(&token, &brackets, json!({})), "QUERY_TOO_DEEP").await;
    still_answers(&state, &token).await;
}
both_backends!(
    a_query_seventeen_levels_deep_is_refused_before_any_statement,
    a_query_seventeen_levels_deep_is_refused_before_any_statement
);

/// `{ viewer { id } }` padded with a comment to exactly `bytes` bytes.
fn padded(bytes: usize) -> String {
    let base = "{ viewer { id } }\n#";
    format!("{base}{}", "x".repeat(bytes - base.len()))
}

async fn a_document_one_byte_over_the_size_limit_is_refused_before_any_statement(app: &TestApp) {
    let token = app.session_for("coach1@acme.test").await.token;
    let state = app.state.clone();
    let limit = state.settings.limits.max_document_bytes;
    assert_eq!(limit, 32 * 1024, "the default");
    runs(&state, &token, &padded(limit), json!({})).await;
    refused_before_sql(app, &state, gql_request(&token, &padded(limit + 1), json!({})), "DOCUMENT_TOO_LARGE").await;
    still_answers(&state, &token).await;
}
both_backends!(
    a_document_one_byte_over_the_size_limit_is_refused_before_any_statement,
    a_document_one_byte_over_the_size_limit_is_refused_before_any_statement
);

/// `{ viewer { id } __typename ... }` with exactly `tokens` tokens.
fn tokens(n: usize) -> String {
    format!("{{ viewer {{ id }} {}}}", "__typename ".repeat(n - 6))
}

async fn a_document_one_token_over_the_token_limit_is_refused_before_any_statement(app: &TestApp) {
    let token = app.session_for("coach1@acme.test").await.token;
    let state = with(app, |s| s.limits.max_tokens = 300);
    runs(&state, &token, &tokens(300), json!({})).await;
    refused_before_sql(app, &state, gql_request(&token, &tokens(301), json!({})), "TOO_MANY_TOKENS").await;
    still_answers(&state, &token).await;
    // The default is 5,000.
    assert_eq!(app.state.settings.limits.max_tokens, 5_000);
}
both_backends!(
    a_document_one_token_over_the_token_limit_is_refused_before_any_statement,
    a_document_one_token_over_the_token_limit_is_refused_before_any_statement
);

async fn a_batch_of_operations_is_refused_with_a_json_error_before_any_statement(app: &TestApp) {
    let token = app.session_for("coach1@acme.test").await.token;
    let state = app.state.clone();
    let batch = |n: usize| {
        let ops: Vec<Value> = (0..n).map(|_| json!({ "query": VIEWER })).collect();
        Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(Value::Array(ops).to_string()))
            .expect("request")
    };
    // One operation, not in an array, runs (the request just under "a batch").
    still_answers(&state, &token).await;
    for n in [1, 2, 30] {
        let res = refused_before_sql(app, &state, batch(n), "BATCHING_NOT_SUPPORTED").await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
    }
    still_answers(&state, &token).await;
}
both_backends!(
    a_batch_of_operations_is_refused_with_a_json_error_before_any_statement,
    a_batch_of_operations_is_refused_with_a_json_error_before_any_statement
);

async fn a_page_of_a_hundred_and_one_is_refused_before_any_statement(app: &TestApp) {
    let token = app.session_for("coach1@acme.test").await.token;
    let state = app.state.clone();
    let page = "query($n: Int) { coachees(first: $n) { nodes { id } } }";
    runs(&state, &token, "{ coachees(first: 100) { nodes { id } } }", json!({})).await;
    runs(&state, &token, page, json!({ "n": 100 })).await;
    for (query, vars) in [
        ("{ coachees(first: 101) { nodes { id } } }", json!({})),
        (page, json!({ "n": 101 })),
        ("query($n: Int = 101) { coachees(first: $n) { nodes { id } } }", json!({})),
        ("{ me { sessions(first: -1) { nodes { id } } } }", json!({})),
    ] {
        refused_before_sql(app, &state, gql_request(&token, query, vars), "PAGE_TOO_LARGE").await;
    }
    still_answers(&state, &token).await;
    // Configurable (downwards).
    let ten = with(app, |s| s.limits.max_first = 10);
    runs(&ten, &token, page, json!({ "n": 10 })).await;
    refused_before_sql(app, &ten, gql_request(&token, page, json!({ "n": 11 })), "PAGE_TOO_LARGE").await;
}
both_backends!(
    a_page_of_a_hundred_and_one_is_refused_before_any_statement,
    a_page_of_a_hundred_and_one_is_refused_before_any_statement
);

// --- cost multiplies by list size -------------------------------------------------------

fn workload(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/spec/workloads/{name}.graphql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The playground's own example queries (`playground/src/examples/`; its other examples are
/// the workloads and the golden-answer queries, run elsewhere).
fn playground_queries() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playground/src/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "graphql"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).expect("example")).collect()
}

fn cost(state: &AppState, query: &str) -> u64 {
    let doc = async_graphql::parser::parse_query(query).expect("parses");
    perimeter::cost_of(&doc, &Default::default(), state.schemas.index()).expect("measured")
}

/// A coachee's every session and action item, fifteen times over (the 35 KB query
/// that returned 28 MB, in small): 15 fields at the root, but each of them thousands of rows.
fn coachee_flood() -> String {
    let one = "me { sessions(first: 100) { nodes { id scheduledAt status summary approvedInsights { id body approvedAt } evidencePacks { id level content } } } actionItems(first: 100) { nodes { id title dueOn completedAt } } }";
    let fields: Vec<String> = (0..15).map(|i| format!("a{i}: {one}")).collect();
    format!("{{ {} }}", fields.join(" "))
}

async fn a_query_whose_lists_multiply_beyond_the_cost_limit_is_refused_before_any_statement(app: &TestApp) {
    let token = app.session_for("coachee1@acme.test").await.token;
    let state = app.state.clone();
    let flood = coachee_flood();
    assert!(flood.matches(':').count() <= 15 + 2 * 15, "within the alias limit");
    let res = refused_before_sql(app, &state, gql_request(&token, &flood, json!({})), "QUERY_TOO_COMPLEX").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    still_answers(&state, &token).await;
    // `first` given as a variable counts the same as a literal.
    let by_variable = "query($n: Int) { me { sessions(first: $n) { nodes { id approvedInsights { id } } } } }";
    let small = with(app, |s| s.limits.max_cost = 1_000);
    runs(&small, &token, by_variable, json!({ "n": 10 })).await;
    refused_before_sql(app, &small, gql_request(&token, by_variable, json!({ "n": 100 })), "QUERY_TOO_COMPLEX").await;
    // Just under and just over a configured limit: the coach dashboard at exactly its cost.
    let coach = app.session_for("coach1@acme.test").await.token;
    let dashboard = workload("coach_dashboard");
    let at = cost(&state, &dashboard);
    let exact = with(app, |s| s.limits.max_cost = at);
    runs(&exact, &coach, &dashboard, json!({})).await;
    let below = with(app, |s| s.limits.max_cost = at - 1);
    refused_before_sql(app, &below, gql_request(&coach, &dashboard, json!({})), "QUERY_TOO_COMPLEX").await;
    still_answers(&below, &coach).await;
}
both_backends!(
    a_query_whose_lists_multiply_beyond_the_cost_limit_is_refused_before_any_statement,
    a_query_whose_lists_multiply_beyond_the_cost_limit_is_refused_before_any_statement
);

async fn the_workloads_and_playground_queries_stay_well_under_the_cost_limit_for_every_role(app: &TestApp) {
    let state = app.state.clone();
    let limit = state.settings.limits.max_cost;
    let mut queries: Vec<(String, String)> =
        ["client_app", "coach_dashboard", "exec_report"].iter().map(|w| (w.to_string(), workload(w))).collect();
    let examples = playground_queries();
    assert!(examples.len() >= 2, "the playground's examples: {examples:?}");
    queries.extend(examples.into_iter().enumerate().map(|(i, q)| (format!("playground #{i}"), q)));
    for (name, query) in &queries {
        let c = cost(&state, query);
        assert!(c * 4 <= limit, "{name}: cost {c} is not well under the limit {limit}");
    }
    // And no role is refused any of them by the perimeter (a role may lack fields: that is
    // validation's answer, after the perimeter).
    let perimeter_codes = [
        "QUERY_TOO_COMPLEX",
        "QUERY_TOO_DEEP",
        "TOO_MANY_ALIASES",
        "TOO_MANY_DIRECTIVES",
        "TOO_MANY_TOKENS",
        "DOCUMENT_TOO_LARGE",
        "PAGE_TOO_LARGE",
    ];
    for (email, _) in ROLE_ACCOUNTS {
        let token = app.session_for(email).await.token;
        for (name, query) in &queries {
            let res = send_to(&state, gql_request(&token, query, json!({}))).await;
            let code = res.error_code().unwrap_or("");
            assert!(!perimeter_codes.contains(&code), "{email} {name}: {}", res.body);
        }
    }
    // Each workload runs whole for the role it is written for.
    for (email, name) in [
        ("coachee1@acme.test", "client_app"),
        ("coach1@acme.test", "coach_dashboard"),
        ("exec1@acme.test", "exec_report"),
    ] {
        let token = app.session_for(email).await.token;
        runs(&state, &token, &workload(name), json!({})).await;
    }
}
both_backends!(
    the_workloads_and_playground_queries_stay_well_under_the_cost_limit_for_every_role,
    the_workloads_and_playground_queries_stay_well_under_the_cost_limit_for_every_role
);

// --- response size, timeout --------------------------------------------------------------

async fn a_response_over_the_size_cap_is_replaced_by_a_coded_error_and_the_request_still_commits(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await.token;
    let dashboard = workload("coach_dashboard");
    let full = runs(&app.state, &coach, &dashboard, json!({})).await;
    let size = full.to_string().len();
    // Just under: a cap of the answer's own size lets it through.
    let roomy = with(app, |s| s.max_response_bytes = size);
    runs(&roomy, &coach, &dashboard, json!({})).await;
    let tight = with(app, |s| s.max_response_bytes = size - 1);
    let res = send_to(&tight, gql_request(&coach, &dashboard, json!({}))).await;
    assert_eq!(res.error_code(), Some("RESPONSE_TOO_LARGE"), "{}", res.body);
    assert!(res.body["data"].is_null());
    // The transaction finished normally: a mutation whose answer is too large still happened.
    let tiny = with(app, |s| s.max_response_bytes = 10);
    let res = send_to(&tiny, gql_request(&coach, "mutation { logout }", json!({}))).await;
    assert_eq!(res.error_code(), Some("RESPONSE_TOO_LARGE"), "{}", res.body);
    let after = send_to(&app.state, gql_request(&coach, VIEWER, json!({}))).await;
    assert_eq!(after.error_code(), Some("UNAUTHENTICATED"), "the logout was committed: {}", after.body);
    let other = app.session_for("coach2@acme.test").await.token;
    still_answers(&app.state, &other).await;
    assert_eq!(app.state.settings.max_response_bytes, 4 * 1024 * 1024, "the default");
}
both_backends!(
    a_response_over_the_size_cap_is_replaced_by_a_coded_error_and_the_request_still_commits,
    a_response_over_the_size_cap_is_replaced_by_a_coded_error_and_the_request_still_commits
);

async fn a_request_over_the_timeout_is_a_503_json_error_and_nothing_of_it_is_kept(app: &TestApp) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let s = app.session_for("coach1@acme.test").await;
    let short = with(app, |s| s.request_timeout = std::time::Duration::from_millis(300));
    // Something holds what the request needs, for as long as it likes: on SQLite the one
    // connection, on PostgreSQL the session's row (the logout's UPDATE waits for it).
    let (held_pool, held_row) = match app.backend {
        Backend::Sqlite => {
            // A transaction takes its connection with its first statement.
            let tx = app.state.db.begin(coachgraph::db::DbScope::ANONYMOUS);
            tx.conn().await.expect("begin").execute_unprepared("SELECT 1").await.expect("hold");
            (Some(tx), None)
        }
        Backend::Postgres => {
            let tx = app.owner.begin().await.expect("begin");
            let lock = format!("SELECT id FROM auth_sessions WHERE user_id = '{}' FOR UPDATE", s.user_id);
            tx.execute_unprepared(&lock).await.expect("lock");
            (None, Some(tx))
        }
    };
    let res = send_to(&short, gql_request(&s.token, "mutation { logout }", json!({}))).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
    assert_eq!(res.error_code(), Some("REQUEST_TIMEOUT"), "{}", res.body);
    if let Some(tx) = held_pool {
        tx.rollback().await.expect("release");
    }
    if let Some(tx) = held_row {
        tx.rollback().await.expect("release");
    }
    // Rolled back: the session was not logged out.
    still_answers(&app.state, &s.token).await;
    assert_eq!(app.state.settings.request_timeout, std::time::Duration::from_secs(10), "the default");
}
both_backends!(
    a_request_over_the_timeout_is_a_503_json_error_and_nothing_of_it_is_kept,
    a_request_over_the_timeout_is_a_503_json_error_and_nothing_of_it_is_kept
);

#[tokio::test]
async fn postgres_connections_carry_the_configured_statement_timeout_and_use_generic_plans() {
    use sea_orm::ConnectionTrait;
    let Some(pg) = create_pg_database().await else { return };
    let db = coachgraph::db::Db::connect_with_statement_timeout(
        &pg.owner_url(),
        Some(std::time::Duration::from_millis(1500)),
    )
    .await
    .expect("pool");
    let conn = coachgraph::db::testing::connection(&db);
    let show = |setting: &str| {
        let statement = sea_orm::Statement::from_string(conn.get_database_backend(), format!("SHOW {setting}"));
        async { conn.query_one_raw(statement).await.expect("show").expect("row").try_get_by_index::<String>(0) }
    };
    assert_eq!(show("statement_timeout").await.expect("setting"), "1500ms");
    // Generic plans, so that statements under row-level security are not planned again on
    // every execution.
    assert_eq!(show("plan_cache_mode").await.expect("setting"), "force_generic_plan");
    // The server's configuration: 5 s unless set.
    let cli = coachgraph::config::Cli::try_parse_from(["coachgraph"]).expect("defaults");
    assert_eq!(cli.serve_config().statement_timeout_ms, 5_000);
}

// --- methods -------------------------------------------------------------------------

async fn a_mutation_over_head_is_refused_and_the_session_survives(app: &TestApp) {
    let token = app.session_for("coach1@acme.test").await.token;
    // HEAD is GET without a response body: both carry their operation in the URL.
    for method in [Method::HEAD, Method::GET] {
        let req = Request::builder()
            .method(method.clone())
            .uri("/graphql?query=mutation%20%7B%20logout%20%7D")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request");
        let before = app.statements.load(Ordering::SeqCst);
        let res = app.send(req).await;
        assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED, "{method}: {}", res.body);
        assert_eq!(app.statements.load(Ordering::SeqCst), before, "{method}: no SQL");
        if method == Method::GET {
            assert_eq!(res.error_code(), Some("METHOD_NOT_ALLOWED"), "{}", res.body);
        }
    }
    // A HEAD (or GET) with a body: the body is not read, so it holds no operation; refused
    // before any statement all the same.
    for method in [Method::HEAD, Method::GET] {
        let req = Request::builder()
            .method(method.clone())
            .uri("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(json!({ "query": "mutation { logout }" }).to_string()))
            .expect("request");
        let before = app.statements.load(Ordering::SeqCst);
        let res = app.send(req).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{method}: {}", res.body);
        assert_eq!(app.statements.load(Ordering::SeqCst), before, "{method}: no SQL");
    }
    // The token still works.
    still_answers(&app.state, &token).await;
}
both_backends!(
    a_mutation_over_head_is_refused_and_the_session_survives,
    a_mutation_over_head_is_refused_and_the_session_survives
);

// --- production mode ---------------------------------------------------------------------

fn settings_of(args: &[&str]) -> HttpSettings {
    let cli = coachgraph::config::Cli::try_parse_from(std::iter::once("coachgraph").chain(args.iter().copied()))
        .expect("arguments");
    HttpSettings::from_config(&cli.serve_config())
}

async fn production_mode_turns_introspection_and_the_playground_off(app: &TestApp) {
    let token = app.session_for("coach1@acme.test").await.token;
    let production = app.state.clone().with_settings(settings_of(&["--mode", "production"])).expect("state");
    assert!(!production.settings.limits.introspection && !production.settings.playground);
    let introspection = "{ __schema { queryType { name } } }";
    refused_before_sql(app, &production, gql_request(&token, introspection, json!({})), "INTROSPECTION_DISABLED").await;
    refused_before_sql(
        app,
        &production,
        gql_request(&token, "{ __type(name: \"User\") { name } }", json!({})),
        "INTROSPECTION_DISABLED",
    )
    .await;
    // The schema itself refuses it, whatever the HTTP layer does.
    let schema = production.schemas.for_role(Some(coachgraph::kinds::Role::Coach));
    let direct = schema.execute(introspection).await;
    assert!(!direct.errors.is_empty(), "introspection answered by a production schema");
    still_answers(&production, &token).await;
    let page = send_to(&production, Request::get("/").body(Body::empty()).expect("req")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    // Each can be turned on again; development has both on.
    let opened = app
        .state
        .clone()
        .with_settings(settings_of(&["--mode", "production", "--introspection", "true", "--playground", "true"]))
        .expect("state");
    runs(&opened, &token, introspection, json!({})).await;
    assert_eq!(send_to(&opened, Request::get("/").body(Body::empty()).expect("req")).await.status, StatusCode::OK);
    let development = settings_of(&[]);
    assert!(development.limits.introspection && development.playground);
    assert_eq!(development.limits, Limits::default());
}
both_backends!(
    production_mode_turns_introspection_and_the_playground_off,
    production_mode_turns_introspection_and_the_playground_off
);

async fn a_document_that_does_not_parse_is_refused_before_any_statement(app: &TestApp) {
    let token = app.session_for("coach1@acme.test").await.token;
    let state = app.state.clone();
    for text in ["{ viewer { id }", "secret-looking-text {", "", "{ a(x: \"\\u{0}\") }"] {
        let res = refused_before_sql(app, &state, gql_request(&token, text, json!({})), "GRAPHQL_PARSE_FAILED").await;
        let message = res.body["errors"][0]["message"].as_str().expect("message");
        assert!(message.starts_with("the query is not valid GraphQL"), "{message}");
        assert!(!message.contains("secret-looking") && !message.contains('\n'), "a plain line: {message}");
    }
    let not_json = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from("{not json"))
        .expect("request");
    refused_before_sql(app, &state, not_json, "BAD_REQUEST").await;
    still_answers(&state, &token).await;
}
both_backends!(
    a_document_that_does_not_parse_is_refused_before_any_statement,
    a_document_that_does_not_parse_is_refused_before_any_statement
);
