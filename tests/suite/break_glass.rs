//! Break-glass (POLICY.md section 6): a request by one program admin, approval by a different
//! admin of the same tenant (once, even when two race), a time-limited read-only grant scoped
//! to one coachee for the requester alone, every read under it audited with the grant id,
//! revocation and expiry effective on the next request, and the coachee's access notice. On
//! both backends; PostgreSQL's row-level security is checked on its own as well.

use std::collections::BTreeSet;

use chrono::Duration;
use coachgraph::db::entities::{
    access_notices, audit_events, break_glass_grants, break_glass_requests, tenants, users,
};
use coachgraph::domain::kinds::{AuditOutcome, Role};
use coachgraph::graphql::{self, Audience};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, Database, DbBackend, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, Statement, TransactionTrait,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::common::*;
use crate::consent::{check_mutations_exist_only_for, user_id};

const REQUEST: &str = "mutation($c: ID!, $r: String!, $m: Int!) { requestBreakGlass(coacheeId: $c, reason: $r, minutes: $m) { id coacheeId requestedBy approvedBy reason expiresAt active } }";
const APPROVE: &str = "mutation($id: ID!) { approveBreakGlass(id: $id) { id approvedBy expiresAt active } }";
const REVOKE: &str = "mutation($id: ID!) { revokeBreakGlass(id: $id) { id active } }";
const REASON: &str = "Safeguarding concern reported by the coach; need the recent session notes.";
/// Everything of one coachee that only a grant opens to an admin.
const READ: &str = "query($c: ID!) { user(id: $c) { goals { title } coachNotes { body } \
                    sessions { nodes { id transcript privateNotes draftInsights { id } } } } }";

fn code(v: &Value) -> Option<&str> {
    v["errors"][0]["extensions"]["code"].as_str()
}

fn message(v: &Value) -> &str {
    v["errors"][0]["message"].as_str().unwrap_or_default()
}

