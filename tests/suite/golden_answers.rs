//! Golden answers: every Query field of the contract that the server declares today
//! (`schema.graphql`) and every client workload (`docs/spec/workloads/*.graphql`), sent
//! as each of the six demo roles (`acme`, and the platform's system administrator). The whole
//! answer, data and errors, is an insta snapshot under `snapshots/`, reviewed by hand
//! against POLICY.md: a change in what any role gets back shows up as a snapshot diff.
//!
//! Each role is asked twice when the two differ: the query as written (a field outside the
//! role's schema answers `Unknown field`), and the same query pruned to the fields the
//! role's schema has (found by introspection), which shows the rows and the per-row
//! refusals the role gets.
//!
//! Everything random is replaced before the snapshot is taken: ids of the demo data become
//! readable placeholders looked up from the database (`<coachee1>`, `<session:coachee1:2>`,
//! `<pack:coachee1:1:L1:approved>`, ...), other ids `<uuid:N>` in order of appearance, and
//! cursors `<cursor>`. Timestamps come from the test clock, which every request moves on by
//! a fixed step, so they are the same on every run; rows the demo data gives equal sort
//! keys are spread a second apart first (the API breaks such ties by random id), and
//! `errors` are sorted by path with their `locations` dropped (fields resolve concurrently).
//! The SQLite and the PostgreSQL variants assert against the same snapshot files: the two
//! backends must answer identically.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::parser::{Positioned, parse_query};
use chrono::Duration;
use coachgraph::db::entities::{
    access_notices, action_items, ai_feedback, break_glass_grants, break_glass_requests, coach_assignments,
    coach_notes, coaching_sessions, consents, evidence_packs, goals, insights, integration_tokens, tenants,
    transcripts, users,
};
use coachgraph::domain::kinds::{AiLevel, EvidenceLevel, InsightStatus, Role};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::common::*;

/// The six demo roles, in the order of the snapshots.
const ACCOUNTS: [(&str, &str); 6] = [
    ("coachee1@acme.test", "COACHEE"),
    ("coach1@acme.test", "COACH"),
    ("admin1@acme.test", "PROGRAM_ADMIN"),
    ("exec1@acme.test", "EXECUTIVE"),
    ("ai@acme.test", "AI_AGENT"),
    ("root@coachgraph.test", "SYSTEM_ADMIN"),
];

/// The workloads the spec ships; every one must exist (and any other found is asked too).
const WORKLOADS: [&str; 3] = ["client_app", "coach_dashboard", "exec_report"];

/// An id that names nothing, in any tenant.
const NONEXISTENT: &str = "00000000-0000-4000-8000-000000000000";

const SESSION_FIELDS: &str = "id scheduledAt durationMinutes status coach { id displayName } \
     coachee { id displayName } summary approvedInsights { id body status approvedAt authorRole } \
     evidencePacks { id level content approved } actionItems { id title dueOn completedAt } \
     draftInsights { id body status authorRole } privateNotes transcript";

const METRICS: &str = "activeCoachees sessionsCompleted actionItemCompletionRate averageSatisfaction suppressed";

/// One snapshot: a query (with `<label>` placeholders for ids), sent as every role.
struct Case {
    /// Snapshot name.
    name: String,
    /// The Query field of the contract it covers (`None` for workloads).
    field: Option<&'static str>,
    query: String,
    variables: Value,
    /// Requests the AI principal makes first (each touching one resource of one coachee),
    /// so that the case has something to show.
    ai_prelude: Vec<&'static str>,
}

fn case(name: &str, field: &'static str, query: &str) -> Case {
    Case {
        name: name.to_owned(),
        field: Some(field),
        query: query.to_owned(),
        variables: json!({}),
        ai_prelude: vec![],
    }
}

