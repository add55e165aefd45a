//! The three client workloads (`docs/spec/workloads/`) over HTTP against the real server
//! binary (release build) on PostgreSQL, driven by `wrk`, next to two references:
//!
//! - **the floor**: one hand-written SQL statement per workload that builds the same JSON
//!   answer, in the same RLS context (`BEGIN; SELECT set_tenant_context(..); <statement>;
//!   COMMIT` as the application role), driven by `pgbench` with the same principals;
//! - **RLS off**: the same binary on a copy of the database (`CREATE DATABASE .. TEMPLATE`)
//!   with row-level security disabled on every table.
//!
//! and two more figures from the same run:
//!
//! - **CPU per request**: the server process's utime + stime (`/proc/<pid>/stat`) before and
//!   after each wrk run, divided by the requests wrk completed;
//! - **login flood**: client_app (8 connections) run quietly, then again while a second wrk
//!   posts `login` mutations (mostly correct passwords of accounts the bench never uses,
//!   some wrong passwords of program admins, some unknown emails: every one costs a PBKDF2
//!   verification), and the p99 of the two runs compared.
//!
//! `cargo bench --bench http_load`. Needs PostgreSQL at 127.0.0.1:5432 (user `postgres`,
//! trust; `COACHGRAPH_TEST_PG` to change), `wrk` and `pgbench` on the PATH.
//! - `BENCH_SIZES=250,10000`: coachees per run (25 per coach, 20 sessions each; seeded
//!   with `coachgraph::seed::scale`);
//! - `BENCH_SECONDS=10`: length of each wrk / pgbench run;
//! - `BENCH_CONCURRENCY=8,32`: connections (wrk `-c`, pgbench `-c`; both with 2 threads);
//! - `BENCH_PRINCIPALS=32`: distinct principals per role (coaches, executives; twice as many
//!   coachees), whose tokens the wrk script rotates.
//! - `BENCH_FLOOD_CONCURRENCY=8`: connections of the login flood (wrk `-t 1`).

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Utc};
use coachgraph::db::Db;
use coachgraph::seed::scale::{self, Shape};
use common::PgDatabase;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::{Value, json};
use uuid::Uuid;

const JWT_SECRET: &str = "http-load-bench-secret-http-load-bench-secret";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn workload_query(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/spec/workloads/{name}.graphql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tool_present(name: &str) -> bool {
    Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

// ------------------------------------------------------------------------ workloads

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Workload {
    CoachDashboard,
    ClientApp,
    ExecReport,
}

const WORKLOADS: [Workload; 3] = [Workload::CoachDashboard, Workload::ClientApp, Workload::ExecReport];

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::CoachDashboard => "coach_dashboard",
            Workload::ClientApp => "client_app",
            Workload::ExecReport => "exec_report",
        }
    }
    fn role(self) -> &'static str {
        match self {
            Workload::CoachDashboard => "COACH",
            Workload::ClientApp => "COACHEE",
            Workload::ExecReport => "EXECUTIVE",
        }
    }
}