fn dt(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

async fn file(app: &TestApp, token: &str, coachee: Uuid, minutes: i64) -> Uuid {
    let res = app.gql_vars(token, REQUEST, json!({ "c": coachee, "r": REASON, "m": minutes })).await;
    let id = res["data"]["requestBreakGlass"]["id"].as_str().unwrap_or_else(|| panic!("request: {res}"));
    id.parse().expect("uuid")
}

async fn approve(app: &TestApp, token: &str, id: Uuid) -> Value {
    app.gql_vars(token, APPROVE, json!({ "id": id })).await
}

async fn grant_of(app: &TestApp, request: Uuid) -> Option<break_glass_grants::Model> {
    break_glass_grants::Entity::find()
        .filter(break_glass_grants::Column::RequestId.eq(request))
        .one(&app.owner)
        .await
        .expect("q")
}

/// A third program admin of acme (the demo has two), with the demo password.
async fn third_admin(app: &TestApp) -> Session {
    let admin1 = users::Entity::find()
        .filter(users::Column::Email.eq("admin1@acme.test"))
        .one(&app.owner)
        .await
        .expect("q")
        .expect("admin1");
    let admin3 = users::Model {
        id: Uuid::new_v4(),
        email: "admin3@acme.test".to_owned(),
        display_name: "Admin3 (Acme)".to_owned(),
        ..admin1
    };
    admin3.into_active_model().reset_all().insert(&app.owner).await.expect("insert admin3");
    app.session_for("admin3@acme.test").await
}

/// The GraphQL errors of `res` that carry `code`.
fn coded(res: &Value, c: &str) -> usize {
    res["errors"].as_array().map(|e| e.iter().filter(|e| e["extensions"]["code"] == c).count()).unwrap_or(0)
}

// --- requests -----------------------------------------------------------------------------

async fn requests_are_validated_and_name_a_coachee_of_the_tenant(app: &TestApp) {
    let admin = app.session_for("admin1@acme.test").await;
    let coachee = user_id(app, "coachee1@acme.test").await;
    let bad = |r: &str, m: i64, c: Uuid| json!({ "c": c, "r": r, "m": m });
    for vars in [
        bad(REASON, 0, coachee),
        bad(REASON, 61, coachee),
        bad("too short", 30, coachee),
        bad(&"x".repeat(501), 30, coachee),
    ] {
        let res = app.gql_vars(&admin.token, REQUEST, vars.clone()).await;
        assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{vars}: {res}");
    }
    for other in [user_id(app, "coachee1@globex.test").await, user_id(app, "coach1@acme.test").await, Uuid::new_v4()] {
        let res = app.gql_vars(&admin.token, REQUEST, bad(REASON, 30, other)).await;
        assert_eq!(code(&res), Some("NOT_FOUND"), "{res}");
    }
    assert_eq!(break_glass_requests::Entity::find().count(&app.owner).await.expect("count"), 0);

    let res = app.gql_vars(&admin.token, REQUEST, bad(REASON, 30, coachee)).await;
    let r = &res["data"]["requestBreakGlass"];
    assert_eq!(r["coacheeId"], json!(coachee), "{res}");
    assert_eq!(r["requestedBy"], json!(admin.user_id));
    assert_eq!(
        (r["approvedBy"].clone(), r["expiresAt"].clone(), r["active"].clone()),
        (json!(null), json!(null), json!(false))
    );
    assert_eq!(r["reason"], REASON);
    // The other admin of the tenant sees the pending request.
    let other = app.session_for("admin2@acme.test").await;
    let list = app.gql(&other.token, "{ breakGlassRequests { id active } }").await;
    assert_eq!(list["data"]["breakGlassRequests"], json!([{ "id": r["id"], "active": false }]), "{list}");
}
both_backends!(
    requests_are_validated_and_name_a_coachee_of_the_tenant,
    requests_are_validated_and_name_a_coachee_of_the_tenant
);

async fn self_approval_is_forbidden_and_another_tenant_finds_nothing(app: &TestApp) {
    let admin1 = app.session_for("admin1@acme.test").await;
    let coachee = user_id(app, "coachee1@acme.test").await;
    let id = file(app, &admin1.token, coachee, 30).await;

    let res = approve(app, &admin1.token, id).await;
    assert!(res["data"].is_null(), "{res}");
    assert_eq!(code(&res), Some("FORBIDDEN"), "self-approval: {res}");

    let globex = app.session_for("admin1@globex.test").await;
    let foreign = approve(app, &globex.token, id).await;
    let missing = approve(app, &globex.token, Uuid::new_v4()).await;
    assert_eq!(code(&foreign), Some("NOT_FOUND"), "{foreign}");
    assert_eq!(foreign["errors"], missing["errors"], "exactly like an id that does not exist");
    let revoke = app.gql_vars(&globex.token, REVOKE, json!({ "id": id })).await;
    assert_eq!(code(&revoke), Some("NOT_FOUND"), "{revoke}");

    assert!(grant_of(app, id).await.is_none(), "no grant issued");
    let denied = audit_events::Entity::find()
        .filter(audit_events::Column::ActorId.eq(admin1.user_id.parse::<Uuid>().expect("uuid")))
        .filter(audit_events::Column::Outcome.eq(AuditOutcome::Denied))
        .filter(audit_events::Column::Reason.contains("self-approval"))
        .count(&app.owner)
        .await
        .expect("count");
    assert_eq!(denied, 1);
    // Still pending: the requester reads nothing more than before.
    let res = app.gql_vars(&admin1.token, READ, json!({ "c": coachee })).await;
    assert_eq!(message(&res), "Unknown field \"goals\" on type \"User\".", "{res}");
}
both_backends!(
    self_approval_is_forbidden_and_another_tenant_finds_nothing,
    self_approval_is_forbidden_and_another_tenant_finds_nothing
);

async fn two_concurrent_approvals_issue_exactly_one_grant(app: &TestApp) {
    let admin1 = app.session_for("admin1@acme.test").await;
    let admin2 = app.session_for("admin2@acme.test").await;
    let admin3 = third_admin(app).await;
    let coachee = user_id(app, "coachee1@acme.test").await;
    let id = file(app, &admin1.token, coachee, 30).await;

    let (a, b) = tokio::join!(approve(app, &admin2.token, id), approve(app, &admin3.token, id));
    let won: Vec<&Value> = [&a, &b].into_iter().filter(|r| r["data"]["approveBreakGlass"].is_object()).collect();
    let lost: Vec<&Value> = [&a, &b].into_iter().filter(|r| code(r) == Some("CONFLICT")).collect();
    assert_eq!((won.len(), lost.len()), (1, 1), "one success, one CONFLICT: {a} {b}");
    assert!(lost[0]["data"].is_null());

    let grants =
        break_glass_grants::Entity::find().filter(break_glass_grants::Column::RequestId.eq(id)).all(&app.owner).await;
    let grants = grants.expect("q");
    assert_eq!(grants.len(), 1, "exactly one grant");
    let winner = won[0]["data"]["approveBreakGlass"]["approvedBy"].clone();
    assert_eq!(json!(grants[0].approved_by), winner, "the grant is the winner's");
    let request = break_glass_requests::Entity::find_by_id(id).one(&app.owner).await.expect("q").expect("row");
    assert_eq!(json!(request.approved_by), winner);
    assert_eq!(access_notices::Entity::find().count(&app.owner).await.expect("count"), 1, "one notice");
    // A late third approval is a conflict too.
    assert_eq!(code(&approve(app, &admin2.token, id).await), Some("CONFLICT"));
}
both_backends!(two_concurrent_approvals_issue_exactly_one_grant, two_concurrent_approvals_issue_exactly_one_grant);

// --- the grant ----------------------------------------------------------------------------

async fn the_requester_reads_one_coachee_under_the_grant_and_every_read_is_audited(app: &TestApp) {
    let admin1 = app.session_for("admin1@acme.test").await;
    let admin2 = app.session_for("admin2@acme.test").await;
    let coachee = user_id(app, "coachee1@acme.test").await;
    let other = user_id(app, "coachee2@acme.test").await;
    let id = file(app, &admin1.token, coachee, 30).await;
    app.clock.advance(Duration::minutes(2));
    let approved_at = t0() + Duration::minutes(2);
    let res = approve(app, &admin2.token, id).await;
    let r = &res["data"]["approveBreakGlass"];
    assert_eq!(r["approvedBy"], json!(admin2.user_id), "{res}");
    assert_eq!(r["expiresAt"], dt(approved_at + Duration::minutes(30)));
    assert_eq!(r["active"], true);
    let grant = grant_of(app, id).await.expect("grant");

    // The requester: goals, coach notes, transcripts, private notes, drafts of that coachee.
    let res = app.gql_vars(&admin1.token, READ, json!({ "c": coachee })).await;
    assert!(res["errors"].is_null(), "{res}");
    let user = &res["data"]["user"];
    assert!(!user["goals"].as_array().expect("goals").is_empty(), "{res}");
    assert!(!user["coachNotes"].as_array().expect("notes").is_empty());
    let sessions = user["sessions"]["nodes"].as_array().expect("sessions");
    assert!(sessions.iter().any(|s| s["transcript"].is_string()), "a transcript: {res}");
    assert!(sessions.iter().any(|s| s["privateNotes"].is_string()), "private notes: {res}");

    let audited: BTreeSet<String> = audit_events::Entity::find()
        .filter(audit_events::Column::GrantId.eq(grant.id))
        .filter(audit_events::Column::Action.eq("READ"))
        .filter(audit_events::Column::Outcome.eq(AuditOutcome::Allowed))
        .all(&app.owner)
        .await
        .expect("q")
        .into_iter()
        .map(|e| {
            assert_eq!(e.actor_role, Some(Role::ProgramAdmin));
            e.resource
        })
        .collect();
    for resource in ["goals", "coach_notes", "transcripts", "draft_insights"] {
        assert!(audited.contains(resource), "{resource} read audited with the grant id: {audited:?}");
    }

    // Another coachee stays closed: lists empty, fields null with FORBIDDEN.
    let res = app.gql_vars(&admin1.token, READ, json!({ "c": other })).await;
    let user = &res["data"]["user"];
    assert_eq!(user["goals"], json!([]), "{res}");
    assert_eq!(user["coachNotes"], json!([]));
    let sessions = user["sessions"]["nodes"].as_array().expect("sessions");
    assert!(!sessions.is_empty() && sessions.iter().all(|s| s["transcript"].is_null() && s["privateNotes"].is_null()));
    assert!(sessions.iter().all(|s| s["draftInsights"] == json!([])));
    assert_eq!(coded(&res, "FORBIDDEN"), 2 * sessions.len(), "transcript and privateNotes per session: {res}");

    // SYSTEM_INTERNAL stays closed; no write of content appears.
    let res = app.gql(&admin1.token, "{ auditEvents { nodes { action ipAddress } } }").await;
    assert_eq!(message(&res), "Unknown field \"ipAddress\" on type \"AuditEvent\".", "{res}");
    let res = app
        .gql_vars(&admin1.token, "query($u: ID!) { accountStatus(userId: $u) { active } }", json!({ "u": coachee }))
        .await;
    assert_eq!(message(&res), "Unknown field \"accountStatus\" on type \"Query\".", "{res}");
    let write = format!(r#"mutation {{ addCoachNote(coacheeId: "{coachee}", body: "x") {{ id }} }}"#);
    let res = app.gql(&admin1.token, &write).await;
    assert_eq!(message(&res), "Unknown field \"addCoachNote\" on type \"Mutation\".", "{res}");

    // The approver holds no grant: nothing of the coachee.
    let res = app.gql_vars(&admin2.token, READ, json!({ "c": coachee })).await;
    assert!(res["data"].is_null());
    assert_eq!(message(&res), "Unknown field \"goals\" on type \"User\".", "{res}");

    // The coachee's notice: who (the role), when, why.
    let me = app.session_for("coachee1@acme.test").await;
    let notices = app.gql(&me.token, "{ accessNotices { at actorRole reason } }").await;
    assert_eq!(
        notices["data"]["accessNotices"],
        json!([{ "at": dt(approved_at), "actorRole": "PROGRAM_ADMIN", "reason": REASON }]),
        "{notices}"
    );
    let other_coachee = app.session_for("coachee2@acme.test").await;
    let notices = app.gql(&other_coachee.token, "{ accessNotices { at } }").await;
    assert_eq!(notices["data"]["accessNotices"], json!([]));

    // The listing agrees.
    let list = app.gql(&admin2.token, "{ breakGlassRequests { id approvedBy expiresAt active } }").await;
    assert_eq!(
        list["data"]["breakGlassRequests"],
        json!([{ "id": id, "approvedBy": admin2.user_id, "expiresAt": dt(approved_at + Duration::minutes(30)), "active": true }]),
        "{list}"
    );
}
both_backends!(
    the_requester_reads_one_coachee_under_the_grant_and_every_read_is_audited,
    the_requester_reads_one_coachee_under_the_grant_and_every_read_is_audited
);

async fn expiry_ends_the_access_on_the_next_request(app: &TestApp) {
    let admin1 = app.session_for("admin1@acme.test").await;
    let admin2 = app.session_for("admin2@acme.test").await;
    let coachee = user_id(app, "coachee1@acme.test").await;
    let id = file(app, &admin1.token, coachee, 5).await;
    approve(app, &admin2.token, id).await;
    app.clock.advance(Duration::minutes(4) + Duration::seconds(59));
    let res = app.gql_vars(&admin1.token, READ, json!({ "c": coachee })).await;
    assert!(res["errors"].is_null(), "a second before expiry: {res}");

    app.clock.advance(Duration::seconds(1));
    let res = app.gql_vars(&admin1.token, READ, json!({ "c": coachee })).await;
    assert!(res["data"].is_null(), "{res}");
    assert_eq!(message(&res), "Unknown field \"goals\" on type \"User\".", "expired: {res}");
    let list = app.gql(&admin1.token, "{ breakGlassRequests { active } }").await;
    assert_eq!(list["data"]["breakGlassRequests"], json!([{ "active": false }]));
}
both_backends!(expiry_ends_the_access_on_the_next_request, expiry_ends_the_access_on_the_next_request);

async fn revocation_ends_the_access_on_the_next_request(app: &TestApp) {
    let admin1 = app.session_for("admin1@acme.test").await;
    let admin2 = app.session_for("admin2@acme.test").await;
    let coachee = user_id(app, "coachee1@acme.test").await;
    let id = file(app, &admin1.token, coachee, 60).await;
    approve(app, &admin2.token, id).await;
    let res = app.gql_vars(&admin1.token, READ, json!({ "c": coachee })).await;
    assert!(res["errors"].is_null(), "{res}");

    let res = app.gql_vars(&admin2.token, REVOKE, json!({ "id": id })).await;
    assert_eq!(res["data"]["revokeBreakGlass"], json!({ "id": id, "active": false }), "{res}");
    let res = app.gql_vars(&admin1.token, READ, json!({ "c": coachee })).await;
    assert_eq!(message(&res), "Unknown field \"goals\" on type \"User\".", "revoked: {res}");
    assert!(grant_of(app, id).await.expect("grant").revoked_at.is_some());

    assert_eq!(code(&app.gql_vars(&admin1.token, REVOKE, json!({ "id": id })).await), Some("CONFLICT"));
    assert_eq!(code(&approve(app, &admin2.token, id).await), Some("CONFLICT"));
    // A pending request can be withdrawn by its requester too, and never approved afterwards.
    let pending = file(app, &admin1.token, coachee, 10).await;
    let res = app.gql_vars(&admin1.token, REVOKE, json!({ "id": pending })).await;
    assert_eq!(res["data"]["revokeBreakGlass"]["active"], false, "{res}");
    assert_eq!(code(&approve(app, &admin2.token, pending).await), Some("CONFLICT"));
    assert!(grant_of(app, pending).await.is_none());
}
both_backends!(revocation_ends_the_access_on_the_next_request, revocation_ends_the_access_on_the_next_request);

async fn roles_without_the_right_cannot_name_the_break_glass_mutations(app: &TestApp) {
    let none = "00000000-0000-0000-0000-000000000000";
    let calls = [
        (
            "requestBreakGlass",
            format!(
                r#"mutation {{ requestBreakGlass(coacheeId: "{none}", reason: "{REASON}", minutes: 5) {{ id }} }}"#
            ),
        ),
        ("approveBreakGlass", format!(r#"mutation {{ approveBreakGlass(id: "{none}") {{ id }} }}"#)),
        ("revokeBreakGlass", format!(r#"mutation {{ revokeBreakGlass(id: "{none}") {{ id }} }}"#)),
    ];
    let mutations: Vec<(&str, &str, &str)> =
        calls.iter().map(|(name, call)| (*name, call.as_str(), "admin1@acme.test")).collect();
    check_mutations_exist_only_for(app, &mutations).await;
}
both_backends!(
    roles_without_the_right_cannot_name_the_break_glass_mutations,
    roles_without_the_right_cannot_name_the_break_glass_mutations
);

// --- the schema ---------------------------------------------------------------------------

/// The block `type <name> { ... }` of an SDL.
fn block<'a>(sdl: &'a str, name: &str) -> &'a str {
    let start = sdl.find(&format!("type {name} {{")).unwrap_or_else(|| panic!("type {name}"));
    let end = start + sdl[start..].find('}').expect("end");
    &sdl[start..end]
}

#[test]
fn the_break_glass_schema_is_fresh_and_adds_reads_only() {
    let catalog = graphql::catalog();
    let glass = graphql::schema::sdl(&catalog, Audience::BreakGlass).expect("sdl");
    let path = "tests/golden/schema/program_admin_break_glass.graphql";
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(on_disk == glass, "{path} is stale: run `cargo run -- export-schema` and review the diff");

    let admin = graphql::schema::sdl(&catalog, Audience::Role(Role::ProgramAdmin)).expect("sdl");
    assert_eq!(block(&glass, "Mutation"), block(&admin, "Mutation"), "no mutation added");
    assert_eq!(block(&glass, "Query"), block(&admin, "Query"), "no root query added");
    for opened in ["coachNotes: [CoachNote!]!", "goals: [Goal!]!", "transcript: String", "privateNotes: String"] {
        assert!(!admin.contains(opened), "{opened} is not the admin's normally");
        assert!(glass.contains(opened), "{opened} under a grant");
    }
    for closed in ["ipAddress", "accountStatus", "AccountStatus", "SystemConfig", "Consent", "AiActionProposal"] {
        assert!(!glass.contains(closed), "{closed} stays closed under a grant");
    }
}

// --- PostgreSQL row-level security --------------------------------------------------------

#[tokio::test]
async fn row_level_security_opens_content_to_the_grantee_only_while_the_grant_is_active() {
    let Some(app) = TestApp::start(Backend::Postgres).await else { return };
    let conn = Database::connect(app.pg.as_ref().expect("pg").app_url()).await.expect("app role");
    let acme = tenants::Entity::find().filter(tenants::Column::Slug.eq("acme")).one(&app.owner).await;
    let acme = acme.expect("q").expect("acme").id;
    let admin1 = user_id(&app, "admin1@acme.test").await;
    let admin2 = user_id(&app, "admin2@acme.test").await;
    let coachee = user_id(&app, "coachee1@acme.test").await;
    let other = user_id(&app, "coachee2@acme.test").await;

    // Rows of `table` about `c` visible to `admin` with the request clock `now` (None: unset).
    let visible = |admin: Uuid, now: Option<chrono::DateTime<chrono::Utc>>, table: &'static str, c: Uuid| {
        let conn = conn.clone();
        async move {
            let tx = conn.begin().await.expect("begin");
            tx.execute_unprepared(&format!("SELECT set_tenant_context('{acme}', '{admin}', 'PROGRAM_ADMIN')"))
                .await
                .expect("context");
            if let Some(now) = now {
                tx.execute_unprepared(&format!("SELECT set_config('app.now', '{}', true)", now.to_rfc3339()))
                    .await
                    .expect("clock");
            }
            let sql = format!("SELECT count(*) FROM {table} WHERE coachee_id = '{c}'");
            let row =
                tx.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.expect("q").expect("row");
            let n: i64 = row.try_get_by_index(0).expect("n");
            tx.rollback().await.expect("rollback");
            n
        }
    };
    let tables = ["goals", "coach_notes", "transcripts", "insights", "evidence_packs"];
    let now = Some(t0() + Duration::minutes(1));
    for table in tables {
        assert_eq!(visible(admin1, now, table, coachee).await, 0, "{table} before any grant");
    }

    let a1 = app.session_for("admin1@acme.test").await;
    let a2 = app.session_for("admin2@acme.test").await;
    let id = file(&app, &a1.token, coachee, 10).await;
    approve(&app, &a2.token, id).await;
    for table in tables {
        assert!(visible(admin1, now, table, coachee).await > 0, "{table} under the grant");
        assert_eq!(visible(admin1, now, table, other).await, 0, "{table} of another coachee");
        assert_eq!(visible(admin2, now, table, coachee).await, 0, "{table} for the approver");
        assert_eq!(visible(admin1, None, table, coachee).await, 0, "{table} without the request clock");
        assert_eq!(visible(admin1, Some(t0() - Duration::minutes(1)), table, coachee).await, 0, "{table} before");
        assert_eq!(visible(admin1, Some(t0() + Duration::minutes(10)), table, coachee).await, 0, "{table} expired");
    }

    // Read-only in the database too.
    let tx = conn.begin().await.expect("begin");
    tx.execute_unprepared(&format!("SELECT set_tenant_context('{acme}', '{admin1}', 'PROGRAM_ADMIN')"))
        .await
        .expect("ctx");
    tx.execute_unprepared(&format!(
        "SELECT set_config('app.now', '{}', true)",
        (t0() + Duration::minutes(1)).to_rfc3339()
    ))
    .await
    .expect("clock");
    let updated = tx
        .execute_unprepared(&format!("UPDATE goals SET title = 'x' WHERE coachee_id = '{coachee}'"))
        .await
        .expect("update runs")
        .rows_affected();
    assert_eq!(updated, 0);
    let deleted = tx
        .execute_unprepared(&format!("DELETE FROM coach_notes WHERE coachee_id = '{coachee}'"))
        .await
        .expect("delete runs")
        .rows_affected();
    assert_eq!(deleted, 0);
    tx.rollback().await.expect("rollback");

    app.gql_vars(&a2.token, REVOKE, json!({ "id": id })).await;
    for table in tables {
        assert_eq!(visible(admin1, now, table, coachee).await, 0, "{table} after revocation");
    }
}
