//! Batching: each workload query costs a fixed number of SQL statements, the same whatever
//! the number of coachees, sessions or items it returns (DataLoaders, one statement per
//! relation and level), counted at the demo size and again with the data grown; and nested
//! connections are paged in SQL: `coachees { sessions(first: 5) }` reads at most five
//! sessions per coachee.

use std::sync::atomic::Ordering;

use chrono::Duration;
use coachgraph::db::entities::*;
use coachgraph::domain::kinds::*;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

use crate::both_backends;
use crate::common::*;

fn workload(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/spec/workloads/{name}.graphql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The statements a request runs (their SQL, for the failure message) and its answer.
/// The statements one read-only request runs: the fewest of three runs. A DataLoader
/// gathers a level's keys for 1 ms before it runs their batch; on a loaded machine (CI's two
/// cores running the whole suite) one level's loads can straddle that window and split a
/// batch in two. The fewest of three is the count the code is built to run.
async fn statements_for(app: &TestApp, token: &str, query: &str) -> (Statements, Value) {
    let mut fewest: Option<(Statements, Value)> = None;
    for _ in 0..3 {
        let before = app.statements.load(Ordering::SeqCst);
        *app.statement_log.lock().expect("log") = Some(Vec::new());
        let res = app.gql(token, query).await;
        let log = app.statement_log.lock().expect("log").take().expect("log");
        let count = app.statements.load(Ordering::SeqCst) - before;
        if fewest.as_ref().is_none_or(|(f, _)| count < f.count) {
            fewest = Some((Statements { count, sql: log.into_iter().map(|s| s.sql).collect() }, res));
        }
    }
    fewest.expect("three runs")
}

struct Statements {
    count: u64,
    sql: Vec<String>,
}

async fn insert<A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send>(app: &TestApp, model: A)
where
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    model.insert(&app.owner).await.expect("insert");
}

/// An active coachee of `tenant`, without a password.
fn coachee(tenant: Uuid, id: Uuid, email: String, display_name: String) -> users::ActiveModel {
    users::Model {
        id,
        tenant_id: Some(tenant),
        email,
        display_name,
        role: Role::Coachee,
        status: UserStatus::Active,
        password_hash: None,
        failed_login_count: 0,
        locked_until: None,
        last_login_at: None,
        password_changed_at: None,
        created_at: t0(),
        updated_at: t0(),
    }
    .into_active_model()
}

/// `coach`'s active assignment to `coachee`, the AI at ACT.
fn assignment(tenant: Uuid, coach: Uuid, coachee: Uuid) -> coach_assignments::ActiveModel {
    coach_assignments::Model {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        coach_id: coach,
        coachee_id: coachee,
        active: true,
        ai_level: AiLevel::Act,
        created_at: t0(),
        ended_at: None,
    }
    .into_active_model()
}

