//! Property test: random relationship states x random principals x random contract queries,
//! each answer checked against an oracle written here, from `matrix.csv`, `contract.graphql`
//! and POLICY.md alone (nothing of `coachgraph::authz` or `coachgraph::domain` is used).
//!
//! One app per backend serves every case; a few coachees get a second (ended) coach with a
//! note of its own. Every `MUTATE_EVERY` queries the relationship state is changed at random
//! through the owner connection (consents granted or withdrawn, per-assignment AI levels,
//! assignments ended or resumed, L1 evidence packs approved or not)
//! and read back with raw SQL: that is the ground truth the oracle works from. Then a random
//! principal (any demo account of either tenant) sends a random query built from the
//! contract, and the oracle checks the answer:
//! - a field outside the role's schema: no data, and exactly the `Unknown field` errors;
//! - otherwise every value returned is one the oracle allows, and every value it allows is
//!   there (ids of sessions, goals, notes, evidence packs, insights, action items; summaries,
//!   transcripts, private notes, profile fields);
//! - a refused row field is `null` with an error at its path whose `extensions.code` is
//!   `FORBIDDEN` or `CONSENT_REQUIRED` (POLICY.md section 8); no other error appears.
//!
//! `COACHGRAPH_PROPTEST_CASES` sets the number of queries per backend (default 2000);
//! `COACHGRAPH_PROPTEST_SEED` a seed (a number, or `random`; default fixed). A failure
//! report names the seed, the case number, the principal, the query and the answer.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use coachgraph::clock::Clock;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::common::*;

const DEFAULT_CASES: usize = 2000;
const DEFAULT_SEED: u64 = 0x00c0_ac4d_2026_1102;
/// Queries between two rounds of random mutations.
const MUTATE_EVERY: usize = 20;
/// Stop collecting after this many failures (each is reported in full).
const MAX_FAILURES: usize = 8;

// ====================================================================== the policy model

const ROLES: [&str; 6] = ["COACHEE", "COACH", "PROGRAM_ADMIN", "EXECUTIVE", "AI_AGENT", "SYSTEM_ADMIN"];

/// POLICY.md section 3, the clearance table: `Some(true)` consent-gated, `Some(false)` plain
/// yes, `None` no.
fn clearance(role: &str, tag: &str) -> Option<bool> {
    let yes = Some(false);
    match (role, tag) {
        ("COACHEE", "CLIENT_VISIBLE") => yes,
        ("COACH", "CLIENT_VISIBLE" | "COACH_ONLY") => yes,
        ("PROGRAM_ADMIN" | "EXECUTIVE", "CLIENT_VISIBLE" | "ADMIN_AGGREGATE") => yes,
        ("AI_AGENT", "CLIENT_VISIBLE" | "COACH_ONLY") => Some(true),
        ("SYSTEM_ADMIN", "ADMIN_AGGREGATE" | "SYSTEM_INTERNAL") => yes,
        _ => None,
    }
}

/// The matrix row a (type, field) belongs to (POLICY.md section 3 and the matrix rows).
/// `None` for the profile fields of `User`, which follow own / other profile rules.
fn resource_of(ty: &str, field: &str) -> Option<&'static str> {
    Some(match (ty, field) {
        ("User", "id" | "role" | "displayName" | "email") => return None,
        ("User", "coachNotes") => "coach_notes",
        ("User", "sessions") => "session_metadata",
        ("User", "goals") => "goals",
        ("User", "actionItems") => "action_items",
        ("CoachingSession", "summary" | "approvedInsights") => "approved_insights",
        ("CoachingSession", "evidencePacks") => "evidence_packs",
        ("CoachingSession", "actionItems") => "action_items",
        ("CoachingSession", "draftInsights") => "draft_insights",
        ("CoachingSession", "privateNotes") => "coach_notes",
        ("CoachingSession", "transcript") => "transcripts",
        ("CoachingSession", _) => "session_metadata",
        ("Insight", _) => "approved_insights",
        ("EvidencePack", _) => "evidence_packs",
        ("ActionItem", _) => "action_items",
        ("Goal", _) => "goals",
        ("CoachNote", _) => "coach_notes",
        _ => panic!("no resource known for {ty}.{field}"),
    })
}

/// POLICY.md section 4: which profile fields of other users a role's grant shows.
fn other_profile_fields(role: &str) -> &'static [&'static str] {
    match role {
        "COACHEE" => &["id", "displayName"],
        "EXECUTIVE" => &["id", "role", "displayName"],
        _ => &["id", "role", "displayName", "email"],
    }
}

/// The types the generated queries reach (the oracle's schema covers these only).
const MODELLED: [&str; 12] = [
    "Query",
    "User",
    "CoachingSession",
    "Insight",
    "EvidencePack",
    "ActionItem",
    "Goal",
    "CoachNote",
    "UserConnection",
    "CoachingSessionConnection",
    "ActionItemConnection",
    "PageInfo",
];

#[derive(Debug, Clone)]
struct FieldDef {
    /// The named type (no list or non-null markers).
    ty: String,
    tag: Option<String>,
}

/// What the oracle reads from the spec files.
struct Spec {
    /// (resource, role) -> cell of matrix.csv.
    matrix: HashMap<(String, String), String>,
    /// type -> field -> definition, from contract.graphql.
    types: HashMap<String, BTreeMap<String, FieldDef>>,
    /// role -> the (type, field) pairs in its schema.
    schema: HashMap<&'static str, HashSet<(String, String)>>,
}

fn spec_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/spec").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse_matrix(csv: &str) -> HashMap<(String, String), String> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines.next().expect("matrix header").split(',').map(str::to_owned).collect();
    let mut out = HashMap::new();
    for line in lines {
        // Cells hold no commas except inside parentheses ("R(tenant;k>=5)" uses ';').
        let mut cells = Vec::new();
        let (mut depth, mut cur) = (0, String::new());
        for c in line.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if c == ',' && depth == 0 {
                cells.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
        }
        cells.push(cur);
        assert_eq!(cells.len(), header.len(), "matrix row {line}");
        for (role, cell) in header.iter().zip(&cells).skip(1) {
            out.insert((cells[0].clone(), role.to_uppercase()), cell.clone());
        }
    }
    out
}

fn parse_contract(sdl: &str) -> HashMap<String, BTreeMap<String, FieldDef>> {
    let mut types: HashMap<String, BTreeMap<String, FieldDef>> = HashMap::new();
    let mut current: Option<String> = None;
    for raw in sdl.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if let Some(rest) = line.strip_prefix("type ") {
            let name = rest.split(|c: char| c == '{' || c.is_whitespace()).next().expect("type name").to_owned();
            // One-line types: `type PageInfo { hasNextPage: Boolean! endCursor: String }`.
            if let (Some(open), Some(close)) = (line.find('{'), line.rfind('}')) {
                let body = &line[open + 1..close];
                let words: Vec<&str> = body.split_whitespace().collect();
                let mut fields = BTreeMap::new();
                for pair in words.chunks(2) {
                    let name = pair[0].trim_end_matches(':').to_owned();
                    let ty = pair[1].trim_matches(|c| c == '[' || c == ']' || c == '!').to_owned();
                    fields.insert(name, FieldDef { ty, tag: None });
                }
                types.insert(name, fields);
                continue;
            }
            current = Some(name);
            continue;
        }
        if line.starts_with('}') {
            current = None;
            continue;
        }
        let Some(ty) = &current else { continue };
        if line.is_empty() || line.starts_with('"') {
            continue;
        }
        let name: String = line.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let after_args = match (line.find('('), line.find(':')) {
            (Some(p), Some(c)) if p < c => &line[line.find(')').expect("closing paren") + 1..],
            _ => &line[name.len()..],
        };
        let ty_str = after_args.trim_start_matches(|c: char| c == ':' || c.is_whitespace());
        let named = ty_str
            .split(|c: char| c.is_whitespace() || c == '@')
            .next()
            .expect("field type")
            .trim_matches(|c| c == '[' || c == ']' || c == '!')
            .to_owned();
        let tag = line.split("@visibility(tag: ").nth(1).map(|t| t.trim_end_matches(')').trim().to_owned());
        types.entry(ty.clone()).or_default().insert(name, FieldDef { ty: named, tag });
    }
    types
}

impl Spec {
    fn load() -> Spec {
        let mut spec = Spec {
            matrix: parse_matrix(&spec_file("matrix.csv")),
            types: parse_contract(&spec_file("contract.graphql")),
            schema: HashMap::new(),
        };
        for role in ROLES {
            let fields = spec.compute_schema(role);
            spec.schema.insert(role, fields);
        }
        spec
    }

