//! The tamper-evident audit trail: `verify-audit` recomputes every chain (each tenant's and
//! the platform's) and names the first broken link; `purge` removes events past retention
//! and ended sessions while keeping every chain verifiable (a PURGE event carries the new
//! anchor), and is itself audited; repeated denials by one principal raise one
//! SECURITY_ALERT per window. (That the application role can neither update nor delete
//! audit events is tested in `rls.rs`.)

use std::process::Command;

use chrono::Duration;
use coachgraph::clock::Clock;
use coachgraph::db::entities::{audit_events, auth_sessions, tenant_settings, tenants};
use coachgraph::domain::audit::{GENESIS_HASH, SECURITY_ALERT, event_hash};
use coachgraph::domain::kinds::{AuditOutcome, Role};
use coachgraph::ops::audit::{self as audit_tools, PURGE_ACTION, parse_anchor};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, Database, DbBackend, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, Statement, TransactionTrait, Value as DbValue,
};
use uuid::Uuid;

use crate::both_backends;
use crate::common::*;

async fn tenant_id(app: &TestApp, slug: &str) -> Uuid {
    tenants::Entity::find().filter(tenants::Column::Slug.eq(slug)).one(&app.owner).await.expect("q").expect("tenant").id
}

fn chain(tenant: Option<Uuid>) -> sea_orm::sea_query::SimpleExpr {
    match tenant {
        Some(t) => audit_events::Column::TenantId.eq(t),
        None => audit_events::Column::TenantId.is_null(),
    }
}

async fn chain_events(app: &TestApp, tenant: Option<Uuid>) -> Vec<audit_events::Model> {
    audit_events::Entity::find()
        .filter(chain(tenant))
        .order_by_asc(audit_events::Column::Seq)
        .all(&app.owner)
        .await
        .expect("events")
}

async fn event_count(app: &TestApp) -> u64 {
    audit_events::Entity::find().count(&app.owner).await.expect("count")
}

/// Runs `sql` (`$ID` standing for `id`) as the owner with the append-only trigger out of
/// the way for this transaction only (PostgreSQL: `session_replication_role = replica`,
/// superuser only).
async fn tamper_as(owner: &sea_orm::DatabaseConnection, backend: Backend, sql: &str, id: Uuid) {
    let tx = owner.begin().await.expect("begin");
    let db_backend = tx.get_database_backend();
    if backend == Backend::Postgres {
        tx.execute_unprepared("SET LOCAL session_replication_role = replica").await.expect("replica");
    }
    let placeholder = if backend == Backend::Postgres { "$1" } else { "?" };
    let stmt = Statement::from_sql_and_values(db_backend, sql.replace("$ID", placeholder), [DbValue::Uuid(Some(id))]);
    let done = tx.execute_raw(stmt).await.expect("tamper");
    assert_eq!(done.rows_affected(), 1, "{sql}");
    tx.commit().await.expect("commit");
}

async fn tamper(app: &TestApp, sql: &str, id: Uuid) {
    tamper_as(&app.owner, app.backend, sql, id).await;
}

/// Logins, a failure, an unknown email, a logout and a denial: events in the acme, globex
/// and platform chains.
async fn activity(app: &TestApp) {
    for email in ["coach1@acme.test", "admin1@acme.test", "coach1@globex.test", "root@coachgraph.test"] {
        app.login(email).await;
    }
    app.login_full("coachee1@acme.test", "wrong").await;
    app.login_full("ghost@nowhere.test", "wrong").await;
    app.login_full("coachee1@globex.test", "wrong").await;
    let s = app.login("coachee1@acme.test").await;
    app.gql(&s.token, "{ auditEvents { totalCount } }").await;
    app.gql(&s.token, "mutation { logout }").await;
}

// ------------------------------------------------------------------ verify

async fn verify_is_ok_after_activity_on_every_chain(app: &TestApp) {
    let fresh = audit_tools::verify(&app.owner).await.expect("verify");
    assert!(fresh.ok(), "{fresh:?}");
    activity(app).await;
    let report = audit_tools::verify(&app.owner).await.expect("verify");
    assert!(report.ok(), "{:?}", report.broken);
    assert_eq!(report.chains, 3, "acme, globex and the platform");
    assert_eq!(report.events, event_count(app).await);
}
both_backends!(verify_is_ok_after_activity_on_every_chain, verify_is_ok_after_activity_on_every_chain);