/// The report's range: the last twelve months (whole months, as the API snaps them).
struct Range {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Range {
    fn month(t: DateTime<Utc>) -> String {
        format!("{:04}-{:02}", t.year(), t.month())
    }
    fn variables(&self) -> Value {
        json!({ "from": self.from.to_rfc3339(), "to": self.to.to_rfc3339() })
    }
}

fn request_body(workload: Workload, range: &Range) -> String {
    let variables = if workload == Workload::ExecReport { range.variables() } else { json!({}) };
    json!({ "query": workload_query(workload.name()), "variables": variables }).to_string()
}

/// The floor: one statement per workload building the whole answer, run after
/// `set_tenant_context` as the application role, so row-level security filters it as it
/// filters the server's statements (the row rules come from the policies, as they do for the
/// server on PostgreSQL).
fn floor_sql(workload: Workload, range: &Range) -> String {
    let sql = match workload {
        Workload::CoachDashboard => {
            r#"WITH mine AS (
  SELECT u.tenant_id, u.id, u.display_name, u.email FROM coach_assignments a
  JOIN users u ON u.tenant_id = a.tenant_id AND u.id = a.coachee_id
  WHERE a.coach_id = app_principal_id() AND a.active
), page AS (SELECT * FROM mine ORDER BY display_name, id LIMIT 25)
SELECT json_build_object('data', json_build_object(
  'viewer', (SELECT json_build_object('id', v.id, 'role', v.role, 'displayName', v.display_name) FROM users v WHERE v.id = app_principal_id()),
  'coachees', json_build_object(
    'totalCount', (SELECT count(*) FROM mine),
    'nodes', COALESCE((SELECT json_agg(json_build_object(
      'id', c.id, 'displayName', c.display_name, 'email', c.email,
      'goals', (SELECT COALESCE(json_agg(json_build_object('id', g.id, 'title', g.title, 'progressPercent', g.progress_percent) ORDER BY g.created_at, g.id), '[]')
                FROM goals g WHERE g.tenant_id = c.tenant_id AND g.coachee_id = c.id),
      'coachNotes', (SELECT COALESCE(json_agg(json_build_object('id', n.id, 'body', n.body, 'createdAt', n.created_at) ORDER BY n.created_at DESC, n.id), '[]')
                     FROM coach_notes n WHERE n.tenant_id = c.tenant_id AND n.coachee_id = c.id),
      'sessions', json_build_object('nodes', (SELECT COALESCE(json_agg(json_build_object(
          'id', s.id, 'scheduledAt', s.scheduled_at, 'status', s.status,
          'summary', (SELECT ss.body FROM session_summaries ss WHERE ss.tenant_id = s.tenant_id AND ss.session_id = s.id),
          'draftInsights', (SELECT COALESCE(json_agg(json_build_object('id', i.id, 'body', i.body, 'status', i.status) ORDER BY i.created_at, i.id), '[]')
                            FROM insights i WHERE i.tenant_id = s.tenant_id AND i.session_id = s.id AND i.status = 'DRAFT'),
          'actionItems', (SELECT COALESCE(json_agg(json_build_object('id', x.id, 'title', x.title, 'dueOn', x.due_on, 'completedAt', x.completed_at) ORDER BY x.created_at, x.id), '[]')
                          FROM action_items x WHERE x.tenant_id = s.tenant_id AND x.session_id = s.id)
        ) ORDER BY s.scheduled_at DESC, s.id), '[]')
        FROM (SELECT * FROM coaching_sessions s0 WHERE s0.tenant_id = c.tenant_id AND s0.coachee_id = c.id
              ORDER BY s0.scheduled_at DESC, s0.id LIMIT 5) s))
    ) ORDER BY c.display_name, c.id) FROM page c), '[]')
  )))::text"#
                .to_owned()
        }
        Workload::ClientApp => r#"WITH me AS (SELECT * FROM users WHERE id = app_principal_id())
SELECT json_build_object('data', json_build_object(
  'viewer', (SELECT json_build_object('id', v.id, 'role', v.role, 'displayName', v.display_name) FROM me v),
  'me', (SELECT json_build_object('id', m.id, 'displayName', m.display_name,
    'goals', (SELECT COALESCE(json_agg(json_build_object('id', g.id, 'title', g.title, 'progressPercent', g.progress_percent) ORDER BY g.created_at, g.id), '[]')
              FROM goals g WHERE g.tenant_id = m.tenant_id AND g.coachee_id = m.id),
    'actionItems', json_build_object('nodes', (SELECT COALESCE(json_agg(json_build_object('id', x.id, 'title', x.title, 'dueOn', x.due_on, 'completedAt', x.completed_at) ORDER BY x.created_at DESC, x.id), '[]')
              FROM (SELECT * FROM action_items x0 WHERE x0.tenant_id = m.tenant_id AND x0.coachee_id = m.id ORDER BY x0.created_at DESC, x0.id LIMIT 20) x)),
    'sessions', json_build_object('nodes', (SELECT COALESCE(json_agg(json_build_object(
        'id', s.id, 'scheduledAt', s.scheduled_at, 'status', s.status,
        'summary', (SELECT ss.body FROM session_summaries ss WHERE ss.tenant_id = s.tenant_id AND ss.session_id = s.id),
        'approvedInsights', (SELECT COALESCE(json_agg(json_build_object('id', i.id, 'body', i.body, 'approvedAt', i.approved_at) ORDER BY i.created_at, i.id), '[]')
                             FROM insights i WHERE i.tenant_id = s.tenant_id AND i.session_id = s.id AND i.status = 'APPROVED'),
        'evidencePacks', (SELECT COALESCE(json_agg(json_build_object('id', p.id, 'level', p.level, 'content', p.content) ORDER BY p.created_at, p.id), '[]')
                          FROM evidence_packs p WHERE p.tenant_id = s.tenant_id AND p.session_id = s.id)
      ) ORDER BY s.scheduled_at DESC, s.id), '[]')
      FROM (SELECT * FROM coaching_sessions s0 WHERE s0.tenant_id = m.tenant_id AND s0.coachee_id = m.id
            ORDER BY s0.scheduled_at DESC, s0.id LIMIT 10) s))) FROM me m),
  'myConsents', (SELECT json_agg(json_build_object('kind', k.kind, 'granted', COALESCE(c.granted, false),
                   'changedAt', COALESCE(c.changed_at, (SELECT created_at FROM me))) ORDER BY k.ord)
                 FROM (VALUES (1, 'SASHA_OBSERVE'), (2, 'SASHA_ANALYZE'), (3, 'SASHA_ACT'), (4, 'TRANSCRIPT_SHARING')) k(ord, kind)
                 LEFT JOIN consents c ON c.tenant_id = app_tenant_id() AND c.coachee_id = app_principal_id() AND c.kind = k.kind),
  'accessNotices', (SELECT COALESCE(json_agg(json_build_object('at', a.at, 'actorRole', a.actor_role, 'reason', a.reason) ORDER BY a.at DESC, a.id DESC), '[]')
                    FROM access_notices a WHERE a.tenant_id = app_tenant_id() AND a.coachee_id = app_principal_id())
))::text"#
            .to_owned(),
        Workload::ExecReport => format!(
            r#"WITH st AS (SELECT * FROM app_program_month_stats('{from}', '{to}'))
SELECT json_build_object('data', json_build_object('programMetrics',
  CASE WHEN EXISTS (SELECT 1 FROM st WHERE source = 'suppressed') OR NOT EXISTS (SELECT 1 FROM st WHERE source <> 'active')
  THEN json_build_object('activeCoachees', NULL, 'sessionsCompleted', NULL, 'actionItemCompletionRate', NULL,
                         'averageSatisfaction', NULL, 'suppressed', true)
  ELSE json_build_object(
    'activeCoachees', (SELECT coachees FROM st WHERE source = 'active'),
    'sessionsCompleted', (SELECT COALESCE(sum(total), 0) FROM st WHERE source = 'sessions'),
    'actionItemCompletionRate', (SELECT sum(hits)::float8 / NULLIF(sum(total), 0) FROM st WHERE source = 'action_items'),
    'averageSatisfaction', (SELECT sum(hits)::float8 / NULLIF(sum(total), 0) FROM st WHERE source = 'feedback'),
    'suppressed', false) END))::text"#,
            from = Range::month(range.from),
            to = Range::month(range.to)
        ),
    };
    // pgbench reads one statement per line unless it ends in `;`: flatten it.
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ------------------------------------------------------------------------ HTTP (minimal client)

fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> std::io::Result<(u16, String)> {
    http_from(port, method, path, token, None, body)
}

/// [`http`] as the client at `client`: the bench's own address is the server's trusted
/// proxy, so `X-Forwarded-For` names the client (its per-source limits apply to that).
fn http_from(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    client: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let forwarded = client.map(|a| format!("X-Forwarded-For: {a}\r\n")).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}{forwarded}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(rest) } else { rest.to_owned() };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