    /// The matrix letters before any scope: "R(own)+complete" -> "R".
    fn letters(&self, role: &str, resource: &str) -> String {
        let cell = self.matrix.get(&(resource.to_owned(), role.to_owned())).unwrap_or_else(|| {
            panic!("matrix.csv has no cell for {resource} / {role}");
        });
        cell.split('(').next().unwrap_or("").to_owned()
    }

    fn reads(&self, role: &str, resource: &str) -> bool {
        self.letters(role, resource).contains('R')
    }

    /// Root fields of the queries generated here, by the contract's descriptions and the matrix.
    fn root_admits(&self, role: &str, field: &str) -> bool {
        match field {
            "coachees" => matches!(role, "COACH" | "PROGRAM_ADMIN"),
            "users" => matches!(role, "PROGRAM_ADMIN" | "EXECUTIVE"),
            "me" => self.reads(role, "own_profile"),
            "user" => self.reads(role, "other_user_profiles"),
            "session" | "sessions" => self.reads(role, "session_metadata"),
            "goals" => self.reads(role, "goals"),
            "actionItems" => self.reads(role, "action_items"),
            _ => false,
        }
    }

    /// A field the tag and the matrix let the role read (before empty types are pruned).
    fn admits(&self, role: &str, ty: &str, field: &str, def: &FieldDef) -> bool {
        if ty == "Query" {
            return self.root_admits(role, field);
        }
        let Some(tag) = &def.tag else { return true };
        if clearance(role, tag).is_none() {
            return false;
        }
        match resource_of(ty, field) {
            Some(resource) => self.reads(role, resource),
            None => {
                self.reads(role, "own_profile")
                    || (self.reads(role, "other_user_profiles") && other_profile_fields(role).contains(&field))
            }
        }
    }

    /// The role's schema: admitted fields, minus those whose object type ends up empty (a
    /// connection whose nodes are gone is gone too).
    fn compute_schema(&self, role: &str) -> HashSet<(String, String)> {
        let mut present: HashSet<(String, String)> = HashSet::new();
        for (ty, fields) in self.types.iter().filter(|(t, _)| MODELLED.contains(&t.as_str())) {
            for (name, def) in fields {
                if self.admits(role, ty, name, def) {
                    present.insert((ty.clone(), name.clone()));
                }
            }
        }
        loop {
            let nonempty: HashSet<&str> = present
                .iter()
                .map(|(t, _)| t.as_str())
                .filter(|t| !t.ends_with("Connection") || present.contains(&(t.to_string(), "nodes".to_owned())))
                .collect();
            let keep: HashSet<(String, String)> = present
                .iter()
                .filter(|(t, f)| {
                    let target = &self.types[t][f].ty;
                    !self.types.contains_key(target) || nonempty.contains(target.as_str())
                })
                .cloned()
                .collect();
            if keep.len() == present.len() {
                return keep;
            }
            present = keep;
        }
    }

    fn has(&self, role: &str, ty: &str, field: &str) -> bool {
        self.schema[role].contains(&(ty.to_owned(), field.to_owned()))
    }

    fn field_type(&self, ty: &str, field: &str) -> Option<&str> {
        self.types.get(ty).and_then(|f| f.get(field)).map(|d| d.ty.as_str())
    }
}

// ====================================================================== ground truth

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Off,
    Observe,
    Analyze,
    Act,
}

const LEVELS: [&str; 4] = ["OFF", "OBSERVE", "ANALYZE", "ACT"];
const KINDS: [&str; 4] = ["SASHA_OBSERVE", "SASHA_ANALYZE", "SASHA_ACT", "TRANSCRIPT_SHARING"];

fn level(s: &str) -> Level {
    match s {
        "OFF" => Level::Off,
        "OBSERVE" => Level::Observe,
        "ANALYZE" => Level::Analyze,
        "ACT" => Level::Act,
        other => panic!("unknown AI level {other}"),
    }
}

#[derive(Debug, Clone)]
struct UserRow {
    id: Uuid,
    tenant: Option<Uuid>,
    email: String,
    display_name: String,
    role: String,
}

#[derive(Debug, Clone)]
struct AssignmentRow {
    id: Uuid,
    coach: Uuid,
    coachee: Uuid,
    active: bool,
    ai_level: Level,
}

#[derive(Debug, Clone)]
struct SessionRow {
    id: Uuid,
    tenant: Uuid,
    coach: Uuid,
    coachee: Uuid,
    status: String,
    summary: Option<String>,
    private_notes: Option<String>,
}

#[derive(Debug, Clone)]
struct PackRow {
    id: Uuid,
    session: Uuid,
    l1: bool,
    approved: bool,
    content: String,
}

/// A row of a list the mutations leave alone: insights (owner = session, text = status),
/// action items (owner = coachee, parent = session), goals (owner = coachee, text = title),
/// coach notes (owner = coachee, parent = coach, text = body).
#[derive(Debug, Clone)]
struct Row {
    id: Uuid,
    owner: Uuid,
    parent: Option<Uuid>,
    text: String,
}

/// The database as the owner sees it.
#[derive(Default)]
struct World {
    users: Vec<UserRow>,
    user_at: HashMap<Uuid, usize>,
    assignments: Vec<AssignmentRow>,
    /// (coachee, kind) -> (row id, granted).
    consents: HashMap<(Uuid, String), (Uuid, bool)>,
    sessions: Vec<SessionRow>,
    session_at: HashMap<Uuid, usize>,
    transcripts: HashMap<Uuid, String>,
    /// Insights: owner = session, text = status.
    insights: Vec<Row>,
    packs: Vec<PackRow>,
    /// Action items: owner = coachee, parent = session.
    items: Vec<Row>,
    /// Goals: owner = coachee, text = title.
    goals: Vec<Row>,
    /// Coach notes: owner = coachee, parent = coach, text = body.
    notes: Vec<Row>,
}

fn sql_for(backend: DbBackend, sql: &str) -> String {
    // Written with `$n`; SQLite takes `?n`.
    if backend == DbBackend::Postgres { sql.to_owned() } else { sql.replace('$', "?") }
}

async fn select(app: &TestApp, sql: &str) -> Vec<QueryResult> {
    select_with(app, sql, vec![]).await
}

