//! Administrators' and operators' mutations: assignCoach, unassignCoach, inviteUser,
//! deactivateUser, updateTenantSettings (PROGRAM_ADMIN of the tenant), updateSystemConfig,
//! unlockAccount (SYSTEM_ADMIN). For each: the roles whose schema has it (every other role
//! gets the misspelled-field error), the happy path and its audit event (target ids, never
//! content), another tenant's ids answered like missing ones (audited, nothing written),
//! and input limits (BAD_USER_INPUT, nothing written).

use std::collections::{BTreeSet, HashMap};

use coachgraph::db::entities::{
    audit_events, auth_sessions, coach_assignments, system_config, tenant_settings, tenants, users,
};
use coachgraph::domain::kinds::{AiLevel, AuditOutcome, Role, UserStatus};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::common::*;

const ACCOUNTS: [(&str, &str); 6] = ROLE_ACCOUNTS;

const NIL: &str = "00000000-0000-0000-0000-000000000000";

/// (mutation, a call naming it, the roles whose schema has it).
const MUTATIONS: [(&str, &str, &[&str]); 7] = [
    (
        "assignCoach",
        "mutation { assignCoach(coachId: \"00000000-0000-0000-0000-000000000000\", coacheeId: \"00000000-0000-0000-0000-000000000000\") }",
        &["PROGRAM_ADMIN"],
    ),
    (
        "unassignCoach",
        "mutation { unassignCoach(coachId: \"00000000-0000-0000-0000-000000000000\", coacheeId: \"00000000-0000-0000-0000-000000000000\") }",
        &["PROGRAM_ADMIN"],
    ),
    (
        "inviteUser",
        "mutation { inviteUser(email: \"x@acme.test\", displayName: \"X\", role: COACHEE) { id } }",
        &["PROGRAM_ADMIN"],
    ),
    ("deactivateUser", "mutation { deactivateUser(id: \"00000000-0000-0000-0000-000000000000\") }", &["PROGRAM_ADMIN"]),
    (
        "updateTenantSettings",
        "mutation { updateTenantSettings(input: { sessionTimeoutMinutes: 60 }) { sessionTimeoutMinutes } }",
        &["PROGRAM_ADMIN"],
    ),
    (
        "updateSystemConfig",
        "mutation { updateSystemConfig(key: \"k\", value: \"v\") { entries { key } } }",
        &["SYSTEM_ADMIN"],
    ),
    (
        "unlockAccount",
        "mutation { unlockAccount(userId: \"00000000-0000-0000-0000-000000000000\") }",
        &["SYSTEM_ADMIN"],
    ),
];

fn code(res: &Value) -> Option<&str> {
    res["errors"][0]["extensions"]["code"].as_str()
}

async fn user(app: &TestApp, email: &str) -> users::Model {
    users::Entity::find().filter(users::Column::Email.eq(email)).one(&app.owner).await.expect("q").expect("user")
}

async fn tenant_id(app: &TestApp, slug: &str) -> Uuid {
    tenants::Entity::find().filter(tenants::Column::Slug.eq(slug)).one(&app.owner).await.expect("q").expect("tenant").id
}

async fn events(app: &TestApp, action: &str) -> Vec<audit_events::Model> {
    audit_events::Entity::find().filter(audit_events::Column::Action.eq(action)).all(&app.owner).await.expect("events")
}

async fn denials(app: &TestApp) -> u64 {
    audit_events::Entity::find()
        .filter(audit_events::Column::Outcome.eq(AuditOutcome::Denied))
        .count(&app.owner)
        .await
        .expect("count")
}

async fn assignments(app: &TestApp) -> u64 {
    coach_assignments::Entity::find().count(&app.owner).await.expect("count")
}

async fn user_count(app: &TestApp) -> u64 {
    users::Entity::find().count(&app.owner).await.expect("count")
}

// ------------------------------------------------------------------ schema presence