async fn verify_names_the_first_broken_link_of_each_chain(app: &TestApp) {
    activity(app).await;
    let acme = tenant_id(app, "acme").await;
    let globex = tenant_id(app, "globex").await;
    let acme_events = chain_events(app, Some(acme)).await;
    assert!(acme_events.len() >= 5, "{}", acme_events.len());
    let edited = &acme_events[1];
    assert_eq!(edited.seq, 2);
    tamper(app, "UPDATE audit_events SET reason = 'nothing happened' WHERE id = $ID", edited.id).await;
    let report = audit_tools::verify(&app.owner).await.expect("verify");
    assert_eq!(report.broken.len(), 1, "{:?}", report.broken);
    let link = &report.broken[0];
    assert_eq!((link.tenant_id, link.seq, link.event_id), (Some(acme), 2, edited.id), "{link}");
    assert!(link.to_string().contains(&format!("seq 2 event {}", edited.id)), "{link}");

    // A deleted event shows as a gap at the event after it.
    let globex_events = chain_events(app, Some(globex)).await;
    let gone = globex_events.first().expect("a globex event");
    tamper(app, "DELETE FROM audit_events WHERE id = $ID", gone.id).await;
    let report = audit_tools::verify(&app.owner).await.expect("verify");
    assert_eq!(report.broken.len(), 2, "{:?}", report.broken);
    let g = report.broken.iter().find(|b| b.tenant_id == Some(globex)).expect("globex broken");
    assert_eq!(g.seq, gone.seq + 1);

    // A recomputed hash does not hide an edit: the next event's link breaks instead.
    let platform = chain_events(app, None).await;
    assert!(platform.len() >= 2);
    let mut forged = platform[0].clone();
    forged.reason = Some("rewritten".into());
    forged.hash = event_hash(&forged);
    let sql = format!("UPDATE audit_events SET reason = 'rewritten', hash = '{}' WHERE id = $ID", forged.hash);
    tamper(app, &sql, forged.id).await;
    let report = audit_tools::verify(&app.owner).await.expect("verify");
    let p = report.broken.iter().find(|b| b.tenant_id.is_none()).expect("platform broken");
    assert_eq!(p.seq, platform[1].seq);
}
both_backends!(verify_names_the_first_broken_link_of_each_chain, verify_names_the_first_broken_link_of_each_chain);

// ------------------------------------------------------------------ purge