async fn select_with(app: &TestApp, sql: &str, values: Vec<sea_orm::Value>) -> Vec<QueryResult> {
    let backend = app.owner.get_database_backend();
    app.owner
        .query_all_raw(Statement::from_sql_and_values(backend, sql_for(backend, sql), values))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn execute(app: &TestApp, sql: &str, values: Vec<sea_orm::Value>) {
    let backend = app.owner.get_database_backend();
    app.owner
        .execute_raw(Statement::from_sql_and_values(backend, sql_for(backend, sql), values))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, col: &str) -> T {
    row.try_get::<T>("", col).unwrap_or_else(|e| panic!("column {col}: {e}"))
}

impl World {
    async fn load(app: &TestApp) -> World {
        let mut w = World::default();
        for r in select(app, "SELECT id, tenant_id, email, display_name, role FROM users ORDER BY email").await {
            w.users.push(UserRow {
                id: get(&r, "id"),
                tenant: get(&r, "tenant_id"),
                email: get(&r, "email"),
                display_name: get(&r, "display_name"),
                role: get(&r, "role"),
            });
        }
        w.user_at = w.users.iter().enumerate().map(|(i, u)| (u.id, i)).collect();
        let mut sessions = Vec::new();
        for r in select(
            app,
            "SELECT s.id, s.tenant_id, s.coach_id, s.coachee_id, s.status, s.scheduled_at, \
             (SELECT x.body FROM session_summaries x WHERE x.session_id = s.id) AS summary, \
             (SELECT x.body FROM session_private_notes x WHERE x.session_id = s.id) AS private_notes \
             FROM coaching_sessions s",
        )
        .await
        {
            let at: DateTime<Utc> = get(&r, "scheduled_at");
            sessions.push((
                at,
                SessionRow {
                    id: get(&r, "id"),
                    tenant: get(&r, "tenant_id"),
                    coach: get(&r, "coach_id"),
                    coachee: get(&r, "coachee_id"),
                    status: get(&r, "status"),
                    summary: get(&r, "summary"),
                    private_notes: get(&r, "private_notes"),
                },
            ));
        }
        // Ids are random: every list is kept in an order of natural keys, so that a seed
        // replays the same choices on any run and either backend.
        sessions.sort_by_key(|(at, s)| (w.users[w.user_at[&s.coachee]].email.clone(), *at));
        w.sessions = sessions.into_iter().map(|(_, s)| s).collect();
        w.session_at = w.sessions.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        for r in select(app, "SELECT session_id, body FROM transcripts").await {
            w.transcripts.insert(get(&r, "session_id"), get(&r, "body"));
        }
        for r in select(app, "SELECT id, session_id, status FROM insights").await {
            w.insights.push(Row {
                id: get(&r, "id"),
                owner: get(&r, "session_id"),
                parent: None,
                text: get(&r, "status"),
            });
        }
        for r in select(app, "SELECT id, coachee_id, session_id, title FROM action_items").await {
            w.items.push(Row {
                id: get(&r, "id"),
                owner: get(&r, "coachee_id"),
                parent: get(&r, "session_id"),
                text: get(&r, "title"),
            });
        }
        for r in select(app, "SELECT id, coachee_id, title FROM goals").await {
            w.goals.push(Row { id: get(&r, "id"), owner: get(&r, "coachee_id"), parent: None, text: get(&r, "title") });
        }
        for r in select(app, "SELECT id, coach_id, coachee_id, body FROM coach_notes").await {
            w.notes.push(Row {
                id: get(&r, "id"),
                owner: get(&r, "coachee_id"),
                parent: Some(get(&r, "coach_id")),
                text: get(&r, "body"),
            });
        }
        w.refresh(app).await;
        w
    }

    /// Re-reads what the mutations change.
    async fn refresh(&mut self, app: &TestApp) {
        self.assignments = select(app, "SELECT id, coach_id, coachee_id, active, ai_level FROM coach_assignments")
            .await
            .iter()
            .map(|r| AssignmentRow {
                id: get(r, "id"),
                coach: get(r, "coach_id"),
                coachee: get(r, "coachee_id"),
                active: get(r, "active"),
                ai_level: level(&get::<String>(r, "ai_level")),
            })
            .collect();
        let email = |id: &Uuid| self.users[self.user_at[id]].email.clone();
        self.assignments.sort_by_key(|a| (email(&a.coachee), email(&a.coach)));
        self.consents = select(app, "SELECT id, coachee_id, kind, granted FROM consents")
            .await
            .iter()
            .map(|r| ((get(r, "coachee_id"), get(r, "kind")), (get(r, "id"), get(r, "granted"))))
            .collect();
        self.packs = select(app, "SELECT id, session_id, level, approved, content FROM evidence_packs")
            .await
            .iter()
            .map(|r| PackRow {
                id: get(r, "id"),
                session: get(r, "session_id"),
                l1: get::<String>(r, "level") == "L1",
                approved: get(r, "approved"),
                content: get(r, "content"),
            })
            .collect();
        // (Two packs of a session can be alike but for their id: either is the same choice.)
        let at = |id: &Uuid| self.session_at[id];
        self.packs
            .sort_by(|a, b| (at(&a.session), a.l1, &a.content, a.id).cmp(&(at(&b.session), b.l1, &b.content, b.id)));
    }

    fn user(&self, id: Uuid) -> Option<&UserRow> {
        self.user_at.get(&id).map(|i| &self.users[*i])
    }

    fn granted(&self, coachee: Uuid, kind: &str) -> bool {
        self.consents.get(&(coachee, kind.to_owned())).is_some_and(|(_, g)| *g)
    }

    fn coachees(&self) -> Vec<Uuid> {
        self.users.iter().filter(|u| u.role == "COACHEE").map(|u| u.id).collect()
    }
}

// ====================================================================== the oracle

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Forbidden,
    Consent,
    /// Either code is a fair description (the AI limited by the coach's own AI setting).
    Either,
}

impl Refusal {
    fn codes(self) -> &'static [&'static str] {
        match self {
            Refusal::Forbidden => &["FORBIDDEN"],
            Refusal::Consent => &["CONSENT_REQUIRED"],
            Refusal::Either => &["FORBIDDEN", "CONSENT_REQUIRED"],
        }
    }
}

type Access = Result<(), Refusal>;

#[derive(Debug, Clone)]
struct Principal {
    id: Uuid,
    tenant: Option<Uuid>,
    role: &'static str,
    email: String,
    token: String,
}

#[derive(Clone, Copy)]
struct Oracle<'a> {
    w: &'a World,
    p: &'a Principal,
}

impl Oracle<'_> {
    fn same_tenant(&self, user: Uuid) -> bool {
        self.p.tenant.is_some() && self.w.user(user).is_some_and(|u| u.tenant == self.p.tenant)
    }

    fn active_coach_of(&self, coach: Uuid, coachee: Uuid) -> bool {
        self.w.assignments.iter().any(|a| a.active && a.coach == coach && a.coachee == coachee)
    }

    /// POLICY.md section 5: the level the coachee's consents grant (each kind unlocks the
    /// ones below it).
    fn consented(&self, coachee: Uuid) -> Level {
        if self.w.granted(coachee, "SASHA_ACT") {
            Level::Act
        } else if self.w.granted(coachee, "SASHA_ANALYZE") {
            Level::Analyze
        } else if self.w.granted(coachee, "SASHA_OBSERVE") {
            Level::Observe
        } else {
            Level::Off
        }
    }

    /// The coaches' own levels for this coachee (active assignments); `None` without one.
    fn coach_level(&self, coachee: Uuid) -> Option<Level> {
        self.w.assignments.iter().filter(|a| a.active && a.coachee == coachee).map(|a| a.ai_level).min()
    }

    fn ai_access(&self, coachee: Uuid, needed: Level) -> Access {
        let Some(coach) = self.coach_level(coachee) else { return Err(Refusal::Forbidden) };
        let consented = self.consented(coachee);
        if consented.min(coach) >= needed {
            Ok(())
        } else if consented < needed {
            Err(Refusal::Consent)
        } else {
            Err(Refusal::Either)
        }
    }

    /// May the principal read `resource` about `coachee` (a user of its tenant)?
    fn access(&self, coachee: Uuid, resource: &str) -> Access {
        if !self.same_tenant(coachee) || self.w.user(coachee).is_none_or(|u| u.role != "COACHEE") {
            return Err(Refusal::Forbidden);
        }
        let p = self.p;
        match p.role {
            "COACHEE" => match resource {
                "session_metadata" | "approved_insights" | "evidence_packs" | "action_items" | "goals"
                    if coachee == p.id =>
                {
                    Ok(())
                }
                _ => Err(Refusal::Forbidden),
            },
            "COACH" => {
                if !self.active_coach_of(p.id, coachee) {
                    return Err(Refusal::Forbidden);
                }
                match resource {
                    "transcripts" if !self.w.granted(coachee, "TRANSCRIPT_SHARING") => Err(Refusal::Consent),
                    _ => Ok(()),
                }
            }
            "PROGRAM_ADMIN" if resource == "session_metadata" => Ok(()),
            "AI_AGENT" => {
                let needed = match resource {
                    "session_metadata" | "transcripts" | "other_user_profiles" => Level::Observe,
                    "approved_insights" | "goals" | "action_items" | "ai_feedback" | "coach_notes" => Level::Analyze,
                    // Evidence packs and drafts: create-only for the AI.
                    _ => return Err(Refusal::Forbidden),
                };
                self.ai_access(coachee, needed)
            }
            _ => Err(Refusal::Forbidden),
        }
    }

    /// A coach note (or a session's private notes) written by `coach` about `coachee`.
    fn note_access(&self, coach: Uuid, coachee: Uuid) -> Access {
        match self.p.role {
            "COACH" if coach == self.p.id => self.access(coachee, "coach_notes"),
            "AI_AGENT" => {
                self.access(coachee, "coach_notes")?;
                // ...and only if that coach's own AI setting is ANALYZE or higher.
                let own = self.w.assignments.iter().filter(|a| a.active && a.coach == coach && a.coachee == coachee);
                if own.clone().any(|a| a.ai_level >= Level::Analyze) { Ok(()) } else { Err(Refusal::Either) }
            }
            _ => Err(Refusal::Forbidden),
        }
    }

    /// `user(id)`: which profile fields the principal reads of `user`, or why not.
    fn profile(&self, user: Uuid) -> Result<&'static [&'static str], Refusal> {
        const ALL: &[&str] = &["id", "role", "displayName", "email"];
        let p = self.p;
        if user == p.id && matches!(p.role, "COACHEE" | "COACH" | "PROGRAM_ADMIN" | "AI_AGENT") {
            return Ok(ALL);
        }
        match p.role {
            "COACHEE" if self.active_coach_of(user, p.id) => Ok(other_profile_fields("COACHEE")),
            "COACH" if self.active_coach_of(p.id, user) => Ok(ALL),
            "PROGRAM_ADMIN" => Ok(ALL),
            "EXECUTIVE" => Ok(other_profile_fields("EXECUTIVE")),
            "AI_AGENT" => self.access(user, "other_user_profiles").map(|()| ALL),
            _ => Err(Refusal::Forbidden),
        }
    }

    /// The sessions the principal lists (its tenant, readable metadata), optionally of one coachee.
    fn visible_sessions(&self, coachee: Option<Uuid>) -> BTreeSet<Uuid> {
        self.w
            .sessions
            .iter()
            .filter(|s| Some(s.tenant) == self.p.tenant)
            .filter(|s| coachee.is_none_or(|c| c == s.coachee))
            .filter(|s| self.access(s.coachee, "session_metadata").is_ok())
            .map(|s| s.id)
            .collect()
    }

    fn in_tenant(&self, coachee: Uuid, coachee_filter: Option<Uuid>) -> bool {
        self.same_tenant(coachee) && coachee_filter.is_none_or(|c| c == coachee)
    }
}