async fn admin_mutations_exist_only_for_the_roles_the_policy_allows(app: &TestApp) {
    let mut sessions = HashMap::new();
    for (email, role) in ACCOUNTS {
        sessions.insert(role, app.session_for(email).await);
    }
    for (email, role) in ACCOUNTS {
        let token = &sessions[role].token;
        let res = app.gql(token, "{ __schema { mutationType { fields { name } } } }").await;
        let names: BTreeSet<String> = res["data"]["__schema"]["mutationType"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .filter_map(|f| f["name"].as_str().map(str::to_owned))
            .collect();
        for (field, call, allowed) in MUTATIONS {
            assert_eq!(names.contains(field), allowed.contains(&role), "{email}: introspection of {field}");
            if !allowed.contains(&role) {
                let res = app.gql(token, call).await;
                assert!(res["data"].is_null(), "{email} / {field}: {res}");
                assert_eq!(
                    res["errors"][0]["message"],
                    format!("Unknown field \"{field}\" on type \"Mutation\"."),
                    "{email} / {field}: {res}"
                );
            }
        }
    }
}
both_backends!(
    admin_mutations_exist_only_for_the_roles_the_policy_allows,
    admin_mutations_exist_only_for_the_roles_the_policy_allows
);

// ------------------------------------------------------------------ assignments

const ASSIGN: &str = "mutation($c: ID!, $e: ID!) { assignCoach(coachId: $c, coacheeId: $e) }";
const UNASSIGN: &str = "mutation($c: ID!, $e: ID!) { unassignCoach(coachId: $c, coacheeId: $e) }";
const COACHEES: &str = "{ coachees(first: 100) { totalCount nodes { id } } }";

async fn coach_reaches(app: &TestApp, token: &str, coachee: Uuid) -> bool {
    let res = app.gql(token, COACHEES).await;
    let nodes = res["data"]["coachees"]["nodes"].as_array().unwrap_or_else(|| panic!("{res}"));
    nodes.iter().any(|n| n["id"] == coachee.to_string())
}

async fn assign_and_unassign_change_what_the_coach_reaches(app: &TestApp) {
    let admin = app.session_for("admin1@acme.test").await;
    let coach = app.session_for("coach1@acme.test").await;
    let coach1 = user(app, "coach1@acme.test").await;
    let coachee7 = user(app, "coachee7@acme.test").await;
    assert!(!coach_reaches(app, &coach.token, coachee7.id).await);
    let vars = json!({ "c": coach1.id, "e": coachee7.id });

    let res = app.gql_vars(&admin.token, ASSIGN, vars.clone()).await;
    assert_eq!(res["data"]["assignCoach"], true, "{res}");
    assert!(coach_reaches(app, &coach.token, coachee7.id).await, "assigned: the coach reaches the coachee");
    // Assigning again changes nothing.
    let res = app.gql_vars(&admin.token, ASSIGN, vars.clone()).await;
    assert_eq!(res["data"]["assignCoach"], true, "{res}");
    let pair = || {
        coach_assignments::Entity::find()
            .filter(coach_assignments::Column::CoachId.eq(coach1.id))
            .filter(coach_assignments::Column::CoacheeId.eq(coachee7.id))
    };
    assert_eq!(pair().count(&app.owner).await.expect("count"), 1);

    let res = app.gql_vars(&admin.token, UNASSIGN, vars.clone()).await;
    assert_eq!(res["data"]["unassignCoach"], true, "{res}");
    assert!(!coach_reaches(app, &coach.token, coachee7.id).await, "unassigned: access ends at once");
    let ended = pair().one(&app.owner).await.expect("q").expect("row");
    assert!(!ended.active && ended.ended_at.is_some());
    // No active assignment left: NOT_FOUND, audited.
    let before = denials(app).await;
    let res = app.gql_vars(&admin.token, UNASSIGN, vars.clone()).await;
    assert_eq!(code(&res), Some("NOT_FOUND"), "{res}");
    assert_eq!(denials(app).await, before + 1);

    // Reassigning reactivates the ended row, with the AI level back at OFF.
    app.owner
        .execute_unprepared("UPDATE coach_assignments SET ai_level = 'ACT' WHERE active = FALSE")
        .await
        .expect("set level");
    let res = app.gql_vars(&admin.token, ASSIGN, vars.clone()).await;
    assert_eq!(res["data"]["assignCoach"], true, "{res}");
    let again = pair().all(&app.owner).await.expect("q");
    assert_eq!(again.len(), 1, "the ended assignment is reactivated, not duplicated");
    assert!(again[0].active && again[0].ended_at.is_none());
    assert_eq!(again[0].ai_level, AiLevel::Off);
    assert!(coach_reaches(app, &coach.token, coachee7.id).await);

    // Audited with the ids, nothing else.
    for action in ["ASSIGN_COACH", "UNASSIGN_COACH"] {
        let evs = events(app, action).await;
        let allowed: Vec<_> = evs.iter().filter(|e| e.outcome == AuditOutcome::Allowed).collect();
        assert!(!allowed.is_empty(), "{action} audited");
        for e in allowed {
            let reason = e.reason.as_deref().unwrap_or("");
            assert!(reason.contains(&coach1.id.to_string()) && reason.contains(&coachee7.id.to_string()), "{reason}");
            assert!(!reason.contains('@') && !reason.contains("Coachee7"), "no content: {reason}");
            assert_eq!(e.actor_id, Some(user(app, "admin1@acme.test").await.id));
        }
    }
}
both_backends!(assign_and_unassign_change_what_the_coach_reaches, assign_and_unassign_change_what_the_coach_reaches);

async fn assign_coach_checks_tenant_and_roles(app: &TestApp) {
    let admin = app.session_for("admin1@acme.test").await;
    let coach1 = user(app, "coach1@acme.test").await;
    let coachee7 = user(app, "coachee7@acme.test").await;
    let coachee1 = user(app, "coachee1@acme.test").await;
    let g_coach = user(app, "coach1@globex.test").await;
    let g_coachee = user(app, "coachee7@globex.test").await;
    let rows = assignments(app).await;

    let missing = app.gql_vars(&admin.token, ASSIGN, json!({ "c": Uuid::new_v4(), "e": coachee7.id })).await;
    assert_eq!(code(&missing), Some("NOT_FOUND"), "{missing}");
    for (c, e) in [(g_coach.id, coachee7.id), (coach1.id, g_coachee.id), (g_coach.id, g_coachee.id)] {
        let before = denials(app).await;
        let res = app.gql_vars(&admin.token, ASSIGN, json!({ "c": c, "e": e })).await;
        assert_eq!(res["errors"], missing["errors"], "another tenant's id answers like a missing one: {res}");
        assert!(res["data"].is_null());
        assert_eq!(denials(app).await, before + 1, "audited");
    }
    // Roles: a coachee is no coach, a coach no coachee.
    let res = app.gql_vars(&admin.token, ASSIGN, json!({ "c": coachee1.id, "e": coachee7.id })).await;
    assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");
    let res = app.gql_vars(&admin.token, ASSIGN, json!({ "c": coach1.id, "e": coach1.id })).await;
    assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");
    let res = app.gql_vars(&admin.token, ASSIGN, json!({ "c": "not-a-uuid", "e": coachee7.id })).await;
    assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");
    assert_eq!(assignments(app).await, rows, "nothing written");

    // The other tenant's admin cannot end this tenant's assignment.
    let g_admin = app.session_for("admin1@globex.test").await;
    let res = app.gql_vars(&g_admin.token, UNASSIGN, json!({ "c": coach1.id, "e": coachee1.id })).await;
    assert_eq!(code(&res), Some("NOT_FOUND"), "{res}");
    let still = coach_assignments::Entity::find()
        .filter(coach_assignments::Column::CoachId.eq(coach1.id))
        .filter(coach_assignments::Column::CoacheeId.eq(coachee1.id))
        .one(&app.owner)
        .await
        .expect("q")
        .expect("row");
    assert!(still.active);
}
both_backends!(assign_coach_checks_tenant_and_roles, assign_coach_checks_tenant_and_roles);

// ------------------------------------------------------------------ users

const INVITE: &str = "mutation($e: String!, $n: String!, $r: Role!) { inviteUser(email: $e, displayName: $n, role: $r) { id email role displayName } }";

async fn invite_user_creates_an_invited_account_without_a_password(app: &TestApp) {
    let admin = app.session_for("admin1@acme.test").await;
    let acme = tenant_id(app, "acme").await;
    let res = app
        .gql_vars(&admin.token, INVITE, json!({ "e": "  New.Coach@ACME.test ", "n": "New Coach", "r": "COACH" }))
        .await;
    let invited = &res["data"]["inviteUser"];
    assert_eq!(invited["email"], "new.coach@acme.test", "{res}");
    assert_eq!(invited["role"], "COACH");
    assert_eq!(invited["displayName"], "New Coach");
    let id: Uuid = invited["id"].as_str().expect("id").parse().expect("uuid");
    let row = users::Entity::find_by_id(id).one(&app.owner).await.expect("q").expect("row");
    assert_eq!(row.status, UserStatus::Invited);
    assert_eq!(row.password_hash, None);
    assert_eq!(row.tenant_id, Some(acme));
    assert_eq!(row.role, Role::Coach);
    // An invited account cannot log in.
    let login = app.login_full("new.coach@acme.test", DEMO_PASSWORD).await;
    assert_eq!(login.error_code(), Some("INVALID_CREDENTIALS"));

    let audit = events(app, "INVITE_USER").await;
    assert_eq!(audit.len(), 1);
    let reason = audit[0].reason.as_deref().unwrap_or("");
    assert!(reason.contains(&id.to_string()), "{reason}");
    assert!(!reason.contains("new.coach") && !reason.contains("New Coach"), "no content: {reason}");

    let users_before = user_count(app).await;
    // The same email (in any case) again: CONFLICT.
    let res =
        app.gql_vars(&admin.token, INVITE, json!({ "e": "NEW.COACH@acme.test", "n": "Again", "r": "COACHEE" })).await;
    assert_eq!(code(&res), Some("CONFLICT"), "{res}");
    let res =
        app.gql_vars(&admin.token, INVITE, json!({ "e": "coachee1@acme.test", "n": "Again", "r": "COACHEE" })).await;
    assert_eq!(code(&res), Some("CONFLICT"), "{res}");
    // Input limits.
    let long_name = "n".repeat(101);
    let long_email = format!("{}@acme.test", "a".repeat(250));
    for (e, n, r) in [
        ("root2@acme.test", "Root", "SYSTEM_ADMIN"),
        ("not-an-email", "X", "COACHEE"),
        ("two@@acme.test", "X", "COACHEE"),
        ("spaces in@acme.test", "X", "COACHEE"),
        ("", "X", "COACHEE"),
        (long_email.as_str(), "X", "COACHEE"),
        ("fine@acme.test", "", "COACHEE"),
        ("fine@acme.test", "   ", "COACHEE"),
        ("fine@acme.test", long_name.as_str(), "COACHEE"),
        ("fine@acme.test", "bell\u{7}", "COACHEE"),
    ] {
        let res = app.gql_vars(&admin.token, INVITE, json!({ "e": e, "n": n, "r": r })).await;
        assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{e:?} {n:?} {r}: {res}");
    }
    assert_eq!(user_count(app).await, users_before, "nothing written");
}
both_backends!(
    invite_user_creates_an_invited_account_without_a_password,
    invite_user_creates_an_invited_account_without_a_password
);

const DEACTIVATE: &str = "mutation($id: ID!) { deactivateUser(id: $id) }";

async fn deactivate_user_ends_its_sessions_at_once(app: &TestApp) {
    let admin = app.session_for("admin1@acme.test").await;
    let victim = app.session_for("coach2@acme.test").await;
    let second = app.session_for("coach2@acme.test").await;
    let coach2 = user(app, "coach2@acme.test").await;
    assert_eq!(app.gql(&victim.token, "{ viewer { id } }").await["data"]["viewer"]["id"], coach2.id.to_string());

    let res = app.gql_vars(&admin.token, DEACTIVATE, json!({ "id": coach2.id })).await;
    assert_eq!(res["data"]["deactivateUser"], true, "{res}");
    for token in [&victim.token, &second.token] {
        let res = app.post(&Auth::Bearer(token.clone()), "{ viewer { id } }", json!({})).await;
        assert_eq!(res.error_code(), Some("UNAUTHENTICATED"), "refused on the next request: {}", res.body);
    }
    let open = auth_sessions::Entity::find()
        .filter(auth_sessions::Column::UserId.eq(coach2.id))
        .filter(auth_sessions::Column::RevokedAt.is_null())
        .count(&app.owner)
        .await
        .expect("count");
    assert_eq!(open, 0, "every session revoked");
    assert_eq!(user(app, "coach2@acme.test").await.status, UserStatus::Deactivated);
    assert_eq!(app.login_full("coach2@acme.test", DEMO_PASSWORD).await.error_code(), Some("INVALID_CREDENTIALS"));
    let audit = events(app, "DEACTIVATE_USER").await;
    assert_eq!(audit.len(), 1);
    let reason = audit[0].reason.as_deref().unwrap_or("");
    assert!(reason.contains(&coach2.id.to_string()) && reason.contains("2 sessions"), "{reason}");
    assert!(!reason.contains('@'));

    // Not itself.
    let me = user(app, "admin1@acme.test").await;
    let res = app.gql_vars(&admin.token, DEACTIVATE, json!({ "id": me.id })).await;
    assert_eq!(code(&res), Some("FORBIDDEN"), "{res}");
    assert_eq!(user(app, "admin1@acme.test").await.status, UserStatus::Active);

    // Another tenant's user: like a missing one, audited, untouched.
    let g_coach = user(app, "coach1@globex.test").await;
    let missing = app.gql_vars(&admin.token, DEACTIVATE, json!({ "id": Uuid::new_v4() })).await;
    let before = denials(app).await;
    let res = app.gql_vars(&admin.token, DEACTIVATE, json!({ "id": g_coach.id })).await;
    assert_eq!(code(&res), Some("NOT_FOUND"), "{res}");
    assert_eq!(res["errors"], missing["errors"]);
    assert_eq!(denials(app).await, before + 1);
    assert_eq!(user(app, "coach1@globex.test").await.status, UserStatus::Active);
    let res = app.gql_vars(&admin.token, DEACTIVATE, json!({ "id": "nope" })).await;
    assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");
}
both_backends!(deactivate_user_ends_its_sessions_at_once, deactivate_user_ends_its_sessions_at_once);

// ------------------------------------------------------------------ tenant settings

const SETTINGS: &str = "mutation($i: TenantSettingsInput!) { updateTenantSettings(input: $i) { sessionTimeoutMinutes auditRetentionDays dataRetentionDays } }";

async fn settings_of(app: &TestApp, slug: &str) -> tenant_settings::Model {
    let t = tenant_id(app, slug).await;
    tenant_settings::Entity::find_by_id(t).one(&app.owner).await.expect("q").expect("settings")
}

async fn tenant_settings_change_within_limits_and_only_for_the_own_tenant(app: &TestApp) {
    let admin = app.session_for("admin1@acme.test").await;
    let globex_before = settings_of(app, "globex").await;

    let res = app
        .gql_vars(&admin.token, SETTINGS, json!({ "i": { "sessionTimeoutMinutes": 60, "auditRetentionDays": 365 } }))
        .await;
    let s = &res["data"]["updateTenantSettings"];
    assert_eq!(s["sessionTimeoutMinutes"], 60, "{res}");
    assert_eq!(s["auditRetentionDays"], 365);
    assert_eq!(s["dataRetentionDays"], 730, "a field left out is unchanged");
    let res = app.gql_vars(&admin.token, SETTINGS, json!({ "i": { "dataRetentionDays": null } })).await;
    assert!(res["data"]["updateTenantSettings"]["dataRetentionDays"].is_null(), "explicit null clears: {res}");
    assert_eq!(res["data"]["updateTenantSettings"]["sessionTimeoutMinutes"], 60);
    let res = app.gql_vars(&admin.token, SETTINGS, json!({ "i": { "dataRetentionDays": 36500 } })).await;
    assert_eq!(res["data"]["updateTenantSettings"]["dataRetentionDays"], 36500, "{res}");
    // The bounds themselves are accepted.
    let res = app
        .gql_vars(&admin.token, SETTINGS, json!({ "i": { "sessionTimeoutMinutes": 5, "auditRetentionDays": 30 } }))
        .await;
    assert_eq!(res["data"]["updateTenantSettings"]["sessionTimeoutMinutes"], 5, "{res}");
    let res = app
        .gql_vars(&admin.token, SETTINGS, json!({ "i": { "sessionTimeoutMinutes": 480, "auditRetentionDays": 3650 } }))
        .await;
    assert_eq!(res["data"]["updateTenantSettings"]["auditRetentionDays"], 3650, "{res}");

    let acme = settings_of(app, "acme").await;
    assert_eq!(
        (acme.session_timeout_minutes, acme.audit_retention_days, acme.data_retention_days),
        (480, 3650, Some(36500))
    );
    for bad in [
        json!({ "sessionTimeoutMinutes": 4 }),
        json!({ "sessionTimeoutMinutes": 481 }),
        json!({ "auditRetentionDays": 29 }),
        json!({ "auditRetentionDays": 3651 }),
        json!({ "dataRetentionDays": 29 }),
        json!({ "dataRetentionDays": 36501 }),
        json!({ "sessionTimeoutMinutes": 60, "auditRetentionDays": 10 }),
        json!({}),
    ] {
        let res = app.gql_vars(&admin.token, SETTINGS, json!({ "i": bad })).await;
        assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{bad}: {res}");
    }
    let after = settings_of(app, "acme").await;
    assert_eq!(after, acme, "nothing written");
    let globex_after = settings_of(app, "globex").await;
    assert_eq!(globex_after, globex_before, "the other tenant is untouched");
    let audit = events(app, "UPDATE_TENANT_SETTINGS").await;
    assert_eq!(audit.len(), 5);
    assert!(audit.iter().all(|e| e.outcome == AuditOutcome::Allowed && e.tenant_id == Some(acme.tenant_id)));
}
both_backends!(
    tenant_settings_change_within_limits_and_only_for_the_own_tenant,
    tenant_settings_change_within_limits_and_only_for_the_own_tenant
);

// ------------------------------------------------------------------ platform

const CONFIG: &str =
    "mutation($k: String!, $v: String!) { updateSystemConfig(key: $k, value: $v) { entries { key value } } }";

async fn system_config_updates_within_limits_and_audits_the_key_only(app: &TestApp) {
    let root = app.session_for("root@coachgraph.test").await;
    let res = app.gql_vars(&root.token, CONFIG, json!({ "k": "feature.sasha-v2_rollout", "v": "s3cret-value" })).await;
    let entries = res["data"]["updateSystemConfig"]["entries"].as_array().unwrap_or_else(|| panic!("{res}"));
    assert!(entries.iter().any(|e| e["key"] == "feature.sasha-v2_rollout" && e["value"] == "s3cret-value"), "{res}");
    assert!(entries.iter().any(|e| e["key"] == "maintenance_mode"), "every entry is returned");
    let res = app.gql_vars(&root.token, CONFIG, json!({ "k": "maintenance_mode", "v": "on" })).await;
    assert!(
        res["data"]["updateSystemConfig"]["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["key"] == "maintenance_mode" && e["value"] == "on")
    );
    let root_id = user(app, "root@coachgraph.test").await.id;
    let row = system_config::Entity::find_by_id("maintenance_mode".to_owned())
        .one(&app.owner)
        .await
        .expect("q")
        .expect("row");
    assert_eq!((row.value.as_str(), row.updated_by), ("on", Some(root_id)));

    let count = || async { system_config::Entity::find().count(&app.owner).await.expect("count") };
    let before = count().await;
    let long_key = "k".repeat(101);
    let long_value = "v".repeat(2001);
    for (k, v) in [
        ("", "x"),
        ("Upper", "x"),
        ("with space", "x"),
        ("semi;colon", "x"),
        ("ümlaut", "x"),
        (long_key.as_str(), "x"),
        ("fine", long_value.as_str()),
        ("fine", ""),
    ] {
        let res = app.gql_vars(&root.token, CONFIG, json!({ "k": k, "v": v })).await;
        assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{k:?}: {res}");
    }
    assert_eq!(count().await, before, "nothing written");
    let res = app.gql_vars(&root.token, CONFIG, json!({ "k": "k".repeat(100), "v": "v".repeat(2000) })).await;
    assert!(res["data"]["updateSystemConfig"].is_object(), "the limits themselves are accepted: {res}");

    let audit = events(app, "UPDATE_SYSTEM_CONFIG").await;
    assert_eq!(audit.len(), 3);
    for e in &audit {
        assert_eq!(e.tenant_id, None, "a platform event");
        let reason = e.reason.as_deref().unwrap_or("");
        assert!(!reason.contains("s3cret") && !reason.contains("vvvv"), "never the value: {reason}");
    }
    assert!(audit.iter().any(|e| e.reason.as_deref().is_some_and(|r| r.contains("feature.sasha-v2_rollout"))));
}
both_backends!(
    system_config_updates_within_limits_and_audits_the_key_only,
    system_config_updates_within_limits_and_audits_the_key_only
);

const STATUS: &str = "query($u: ID!) { accountStatus(userId: $u) { failedLoginCount lockedUntil active } }";
const UNLOCK: &str = "mutation($u: ID!) { unlockAccount(userId: $u) }";

async fn unlock_account_clears_a_lock_in_any_tenant(app: &TestApp) {
    let root = app.session_for("root@coachgraph.test").await;
    for who in ["coachee2@globex.test", "coach1@acme.test"] {
        for _ in 0..5 {
            app.login_full(who, "wrong-password").await;
        }
        assert_eq!(app.login_full(who, DEMO_PASSWORD).await.error_code(), Some("INVALID_CREDENTIALS"), "locked");
        let id = user(app, who).await.id;
        let status = app.gql_vars(&root.token, STATUS, json!({ "u": id })).await;
        assert!(status["data"]["accountStatus"]["lockedUntil"].is_string(), "{status}");

        let res = app.gql_vars(&root.token, UNLOCK, json!({ "u": id })).await;
        assert_eq!(res["data"]["unlockAccount"], true, "{res}");
        let status = app.gql_vars(&root.token, STATUS, json!({ "u": id })).await;
        assert!(status["data"]["accountStatus"]["lockedUntil"].is_null(), "{status}");
        assert_eq!(status["data"]["accountStatus"]["failedLoginCount"], 0);
        assert!(app.login_full(who, DEMO_PASSWORD).await.body["data"]["login"]["token"].is_string(), "{who} unlocked");
    }
    // One failure after the unlock counts from zero again.
    app.login_full("coach1@acme.test", "wrong-password").await;
    assert_eq!(user(app, "coach1@acme.test").await.failed_login_count, 1);

    let before = denials(app).await;
    let res = app.gql_vars(&root.token, UNLOCK, json!({ "u": Uuid::new_v4() })).await;
    assert_eq!(code(&res), Some("NOT_FOUND"), "{res}");
    assert_eq!(denials(app).await, before + 1);
    let res = app.gql_vars(&root.token, UNLOCK, json!({ "u": NIL.replace('0', "z") })).await;
    assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");
    let audit = events(app, "UNLOCK_ACCOUNT").await;
    assert_eq!(audit.iter().filter(|e| e.outcome == AuditOutcome::Allowed).count(), 2);
    assert!(audit.iter().all(|e| !e.reason.as_deref().unwrap_or("").contains('@')));
}
both_backends!(unlock_account_clears_a_lock_in_any_tenant, unlock_account_clears_a_lock_in_any_tenant);