/// The contract's Query fields, each asked with ids that make the answer telling. Order
/// matters only for what the audit log and the AI access log hold (the export includes
/// the latter): they come first.
fn contract_cases() -> Vec<Case> {
    let mut aiaccess = case(
        "aiAccessLog",
        "aiAccessLog",
        "{ aiAccessLog(first: 10) { totalCount pageInfo { hasNextPage endCursor } nodes { at model purpose resource } } }",
    );
    aiaccess.ai_prelude = vec![
        r#"{ session(id: "<session:coachee1:1>") { id } }"#,
        r#"{ user(id: "<coachee1>") { id displayName } }"#,
        r#"{ session(id: "<session:coachee2:1>") { id } }"#,
    ];
    vec![
        case(
            "auditEvents",
            "auditEvents",
            "{ recent: auditEvents(first: 8) { totalCount pageInfo { hasNextPage endCursor } \
               nodes { id at actorId actorRole action resource outcome reason ipAddress } } \
             denied: auditEvents(first: 3, outcome: \"DENIED\") { totalCount \
               nodes { at actorId actorRole action resource outcome reason } } }",
        ),
        aiaccess,
        // Holds the AI access log too: right after the prelude, before any other AI read.
        case("myDataExport", "myDataExport", "{ myDataExport { json generatedAt } }"),
        case("viewer", "viewer", "{ viewer { id role tenantId displayName } }"),
        case(
            "me",
            "me",
            "{ me { id role displayName email coachNotes { id body } \
               sessions(first: 5) { totalCount pageInfo { hasNextPage endCursor } nodes { id status summary } } \
               goals { id title progressPercent } \
               actionItems(first: 5) { totalCount nodes { id title completedAt } } } }",
        ),
        // A coachee naming its own coach's `role` or `email` (fields its grant does not show)
        // gets null with FORBIDDEN at each path (contract version 2).
        case(
            "user",
            "user",
            r#"{
              coachee1: user(id: "<coachee1>") { id role displayName email coachNotes { id body }
                sessions(first: 1) { totalCount nodes { id } } goals { id } actionItems(first: 1) { totalCount } }
              coachee2: user(id: "<coachee2>") { id coachNotes { id body } }
              coach1: user(id: "<coach1>") { id role displayName email }
              coach2: user(id: "<coach2>") { id role displayName email }
              coachee7: user(id: "<coachee7>") { id role displayName email }
              admin1: user(id: "<admin1>") { id role displayName }
              ai: user(id: "<ai>") { id displayName }
              globexCoachee1: user(id: "<globex:coachee1>") { id displayName }
              nonexistent: user(id: "<nonexistent>") { id displayName }
            }"#,
        ),
        case(
            "coachees",
            "coachees",
            "{ coachees(first: 25) { totalCount pageInfo { hasNextPage endCursor } \
               nodes { id role displayName email coachNotes { id body createdAt } goals { id progressPercent } \
                 sessions(first: 3) { totalCount nodes { id status } } actionItems(first: 1) { totalCount } } } }",
        ),
        case(
            "users",
            "users",
            "{ all: users(first: 25) { totalCount pageInfo { hasNextPage endCursor } nodes { id role displayName email } } \
             coaches: users(role: COACH) { totalCount nodes { id displayName } } }",
        ),
        case(
            "session",
            "session",
            &format!(
                r#"{{
                  coachee1Session1: session(id: "<session:coachee1:1>") {{ {SESSION_FIELDS} }}
                  coachee2Session2: session(id: "<session:coachee2:2>") {{ {SESSION_FIELDS} }}
                  coachee7Session2: session(id: "<session:coachee7:2>") {{ {SESSION_FIELDS} }}
                  globexCoachee1Session1: session(id: "<session:globex:coachee1:1>") {{ id status }}
                  nonexistent: session(id: "<nonexistent>") {{ id status }}
                }}"#
            ),
        ),
        case(
            "sessions",
            "sessions",
            r#"{
              all: sessions(first: 25) { totalCount pageInfo { hasNextPage endCursor }
                nodes { id status coachee { id } summary transcript privateNotes } }
              coachee1: sessions(coacheeId: "<coachee1>") { totalCount nodes { id } }
              coachee4: sessions(coacheeId: "<coachee4>") { totalCount nodes { id } }
              coachee5: sessions(coacheeId: "<coachee5>") { totalCount nodes { id } }
              coachee7: sessions(coacheeId: "<coachee7>") { totalCount nodes { id } }
              globexCoachee1: sessions(coacheeId: "<globex:coachee1>") { totalCount nodes { id } }
            }"#,
        ),
        case(
            "actionItems",
            "actionItems",
            r#"{
              all: actionItems(first: 5) { totalCount pageInfo { hasNextPage endCursor } nodes { id title dueOn completedAt } }
              coachee1: actionItems(coacheeId: "<coachee1>") { totalCount nodes { id } }
              coachee2: actionItems(coacheeId: "<coachee2>") { totalCount nodes { id } }
              coachee7: actionItems(coacheeId: "<coachee7>") { totalCount nodes { id } }
            }"#,
        ),
        case(
            "goals",
            "goals",
            r#"{
              all: goals { id title progressPercent }
              coachee1: goals(coacheeId: "<coachee1>") { id }
              coachee2: goals(coacheeId: "<coachee2>") { id }
              coachee7: goals(coacheeId: "<coachee7>") { id }
              globexCoachee2: goals(coacheeId: "<globex:coachee2>") { id }
            }"#,
        ),
        case(
            "programMetrics",
            "programMetrics",
            &format!(
                r#"{{
                  all: programMetrics {{ {METRICS} }}
                  october: programMetrics(from: "2026-10-01T00:00:00Z", to: "2026-10-31T23:59:59Z") {{ {METRICS} }}
                  november: programMetrics(from: "2026-11-01T00:00:00Z") {{ {METRICS} }}
                }}"#
            ),
        ),
        // `TenantSettings!` is non-null: one refused alias would null the others, so one case each.
        case(
            "tenantSettings",
            "tenantSettings",
            "{ tenantSettings { sessionTimeoutMinutes auditRetentionDays dataRetentionDays } }",
        ),
        case(
            "tenantSettings_acme",
            "tenantSettings",
            r#"{ tenantSettings(tenantId: "<tenant:acme>") { sessionTimeoutMinutes auditRetentionDays dataRetentionDays } }"#,
        ),
        case(
            "tenantSettings_globex",
            "tenantSettings",
            r#"{ tenantSettings(tenantId: "<tenant:globex>") { sessionTimeoutMinutes auditRetentionDays dataRetentionDays } }"#,
        ),
        case("systemConfig", "systemConfig", "{ systemConfig { entries { key value } } }"),
        case(
            "accountStatus",
            "accountStatus",
            r#"{
              coachee1: accountStatus(userId: "<coachee1>") { userId lastLoginAt failedLoginCount lockedUntil active }
              globexCoach1: accountStatus(userId: "<globex:coach1>") { userId lastLoginAt failedLoginCount lockedUntil active }
              nonexistent: accountStatus(userId: "<nonexistent>") { userId }
            }"#,
        ),
        case("myConsents", "myConsents", "{ myConsents { kind granted changedAt } }"),
        case("accessNotices", "accessNotices", "{ accessNotices { at actorRole reason } }"),
        case("integrationTokens", "integrationTokens", "{ integrationTokens { id name createdAt lastUsedAt } }"),
        case(
            "breakGlassRequests",
            "breakGlassRequests",
            "{ breakGlassRequests { id coacheeId requestedBy approvedBy reason expiresAt active } }",
        ),
    ]
}

fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The client workloads, read from the spec; a missing one fails the test.
fn workload_cases() -> Vec<Case> {
    let dir = crate_root().join("docs/spec/workloads");
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("workload directory {} is missing or unreadable: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("graphql") {
            let stem = path.file_stem().and_then(|s| s.to_str()).expect("file name").to_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read workload {}: {e}", path.display()));
            found.insert(stem, text);
        }
    }
    for name in WORKLOADS {
        assert!(
            found.contains_key(name),
            "workload {name}.graphql is missing from {} (found: {:?})",
            dir.display(),
            found.keys().collect::<Vec<_>>()
        );
    }
    found
        .into_iter()
        .map(|(stem, query)| Case {
            name: format!("workload_{stem}"),
            field: None,
            query,
            variables: json!({}),
            ai_prelude: vec![],
        })
        .collect()
}

/// The Query fields `schema.graphql` (the contract the server declares today) lists.
fn declared_query_fields() -> BTreeSet<String> {
    let path = crate_root().join("schema.graphql");
    let sdl = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let body = sdl.split("type Query {").nth(1).expect("schema.graphql declares type Query");
    let body = body.split("\n}").next().expect("end of type Query");
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('"') && !l.starts_with('#'))
        .map(|l| l.split(['(', ':']).next().expect("field name").trim().to_owned())
        .collect()
}

// ------------------------------------------------------------------ labels for ids

/// Readable, stable names for every id of the demo data and of the fixtures.
#[derive(Default)]
struct Labels {
    by_id: HashMap<Uuid, String>,
    by_label: HashMap<String, Uuid>,
}

impl Labels {
    /// Adds `<base>`, or `<base#2>`, `<base#3>` ... for rows that only their id tells apart
    /// (callers add those in id order, the order the API breaks ties in).
    fn add(&mut self, id: Uuid, base: &str) {
        let mut label = format!("<{base}>");
        let mut n = 1;
        while self.by_label.contains_key(&label) {
            n += 1;
            label = format!("<{base}#{n}>");
        }
        self.by_label.insert(label.clone(), id);
        self.by_id.insert(id, label);
    }

    /// Replaces every `<label>` of the text by its id; an unknown label fails the test.
    fn fill(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let mut start = 0;
        while let Some(open) = out[start..].find('<').map(|i| i + start) {
            let Some(close) = out[open..].find('>').map(|i| i + open) else { break };
            let label = &out[open..=close];
            if let Some(id) = self.by_label.get(label) {
                let id = id.to_string();
                out.replace_range(open..=close, &id);
                start = open + id.len();
            } else {
                panic!("no id is labelled {label} (in {text})");
            }
        }
        out
    }