// ====================================================================== queries

#[derive(Debug, Clone, Default)]
struct SessionSel {
    status: bool,
    coachee: bool,
    summary: bool,
    transcript: bool,
    private_notes: bool,
    packs: bool,
    drafts: bool,
    approved: bool,
    items: bool,
}

#[derive(Debug, Clone, Default)]
struct UserSel {
    email: bool,
    display_name: bool,
    role: bool,
    notes: bool,
    goals: bool,
    sessions: Option<SessionSel>,
}

#[derive(Debug, Clone)]
enum Query {
    Coachees(UserSel),
    Sessions { coachee: Option<Uuid>, first: Option<u64>, sel: SessionSel },
    Session { id: Uuid, sel: SessionSel },
    Goals { coachee: Option<Uuid> },
    User { id: Uuid, sel: UserSel },
    ActionItems { coachee: Option<Uuid>, first: Option<u64> },
    Me(UserSel),
}

/// A selection tree: what is sent, and what the schema check walks.
struct Node {
    name: &'static str,
    args: String,
    children: Vec<Node>,
}

fn leaf(name: &'static str) -> Node {
    Node { name, args: String::new(), children: vec![] }
}

fn node(name: &'static str, children: Vec<Node>) -> Node {
    Node { name, args: String::new(), children }
}

fn connection(name: &'static str, args: String, nodes: Vec<Node>) -> Node {
    Node { name, args, children: vec![leaf("totalCount"), node("nodes", nodes)] }
}

fn args(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}"))).collect();
    if set.is_empty() { String::new() } else { format!("({})", set.join(", ")) }
}

fn quoted(id: Uuid) -> String {
    format!("\"{id}\"")
}

impl SessionSel {
    fn from_bits(bits: u32) -> Self {
        let b = |i: u32| bits & (1 << i) != 0;
        SessionSel {
            status: b(0),
            coachee: b(1),
            summary: b(2),
            transcript: b(3),
            private_notes: b(4),
            packs: b(5),
            drafts: b(6),
            approved: b(7),
            items: b(8),
        }
    }

    fn prune(&mut self, spec: &Spec, role: &str) {
        let has = |f: &str| spec.has(role, "CoachingSession", f);
        self.status &= has("status");
        self.coachee &= has("coachee");
        self.summary &= has("summary");
        self.transcript &= has("transcript");
        self.private_notes &= has("privateNotes");
        self.packs &= has("evidencePacks");
        self.drafts &= has("draftInsights");
        self.approved &= has("approvedInsights");
        self.items &= has("actionItems");
    }

    fn nodes(&self) -> Vec<Node> {
        let mut out = vec![leaf("id")];
        let flags: [(bool, fn() -> Node); 9] = [
            (self.status, || leaf("status")),
            (self.coachee, || node("coachee", vec![leaf("id")])),
            (self.summary, || leaf("summary")),
            (self.transcript, || leaf("transcript")),
            (self.private_notes, || leaf("privateNotes")),
            (self.packs, || node("evidencePacks", vec![leaf("id"), leaf("level"), leaf("approved")])),
            (self.drafts, || node("draftInsights", vec![leaf("id")])),
            (self.approved, || node("approvedInsights", vec![leaf("id")])),
            (self.items, || node("actionItems", vec![leaf("id")])),
        ];
        out.extend(flags.into_iter().filter(|(on, _)| *on).map(|(_, make)| make()));
        out
    }
}

impl UserSel {
    fn from_bits(bits: u32) -> Self {
        let b = |i: u32| bits & (1 << i) != 0;
        UserSel {
            email: b(9),
            display_name: b(10),
            role: b(11),
            notes: b(12),
            goals: b(13),
            sessions: b(14).then(|| SessionSel::from_bits(bits)),
        }
    }

    fn prune(&mut self, spec: &Spec, role: &str) {
        let has = |f: &str| spec.has(role, "User", f);
        self.email &= has("email");
        self.display_name &= has("displayName");
        self.role &= has("role");
        self.notes &= has("coachNotes");
        self.goals &= has("goals");
        if !has("sessions") {
            self.sessions = None;
        }
        if let Some(s) = &mut self.sessions {
            s.prune(spec, role);
        }
    }

    fn nodes(&self) -> Vec<Node> {
        let mut out = vec![leaf("id")];
        if self.email {
            out.push(leaf("email"));
        }
        if self.display_name {
            out.push(leaf("displayName"));
        }
        if self.role {
            out.push(leaf("role"));
        }
        if self.notes {
            out.push(node("coachNotes", vec![leaf("id"), leaf("body")]));
        }
        if self.goals {
            out.push(node("goals", vec![leaf("id")]));
        }
        if let Some(s) = &self.sessions {
            out.push(connection("sessions", String::new(), s.nodes()));
        }
        out
    }
}

impl Query {
    fn prune(&mut self, spec: &Spec, role: &str) {
        match self {
            Query::Coachees(u) | Query::User { sel: u, .. } | Query::Me(u) => u.prune(spec, role),
            Query::Sessions { sel, .. } | Query::Session { sel, .. } => sel.prune(spec, role),
            Query::Goals { .. } | Query::ActionItems { .. } => {}
        }
    }

    fn tree(&self) -> Node {
        match self {
            Query::Coachees(u) => connection("coachees", String::new(), u.nodes()),
            Query::Sessions { coachee, first, sel } => connection(
                "sessions",
                args(&[("coacheeId", coachee.map(quoted)), ("first", first.map(|f| f.to_string()))]),
                sel.nodes(),
            ),
            Query::Session { id, sel } => {
                Node { name: "session", args: args(&[("id", Some(quoted(*id)))]), children: sel.nodes() }
            }
            Query::Goals { coachee } => Node {
                name: "goals",
                args: args(&[("coacheeId", coachee.map(quoted))]),
                children: vec![leaf("id"), leaf("title")],
            },
            Query::User { id, sel } => {
                Node { name: "user", args: args(&[("id", Some(quoted(*id)))]), children: sel.nodes() }
            }
            Query::ActionItems { coachee, first } => connection(
                "actionItems",
                args(&[("coacheeId", coachee.map(quoted)), ("first", first.map(|f| f.to_string()))]),
                vec![leaf("id")],
            ),
            Query::Me(sel) => node("me", sel.nodes()),
        }
    }
}

fn render(n: &Node) -> String {
    let mut s = format!("{}{}", n.name, n.args);
    if !n.children.is_empty() {
        let inner: Vec<String> = n.children.iter().map(render).collect();
        s.push_str(&format!(" {{ {} }}", inner.join(" ")));
    }
    s
}

/// The `Unknown field` messages the role's schema gives for the tree (a field's own
/// selection is not looked at once the field is unknown).
fn unknown_fields(spec: &Spec, role: &str, ty: &str, n: &Node, out: &mut BTreeSet<String>) {
    if !spec.has(role, ty, n.name) {
        out.insert(format!("Unknown field \"{}\" on type \"{ty}\".", n.name));
        return;
    }
    let child_ty = spec.field_type(ty, n.name).expect("field in contract").to_owned();
    for c in &n.children {
        unknown_fields(spec, role, &child_ty, c, out);
    }
}

// ====================================================================== generation

/// One query, as raw random numbers decoded against the current world.
#[derive(Debug, Clone)]
struct RawQuery {
    principal: u16,
    principal_role: u8,
    kind: u8,
    bits: u32,
    target_kind: u8,
    target: u16,
    first: u8,
    conform: bool,
    random_id: u128,
}

fn raw_query() -> impl Strategy<Value = RawQuery> {
    (any::<(u16, u8, u8, u32)>(), any::<(u8, u16, u8, bool, u128)>()).prop_map(
        |((principal, principal_role, kind, bits), (target_kind, target, first, conform, random_id))| RawQuery {
            principal,
            principal_role,
            kind,
            bits,
            target_kind,
            target,
            first,
            conform,
            random_id,
        },
    )
}

