//! Data rights (POLICY.md section 10): `deleteMyAccount` (COACHEE, COACH; the password asked
//! again) and `deleteCoachee` (the COACH of an assigned coachee). Deletion is immediate and
//! reaches every table: the tests scan every uuid column of every table of the schema for
//! the deleted id and find it only as `audit_events.actor_id`, which is kept on purpose: the
//! trail is append-only and hash-chained, it records who did what (never content), and the
//! id resolves to nothing once the person is gone (see `coachgraph::domain::rights`).
//! No role can export more than its own data: there is no bulk export, and a coach has no
//! `myDataExport` at all.

use std::collections::{BTreeSet, HashMap};

use chrono::Duration;
use coachgraph::clock::Clock;
use coachgraph::db::entities::{
    access_notices, ai_access_log, ai_action_proposals, audit_events, break_glass_grants, break_glass_requests,
    coaching_sessions, consent_history, insights, integration_tokens, users,
};
use coachgraph::domain::kinds::{AuditOutcome, ConsentKind, Role};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, Statement, Value as DbValue,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::common::*;

const ACCOUNTS: [(&str, &str); 6] = ROLE_ACCOUNTS;

/// (root field, its type, a call naming it, the roles whose schema has it).
const FIELDS: [(&str, &str, &str, &[&str]); 3] = [
    ("deleteMyAccount", "Mutation", "mutation { deleteMyAccount(password: \"x\") }", &["COACHEE", "COACH"]),
    (
        "deleteCoachee",
        "Mutation",
        "mutation { deleteCoachee(id: \"00000000-0000-0000-0000-000000000000\") }",
        &["COACH"],
    ),
    ("myDataExport", "Query", "{ myDataExport { json } }", &["COACHEE"]),
];

const DELETE_ME: &str = "mutation($p: String!) { deleteMyAccount(password: $p) }";
const DELETE_COACHEE: &str = "mutation($id: ID!) { deleteCoachee(id: $id) }";

fn code(res: &Value) -> Option<&str> {
    res["errors"][0]["extensions"]["code"].as_str()
}

async fn user(app: &TestApp, email: &str) -> users::Model {
    users::Entity::find().filter(users::Column::Email.eq(email)).one(&app.owner).await.expect("q").expect("user")
}

async fn exists(app: &TestApp, id: Uuid) -> bool {
    users::Entity::find_by_id(id).one(&app.owner).await.expect("q").is_some()
}

async fn put<E>(app: &TestApp, model: E::Model)
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    E::insert(model.into_active_model().reset_all()).exec_without_returning(&app.owner).await.expect("insert");
}

/// Every uuid column of every table of the schema (`migrations::TABLES`).
async fn uuid_columns(app: &TestApp) -> Vec<(String, String)> {
    let backend = app.owner.get_database_backend();
    let mut out = Vec::new();
    for table in migrations::tables() {
        let sql = match backend {
            DbBackend::Postgres => format!(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = '{table}' AND data_type = 'uuid' ORDER BY 1"
            ),
            _ => format!("SELECT name FROM pragma_table_info('{table}') WHERE lower(type) LIKE '%uuid%' ORDER BY 1"),
        };
        let rows = app.owner.query_all_raw(Statement::from_string(backend, sql)).await.expect("columns");
        for r in rows {
            out.push((table.to_string(), r.try_get_by_index::<String>(0).expect("name")));
        }
    }
    assert!(out.len() >= 60, "every uuid column of every table: {out:?}");
    out
}

/// Where `id` still appears: (table, column) -> rows.
async fn references(app: &TestApp, id: Uuid) -> HashMap<(String, String), i64> {
    let backend = app.owner.get_database_backend();
    let placeholder = if backend == DbBackend::Postgres { "$1" } else { "?" };
    let mut found = HashMap::new();
    for (table, column) in uuid_columns(app).await {
        let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE \"{column}\" = {placeholder}");
        let row = app
            .owner
            .query_one_raw(Statement::from_sql_and_values(backend, sql, [DbValue::Uuid(Some(id))]))
            .await
            .expect("count")
            .expect("row");
        let n = row.try_get_by_index::<i64>(0).expect("n");
        if n > 0 {
            found.insert((table, column), n);
        }
    }
    found
}