/// Adds `extra` coachees to coach1 of acme (each with sessions, insights, evidence, items,
/// goals, notes and consents) and `extra` more sessions to coachee1.
async fn grow(app: &TestApp, extra: usize) {
    let tenant = tenants::Entity::find()
        .filter(tenants::Column::Slug.eq("acme"))
        .one(&app.owner)
        .await
        .expect("q")
        .expect("acme");
    let by_email = |e: &'static str| async move {
        users::Entity::find().filter(users::Column::Email.eq(e)).one(&app.owner).await.expect("q").expect("user")
    };
    let coach = by_email("coach1@acme.test").await;
    let coachee1 = by_email("coachee1@acme.test").await;
    let now = t0();
    let mut coachees = vec![];
    for i in 0..extra {
        let id = Uuid::new_v4();
        insert(app, coachee(tenant.id, id, format!("grown{i}@acme.test"), format!("Grown {i}")).reset_all()).await;
        insert(app, assignment(tenant.id, coach.id, id).reset_all()).await;
        insert(
            app,
            goals::Model {
                id: Uuid::new_v4(),
                tenant_id: tenant.id,
                coachee_id: id,
                created_by: coach.id,
                title: format!("Grown goal {i}"),
                progress_percent: 10,
                created_at: now,
                updated_at: now,
            }
            .into_active_model()
            .reset_all(),
        )
        .await;
        insert(
            app,
            coach_notes::Model {
                id: Uuid::new_v4(),
                tenant_id: tenant.id,
                coach_id: coach.id,
                coachee_id: id,
                body: format!("Grown note {i}"),
                created_at: now,
                updated_at: now,
            }
            .into_active_model()
            .reset_all(),
        )
        .await;
        coachees.push(id);
    }
    coachees.extend(std::iter::repeat_n(coachee1.id, extra));
    for (k, coachee) in coachees.into_iter().enumerate() {
        let session = Uuid::new_v4();
        insert(
            app,
            coaching_sessions::Model {
                id: session,
                tenant_id: tenant.id,
                coach_id: coach.id,
                coachee_id: coachee,
                scheduled_at: now - Duration::days(40 + k as i64),
                duration_minutes: 60,
                status: SessionStatus::Completed,
                created_at: now,
                updated_at: now,
            }
            .into_active_model()
            .reset_all(),
        )
        .await;
        insert(
            app,
            session_summaries::Model {
                id: Uuid::new_v4(),
                tenant_id: tenant.id,
                session_id: session,
                coachee_id: coachee,
                coach_id: coach.id,
                body: format!("Grown summary {k}"),
                created_at: now,
                updated_at: now,
            }
            .into_active_model()
            .reset_all(),
        )
        .await;
        for status in [InsightStatus::Approved, InsightStatus::Draft] {
            insert(
                app,
                insights::Model {
                    id: Uuid::new_v4(),
                    tenant_id: tenant.id,
                    session_id: session,
                    coachee_id: coachee,
                    author_id: coach.id,
                    author_role: Role::Coach,
                    body: format!("Grown insight {k}"),
                    status,
                    approved_at: (status == InsightStatus::Approved).then_some(now),
                    approved_by: None,
                    created_at: now,
                    updated_at: now,
                }
                .into_active_model()
                .reset_all(),
            )
            .await;
        }
        insert(
            app,
            evidence_packs::Model {
                id: Uuid::new_v4(),
                tenant_id: tenant.id,
                session_id: session,
                coachee_id: coachee,
                author_id: coach.id,
                author_role: Role::Coach,
                level: EvidenceLevel::L0,
                content: format!("Grown evidence {k}"),
                approved: true,
                approved_at: Some(now),
                created_at: now,
            }
            .into_active_model()
            .reset_all(),
        )
        .await;
        insert(
            app,
            action_items::Model {
                id: Uuid::new_v4(),
                tenant_id: tenant.id,
                coachee_id: coachee,
                session_id: Some(session),
                created_by: coach.id,
                title: format!("Grown item {k}"),
                due_on: None,
                completed_at: None,
                created_at: now,
            }
            .into_active_model()
            .reset_all(),
        )
        .await;
    }
}

fn count_nodes(v: &Value, pointer: &str) -> usize {
    v.pointer(pointer).and_then(Value::as_array).map(Vec::len).unwrap_or(0)
}