/// (kind, a, b): what to change and where.
fn raw_mutations() -> impl Strategy<Value = Vec<(u8, u16, u16)>> {
    prop::collection::vec(any::<(u8, u16, u16)>(), 1..6)
}

fn pick<T: Copy>(list: &[T], i: u16) -> T {
    list[usize::from(i) % list.len()]
}

fn decode(raw: &RawQuery, w: &World, principals: &[Principal], spec: &Spec) -> (usize, Query) {
    let role = ROLES[usize::from(raw.principal_role) % ROLES.len()];
    let candidates: Vec<usize> = (0..principals.len()).filter(|i| principals[*i].role == role).collect();
    let who = pick(&candidates, raw.principal);
    let users: Vec<Uuid> = w.users.iter().map(|u| u.id).collect();
    let coachees = w.coachees();
    let sessions: Vec<Uuid> = w.sessions.iter().map(|s| s.id).collect();
    let random = Uuid::from_u128(raw.random_id);
    // Users the principal has (or had) a relationship with, and itself: the rows where the
    // interesting answers are.
    let me = principals[who].id;
    let mut related: Vec<Uuid> = w
        .assignments
        .iter()
        .filter(|a| a.coach == me || a.coachee == me)
        .flat_map(|a| [a.coach, a.coachee])
        .chain([me])
        .collect();
    related.sort_by_key(|id| w.user_at[id]);
    related.dedup();
    let related_sessions: Vec<Uuid> =
        w.sessions.iter().filter(|s| related.contains(&s.coachee) || s.coach == me).map(|s| s.id).collect();
    let related_sessions = if related_sessions.is_empty() { sessions.clone() } else { related_sessions };
    // An id for a `coacheeId` or `id` argument: mostly the kind the argument names.
    let coachee_arg = match raw.target_kind % 10 {
        0 => None,
        1 => Some(random),
        2 => Some(pick(&users, raw.target)),
        3..=5 => Some(pick(&related, raw.target)),
        _ => Some(pick(&coachees, raw.target)),
    };
    let first = [None, Some(5), Some(25), Some(100)][usize::from(raw.first) % 4];
    let mut q = match raw.kind % 7 {
        0 => Query::Coachees(UserSel::from_bits(raw.bits)),
        1 => Query::Sessions { coachee: coachee_arg, first, sel: SessionSel::from_bits(raw.bits) },
        2 => {
            let id = match raw.target_kind % 10 {
                0 => random,
                1 => pick(&users, raw.target),
                2..=5 => pick(&related_sessions, raw.target),
                _ => pick(&sessions, raw.target),
            };
            Query::Session { id, sel: SessionSel::from_bits(raw.bits) }
        }
        3 => Query::Goals { coachee: coachee_arg },
        4 => {
            let id = match raw.target_kind % 10 {
                0 => random,
                1..=4 => pick(&related, raw.target),
                _ => pick(&users, raw.target),
            };
            Query::User { id, sel: UserSel::from_bits(raw.bits) }
        }
        5 => Query::ActionItems { coachee: coachee_arg, first },
        _ => Query::Me(UserSel::from_bits(raw.bits)),
    };
    if raw.conform {
        q.prune(spec, role);
    }
    (who, q)
}

// ====================================================================== checking

/// Walks one answer with the oracle's expectations.
struct Check<'a> {
    o: Oracle<'a>,
    /// Expected errors: path (JSON text) -> allowed codes, and whether the error may come
    /// without its path (a page larger than the role may ask for nulls its non-null parent).
    expected: Vec<(String, &'static [&'static str], bool)>,
    problems: Vec<String>,
    stats: &'a mut Stats,
}

#[derive(Default, Debug)]
struct Stats {
    queries: usize,
    unknown_field_answers: usize,
    values_allowed: usize,
    rows_refused: usize,
    rows_filtered: usize,
    not_found: usize,
    profile_refusals: usize,
    by_role: BTreeMap<&'static str, usize>,
    by_root: BTreeMap<&'static str, usize>,
    mutations: usize,
}

fn path_key(path: &[Value]) -> String {
    Value::Array(path.to_vec()).to_string()
}

fn ids_of(list: &Value) -> Option<Vec<Uuid>> {
    list.as_array()?.iter().map(|n| n["id"].as_str().and_then(|s| Uuid::parse_str(s).ok())).collect()
}