async fn purge_removes_expired_events_and_sessions_and_every_chain_still_verifies(app: &TestApp) {
    let acme = tenant_id(app, "acme").await;
    let globex = tenant_id(app, "globex").await;
    activity(app).await;
    // globex keeps its audit trail for a year.
    let mut g =
        tenant_settings::Entity::find_by_id(globex).one(&app.owner).await.expect("q").expect("row").into_active_model();
    g.audit_retention_days = Set(365);
    g.update(&app.owner).await.expect("globex retention");
    let old_acme = chain_events(app, Some(acme)).await;
    let old_globex = chain_events(app, Some(globex)).await;
    let old_platform = chain_events(app, None).await;
    let sessions_before = auth_sessions::Entity::find().count(&app.owner).await.expect("count");
    assert!(sessions_before >= 5);

    app.clock.advance(Duration::days(91));
    let fresh = app.login("coachee4@acme.test").await;
    let report = audit_tools::purge(&app.owner, app.clock.now()).await.expect("purge");
    let acme_purge = report.chains.iter().find(|c| c.tenant_id == Some(acme)).expect("acme purged");
    assert_eq!(acme_purge.events, old_acme.len() as u64);
    assert_eq!(acme_purge.anchor.seq, old_acme.last().expect("last").seq);
    assert_eq!(acme_purge.anchor.hash, old_acme.last().expect("last").hash);
    let globex_purge = report.chains.iter().find(|c| c.tenant_id == Some(globex)).expect("globex sessions purged");
    assert_eq!(globex_purge.events, 0, "globex keeps 365 days");
    assert!(globex_purge.sessions >= 1);
    let platform_purge = report.chains.iter().find(|c| c.tenant_id.is_none()).expect("platform purged");
    assert_eq!(platform_purge.events, old_platform.len() as u64);

    // What is left: the new login, and one PURGE event per chain with the counts.
    let acme_now = chain_events(app, Some(acme)).await;
    assert!(acme_now.iter().all(|e| e.at >= app.clock.now() - Duration::days(90)), "nothing older than retention");
    let purge_event = acme_now.iter().find(|e| e.action == PURGE_ACTION).expect("PURGE in the acme chain");
    assert_eq!(purge_event.outcome, AuditOutcome::Allowed);
    assert_eq!(purge_event.actor_id, None);
    let reason = purge_event.reason.as_deref().expect("reason");
    assert!(reason.contains(&format!("purged {} audit events", old_acme.len())), "{reason}");
    assert_eq!(parse_anchor(reason).map(|a| a.seq), Some(old_acme.last().expect("last").seq));
    assert_eq!(chain_events(app, Some(globex)).await.len(), old_globex.len() + 1, "globex: its events and the PURGE");

    // Only ended sessions went: the fresh one still works.
    let open = auth_sessions::Entity::find().count(&app.owner).await.expect("count");
    assert_eq!(open, 1, "only the fresh session is left");
    let res = app.gql(&fresh.token, "{ viewer { id } }").await;
    assert!(res["data"]["viewer"]["id"].is_string(), "{res}");

    let verified = audit_tools::verify(&app.owner).await.expect("verify");
    assert!(verified.ok(), "{:?}", verified.broken);
    assert_eq!(verified.chains, 3);

    // The chains go on from the PURGE event, and a second purge anchors on the first.
    activity(app).await;
    assert!(audit_tools::verify(&app.owner).await.expect("verify").ok());
    app.clock.advance(Duration::days(400));
    app.login("coach2@acme.test").await;
    let second = audit_tools::purge(&app.owner, app.clock.now()).await.expect("purge");
    assert!(second.chains.iter().any(|c| c.tenant_id == Some(globex) && c.events > 0), "{second:?}");
    let verified = audit_tools::verify(&app.owner).await.expect("verify");
    assert!(verified.ok(), "{:?}", verified.broken);
    // Nothing to purge: no event.
    let before = event_count(app).await;
    let third = audit_tools::purge(&app.owner, app.clock.now()).await.expect("purge");
    assert!(third.chains.iter().all(|c| c.events == 0));
    assert_eq!(event_count(app).await, before + third.chains.len() as u64);
    assert!(audit_tools::verify(&app.owner).await.expect("verify").ok());

    // An edit after the purge is still found, by seq.
    let acme_now = chain_events(app, Some(acme)).await;
    let logins: Vec<_> = acme_now.iter().filter(|e| e.action == "LOGIN").collect();
    let target = logins[logins.len() / 2];
    tamper(app, "UPDATE audit_events SET action = 'TAMPERED' WHERE id = $ID", target.id).await;
    let report = audit_tools::verify(&app.owner).await.expect("verify");
    assert_eq!(report.broken.len(), 1);
    assert_eq!((report.broken[0].seq, report.broken[0].event_id), (target.seq, target.id));
    // Moving the anchor (editing the PURGE event) breaks the chain too.
    let globex_purge = chain_events(app, Some(globex))
        .await
        .into_iter()
        .rev()
        .find(|e| e.action == PURGE_ACTION)
        .expect("globex PURGE");
    tamper(app, "UPDATE audit_events SET reason = 'purged 0 audit events; anchor seq=0 hash=0000000000000000000000000000000000000000000000000000000000000000' WHERE id = $ID", globex_purge.id).await;
    let report = audit_tools::verify(&app.owner).await.expect("verify");
    assert!(report.broken.iter().any(|b| b.tenant_id == Some(globex)), "{:?}", report.broken);
}
both_backends!(
    purge_removes_expired_events_and_sessions_and_every_chain_still_verifies,
    purge_removes_expired_events_and_sessions_and_every_chain_still_verifies
);

// ------------------------------------------------------------------ security alerts

async fn alerts(app: &TestApp, actor: Uuid) -> Vec<audit_events::Model> {
    audit_events::Entity::find()
        .filter(audit_events::Column::Action.eq(SECURITY_ALERT))
        .filter(audit_events::Column::ActorId.eq(actor))
        .all(&app.owner)
        .await
        .expect("alerts")
}

async fn repeated_denials_raise_one_security_alert_per_window(app: &TestApp) {
    let s = app.session_for("coachee1@acme.test").await;
    let me: Uuid = s.user_id.parse().expect("id");
    let probe = "{ auditEvents(first: 1) { totalCount } }";
    for _ in 0..9 {
        app.gql(&s.token, probe).await;
    }
    assert!(alerts(app, me).await.is_empty(), "9 denials: no alert yet");
    app.gql(&s.token, probe).await;
    let raised = alerts(app, me).await;
    assert_eq!(raised.len(), 1, "the 10th denial within 10 minutes raises one");
    assert_eq!(raised[0].outcome, AuditOutcome::Alert);
    assert_eq!(raised[0].actor_role, Some(Role::Coachee));
    assert!(raised[0].reason.as_deref().unwrap_or("").contains("10 denied"), "{:?}", raised[0].reason);
    for _ in 0..5 {
        app.gql(&s.token, probe).await;
    }
    assert_eq!(alerts(app, me).await.len(), 1, "at most one alert per window");
    // Another principal's denials are counted for it alone.
    let other = app.session_for("coachee2@acme.test").await;
    app.gql(&other.token, probe).await;
    assert!(alerts(app, other.user_id.parse().expect("id")).await.is_empty());

    app.clock.advance(Duration::minutes(11));
    for _ in 0..9 {
        app.gql(&s.token, probe).await;
    }
    assert_eq!(alerts(app, me).await.len(), 1, "the old denials have left the window");
    app.gql(&s.token, probe).await;
    assert_eq!(alerts(app, me).await.len(), 2, "a new window, a new alert");

    // The tenant's admin finds it among the alerts.
    let admin = app.session_for("admin1@acme.test").await;
    let res = app.gql(&admin.token, "{ auditEvents(outcome: \"ALERT\") { nodes { action actorId outcome } } }").await;
    let nodes = res["data"]["auditEvents"]["nodes"].as_array().unwrap_or_else(|| panic!("{res}"));
    let mine = nodes.iter().filter(|n| n["action"] == SECURITY_ALERT && n["actorId"] == s.user_id).count();
    assert_eq!(mine, 2, "{res}");
    assert!(nodes.iter().all(|n| n["outcome"] == "ALERT"));
    assert!(audit_tools::verify(&app.owner).await.expect("verify").ok(), "alerts are links of the chain");
}
both_backends!(
    repeated_denials_raise_one_security_alert_per_window,
    repeated_denials_raise_one_security_alert_per_window
);