    async fn load(app: &TestApp) -> Labels {
        let mut l = Labels::default();
        l.add(Uuid::parse_str(NONEXISTENT).expect("uuid"), "nonexistent");
        let tenants = tenants::Entity::find().all(&app.owner).await.expect("tenants");
        let slug: HashMap<Uuid, String> = tenants.iter().map(|t| (t.id, t.slug.clone())).collect();
        for t in &tenants {
            l.add(t.id, &format!("tenant:{}", t.slug));
        }
        let mut people = users::Entity::find().all(&app.owner).await.expect("users");
        people.sort_by(|a, b| a.email.cmp(&b.email));
        let mut who: HashMap<Uuid, String> = HashMap::new();
        for u in &people {
            let local = u.email.split('@').next().expect("local part");
            let name = match u.tenant_id.map(|t| slug[&t].as_str()) {
                None => "root".to_owned(),
                Some("acme") => local.to_owned(),
                Some(other) => format!("{other}:{local}"),
            };
            l.add(u.id, &name);
            who.insert(u.id, name);
        }

        let mut sessions = coaching_sessions::Entity::find().all(&app.owner).await.expect("sessions");
        sessions.sort_by(|a, b| {
            (&who[&a.coachee_id], a.scheduled_at, a.id).cmp(&(&who[&b.coachee_id], b.scheduled_at, b.id))
        });
        // session id -> "coachee1:2"
        let mut session_of: HashMap<Uuid, String> = HashMap::new();
        let mut count: HashMap<Uuid, usize> = HashMap::new();
        for s in &sessions {
            let n = count.entry(s.coachee_id).or_default();
            *n += 1;
            let name = format!("{}:{n}", who[&s.coachee_id]);
            l.add(s.id, &format!("session:{name}"));
            session_of.insert(s.id, name);
        }
        let mut rows = transcripts::Entity::find().all(&app.owner).await.expect("transcripts");
        rows.sort_by_key(|t| (session_of[&t.session_id].clone(), t.id));
        for t in rows {
            l.add(t.id, &format!("transcript:{}", session_of[&t.session_id]));
        }
        let mut rows = insights::Entity::find().all(&app.owner).await.expect("insights");
        rows.sort_by_key(|i| (session_of[&i.session_id].clone(), format!("{:?}", i.status), i.id));
        for i in rows {
            let status = match i.status {
                InsightStatus::Approved => "approved",
                InsightStatus::Draft => "draft",
                InsightStatus::Rejected => "rejected",
            };
            l.add(i.id, &format!("insight:{}:{status}", session_of[&i.session_id]));
        }
        let mut rows = evidence_packs::Entity::find().all(&app.owner).await.expect("packs");
        rows.sort_by_key(|p| (session_of[&p.session_id].clone(), format!("{:?}", p.level), !p.approved, p.id));
        for p in rows {
            let level = if p.level == EvidenceLevel::L0 { "L0" } else { "L1" };
            let state = if p.approved { "approved" } else { "pending" };
            l.add(p.id, &format!("pack:{}:{level}:{state}", session_of[&p.session_id]));
        }
        let mut rows = action_items::Entity::find().all(&app.owner).await.expect("items");
        rows.sort_by_key(|i| {
            (who[&i.coachee_id].clone(), i.session_id.map(|s| session_of[&s].clone()), i.title.clone(), i.id)
        });
        let mut count: HashMap<String, usize> = HashMap::new();
        for i in rows {
            let parent =
                i.session_id.map(|s| session_of[&s].clone()).unwrap_or_else(|| format!("{}:-", who[&i.coachee_id]));
            let n = count.entry(parent.clone()).or_default();
            *n += 1;
            l.add(i.id, &format!("item:{parent}:{n}"));
        }
        let mut rows = goals::Entity::find().all(&app.owner).await.expect("goals");
        rows.sort_by_key(|g| (who[&g.coachee_id].clone(), g.title.clone(), g.id));
        let mut count: HashMap<Uuid, usize> = HashMap::new();
        for g in rows {
            let n = count.entry(g.coachee_id).or_default();
            *n += 1;
            l.add(g.id, &format!("goal:{}:{n}", who[&g.coachee_id]));
        }
        let mut rows = coach_notes::Entity::find().all(&app.owner).await.expect("notes");
        rows.sort_by_key(|n| (who[&n.coach_id].clone(), who[&n.coachee_id].clone(), n.id));
        for n in rows {
            l.add(n.id, &format!("note:{}:about:{}", who[&n.coach_id], who[&n.coachee_id]));
        }
        let mut rows = consents::Entity::find().all(&app.owner).await.expect("consents");
        rows.sort_by_key(|c| (who[&c.coachee_id].clone(), format!("{:?}", c.kind), c.id));
        for c in rows {
            l.add(c.id, &format!("consent:{}:{:?}", who[&c.coachee_id], c.kind));
        }
        let mut rows = coach_assignments::Entity::find().all(&app.owner).await.expect("assignments");
        rows.sort_by_key(|a| (who[&a.coach_id].clone(), who[&a.coachee_id].clone(), a.id));
        for a in rows {
            l.add(a.id, &format!("assignment:{}:{}", who[&a.coach_id], who[&a.coachee_id]));
        }
        let mut rows = ai_feedback::Entity::find().all(&app.owner).await.expect("feedback");
        rows.sort_by_key(|f| (who[&f.coachee_id].clone(), f.id));
        for f in rows {
            l.add(f.id, &format!("feedback:{}", who[&f.coachee_id]));
        }
        let mut rows = access_notices::Entity::find().all(&app.owner).await.expect("notices");
        rows.sort_by_key(|n| (who[&n.coachee_id].clone(), n.at, n.id));
        for n in rows {
            l.add(n.id, &format!("notice:{}", who[&n.coachee_id]));
        }
        let mut rows = integration_tokens::Entity::find().all(&app.owner).await.expect("tokens");
        rows.sort_by_key(|t| (who[&t.user_id].clone(), t.name.clone(), t.id));
        for t in rows {
            l.add(t.id, &format!("token:{}:{}", who[&t.user_id], t.name));
        }
        let mut rows = break_glass_requests::Entity::find().all(&app.owner).await.expect("requests");
        rows.sort_by_key(|r| (who[&r.coachee_id].clone(), r.created_at, r.id));
        for r in rows {
            l.add(r.id, &format!("break-glass:{}", who[&r.coachee_id]));
        }
        let mut rows = break_glass_grants::Entity::find().all(&app.owner).await.expect("grants");
        rows.sort_by_key(|g| (who[&g.coachee_id].clone(), g.starts_at, g.id));
        for g in rows {
            l.add(g.id, &format!("grant:{}", who[&g.coachee_id]));
        }
        l
    }
}

