//! Program metrics from per-month rollups (migration 000008): the rollup tables equal a
//! recomputation from the rows after every kind of write (API mutations, the owner's direct
//! writes, a coachee's deletion) and after the backfill of existing rows; `programMetrics`
//! answers what a scan of the rows answers, range by range; and the report is one statement.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use coachgraph::db::Db;
use coachgraph::db::entities::{action_items, ai_feedback, coaching_sessions, tenants, users};
use coachgraph::domain::kinds::SessionStatus;
use coachgraph::domain::metrics::{self, MonthStat, RangeStats};
use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    IntoActiveModel, QueryFilter, Statement,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::common::*;

// ------------------------------------------------------------------ recomputation

fn month_of(backend: DbBackend, col: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM')"),
        _ => format!("substr({col}, 1, 7)"),
    }
}

/// A uuid column as text (SQLite stores the 16 bytes).
fn id_text(backend: DbBackend, col: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("{col}::text"),
        _ => format!("hex({col})"),
    }
}

/// Every counting row of the three sources: tenant, source, month, coachee, hit.
fn base(backend: DbBackend) -> String {
    let m = |col| month_of(backend, col);
    format!(
        "SELECT tenant_id, 'sessions' AS source, {} AS month, coachee_id, 0 AS hit \
         FROM coaching_sessions WHERE status = 'COMPLETED' \
         UNION ALL SELECT tenant_id, 'action_items', {}, coachee_id, \
           CASE WHEN completed_at IS NOT NULL THEN 1 ELSE 0 END FROM action_items \
         UNION ALL SELECT tenant_id, 'feedback', {}, coachee_id, CASE WHEN helpful THEN 1 ELSE 0 END FROM ai_feedback",
        m("scheduled_at"),
        m("created_at"),
        m("created_at"),
    )
}

/// The rows of `sql`'s single text column, sorted.
async fn lines(conn: &DatabaseConnection, sql: &str) -> Vec<String> {
    let backend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out: Vec<String> = rows.iter().map(|r| r.try_get_by_index::<String>(0).expect("text")).collect();
    out.sort();
    out
}

/// (rollup table, its rows as text, the same rows recomputed from scratch as text).
fn rollup_checks(backend: DbBackend) -> [(&'static str, String, String); 3] {
    let t = id_text(backend, "tenant_id");
    let c = id_text(backend, "coachee_id");
    let base = base(backend);
    let coachee_months = format!("{t} || '|' || source || '|' || month || '|' || {c} || '|' || total || '|' || hits");
    let months = format!("{t} || '|' || source || '|' || month || '|' || coachees || '|' || total || '|' || hits");
    let spans = format!("{t} || '|' || month || '|' || prev_month || '|' || coachees");
    [
        (
            "rollup_coachee_months",
            format!("SELECT {coachee_months} FROM rollup_coachee_months"),
            format!(
                "SELECT {coachee_months} FROM (SELECT tenant_id, source, month, coachee_id, COUNT(*) AS total, \
                 SUM(hit) AS hits FROM ({base}) b GROUP BY tenant_id, source, month, coachee_id) x"
            ),
        ),
        (
            "rollup_months",
            format!("SELECT {months} FROM rollup_months"),
            format!(
                "SELECT {months} FROM (SELECT tenant_id, source, month, COUNT(DISTINCT coachee_id) AS coachees, \
                 COUNT(*) AS total, SUM(hit) AS hits FROM ({base}) b GROUP BY tenant_id, source, month) x"
            ),
        ),
        (
            "rollup_active_spans",
            format!("SELECT {spans} FROM rollup_active_spans"),
            // Straight from the sessions: each coachee's active months, each with the one before.
            format!(
                "SELECT {spans} FROM (SELECT tenant_id, month, prev_month, COUNT(*) AS coachees FROM ( \
                   SELECT tenant_id, month, COALESCE(LAG(month) OVER (PARTITION BY tenant_id, coachee_id ORDER BY month), '') AS prev_month \
                   FROM (SELECT DISTINCT tenant_id, coachee_id, {} AS month FROM coaching_sessions WHERE status = 'COMPLETED') d \
                 ) a GROUP BY tenant_id, month, prev_month) x",
                month_of(backend, "scheduled_at")
            ),
        ),
    ]
}

/// Every rollup table equals its recomputation from the rows.
pub async fn assert_exact(conn: &DatabaseConnection, after: &str) {
    for (table, actual, expected) in rollup_checks(conn.get_database_backend()) {
        let (actual, expected) = (lines(conn, &actual).await, lines(conn, &expected).await);
        assert!(!expected.is_empty(), "{table} after {after}: nothing to compare");
        assert_eq!(actual, expected, "{table} after {after}");
    }
}

// ------------------------------------------------------------------ helpers

async fn tenant_id(conn: &DatabaseConnection, slug: &str) -> Uuid {
    tenants::Entity::find().filter(tenants::Column::Slug.eq(slug)).one(conn).await.expect("q").expect("tenant").id
}

async fn user_id(conn: &DatabaseConnection, email: &str) -> Uuid {
    users::Entity::find().filter(users::Column::Email.eq(email)).one(conn).await.expect("q").expect("user").id
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("timestamp").with_timezone(&Utc)
}

/// A session written by the owner, past the application (and, on PostgreSQL, RLS).
async fn put_session(conn: &DatabaseConnection, coachee_email: &str, at: &str, status: SessionStatus) -> Uuid {
    let (name, domain) = coachee_email.split_once('@').expect("email");
    let n: u32 = name.trim_start_matches("coachee").parse().expect("a demo coachee");
    // The demo's coach of the coachee: coach1 for 1-6, coach2 for 7-12.
    let coach = user_id(conn, &format!("{}@{domain}", if n <= 6 { "coach1" } else { "coach2" })).await;
    let tenant = tenant_id(conn, domain.trim_end_matches(".test")).await;
    let coachee = user_id(conn, coachee_email).await;
    let at = ts(at);
    let id = Uuid::new_v4();
    coaching_sessions::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant),
        coach_id: Set(coach),
        coachee_id: Set(coachee),
        scheduled_at: Set(at),
        duration_minutes: Set(60),
        status: Set(status),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(conn)
    .await
    .expect("session");
    id
}