fn gql(port: u16, token: Option<&str>, body: &str) -> Value {
    gql_from(port, token, None, body)
}

fn gql_from(port: u16, token: Option<&str>, client: Option<&str>, body: &str) -> Value {
    let (status, text) = http_from(port, "POST", "/graphql", token, client, body).expect("POST /graphql");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("HTTP {status}: {text}"))
}

// ------------------------------------------------------------------------ the server process

struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(database_url: &str, log: PathBuf) -> Server {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let out = std::fs::File::create(&log).expect("server log");
        let child = Command::new(env!("CARGO_BIN_EXE_coachgraph"))
            .arg("serve")
            .env_remove("MIGRATION_DATABASE_URL")
            .env("DATABASE_URL", database_url)
            .env("COACHGRAPH_BIND", format!("127.0.0.1:{port}"))
            .env("COACHGRAPH_JWT_SECRET", JWT_SECRET)
            .env("COACHGRAPH_MODE", "development")
            // The bench stands in for a proxy in front of many clients: logins name their
            // client in X-Forwarded-For, so the per-source credential limit (20 a minute)
            // applies per simulated client, as it would in production.
            .env("COACHGRAPH_TRUSTED_PROXIES", "127.0.0.1")
            .env("RUST_LOG", "warn")
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start the coachgraph binary");
        let mut server = Server { child, port, log };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("server exited ({status}): {}", std::fs::read_to_string(&server.log).unwrap_or_default());
            }
            if matches!(http(port, "GET", "/readyz", None, ""), Ok((200, _))) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "server not ready after 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// The server's peak resident set (VmHWM), MiB.
    fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }

    /// The CPU time (user + system) the server process has used so far, ms: fields 14 and
    /// 15 of `/proc/<pid>/stat`, in clock ticks.
    fn cpu_ms(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields from 3 on follow the command name, which ends at the last ')'.
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        let ticks = |field: usize| fields.get(field - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
        (ticks(14) + ticks(15)) * 1000.0 / clock_ticks_per_second()
    }
}

/// `getconf CLK_TCK` (100 when it cannot be asked).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The whole machine's busy CPU time so far (every core: user, nice, system, irq, softirq,
/// steal; not idle or iowait), ms, from the first line of `/proc/stat`. Over a run it is what
/// a request costs the machine: the server, PostgreSQL, the load generator and the kernel.
fn machine_busy_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .map(|l| l.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default();
    if ticks.len() < 8 {
        return f64::NAN;
    }
    let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7];
    busy * 1000.0 / clock_ticks_per_second()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------------ principals

#[derive(Debug, Clone)]
struct Principal {
    email: String,
    id: Uuid,
    token: String,
}

/// The principals of each workload: coaches spread over the tenant, coachees spread over
/// it (twice as many), executives.
fn principal_emails(shape: &Shape, per_role: usize) -> BTreeMap<Workload, Vec<(String, Uuid)>> {
    let spread = |count: usize, of: usize| -> Vec<usize> {
        let count = count.min(of).max(1);
        (0..count).map(|i| 1 + i * of / count).collect()
    };
    let who = |prefix: &str, numbers: Vec<usize>| {
        numbers
            .into_iter()
            .map(|n| {
                let name = format!("{prefix}{n}");
                (scale::email(&name, 1), scale::user_id(&name, 1))
            })
            .collect::<Vec<_>>()
    };
    BTreeMap::from([
        (Workload::CoachDashboard, who("coach", spread(per_role, shape.coaches))),
        (Workload::ClientApp, who("coachee", spread(per_role * 2, shape.coachees()))),
        (Workload::ExecReport, who("exec", spread(per_role, shape.executives))),
    ])
}

/// The body of a `login` mutation.
fn login_body(email: &str, password: &str) -> String {
    let query = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
    json!({ "query": query, "variables": { "e": email, "p": password } }).to_string()
}

/// A client address of its own for the `n`th simulated client (10.0.0.0/8).
fn client_address(n: usize) -> String {
    format!("10.{}.{}.{}", n / 62_500 % 250, n / 250 % 250, n % 250 + 1)
}

