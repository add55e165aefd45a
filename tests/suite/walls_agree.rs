//! The two walls agree (POLICY.md section 2): for every demo principal and every content
//! table, under assignment, consent, AI-level, L1-approval and break-glass variations,
//! - the rows PostgreSQL returns under the principal's context (raw SQL as the app role),
//! - the rows the application's row check (`Reach::read`) admits, computed from the same
//!   data read without row-level security, and
//! - the rows the application's list filter (`Reach::list_filter`) selects (and, narrowed
//!   to some coachees as a relation keyed by the coachee reads it, `list_filter_under`, the
//!   same rows of those coachees)
//!
//! are the same rows, in both directions. On SQLite (no RLS) the row check and the list
//! filter are compared.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use coachgraph::authz::rows::{AssignmentFact, ContentTable, Reach, RowFacts};
use coachgraph::db::entities::{
    break_glass_grants, break_glass_requests, coach_assignments, consents, evidence_packs, insights, users,
};
use coachgraph::kinds::{AiLevel, ConsentKind, EvidenceLevel, InsightStatus, Role};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, PostgresQueryBuilder, Query, SqliteQueryBuilder};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, Database, DatabaseConnection, DbBackend, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use uuid::Uuid;

use crate::common::*;

#[derive(Debug, Clone)]
struct Principal {
    email: String,
    id: Uuid,
    tenant: Uuid,
    role: Role,
}

/// A uuid as a SQL literal of the backend (SQLite stores uuids as 16-byte blobs).
fn lit(backend: DbBackend, id: Uuid) -> String {
    match backend {
        DbBackend::Postgres => format!("'{id}'::uuid"),
        _ => format!("X'{}'", id.simple()),
    }
}

async fn rows(conn: &impl ConnectionTrait, sql: &str) -> Vec<sea_orm::QueryResult> {
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn uuid_at(row: &sea_orm::QueryResult, col: &str) -> Uuid {
    row.try_get::<Uuid>("", col).unwrap_or_else(|e| panic!("{col}: {e}"))
}

async fn principals(app: &TestApp) -> Vec<Principal> {
    let all =
        rows(&app.owner, "SELECT id, tenant_id, email, role FROM users WHERE tenant_id IS NOT NULL ORDER BY email")
            .await;
    all.iter()
        .map(|r| Principal {
            email: r.try_get("", "email").expect("email"),
            id: uuid_at(r, "id"),
            tenant: uuid_at(r, "tenant_id"),
            role: Role::parse(&r.try_get::<String>("", "role").expect("role")).expect("a role"),
        })
        .collect()
}

fn level(name: &str) -> AiLevel {
    match name {
        "OBSERVE" => AiLevel::Observe,
        "ANALYZE" => AiLevel::Analyze,
        "ACT" => AiLevel::Act,
        _ => AiLevel::Off,
    }
}

fn consent_kind(name: &str) -> ConsentKind {
    match name {
        "SASHA_OBSERVE" => ConsentKind::SashaObserve,
        "SASHA_ANALYZE" => ConsentKind::SashaAnalyze,
        "SASHA_ACT" => ConsentKind::SashaAct,
        _ => ConsentKind::TranscriptSharing,
    }
}

/// The principal's reach, from the tenant's rows as the owner sees them (no RLS).
async fn reach_of(app: &TestApp, p: &Principal) -> Reach {
    let b = app.owner.get_database_backend();
    let t = lit(b, p.tenant);
    let assignments: Vec<AssignmentFact> = rows(
        &app.owner,
        &format!("SELECT coach_id, coachee_id, ai_level FROM coach_assignments WHERE tenant_id = {t} AND active"),
    )
    .await
    .iter()
    .map(|r| AssignmentFact {
        coach: uuid_at(r, "coach_id"),
        coachee: uuid_at(r, "coachee_id"),
        ai_level: level(&r.try_get::<String>("", "ai_level").expect("level")),
    })
    .collect();
    let granted: Vec<(Uuid, ConsentKind)> =
        rows(&app.owner, &format!("SELECT coachee_id, kind FROM consents WHERE tenant_id = {t} AND granted"))
            .await
            .iter()
            .map(|r| (uuid_at(r, "coachee_id"), consent_kind(&r.try_get::<String>("", "kind").expect("kind"))))
            .collect();
    // Current grants by the request's clock (the test's t0), decided here, not in SQL.
    let now = t0();
    let grants: Vec<(Uuid, Uuid)> = rows(
        &app.owner,
        &format!(
            "SELECT g.coachee_id, g.id, g.starts_at, g.expires_at FROM break_glass_grants g \
             JOIN break_glass_requests r ON r.tenant_id = g.tenant_id AND r.id = g.request_id \
             WHERE g.tenant_id = {t} AND g.grantee_id = {} AND g.revoked_at IS NULL AND r.revoked_at IS NULL \
             AND r.approved_by IS NOT NULL",
            lit(b, p.id)
        ),
    )
    .await
    .iter()
    .filter(|r| {
        let starts: DateTime<Utc> = r.try_get("", "starts_at").expect("starts_at");
        let expires: DateTime<Utc> = r.try_get("", "expires_at").expect("expires_at");
        starts <= now && now < expires
    })
    .map(|r| (uuid_at(r, "coachee_id"), uuid_at(r, "id")))
    .collect();
    Reach::from_facts(p.role, p.id, &assignments, &granted, &grants)
}

/// The columns the row check looks at, per table.
fn fact_columns(table: ContentTable) -> &'static str {
    match table {
        ContentTable::CoachNotes | ContentTable::SessionPrivateNotes => "id, coachee_id, coach_id",
        ContentTable::Insights => "id, coachee_id, status",
        ContentTable::EvidencePacks => "id, coachee_id, level, approved",
        _ => "id, coachee_id",
    }
}