async fn session(conn: &DatabaseConnection, id: Uuid) -> coaching_sessions::ActiveModel {
    coaching_sessions::Entity::find_by_id(id).one(conn).await.expect("q").expect("session").into_active_model()
}

async fn delete_session(conn: &DatabaseConnection, id: Uuid) {
    coaching_sessions::Entity::delete_by_id(id).exec(conn).await.expect("delete");
}

fn gql_ok(res: &Value, what: &str) -> Value {
    assert!(res["errors"].is_null(), "{what}: {res}");
    res["data"].clone()
}

const CREATE_SESSION: &str =
    "mutation($c: ID!, $at: DateTime!) { createSession(coacheeId: $c, scheduledAt: $at, durationMinutes: 60) { id } }";
const UPDATE_SESSION: &str = "mutation($id: ID!, $at: DateTime, $s: SessionStatus, $n: String) { updateSession(id: $id, scheduledAt: $at, status: $s, privateNotes: $n) { id status } }";

// ------------------------------------------------------------------ (a) exact after writes

async fn rollups_equal_a_recomputation_after_every_kind_of_write(app: &TestApp) {
    let db = &app.owner;
    assert_exact(db, "the demo data").await;

    // Through the API: a session scheduled, completed, moved to another month, reopened,
    // completed again, its notes edited, deleted.
    let coach = app.session_for("coach1@acme.test").await.token;
    let coachee2 = app.user_id("coachee2@acme.test").await;
    let res = app.gql_vars(&coach, CREATE_SESSION, json!({ "c": coachee2, "at": "2026-09-10T10:00:00Z" })).await;
    let id = gql_ok(&res, "createSession")["createSession"]["id"].as_str().expect("id").to_owned();
    assert_exact(db, "a scheduled session").await;
    let steps: [(&str, Value); 6] = [
        ("completed", json!({ "id": id, "s": "COMPLETED" })),
        ("moved to August (23:30 UTC on the last day)", json!({ "id": id, "at": "2026-08-31T23:30:00Z" })),
        ("reopened", json!({ "id": id, "s": "SCHEDULED" })),
        ("completed in September", json!({ "id": id, "s": "COMPLETED", "at": "2026-09-01T00:00:00Z" })),
        ("notes edited", json!({ "id": id, "n": "Went well." })),
        ("moved to October", json!({ "id": id, "at": "2026-10-20T08:00:00Z" })),
    ];
    for (what, vars) in steps {
        gql_ok(&app.gql_vars(&coach, UPDATE_SESSION, vars).await, what);
        assert_exact(db, what).await;
    }
    gql_ok(&app.gql_vars(&coach, "mutation($id: ID!) { deleteSession(id: $id) }", json!({ "id": id })).await, "delete");
    assert_exact(db, "deleteSession").await;

    // An action item created and completed; feedback given.
    let coachee1 = app.user_id("coachee1@acme.test").await;
    let res = app
        .gql_vars(
            &coach,
            "mutation($c: ID!) { createActionItem(coacheeId: $c, title: \"Rollups\") { id } }",
            json!({ "c": coachee1 }),
        )
        .await;
    let item = gql_ok(&res, "createActionItem")["createActionItem"]["id"].as_str().expect("id").to_owned();
    assert_exact(db, "createActionItem").await;
    let me = app.session_for("coachee1@acme.test").await.token;
    let res =
        app.gql_vars(&me, "mutation($id: ID!) { completeActionItem(id: $id) { id } }", json!({ "id": item })).await;
    gql_ok(&res, "completeActionItem");
    assert_exact(db, "completeActionItem").await;
    let insight = app
        .uuid_of(
            "SELECT i.id FROM insights i JOIN users u ON u.id = i.coachee_id \
             WHERE u.email = 'coachee1@acme.test' AND i.status = 'APPROVED' ORDER BY i.created_at LIMIT 1",
        )
        .await;
    let res = app
        .gql_vars(
            &me,
            "mutation($i: ID!) { giveAiFeedback(insightId: $i, helpful: false) { id } }",
            json!({ "i": insight }),
        )
        .await;
    gql_ok(&res, "giveAiFeedback");
    assert_exact(db, "giveAiFeedback").await;

    // The owner's direct writes. One coachee's active months filled in out of order and
    // emptied again: a month's span depends on the coachee's neighbouring active months.
    let mut july = vec![];
    for (at, what) in [
        ("2026-06-03T10:00:00Z", "June"),
        ("2026-08-03T10:00:00Z", "August, a gap after June"),
        ("2026-07-03T10:00:00Z", "July, between June and August"),
        ("2026-07-20T10:00:00Z", "a second session in July"),
        ("2026-04-03T10:00:00Z", "April, before everything"),
    ] {
        let id = put_session(db, "coachee3@acme.test", at, SessionStatus::Completed).await;
        if at.starts_with("2026-07") {
            july.push(id);
        }
        assert_exact(db, what).await;
    }
    delete_session(db, july[0]).await;
    assert_exact(db, "one of two July sessions deleted").await;
    let mut s = session(db, july[1]).await;
    s.status = Set(SessionStatus::Cancelled);
    s.update(db).await.expect("cancel");
    assert_exact(db, "the other cancelled: July inactive").await;
    let mut s = session(db, july[1]).await;
    s.status = Set(SessionStatus::Completed);
    s.coachee_id = Set(user_id(db, "coachee4@acme.test").await);
    s.update(db).await.expect("hand over");
    assert_exact(db, "completed again, for another coachee").await;
    let mut s = session(db, july[1]).await;
    s.duration_minutes = Set(90);
    s.update(db).await.expect("duration");
    assert_exact(db, "an update that changes no figure").await;
    coaching_sessions::Entity::delete_many()
        .filter(coaching_sessions::Column::CoacheeId.eq(user_id(db, "coachee3@acme.test").await))
        .filter(coaching_sessions::Column::ScheduledAt.lt(ts("2026-10-01T00:00:00Z")))
        .exec(db)
        .await
        .expect("delete many");
    assert_exact(db, "April to August deleted at once").await;

    // Action items moved to another month and reopened; feedback flipped; items deleted.
    let coachee5 = user_id(db, "coachee5@acme.test").await;
    let items =
        action_items::Entity::find().filter(action_items::Column::CoacheeId.eq(coachee5)).all(db).await.expect("items");
    assert!(items.len() >= 2, "demo items");
    let mut first = items[0].clone().into_active_model();
    first.created_at = Set(ts("2026-09-30T23:59:59Z"));
    first.completed_at = Set(None);
    first.update(db).await.expect("move item");
    assert_exact(db, "an action item moved to September, reopened").await;
    let feedback = ai_feedback::Entity::find().filter(ai_feedback::Column::CoacheeId.eq(coachee5)).all(db).await;
    for f in feedback.expect("feedback") {
        let helpful = f.helpful;
        let mut f = f.into_active_model();
        f.helpful = Set(!helpful);
        f.update(db).await.expect("flip");
    }
    assert_exact(db, "feedback flipped").await;
    action_items::Entity::delete_many()
        .filter(action_items::Column::CoacheeId.eq(coachee5))
        .exec(db)
        .await
        .expect("delete items");
    assert_exact(db, "a coachee's action items deleted").await;

    // A coachee deleted by its coach: the cascade takes its rows, and its rollups with them.
    let coachee9 = user_id(db, "coachee9@acme.test").await;
    let coach2 = app.session_for("coach2@acme.test").await.token;
    let res = app.gql_vars(&coach2, "mutation($id: ID!) { deleteCoachee(id: $id) }", json!({ "id": coachee9 })).await;
    gql_ok(&res, "deleteCoachee");
    assert_exact(db, "deleteCoachee").await;
    assert_eq!(rollup_rows_of(db, coachee9).await, 0, "no rollup row names the deleted coachee");
}
both_backends!(
    rollups_equal_a_recomputation_after_every_kind_of_write,
    rollups_equal_a_recomputation_after_every_kind_of_write
);