// ------------------------------------------------------------------ fixtures

async fn put<E>(app: &TestApp, model: E::Model)
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    E::insert(model.into_active_model().reset_all()).exec_without_returning(&app.owner).await.expect("insert");
}

async fn user_row(app: &TestApp, email: &str) -> users::Model {
    use sea_orm::{ColumnTrait, QueryFilter};
    users::Entity::find().filter(users::Column::Email.eq(email)).one(&app.owner).await.expect("q").expect("user")
}

/// Rows the demo data lacks but some queries exist to show: another coach's note about a
/// coachee (from an ended assignment), integration tokens (one revoked), break-glass
/// requests (one expired after use, one pending, one in `globex`) and the access notices
/// break-glass reads left.
async fn insert_fixtures(app: &TestApp) {
    let t0 = t0();
    let coachee1 = user_row(app, "coachee1@acme.test").await;
    let coachee3 = user_row(app, "coachee3@acme.test").await;
    let coachee4 = user_row(app, "coachee4@acme.test").await;
    let coachee7 = user_row(app, "coachee7@acme.test").await;
    let coach1 = user_row(app, "coach1@acme.test").await;
    let coach2 = user_row(app, "coach2@acme.test").await;
    let admin1 = user_row(app, "admin1@acme.test").await;
    let admin2 = user_row(app, "admin2@acme.test").await;
    let g_coachee1 = user_row(app, "coachee1@globex.test").await;
    let g_admin1 = user_row(app, "admin1@globex.test").await;
    let coachee2 = user_row(app, "coachee2@acme.test").await;
    let acme = coachee1.tenant_id.expect("tenant");
    let globex = g_coachee1.tenant_id.expect("tenant");

    // coach2 coached coachee2 before coach1 (an ended assignment, its AI level still ACT)
    // and left a note: coach1 must not see it, coach2 no longer reaches coachee2, and the AI
    // (ANALYZE for coachee2 through coach1) must not read a note of a coach it has no
    // active relationship through.
    put::<coach_assignments::Entity>(
        app,
        coach_assignments::Model {
            id: Uuid::new_v4(),
            tenant_id: acme,
            coach_id: coach2.id,
            coachee_id: coachee2.id,
            active: false,
            ai_level: AiLevel::Act,
            created_at: t0 - Duration::days(400),
            ended_at: Some(t0 - Duration::days(130)),
        },
    )
    .await;
    put::<coach_notes::Entity>(
        app,
        coach_notes::Model {
            id: Uuid::new_v4(),
            tenant_id: acme,
            coach_id: coach2.id,
            coachee_id: coachee2.id,
            body: "Coach note by Coach2 (Acme) about Acme coachee 2, from the earlier engagement.".to_owned(),
            created_at: t0 - Duration::days(140),
            updated_at: t0 - Duration::days(140),
        },
    )
    .await;

    for (user, name, created_days, revoked) in [
        (&coachee1, "Calendar sync", 30, false),
        (&coachee1, "Old phone", 60, true),
        (&coach1, "CRM export", 20, false),
        (&coach2, "Coach2 notebook", 10, false),
    ] {
        put::<integration_tokens::Entity>(
            app,
            integration_tokens::Model {
                id: Uuid::new_v4(),
                tenant_id: acme,
                user_id: user.id,
                name: name.to_owned(),
                token_hash: format!("fixture-hash-{name}"),
                created_at: t0 - Duration::days(created_days),
                last_used_at: (!revoked).then(|| t0 - Duration::days(1)),
                revoked_at: revoked.then(|| t0 - Duration::days(40)),
            },
        )
        .await;
    }

    // Used and expired: admin1 asked, admin2 approved, 30 minutes two days ago.
    let used = Uuid::new_v4();
    let approved_at = t0 - Duration::days(2);
    put::<break_glass_requests::Entity>(
        app,
        break_glass_requests::Model {
            id: used,
            tenant_id: acme,
            coachee_id: coachee3.id,
            requested_by: admin1.id,
            reason: "Safeguarding concern reported by the coach".to_owned(),
            minutes: 30,
            created_at: approved_at - Duration::minutes(10),
            approved_by: Some(admin2.id),
            approved_at: Some(approved_at),
            revoked_at: None,
            revoked_by: None,
        },
    )
    .await;
    let grant = Uuid::new_v4();
    put::<break_glass_grants::Entity>(
        app,
        break_glass_grants::Model {
            id: grant,
            tenant_id: acme,
            request_id: used,
            coachee_id: coachee3.id,
            grantee_id: admin1.id,
            approved_by: admin2.id,
            starts_at: approved_at,
            expires_at: approved_at + Duration::minutes(30),
            revoked_at: None,
        },
    )
    .await;
    for (coachee, at, reason) in [
        (&coachee3, approved_at + Duration::minutes(5), "Break-glass: safeguarding concern reported by the coach"),
        (&coachee1, t0 - Duration::days(5), "Break-glass: billing dispute review"),
        (&coachee7, t0 - Duration::days(4), "Break-glass: complaint investigation"),
    ] {
        put::<access_notices::Entity>(
            app,
            access_notices::Model {
                id: Uuid::new_v4(),
                tenant_id: acme,
                coachee_id: coachee.id,
                actor_id: admin1.id,
                actor_role: Role::ProgramAdmin,
                reason: reason.to_owned(),
                grant_id: (coachee.id == coachee3.id).then_some(grant),
                at,
            },
        )
        .await;
    }
    // Pending (acme) and pending (globex).
    for (tenant, coachee, admin, reason, hours) in [
        (acme, &coachee4, &admin2, "Coachee asked for a review of their file", 3),
        (globex, &g_coachee1, &g_admin1, "Globex: legal hold", 4),
    ] {
        put::<break_glass_requests::Entity>(
            app,
            break_glass_requests::Model {
                id: Uuid::new_v4(),
                tenant_id: tenant,
                coachee_id: coachee.id,
                requested_by: admin.id,
                reason: reason.to_owned(),
                minutes: 45,
                created_at: t0 - Duration::hours(hours),
                approved_by: None,
                approved_at: None,
                revoked_at: None,
                revoked_by: None,
            },
        )
        .await;
    }
}