fn facts(table: ContentTable, r: &sea_orm::QueryResult) -> RowFacts {
    let coachee = uuid_at(r, "coachee_id");
    match table {
        ContentTable::CoachNotes | ContentTable::SessionPrivateNotes => {
            RowFacts::authored(coachee, uuid_at(r, "coach_id"))
        }
        ContentTable::Insights => {
            RowFacts::insight(coachee, r.try_get::<String>("", "status").expect("status") == "APPROVED")
        }
        ContentTable::EvidencePacks => RowFacts::evidence(
            coachee,
            r.try_get::<String>("", "level").expect("level") == "L1",
            r.try_get::<bool>("", "approved").expect("approved"),
        ),
        _ => RowFacts::about(coachee),
    }
}

fn ids(found: &[sea_orm::QueryResult]) -> BTreeSet<Uuid> {
    found.iter().map(|r| uuid_at(r, "id")).collect()
}

/// The ids PostgreSQL shows `p` in `table`, as the application role under `p`'s context.
async fn rls_ids(app_conn: &DatabaseConnection, p: &Principal, table: ContentTable) -> BTreeSet<Uuid> {
    let tx = app_conn.begin().await.expect("begin");
    tx.execute_unprepared(&format!(
        "SELECT set_tenant_context('{}'::uuid, '{}'::uuid, '{}'); SELECT set_config('app.now', '{}', true);",
        p.tenant,
        p.id,
        p.role.as_str(),
        t0().to_rfc3339()
    ))
    .await
    .expect("context");
    let found = rows(&tx, &format!("SELECT id FROM {}", table.name())).await;
    tx.rollback().await.expect("rollback");
    ids(&found)
}

