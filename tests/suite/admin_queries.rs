//! Operational queries: programMetrics, auditEvents, tenantSettings, systemConfig,
//! accountStatus, breakGlassRequests (administrators), and integrationTokens, aiAccessLog,
//! accessNotices, myConsents (the caller's own rows). Each is checked for the roles that may
//! read it (right rows, own tenant only) and for every other role (the field does not exist).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use coachgraph::clock::Clock;
use coachgraph::db::entities::{
    access_notices, action_items, ai_access_log, audit_events, break_glass_grants, break_glass_requests,
    coaching_sessions, integration_tokens, system_config, tenant_settings, tenants, users,
};
use coachgraph::domain::kinds::{AuditOutcome, Role, SessionStatus, UserStatus};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::common::*;

const ACCOUNTS: [(&str, &str); 6] = ROLE_ACCOUNTS;

/// (field, a query naming it, the roles whose schema has it).
const FIELDS: [(&str, &str, &[&str]); 10] = [
    ("programMetrics", "{ programMetrics { suppressed } }", &["PROGRAM_ADMIN", "EXECUTIVE"]),
    ("auditEvents", "{ auditEvents(first: 1) { totalCount } }", &["PROGRAM_ADMIN", "SYSTEM_ADMIN"]),
    ("tenantSettings", "{ tenantSettings { sessionTimeoutMinutes } }", &["PROGRAM_ADMIN", "SYSTEM_ADMIN"]),
    ("systemConfig", "{ systemConfig { entries { key } } }", &["SYSTEM_ADMIN"]),
    (
        "accountStatus",
        "{ accountStatus(userId: \"00000000-0000-0000-0000-000000000000\") { active } }",
        &["SYSTEM_ADMIN"],
    ),
    ("breakGlassRequests", "{ breakGlassRequests { id } }", &["PROGRAM_ADMIN", "SYSTEM_ADMIN"]),
    ("integrationTokens", "{ integrationTokens { id } }", &["COACHEE", "COACH"]),
    ("aiAccessLog", "{ aiAccessLog { totalCount } }", &["COACHEE"]),
    ("accessNotices", "{ accessNotices { at } }", &["COACHEE", "COACH"]),
    ("myConsents", "{ myConsents { kind } }", &["COACHEE"]),
];

const METRICS: &str = "activeCoachees sessionsCompleted actionItemCompletionRate averageSatisfaction suppressed";

fn unknown(field: &str, ty: &str) -> String {
    format!("Unknown field \"{field}\" on type \"{ty}\".")
}

fn dt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn code(res: &Value) -> Option<&str> {
    res["errors"][0]["extensions"]["code"].as_str()
}

async fn sessions_by_role(app: &TestApp) -> HashMap<&'static str, Session> {
    let mut out = HashMap::new();
    for (email, role) in ACCOUNTS {
        out.insert(role, app.session_for(email).await);
    }
    out
}

async fn tenant_id(app: &TestApp, slug: &str) -> Uuid {
    tenants::Entity::find().filter(tenants::Column::Slug.eq(slug)).one(&app.owner).await.expect("q").expect("tenant").id
}

async fn user(app: &TestApp, email: &str) -> users::Model {
    users::Entity::find().filter(users::Column::Email.eq(email)).one(&app.owner).await.expect("q").expect("user")
}

/// Inserts a row as the owner (bypassing the application and, on PostgreSQL, RLS).
async fn put<E>(app: &TestApp, model: E::Model)
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    E::insert(model.into_active_model().reset_all()).exec_without_returning(&app.owner).await.expect("insert");
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("timestamp").with_timezone(&Utc)
}

// ------------------------------------------------------------------ schema presence