/// Logs every principal in over HTTP (real PBKDF2 checks, four at a time), the `n`th of
/// each role from the `n`th client address (so at most three logins share one).
fn log_in(port: u16, who: Vec<(String, Uuid)>) -> Vec<Principal> {
    let numbered: Vec<(usize, String, Uuid)> = who.into_iter().enumerate().map(|(n, (e, id))| (n, e, id)).collect();
    let chunks: Vec<Vec<(usize, String, Uuid)>> =
        numbered.chunks(numbered.len().div_ceil(4).max(1)).map(<[_]>::to_vec).collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            std::thread::spawn(move || {
                chunk
                    .into_iter()
                    .map(|(n, email, id)| {
                        let client = client_address(n);
                        let res = gql_from(port, None, Some(&client), &login_body(&email, scale::SCALE_PASSWORD));
                        let token = res["data"]["login"]["token"]
                            .as_str()
                            .unwrap_or_else(|| panic!("login of {email}: {res}"))
                            .to_owned();
                        Principal { email, id, token }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles.into_iter().flat_map(|h| h.join().expect("login thread")).collect()
}

// ------------------------------------------------------------------------ wrk and pgbench

#[derive(Debug, Clone, Default)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    requests: u64,
    /// The server's CPU time (user + system) over the run, per completed request.
    cpu_ms_per_request: f64,
    /// The machine's busy CPU time over the run, per completed request ([`machine_busy_ms`]).
    machine_ms_per_request: f64,
}

fn lua_long_string(s: &str) -> String {
    format!("[==[{s}]==]")
}

fn lua_list(items: &[String]) -> String {
    items.iter().map(|t| lua_long_string(t)).collect::<Vec<_>>().join(", ")
}

/// A wrk script POSTing `bodies` in rotation, each with the next of `tokens` as its bearer
/// token (none when `tokens` is empty); `extra` is appended (response / done callbacks).
/// With `many_clients`, each request names another client address in `X-Forwarded-For`
/// (a flood from many sources, which no per-source limit stops).
fn wrk_script(
    dir: &Path,
    name: &str,
    tokens: &[String],
    bodies: &[String],
    many_clients: bool,
    extra: &str,
) -> PathBuf {
    let script = format!(
        r#"-- generated by benches/http_load.rs: rotates bearer tokens and bodies, POSTs them
local tokens = {{ {tokens} }}
local bodies = {{ {bodies} }}
local threads = {{}}
function setup(thread)
  thread:set("offset", #threads * 7)
  table.insert(threads, thread)
end
local i = 0
function init(args)
  i = offset or 0
end
function request()
  i = i + 1
  local headers = {{ ["Content-Type"] = "application/json" }}
  if #tokens > 0 then
    headers["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1]
  end
  if {many_clients} then
    headers["X-Forwarded-For"] = "10.200." .. (math.floor(i / 250) % 250) .. "." .. (i % 250 + 1)
  end
  return wrk.format("POST", "/graphql", headers, bodies[(i % #bodies) + 1])
end
{extra}"#,
        tokens = lua_list(tokens),
        bodies = lua_list(bodies),
    );
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, script).expect("write wrk script");
    path
}

/// Counts the logins that got a token and those refused, and prints both at the end.
const LOGIN_TALLY_LUA: &str = r#"
ok, refused = 0, 0
function response(status, headers, body)
  if status == 200 and string.find(body, '"token"', 1, true) then ok = ok + 1 else refused = refused + 1 end
end
function done(summary, latency, requests)
  local o, r = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); r = r + t:get("refused") end
  io.write(string.format("logins: %d ok, %d refused\n", o, r))
end
"#;

/// `2.35ms`, `812.00us`, `1.20s` -> milliseconds.
fn wrk_ms(value: &str) -> f64 {
    let (number, unit) = value.split_at(value.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(value.len()));
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

fn wrk_command(port: u16, script: &Path, threads: usize, connections: usize, seconds: u64) -> Command {
    let mut wrk = Command::new("wrk");
    wrk.args(["-t", &threads.to_string(), "-c", &connections.to_string(), "-d", &format!("{seconds}s")])
        .args(["--timeout", "30s", "--latency"])
        .arg("-s")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/graphql"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    wrk
}

/// wrk's report (panics when wrk failed).
fn wrk_report(out: std::io::Result<std::process::Output>) -> String {
    let out = out.expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

fn parse_wrk(text: &str) -> Load {
    let mut load = Load { cpu_ms_per_request: f64::NAN, machine_ms_per_request: f64::NAN, ..Load::default() };
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [n, "requests", "in", ..] => load.requests = n.parse().unwrap_or(0),
            ["Requests/sec:", n] => load.rps = n.parse().unwrap_or(f64::NAN),
            ["50%", v] => load.p50_ms = wrk_ms(v),
            ["99%", v] => load.p99_ms = wrk_ms(v),
            ["Non-2xx", "or", "3xx", "responses:", n] => load.errors += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                load.errors += rest.iter().filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok()).sum::<u64>()
            }
            _ => {}
        }
    }
    load
}

/// One wrk run (2 threads) against `server`, with the server's CPU time per request.
fn run_wrk(server: &Server, script: &Path, connections: usize, seconds: u64) -> Load {
    let (cpu, machine) = (server.cpu_ms(), machine_busy_ms());
    let mut load = parse_wrk(&wrk_report(wrk_command(server.port, script, 2, connections, seconds).output()));
    load.cpu_ms_per_request = (server.cpu_ms() - cpu) / load.requests as f64;
    load.machine_ms_per_request = (machine_busy_ms() - machine) / load.requests as f64;
    load
}

#[derive(Debug, Clone, Default)]
struct Floor {
    tps: f64,
    /// The machine's busy CPU time over the run, per transaction ([`machine_busy_ms`]).
    machine_ms_per_tx: f64,
    latency_ms: f64,
    failed: String,
}

fn pgbench_script(dir: &Path, workload: Workload, count: usize, sql: &str) -> PathBuf {
    let script = format!(
        "\\set k random(1, {count})\nBEGIN;\n\
         SELECT set_tenant_context(tenant, principal, role), set_config('app.now', now()::text, true) \
         FROM bench_principals WHERE role = '{role}' AND k = :k;\n{sql};\nCOMMIT;\n",
        role = workload.role()
    );
    let path = dir.join(format!("{}.pgbench.sql", workload.name()));
    std::fs::write(&path, script).expect("write pgbench script");
    path
}

fn run_pgbench(url: &str, script: &Path, connections: usize, seconds: u64) -> Floor {
    let machine = machine_busy_ms();
    let out = Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-j", "2", "-c", &connections.to_string(), "-T", &seconds.to_string()])
        .arg("-f")
        .arg(script)
        .arg(url)
        .output()
        .expect("run pgbench");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "pgbench failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    let machine = machine_busy_ms() - machine;
    let mut floor = Floor { machine_ms_per_tx: f64::NAN, ..Floor::default() };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("number of transactions actually processed: ") {
            let done: f64 = rest.split(['/', ' ']).next().and_then(|n| n.parse().ok()).unwrap_or(f64::NAN);
            floor.machine_ms_per_tx = machine / done;
        }
        if let Some(rest) = line.strip_prefix("tps = ") {
            floor.tps = rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(f64::NAN);
        } else if let Some(rest) = line.strip_prefix("latency average = ") {
            floor.latency_ms = rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(f64::NAN);
        } else if let Some(rest) = line.strip_prefix("number of failed transactions: ") {
            floor.failed = rest.to_owned();
        }
    }
    floor
}

// ------------------------------------------------------------------------ login flood

/// client_app's connections in the login-flood comparison.
const FLOOD_WORKLOAD_CONNECTIONS: usize = 8;

/// client_app quiet and under a login flood, and what the flood achieved.
#[derive(Debug, Clone, Default)]
struct Flood {
    connections: usize,
    quiet: Load,
    flooded: Load,
    logins: Load,
    ok: u64,
    refused: u64,
    /// The server's CPU over the flood, less client_app's requests at their quiet cost, per
    /// login (an estimate: contention makes client_app's requests dearer too).
    cpu_ms_per_login: f64,
}

/// The flood's login requests, in rotation: of every eight, six correct passwords of coaches
/// and coachees the bench never logs in as, one wrong password of a program admin (the
/// bench never logs in as one; each locks after five, and a locked account is still
/// verified) and one unknown email (verified against the dummy hash). Every one costs the
/// server one PBKDF2 verification.
fn flood_bodies(shape: &Shape, bench: &BTreeMap<Workload, Vec<(String, Uuid)>>) -> Vec<String> {
    let taken: BTreeSet<&str> = bench.values().flatten().map(|(email, _)| email.as_str()).collect();
    let spare: Vec<String> = (1..=shape.coachees())
        .map(|n| format!("coachee{n}"))
        .chain((1..=shape.coaches).map(|n| format!("coach{n}")))
        .map(|who| scale::email(&who, 1))
        .filter(|email| !taken.contains(email.as_str()))
        .collect();
    assert!(!spare.is_empty(), "no account left for the login flood");
    (0..64)
        .map(|k| match k % 8 {
            3 => login_body(&scale::email(&format!("admin{}", 1 + k / 8 % shape.admins.max(1)), 1), "not-the-password"),
            7 => login_body(&scale::email(&format!("nobody{k}"), 1), scale::SCALE_PASSWORD),
            _ => login_body(&spare[k % spare.len()], scale::SCALE_PASSWORD),
        })
        .collect()
}

/// `logins: <ok> ok, <refused> refused`, printed by [`LOGIN_TALLY_LUA`].
fn login_tally(report: &str) -> (u64, u64) {
    report
        .lines()
        .find_map(|line| {
            let (ok, refused) = line.trim().strip_prefix("logins: ")?.split_once(" ok, ")?;
            Some((ok.parse().ok()?, refused.strip_suffix(" refused")?.parse().ok()?))
        })
        .unwrap_or((0, 0))
}

/// client_app run quietly, then again while `flood_script` posts logins over `connections`
/// connections (from a second before the workload's run to a second after).
fn login_flood(server: &Server, workload: &Path, flood_script: &Path, connections: usize, seconds: u64) -> Flood {
    let quiet = run_wrk(server, workload, FLOOD_WORKLOAD_CONNECTIONS, seconds);
    let cpu = server.cpu_ms();
    let flood = wrk_command(server.port, flood_script, 1, connections, seconds + 2).spawn();
    std::thread::sleep(Duration::from_secs(1));
    let flooded = run_wrk(server, workload, FLOOD_WORKLOAD_CONNECTIONS, seconds);
    let report = wrk_report(flood.and_then(Child::wait_with_output));
    let login_cpu = server.cpu_ms() - cpu - flooded.requests as f64 * quiet.cpu_ms_per_request;
    let logins = parse_wrk(&report);
    let (ok, refused) = login_tally(&report);
    Flood { connections, cpu_ms_per_login: login_cpu / logins.requests as f64, quiet, flooded, logins, ok, refused }
}

fn flood_line(f: &Flood) -> String {
    format!(
        "login flood: client_app p99 quiet {:.2} ms, under flood {:.2} ms, ratio {:.2} (target <= 2); \
         p50 {:.2} -> {:.2} ms; logins {:.1} req/s over {} connections ({} ok, {} refused), \
         ~{:.0} ms server CPU per login",
        f.quiet.p99_ms,
        f.flooded.p99_ms,
        f.flooded.p99_ms / f.quiet.p99_ms,
        f.quiet.p50_ms,
        f.flooded.p50_ms,
        f.logins.rps,
        f.connections,
        f.ok,
        f.refused,
        f.cpu_ms_per_login
    )
}

// ------------------------------------------------------------------------ database helpers

/// An owner (superuser) connection to database `name`.
async fn owner_of(name: &str) -> DatabaseConnection {
    Database::connect(format!("{}/{name}", common::pg_admin_base())).await.expect("owner connection")
}

async fn disconnect_all(admin: &DatabaseConnection, name: &str) {
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .expect("disconnect");
}

/// A copy of `source` with row-level security disabled on every table that has policies.
async fn copy_without_rls(source: &str) -> PgDatabase {
    let admin = owner_of("postgres").await;
    disconnect_all(&admin, source).await;
    let copy = PgDatabase { name: format!("{source}_norls") };
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{}\" TEMPLATE \"{source}\"", copy.name))
        .await
        .expect("copy the database");
    let owner = owner_of(&copy.name).await;
    owner
        .execute_unprepared(
            "DO $$ DECLARE r text; BEGIN \
             FOR r IN SELECT c.relname FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid GROUP BY c.relname LOOP \
             EXECUTE 'ALTER TABLE ' || r || ' NO FORCE ROW LEVEL SECURITY'; \
             EXECUTE 'ALTER TABLE ' || r || ' DISABLE ROW LEVEL SECURITY'; END LOOP; END $$; ANALYZE;",
        )
        .await
        .expect("disable RLS");
    copy
}

/// The principals pgbench picks from: `bench_principals(role, k, tenant, principal)`.
async fn principal_table(owner: &DatabaseConnection, principals: &BTreeMap<Workload, Vec<Principal>>) {
    let mut sql = String::from(
        "DROP TABLE IF EXISTS bench_principals; \
         CREATE TABLE bench_principals (role text, k int, tenant uuid, principal uuid, PRIMARY KEY (role, k)); \
         GRANT SELECT ON bench_principals TO coachgraph_app; INSERT INTO bench_principals VALUES ",
    );
    let tenant = scale::tenant_id(1);
    let rows: Vec<String> = principals
        .iter()
        .flat_map(|(w, ps)| {
            ps.iter().enumerate().map(move |(k, p)| format!("('{}', {}, '{tenant}', '{}')", w.role(), k + 1, p.id))
        })
        .collect();
    sql.push_str(&rows.join(", "));
    owner.execute_unprepared(&sql).await.expect("bench_principals");
}

/// Runs the floor statement once for `principal` as the application role; its JSON answer.
async fn floor_answer(app: &DatabaseConnection, workload: Workload, principal: Uuid, sql: &str) -> Value {
    let txn = app.begin().await.expect("begin");
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT set_tenant_context($1, $2, $3), set_config('app.now', now()::text, true)",
        [scale::tenant_id(1).into(), principal.into(), workload.role().into()],
    ))
    .await
    .expect("context");
    let row = txn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.expect("floor").expect("row");
    let text: String = row.try_get_by_index(0).expect("json text");
    txn.commit().await.expect("commit");
    serde_json::from_str(&text).expect("floor json")
}

