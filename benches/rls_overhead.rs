//! What PostgreSQL's row-level security costs: the three client workloads
//! (`docs/spec/workloads/`) through the real router, on one database grown to a given
//! number of coachees, with RLS on and then off (the same binary, data and queries; only
//! `ALTER TABLE .. DISABLE ROW LEVEL SECURITY` differs). Rounds alternate on and off so that
//! the machine's noise falls on both; the ratio is the median round's throughput with RLS on
//! over the median with it off.
//!
//! `cargo bench --bench rls_overhead`
//! - `BENCH_COACHEES=250,10000`: tenant sizes (coachees; 25 per coach, 20 sessions each);
//! - `BENCH_SECONDS=3`: length of one round; `BENCH_ROUNDS=3`: rounds per mode.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestApp};
use sea_orm::ConnectionTrait;

fn workload(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/spec/workloads/{name}.graphql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Grows the demo tenant `acme` by `coachees` coachees (25 per new coach, each with 20
/// sessions, a summary and an insight per completed session, 3 goals, 5 action items, 2
/// notes, SASHA_ANALYZE). New accounts share coach1's password.
async fn grow(app: &TestApp, coachees: usize) {
    let coaches = coachees.div_ceil(25);
    let sql = format!(
        r#"
DO $$
DECLARE
  t uuid := (SELECT id FROM tenants WHERE slug = 'acme');
  h text := (SELECT password_hash FROM users WHERE email = 'coach1@acme.test');
BEGIN
  INSERT INTO users (id, tenant_id, email, display_name, role, status, password_hash, failed_login_count, created_at, updated_at)
  SELECT gen_random_uuid(), t, 'scale-coach' || g || '@acme.test', 'Scale coach ' || g, 'COACH', 'ACTIVE', h, 0, now(), now()
  FROM generate_series(1, {coaches}) g;
  INSERT INTO users (id, tenant_id, email, display_name, role, status, password_hash, failed_login_count, created_at, updated_at)
  SELECT gen_random_uuid(), t, 'scale-coachee' || g || '@acme.test', 'Scale coachee ' || g, 'COACHEE', 'ACTIVE', h, 0, now(), now()
  FROM generate_series(1, {coachees}) g;
  INSERT INTO coach_assignments (id, tenant_id, coach_id, coachee_id, active, ai_level, created_at)
  SELECT gen_random_uuid(), t, c.id, e.id, true, 'ANALYZE', now()
  FROM generate_series(1, {coachees}) g
  JOIN users c ON c.tenant_id = t AND c.email = 'scale-coach' || ((g - 1) / 25 + 1) || '@acme.test'
  JOIN users e ON e.tenant_id = t AND e.email = 'scale-coachee' || g || '@acme.test';
  CREATE TEMP TABLE grown ON COMMIT DROP AS
    SELECT a.coach_id, a.coachee_id FROM coach_assignments a
    JOIN users e ON e.id = a.coachee_id WHERE a.tenant_id = t AND e.email LIKE 'scale-coachee%';
  INSERT INTO consents (id, tenant_id, coachee_id, kind, granted, changed_at)
  SELECT gen_random_uuid(), t, coachee_id, 'SASHA_ANALYZE', true, now() FROM grown;
  INSERT INTO coaching_sessions (id, tenant_id, coach_id, coachee_id, scheduled_at, duration_minutes, status, created_at, updated_at)
  SELECT gen_random_uuid(), t, coach_id, coachee_id, now() - (k * 7 || ' days')::interval + interval '14 days', 60,
         CASE WHEN k > 2 THEN 'COMPLETED' ELSE 'SCHEDULED' END, now(), now()
  FROM grown CROSS JOIN generate_series(1, 20) k;
  INSERT INTO session_summaries (id, tenant_id, session_id, coachee_id, coach_id, body, created_at, updated_at)
  SELECT gen_random_uuid(), t, s.id, s.coachee_id, s.coach_id, 'Summary', now(), now()
  FROM coaching_sessions s JOIN grown g ON g.coachee_id = s.coachee_id WHERE s.status = 'COMPLETED';
  INSERT INTO insights (id, tenant_id, session_id, coachee_id, author_id, author_role, body, status, created_at, updated_at)
  SELECT gen_random_uuid(), t, s.id, s.coachee_id, s.coach_id, 'COACH', 'Insight',
         CASE WHEN random() < 0.5 THEN 'APPROVED' ELSE 'DRAFT' END, now(), now()
  FROM coaching_sessions s JOIN grown g ON g.coachee_id = s.coachee_id WHERE s.status = 'COMPLETED';
  INSERT INTO goals (id, tenant_id, coachee_id, created_by, title, progress_percent, created_at, updated_at)
  SELECT gen_random_uuid(), t, coachee_id, coach_id, 'Goal ' || k, 10 * k, now(), now() FROM grown CROSS JOIN generate_series(1, 3) k;
  INSERT INTO action_items (id, tenant_id, coachee_id, created_by, title, completed_at, created_at)
  SELECT gen_random_uuid(), t, coachee_id, coach_id, 'Item ' || k, CASE WHEN k % 2 = 0 THEN now() END, now() - (k || ' days')::interval
  FROM grown CROSS JOIN generate_series(1, 5) k;
  INSERT INTO coach_notes (id, tenant_id, coach_id, coachee_id, body, created_at, updated_at)
  SELECT gen_random_uuid(), t, coach_id, coachee_id, 'Note ' || k, now(), now() FROM grown CROSS JOIN generate_series(1, 2) k;
END
$$;
ANALYZE;
"#
    );
    app.owner.execute_unprepared(&sql).await.expect("grow the tenant");
}

/// Turns row-level security off (or back on) on every table that has it.
async fn set_rls(app: &TestApp, on: bool) {
    let action = if on {
        "ENABLE ROW LEVEL SECURITY'; EXECUTE 'ALTER TABLE ' || r || ' FORCE ROW LEVEL SECURITY"
    } else {
        "NO FORCE ROW LEVEL SECURITY'; EXECUTE 'ALTER TABLE ' || r || ' DISABLE ROW LEVEL SECURITY"
    };
    let sql = format!(
        "DO $$ DECLARE r text; BEGIN \
         FOR r IN SELECT c.relname FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid GROUP BY c.relname LOOP \
         EXECUTE 'ALTER TABLE ' || r || ' {action}'; END LOOP; END $$;"
    );
    app.owner.execute_unprepared(&sql).await.expect("toggle RLS");
}

/// Requests per second of `query` for about `seconds`.
async fn throughput(app: &TestApp, token: &str, query: &str, seconds: f64) -> f64 {
    let started = Instant::now();
    let mut done = 0u32;
    while done < 5 || started.elapsed() < Duration::from_secs_f64(seconds) {
        let res = std::hint::black_box(app.gql(token, query).await);
        assert!(res["errors"].is_null(), "{res}");
        done += 1;
    }
    f64::from(done) / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn run(coachees: usize, seconds: f64, rounds: usize) {
    let Some(app) = TestApp::start(Backend::Postgres).await else {
        println!("PostgreSQL unreachable: skipped");
        return;
    };
    let started = Instant::now();
    grow(&app, coachees).await;
    println!("\n{coachees} grown coachees ({:.1} s to load)", started.elapsed().as_secs_f64());
    let cases = [
        ("client_app", "scale-coachee1@acme.test", workload("client_app")),
        ("coach_dashboard", "scale-coach1@acme.test", workload("coach_dashboard")),
        ("exec_report", "exec1@acme.test", workload("exec_report")),
    ];
    println!("{:<16} {:>12} {:>12} {:>8}", "workload", "RLS on r/s", "RLS off r/s", "on/off");
    for (name, who, query) in cases {
        let token = app.login(who).await.token;
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            set_rls(&app, true).await;
            on.push(throughput(&app, &token, &query, seconds).await);
            set_rls(&app, false).await;
            off.push(throughput(&app, &token, &query, seconds).await);
        }
        set_rls(&app, true).await;
        let (on, off) = (median(on), median(off));
        println!("{name:<16} {on:>12.1} {off:>12.1} {:>7.0}%", 100.0 * on / off);
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_COACHEES")
        .unwrap_or_else(|_| "250,10000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let seconds = env_or("BENCH_SECONDS", 3.0);
    let rounds = env_or("BENCH_ROUNDS", 3);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        for coachees in sizes {
            run(coachees, seconds, rounds).await;
        }
    });
}