async fn each_field_exists_only_for_the_roles_the_policy_allows(app: &TestApp) {
    let sessions = sessions_by_role(app).await;
    for (email, role) in ACCOUNTS {
        let token = &sessions[role].token;
        for (field, query, allowed) in FIELDS {
            let res = app.gql(token, query).await;
            let message = res["errors"][0]["message"].as_str().unwrap_or("");
            if allowed.contains(&role) {
                // Executed: the field is in the answer, or refused by its resolver (a coded
                // error; not a validation error, which the message rules out).
                assert!(res["data"].get(field).is_some() || code(&res).is_some(), "{email} / {field}: {res}");
                assert!(!message.starts_with("Unknown field"), "{email} / {field}: {res}");
            } else {
                assert!(res["data"].is_null(), "{email} / {field}: {res}");
                assert_eq!(message, unknown(field, "Query"), "{email} / {field}: {res}");
                // Rejected exactly like a field that exists nowhere: the same errors (message
                // up to the name, locations, the validation code and no other extension),
                // nothing more.
                let bogus = app.gql(token, &query.replace(field, "zzNoSuchField")).await;
                let (h, b) = (res["errors"].as_array().expect("errors"), bogus["errors"].as_array().expect("errors"));
                assert_eq!(h.len(), b.len(), "{email} / {field}: {res} vs {bogus}");
                for (he, be) in h.iter().zip(b) {
                    let hm = he["message"].as_str().unwrap_or("").replace(&format!("\"{field}\""), "\"zzNoSuchField\"");
                    assert_eq!(hm, be["message"].as_str().unwrap_or(""), "{email} / {field}");
                    assert_eq!(he["locations"], be["locations"], "{email} / {field}");
                    assert_eq!(he.get("extensions"), be.get("extensions"), "{email} / {field}");
                }
                assert_eq!(
                    code(&res),
                    Some("GRAPHQL_VALIDATION_FAILED"),
                    "{email} / {field}: an unknown field carries the code of every validation error: {res}"
                );
            }
        }
        // Introspection agrees: exactly the allowed fields of these ten are in the schema.
        let res = app.gql(token, "{ __schema { queryType { fields { name } } } }").await;
        let names: BTreeSet<String> = res["data"]["__schema"]["queryType"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .filter_map(|f| f["name"].as_str().map(str::to_owned))
            .collect();
        for (field, _, allowed) in FIELDS {
            assert_eq!(names.contains(field), allowed.contains(&role), "{email}: introspection of {field}");
        }
    }
}
both_backends!(
    each_field_exists_only_for_the_roles_the_policy_allows,
    each_field_exists_only_for_the_roles_the_policy_allows
);

// ------------------------------------------------------------------ programMetrics

/// The all-time figures of a tenant, computed independently with plain SQL as the owner.
async fn expected_metrics(app: &TestApp, slug: &str) -> (i64, i64, f64, f64) {
    let t = format!("JOIN tenants t ON t.id = x.tenant_id WHERE t.slug = '{slug}'");
    let active = app
        .count(&format!("SELECT COUNT(DISTINCT x.coachee_id) FROM coaching_sessions x {t} AND x.status = 'COMPLETED'"))
        .await;
    let sessions = app.count(&format!("SELECT COUNT(*) FROM coaching_sessions x {t} AND x.status = 'COMPLETED'")).await;
    let items = app.count(&format!("SELECT COUNT(*) FROM action_items x {t}")).await;
    let done = app.count(&format!("SELECT COUNT(*) FROM action_items x {t} AND x.completed_at IS NOT NULL")).await;
    let feedback = app.count(&format!("SELECT COUNT(*) FROM ai_feedback x {t}")).await;
    let helpful = app.count(&format!("SELECT COUNT(*) FROM ai_feedback x {t} AND x.helpful = TRUE")).await;
    (active, sessions, done as f64 / items as f64, helpful as f64 / feedback as f64)
}

fn assert_figures(m: &Value, expected: (i64, i64, f64, f64)) {
    assert_eq!(m["suppressed"], false, "{m}");
    assert_eq!(m["activeCoachees"], expected.0, "{m}");
    assert_eq!(m["sessionsCompleted"], expected.1, "{m}");
    let rate = m["actionItemCompletionRate"].as_f64().expect("rate");
    assert!((rate - expected.2).abs() < 1e-9, "{m}");
    let satisfaction = m["averageSatisfaction"].as_f64().expect("satisfaction");
    assert!((satisfaction - expected.3).abs() < 1e-9, "{m}");
}

fn assert_suppressed(m: &Value) {
    assert_eq!(
        m,
        &json!({
            "activeCoachees": null, "sessionsCompleted": null, "actionItemCompletionRate": null,
            "averageSatisfaction": null, "suppressed": true
        })
    );
}

async fn metrics(app: &TestApp, token: &str, args: &str) -> Value {
    let res = app.gql(token, &format!("{{ programMetrics{args} {{ {METRICS} }} }}")).await;
    assert!(res["errors"].is_null(), "{args}: {res}");
    res["data"]["programMetrics"].clone()
}

async fn program_metrics_answer_admins_and_executives_with_tenant_figures(app: &TestApp) {
    let expected = expected_metrics(app, "acme").await;
    assert_eq!(expected.0, 12, "demo data: every acme coachee completed sessions");
    for email in ["exec1@acme.test", "admin1@acme.test"] {
        let s = app.session_for(email).await;
        assert_figures(&metrics(app, &s.token, "").await, expected);
        // All completed demo data lies in October 2026 (t0 - 28d, t0 - 7d): a range inside
        // October is widened to the whole month and gives the same figures.
        let october = metrics(app, &s.token, "(from: \"2026-10-15T00:00:00Z\", to: \"2026-10-16T00:00:00Z\")").await;
        assert_figures(&october, expected);
        // Open ends.
        assert_figures(&metrics(app, &s.token, "(from: \"2026-10-31T23:59:59Z\")").await, expected);
        assert_figures(&metrics(app, &s.token, "(to: \"2026-10-01T00:00:00Z\")").await, expected);
        // Months are UTC months: midnight of 1 October at UTC+2 is still September.
        assert_suppressed(&metrics(app, &s.token, "(to: \"2026-10-01T00:00:00+02:00\")").await);
        assert_figures(&metrics(app, &s.token, "(from: \"2026-11-01T00:00:00+02:00\")").await, expected);
        // November holds only scheduled sessions: no one behind any figure, suppressed.
        assert_suppressed(
            &metrics(app, &s.token, "(from: \"2026-11-01T00:00:00Z\", to: \"2026-11-30T00:00:00Z\")").await,
        );
        // September: nothing at all.
        assert_suppressed(
            &metrics(app, &s.token, "(from: \"2026-09-01T00:00:00Z\", to: \"2026-09-30T00:00:00Z\")").await,
        );

        let res = app
            .gql(
                &s.token,
                "{ programMetrics(from: \"2026-10-02T00:00:00Z\", to: \"2026-10-01T00:00:00Z\") { suppressed } }",
            )
            .await;
        assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");
        assert!(res["data"].is_null());
        let res = app.gql(&s.token, "{ programMetrics(from: \"last week\") { suppressed } }").await;
        assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");
        // No drill-down: there is no argument to narrow the group.
        let res = app.gql(&s.token, "{ programMetrics(coachId: \"x\") { suppressed } }").await;
        assert!(res["data"].is_null(), "{res}");
    }
}
both_backends!(
    program_metrics_answer_admins_and_executives_with_tenant_figures,
    program_metrics_answer_admins_and_executives_with_tenant_figures
);

fn completed_session(tenant: Uuid, coach: Uuid, coachee: Uuid, at: DateTime<Utc>) -> coaching_sessions::Model {
    coaching_sessions::Model {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        coach_id: coach,
        coachee_id: coachee,
        scheduled_at: at,
        duration_minutes: 45,
        status: SessionStatus::Completed,
        created_at: at,
        updated_at: at,
    }
}

async fn a_month_with_fewer_than_five_coachees_suppresses_every_range_that_contains_it(app: &TestApp) {
    let exec = app.session_for("exec1@acme.test").await;
    let expected = expected_metrics(app, "acme").await;
    let acme = tenant_id(app, "acme").await;
    let coach = user(app, "coach1@acme.test").await.id;

    // One coachee alone in August.
    let coachee1 = user(app, "coachee1@acme.test").await.id;
    put::<coaching_sessions::Entity>(app, completed_session(acme, coach, coachee1, ts("2026-08-14T10:00:00Z"))).await;
    assert_suppressed(&metrics(app, &exec.token, "").await);
    assert_suppressed(
        &metrics(app, &exec.token, "(from: \"2026-08-20T00:00:00Z\", to: \"2026-10-31T00:00:00Z\")").await,
    );
    assert_suppressed(&metrics(app, &exec.token, "(to: \"2026-08-01T00:00:00Z\")").await);
    // Ranges that leave August out are answered, and exactly as before.
    assert_figures(&metrics(app, &exec.token, "(from: \"2026-09-01T00:00:00Z\")").await, expected);

    // Four more coachees in August: five people, the month may be shown.
    for i in 2..=5 {
        let coachee = user(app, &format!("coachee{i}@acme.test")).await.id;
        put::<coaching_sessions::Entity>(app, completed_session(acme, coach, coachee, ts("2026-08-20T10:00:00Z")))
            .await;
    }
    let all = metrics(app, &exec.token, "").await;
    assert_figures(&all, (expected.0, expected.1 + 5, expected.2, expected.3));
    let august = metrics(app, &exec.token, "(from: \"2026-08-01T00:00:00Z\", to: \"2026-08-31T00:00:00Z\")").await;
    assert_eq!(august["sessionsCompleted"], 5, "{august}");
    assert_eq!(august["activeCoachees"], 5);
    assert_eq!(august["suppressed"], false);

    // Each source is checked on its own: one coachee's action item in September would
    // otherwise be isolated by "Aug..Oct" minus "Aug" minus "Oct".
    put::<action_items::Entity>(
        app,
        action_items::Model {
            id: Uuid::new_v4(),
            tenant_id: acme,
            coachee_id: coachee1,
            session_id: None,
            created_by: coach,
            title: "Lonely action".to_owned(),
            due_on: None,
            completed_at: None,
            created_at: ts("2026-09-10T10:00:00Z"),
        },
    )
    .await;
    assert_suppressed(&metrics(app, &exec.token, "").await);
    assert_suppressed(
        &metrics(app, &exec.token, "(from: \"2026-09-01T00:00:00Z\", to: \"2026-09-30T00:00:00Z\")").await,
    );
    assert_eq!(metrics(app, &exec.token, "(from: \"2026-10-01T00:00:00Z\")").await["suppressed"], false);

    // Deleting a coachee's data takes its contribution away too: with coachee1 gone from
    // August and September, August holds four coachees and is suppressed.
    action_items::Entity::delete_many()
        .filter(action_items::Column::Title.eq("Lonely action"))
        .exec(&app.owner)
        .await
        .expect("delete");
    coaching_sessions::Entity::delete_many()
        .filter(coaching_sessions::Column::CoacheeId.eq(coachee1))
        .filter(coaching_sessions::Column::ScheduledAt.lt(ts("2026-09-01T00:00:00Z")))
        .exec(&app.owner)
        .await
        .expect("delete");
    assert_suppressed(
        &metrics(app, &exec.token, "(from: \"2026-08-01T00:00:00Z\", to: \"2026-08-31T00:00:00Z\")").await,
    );
    assert_figures(&metrics(app, &exec.token, "(from: \"2026-09-01T00:00:00Z\")").await, expected);
}
both_backends!(
    a_month_with_fewer_than_five_coachees_suppresses_every_range_that_contains_it,
    a_month_with_fewer_than_five_coachees_suppresses_every_range_that_contains_it
);

async fn program_metrics_never_reflect_another_tenant(app: &TestApp) {
    let exec = app.session_for("exec1@acme.test").await;
    let before = metrics(app, &exec.token, "").await;
    let admin_before = metrics(app, &app.session_for("admin1@acme.test").await.token, "").await;
    assert_eq!(before, admin_before);

    // Globex gets five coachees' sessions in October (acme's busy month) and one coachee's
    // session alone in August.
    let globex = tenant_id(app, "globex").await;
    let coach = user(app, "coach1@globex.test").await.id;
    for i in 1..=5 {
        let coachee = user(app, &format!("coachee{i}@globex.test")).await.id;
        put::<coaching_sessions::Entity>(app, completed_session(globex, coach, coachee, ts("2026-10-12T10:00:00Z")))
            .await;
    }
    let coachee = user(app, "coachee6@globex.test").await.id;
    put::<coaching_sessions::Entity>(app, completed_session(globex, coach, coachee, ts("2026-08-12T10:00:00Z"))).await;

    assert_eq!(metrics(app, &exec.token, "").await, before, "acme's answer does not move");
    assert_eq!(
        metrics(app, &exec.token, "(from: \"2026-08-01T00:00:00Z\", to: \"2026-10-31T00:00:00Z\")").await,
        before
    );
    // Globex's own executive sees its lonely August suppress its all-time figures.
    let globex_exec = app.session_for("exec1@globex.test").await;
    assert_suppressed(&metrics(app, &globex_exec.token, "").await);
    let october = metrics(app, &globex_exec.token, "(from: \"2026-10-01T00:00:00Z\")").await;
    assert_eq!(october["sessionsCompleted"], expected_metrics(app, "globex").await.1 - 1, "{october}");
}
both_backends!(program_metrics_never_reflect_another_tenant, program_metrics_never_reflect_another_tenant);

// ------------------------------------------------------------------ auditEvents

const AUDIT_QUERY: &str = "query($first: Int, $after: String, $outcome: String) { auditEvents(first: $first, after: $after, outcome: $outcome) { totalCount pageInfo { hasNextPage endCursor } nodes { id at actorId actorRole action resource outcome reason } } }";

async fn audit_ids(app: &TestApp, tenant: Option<Uuid>) -> BTreeSet<String> {
    let mut q = audit_events::Entity::find();
    if let Some(t) = tenant {
        q = q.filter(audit_events::Column::TenantId.eq(t));
    }
    q.all(&app.owner).await.expect("q").into_iter().map(|e| e.id.to_string()).collect()
}

async fn audit_events_show_admins_their_tenant_and_the_system_admin_everything(app: &TestApp) {
    // Some events in both tenants and on the platform chain.
    assert!(app.login_full("admin2@acme.test", "wrong").await.body["errors"].is_array());
    assert!(app.login_full("admin1@globex.test", "wrong").await.body["errors"].is_array());
    assert!(app.login_full("nobody@nowhere.test", "wrong").await.body["errors"].is_array());
    let sessions = sessions_by_role(app).await;
    // More acme events, enough to page through: naming a field outside one's schema is audited.
    // (A coach's: a coachee's own events are not the program admin's to see.)
    for _ in 0..3 {
        let res = app.gql(&sessions["COACH"].token, "{ auditEvents { totalCount } }").await;
        assert_eq!(res["errors"][0]["message"], unknown("auditEvents", "Query"), "{res}");
    }
    let res = app.gql(&sessions["COACHEE"].token, "{ me { coachNotes { id } } }").await;
    assert_eq!(res["errors"][0]["message"], unknown("coachNotes", "User"), "{res}");
    let acme = tenant_id(app, "acme").await;
    // A platform event with an IP address (the in-process router has none to record).
    let last_platform = audit_events::Entity::find()
        .filter(audit_events::Column::TenantId.is_null())
        .order_by_desc(audit_events::Column::Seq)
        .one(&app.owner)
        .await
        .expect("q")
        .expect("platform events");
    let ip_event = Uuid::new_v4();
    put::<audit_events::Entity>(
        app,
        audit_events::Model {
            id: ip_event,
            tenant_id: None,
            seq: last_platform.seq + 1,
            at: app.clock.now(),
            actor_id: None,
            actor_role: None,
            action: "LOGIN_FAILED".to_owned(),
            resource: "auth".to_owned(),
            outcome: AuditOutcome::Denied,
            reason: Some("unknown account".to_owned()),
            ip_address: Some("203.0.113.7".to_owned()),
            grant_id: None,
            prev_hash: last_platform.hash.clone(),
            hash: "0".repeat(64),
            request_id: None,
        },
    )
    .await;

    // Program admin: exactly its tenant's events.
    let admin = &sessions["PROGRAM_ADMIN"].token;
    // The acme chain without the coachees' own events (POLICY.md section 12).
    let coachee_own: BTreeSet<String> = audit_events::Entity::find()
        .filter(audit_events::Column::TenantId.eq(acme))
        .filter(audit_events::Column::ActorRole.eq(Role::Coachee))
        .filter(audit_events::Column::Outcome.ne(AuditOutcome::Alert))
        .all(&app.owner)
        .await
        .expect("q")
        .into_iter()
        .map(|e| e.id.to_string())
        .collect();
    assert!(!coachee_own.is_empty(), "the coachee's probe is in the chain");
    let acme_ids: BTreeSet<String> = audit_ids(app, Some(acme)).await.difference(&coachee_own).cloned().collect();
    let total_before = app.count("SELECT COUNT(*) FROM audit_events").await;
    let res = app.gql_vars(admin, AUDIT_QUERY, json!({ "first": 100 })).await;
    let conn = &res["data"]["auditEvents"];
    assert_eq!(conn["totalCount"], acme_ids.len() as i64, "{res}");
    let nodes = conn["nodes"].as_array().expect("nodes");
    let seen: BTreeSet<String> = nodes.iter().map(|n| n["id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(seen, acme_ids, "the acme chain but the coachees' own events, nothing else");
    assert!(
        nodes
            .iter()
            .any(|n| n["action"] == "LOGIN_FAILED" && n["outcome"] == "DENIED" && n["actorRole"] == "PROGRAM_ADMIN")
    );
    // Newest first: by time, then by position in the chain.
    let order: Vec<String> = audit_events::Entity::find()
        .filter(audit_events::Column::TenantId.eq(acme))
        .order_by_desc(audit_events::Column::At)
        .order_by_desc(audit_events::Column::Seq)
        .all(&app.owner)
        .await
        .expect("q")
        .into_iter()
        .map(|e| e.id.to_string())
        .filter(|id| !coachee_own.contains(id))
        .collect();
    let got: Vec<String> = nodes.iter().map(|n| n["id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(got, order);
    // Pages follow each other without overlap, newest first throughout.
    let first = app.gql_vars(admin, AUDIT_QUERY, json!({ "first": 2 })).await;
    let page1 = &first["data"]["auditEvents"];
    assert_eq!(page1["nodes"].as_array().expect("nodes").len(), 2, "{first}");
    assert_eq!(page1["pageInfo"]["hasNextPage"], true);
    let second = app.gql_vars(admin, AUDIT_QUERY, json!({ "first": 2, "after": page1["pageInfo"]["endCursor"] })).await;
    let page2 = &second["data"]["auditEvents"]["nodes"];
    assert_eq!(page2[0]["id"], nodes[2]["id"], "{second}");
    assert_eq!(page2[1]["id"], nodes[3]["id"]);
    assert_eq!(page1["nodes"][0]["id"], nodes[0]["id"]);

    // Reading the audit log is not itself audited.
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events").await, total_before);

    // ipAddress is SYSTEM_INTERNAL: not in the program admin's schema.
    let res = app.gql(admin, "{ auditEvents { nodes { ipAddress } } }").await;
    assert_eq!(res["errors"][0]["message"], unknown("ipAddress", "AuditEvent"), "{res}");
    assert!(res["data"].is_null());

    // Filter by outcome.
    let res = app.gql_vars(admin, AUDIT_QUERY, json!({ "first": 100, "outcome": "DENIED" })).await;
    let denied = app
        .count(
            "SELECT COUNT(*) FROM audit_events x JOIN tenants t ON t.id = x.tenant_id \
             WHERE t.slug = 'acme' AND x.outcome = 'DENIED' AND x.actor_role <> 'COACHEE'",
        )
        .await;
    assert!(denied >= 1);
    assert_eq!(res["data"]["auditEvents"]["totalCount"], denied, "{res}");
    assert!(res["data"]["auditEvents"]["nodes"].as_array().expect("nodes").iter().all(|n| n["outcome"] == "DENIED"));
    let res = app.gql_vars(admin, AUDIT_QUERY, json!({ "outcome": "denied" })).await;
    assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");

    // System admin: every chain, the platform's included, with IP addresses.
    let root = &sessions["SYSTEM_ADMIN"].token;
    let all_ids = audit_ids(app, None).await;
    let query = "{ auditEvents(first: 100) { totalCount nodes { id ipAddress actorRole } } }";
    let res = app.gql(root, query).await;
    let conn = &res["data"]["auditEvents"];
    assert_eq!(conn["totalCount"], all_ids.len() as i64, "{res}");
    let nodes = conn["nodes"].as_array().expect("nodes");
    let seen: BTreeSet<String> = nodes.iter().map(|n| n["id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(seen, all_ids);
    let ip = nodes.iter().find(|n| n["id"] == ip_event.to_string()).expect("platform event");
    assert_eq!(ip["ipAddress"], "203.0.113.7");
    assert!(all_ids.len() > acme_ids.len() + 1, "globex and platform events too");

    // Every other role: the field does not exist (checked for all roles in the schema test);
    // the executive, whose clearance includes ADMIN_AGGREGATE, included.
    let res = app.gql(&sessions["EXECUTIVE"].token, "{ auditEvents { totalCount } }").await;
    assert_eq!(res["errors"][0]["message"], unknown("auditEvents", "Query"));
}
both_backends!(
    audit_events_show_admins_their_tenant_and_the_system_admin_everything,
    audit_events_show_admins_their_tenant_and_the_system_admin_everything
);

// ------------------------------------------------------------------ tenantSettings

async fn tenant_settings_are_the_own_tenants_and_another_tenant_is_not_found(app: &TestApp) {
    let acme = tenant_id(app, "acme").await;
    let globex = tenant_id(app, "globex").await;
    let mut settings = tenant_settings::Entity::find_by_id(globex)
        .one(&app.owner)
        .await
        .expect("q")
        .expect("settings")
        .into_active_model();
    settings.session_timeout_minutes = Set(45);
    settings.audit_retention_days = Set(120);
    settings.data_retention_days = Set(None);
    settings.update(&app.owner).await.expect("update");
    let fields = "{ sessionTimeoutMinutes auditRetentionDays dataRetentionDays }";
    let acme_settings = json!({ "sessionTimeoutMinutes": 30, "auditRetentionDays": 90, "dataRetentionDays": 730 });
    let globex_settings = json!({ "sessionTimeoutMinutes": 45, "auditRetentionDays": 120, "dataRetentionDays": null });

    let admin = app.session_for("admin1@acme.test").await;
    let res = app.gql(&admin.token, &format!("{{ tenantSettings {fields} }}")).await;
    assert_eq!(res["data"]["tenantSettings"], acme_settings, "{res}");
    let res = app.gql(&admin.token, &format!("{{ tenantSettings(tenantId: \"{acme}\") {fields} }}")).await;
    assert_eq!(res["data"]["tenantSettings"], acme_settings, "{res}");

    // Another tenant's id answers exactly like an id that does not exist; both are audited.
    let denied = "SELECT COUNT(*) FROM audit_events WHERE outcome = 'DENIED' AND resource = 'system_config'";
    let before = app.count(denied).await;
    let other = app.gql(&admin.token, &format!("{{ tenantSettings(tenantId: \"{globex}\") {fields} }}")).await;
    let random =
        app.gql(&admin.token, &format!("{{ tenantSettings(tenantId: \"{}\") {fields} }}", Uuid::new_v4())).await;
    assert_eq!(code(&other), Some("NOT_FOUND"), "{other}");
    assert_eq!(other, random);
    assert!(other["data"].is_null());
    assert_eq!(app.count(denied).await, before + 2);
    let res = app.gql(&admin.token, &format!("{{ tenantSettings(tenantId: \"acme\") {fields} }}")).await;
    assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");

    let globex_admin = app.session_for("admin1@globex.test").await;
    let res = app.gql(&globex_admin.token, &format!("{{ tenantSettings {fields} }}")).await;
    assert_eq!(res["data"]["tenantSettings"], globex_settings, "{res}");

    // The system admin names the tenant.
    let root = app.session_for("root@coachgraph.test").await;
    let res = app.gql(&root.token, &format!("{{ tenantSettings {fields} }}")).await;
    assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");
    let res = app.gql(&root.token, &format!("{{ tenantSettings(tenantId: \"{globex}\") {fields} }}")).await;
    assert_eq!(res["data"]["tenantSettings"], globex_settings, "{res}");
    let res = app.gql(&root.token, &format!("{{ tenantSettings(tenantId: \"{acme}\") {fields} }}")).await;
    assert_eq!(res["data"]["tenantSettings"], acme_settings, "{res}");
    let res = app.gql(&root.token, &format!("{{ tenantSettings(tenantId: \"{}\") {fields} }}", Uuid::new_v4())).await;
    assert_eq!(code(&res), Some("NOT_FOUND"), "{res}");

    // The executive's clearance has ADMIN_AGGREGATE, but the matrix gives it no settings.
    let exec = app.session_for("exec1@acme.test").await;
    let res = app.gql(&exec.token, &format!("{{ tenantSettings {fields} }}")).await;
    assert_eq!(res["errors"][0]["message"], unknown("tenantSettings", "Query"));
}
both_backends!(
    tenant_settings_are_the_own_tenants_and_another_tenant_is_not_found,
    tenant_settings_are_the_own_tenants_and_another_tenant_is_not_found
);

// ------------------------------------------------------------------ systemConfig

async fn system_config_is_for_the_system_admin_only(app: &TestApp) {
    let root = app.session_for("root@coachgraph.test").await;
    let res = app.gql(&root.token, "{ systemConfig { entries { key value } } }").await;
    let mut expected: Vec<(String, String)> =
        system_config::Entity::find().all(&app.owner).await.expect("q").into_iter().map(|e| (e.key, e.value)).collect();
    expected.sort();
    assert!(expected.len() >= 3);
    let got: Vec<(String, String)> = res["data"]["systemConfig"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["key"].as_str().expect("key").to_owned(), e["value"].as_str().expect("value").to_owned()))
        .collect();
    assert_eq!(got, expected, "{res}");
    // The program admin's system_config grant is for tenant settings only.
    let admin = app.session_for("admin1@acme.test").await;
    let res = app.gql(&admin.token, "{ systemConfig { entries { key } } }").await;
    assert_eq!(res["errors"][0]["message"], unknown("systemConfig", "Query"));
}
both_backends!(system_config_is_for_the_system_admin_only, system_config_is_for_the_system_admin_only);

// ------------------------------------------------------------------ accountStatus

async fn account_status_shows_security_state_to_the_system_admin(app: &TestApp) {
    let q = |id: &str| {
        format!("{{ accountStatus(userId: \"{id}\") {{ userId lastLoginAt failedLoginCount lockedUntil active }} }}")
    };
    // Logged in for real: the lastLoginAt and failedLoginCount below are these logins' doing.
    let coachee1 = app.login("coachee1@acme.test").await;
    assert!(app.login_full("coachee2@acme.test", "wrong").await.body["errors"].is_array());
    let coachee2 = user(app, "coachee2@acme.test").await.id;
    let coachee3 = user(app, "coachee3@globex.test").await;
    let until = app.clock.now() + Duration::minutes(10);
    let mut locked = coachee3.clone().into_active_model();
    locked.locked_until = Set(Some(until));
    locked.status = Set(UserStatus::Deactivated);
    locked.update(&app.owner).await.expect("lock");

    let root = app.session_for("root@coachgraph.test").await;
    let res = app.gql(&root.token, &q(&coachee1.user_id)).await;
    assert_eq!(
        res["data"]["accountStatus"],
        json!({ "userId": coachee1.user_id, "lastLoginAt": dt(app.clock.now()), "failedLoginCount": 0, "lockedUntil": null, "active": true }),
        "{res}"
    );
    let res = app.gql(&root.token, &q(&coachee2.to_string())).await;
    assert_eq!(res["data"]["accountStatus"]["failedLoginCount"], 1, "{res}");
    assert_eq!(res["data"]["accountStatus"]["lastLoginAt"], Value::Null);
    let res = app.gql(&root.token, &q(&coachee3.id.to_string())).await;
    assert_eq!(res["data"]["accountStatus"]["lockedUntil"], dt(until), "{res}");
    assert_eq!(res["data"]["accountStatus"]["active"], false);
    // A lock that has run out is no lock.
    app.clock.advance(Duration::minutes(11));
    let root = app.session_for("root@coachgraph.test").await;
    let res = app.gql(&root.token, &q(&coachee3.id.to_string())).await;
    assert_eq!(res["data"]["accountStatus"]["lockedUntil"], Value::Null, "{res}");

    // Unknown id: null, NOT_FOUND, audited on the platform chain.
    let platform_denials =
        "SELECT COUNT(*) FROM audit_events WHERE tenant_id IS NULL AND resource = 'account_security_status'";
    let before = app.count(platform_denials).await;
    let res = app.gql(&root.token, &q(&Uuid::new_v4().to_string())).await;
    assert_eq!(res["data"]["accountStatus"], Value::Null, "{res}");
    assert_eq!(code(&res), Some("NOT_FOUND"));
    assert_eq!(app.count(platform_denials).await, before + 1);
    let res = app.gql(&root.token, &q("not-a-uuid")).await;
    assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{res}");

    // Program admins manage users but never see their security state.
    let res = app.gql(&app.session_for("admin1@acme.test").await.token, &q(&coachee1.user_id)).await;
    assert_eq!(res["errors"][0]["message"], unknown("accountStatus", "Query"));
}
both_backends!(
    account_status_shows_security_state_to_the_system_admin,
    account_status_shows_security_state_to_the_system_admin
);

// ------------------------------------------------------------------ breakGlassRequests

struct Filed {
    id: Uuid,
    expires_at: Option<DateTime<Utc>>,
    approved_by: Option<Uuid>,
    active: bool,
}

#[allow(clippy::too_many_arguments)]
async fn file_request(
    app: &TestApp,
    tenant: Uuid,
    coachee: Uuid,
    requester: Uuid,
    created_at: DateTime<Utc>,
    approval: Option<(Uuid, DateTime<Utc>, i32)>,
    revoked: bool,
) -> Uuid {
    let id = Uuid::new_v4();
    put::<break_glass_requests::Entity>(
        app,
        break_glass_requests::Model {
            id,
            tenant_id: tenant,
            coachee_id: coachee,
            requested_by: requester,
            reason: format!("emergency {id}"),
            minutes: approval.map(|a| a.2).unwrap_or(30),
            created_at,
            approved_by: approval.map(|a| a.0),
            approved_at: approval.map(|a| a.1),
            revoked_at: revoked.then_some(created_at + Duration::minutes(5)),
            revoked_by: revoked.then_some(requester),
        },
    )
    .await;
    if let Some((approver, at, minutes)) = approval {
        put::<break_glass_grants::Entity>(
            app,
            break_glass_grants::Model {
                id: Uuid::new_v4(),
                tenant_id: tenant,
                request_id: id,
                coachee_id: coachee,
                grantee_id: requester,
                approved_by: approver,
                starts_at: at,
                expires_at: at + Duration::minutes(i64::from(minutes)),
                revoked_at: revoked.then_some(created_at + Duration::minutes(5)),
            },
        )
        .await;
    }
    id
}

async fn break_glass_requests_are_listed_for_admins_of_the_tenant_and_the_platform(app: &TestApp) {
    let now = app.clock.now();
    let acme = tenant_id(app, "acme").await;
    let globex = tenant_id(app, "globex").await;
    let admin1 = user(app, "admin1@acme.test").await.id;
    let admin2 = user(app, "admin2@acme.test").await.id;
    let coachee = user(app, "coachee1@acme.test").await.id;
    let g_admin1 = user(app, "admin1@globex.test").await.id;
    let g_coachee = user(app, "coachee1@globex.test").await.id;

    let pending = file_request(app, acme, coachee, admin1, now - Duration::minutes(1), None, false).await;
    let live_at = now - Duration::minutes(10);
    let live =
        file_request(app, acme, coachee, admin1, now - Duration::minutes(20), Some((admin2, live_at, 30)), false).await;
    let old_at = now - Duration::hours(2);
    let expired =
        file_request(app, acme, coachee, admin2, now - Duration::hours(3), Some((admin1, old_at, 15)), false).await;
    let revoked_at = now - Duration::hours(5);
    let revoked =
        file_request(app, acme, coachee, admin1, now - Duration::hours(6), Some((admin2, revoked_at, 60)), true).await;
    let foreign = file_request(app, globex, g_coachee, g_admin1, now - Duration::minutes(2), None, false).await;

    let acme_expected = [
        Filed { id: pending, expires_at: None, approved_by: None, active: false },
        Filed { id: live, expires_at: Some(live_at + Duration::minutes(30)), approved_by: Some(admin2), active: true },
        Filed {
            id: expired,
            expires_at: Some(old_at + Duration::minutes(15)),
            approved_by: Some(admin1),
            active: false,
        },
        Filed {
            id: revoked,
            expires_at: Some(revoked_at + Duration::minutes(60)),
            approved_by: Some(admin2),
            active: false,
        },
    ];
    let as_json = |f: &Filed, coachee: Uuid, requester: Uuid| {
        json!({
            "id": f.id.to_string(), "coacheeId": coachee.to_string(), "requestedBy": requester.to_string(),
            "approvedBy": f.approved_by.map(|a| a.to_string()), "reason": format!("emergency {}", f.id),
            "expiresAt": f.expires_at.map(dt), "active": f.active,
        })
    };
    let requesters = [admin1, admin1, admin2, admin1];
    let query = "{ breakGlassRequests { id coacheeId requestedBy approvedBy reason expiresAt active } }";

    let admin = app.session_for("admin2@acme.test").await;
    let res = app.gql(&admin.token, query).await;
    let expected: Vec<Value> = acme_expected.iter().zip(requesters).map(|(f, r)| as_json(f, coachee, r)).collect();
    assert_eq!(res["data"]["breakGlassRequests"], json!(expected), "{res}");

    let g_admin = app.session_for("admin1@globex.test").await;
    let res = app.gql(&g_admin.token, query).await;
    let g_expected = Filed { id: foreign, expires_at: None, approved_by: None, active: false };
    assert_eq!(res["data"]["breakGlassRequests"], json!([as_json(&g_expected, g_coachee, g_admin1)]), "{res}");

    // The system admin reads every tenant's requests, newest first, with the same verdicts.
    let root = app.session_for("root@coachgraph.test").await;
    let res = app.gql(&root.token, query).await;
    let mut all = expected.clone();
    all.insert(1, as_json(&g_expected, g_coachee, g_admin1));
    assert_eq!(res["data"]["breakGlassRequests"], json!(all), "{res}");

    // Expiry is judged against the current time on every request.
    app.clock.advance(Duration::minutes(25));
    let admin = app.session_for("admin1@acme.test").await;
    let res = app.gql(&admin.token, "{ breakGlassRequests { id active } }").await;
    assert!(res["data"]["breakGlassRequests"].as_array().expect("list").iter().all(|r| r["active"] == false), "{res}");

    for email in ["exec1@acme.test", "coach1@acme.test"] {
        let s = app.session_for(email).await;
        let res = app.gql(&s.token, query).await;
        assert_eq!(res["errors"][0]["message"], unknown("breakGlassRequests", "Query"), "{email}");
    }
}
both_backends!(
    break_glass_requests_are_listed_for_admins_of_the_tenant_and_the_platform,
    break_glass_requests_are_listed_for_admins_of_the_tenant_and_the_platform
);

// ------------------------------------------------------------------ integrationTokens

async fn token(app: &TestApp, owner: &users::Model, name: &str, created: DateTime<Utc>, revoked: bool) {
    put::<integration_tokens::Entity>(
        app,
        integration_tokens::Model {
            id: Uuid::new_v4(),
            tenant_id: owner.tenant_id.expect("tenant"),
            user_id: owner.id,
            name: name.to_owned(),
            token_hash: format!("{:0>64}", Uuid::new_v4().simple()),
            created_at: created,
            last_used_at: (name == "calendar").then_some(created + Duration::hours(1)),
            revoked_at: revoked.then_some(created + Duration::hours(2)),
            use_audited_at: None,
        },
    )
    .await;
}

async fn integration_tokens_are_the_callers_own_live_tokens(app: &TestApp) {
    let now = app.clock.now();
    let coachee1 = user(app, "coachee1@acme.test").await;
    token(app, &coachee1, "calendar", now - Duration::days(2), false).await;
    token(app, &coachee1, "old phone", now - Duration::days(3), true).await;
    token(app, &coachee1, "journal", now - Duration::days(1), false).await;
    token(app, &user(app, "coach1@acme.test").await, "crm", now - Duration::days(1), false).await;
    token(app, &user(app, "coachee2@acme.test").await, "other coachee", now, false).await;
    token(app, &user(app, "coachee1@globex.test").await, "other tenant", now, false).await;

    let query = "{ integrationTokens { name createdAt lastUsedAt } }";
    let s = app.session_for("coachee1@acme.test").await;
    let res = app.gql(&s.token, query).await;
    assert_eq!(
        res["data"]["integrationTokens"],
        json!([
            { "name": "journal", "createdAt": dt(now - Duration::days(1)), "lastUsedAt": null },
            { "name": "calendar", "createdAt": dt(now - Duration::days(2)), "lastUsedAt": dt(now - Duration::days(2) + Duration::hours(1)) },
        ]),
        "{res}"
    );
    let res = app.gql(&s.token, "{ integrationTokens { id } }").await;
    assert_eq!(res["data"]["integrationTokens"].as_array().expect("list").len(), 2);
    // The hash is nowhere in the schema.
    let res = app.gql(&s.token, "{ integrationTokens { tokenHash } }").await;
    assert_eq!(res["errors"][0]["message"], unknown("tokenHash", "IntegrationToken"), "{res}");

    let coach = app.session_for("coach1@acme.test").await;
    let res = app.gql(&coach.token, query).await;
    assert_eq!(res["data"]["integrationTokens"].as_array().expect("list").len(), 1, "{res}");
    assert_eq!(res["data"]["integrationTokens"][0]["name"], "crm");
    let res = app.gql(&app.session_for("coachee3@acme.test").await.token, query).await;
    assert_eq!(res["data"]["integrationTokens"], json!([]), "{res}");
    let res = app.gql(&app.session_for("admin1@acme.test").await.token, query).await;
    assert_eq!(res["errors"][0]["message"], unknown("integrationTokens", "Query"));
}
both_backends!(integration_tokens_are_the_callers_own_live_tokens, integration_tokens_are_the_callers_own_live_tokens);

// ------------------------------------------------------------------ aiAccessLog

async fn ai_access_log_is_the_coachees_own(app: &TestApp) {
    let now = app.clock.now();
    let ai = user(app, "ai@acme.test").await;
    let log = |coachee: &users::Model, ai: &users::Model, at: DateTime<Utc>, purpose: &str| ai_access_log::Model {
        id: Uuid::new_v4(),
        tenant_id: coachee.tenant_id.expect("tenant"),
        coachee_id: coachee.id,
        ai_principal_id: ai.id,
        model: "sasha-2".to_owned(),
        purpose: purpose.to_owned(),
        resource: "session_metadata".to_owned(),
        action: "READ".to_owned(),
        row_ids: "[]".to_owned(),
        at,
    };
    let coachee1 = user(app, "coachee1@acme.test").await;
    for h in 1..=3 {
        put::<ai_access_log::Entity>(app, log(&coachee1, &ai, now - Duration::hours(h), &format!("prep {h}"))).await;
    }
    put::<ai_access_log::Entity>(app, log(&user(app, "coachee2@acme.test").await, &ai, now, "other coachee")).await;
    let g_coachee = user(app, "coachee1@globex.test").await;
    put::<ai_access_log::Entity>(app, log(&g_coachee, &user(app, "ai@globex.test").await, now, "other tenant")).await;

    let s = app.session_for("coachee1@acme.test").await;
    let q = "query($first: Int, $after: String) { aiAccessLog(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { at model purpose resource } } }";
    let res = app.gql_vars(&s.token, q, json!({ "first": 2 })).await;
    let conn = &res["data"]["aiAccessLog"];
    assert_eq!(conn["totalCount"], 3, "{res}");
    assert_eq!(
        conn["nodes"],
        json!([
            { "at": dt(now - Duration::hours(1)), "model": "sasha-2", "purpose": "prep 1", "resource": "session_metadata" },
            { "at": dt(now - Duration::hours(2)), "model": "sasha-2", "purpose": "prep 2", "resource": "session_metadata" },
        ])
    );
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
    let res = app.gql_vars(&s.token, q, json!({ "first": 2, "after": conn["pageInfo"]["endCursor"] })).await;
    let conn = &res["data"]["aiAccessLog"];
    assert_eq!(conn["nodes"].as_array().expect("nodes").len(), 1, "{res}");
    assert_eq!(conn["nodes"][0]["purpose"], "prep 3");
    assert_eq!(conn["pageInfo"]["hasNextPage"], false);

    let res = app
        .gql(&app.session_for("coachee3@acme.test").await.token, "{ aiAccessLog { totalCount nodes { at } } }")
        .await;
    assert_eq!(res["data"]["aiAccessLog"], json!({ "totalCount": 0, "nodes": [] }), "{res}");
    // Not the coach's (nor anyone else's) to read.
    let res = app.gql(&app.session_for("coach1@acme.test").await.token, "{ aiAccessLog { totalCount } }").await;
    assert_eq!(res["errors"][0]["message"], unknown("aiAccessLog", "Query"));
}
both_backends!(ai_access_log_is_the_coachees_own, ai_access_log_is_the_coachees_own);

// ------------------------------------------------------------------ accessNotices

/// A break-glass notice to `coachee` about a program admin's access at `at`.
fn access_notice(
    coachee: &users::Model,
    admin: &users::Model,
    at: DateTime<Utc>,
    reason: &str,
) -> access_notices::Model {
    access_notices::Model {
        id: Uuid::new_v4(),
        tenant_id: coachee.tenant_id.expect("tenant"),
        coachee_id: coachee.id,
        actor_id: admin.id,
        actor_role: Role::ProgramAdmin,
        reason: reason.to_owned(),
        grant_id: None,
        at,
    }
}

async fn access_notices_are_about_the_callers_own_data(app: &TestApp) {
    let now = app.clock.now();
    let admin = user(app, "admin1@acme.test").await;
    let notice = |coachee: &users::Model, at: DateTime<Utc>, reason: &str| access_notice(coachee, &admin, at, reason);
    let coachee1 = user(app, "coachee1@acme.test").await;
    put::<access_notices::Entity>(app, notice(&coachee1, now - Duration::days(2), "wellbeing check")).await;
    put::<access_notices::Entity>(app, notice(&coachee1, now - Duration::days(1), "escalation")).await;
    put::<access_notices::Entity>(app, notice(&user(app, "coachee2@acme.test").await, now, "someone else")).await;

    let query = "{ accessNotices { at actorRole reason } }";
    let res = app.gql(&app.session_for("coachee1@acme.test").await.token, query).await;
    assert_eq!(
        res["data"]["accessNotices"],
        json!([
            { "at": dt(now - Duration::days(1)), "actorRole": "PROGRAM_ADMIN", "reason": "escalation" },
            { "at": dt(now - Duration::days(2)), "actorRole": "PROGRAM_ADMIN", "reason": "wellbeing check" },
        ]),
        "{res}"
    );
    let res = app.gql(&app.session_for("coachee1@globex.test").await.token, query).await;
    assert_eq!(res["data"]["accessNotices"], json!([]), "{res}");
    // A coach's own notices: none are about a coach's data, and its coachees' are not its.
    let res = app.gql(&app.session_for("coach1@acme.test").await.token, query).await;
    assert_eq!(res["data"]["accessNotices"], json!([]), "{res}");
    let res = app.gql(&app.session_for("admin1@acme.test").await.token, query).await;
    assert_eq!(res["errors"][0]["message"], unknown("accessNotices", "Query"));
}
both_backends!(access_notices_are_about_the_callers_own_data, access_notices_are_about_the_callers_own_data);

/// Read beside other relations of the same level, the notices come from one combined
/// statement on PostgreSQL: still the caller's own, still newest first.
async fn access_notices_keep_owner_and_order_when_read_beside_other_relations(app: &TestApp) {
    let now = app.clock.now();
    let admin = user(app, "admin1@acme.test").await;
    let coachee1 = user(app, "coachee1@acme.test").await;
    let coachee2 = user(app, "coachee2@acme.test").await;
    let notices =
        [(&coachee1, 3, "oldest"), (&coachee1, 1, "newest"), (&coachee1, 2, "middle"), (&coachee2, 0, "not mine")];
    for (coachee, days, reason) in notices {
        put::<access_notices::Entity>(app, access_notice(coachee, &admin, now - Duration::days(days), reason)).await;
    }
    let query = "{ accessNotices { reason } myConsents { kind } me { id goals { id } } }";
    let res = app.gql(&app.session_for("coachee1@acme.test").await.token, query).await;
    assert!(res["errors"].is_null(), "{res}");
    assert_eq!(
        res["data"]["accessNotices"],
        json!([{ "reason": "newest" }, { "reason": "middle" }, { "reason": "oldest" }]),
        "{res}"
    );
    assert_eq!(res["data"]["myConsents"].as_array().map(Vec::len), Some(4), "{res}");
    let res = app.gql(&app.session_for("coachee2@acme.test").await.token, query).await;
    assert_eq!(res["data"]["accessNotices"], json!([{ "reason": "not mine" }]), "{res}");
}
both_backends!(
    access_notices_keep_owner_and_order_when_read_beside_other_relations,
    access_notices_keep_owner_and_order_when_read_beside_other_relations
);

// ------------------------------------------------------------------ myConsents

async fn my_consents_list_every_kind_for_the_coachee(app: &TestApp) {
    let t0 = t0();
    let changed = dt(t0 - Duration::days(20));
    let created = dt(t0);
    let query = "{ myConsents { kind granted changedAt } }";
    // coachee1: OBSERVE and TRANSCRIPT_SHARING granted, the others never set.
    let res = app.gql(&app.session_for("coachee1@acme.test").await.token, query).await;
    assert_eq!(
        res["data"]["myConsents"],
        json!([
            { "kind": "SASHA_OBSERVE", "granted": true, "changedAt": changed },
            { "kind": "SASHA_ANALYZE", "granted": false, "changedAt": created },
            { "kind": "SASHA_ACT", "granted": false, "changedAt": created },
            { "kind": "TRANSCRIPT_SHARING", "granted": true, "changedAt": changed },
        ]),
        "{res}"
    );
    // coachee5 withdrew OBSERVE (a row with granted = false).
    let res = app.gql(&app.session_for("coachee5@acme.test").await.token, query).await;
    assert_eq!(
        res["data"]["myConsents"][0],
        json!({ "kind": "SASHA_OBSERVE", "granted": false, "changedAt": changed })
    );
    // Globex's coachee1 has its own rows (changed a day earlier in the demo data).
    let res = app.gql(&app.session_for("coachee1@globex.test").await.token, query).await;
    assert_eq!(res["data"]["myConsents"][0]["changedAt"], dt(t0 - Duration::days(21)), "{res}");

    for email in ["coach1@acme.test", "ai@acme.test"] {
        let res = app.gql(&app.session_for(email).await.token, query).await;
        assert_eq!(res["errors"][0]["message"], unknown("myConsents", "Query"), "{email}");
    }
}
both_backends!(my_consents_list_every_kind_for_the_coachee, my_consents_list_every_kind_for_the_coachee);
