//! Consent (POLICY.md section 5): the coachee grants and withdraws its own consents (history
//! kept), the withdrawal holds from the AI's very next request, the coach's AI level and the
//! coachee's consent combine to the lower of the two, AI proposals need ACT and the coachee's
//! confirmation, the AI is rate-limited, and every role without the right cannot even name
//! the mutations. Each on both backends.

use axum::http::StatusCode;
use chrono::Duration;
use coachgraph::db::entities::{
    ai_access_log, ai_action_proposals, audit_events, coach_assignments, coaching_sessions, consent_history, users,
};
use coachgraph::domain::kinds::{AiLevel, AuditOutcome, ConsentKind, SessionStatus};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::common::*;

pub async fn user_id(app: &TestApp, email: &str) -> Uuid {
    users::Entity::find().filter(users::Column::Email.eq(email)).one(&app.owner).await.expect("q").expect("user").id
}

async fn completed_session(app: &TestApp, coachee: Uuid) -> Uuid {
    coaching_sessions::Entity::find()
        .filter(coaching_sessions::Column::CoacheeId.eq(coachee))
        .filter(coaching_sessions::Column::Status.eq(SessionStatus::Completed))
        .order_by_asc(coaching_sessions::Column::ScheduledAt)
        .one(&app.owner)
        .await
        .expect("q")
        .expect("session")
        .id
}

fn code(v: &Value) -> Option<&str> {
    v["errors"][0]["extensions"]["code"].as_str()
}