/// Where two answers differ (`None`: the same), timestamps compared as instants and numbers
/// as numbers.
fn difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                difference(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}"))
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: {} vs {} items", x.len(), y.len()));
            }
            x.iter().zip(y).enumerate().find_map(|(i, (p, q))| difference(p, q, &format!("{path}[{i}]")))
        }
        (Value::String(x), Value::String(y)) if x != y => {
            let instant = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc));
            match (instant(x), instant(y)) {
                (Some(p), Some(q)) if p == q => None,
                _ => Some(format!("{path}: {x:?} vs {y:?}")),
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (p, q) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            ((p - q).abs() > 1e-9).then(|| format!("{path}: {x} vs {y}"))
        }
        _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
    }
}

/// SQL statements the application runs for one request of `workload` (its pool's statement
/// callback, in process, on the same database, with the same signing key).
async fn statements_per_request(app_url: &str, token: &str, body: &str) -> u64 {
    let counter = Arc::new(AtomicU64::new(0));
    let mut db = Db::connect(app_url).await.expect("app pool");
    let c = counter.clone();
    db.on_statement(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let state = coachgraph::app::AppState::new(
        db,
        JWT_SECRET.as_bytes(),
        common::ISSUER,
        common::AUDIENCE,
        Arc::new(coachgraph::clock::SystemClock),
    )
    .expect("state");
    let request = || {
        axum::http::Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::from(body.to_owned()))
            .expect("request")
    };
    let first = common::send_to(&state, request()).await;
    assert!(first.body["errors"].is_null(), "{}", first.body);
    let before = counter.load(Ordering::SeqCst);
    common::send_to(&state, request()).await;
    counter.load(Ordering::SeqCst) - before
}