impl Check<'_> {
    fn problem(&mut self, path: &[Value], what: String) {
        self.problems.push(format!("at {}: {what}", path_key(path)));
    }

    fn expect_error(&mut self, path: &[Value], refusal: Refusal) {
        self.stats.rows_refused += 1;
        self.expected.push((path_key(path), refusal.codes(), false));
    }

    fn with(path: &[Value], key: impl Into<Value>) -> Vec<Value> {
        let mut p = path.to_vec();
        p.push(key.into());
        p
    }

    /// A list of rows: exactly the expected ids (order not checked).
    fn id_set(&mut self, path: &[Value], got: &Value, expected: &BTreeSet<Uuid>, all: usize) {
        match ids_of(got) {
            None => self.problem(path, format!("expected a list of ids, got {got}")),
            Some(ids) => {
                let set: BTreeSet<Uuid> = ids.iter().copied().collect();
                if set.len() != ids.len() {
                    self.problem(path, "duplicate rows".to_owned());
                }
                let extra: Vec<&Uuid> = set.difference(expected).collect();
                let missing: Vec<&Uuid> = expected.difference(&set).collect();
                if !extra.is_empty() {
                    self.problem(path, format!("rows the policy does not allow: {extra:?}"));
                }
                if !missing.is_empty() {
                    self.problem(path, format!("allowed rows missing: {missing:?}"));
                }
                self.stats.values_allowed += expected.len();
                self.stats.rows_filtered += all.saturating_sub(expected.len());
            }
        }
    }

    /// A nullable value: the allowed value, or null with a refusal error.
    fn gated(&mut self, path: &[Value], got: &Value, access: Access, value: Option<&str>) {
        match access {
            Ok(()) => {
                let want = value.map_or(Value::Null, |v| Value::String(v.to_owned()));
                if *got != want {
                    self.problem(path, format!("expected {want}, got {got}"));
                }
                self.stats.values_allowed += 1;
            }
            Err(refusal) => {
                if !got.is_null() {
                    self.problem(path, format!("refused ({refusal:?}) but answered {got}"));
                }
                self.expect_error(path, refusal);
            }
        }
    }

    fn session(&mut self, path: &[Value], got: &Value, id: Uuid, sel: &SessionSel) {
        let o = self.o;
        let s = o.w.sessions[o.w.session_at[&id]].clone();
        if got["id"] != json!(id.to_string()) {
            self.problem(path, format!("expected session {id}, got {}", got["id"]));
            return;
        }
        if sel.status && got["status"] != json!(s.status) {
            self.problem(&Self::with(path, "status"), format!("expected {}, got {}", s.status, got["status"]));
        }
        if sel.coachee && got["coachee"]["id"] != json!(s.coachee.to_string()) {
            self.problem(&Self::with(path, "coachee"), format!("expected {}, got {}", s.coachee, got["coachee"]));
        }
        if sel.summary {
            let access = self.o.access(s.coachee, "approved_insights");
            self.gated(&Self::with(path, "summary"), &got["summary"], access, s.summary.as_deref());
        }
        if sel.transcript {
            let access = self.o.access(s.coachee, "transcripts");
            let body = self.o.w.transcripts.get(&id).cloned();
            self.gated(&Self::with(path, "transcript"), &got["transcript"], access, body.as_deref());
        }
        if sel.private_notes {
            let access = self.o.note_access(s.coach, s.coachee);
            self.gated(&Self::with(path, "privateNotes"), &got["privateNotes"], access, s.private_notes.as_deref());
        }
        if sel.packs {
            let coachee_view = self.o.p.role == "COACHEE";
            let all: Vec<&PackRow> = self.o.w.packs.iter().filter(|p| p.session == id).collect();
            let expected: BTreeSet<Uuid> = if self.o.access(s.coachee, "evidence_packs").is_ok() {
                // The coachee: L0 always, L1 only once approved.
                all.iter().filter(|p| !coachee_view || !p.l1 || p.approved).map(|p| p.id).collect()
            } else {
                BTreeSet::new()
            };
            let p = Self::with(path, "evidencePacks");
            self.id_set(&p, &got["evidencePacks"], &expected, all.len());
            for pack in got["evidencePacks"].as_array().into_iter().flatten() {
                let Some(row) = all.iter().find(|r| pack["id"] == json!(r.id.to_string())) else { continue };
                if pack["approved"] != json!(row.approved) || pack["level"] != json!(if row.l1 { "L1" } else { "L0" }) {
                    self.problem(&p, format!("pack {} answered {pack}, database {row:?}", row.id));
                }
            }
        }
        for (on, field, resource, approved) in [
            (sel.drafts, "draftInsights", "draft_insights", false),
            (sel.approved, "approvedInsights", "approved_insights", true),
        ] {
            if on {
                let all: Vec<&Row> = self.o.w.insights.iter().filter(|i| i.owner == id).collect();
                let expected: BTreeSet<Uuid> = if self.o.access(s.coachee, resource).is_ok() {
                    all.iter().filter(|i| (i.text == "APPROVED") == approved).map(|i| i.id).collect()
                } else {
                    BTreeSet::new()
                };
                self.id_set(&Self::with(path, field), &got[field], &expected, all.len());
            }
        }
        if sel.items {
            let all: Vec<&Row> = self.o.w.items.iter().filter(|i| i.parent == Some(id)).collect();
            let expected: BTreeSet<Uuid> = if self.o.access(s.coachee, "action_items").is_ok() {
                all.iter().map(|i| i.id).collect()
            } else {
                BTreeSet::new()
            };
            self.id_set(&Self::with(path, "actionItems"), &got["actionItems"], &expected, all.len());
        }
    }

    /// A connection of sessions (exactly `expected` when it fits one page).
    fn session_page(&mut self, path: &[Value], got: &Value, expected: &BTreeSet<Uuid>, page: u64, sel: &SessionSel) {
        let total = got["totalCount"].as_u64();
        if total != Some(expected.len() as u64) {
            self.problem(path, format!("totalCount {:?}, the policy allows {}", total, expected.len()));
        }
        let Some(ids) = ids_of(&got["nodes"]) else {
            self.problem(path, format!("no nodes in {got}"));
            return;
        };
        let want = (expected.len() as u64).min(page) as usize;
        if ids.len() != want {
            self.problem(path, format!("{} nodes, expected {want}", ids.len()));
        }
        if want == expected.len() {
            self.id_set(&Self::with(path, "nodes"), &got["nodes"], expected, self.o.w.sessions.len());
        }
        for (i, id) in ids.iter().enumerate() {
            let p = Self::with(&Self::with(path, "nodes"), i);
            if !expected.contains(id) {
                self.problem(&p, format!("session {id} is not one the policy allows"));
                continue;
            }
            self.session(&p, &got["nodes"][i], *id, sel);
        }
    }

    /// A user reached through a relationship that shows every profile field (own profile,
    /// assigned coachee, tenant for an admin, consented coachee for the AI).
    fn user(&mut self, path: &[Value], got: &Value, id: Uuid, sel: &UserSel, fields: &[&str]) {
        let u = self.o.w.user(id).expect("user").clone();
        if got["id"] != json!(id.to_string()) {
            self.problem(path, format!("expected user {id}, got {got}"));
            return;
        }
        for (on, field, value) in [
            (sel.email, "email", &u.email),
            (sel.display_name, "displayName", &u.display_name),
            (sel.role, "role", &u.role),
        ] {
            if !on {
                continue;
            }
            if fields.contains(&field) {
                if got[field] != json!(value) {
                    self.problem(&Self::with(path, field), format!("expected {value}, got {}", got[field]));
                }
                self.stats.values_allowed += 1;
            } else {
                self.profile_refusal(path, got, field);
            }
        }
        if sel.notes {
            let all: Vec<&Row> = self.o.w.notes.iter().filter(|n| n.owner == id).collect();
            let expected: BTreeSet<Uuid> =
                all.iter().filter(|n| self.o.note_access(n.parent.expect("coach"), id).is_ok()).map(|n| n.id).collect();
            let p = Self::with(path, "coachNotes");
            self.id_set(&p, &got["coachNotes"], &expected, all.len());
            for n in got["coachNotes"].as_array().into_iter().flatten() {
                if let Some(row) = all.iter().find(|r| n["id"] == json!(r.id.to_string()))
                    && n["body"] != json!(row.text)
                {
                    self.problem(&p, format!("note body {} differs from the database", n["body"]));
                }
            }
        }
        if sel.goals {
            let all: Vec<&Row> = self.o.w.goals.iter().filter(|g| g.owner == id).collect();
            let expected: BTreeSet<Uuid> =
                if self.o.access(id, "goals").is_ok() { all.iter().map(|g| g.id).collect() } else { BTreeSet::new() };
            self.id_set(&Self::with(path, "goals"), &got["goals"], &expected, all.len());
        }
        if let Some(s) = &sel.sessions {
            let expected = if self.o.access(id, "session_metadata").is_ok() {
                self.o.visible_sessions(Some(id))
            } else {
                BTreeSet::new()
            };
            self.session_page(&Self::with(path, "sessions"), &got["sessions"], &expected, 20, s);
        }
    }

    /// A profile field (`role`, `email`) the principal may not read on this row: `null`, with
    /// FORBIDDEN at its path (contract version 2 made both nullable).
    fn profile_refusal(&mut self, path: &[Value], got: &Value, field: &str) {
        self.stats.profile_refusals += 1;
        if got.get(field) != Some(&Value::Null) {
            self.problem(&Self::with(path, field), format!("refused profile field answered {:?}", got.get(field)));
        }
        self.expected.push((path_key(&Self::with(path, field)), &["FORBIDDEN"], false));
    }

    fn root(&mut self, q: &Query, data: &Value) {
        let o = self.o;
        let p = o.p;
        match q {
            Query::Coachees(sel) => {
                let path = vec![json!("coachees")];
                let expected: BTreeSet<Uuid> =
                    o.w.users
                        .iter()
                        .filter(|u| u.role == "COACHEE" && o.same_tenant(u.id))
                        .filter(|u| p.role == "PROGRAM_ADMIN" || o.active_coach_of(p.id, u.id))
                        .map(|u| u.id)
                        .collect();
                let got = &data["coachees"];
                if got["totalCount"].as_u64() != Some(expected.len() as u64) {
                    self.problem(&path, format!("totalCount {}, expected {}", got["totalCount"], expected.len()));
                }
                self.id_set(&Self::with(&path, "nodes"), &got["nodes"], &expected, o.w.users.len());
                for (i, n) in got["nodes"].as_array().cloned().unwrap_or_default().iter().enumerate() {
                    let Some(id) = n["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()) else { continue };
                    if expected.contains(&id) {
                        let np = Self::with(&Self::with(&path, "nodes"), i);
                        self.user(&np, n, id, sel, &["id", "role", "displayName", "email"]);
                    }
                }
            }
            Query::Sessions { coachee, first, sel } => {
                let path = vec![json!("sessions")];
                let cap = if p.role == "AI_AGENT" { 25 } else { 100 };
                if first.is_some_and(|f| f > cap) {
                    self.bad_input(data, &path);
                    return;
                }
                let expected = match coachee {
                    Some(c) if !o.same_tenant(*c) => BTreeSet::new(),
                    other => o.visible_sessions(*other),
                };
                self.session_page(&path, &data["sessions"], &expected, first.unwrap_or(20), sel);
            }
            Query::Session { id, sel } => {
                let path = vec![json!("session")];
                let got = &data["session"];
                let Some(s) = o.w.session_at.get(id).map(|i| &o.w.sessions[*i]) else {
                    return self.not_found(got, &path);
                };
                if Some(s.tenant) != p.tenant {
                    return self.not_found(got, &path);
                }
                match o.access(s.coachee, "session_metadata") {
                    Ok(()) => self.session(&path, got, *id, sel),
                    Err(r) => {
                        if !got.is_null() {
                            self.problem(&path, format!("refused session answered {got}"));
                        }
                        self.expect_error(&path, r);
                    }
                }
            }
            Query::Goals { coachee } => {
                let path = vec![json!("goals")];
                let expected: BTreeSet<Uuid> =
                    o.w.goals
                        .iter()
                        .filter(|g| o.in_tenant(g.owner, *coachee) && o.access(g.owner, "goals").is_ok())
                        .map(|g| g.id)
                        .collect();
                self.id_set(&path, &data["goals"], &expected, o.w.goals.len());
                for g in data["goals"].as_array().cloned().unwrap_or_default() {
                    if let Some(row) = self.o.w.goals.iter().find(|r| g["id"] == json!(r.id.to_string()))
                        && g["title"] != json!(row.text)
                    {
                        self.problem(&path, format!("goal title {} differs from the database", g["title"]));
                    }
                }
            }
            Query::User { id, sel } => {
                let path = vec![json!("user")];
                let got = &data["user"];
                if !o.same_tenant(*id) {
                    return self.not_found(got, &path);
                }
                match o.profile(*id) {
                    Ok(fields) => {
                        self.user(&path, got, *id, sel, fields);
                    }
                    Err(r) => {
                        if !got.is_null() {
                            self.problem(&path, format!("refused user answered {got}"));
                        }
                        self.expect_error(&path, r);
                    }
                }
            }
            Query::Me(sel) => self.me(&data["me"], sel),
            Query::ActionItems { coachee, first } => {
                let path = vec![json!("actionItems")];
                let cap = if p.role == "AI_AGENT" { 25 } else { 100 };
                if first.is_some_and(|f| f > cap) {
                    self.bad_input(data, &path);
                    return;
                }
                let expected: BTreeSet<Uuid> =
                    o.w.items
                        .iter()
                        .filter(|i| o.in_tenant(i.owner, *coachee) && o.access(i.owner, "action_items").is_ok())
                        .map(|i| i.id)
                        .collect();
                let got = &data["actionItems"];
                if got["totalCount"].as_u64() != Some(expected.len() as u64) {
                    self.problem(&path, format!("totalCount {}, expected {}", got["totalCount"], expected.len()));
                }
                let page = first.unwrap_or(20) as usize;
                match ids_of(&got["nodes"]) {
                    Some(ids) if ids.len() == expected.len().min(page) => {
                        if let Some(bad) = ids.iter().find(|i| !expected.contains(i)) {
                            self.problem(&path, format!("action item {bad} is not one the policy allows"));
                        }
                        if ids.len() == expected.len() {
                            self.id_set(&Self::with(&path, "nodes"), &got["nodes"], &expected, o.w.items.len());
                        }
                    }
                    other => {
                        self.problem(&path, format!("nodes {other:?}, expected {} rows", expected.len().min(page)))
                    }
                }
            }
        }
    }

    /// `me`: the own profile, every field of it, and the caller's own rows (none for
    /// anyone but a coachee).
    fn me(&mut self, got: &Value, sel: &UserSel) {
        let path = vec![json!("me")];
        self.user(&path, got, self.o.p.id, sel, &["id", "role", "displayName", "email"]);
    }

    fn not_found(&mut self, got: &Value, path: &[Value]) {
        self.stats.not_found += 1;
        if !got.is_null() {
            self.problem(path, format!("an id outside the tenant answered {got}"));
        }
        self.expected.push((path_key(path), &["NOT_FOUND"], false));
    }

    /// A page larger than the role may ask for: the non-null root field fails, so `data`
    /// is null; its error says where, like every field error.
    fn bad_input(&mut self, data: &Value, path: &[Value]) {
        if !data.is_null() {
            self.problem(path, format!("page over the cap answered {data}"));
        }
        self.expected.push((path_key(path), &["BAD_USER_INPUT"], false));
    }

    /// Every error expected (at its path, with an allowed code), and no other.
    fn errors(&mut self, errors: &[Value]) {
        let mut matched = vec![false; self.expected.len()];
        for e in errors {
            let code = e["extensions"]["code"].as_str().unwrap_or("");
            let path = e.get("path").map(|p| p.to_string());
            let found = self.expected.iter().enumerate().position(|(i, (p, codes, pathless))| {
                !matched[i]
                    && codes.contains(&code)
                    && (path.as_deref() == Some(p.as_str()) || (path.is_none() && *pathless))
            });
            match found {
                Some(i) => matched[i] = true,
                None => self.problems.push(format!("unexpected error {e}")),
            }
        }
        for (i, (p, codes, pathless)) in self.expected.iter().enumerate() {
            // A pathless-tolerant expectation belongs to a nulled parent: one error suffices.
            if !matched[i] && !pathless {
                self.problems.push(format!("missing error {codes:?} at {p}"));
            }
        }
        let lenient: Vec<usize> = (0..self.expected.len()).filter(|i| self.expected[*i].2).collect();
        if !lenient.is_empty() && !lenient.iter().any(|i| matched[*i]) {
            self.problems.push(format!(
                "no error for the refused fields {:?}",
                lenient.iter().map(|i| &self.expected[*i].0).collect::<Vec<_>>()
            ));
        }
    }
}