async fn workload_statement_counts_do_not_grow_with_the_data(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await.token;
    let coachee = app.session_for("coachee1@acme.test").await.token;
    let exec = app.session_for("exec1@acme.test").await.token;
    let (dash, client, report) = (workload("coach_dashboard"), workload("client_app"), workload("exec_report"));

    let (small_dash, r1) = statements_for(app, &coach, &dash).await;
    let (small_client, c1) = statements_for(app, &coachee, &client).await;
    let (small_report, _) = statements_for(app, &exec, &report).await;
    assert!(r1["errors"].is_null(), "{r1}");
    assert!(c1["errors"].is_null(), "{c1}");

    grow(app, 12).await;

    let (big_dash, r2) = statements_for(app, &coach, &dash).await;
    let (big_client, c2) = statements_for(app, &coachee, &client).await;
    let (big_report, _) = statements_for(app, &exec, &report).await;
    // The answers did grow...
    assert_eq!(count_nodes(&r1, "/data/coachees/nodes"), 6);
    assert_eq!(count_nodes(&r2, "/data/coachees/nodes"), 18);
    assert!(count_nodes(&c2, "/data/me/sessions/nodes") > count_nodes(&c1, "/data/me/sessions/nodes"));
    // ...the statement counts did not, and they are what each workload needs. First the
    // session check (session, user and settings in one) and the caller's reach (one); on
    // PostgreSQL, the tenant context before them.
    let (tenant_context, session_check, reach) = (u64::from(app.backend == Backend::Postgres), 1, 1);
    let context = tenant_context + session_check + reach;
    let (dashboard, client_app) = match app.backend {
        // One round trip per level of the answer: the loaders' reads of a level go as one
        // combined statement. Dashboard: coachees (with its count); their goals, notes and
        // sessions; the sessions' summaries, draft insights and items. Client app: the
        // root's consents and notices with my goals, items and sessions; the sessions'
        // summaries, insights and evidence.
        Backend::Postgres => (context + 3, context + 2),
        // SQLite runs in process (no round trip to save): each read is its own statement.
        // Dashboard: coachees, goals, notes, sessions, summaries, draft insights, items.
        // Client app: consents, notices, goals, items, sessions, summaries, insights,
        // evidence.
        Backend::Sqlite => (context + 7, context + 8),
    };
    // The report reads no reach: the metrics statement only.
    let report = tenant_context + session_check + STATEMENTS_OF_PROGRAM_METRICS;
    for (name, small, big, expected) in [
        ("coach dashboard", small_dash, big_dash, dashboard),
        ("client app", small_client, big_client, client_app),
        ("program report", small_report, big_report, report),
    ] {
        assert_eq!(
            (small.count, big.count),
            (expected, expected),
            "{name}: statements at the demo size and grown:\n{}",
            big.sql.join("\n")
        );
    }
}

/// What `programMetrics` itself costs in statements.
const STATEMENTS_OF_PROGRAM_METRICS: u64 = 1;

/// Gives `coach` of acme `extra` more coachees, each with `sessions` sessions, in a few
/// multi-row statements.
async fn crowd(app: &TestApp, coach_email: &str, extra: usize, sessions: usize) {
    let tenant = tenants::Entity::find()
        .filter(tenants::Column::Slug.eq("acme"))
        .one(&app.owner)
        .await
        .expect("q")
        .expect("acme");
    let coach = users::Entity::find()
        .filter(users::Column::Email.eq(coach_email))
        .one(&app.owner)
        .await
        .expect("q")
        .expect("coach");
    let now = t0();
    let (mut people, mut assignments, mut rows) = (vec![], vec![], vec![]);
    for i in 0..extra {
        let id = Uuid::new_v4();
        people.push(coachee(
            tenant.id,
            id,
            format!("crowd{i}.{coach_email}"),
            format!("Crowd {i:02} of {coach_email}"),
        ));
        assignments.push(assignment(tenant.id, coach.id, id));
        for k in 0..sessions {
            rows.push(
                coaching_sessions::Model {
                    id: Uuid::new_v4(),
                    tenant_id: tenant.id,
                    coach_id: coach.id,
                    coachee_id: id,
                    scheduled_at: now - Duration::days(k as i64),
                    duration_minutes: 60,
                    status: SessionStatus::Completed,
                    created_at: now,
                    updated_at: now,
                }
                .into_active_model(),
            );
        }
    }
    users::Entity::insert_many(people).exec(&app.owner).await.expect("coachees");
    coach_assignments::Entity::insert_many(assignments).exec(&app.owner).await.expect("assignments");
    for chunk in rows.chunks(200) {
        coaching_sessions::Entity::insert_many(chunk.to_vec()).exec(&app.owner).await.expect("sessions");
    }
}