// ------------------------------------------------------------------ the commands

fn coachgraph(args: &[&str], database_url: &str, migration_url: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coachgraph"));
    cmd.args(args).env("DATABASE_URL", database_url).env("RUST_LOG", "error").env_remove("MIGRATION_DATABASE_URL");
    if let Some(url) = migration_url {
        cmd.env("MIGRATION_DATABASE_URL", url);
    }
    cmd.output().expect("run coachgraph")
}

/// Runs `verify-audit` (OK, exit 0), breaks event `seq` 2 of a chain, runs it again (the
/// link named, exit 1), then `purge` (exit 0).
async fn commands_verify_and_purge(
    owner: &sea_orm::DatabaseConnection,
    backend: Backend,
    database_url: &str,
    migration_url: Option<&str>,
) {
    let ok = coachgraph(&["verify-audit"], database_url, migration_url);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(stdout.starts_with("OK"), "{stdout}");

    let second = audit_events::Entity::find()
        .filter(audit_events::Column::Seq.eq(2))
        .order_by_asc(audit_events::Column::Id)
        .one(owner)
        .await
        .expect("q")
        .expect("an event with seq 2");
    tamper_as(owner, backend, "UPDATE audit_events SET action = 'TAMPERED' WHERE id = $ID", second.id).await;
    let broken = coachgraph(&["verify-audit"], database_url, migration_url);
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("seq 2 event {}", second.id)), "{stdout}");

    let purged = coachgraph(&["purge"], database_url, migration_url);
    assert!(purged.status.success(), "{}", String::from_utf8_lossy(&purged.stderr));
    assert!(String::from_utf8_lossy(&purged.stdout).contains("purged"));
}

#[tokio::test]
async fn the_commands_verify_and_purge_on_sqlite() {
    let path = std::env::temp_dir().join(format!("coachgraph-audit-{}.db", Uuid::new_v4().simple()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let conn = Database::connect(&url).await.expect("sqlite file");
    migrate(&conn).await;
    // A platform chain of three events, written as the server writes them.
    let mut prev = GENESIS_HASH.to_owned();
    for seq in 1..=3 {
        let mut e = audit_events::Model {
            id: Uuid::new_v4(),
            tenant_id: None,
            seq,
            at: t0(),
            actor_id: None,
            actor_role: None,
            action: "LOGIN_FAILED".into(),
            resource: "auth".into(),
            outcome: AuditOutcome::Denied,
            reason: Some("unknown account".into()),
            ip_address: None,
            grant_id: None,
            prev_hash: prev.clone(),
            hash: String::new(),
            request_id: None,
        };
        e.hash = event_hash(&e);
        prev = e.hash.clone();
        audit_events::Entity::insert(coachgraph::domain::audit::active_model(e))
            .exec_without_returning(&conn)
            .await
            .expect("insert");
    }
    commands_verify_and_purge(&conn, Backend::Sqlite, &url, None).await;
    // Without the owner connection, PostgreSQL is refused (SQLite needs none).
    let refused = coachgraph(&["verify-audit"], "postgres://coachgraph_app@127.0.0.1:1/none", None);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("MIGRATION_DATABASE_URL"));
    drop(conn);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let _ = std::fs::remove_file(path.with_extension("db-shm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_verify_and_purge_on_postgres() {
    let Some(app) = TestApp::start(Backend::Postgres).await else {
        return;
    };
    activity(&app).await;
    let pg = app.pg.as_ref().expect("pg");
    commands_verify_and_purge(&app.owner, Backend::Postgres, &pg.app_url(), Some(&pg.owner_url())).await;
    assert_eq!(app.owner.get_database_backend(), DbBackend::Postgres);
}
