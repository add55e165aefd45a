//! The three client workloads (`docs/spec/workloads/`) against the demo data, through
//! the real router (in process: no network noise), on SQLite and, when reachable,
//! PostgreSQL. Prints latency percentiles, throughput, SQL statements per request and the
//! process's peak memory.
//!
//! `cargo bench --bench workloads` (release build); `BENCH_ITERATIONS=N` to change the count.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Backend, TestApp};

fn workload(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/spec/workloads/{name}.graphql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

async fn run(backend: Backend, iterations: usize) {
    let Some(app) = TestApp::start(backend).await else {
        println!("{backend:?}: skipped (unreachable)");
        return;
    };
    let cases = [
        ("client_app (coachee1)", "coachee1@acme.test", workload("client_app")),
        ("coach_dashboard (coach1)", "coach1@acme.test", workload("coach_dashboard")),
        ("exec_report (exec1)", "exec1@acme.test", workload("exec_report")),
    ];
    println!("\n{backend:?}, {iterations} requests per workload");
    println!("{:<26} {:>9} {:>9} {:>9} {:>10} {:>6}", "workload", "p50", "p95", "p99", "req/s", "stmts");
    for (name, who, query) in cases {
        let token = app.login(who).await.token;
        for _ in 0..20 {
            let res = app.gql(&token, &query).await;
            assert!(res["errors"].is_null(), "{name}: {res}");
        }
        let before = app.statements.load(Ordering::SeqCst);
        app.gql(&token, &query).await;
        let statements = app.statements.load(Ordering::SeqCst) - before;
        let mut times = Vec::with_capacity(iterations);
        let started = Instant::now();
        for _ in 0..iterations {
            let t = Instant::now();
            std::hint::black_box(app.gql(&token, &query).await);
            times.push(t.elapsed());
        }
        let total = started.elapsed();
        times.sort();
        println!(
            "{:<26} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>10.0} {:>6}",
            name,
            percentile(&times, 0.50).as_secs_f64() * 1e3,
            percentile(&times, 0.95).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            iterations as f64 / total.as_secs_f64(),
            statements
        );
    }
}

fn main() {
    let iterations = std::env::var("BENCH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        run(Backend::Sqlite, iterations).await;
        run(Backend::Postgres, iterations).await;
    });
    println!("\npeak resident memory of the benchmark process: {:.1} MiB", peak_rss_mib());
}