/// Every disagreement between the walls for the current data, one line each, and how many
/// rows of each table the row check admitted over all principals (so that a comparison of
/// empty sets cannot pass for agreement).
async fn disagreements(
    app: &TestApp,
    app_conn: Option<&DatabaseConnection>,
) -> (Vec<String>, BTreeMap<&'static str, usize>) {
    let backend = app.owner.get_database_backend();
    let mut out = Vec::new();
    let mut admitted = BTreeMap::new();
    for p in principals(app).await {
        let reach = reach_of(app, &p).await;
        for table in ContentTable::ALL {
            let all = rows(
                &app.owner,
                &format!(
                    "SELECT {} FROM {} WHERE tenant_id = {}",
                    fact_columns(table),
                    table.name(),
                    lit(backend, p.tenant)
                ),
            )
            .await;
            let by_check: BTreeSet<Uuid> =
                all.iter().filter(|r| reach.reads(table, &facts(table, r))).map(|r| uuid_at(r, "id")).collect();
            *admitted.entry(table.name()).or_insert(0) += by_check.len();
            let select_by = |filter: sea_orm::Condition| {
                let mut select = Query::select();
                select
                    .column(Alias::new("id"))
                    .from(Alias::new(table.name()))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(p.tenant))
                    .cond_where(filter);
                let (sql, values) = match backend {
                    DbBackend::Postgres => select.build(PostgresQueryBuilder),
                    _ => select.build(SqliteQueryBuilder),
                };
                Statement::from_sql_and_values(backend, sql, values)
            };
            let by_filter =
                ids(&app.owner.query_all_raw(select_by(reach.list_filter(table))).await.expect("list filter"));
            // Narrowed to some coachees (every other one in the table, and one of no row), as a
            // relation keyed by the coachee reads it: the same rows, of those coachees only.
            let coachees: BTreeSet<Uuid> = all.iter().map(|r| uuid_at(r, "coachee_id")).collect();
            let mut under: Vec<Uuid> = coachees.iter().copied().step_by(2).collect();
            under.push(Uuid::new_v4());
            let narrowed = ids(&app
                .owner
                .query_all_raw(select_by(reach.list_filter_under(table, &under)))
                .await
                .expect("narrowed list filter"));
            let by_check_under: BTreeSet<Uuid> = all
                .iter()
                .filter(|r| under.contains(&uuid_at(r, "coachee_id")))
                .map(|r| uuid_at(r, "id"))
                .filter(|id| by_check.contains(id))
                .collect();
            if narrowed != by_check_under {
                out.push(format!(
                    "{} ({:?}) on {}: the list filter under {} coachees admits {} rows the row check refuses, refuses {} it admits",
                    p.email,
                    p.role,
                    table.name(),
                    under.len(),
                    narrowed.difference(&by_check_under).count(),
                    by_check_under.difference(&narrowed).count(),
                ));
            }
            let mut compare = |wall: &str, other: &BTreeSet<Uuid>| {
                if other != &by_check {
                    out.push(format!(
                        "{} ({:?}) on {}: {wall} admits {} rows the row check refuses, refuses {} it admits",
                        p.email,
                        p.role,
                        table.name(),
                        other.difference(&by_check).count(),
                        by_check.difference(other).count(),
                    ));
                }
            };
            compare("the list filter", &by_filter);
            if let Some(conn) = app_conn {
                compare("PostgreSQL", &rls_ids(conn, &p, table).await);
            }
        }
    }
    (out, admitted)
}

async fn exec(app: &TestApp, sql: &str) {
    app.owner.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn user(app: &TestApp, email: &str) -> users::Model {
    users::Entity::find().filter(users::Column::Email.eq(email)).one(&app.owner).await.expect("q").expect("user")
}

/// The variations, applied one after the other: each returns its name.
async fn vary(app: &TestApp, step: usize) -> &'static str {
    let db = &app.owner;
    let acme = user(app, "coach1@acme.test").await.tenant_id.expect("tenant");
    match step {
        0 => "the demo data",
        1 => {
            // One assignment ends; coachee1 gets a second coach.
            let first = coach_assignments::Entity::find()
                .filter(coach_assignments::Column::TenantId.eq(acme))
                .filter(coach_assignments::Column::Active.eq(true))
                .order_by_asc(coach_assignments::Column::Id)
                .one(db)
                .await
                .expect("q")
                .expect("an assignment");
            let mut ended = first.into_active_model();
            ended.active = Set(false);
            ended.update(db).await.expect("end");
            let (coach2, coachee1) = (user(app, "coach2@acme.test").await, user(app, "coachee1@acme.test").await);
            let exists = coach_assignments::Entity::find()
                .filter(coach_assignments::Column::CoachId.eq(coach2.id))
                .filter(coach_assignments::Column::CoacheeId.eq(coachee1.id))
                .one(db)
                .await
                .expect("q");
            if exists.is_none() {
                coach_assignments::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    tenant_id: Set(acme),
                    coach_id: Set(coach2.id),
                    coachee_id: Set(coachee1.id),
                    active: Set(true),
                    ai_level: Set(AiLevel::Analyze),
                    created_at: Set(t0()),
                    ended_at: Set(None),
                }
                .insert(db)
                .await
                .expect("assign");
            }
            "an ended assignment and a second coach"
        }
        2 => {
            consents::Entity::update_many()
                .col_expr(consents::Column::Granted, Expr::col(consents::Column::Granted).not())
                .filter(consents::Column::TenantId.eq(acme))
                .exec(db)
                .await
                .expect("flip");
            "every consent flipped"
        }
        3 => {
            let all = coach_assignments::Entity::find()
                .filter(coach_assignments::Column::TenantId.eq(acme))
                .all(db)
                .await
                .expect("q");
            for a in all {
                let next = match a.ai_level {
                    AiLevel::Off => AiLevel::Act,
                    AiLevel::Act => AiLevel::Analyze,
                    AiLevel::Analyze => AiLevel::Observe,
                    AiLevel::Observe => AiLevel::Off,
                };
                let mut m = a.into_active_model();
                m.ai_level = Set(next);
                m.update(db).await.expect("level");
            }
            "every coach's AI level rotated"
        }
        4 => {
            evidence_packs::Entity::update_many()
                .col_expr(evidence_packs::Column::Approved, Expr::col(evidence_packs::Column::Approved).not())
                .filter(evidence_packs::Column::TenantId.eq(acme))
                .filter(evidence_packs::Column::Level.eq(EvidenceLevel::L1))
                .exec(db)
                .await
                .expect("flip");
            let some = insights::Entity::find()
                .filter(insights::Column::TenantId.eq(acme))
                .order_by_asc(insights::Column::Id)
                .limit(6)
                .all(db)
                .await
                .expect("q");
            for i in some {
                let next =
                    if i.status == InsightStatus::Draft { InsightStatus::Approved } else { InsightStatus::Rejected };
                let mut m = i.into_active_model();
                m.status = Set(next);
                m.update(db).await.expect("status");
            }
            "L1 approvals flipped, insights moved between draft and approved"
        }
        _ => {
            // Break-glass: admin1 holds a current grant for coachee2 and an expired one for
            // coachee3; admin2 a revoked one for coachee4.
            let (admin1, admin2) = (user(app, "admin1@acme.test").await.id, user(app, "admin2@acme.test").await.id);
            let now = t0();
            for (grantee, approver, coachee, starts, revoked) in [
                (admin1, admin2, "coachee2", now - Duration::minutes(10), false),
                (admin1, admin2, "coachee3", now - Duration::minutes(90), false),
                (admin2, admin1, "coachee4", now - Duration::minutes(10), true),
            ] {
                let coachee = user(app, &format!("{coachee}@acme.test")).await.id;
                let request = break_glass_requests::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    tenant_id: Set(acme),
                    coachee_id: Set(coachee),
                    requested_by: Set(grantee),
                    reason: Set("test".to_owned()),
                    minutes: Set(60),
                    created_at: Set(starts),
                    approved_by: Set(Some(approver)),
                    approved_at: Set(Some(starts)),
                    revoked_at: Set(None),
                    revoked_by: Set(None),
                }
                .insert(db)
                .await
                .expect("request");
                break_glass_grants::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    tenant_id: Set(acme),
                    request_id: Set(request.id),
                    coachee_id: Set(coachee),
                    grantee_id: Set(grantee),
                    approved_by: Set(approver),
                    starts_at: Set(starts),
                    expires_at: Set(starts + Duration::minutes(60)),
                    revoked_at: Set(revoked.then_some(now)),
                }
                .insert(db)
                .await
                .expect("grant");
            }
            "break-glass grants: current, expired, revoked"
        }
    }
}