/// Rows of `rollup_coachee_months` that name `coachee`.
async fn rollup_rows_of(conn: &DatabaseConnection, coachee: Uuid) -> i64 {
    let backend = conn.get_database_backend();
    let p = if backend == DbBackend::Postgres { "$1" } else { "?" };
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!("SELECT COUNT(*) FROM rollup_coachee_months WHERE coachee_id = {p}"),
            [sea_orm::Value::Uuid(Some(coachee))],
        ))
        .await
        .expect("count")
        .expect("row");
    row.try_get_by_index::<i64>(0).expect("n")
}

// ------------------------------------------------------------------ backfill

/// Rows written before migration 000008 are rolled up by its backfill, exactly; the
/// triggers then carry on from there.
async fn backfill(conn: &DatabaseConnection, db: &Db) {
    Migrator::up(conn, Some(7)).await.expect("migrations up to 000007");
    coachgraph::seed::seed_demo(db, t0()).await.expect("seed");
    for (who, at) in [
        ("coachee1@acme.test", "2026-06-10T10:00:00Z"),
        ("coachee1@acme.test", "2026-08-10T10:00:00Z"),
        ("coachee2@acme.test", "2026-08-11T10:00:00Z"),
        ("coachee7@acme.test", "2026-06-12T10:00:00Z"),
    ] {
        put_session(conn, who, at, SessionStatus::Completed).await;
    }
    put_session(conn, "coachee3@acme.test", "2026-05-10T10:00:00Z", SessionStatus::Scheduled).await;
    Migrator::up(conn, None).await.expect("migration 000008");
    assert_exact(conn, "the backfill").await;
    put_session(conn, "coachee1@acme.test", "2026-07-10T10:00:00Z", SessionStatus::Completed).await;
    assert_exact(conn, "a write after the backfill").await;
}