/// Checks one answer; `Err` describes every discrepancy.
fn check(spec: &Spec, w: &World, p: &Principal, q: &Query, answer: &Value, stats: &mut Stats) -> Result<(), String> {
    let tree = q.tree();
    let mut unknown = BTreeSet::new();
    unknown_fields(spec, p.role, "Query", &tree, &mut unknown);
    let errors: Vec<Value> = answer["errors"].as_array().cloned().unwrap_or_default();
    if !unknown.is_empty() {
        stats.unknown_field_answers += 1;
        let got: BTreeSet<String> = errors.iter().filter_map(|e| e["message"].as_str().map(str::to_owned)).collect();
        let mut problems = Vec::new();
        if !answer["data"].is_null() {
            problems.push(format!("data despite unknown fields: {}", answer["data"]));
        }
        if got != unknown {
            problems.push(format!("errors {got:?}, expected exactly {unknown:?}"));
        }
        if let Some(e) =
            errors.iter().find(|e| e["extensions"]["code"] != "GRAPHQL_VALIDATION_FAILED" || e.get("path").is_some())
        {
            problems.push(format!("an unknown field error should look like a typo's: {e}"));
        }
        return if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) };
    }
    let mut c = Check { o: Oracle { w, p }, expected: Vec::new(), problems: Vec::new(), stats };
    if errors.iter().any(|e| e["message"].as_str().is_some_and(|m| m.starts_with("Unknown field"))) {
        c.problems.push("a field the role's schema should have is unknown".to_owned());
    }
    c.root(q, &answer["data"]);
    c.errors(&errors);
    if c.problems.is_empty() { Ok(()) } else { Err(c.problems.join("\n")) }
}

// ====================================================================== principals, mutations

#[derive(serde::Serialize)]
struct Claims {
    sub: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<Uuid>,
    role: String,
    sid: Uuid,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
}

/// A session for every demo account without 37 PBKDF2 logins: a session row written as the
/// owner and a token signed with the test key (the login path has tests of its own).
async fn principals(app: &TestApp, w: &World) -> Vec<Principal> {
    let now = app.clock.now();
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
    let mut out = Vec::new();
    for u in &w.users {
        let sid = Uuid::new_v4();
        execute(
            app,
            "INSERT INTO auth_sessions (id, tenant_id, user_id, role, csrf_hash, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                sid.into(),
                u.tenant.into(),
                u.id.into(),
                u.role.clone().into(),
                "property-test".into(),
                now.into(),
                now.into(),
                (now + Duration::hours(12)).into(),
            ],
        )
        .await;
        let claims = Claims {
            sub: u.id,
            tid: u.tenant,
            role: u.role.clone(),
            sid,
            iat: now.timestamp(),
            exp: (now + Duration::hours(12)).timestamp(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        };
        let token = jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key)
            .expect("sign token");
        let role = *ROLES.iter().find(|r| **r == u.role).expect("known role");
        out.push(Principal { id: u.id, tenant: u.tenant, role, email: u.email.clone(), token });
    }
    out
}