// ------------------------------------------------------------------------ one size

#[derive(Debug, Clone)]
struct Row {
    coachees: usize,
    workload: Workload,
    connections: usize,
    on: Load,
    off: Load,
    floor: Floor,
    statements: u64,
}

struct SizeResult {
    coachees: usize,
    rows: Vec<Row>,
    rss_on: f64,
    rss_off: f64,
    same_answers: Vec<(Workload, Option<String>)>,
    flood: Flood,
}

/// What every size is run with (the environment's `BENCH_*`).
struct Config {
    connections: Vec<usize>,
    seconds: u64,
    per_role: usize,
    flood_connections: usize,
    /// Where scripts and server logs go.
    dir: PathBuf,
}

fn print_run(label: &str, workload: Workload, connections: usize, load: &Load) {
    println!(
        "  {label:<8} {:<16} c={connections:<3} {:>8.1} req/s p50 {:>8.2} ms p99 {:>8.2} ms cpu {:>6.2} ms/req",
        workload.name(),
        load.rps,
        load.p50_ms,
        load.p99_ms,
        load.cpu_ms_per_request
    );
}

async fn run_size(coachees: usize, config: &Config) -> Option<SizeResult> {
    let Config { connections, seconds, per_role, flood_connections, dir } = config;
    let (seconds, per_role) = (*seconds, *per_role);
    let pg = common::create_pg_database().await?;
    let owner = Database::connect(pg.owner_url()).await.expect("owner");
    common::migrate(&owner).await;
    let shape = Shape { coaches: coachees.div_ceil(25), coachees_per_coach: 25, ..Shape::default() };
    let started = Instant::now();
    let seed_db = Db::connect(&pg.owner_url()).await.expect("owner db");
    let progress = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("  seeding {msg:<22} [{bar:30}] {pos}/{len}").expect("style"),
    );
    let report = scale::seed_scale(&seed_db, shape, Utc::now(), &progress).await.expect("seed").expect("fresh");
    drop(seed_db);
    println!(
        "\n== {} coachees, {} coaches, {} sessions: {} rows seeded in {:.1} s",
        shape.coachees(),
        shape.coaches,
        report.rows("coaching_sessions"),
        report.total(),
        started.elapsed().as_secs_f64()
    );
    let now = Utc::now();
    let range = Range { from: now - chrono::Duration::days(365), to: now };

    // The server's logins, answers and statement counts, RLS on.
    let server = Server::start(&pg.app_url(), dir.join(format!("server-{coachees}-logins.log")));
    let t = Instant::now();
    let emails = principal_emails(&shape, per_role);
    let flood_script =
        wrk_script(dir, &format!("login-flood-{coachees}"), &[], &flood_bodies(&shape, &emails), true, LOGIN_TALLY_LUA);
    let mut principals: BTreeMap<Workload, Vec<Principal>> = BTreeMap::new();
    for (w, who) in emails {
        principals.insert(w, log_in(server.port, who));
    }
    let logins: usize = principals.values().map(Vec::len).sum();
    println!("  {logins} principals logged in over HTTP in {:.1} s", t.elapsed().as_secs_f64());
    principal_table(&owner, &principals).await;

    let app = Database::connect(pg.app_url()).await.expect("app connection");
    let mut statements = BTreeMap::new();
    let mut same_answers = Vec::new();
    let mut scripts = BTreeMap::new();
    for w in WORKLOADS {
        let body = request_body(w, &range);
        let sql = floor_sql(w, &range);
        // Every principal's request succeeds; the first one's answer equals the floor's.
        for (i, p) in principals[&w].iter().enumerate() {
            let res = gql(server.port, Some(&p.token), &body);
            assert!(res["errors"].is_null(), "{} as {}: {res}", w.name(), p.email);
            if i == 0 {
                let floor = floor_answer(&app, w, p.id, &sql).await;
                same_answers.push((w, difference(&res, &floor, "")));
            }
        }
        statements.insert(w, statements_per_request(&pg.app_url(), &principals[&w][0].token, &body).await);
        let tokens: Vec<String> = principals[&w].iter().map(|p| p.token.clone()).collect();
        let wrk = wrk_script(dir, &format!("{}-{coachees}", w.name()), &tokens, &[body], false, "");
        let bench = pgbench_script(dir, w, principals[&w].len(), &sql);
        scripts.insert(w, (wrk, bench));
    }
    drop(app);
    drop(server);

    // A copy with RLS off (`CREATE DATABASE .. TEMPLATE` wants no one connected to the
    // original, so it is made now; it holds the same auth sessions, so the same tokens
    // work). Then one server on each, and each workload and concurrency runs RLS on, RLS
    // off and the floor back to back: the three figures of a row come from the same minute,
    // so drift on this shared machine does not land on one side of a ratio.
    drop(owner);
    let copy = copy_without_rls(&pg.name).await;
    let server = Server::start(&pg.app_url(), dir.join(format!("server-{coachees}-rls-on.log")));
    let server_off = Server::start(&copy.app_url(), dir.join(format!("server-{coachees}-rls-off.log")));
    let mut rows = Vec::new();
    for w in WORKLOADS {
        for &c in connections {
            let on = run_wrk(&server, &scripts[&w].0, c, seconds);
            print_run("RLS on", w, c, &on);
            let off = run_wrk(&server_off, &scripts[&w].0, c, seconds);
            print_run("RLS off", w, c, &off);
            // The floor, on the same database, as the application role.
            let floor = run_pgbench(&pg.app_url(), &scripts[&w].1, c, seconds);
            println!("  floor    {:<16} c={c:<3} {:>8.1} tps   avg {:>8.2} ms", w.name(), floor.tps, floor.latency_ms);
            rows.push(Row { coachees, workload: w, connections: c, on, off, floor, statements: statements[&w] });
        }
    }
    let (rss_on, rss_off) = (server.peak_rss_mib(), server_off.peak_rss_mib());
    drop(server_off);
    let flood = login_flood(&server, &scripts[&Workload::ClientApp].0, &flood_script, *flood_connections, seconds);
    println!("  {}", flood_line(&flood));
    drop(server);
    drop(copy);
    drop(pg);
    Some(SizeResult { coachees, rows, rss_on, rss_off, same_answers, flood })
}