#[tokio::test]
async fn the_backfill_rolls_up_existing_rows_exactly_on_sqlite() {
    let db = Db::connect("sqlite::memory:").await.expect("sqlite");
    let conn = coachgraph::db::testing::connection(&db).clone();
    backfill(&conn, &db).await;
}

#[tokio::test]
async fn the_backfill_rolls_up_existing_rows_exactly_on_postgres() {
    let Some(pg) = create_pg_database().await else {
        return;
    };
    let db = Db::connect(&pg.owner_url()).await.expect("owner");
    let conn = coachgraph::db::testing::connection(&db).clone();
    backfill(&conn, &db).await;
}

// ------------------------------------------------------------------ (b) same answers as a scan

/// What the row scan answers for `slug` and the month range: the per-month statistics and
/// the range's distinct active coachees straight from the rows, through the same `decide`.
async fn scanned(app: &TestApp, slug: &str, from: Option<&str>, to: Option<&str>) -> Value {
    let backend = app.owner.get_database_backend();
    let t = id_text(backend, "tenant_id");
    let tenant =
        lines(&app.owner, &format!("SELECT {} FROM tenants WHERE slug = '{slug}'", id_text(backend, "id"))).await;
    let mut cond = format!("{t} = '{}'", tenant[0]);
    if let Some(from) = from {
        cond.push_str(&format!(" AND month >= '{from}'"));
    }
    if let Some(to) = to {
        cond.push_str(&format!(" AND month <= '{to}'"));
    }
    let base = base(backend);
    let stats = lines(
        &app.owner,
        &format!(
            "SELECT source || '|' || month || '|' || coachees || '|' || total || '|' || hits FROM ( \
             SELECT source, month, COUNT(DISTINCT coachee_id) AS coachees, COUNT(*) AS total, SUM(hit) AS hits \
             FROM ({base}) b WHERE {cond} GROUP BY source, month) x"
        ),
    )
    .await;
    let active = lines(
        &app.owner,
        &format!("SELECT '' || COUNT(DISTINCT coachee_id) FROM ({base}) b WHERE {cond} AND source = 'sessions'"),
    )
    .await;
    let mut range = RangeStats { active_coachees: active[0].parse().expect("n"), ..Default::default() };
    for line in stats {
        let f: Vec<&str> = line.split('|').collect();
        let n = |i: usize| f[i].parse::<i64>().expect("number");
        let stat = MonthStat { month: f[1].to_owned(), coachees: n(2), rows: n(3), hits: n(4) };
        match f[0] {
            "sessions" => range.sessions.push(stat),
            "action_items" => range.action_items.push(stat),
            _ => range.feedback.push(stat),
        }
    }
    let m = metrics::decide(&range);
    json!({
        "activeCoachees": m.active_coachees,
        "sessionsCompleted": m.sessions_completed,
        "actionItemCompletionRate": m.action_item_completion_rate,
        "averageSatisfaction": m.average_satisfaction,
        "suppressed": m.suppressed,
    })
}