/// The deleted id is nowhere but in the audit trail's actor column.
async fn assert_erased(app: &TestApp, id: Uuid) {
    let left = references(app, id).await;
    let unexpected: Vec<_> = left.keys().filter(|(t, c)| !(t == "audit_events" && c == "actor_id")).collect();
    assert!(unexpected.is_empty(), "rows still naming the deleted user: {left:?}");
}

async fn user_deleted_events(app: &TestApp) -> Vec<audit_events::Model> {
    audit_events::Entity::find()
        .filter(audit_events::Column::Action.eq("USER_DELETED"))
        .all(&app.owner)
        .await
        .expect("events")
}

/// Rows that name `person` in every way the schema allows, besides the demo data: an
/// integration token, AI log and proposal, break-glass request, grant and access notice
/// about it (coachee), or approvals, notices and consent changes it made (coach).
async fn more_rows_about(app: &TestApp, person: &users::Model) {
    let tenant = person.tenant_id.expect("tenant user");
    let now = app.clock.now();
    let admin1 = user(app, "admin1@acme.test").await;
    let admin2 = user(app, "admin2@acme.test").await;
    let ai = user(app, "ai@acme.test").await;
    let coachee1 = user(app, "coachee1@acme.test").await;
    put::<integration_tokens::Entity>(
        app,
        integration_tokens::Model {
            id: Uuid::new_v4(),
            tenant_id: tenant,
            user_id: person.id,
            name: "calendar".into(),
            token_hash: format!("{:x}", Uuid::new_v4().as_u128()),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
            use_audited_at: None,
        },
    )
    .await;
    if person.role == Role::Coachee {
        put::<ai_access_log::Entity>(
            app,
            ai_access_log::Model {
                id: Uuid::new_v4(),
                tenant_id: tenant,
                coachee_id: person.id,
                ai_principal_id: ai.id,
                model: "m".into(),
                purpose: "p".into(),
                resource: "goals".into(),
                action: "READ".into(),
                row_ids: "[]".into(),
                at: now,
            },
        )
        .await;
        put::<ai_action_proposals::Entity>(
            app,
            ai_action_proposals::Model {
                id: Uuid::new_v4(),
                tenant_id: tenant,
                coachee_id: person.id,
                proposed_by: ai.id,
                kind: "schedule".into(),
                payload: "{}".into(),
                created_at: now,
                confirmed_at: None,
            },
        )
        .await;
    }
    // A break-glass request and grant: about the coachee, or approved / revoked by the coach.
    let (subject, approver) =
        if person.role == Role::Coachee { (person.id, admin2.id) } else { (coachee1.id, person.id) };
    let request = Uuid::new_v4();
    put::<break_glass_requests::Entity>(
        app,
        break_glass_requests::Model {
            id: request,
            tenant_id: tenant,
            coachee_id: subject,
            requested_by: admin1.id,
            reason: "emergency".into(),
            minutes: 30,
            created_at: now,
            approved_by: Some(approver),
            approved_at: Some(now),
            revoked_at: Some(now),
            revoked_by: Some(approver),
        },
    )
    .await;
    let grant = Uuid::new_v4();
    put::<break_glass_grants::Entity>(
        app,
        break_glass_grants::Model {
            id: grant,
            tenant_id: tenant,
            request_id: request,
            coachee_id: subject,
            grantee_id: admin1.id,
            approved_by: approver,
            starts_at: now,
            expires_at: now + Duration::minutes(30),
            revoked_at: None,
        },
    )
    .await;
    let (notice_about, actor, actor_role) = if person.role == Role::Coachee {
        (person.id, admin1.id, Role::ProgramAdmin)
    } else {
        (coachee1.id, person.id, Role::Coach)
    };
    put::<access_notices::Entity>(
        app,
        access_notices::Model {
            id: Uuid::new_v4(),
            tenant_id: tenant,
            coachee_id: notice_about,
            actor_id: actor,
            actor_role,
            reason: "read under break-glass".into(),
            grant_id: Some(grant),
            at: now,
        },
    )
    .await;
    if person.role == Role::Coach {
        // A consent change recorded as made by the coach, and an insight of a coachee that is
        // not (or no longer) the coach's, approved by it: rows its own context cannot see.
        put::<consent_history::Entity>(
            app,
            consent_history::Model {
                id: Uuid::new_v4(),
                tenant_id: tenant,
                coachee_id: coachee1.id,
                kind: ConsentKind::TranscriptSharing,
                granted: true,
                changed_at: now,
                changed_by: person.id,
            },
        )
        .await;
        let insight = insights::Entity::find()
            .filter(insights::Column::CoacheeId.eq(coachee1.id))
            .filter(insights::Column::ApprovedBy.is_not_null())
            .one(&app.owner)
            .await
            .expect("q")
            .expect("an approved insight of coachee1");
        let mut row = insight.into_active_model();
        row.approved_by = sea_orm::ActiveValue::Set(Some(person.id));
        row.update(&app.owner).await.expect("approved by the coach");
    }
}