/// The demo data gives many rows the same `created_at` (every coachee's goals, the action
/// items and evidence packs of sessions on the same day), and the API breaks such ties by
/// id, which is random. Rows that share a `created_at` are spread one second apart, in a
/// fixed order (coachee number, then the seed's order), so every run lists them alike.
async fn untie_created_at(app: &TestApp) {
    use sea_orm::ActiveValue::Set;
    let number: HashMap<Uuid, String> = users::Entity::find()
        .all(&app.owner)
        .await
        .expect("users")
        .into_iter()
        .map(|u| {
            let local = u.email.split('@').next().unwrap_or_default();
            let digits: String = local.chars().filter(char::is_ascii_digit).collect();
            (u.id, format!("{:>3}:{}", digits, u.email))
        })
        .collect();
    /// (created_at, order key) -> the offset in seconds each row gets.
    fn offsets<K: Ord + Clone>(rows: &[(chrono::DateTime<chrono::Utc>, K)]) -> Vec<i64> {
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by(|a, b| (rows[*a].0, &rows[*a].1).cmp(&(rows[*b].0, &rows[*b].1)));
        let mut out = vec![0; rows.len()];
        for w in 1..order.len() {
            let (prev, cur) = (order[w - 1], order[w]);
            if rows[prev].0 == rows[cur].0 {
                out[cur] = out[prev] + 1;
            }
        }
        out
    }

    let rows = goals::Entity::find().all(&app.owner).await.expect("goals");
    let keys: Vec<_> =
        rows.iter().map(|g| (g.created_at, (number[&g.coachee_id].clone(), g.title.clone(), g.id))).collect();
    for (g, n) in rows.into_iter().zip(offsets(&keys)) {
        let created_at = g.created_at + Duration::seconds(n);
        let mut row = g.into_active_model();
        row.created_at = Set(created_at);
        row.update(&app.owner).await.expect("update goal");
    }
    let rows = action_items::Entity::find().all(&app.owner).await.expect("items");
    let keys: Vec<_> =
        rows.iter().map(|i| (i.created_at, (number[&i.coachee_id].clone(), i.title.clone(), i.id))).collect();
    for (i, n) in rows.into_iter().zip(offsets(&keys)) {
        let created_at = i.created_at + Duration::seconds(n);
        let mut row = i.into_active_model();
        row.created_at = Set(created_at);
        row.update(&app.owner).await.expect("update item");
    }
    let rows = evidence_packs::Entity::find().all(&app.owner).await.expect("packs");
    let keys: Vec<_> = rows
        .iter()
        .map(|p| (p.created_at, (number[&p.coachee_id].clone(), format!("{:?}", p.level), !p.approved, p.id)))
        .collect();
    for (p, n) in rows.into_iter().zip(offsets(&keys)) {
        let created_at = p.created_at + Duration::seconds(n);
        let mut row = p.into_active_model();
        row.created_at = Set(created_at);
        row.update(&app.owner).await.expect("update pack");
    }
}

// ------------------------------------------------------------------ the clock

/// Every request happens one second after the previous one, and case `i` starts at
/// `t0 + 10 min + i min`: timestamps in answers do not depend on how long anything took,
/// and no two audit events share a time (the platform view merges chains by time).
struct Timeline<'a> {
    app: &'a TestApp,
    elapsed: Duration,
}

impl Timeline<'_> {
    fn tick(&mut self) {
        self.app.clock.advance(Duration::seconds(1));
        self.elapsed += Duration::seconds(1);
    }

    fn start_case(&mut self, index: usize) {
        let target = Duration::minutes(10) + Duration::minutes(index as i64);
        assert!(target > self.elapsed, "case {index} starts before the previous one ended");
        self.app.clock.advance(target - self.elapsed);
        self.elapsed = target;
    }
}

// ------------------------------------------------------------------ queries: print, prune

/// Type name -> field name -> named type of the field, as one role's schema has it.
type RoleSchema = HashMap<String, HashMap<String, String>>;

const INTROSPECTION: &str =
    "{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name } } } } } } } }";

fn named_type(mut t: &Value) -> String {
    loop {
        if let Some(name) = t["name"].as_str() {
            return name.to_owned();
        }
        t = &t["ofType"];
        assert!(t.is_object(), "unnamed type in introspection");
    }
}