const METRICS: &str = "activeCoachees sessionsCompleted actionItemCompletionRate averageSatisfaction suppressed";

async fn answered(app: &TestApp, token: &str, from: Option<&str>, to: Option<&str>) -> Value {
    // Mid-month instants: the range snaps to whole months.
    let from = from.map(|m| format!("{m}-10T12:00:00Z"));
    let to = to.map(|m| format!("{m}-20T12:00:00Z"));
    let res = app
        .gql_vars(
            token,
            &format!("query($f: DateTime, $t: DateTime) {{ programMetrics(from: $f, to: $t) {{ {METRICS} }} }}"),
            json!({ "f": from, "t": to }),
        )
        .await;
    gql_ok(&res, "programMetrics")["programMetrics"].clone()
}

fn same_figures(a: &Value, b: &Value) -> bool {
    ["activeCoachees", "sessionsCompleted", "suppressed"].iter().all(|k| a[k] == b[k])
        && ["actionItemCompletionRate", "averageSatisfaction"].iter().all(|k| match (a[k].as_f64(), b[k].as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-12,
            (x, y) => x.is_none() && y.is_none(),
        })
}

const RANGES: [(Option<&str>, Option<&str>); 12] = [
    (None, None),
    (Some("2026-07"), Some("2026-07")),
    (Some("2026-07"), Some("2026-08")),
    (Some("2026-08"), Some("2026-09")),
    (Some("2026-09"), Some("2026-09")),
    (Some("2026-08"), None),
    (None, Some("2026-09")),
    (Some("2026-10"), Some("2026-10")),
    (Some("2026-09"), Some("2026-11")),
    (Some("2026-11"), Some("2026-11")),
    (Some("2026-06"), Some("2026-06")),
    (None, Some("2026-06")),
];

/// Every range of [`RANGES`] answers what the scan answers.
async fn check_ranges(app: &TestApp, exec: &str, what: &str) {
    for (from, to) in RANGES {
        let (got, want) = (answered(app, exec, from, to).await, scanned(app, "acme", from, to).await);
        assert!(same_figures(&got, &want), "{what}, {from:?}..{to:?}: {got} vs scan {want}");
    }
}

/// (activeCoachees, sessionsCompleted) of a range.
async fn figures(app: &TestApp, exec: &str, from: Option<&str>, to: Option<&str>) -> (Option<i64>, Option<i64>) {
    let m = answered(app, exec, from, to).await;
    (m["activeCoachees"].as_i64(), m["sessionsCompleted"].as_i64())
}