fn dt(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

async fn history(app: &TestApp, coachee: Uuid, kind: ConsentKind) -> Vec<bool> {
    consent_history::Entity::find()
        .filter(consent_history::Column::CoacheeId.eq(coachee))
        .filter(consent_history::Column::Kind.eq(kind))
        .order_by_asc(consent_history::Column::ChangedAt)
        .all(&app.owner)
        .await
        .expect("q")
        .into_iter()
        .map(|h| {
            assert_eq!(h.changed_by, coachee, "changed by the coachee itself");
            h.granted
        })
        .collect()
}

async fn audited(app: &TestApp, actor: Uuid, action: &str) -> u64 {
    audit_events::Entity::find()
        .filter(audit_events::Column::ActorId.eq(actor))
        .filter(audit_events::Column::Action.eq(action))
        .filter(audit_events::Column::Outcome.eq(AuditOutcome::Allowed))
        .count(&app.owner)
        .await
        .expect("count")
}

const GRANT: &str = "mutation($k: ConsentKind!) { grantConsent(kind: $k) { kind granted changedAt } }";
const WITHDRAW: &str = "mutation($k: ConsentKind!) { withdrawConsent(kind: $k) { kind granted changedAt } }";
const SET_LEVEL: &str = "mutation($c: ID!, $l: AiLevel!) { setAiLevel(coacheeId: $c, level: $l) }";
const PROPOSE: &str = "mutation($c: ID!, $k: String!, $p: String!) { proposeAiAction(coacheeId: $c, kind: $k, payload: $p) { id kind payload confirmedAt } }";
const CONFIRM: &str = "mutation($id: ID!) { confirmAiAction(id: $id) { id kind payload confirmedAt } }";

async fn set_level(app: &TestApp, coach_token: &str, coachee: Uuid, level: &str) {
    let res = app.gql_vars(coach_token, SET_LEVEL, json!({ "c": coachee, "l": level })).await;
    assert_eq!(res["data"]["setAiLevel"], true, "{res}");
}

async fn goals_of(app: &TestApp, token: &str, coachee: Uuid) -> usize {
    let res = app.gql_vars(token, "query($c: ID) { goals(coacheeId: $c) { id } }", json!({ "c": coachee })).await;
    res["data"]["goals"].as_array().unwrap_or_else(|| panic!("goals: {res}")).len()
}

async fn sessions_of(app: &TestApp, token: &str, coachee: Uuid) -> usize {
    let res = app
        .gql_vars(token, "query($c: ID) { sessions(coacheeId: $c) { nodes { id } } }", json!({ "c": coachee }))
        .await;
    res["data"]["sessions"]["nodes"].as_array().unwrap_or_else(|| panic!("sessions: {res}")).len()
}

// --- grant and withdraw -------------------------------------------------------------------

async fn coachee_grants_and_withdraws_with_history_kept(app: &TestApp) {
    let s = app.session_for("coachee1@acme.test").await;
    let me = user_id(app, "coachee1@acme.test").await;
    assert!(history(app, me, ConsentKind::SashaAct).await.is_empty(), "demo: coachee1 never set SASHA_ACT");

    let res = app.gql_vars(&s.token, GRANT, json!({ "k": "SASHA_ACT" })).await;
    assert_eq!(
        res["data"]["grantConsent"],
        json!({ "kind": "SASHA_ACT", "granted": true, "changedAt": dt(t0()) }),
        "{res}"
    );
    // Granting what is granted changes nothing (no second history row).
    app.clock.advance(Duration::minutes(1));
    let res = app.gql_vars(&s.token, GRANT, json!({ "k": "SASHA_ACT" })).await;
    assert_eq!(res["data"]["grantConsent"]["changedAt"], dt(t0()), "{res}");

    app.clock.advance(Duration::minutes(1));
    let res = app.gql_vars(&s.token, WITHDRAW, json!({ "k": "SASHA_ACT" })).await;
    assert_eq!(
        res["data"]["withdrawConsent"],
        json!({ "kind": "SASHA_ACT", "granted": false, "changedAt": dt(t0() + Duration::minutes(2)) }),
        "{res}"
    );
    assert_eq!(history(app, me, ConsentKind::SashaAct).await, vec![true, false], "two history rows, in order");

    let mine = app.gql(&s.token, "{ myConsents { kind granted } }").await;
    let act = mine["data"]["myConsents"].as_array().expect("list").iter().find(|c| c["kind"] == "SASHA_ACT").cloned();
    assert_eq!(act, Some(json!({ "kind": "SASHA_ACT", "granted": false })));
    assert_eq!(audited(app, me, "CONSENT_GRANTED").await, 1);
    assert_eq!(audited(app, me, "CONSENT_WITHDRAWN").await, 1);

    // An unknown kind is refused by validation, before anything runs.
    let res = app.gql_vars(&s.token, GRANT, json!({ "k": "EVERYTHING" })).await;
    assert!(res["data"].is_null() && res["errors"].is_array(), "{res}");
}
both_backends!(coachee_grants_and_withdraws_with_history_kept, coachee_grants_and_withdraws_with_history_kept);

async fn withdrawal_closes_the_ai_on_its_next_request(app: &TestApp) {
    // Demo: coachee2 grants OBSERVE and ANALYZE, its coach's level is ANALYZE.
    let coachee2 = user_id(app, "coachee2@acme.test").await;
    let session = completed_session(app, coachee2).await;
    let ai = app.session_for("ai@acme.test").await;
    let c = app.session_for("coachee2@acme.test").await;
    assert!(goals_of(app, &ai.token, coachee2).await > 0, "before: the AI reads coachee2's goals");
    let q = "query($id: ID!) { session(id: $id) { id transcript } }";
    let res = app.gql_vars(&ai.token, q, json!({ "id": session })).await;
    assert_eq!(res["data"]["session"]["id"], json!(session), "{res}");

    // Withdrawing OBSERVE withdraws ANALYZE with it (each level includes the ones below).
    app.clock.advance(Duration::minutes(1));
    let res = app.gql_vars(&c.token, WITHDRAW, json!({ "k": "SASHA_OBSERVE" })).await;
    assert_eq!(res["data"]["withdrawConsent"]["granted"], false, "{res}");
    assert_eq!(history(app, coachee2, ConsentKind::SashaAnalyze).await.last(), Some(&false));

    // The AI's very next request: nothing of coachee2.
    assert_eq!(goals_of(app, &ai.token, coachee2).await, 0);
    assert_eq!(sessions_of(app, &ai.token, coachee2).await, 0);
    let res = app.gql_vars(&ai.token, q, json!({ "id": session })).await;
    assert!(res["data"]["session"].is_null(), "{res}");
    assert_eq!(code(&res), Some("CONSENT_REQUIRED"), "{res}");
    // Nothing was logged as read after the withdrawal.
    let logged = ai_access_log::Entity::find()
        .filter(ai_access_log::Column::CoacheeId.eq(coachee2))
        .filter(ai_access_log::Column::At.gt(t0()))
        .count(&app.owner)
        .await
        .expect("count");
    assert_eq!(logged, 0);

    // Granting again opens it again, from the next request.
    for k in ["SASHA_OBSERVE", "SASHA_ANALYZE"] {
        app.gql_vars(&c.token, GRANT, json!({ "k": k })).await;
    }
    assert!(goals_of(app, &ai.token, coachee2).await > 0);
}
both_backends!(withdrawal_closes_the_ai_on_its_next_request, withdrawal_closes_the_ai_on_its_next_request);

// --- the coach's level --------------------------------------------------------------------

async fn set_ai_level_needs_an_assigned_coachee(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await;
    let coachee4 = user_id(app, "coachee4@acme.test").await;
    let coachee7 = user_id(app, "coachee7@acme.test").await;
    let globex = user_id(app, "coachee1@globex.test").await;

    let res = app.gql_vars(&coach.token, SET_LEVEL, json!({ "c": coachee7, "l": "ACT" })).await;
    assert!(res["data"].is_null(), "{res}");
    assert_eq!(code(&res), Some("FORBIDDEN"), "another coach's coachee: {res}");
    let res = app.gql_vars(&coach.token, SET_LEVEL, json!({ "c": globex, "l": "ACT" })).await;
    assert_eq!(code(&res), Some("NOT_FOUND"), "another tenant's coachee: {res}");
    let res = app.gql_vars(&coach.token, SET_LEVEL, json!({ "c": Uuid::new_v4(), "l": "ACT" })).await;
    assert_eq!(code(&res), Some("NOT_FOUND"), "no such coachee: {res}");

    set_level(app, &coach.token, coachee4, "ACT").await;
    let level = |coachee: Uuid| async move {
        coach_assignments::Entity::find()
            .filter(coach_assignments::Column::CoacheeId.eq(coachee))
            .one(&app.owner)
            .await
            .expect("q")
            .expect("assignment")
            .ai_level
    };
    assert_eq!(level(coachee4).await, AiLevel::Act);
    assert_eq!(level(coachee7).await, AiLevel::Act, "demo: coachee7's level, untouched");
    assert_eq!(level(globex).await, AiLevel::Observe, "demo: globex coachee1's level, untouched");
}
both_backends!(set_ai_level_needs_an_assigned_coachee, set_ai_level_needs_an_assigned_coachee);

async fn effective_level_is_the_lower_of_consent_and_coach_level(app: &TestApp) {
    // Demo: coachee4 grants OBSERVE, ANALYZE and ACT; coach1's level for it is OFF.
    let coach = app.session_for("coach1@acme.test").await;
    let ai = app.session_for("ai@acme.test").await;
    let coachee4 = user_id(app, "coachee4@acme.test").await;
    assert_eq!(sessions_of(app, &ai.token, coachee4).await, 0, "consent ACT + coach OFF = OFF");
    assert_eq!(goals_of(app, &ai.token, coachee4).await, 0);

    set_level(app, &coach.token, coachee4, "OBSERVE").await;
    assert!(sessions_of(app, &ai.token, coachee4).await > 0, "consent ACT + coach OBSERVE = OBSERVE");
    assert_eq!(goals_of(app, &ai.token, coachee4).await, 0, "goals need ANALYZE");

    set_level(app, &coach.token, coachee4, "ANALYZE").await;
    assert!(goals_of(app, &ai.token, coachee4).await > 0, "consent ACT + coach ANALYZE = ANALYZE");

    // The other way round: coachee7 grants OBSERVE only, its coach's level is ACT.
    let coachee7 = user_id(app, "coachee7@acme.test").await;
    assert!(sessions_of(app, &ai.token, coachee7).await > 0);
    assert_eq!(goals_of(app, &ai.token, coachee7).await, 0, "consent OBSERVE + coach ACT = OBSERVE");
}
both_backends!(
    effective_level_is_the_lower_of_consent_and_coach_level,
    effective_level_is_the_lower_of_consent_and_coach_level
);

// --- proposals ----------------------------------------------------------------------------

async fn propose(app: &TestApp, ai: &str, coachee: Uuid) -> Value {
    app.gql_vars(ai, PROPOSE, json!({ "c": coachee, "k": "SCHEDULE_SESSION", "p": "{\"in_days\":7}" })).await
}

async fn proposing_needs_sasha_act_and_an_act_coach_level(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await;
    let ai = app.session_for("ai@acme.test").await;
    let coachee4 = user_id(app, "coachee4@acme.test").await;
    let coachee7 = user_id(app, "coachee7@acme.test").await;

    // coachee4: consent ACT, coach OFF, then ANALYZE: not enough.
    let res = propose(app, &ai.token, coachee4).await;
    assert!(res["data"].is_null(), "{res}");
    assert_eq!(code(&res), Some("CONSENT_REQUIRED"), "{res}");
    set_level(app, &coach.token, coachee4, "ANALYZE").await;
    assert_eq!(code(&propose(app, &ai.token, coachee4).await), Some("CONSENT_REQUIRED"));
    // coachee7: coach ACT, consent OBSERVE: not enough either.
    assert_eq!(code(&propose(app, &ai.token, coachee7).await), Some("CONSENT_REQUIRED"));
    // Another tenant's coachee, no coachee: NOT_FOUND.
    let globex = user_id(app, "coachee4@globex.test").await;
    assert_eq!(code(&propose(app, &ai.token, globex).await), Some("NOT_FOUND"));
    assert_eq!(code(&propose(app, &ai.token, Uuid::new_v4()).await), Some("NOT_FOUND"));
    assert_eq!(ai_action_proposals::Entity::find().count(&app.owner).await.expect("count"), 0);

    // Both at ACT: proposed, not confirmed, logged as an AI WRITE.
    set_level(app, &coach.token, coachee4, "ACT").await;
    let res = propose(app, &ai.token, coachee4).await;
    let p = &res["data"]["proposeAiAction"];
    assert_eq!(p["kind"], "SCHEDULE_SESSION", "{res}");
    assert_eq!(p["payload"], "{\"in_days\":7}");
    assert!(p["confirmedAt"].is_null(), "a proposal never runs before confirmation");
    let id: Uuid = p["id"].as_str().expect("id").parse().expect("uuid");
    let row = ai_action_proposals::Entity::find_by_id(id).one(&app.owner).await.expect("q").expect("row");
    assert_eq!((row.coachee_id, row.confirmed_at), (coachee4, None));
    let writes = ai_access_log::Entity::find()
        .filter(ai_access_log::Column::CoacheeId.eq(coachee4))
        .filter(ai_access_log::Column::Action.eq("WRITE"))
        .filter(ai_access_log::Column::Resource.eq("ai_action_proposals"))
        .all(&app.owner)
        .await
        .expect("q");
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(writes[0].row_ids.contains(&id.to_string()));
    assert_eq!((writes[0].model.as_str(), writes[0].purpose.as_str()), ("test-model", "test-purpose"));

    // Only the two kinds of actions the policy names.
    let res = app.gql_vars(&ai.token, PROPOSE, json!({ "c": coachee4, "k": "DELETE_ACCOUNT", "p": "{}" })).await;
    assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");
}
both_backends!(proposing_needs_sasha_act_and_an_act_coach_level, proposing_needs_sasha_act_and_an_act_coach_level);

async fn only_the_coachee_concerned_confirms_and_only_once(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await;
    let ai = app.session_for("ai@acme.test").await;
    let coachee4 = user_id(app, "coachee4@acme.test").await;
    set_level(app, &coach.token, coachee4, "ACT").await;
    let first = propose(app, &ai.token, coachee4).await["data"]["proposeAiAction"]["id"].clone();
    let second = propose(app, &ai.token, coachee4).await["data"]["proposeAiAction"]["id"].clone();
    assert!(first.is_string() && second.is_string());

    let other = app.session_for("coachee1@acme.test").await;
    let res = app.gql_vars(&other.token, CONFIRM, json!({ "id": first })).await;
    assert!(res["data"].is_null(), "{res}");
    assert_eq!(code(&res), Some("FORBIDDEN"), "another coachee of the tenant: {res}");
    let globex = app.session_for("coachee4@globex.test").await;
    let foreign = app.gql_vars(&globex.token, CONFIRM, json!({ "id": first })).await;
    let missing = app.gql_vars(&globex.token, CONFIRM, json!({ "id": Uuid::new_v4() })).await;
    assert_eq!(code(&foreign), Some("NOT_FOUND"), "{foreign}");
    assert_eq!(foreign["errors"][0]["message"], missing["errors"][0]["message"], "like an id that does not exist");
    let id: Uuid = first.as_str().expect("id").parse().expect("uuid");
    let row = ai_action_proposals::Entity::find_by_id(id).one(&app.owner).await.expect("q").expect("row");
    assert_eq!(row.confirmed_at, None, "refusals confirm nothing");

    let me = app.session_for("coachee4@acme.test").await;
    app.clock.advance(Duration::minutes(3));
    let res = app.gql_vars(&me.token, CONFIRM, json!({ "id": first })).await;
    assert_eq!(res["data"]["confirmAiAction"]["confirmedAt"], dt(t0() + Duration::minutes(3)), "{res}");
    let res = app.gql_vars(&me.token, CONFIRM, json!({ "id": first })).await;
    assert_eq!(code(&res), Some("CONFLICT"), "twice: {res}");

    // Once the coachee withdraws SASHA_ACT, a pending proposal can no longer be confirmed,
    // and the AI can propose nothing more.
    app.gql_vars(&me.token, WITHDRAW, json!({ "k": "SASHA_ACT" })).await;
    let res = app.gql_vars(&me.token, CONFIRM, json!({ "id": second })).await;
    assert_eq!(code(&res), Some("CONSENT_REQUIRED"), "{res}");
    assert_eq!(code(&propose(app, &ai.token, coachee4).await), Some("CONSENT_REQUIRED"));
}
both_backends!(only_the_coachee_concerned_confirms_and_only_once, only_the_coachee_concerned_confirms_and_only_once);

// --- rate limit ---------------------------------------------------------------------------

async fn the_ai_is_rate_limited_per_tenant(app: &TestApp) {
    // The platform setting (demo: 120), lowered for the test.
    app.owner
        .execute_unprepared("UPDATE system_config SET value = '5' WHERE key = 'ai.rate_limit_per_minute'")
        .await
        .expect("setting");
    let ai = app.session_for("ai@acme.test").await;
    let ai_id = user_id(app, "ai@acme.test").await;
    for i in 0..5 {
        let res = app.post(&Auth::Bearer(ai.token.clone()), "{ viewer { id } }", json!({})).await;
        assert_eq!(res.status, StatusCode::OK, "request {i}: {}", res.body);
    }
    for _ in 0..2 {
        let res = app.post(&Auth::Bearer(ai.token.clone()), "{ viewer { id } }", json!({})).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
        assert_eq!(res.error_code(), Some("RATE_LIMITED"), "{}", res.body);
        assert!(res.body["data"].is_null());
        // 5 a minute: the next token in 12 seconds.
        assert_eq!(res.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("12"));
    }
    // Audited once per episode, not once per refused request.
    let refusals = audit_events::Entity::find()
        .filter(audit_events::Column::ActorId.eq(ai_id))
        .filter(audit_events::Column::Outcome.eq(AuditOutcome::Denied))
        .filter(audit_events::Column::Reason.contains("rate limit"))
        .count(&app.owner)
        .await
        .expect("count");
    assert_eq!(refusals, 1);

    // Another tenant's AI and other roles are not affected.
    let globex = app.session_for("ai@globex.test").await;
    let res = app.post(&Auth::Bearer(globex.token.clone()), "{ viewer { id } }", json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let coachee = app.session_for("coachee1@acme.test").await;
    for _ in 0..7 {
        let res = app.post(&Auth::Bearer(coachee.token.clone()), "{ viewer { id } }", json!({})).await;
        assert_eq!(res.status, StatusCode::OK);
    }

    // The bucket refills with the application's clock.
    app.clock.advance(Duration::seconds(12));
    let res = app.post(&Auth::Bearer(ai.token.clone()), "{ viewer { id } }", json!({})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let res = app.post(&Auth::Bearer(ai.token.clone()), "{ viewer { id } }", json!({})).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
}
both_backends!(the_ai_is_rate_limited_per_tenant, the_ai_is_rate_limited_per_tenant);

// --- who may name the mutations -----------------------------------------------------------

/// (mutation, a call of it, the only account whose schema has it)
pub const CONSENT_MUTATIONS: [(&str, &str, &str); 5] = [
    ("grantConsent", "mutation { grantConsent(kind: SASHA_ACT) { kind } }", "coachee1@acme.test"),
    ("withdrawConsent", "mutation { withdrawConsent(kind: SASHA_ACT) { kind } }", "coachee1@acme.test"),
    (
        "setAiLevel",
        "mutation { setAiLevel(coacheeId: \"00000000-0000-0000-0000-000000000000\", level: ACT) }",
        "coach1@acme.test",
    ),
    (
        "proposeAiAction",
        "mutation { proposeAiAction(coacheeId: \"00000000-0000-0000-0000-000000000000\", kind: \"SEND_MESSAGE\", payload: \"hi\") { id } }",
        "ai@acme.test",
    ),
    (
        "confirmAiAction",
        "mutation { confirmAiAction(id: \"00000000-0000-0000-0000-000000000000\") { id } }",
        "coachee1@acme.test",
    ),
];

pub const EVERY_ACCOUNT: [&str; 7] = [
    "coachee1@acme.test",
    "coach1@acme.test",
    "admin1@acme.test",
    "exec1@acme.test",
    "ai@acme.test",
    "root@coachgraph.test",
    "",
];

/// Sends each mutation as every account (and anonymously, for `""`): the one allowed account
/// reaches the resolver, every other gets exactly the error of a misspelled field.
pub async fn check_mutations_exist_only_for(app: &TestApp, mutations: &[(&str, &str, &str)]) {
    let mut tokens = std::collections::HashMap::new();
    for account in EVERY_ACCOUNT {
        let auth = if account.is_empty() { Auth::None } else { Auth::Bearer(app.session_for(account).await.token) };
        tokens.insert(account, auth);
    }
    for (name, call, allowed) in mutations {
        for account in EVERY_ACCOUNT {
            let res = app.post(&tokens[account], call, json!({})).await.body;
            let message = res["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
            let unknown = format!("Unknown field \"{name}\" on type \"Mutation\".");
            if account == *allowed {
                assert_ne!(message, unknown, "{account} must have {name}: {res}");
            } else {
                assert!(res["data"].is_null(), "{account} {name}: {res}");
                assert_eq!(message, unknown, "{account} must not have {name}");
                assert_eq!(res["errors"].as_array().map(Vec::len), Some(1), "{account} {name}: {res}");
            }
        }
    }
}

async fn roles_without_the_right_cannot_name_the_consent_mutations(app: &TestApp) {
    check_mutations_exist_only_for(app, &CONSENT_MUTATIONS).await;
}
both_backends!(
    roles_without_the_right_cannot_name_the_consent_mutations,
    roles_without_the_right_cannot_name_the_consent_mutations
);