fn role_schema(introspection: &Value) -> RoleSchema {
    let types = introspection["data"]["__schema"]["types"].as_array().expect("introspection answers types");
    types
        .iter()
        .filter(|t| t["fields"].is_array())
        .map(|t| {
            let fields = t["fields"]
                .as_array()
                .expect("fields")
                .iter()
                .map(|f| (f["name"].as_str().expect("name").to_owned(), named_type(&f["type"])))
                .collect();
            (t["name"].as_str().expect("type name").to_owned(), fields)
        })
        .collect()
}

fn only_operation(doc: &ExecutableDocument) -> (Option<String>, &OperationDefinition) {
    match &doc.operations {
        DocumentOperations::Single(op) => (None, &op.node),
        DocumentOperations::Multiple(ops) => {
            assert_eq!(ops.len(), 1, "golden queries hold one operation");
            let (name, op) = ops.iter().next().expect("one operation");
            (Some(name.to_string()), &op.node)
        }
    }
}

fn print_set(set: &SelectionSet) -> String {
    let items: Vec<String> = set
        .items
        .iter()
        .map(|item| {
            let Selection::Field(f) = &item.node else { panic!("golden queries select fields only (no fragments)") };
            let f = &f.node;
            let mut s = String::new();
            if let Some(alias) = &f.alias {
                s.push_str(&format!("{}: ", alias.node));
            }
            s.push_str(f.name.node.as_str());
            if !f.arguments.is_empty() {
                let args: Vec<String> = f.arguments.iter().map(|(n, v)| format!("{}: {}", n.node, v.node)).collect();
                s.push_str(&format!("({})", args.join(", ")));
            }
            assert!(f.directives.is_empty(), "golden queries use no directives");
            if !f.selection_set.node.items.is_empty() {
                s.push(' ');
                s.push_str(&print_set(&f.selection_set.node));
            }
            s
        })
        .collect();
    format!("{{ {} }}", items.join(" "))
}

/// One line of GraphQL: what the snapshot shows and, with ids filled in, what is sent.
fn print_operation(name: Option<&str>, op: &OperationDefinition) -> String {
    let mut s = String::new();
    if name.is_some() || !op.variable_definitions.is_empty() {
        s.push_str(&op.ty.to_string());
        if let Some(name) = name {
            s.push(' ');
            s.push_str(name);
        }
        if !op.variable_definitions.is_empty() {
            let vars: Vec<String> = op
                .variable_definitions
                .iter()
                .map(|v| {
                    let v = &v.node;
                    let default = v.default_value.as_ref().map(|d| format!(" = {}", d.node)).unwrap_or_default();
                    format!("${}: {}{default}", v.name.node, v.var_type.node)
                })
                .collect();
            s.push_str(&format!("({})", vars.join(", ")));
        }
        s.push(' ');
    }
    s.push_str(&print_set(&op.selection_set.node));
    s
}

/// The selection without the fields `schema` lacks; objects left empty go too.
fn prune(set: &SelectionSet, ty: &str, schema: &RoleSchema) -> SelectionSet {
    let fields = schema.get(ty);
    let mut items = Vec::new();
    for item in &set.items {
        let Selection::Field(f) = &item.node else { panic!("golden queries select fields only (no fragments)") };
        let name = f.node.name.node.as_str();
        let Some(target) = fields.and_then(|m| m.get(name)) else { continue };
        let mut kept = f.clone();
        if !f.node.selection_set.node.items.is_empty() {
            kept.node.selection_set.node = prune(&f.node.selection_set.node, target, schema);
            if kept.node.selection_set.node.items.is_empty() {
                continue;
            }
        }
        items.push(Positioned::new(Selection::Field(kept), item.pos));
    }
    SelectionSet { items }
}