async fn program_metrics_answer_what_a_scan_of_the_rows_answers(app: &TestApp) {
    let exec = app.session_for("exec1@acme.test").await.token;
    // The demo data: everything completed lies in October 2026, twelve coachees, two
    // sessions each.
    check_ranges(app, &exec, "demo data").await;
    let all = answered(app, &exec, None, None).await;
    assert_eq!((all["activeCoachees"].clone(), all["sessionsCompleted"].clone()), (json!(12), json!(24)), "{all}");

    // Coachees 7-12 in July, 1-6 in August, 1-5 in September.
    for i in 7..=12 {
        put_session(&app.owner, &format!("coachee{i}@acme.test"), "2026-07-08T10:00:00Z", SessionStatus::Completed)
            .await;
    }
    for i in 1..=6 {
        put_session(&app.owner, &format!("coachee{i}@acme.test"), "2026-08-08T10:00:00Z", SessionStatus::Completed)
            .await;
    }
    for i in 1..=5 {
        put_session(&app.owner, &format!("coachee{i}@acme.test"), "2026-09-08T10:00:00Z", SessionStatus::Completed)
            .await;
    }
    check_ranges(app, &exec, "three more months").await;
    assert_eq!(figures(app, &exec, None, None).await, (Some(12), Some(41)));
    assert_eq!(figures(app, &exec, Some("2026-07"), Some("2026-08")).await, (Some(12), Some(12)));
    assert_eq!(figures(app, &exec, Some("2026-08"), Some("2026-09")).await, (Some(6), Some(11)));
    assert_eq!(figures(app, &exec, Some("2026-09"), Some("2026-09")).await, (Some(5), Some(5)));
    assert_eq!(figures(app, &exec, None, Some("2026-09")).await, (Some(12), Some(17)));
    assert_eq!(figures(app, &exec, Some("2026-09"), None).await, (Some(12), Some(29)));

    // Coachee 6 leaves August for June, alone there: every range holding June is suppressed,
    // August now has five.
    coaching_sessions::Entity::update_many()
        .col_expr(coaching_sessions::Column::ScheduledAt, sea_orm::sea_query::Expr::value(ts("2026-06-08T10:00:00Z")))
        .filter(coaching_sessions::Column::CoacheeId.eq(user_id(&app.owner, "coachee6@acme.test").await))
        .filter(coaching_sessions::Column::ScheduledAt.eq(ts("2026-08-08T10:00:00Z")))
        .exec(&app.owner)
        .await
        .expect("move");
    check_ranges(app, &exec, "a lonely June").await;
    assert_eq!(answered(app, &exec, None, None).await["suppressed"], true);
    assert_eq!(figures(app, &exec, Some("2026-07"), Some("2026-08")).await, (Some(11), Some(11)));
}
both_backends!(
    program_metrics_answer_what_a_scan_of_the_rows_answers,
    program_metrics_answer_what_a_scan_of_the_rows_answers
);

// ------------------------------------------------------------------ (d) one statement

fn workload(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/spec/workloads/{name}.graphql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn statements_for(app: &TestApp, token: &str, query: &str) -> (u64, Value) {
    let before = app.statements.load(Ordering::SeqCst);
    let res = app.gql(token, query).await;
    (app.statements.load(Ordering::SeqCst) - before, res)
}

/// The report request runs what every request runs, plus the metrics in one statement,
/// however many rows and months lie behind them.
async fn the_program_report_costs_one_statement(app: &TestApp) {
    let exec = app.session_for("exec1@acme.test").await.token;
    let (baseline, res) = statements_for(app, &exec, "{ __typename }").await;
    gql_ok(&res, "__typename");
    let report = workload("exec_report");
    let (n, res) = statements_for(app, &exec, &report).await;
    assert_eq!(gql_ok(&res, "report")["programMetrics"]["suppressed"], false, "{res}");
    // The baseline is the tenant context (PostgreSQL) and the session check; the metrics add
    // exactly one statement to it.
    assert_eq!(n, baseline + 1, "the metrics are one statement ({n} in all, {baseline} without them)");
    for i in 1..=6 {
        put_session(&app.owner, &format!("coachee{i}@acme.test"), "2026-08-08T10:00:00Z", SessionStatus::Completed)
            .await;
    }
    let (grown, _) = statements_for(app, &exec, &report).await;
    assert_eq!(grown, n, "more months, the same statements");
}
both_backends!(the_program_report_costs_one_statement, the_program_report_costs_one_statement);
