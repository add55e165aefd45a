//! `seed-scale` (`coachgraph::seed::scale`): a tiny shape beside the demo data, on both
//! backends: the rows of every table it writes, logins with the shared password, a coach
//! who sees exactly its coachees, and the same ids as on a fresh database elsewhere.

use std::collections::BTreeSet;

use coachgraph::db::Db;
use coachgraph::seed::scale::{self, Shape};
use indicatif::ProgressBar;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::json;
use uuid::Uuid;

use crate::both_backends;
use crate::common::*;

const SHAPE: Shape =
    Shape { tenants: 2, coaches: 2, coachees_per_coach: 3, sessions_per_coachee: 6, admins: 1, executives: 1 };

/// The tables `seed_scale` writes (with a `tenant_id`).
const TABLES: [&str; 15] = [
    "tenant_settings",
    "users",
    "coach_assignments",
    "consents",
    "consent_history",
    "coaching_sessions",
    "session_summaries",
    "session_private_notes",
    "transcripts",
    "insights",
    "evidence_packs",
    "action_items",
    "goals",
    "coach_notes",
    "ai_feedback",
];

const IN_SCALE: &str = "tenant_id IN (SELECT id FROM tenants WHERE slug LIKE 'scale%')";

async fn ids(conn: &DatabaseConnection, table: &str) -> BTreeSet<Uuid> {
    let id = if table == "tenant_settings" { "tenant_id" } else { "id" };
    let sql = format!("SELECT {id} FROM {table} WHERE {IN_SCALE}");
    let rows = conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql)).await.expect("ids");
    rows.iter().map(|r| r.try_get_by_index::<Uuid>(0).expect("uuid")).collect()
}

async fn seeded(app: &TestApp) {
    let db = match &app.pg {
        Some(pg) => Db::connect(&pg.owner_url()).await.expect("owner db"),
        None => app.state.db.clone(),
    };
    let report = scale::seed_scale(&db, SHAPE, t0(), &ProgressBar::hidden()).await.expect("seed").expect("written");
    // Twice: the second time finds it present and writes nothing.
    assert!(scale::seed_scale(&db, SHAPE, t0(), &ProgressBar::hidden()).await.expect("again").is_none());
    // The program-metric rollups of the loaded rows are exact (on PostgreSQL they are built
    // after the load, with the row triggers off).
    crate::metric_rollups::assert_exact(&app.owner, "seed-scale").await;

    // Row counts: what the shape dictates, and what the report says for every table.
    let coachees = (SHAPE.tenants * SHAPE.coachees()) as i64;
    let dictated = [
        ("tenant_settings", SHAPE.tenants as i64),
        ("users", (SHAPE.tenants * SHAPE.accounts()) as i64),
        ("coach_assignments", coachees),
        ("coaching_sessions", coachees * SHAPE.sessions_per_coachee as i64),
        ("goals", coachees * 3),
        ("coach_notes", coachees * 2),
    ];
    for table in TABLES {
        let rows = app.count(&format!("SELECT COUNT(*) FROM {table} WHERE {IN_SCALE}")).await;
        assert!(rows > 0, "{table}: no rows");
        assert_eq!(rows as u64, report.rows(table), "{table}: rows in the database vs the report");
        if let Some((_, n)) = dictated.iter().find(|(t, _)| *t == table) {
            assert_eq!(rows, *n, "{table}");
        }
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM tenants WHERE slug LIKE 'scale%'").await, SHAPE.tenants as i64);
    let states = app.count(&format!("SELECT COUNT(DISTINCT status) FROM coaching_sessions WHERE {IN_SCALE}")).await;
    assert_eq!(states, 3, "scheduled, completed and cancelled sessions");
    assert!(coachgraph::seed::demo_present(&db).await.expect("marker"), "production must refuse scale data");

    // A coach logs in with the shared password and sees exactly its coachees.
    let login = app.login_full(&scale::email("coach2", 1), scale::SCALE_PASSWORD).await;
    let token = login.body["data"]["login"]["token"].as_str().expect("coach2 logs in").to_owned();
    let res = app
        .gql(&token, "{ coachees(first: 50) { totalCount nodes { email sessions(first: 10) { nodes { id } } } } }")
        .await;
    assert!(res["errors"].is_null(), "{res}");
    assert_eq!(res["data"]["coachees"]["totalCount"], json!(SHAPE.coachees_per_coach));
    let emails: BTreeSet<String> = res["data"]["coachees"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["email"].as_str().expect("email").to_owned())
        .collect();
    let expected: BTreeSet<String> = (4..=6).map(|n| scale::email(&format!("coachee{n}"), 1)).collect();
    assert_eq!(emails, expected);
    for node in res["data"]["coachees"]["nodes"].as_array().expect("nodes") {
        assert_eq!(node["sessions"]["nodes"].as_array().expect("sessions").len(), SHAPE.sessions_per_coachee);
    }

    // A coachee reads its own data.
    let coachee = app.session_for(&scale::email("coachee4", 2)).await;
    let me = app.gql(&coachee.token, "{ me { email goals { id } sessions(first: 10) { nodes { id } } } }").await;
    assert!(me["errors"].is_null(), "{me}");
    assert_eq!(me["data"]["me"]["email"], json!(scale::email("coachee4", 2)));
    assert_eq!(me["data"]["me"]["goals"].as_array().expect("goals").len(), 3);

    // Determinism: a fresh SQLite database gets the very same ids.
    let fresh = Db::connect("sqlite::memory:").await.expect("sqlite");
    let fresh_conn = coachgraph::db::testing::connection(&fresh);
    migrate(fresh_conn).await;
    scale::seed_scale(&fresh, SHAPE, t0(), &ProgressBar::hidden()).await.expect("seed fresh").expect("written");
    for table in TABLES {
        assert_eq!(ids(&app.owner, table).await, ids(fresh_conn, table).await, "{table}: ids differ");
    }
    assert!(ids(&app.owner, "coaching_sessions").await.contains(&scale::scale_id("t1/session/1/0")));
}

both_backends!(seed_scale_writes_every_table_deterministically, seeded);