async fn mutate(app: &TestApp, w: &World, raw: &[(u8, u16, u16)]) -> Vec<String> {
    let now = app.clock.now();
    let coachees = w.coachees();
    let l1: Vec<Uuid> = w.packs.iter().filter(|p| p.l1).map(|p| p.id).collect();
    let mut done = Vec::new();
    for &(kind, a, b) in raw {
        match kind % 4 {
            0 => {
                let coachee = pick(&coachees, a);
                let consent = KINDS[usize::from(b) % 4];
                let tenant = w.user(coachee).and_then(|u| u.tenant).expect("tenant");
                // Re-read: an earlier mutation of this round may have created the row.
                let current = select_with(
                    app,
                    "SELECT id, granted FROM consents WHERE kind = $1 AND coachee_id = $2",
                    vec![consent.into(), coachee.into()],
                )
                .await;
                match current.first() {
                    Some(r) => {
                        let granted: bool = get(r, "granted");
                        let id: Uuid = get(r, "id");
                        execute(
                            app,
                            "UPDATE consents SET granted = $1, changed_at = $2 WHERE id = $3",
                            vec![(!granted).into(), now.into(), id.into()],
                        )
                        .await;
                        done.push(format!("{consent} of {} -> {}", email_of(w, coachee), !granted));
                    }
                    None => {
                        execute(
                            app,
                            "INSERT INTO consents (id, tenant_id, coachee_id, kind, granted, changed_at) \
                             VALUES ($1, $2, $3, $4, $5, $6)",
                            vec![
                                Uuid::new_v4().into(),
                                tenant.into(),
                                coachee.into(),
                                consent.into(),
                                true.into(),
                                now.into(),
                            ],
                        )
                        .await;
                        done.push(format!("{consent} of {} -> true (new)", email_of(w, coachee)));
                    }
                }
            }
            1 => {
                let assignment = &w.assignments[usize::from(a) % w.assignments.len()];
                let level = LEVELS[usize::from(b) % 4];
                execute(
                    app,
                    "UPDATE coach_assignments SET ai_level = $1 WHERE id = $2",
                    vec![level.into(), assignment.id.into()],
                )
                .await;
                done.push(format!("ai_level of {} -> {}", email_of(w, assignment.coachee), level));
            }
            2 => {
                let assignment = &w.assignments[usize::from(a) % w.assignments.len()];
                let active = b % 2 == 0;
                let ended: Option<DateTime<Utc>> = (!active).then_some(now);
                execute(
                    app,
                    "UPDATE coach_assignments SET active = $1, ended_at = $2 WHERE id = $3",
                    vec![active.into(), ended.into(), assignment.id.into()],
                )
                .await;
                done.push(format!("assignment of {} active -> {active}", email_of(w, assignment.coachee)));
            }
            _ => {
                let pack = pick(&l1, a);
                let approved = b % 4 != 0;
                let at: Option<DateTime<Utc>> = approved.then_some(now);
                execute(
                    app,
                    "UPDATE evidence_packs SET approved = $1, approved_at = $2 WHERE id = $3",
                    vec![approved.into(), at.into(), pack.into()],
                )
                .await;
                done.push(format!("L1 pack {pack} approved -> {approved}"));
            }
        }
    }
    done
}

fn email_of(w: &World, id: Uuid) -> String {
    w.user(id).map(|u| u.email.clone()).unwrap_or_else(|| id.to_string())
}

// ====================================================================== the test

/// A few coachees of each tenant get a second coach: an ended assignment with the other
/// coach (which the mutations may resume, giving the coachee two active coaches with their
/// own AI levels) and a note that coach wrote. "Only its own notes", "a session's private
/// notes only by their author coach" and "that coach's own AI setting" then have rows to bite on.
async fn second_coaches(app: &TestApp) {
    let users = select(app, "SELECT id, tenant_id, email FROM users WHERE tenant_id IS NOT NULL ORDER BY email").await;
    let by_email: HashMap<String, (Uuid, Uuid)> =
        users.iter().map(|r| (get::<String>(r, "email"), (get(r, "id"), get(r, "tenant_id")))).collect();
    let now = app.clock.now();
    for tenant in ["acme", "globex"] {
        for (i, level) in [(1, "ANALYZE"), (2, "OFF"), (7, "ACT"), (8, "OBSERVE")] {
            let (coachee, tenant_id) = by_email[&format!("coachee{i}@{tenant}.test")];
            let other = if i <= 6 { "coach2" } else { "coach1" };
            let (coach, _) = by_email[&format!("{other}@{tenant}.test")];
            execute(
                app,
                "INSERT INTO coach_assignments (id, tenant_id, coach_id, coachee_id, active, ai_level, created_at, ended_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                vec![
                    Uuid::new_v4().into(),
                    tenant_id.into(),
                    coach.into(),
                    coachee.into(),
                    false.into(),
                    level.into(),
                    (now - Duration::days(400)).into(),
                    Some(now - Duration::days(130)).into(),
                ],
            )
            .await;
            execute(
                app,
                "INSERT INTO coach_notes (id, tenant_id, coach_id, coachee_id, body, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                vec![
                    Uuid::new_v4().into(),
                    tenant_id.into(),
                    coach.into(),
                    coachee.into(),
                    format!("Note by {other} about coachee{i} of {tenant}, from an earlier engagement.").into(),
                    (now - Duration::days(140)).into(),
                    (now - Duration::days(140)).into(),
                ],
            )
            .await;
        }
    }
}

/// One seed per process (both backends replay the same choices, so their statistics agree).
fn seed() -> [u8; 32] {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let n = *SEED.get_or_init(|| {
        let setting = std::env::var("COACHGRAPH_PROPTEST_SEED").unwrap_or_default();
        match setting.trim() {
            "" => DEFAULT_SEED,
            "random" => rand::random(),
            s => s
                .strip_prefix("0x")
                .map(|h| u64::from_str_radix(h, 16))
                .unwrap_or_else(|| s.parse())
                .unwrap_or_else(|e| panic!("COACHGRAPH_PROPTEST_SEED={s}: {e}")),
        }
    });
    eprintln!("property: seed {n:#x} (COACHGRAPH_PROPTEST_SEED={n:#x} replays it)");
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&n.to_le_bytes());
    out
}

fn cases() -> usize {
    std::env::var("COACHGRAPH_PROPTEST_CASES")
        .ok()
        .map(|v| v.parse().unwrap_or_else(|e| panic!("COACHGRAPH_PROPTEST_CASES={v}: {e}")))
        .unwrap_or(DEFAULT_CASES)
}

async fn every_answer_matches_the_policy_oracle(app: &TestApp) {
    let started = Instant::now();
    let spec = Spec::load();
    let cases = cases();
    let mut runner = TestRunner::new_with_rng(
        Config { failure_persistence: None, ..Config::default() },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed()),
    );
    // The AI principal is rate-limited per minute of the application clock, which stands
    // still here: lift the platform limit (the system administrator's setting) for the run.
    execute(
        app,
        "UPDATE system_config SET value = $1 WHERE key = $2",
        vec!["1000000".into(), "ai.rate_limit_per_minute".into()],
    )
    .await;
    // Likewise the AI's rows per request (its own test is in `abuse`): the oracle models
    // which rows a role sees, not how many one request may carry.
    let mut state = app.state.clone();
    state.settings = std::sync::Arc::new(coachgraph::app::HttpSettings {
        ai_rows_per_request: u64::MAX,
        ..coachgraph::app::HttpSettings::default()
    });
    second_coaches(app).await;
    let mut world = World::load(app).await;
    let principals = principals(app, &world).await;
    let (queries, mutations) = (raw_query(), raw_mutations());
    let mut stats = Stats::default();
    let mut failures: Vec<String> = Vec::new();
    let mut history: Vec<String> = Vec::new();
    let mut request_time = std::time::Duration::ZERO;
    for case in 0..cases {
        if case % MUTATE_EVERY == 0 {
            let raw = mutations.new_tree(&mut runner).expect("mutations").current();
            let done = mutate(app, &world, &raw).await;
            stats.mutations += done.len();
            history.extend(done.into_iter().map(|d| format!("before case {case}: {d}")));
            world.refresh(app).await;
        }
        let raw = queries.new_tree(&mut runner).expect("query").current();
        let (who, query) = decode(&raw, &world, &principals, &spec);
        let p = &principals[who];
        let text = format!("{{ {} }}", render(&query.tree()));
        let sent = Instant::now();
        let answer = send_to(&state, gql_request(&p.token, &text, json!({}))).await.body;
        request_time += sent.elapsed();
        stats.queries += 1;
        *stats.by_role.entry(p.role).or_default() += 1;
        *stats.by_root.entry(query.tree().name).or_default() += 1;
        if let Err(why) = check(&spec, &world, p, &query, &answer, &mut stats) {
            failures.push(format!("case {case}: {} ({}) sent\n  {text}\nand got\n  {answer}\n{why}", p.email, p.role));
            if failures.len() >= MAX_FAILURES {
                break;
            }
        }
    }
    eprintln!(
        "property ({:?}): {} queries in {:.1}s ({:.1} ms per request), {} mutations; {stats:?}",
        app.backend,
        stats.queries,
        started.elapsed().as_secs_f64(),
        request_time.as_secs_f64() * 1000.0 / stats.queries.max(1) as f64,
        stats.mutations
    );
    if !failures.is_empty() {
        let recent: Vec<&String> = history.iter().rev().take(30).collect();
        panic!(
            "{} answers disagree with the policy oracle ({:?}); replay with the seed printed above.\n\n{}\n\nLast mutations (newest first):\n{}",
            failures.len(),
            app.backend,
            failures.join("\n\n"),
            recent.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        );
    }
    // The run must have exercised both sides of the policy.
    assert!(stats.values_allowed > 0 && stats.rows_refused > 0 && stats.rows_filtered > 0, "{stats:?}");
    assert!(stats.unknown_field_answers > 0 && stats.not_found > 0, "{stats:?}");
}
both_backends!(every_answer_matches_the_policy_oracle, every_answer_matches_the_policy_oracle);