/// Whether `$name` occurs in the printed selection (followed by a non-name character).
fn uses_variable(printed: &str, name: &str) -> bool {
    let needle = format!("${name}");
    printed.match_indices(&needle).any(|(i, _)| {
        printed[i + needle.len()..].chars().next().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// The operation pruned to the role's schema, or `None` when nothing of it is left.
fn pruned_operation(name: Option<&str>, op: &OperationDefinition, schema: &RoleSchema) -> Option<String> {
    let mut op = op.clone();
    op.selection_set.node = prune(&op.selection_set.node, "Query", schema);
    if op.selection_set.node.items.is_empty() {
        return None;
    }
    let selection = print_set(&op.selection_set.node);
    op.variable_definitions.retain(|v| uses_variable(&selection, v.node.name.node.as_str()));
    Some(print_operation(name, &op))
}

// ------------------------------------------------------------------ redaction

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Replaces ids by their labels (unknown ones by `<uuid:N>`, numbered in order of
/// appearance within the snapshot) and cursors by `<cursor>`.
struct Redactor<'a> {
    labels: &'a Labels,
    unknown: HashMap<Uuid, String>,
}

impl Redactor<'_> {
    fn text(&mut self, s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        while i < bytes.len() {
            if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
                let id = Uuid::parse_str(&s[i..i + 36]).expect("uuid");
                let label = match self.labels.by_id.get(&id) {
                    Some(l) => l.clone(),
                    None => {
                        let n = self.unknown.len() + 1;
                        self.unknown.entry(id).or_insert_with(|| format!("<uuid:{n}>")).clone()
                    }
                };
                out.push_str(&label);
                i += 36;
            } else {
                let c = s[i..].chars().next().expect("char");
                out.push(c);
                i += c.len_utf8();
            }
        }
        out
    }

    /// A whole answer. The order of `errors` is not part of an answer (fields resolve
    /// concurrently), so they are sorted by path, then message (their `locations` are
    /// dropped); redaction runs afterwards so `<uuid:N>` numbering follows that order.
    fn answer(&mut self, v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(errors) = v.get_mut("errors").and_then(Value::as_array_mut) {
            // Where in the query text an error points depends on how the text is laid out.
            for e in errors.iter_mut() {
                if let Some(e) = e.as_object_mut() {
                    e.remove("locations");
                }
            }
            errors.sort_by_key(|e| (e["path"].to_string(), e["message"].to_string()));
        }
        self.value(&v)
    }

    fn value(&mut self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.value(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| {
                        let v = match (k.as_str(), v) {
                            ("endCursor", Value::String(_)) => Value::String("<cursor>".to_owned()),
                            _ => self.value(v),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

// ------------------------------------------------------------------ the test

struct Caller {
    key: String,
    email: &'static str,
    token: String,
    schema: RoleSchema,
}

async fn ask(app: &TestApp, clock: &mut Timeline<'_>, token: &str, query: &str, variables: &Value) -> Value {
    clock.tick();
    app.post(&Auth::Bearer(token.to_owned()), query, variables.clone()).await.body
}

async fn golden_answers(app: &TestApp) {
    insert_fixtures(app).await;
    untie_created_at(app).await;
    let labels = Labels::load(app).await;
    let mut clock = Timeline { app, elapsed: Duration::zero() };

    let mut callers = Vec::new();
    for (i, (email, role)) in ACCOUNTS.into_iter().enumerate() {
        clock.tick();
        let session = app.login(email).await;
        callers.push(Caller {
            key: format!("{}. {email} ({role})", i + 1),
            email,
            token: session.token,
            schema: HashMap::new(),
        });
    }
    for caller in &mut callers {
        let answer = ask(app, &mut clock, &caller.token, INTROSPECTION, &json!({})).await;
        caller.schema = role_schema(&answer);
    }

    let declared = declared_query_fields();
    let mut cases = contract_cases();
    let covered: BTreeSet<&str> = cases.iter().filter_map(|c| c.field).collect();
    let missing: Vec<&String> = declared.iter().filter(|f| !covered.contains(f.as_str())).collect();
    assert!(missing.is_empty(), "Query fields without a golden query (add one to contract_cases): {missing:?}");
    // Fields of the contract the server does not declare yet are skipped until it does.
    cases.retain(|c| c.field.is_none_or(|f| declared.contains(f)));
    cases.extend(workload_cases());

    let ai = callers.iter().find(|c| c.email == "ai@acme.test").expect("ai").token.clone();
    for (index, case) in cases.iter().enumerate() {
        clock.start_case(index);
        for prelude in &case.ai_prelude {
            let answer = ask(app, &mut clock, &ai, &labels.fill(prelude), &json!({})).await;
            assert!(answer["errors"].is_null(), "{}: AI prelude {prelude} failed: {answer}", case.name);
        }
        let doc: ExecutableDocument =
            parse_query(&case.query).unwrap_or_else(|e| panic!("{}: query does not parse: {e}", case.name));
        let (op_name, op) = only_operation(&doc);
        let printed = print_operation(op_name.as_deref(), op);
        let mut redactor = Redactor { labels: &labels, unknown: HashMap::new() };
        let mut answers = Map::new();
        for caller in &callers {
            let response = ask(app, &mut clock, &caller.token, &labels.fill(&case.query), &case.variables).await;
            let mut entry = Map::new();
            entry.insert("response".to_owned(), redactor.answer(&response));
            if let Some(pruned) = pruned_operation(op_name.as_deref(), op, &caller.schema)
                && pruned != printed
            {
                let response = ask(app, &mut clock, &caller.token, &labels.fill(&pruned), &case.variables).await;
                entry.insert(
                    "withFieldsOfTheRoleSchema".to_owned(),
                    json!({ "query": pruned, "response": redactor.answer(&response) }),
                );
            }
            answers.insert(caller.key.clone(), Value::Object(entry));
        }
        let mut info = json!({ "query": printed });
        if case.variables.as_object().is_some_and(|v| !v.is_empty()) {
            info["variables"] = case.variables.clone();
        }
        if !case.ai_prelude.is_empty() {
            info["aiPrelude"] = json!(case.ai_prelude);
        }
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/suite/snapshots"));
        settings.set_omit_expression(true);
        settings.set_info(&info);
        settings.set_description(format!("{} as each demo role; see golden_answers.rs", case.name));
        let snapshot = Value::Object(answers);
        settings.bind(|| insta::assert_json_snapshot!(case.name.clone(), snapshot));
    }
}
both_backends!(golden_answers, golden_answers);