// ------------------------------------------------------------------ schema presence

async fn data_rights_fields_exist_only_for_their_roles(app: &TestApp) {
    for (email, role) in ACCOUNTS {
        let s = app.session_for(email).await;
        for ty in ["Mutation", "Query"] {
            let kind = if ty == "Mutation" { "mutationType" } else { "queryType" };
            let res = app.gql(&s.token, &format!("{{ __schema {{ {kind} {{ fields {{ name }} }} }} }}")).await;
            let names: BTreeSet<String> = res["data"]["__schema"][kind]["fields"]
                .as_array()
                .expect("fields")
                .iter()
                .filter_map(|f| f["name"].as_str().map(str::to_owned))
                .collect();
            for (field, field_ty, call, allowed) in FIELDS {
                if field_ty != ty {
                    continue;
                }
                assert_eq!(names.contains(field), allowed.contains(&role), "{email}: introspection of {field}");
                if !allowed.contains(&role) {
                    let res = app.gql(&s.token, call).await;
                    assert!(res["data"].is_null(), "{email} / {field}: {res}");
                    assert_eq!(
                        res["errors"][0]["message"],
                        format!("Unknown field \"{field}\" on type \"{ty}\"."),
                        "{email} / {field}: {res}"
                    );
                }
            }
        }
    }
}
both_backends!(data_rights_fields_exist_only_for_their_roles, data_rights_fields_exist_only_for_their_roles);

// ------------------------------------------------------------------ deleteMyAccount

async fn delete_my_account_needs_the_password_and_erases_the_coachee_everywhere(app: &TestApp) {
    let me = user(app, "coachee2@acme.test").await;
    more_rows_about(app, &me).await;
    let s = app.session_for("coachee2@acme.test").await;
    let other_device = app.session_for("coachee2@acme.test").await;
    let users_before = users::Entity::find().count(&app.owner).await.expect("count");

    let res = app.gql_vars(&s.token, DELETE_ME, json!({ "p": "not-my-password" })).await;
    assert_eq!(code(&res), Some("INVALID_CREDENTIALS"), "{res}");
    let res = app.gql_vars(&s.token, DELETE_ME, json!({ "p": format!(" {DEMO_PASSWORD} ") })).await;
    assert_eq!(code(&res), Some("INVALID_CREDENTIALS"), "the password is taken as typed: {res}");
    let res = app.gql_vars(&s.token, DELETE_ME, json!({ "p": "x".repeat(10_000) })).await;
    assert_eq!(code(&res), Some("INVALID_CREDENTIALS"), "{res}");
    let refused = audit_events::Entity::find()
        .filter(audit_events::Column::Action.eq("DELETE_ACCOUNT"))
        .filter(audit_events::Column::Outcome.eq(AuditOutcome::Denied))
        .filter(audit_events::Column::ActorId.eq(me.id))
        .count(&app.owner)
        .await
        .expect("count");
    assert_eq!(refused, 3, "every wrong password is audited");
    assert!(exists(app, me.id).await, "nothing deleted");

    let res = app.gql_vars(&s.token, DELETE_ME, json!({ "p": DEMO_PASSWORD })).await;
    assert_eq!(res["data"]["deleteMyAccount"], true, "{res}");
    assert!(!exists(app, me.id).await);
    assert_eq!(users::Entity::find().count(&app.owner).await.expect("count"), users_before - 1, "only this user");
    assert_erased(app, me.id).await;
    // Its tokens are refused from the next request on, on every device; it cannot log in.
    for token in [&s.token, &other_device.token] {
        let res = app.post(&Auth::Bearer(token.clone()), "{ viewer { id } }", json!({})).await;
        assert_eq!(res.error_code(), Some("UNAUTHENTICATED"), "{}", res.body);
    }
    assert_eq!(app.login_full("coachee2@acme.test", DEMO_PASSWORD).await.error_code(), Some("INVALID_CREDENTIALS"));

    // One USER_DELETED event, naming the id only.
    let deleted = user_deleted_events(app).await;
    assert_eq!(deleted.len(), 1);
    let reason = deleted[0].reason.as_deref().unwrap_or("");
    assert!(reason.contains(&me.id.to_string()), "{reason}");
    assert!(!reason.contains(&me.email) && !reason.contains(&me.display_name), "no content: {reason}");
    assert_eq!(deleted[0].outcome, AuditOutcome::Allowed);
    // The rest of the tenant is intact.
    let coachee1 = user(app, "coachee1@acme.test").await;
    let sessions = coaching_sessions::Entity::find()
        .filter(coaching_sessions::Column::CoacheeId.eq(coachee1.id))
        .count(&app.owner)
        .await
        .expect("count");
    assert_eq!(sessions, 3);
}
both_backends!(
    delete_my_account_needs_the_password_and_erases_the_coachee_everywhere,
    delete_my_account_needs_the_password_and_erases_the_coachee_everywhere
);