const STEPS: usize = 6;

async fn walls_agree_under_every_variation(app: &TestApp, app_conn: Option<&DatabaseConnection>) {
    let mut compared = 0;
    for step in 0..STEPS {
        let name = vary(app, step).await;
        let (found, admitted) = disagreements(app, app_conn).await;
        assert!(found.is_empty(), "after {name}:\n{}", found.join("\n"));
        for table in ContentTable::ALL {
            // The demo data has rows someone may read in every table but these two.
            let may_be_empty = matches!(table, ContentTable::AiActionProposals | ContentTable::AiAccessLog);
            assert!(may_be_empty || admitted[table.name()] > 0, "after {name}: nobody reads {}", table.name());
        }
        compared += 1;
    }
    assert_eq!(compared, STEPS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_check_and_list_filter_agree_on_sqlite() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    walls_agree_under_every_variation(&app, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_row_security_admits_exactly_what_the_row_policy_admits() {
    let Some(app) = TestApp::start(Backend::Postgres).await else { return };
    let app_conn = Database::connect(app.pg.as_ref().expect("pg").app_url()).await.expect("app role");
    walls_agree_under_every_variation(&app, Some(&app_conn)).await;
}

/// The comparison can fail: loosening one database policy (coach notes readable by every
/// coach of the tenant) is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loosened_database_policy_is_reported() {
    let Some(app) = TestApp::start(Backend::Postgres).await else { return };
    let app_conn = Database::connect(app.pg.as_ref().expect("pg").app_url()).await.expect("app role");
    assert!(disagreements(&app, Some(&app_conn)).await.0.is_empty(), "agree before");
    exec(&app, "ALTER POLICY coach_notes_read ON coach_notes USING ((SELECT app_role()) = 'COACH')").await;
    let (found, _) = disagreements(&app, Some(&app_conn)).await;
    let notes: Vec<&String> = found.iter().filter(|l| l.contains("on coach_notes: PostgreSQL admits")).collect();
    assert!(!notes.is_empty(), "the loosened policy must be reported: {found:?}");
    assert!(found.iter().all(|l| l.contains("coach_notes")), "nothing else: {found:?}");
}
