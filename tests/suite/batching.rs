//! Batching: each workload query costs a number of SQL statements that does not grow with
//! the number of coachees, sessions or items it returns (DataLoaders, one `IN (...)` per
//! relation and level). Counted at the demo size and again with the data grown.

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

async fn statements_for(app: &TestApp, token: &str, query: &str) -> (u64, Value) {
    let before = app.statements.load(Ordering::SeqCst);
    let res = app.gql(token, query).await;
    (app.statements.load(Ordering::SeqCst) - before, res)
}

async fn insert<A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send>(app: &TestApp, model: A)
where
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    model.insert(&app.owner).await.expect("insert");
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
        insert(
            app,
            users::Model {
                id,
                tenant_id: Some(tenant.id),
                email: format!("grown{i}@acme.test"),
                display_name: format!("Grown {i}"),
                role: Role::Coachee,
                status: UserStatus::Active,
                password_hash: None,
                failed_login_count: 0,
                locked_until: None,
                last_login_at: None,
                password_changed_at: None,
                created_at: now,
                updated_at: now,
            }
            .into_active_model()
            .reset_all(),
        )
        .await;
        insert(
            app,
            coach_assignments::Model {
                id: Uuid::new_v4(),
                tenant_id: tenant.id,
                coach_id: coach.id,
                coachee_id: id,
                active: true,
                ai_level: AiLevel::Act,
                created_at: now,
                ended_at: None,
            }
            .into_active_model()
            .reset_all(),
        )
        .await;
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
    // ...the statement counts did not.
    assert_eq!(small_dash, big_dash, "coach dashboard: {small_dash} vs {big_dash} statements");
    assert_eq!(small_client, big_client, "client app: {small_client} vs {big_client} statements");
    assert_eq!(small_report, big_report, "program report: {small_report} vs {big_report} statements");
    eprintln!(
        "{:?} statements per request: coach dashboard {big_dash}, client app {big_client}, program report {big_report}",
        app.backend
    );
}
both_backends!(
    workload_statement_counts_do_not_grow_with_the_data,
    workload_statement_counts_do_not_grow_with_the_data
);