async fn a_coach_deleting_its_account_leaves_no_reference_behind(app: &TestApp) {
    let coach2 = user(app, "coach2@acme.test").await;
    more_rows_about(app, &coach2).await;
    let coachee1 = user(app, "coachee1@acme.test").await;
    let s = app.session_for("coach2@acme.test").await;
    let res = app.gql_vars(&s.token, DELETE_ME, json!({ "p": DEMO_PASSWORD })).await;
    assert_eq!(res["data"]["deleteMyAccount"], true, "{res}");
    assert!(!exists(app, coach2.id).await);
    assert_erased(app, coach2.id).await;

    // What named the coach without belonging to it stays, without the name: the insight it
    // approved (for another coach's coachee), the coachee's access notice and consent history.
    let approved = insights::Entity::find()
        .filter(insights::Column::CoacheeId.eq(coachee1.id))
        .filter(insights::Column::Status.eq(coachgraph::domain::kinds::InsightStatus::Approved))
        .count(&app.owner)
        .await
        .expect("count");
    assert_eq!(approved, 2, "coachee1's approved insights survive");
    let notice = access_notices::Entity::find()
        .filter(access_notices::Column::CoacheeId.eq(coachee1.id))
        .one(&app.owner)
        .await
        .expect("q")
        .expect("the notice stays with the coachee");
    assert_eq!(notice.actor_id, Uuid::nil());
    assert_eq!(notice.actor_role, Role::Coach);
    // Its own coachees stay (their sessions with this coach went with it).
    let coachee7 = user(app, "coachee7@acme.test").await;
    let left = coaching_sessions::Entity::find()
        .filter(coaching_sessions::Column::CoacheeId.eq(coachee7.id))
        .count(&app.owner)
        .await
        .expect("count");
    assert_eq!(left, 0);
    let res = app.post(&Auth::Bearer(s.token.clone()), "{ viewer { id } }", json!({})).await;
    assert_eq!(res.error_code(), Some("UNAUTHENTICATED"));
    assert_eq!(user_deleted_events(app).await.len(), 1);
}
both_backends!(
    a_coach_deleting_its_account_leaves_no_reference_behind,
    a_coach_deleting_its_account_leaves_no_reference_behind
);

// ------------------------------------------------------------------ deleteCoachee