fn main() {
    if !tool_present("wrk") {
        println!("http_load: `wrk` is not installed (Debian/Ubuntu: apt-get install -y wrk); nothing measured.");
        return;
    }
    if !tool_present("pgbench") {
        println!(
            "http_load: `pgbench` is not installed (Debian/Ubuntu: apt-get install -y postgresql-contrib or postgresql-client); nothing measured."
        );
        return;
    }
    let sizes = env_list("BENCH_SIZES", "250,10000");
    let config = Config {
        connections: env_list("BENCH_CONCURRENCY", "8,32"),
        seconds: env_or("BENCH_SECONDS", 10),
        per_role: env_or("BENCH_PRINCIPALS", 32),
        flood_connections: env_or("BENCH_FLOOD_CONCURRENCY", 8),
        dir: std::env::temp_dir().join(format!("coachgraph-http-load-{}", std::process::id())),
    };
    std::fs::create_dir_all(&config.dir).expect("scratch directory");
    println!(
        "http_load: sizes {sizes:?} coachees, connections {:?}, {} s per run, login flood over {} connections, \
         server {} (scripts and logs in {})",
        config.connections,
        config.seconds,
        config.flood_connections,
        env!("CARGO_BIN_EXE_coachgraph"),
        config.dir.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let results: Vec<SizeResult> = rt.block_on(async {
        let mut out = Vec::new();
        for &size in &sizes {
            match run_size(size, &config).await {
                Some(r) => out.push(r),
                None => println!("PostgreSQL unreachable: size {size} skipped"),
            }
        }
        out
    });
    print_summary(&results);
}

fn print_summary(results: &[SizeResult]) {
    println!("\n=== Summary (wrk -t 2; floor = pgbench, one SQL statement per request, RLS on) ===");
    println!(
        "{:>8} {:<16} {:>3} {:>10} {:>9} {:>9} {:>5} {:>7} {:>7} {:>6} {:>10} {:>8} {:>10} {:>9} {:>9}",
        "coachees",
        "workload",
        "c",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errs",
        "cpu ms",
        "box ms",
        "stmts",
        "floor tps",
        "floor box",
        "RLSoff r/s",
        "vs floor",
        "on/off"
    );
    for size in results {
        for r in &size.rows {
            println!(
                "{:>8} {:<16} {:>3} {:>10.1} {:>9.2} {:>9.2} {:>5} {:>7.2} {:>7.2} {:>6} {:>10.1} {:>8.2} {:>10.1} {:>8.1}% {:>8.1}%",
                r.coachees,
                r.workload.name(),
                r.connections,
                r.on.rps,
                r.on.p50_ms,
                r.on.p99_ms,
                r.on.errors + r.off.errors,
                r.on.cpu_ms_per_request,
                r.on.machine_ms_per_request,
                r.statements,
                r.floor.tps,
                r.floor.machine_ms_per_tx,
                r.off.rps,
                100.0 * r.on.rps / r.floor.tps,
                100.0 * r.on.rps / r.off.rps
            );
        }
        let coachees = size.coachees;
        println!(
            "{coachees:>8} server peak RSS (VmHWM): {:.1} MiB with RLS, {:.1} MiB without",
            size.rss_on, size.rss_off
        );
        for (w, diff) in &size.same_answers {
            match diff {
                None => println!("{coachees:>8} {:<16} floor answer = GraphQL answer", w.name()),
                Some(d) => println!("{coachees:>8} {:<16} floor answer differs from GraphQL answer at {d}", w.name()),
            }
        }
        println!("{coachees:>8} {}", flood_line(&size.flood));
    }
    print_cpu_scaling(results);
    println!(
        "cpu ms: the server process's CPU time (user + system) per request, RLS on; \
         box ms / floor box: the whole machine's busy CPU time per request / per floor \
         transaction (server or pgbench, PostgreSQL, wrk, kernel; box ms less cpu ms is what \
         the rest of the machine spent on a request); \
         stmts: SQL statements the server's pool runs per request (counted in process); \
         vs floor: coachgraph req/s / floor tps; on/off: req/s with RLS / without."
    );
}

/// CPU per request of each workload at the smallest size against the largest, per
/// concurrency (target: flat, a ratio close to 1).
fn print_cpu_scaling(results: &[SizeResult]) {
    let (Some(small), Some(large)) = (results.first(), results.last()) else { return };
    if results.len() < 2 {
        println!("cpu per request vs size: one size only (BENCH_SIZES=250,10000 compares them)");
        return;
    }
    for w in WORKLOADS {
        let pairs: Vec<String> = small
            .rows
            .iter()
            .filter(|r| r.workload == w)
            .filter_map(|a| {
                let b = large.rows.iter().find(|b| b.workload == w && b.connections == a.connections)?;
                let (x, y) = (a.on.cpu_ms_per_request, b.on.cpu_ms_per_request);
                Some(format!("c={} {x:.2} -> {y:.2} ms, ratio {:.2}", a.connections, y / x))
            })
            .collect();
        println!(
            "cpu per request {:<16} {} vs {} coachees: {} (target: flat, ~1)",
            w.name(),
            small.coachees,
            large.coachees,
            pairs.join("; ")
        );
    }
}