/// The sessions statement of a dashboard request, run again as the owner: its rows, and on
/// PostgreSQL the rows its plan read from `coaching_sessions` (EXPLAIN ANALYZE).
async fn rows_of_the_sessions_statement(
    app: &TestApp,
    statements: &[sea_orm::Statement],
) -> (usize, Option<(u64, Value)>) {
    use sea_orm::ConnectionTrait;
    let nested: Vec<_> = statements
        .iter()
        .filter(|s| {
            s.sql.contains("coaching_sessions") && (s.sql.contains("LATERAL") || s.sql.contains("row_in_parent"))
        })
        .collect();
    assert_eq!(nested.len(), 1, "one statement pages the nested sessions: {nested:#?}");
    let stmt = nested[0].clone();
    let rows = if stmt.sql.starts_with("SELECT (SELECT COALESCE(json_agg(") {
        // PostgreSQL combines a level's reads into one statement: one row, each read's rows
        // a JSON array. The sessions read's rows are those with a `scheduled_at`.
        let row = app.owner.query_one_raw(stmt.clone()).await.expect("combined statement").expect("one row");
        let reads: Vec<Vec<Value>> = (0..)
            .map_while(|i| row.try_get_by_index::<String>(i).ok())
            .map(|json| serde_json::from_str(&json).expect("a JSON array"))
            .collect();
        let sessions: Vec<_> =
            reads.iter().filter(|rows| rows.iter().any(|r| r.get("scheduled_at").is_some())).collect();
        assert_eq!(sessions.len(), 1, "one read of the combined statement is the sessions'");
        sessions[0].len()
    } else {
        app.owner.query_all_raw(stmt.clone()).await.expect("sessions statement").len()
    };
    // Planned with statistics, as a database in service has them.
    app.owner.execute_unprepared("ANALYZE coaching_sessions").await.expect("analyze");
    if app.backend != Backend::Postgres {
        return (rows, None);
    }
    let explain = sea_orm::Statement { sql: format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", stmt.sql), ..stmt };
    let plan = app.owner.query_one_raw(explain).await.expect("explain").expect("plan");
    let plan: Value = plan.try_get_by_index(0).expect("json plan");
    fn read_rows(node: &Value) -> u64 {
        let own = if node["Relation Name"] == "coaching_sessions" {
            let per_loop =
                node["Actual Rows"].as_u64().unwrap_or(0) + node["Rows Removed by Filter"].as_u64().unwrap_or(0);
            per_loop * node["Actual Loops"].as_u64().unwrap_or(1)
        } else {
            0
        };
        own + node["Plans"].as_array().map_or(0, |plans| plans.iter().map(read_rows).sum())
    }
    (rows, Some((read_rows(&plan[0]["Plan"]), plan)))
}

async fn nested_sessions_read_at_most_first_rows_per_coachee(app: &TestApp) {
    // coach1 has 6 demo coachees with 3 sessions each; 19 more with 20 sessions each; and
    // the tenant holds thousands of other sessions (coach2's), as a tenant in service does.
    crowd(app, "coach2@acme.test", 40, 100).await;
    crowd(app, "coach1@acme.test", 19, 20).await;
    let coach = app.session_for("coach1@acme.test").await.token;
    *app.statement_log.lock().expect("log") = Some(Vec::new());
    let answer = app.gql(&coach, &workload("coach_dashboard")).await;
    let statements = app.statement_log.lock().expect("log").take().expect("log");
    assert!(answer["errors"].is_null(), "{answer}");
    let coachees = answer["data"]["coachees"]["nodes"].as_array().expect("coachees");
    assert_eq!(coachees.len(), 25);
    let shown: usize = coachees.iter().map(|c| c["sessions"]["nodes"].as_array().expect("sessions").len()).sum();
    assert_eq!(shown, 6 * 3 + 19 * 5, "five sessions per coachee at most, newest first");
    let (rows, read) = rows_of_the_sessions_statement(app, &statements).await;
    // 25 x sessions(first: 5) returns at most 125 rows, not every session of every coachee.
    assert_eq!(rows, shown, "the statement returns only the page of each coachee");
    assert!(rows <= 125);
    if let Some((read, plan)) = read {
        // PostgreSQL reads these coachees' rows through the (coachee, newest first) index,
        // never the tenant's other 4,000 sessions. (At 20 sessions a coachee the planner
        // prefers a bitmap read of the coachee's rows and a sort to an ordered index read
        // of five: at most the coachees' own sessions.)
        // EXPLAIN reports rows per loop as a rounded average: up to one more per coachee.
        let theirs = 6 * 3 + 19 * 20 + 25;
        assert!(read <= theirs, "PostgreSQL reads the coachees' sessions only: {read} rows, {plan:#}");
    }
}
both_backends!(
    nested_sessions_read_at_most_first_rows_per_coachee,
    nested_sessions_read_at_most_first_rows_per_coachee
);
both_backends!(
    workload_statement_counts_do_not_grow_with_the_data,
    workload_statement_counts_do_not_grow_with_the_data
);