async fn a_coach_deletes_an_assigned_coachee_and_every_row_about_it(app: &TestApp) {
    let coachee3 = user(app, "coachee3@acme.test").await;
    more_rows_about(app, &coachee3).await;
    let victim = app.session_for("coachee3@acme.test").await;
    let coach = app.session_for("coach1@acme.test").await;
    let res = app.gql_vars(&coach.token, DELETE_COACHEE, json!({ "id": coachee3.id })).await;
    assert_eq!(res["data"]["deleteCoachee"], true, "{res}");
    assert!(!exists(app, coachee3.id).await);
    assert_erased(app, coachee3.id).await;
    let res = app.post(&Auth::Bearer(victim.token.clone()), "{ viewer { id } }", json!({})).await;
    assert_eq!(res.error_code(), Some("UNAUTHENTICATED"), "the coachee's token is refused at once");
    let res = app.gql(&coach.token, "{ coachees(first: 100) { totalCount } }").await;
    assert_eq!(res["data"]["coachees"]["totalCount"], 5, "{res}");

    let deleted = user_deleted_events(app).await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].actor_id, Some(user(app, "coach1@acme.test").await.id));
    let reason = deleted[0].reason.as_deref().unwrap_or("");
    assert!(reason.contains(&coachee3.id.to_string()), "{reason}");
    assert!(!reason.contains(&coachee3.email) && !reason.contains(&coachee3.display_name), "{reason}");
}
both_backends!(
    a_coach_deletes_an_assigned_coachee_and_every_row_about_it,
    a_coach_deletes_an_assigned_coachee_and_every_row_about_it
);

async fn delete_coachee_is_refused_for_anyone_but_an_assigned_coachee(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await;
    let denials = || async {
        audit_events::Entity::find()
            .filter(audit_events::Column::Action.eq("DELETE_COACHEE"))
            .filter(audit_events::Column::Outcome.eq(AuditOutcome::Denied))
            .count(&app.owner)
            .await
            .expect("count")
    };
    let users_before = users::Entity::find().count(&app.owner).await.expect("count");
    // Another coach's coachee, another coach, an admin of the tenant: FORBIDDEN.
    for email in ["coachee7@acme.test", "coach2@acme.test", "admin1@acme.test", "coach1@acme.test"] {
        let id = user(app, email).await.id;
        let before = denials().await;
        let res = app.gql_vars(&coach.token, DELETE_COACHEE, json!({ "id": id })).await;
        assert_eq!(code(&res), Some("FORBIDDEN"), "{email}: {res}");
        assert_eq!(denials().await, before + 1, "{email}: audited");
    }
    // Another tenant's coachee is answered like an id that does not exist.
    let missing = app.gql_vars(&coach.token, DELETE_COACHEE, json!({ "id": Uuid::new_v4() })).await;
    assert_eq!(code(&missing), Some("NOT_FOUND"), "{missing}");
    let g = user(app, "coachee1@globex.test").await;
    let res = app.gql_vars(&coach.token, DELETE_COACHEE, json!({ "id": g.id })).await;
    assert_eq!(res["errors"], missing["errors"], "{res}");
    assert!(res["data"].is_null());
    let res = app.gql_vars(&coach.token, DELETE_COACHEE, json!({ "id": "not-an-id" })).await;
    assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");
    assert_eq!(users::Entity::find().count(&app.owner).await.expect("count"), users_before, "nothing deleted");
    assert!(user_deleted_events(app).await.is_empty());

    // An ended assignment is no assignment.
    let admin = app.session_for("admin1@acme.test").await;
    let coach1 = user(app, "coach1@acme.test").await;
    let coachee4 = user(app, "coachee4@acme.test").await;
    let res = app
        .gql_vars(
            &admin.token,
            "mutation($c: ID!, $e: ID!) { unassignCoach(coachId: $c, coacheeId: $e) }",
            json!({ "c": coach1.id, "e": coachee4.id }),
        )
        .await;
    assert_eq!(res["data"]["unassignCoach"], true, "{res}");
    let res = app.gql_vars(&coach.token, DELETE_COACHEE, json!({ "id": coachee4.id })).await;
    assert_eq!(code(&res), Some("FORBIDDEN"), "{res}");
    assert!(exists(app, coachee4.id).await);
}
both_backends!(
    delete_coachee_is_refused_for_anyone_but_an_assigned_coachee,
    delete_coachee_is_refused_for_anyone_but_an_assigned_coachee
);
