//! What a refusal of the GraphQL perimeter costs the server (issue 9: each under 50 ms of
//! server work, no SQL). Drives the real router in process (no network noise) on the demo
//! data (SQLite) and prints, for each limit, the median and p99 time of a request just
//! over it, with the time of a normal query for comparison.
//!
//! `cargo bench --bench refusals` (release build); `BENCH_ITERATIONS=N` to change the count.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use common::{Backend, TestApp, gql_request, send_to};
use serde_json::{Value, json};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn post(token: &str, body: Value) -> Request<Body> {
    Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .expect("request")
}

/// A case: its name, the code it must be answered with, and a request builder.
type Case<'a> = (&'static str, Option<&'static str>, Box<dyn Fn() -> Request<Body> + 'a>);

fn cases(token: &str) -> Vec<Case<'_>> {
    let t = token.to_owned();
    let q = move |query: String| {
        let t = t.clone();
        move || gql_request(&t, &query, json!({}))
    };
    let aliases: Vec<String> = (0..16).map(|i| format!("a{i}: viewer {{ id }}")).collect();
    let flood_one = "me { sessions(first: 100) { nodes { id scheduledAt status summary approvedInsights { id body approvedAt } evidencePacks { id level content } } } actionItems(first: 100) { nodes { id title dueOn completedAt } } }";
    let flood: Vec<String> = (0..15).map(|i| format!("a{i}: {flood_one}")).collect();
    let deep = format!(
        "{{ __schema {{ queryType {{ fields {{ type {{ {}name{} }} }} }} }} }}",
        "ofType { ".repeat(12),
        " }".repeat(12)
    );
    let t2 = token.to_owned();
    let t3 = token.to_owned();
    vec![
        ("normal query (viewer)", None, Box::new(q("{ viewer { id role } }".into()))),
        ("aliases: 16", Some("TOO_MANY_ALIASES"), Box::new(q(format!("{{ {} }}", aliases.join(" "))))),
        (
            "directives: 51",
            Some("TOO_MANY_DIRECTIVES"),
            Box::new(q(format!("{{ viewer {{ id }} {} }}", "__typename @include(if: true) ".repeat(51)))),
        ),
        ("depth: 17", Some("QUERY_TOO_DEEP"), Box::new(q(deep))),
        (
            "document: 32 KiB + 1",
            Some("DOCUMENT_TOO_LARGE"),
            Box::new(q(format!("{{ viewer {{ id }} }}\n#{}", "x".repeat(32 * 1024 - 18)))),
        ),
        ("tokens: 5,001", Some("TOO_MANY_TOKENS"), Box::new(q(format!("{{ viewer {{ id }} {}}}", "a ".repeat(4_995))))),
        ("first: 101", Some("PAGE_TOO_LARGE"), Box::new(q("{ coachees(first: 101) { nodes { id } } }".into()))),
        ("cost: coachee flood", Some("QUERY_TOO_COMPLEX"), Box::new(q(format!("{{ {} }}", flood.join(" "))))),
        ("parse error", Some("GRAPHQL_PARSE_FAILED"), Box::new(q("{ viewer { id }".into()))),
        (
            "batch of 30",
            Some("BATCHING_NOT_SUPPORTED"),
            Box::new(move || post(&t2, Value::Array(vec![json!({ "query": "{ viewer { id } }" }); 30]))),
        ),
        (
            "unknown persisted hash",
            Some("PERSISTED_QUERY_NOT_FOUND"),
            Box::new(move || {
                post(&t3, json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "0".repeat(64) } } }))
            }),
        ),
    ]
}

fn main() {
    let iterations = std::env::var("BENCH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let app = TestApp::start(Backend::Sqlite).await.expect("app");
        let token = app.session_for("coachee1@acme.test").await.token;
        println!("\nSQLite, demo data, {iterations} requests per case (in-process router; server time)");
        println!("{:<26} {:>10} {:>10} {:>8}  code", "case", "p50 µs", "p99 µs", "stmts");
        for (name, code, request) in cases(&token) {
            for _ in 0..20 {
                let res = send_to(&app.state, request()).await;
                assert_eq!(res.error_code(), code, "{name}: {}", res.body);
            }
            let before = app.statements.load(Ordering::SeqCst);
            send_to(&app.state, request()).await;
            let statements = app.statements.load(Ordering::SeqCst) - before;
            let mut times = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let req = request();
                let t = Instant::now();
                std::hint::black_box(send_to(&app.state, req).await);
                times.push(t.elapsed());
            }
            times.sort();
            println!(
                "{:<26} {:>10.0} {:>10.0} {:>8}  {}",
                name,
                percentile(&times, 0.50).as_secs_f64() * 1e6,
                percentile(&times, 0.99).as_secs_f64() * 1e6,
                statements,
                code.unwrap_or("-")
            );
        }
    });
}
