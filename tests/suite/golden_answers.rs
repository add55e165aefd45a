//! Golden answers: every Query field of the contract that the server declares today
//! (`schema.graphql`) and every client workload (`docs/spec/workloads/*.graphql`), sent
//! as each of the six demo roles (`acme`, and the platform's system administrator). The whole
//! answer, data and errors, is an insta snapshot under `snapshots/`, reviewed by hand
//! against POLICY.md: a change in what any role gets back shows up as a snapshot diff.
//!
//! The cases are data: one directory per case under `tests/golden/answers/`, named
//! `<NN>-<case>` (`NN` orders the cases: the audit log and the AI access log show what the
//! cases before them did; `<case>` names the snapshot), holding `query.graphql` (one
//! operation, `#` comments allowed), and optionally `variables.json`, `roles.txt` (the roles
//! to ask, one a line, e.g. `COACHEE`; all six when absent) and `ai_prelude.txt` (queries the
//! AI principal sends first, one a line). The workloads are read from the spec and asked
//! after them. Together the cases must name every Query field `schema.graphql` declares.
//!
//! Each role is asked twice when the two differ: the query as written (a field outside the
//! role's schema answers `Unknown field`), and the same query pruned to the fields the
//! role's schema has (found by introspection), which shows the rows and the per-row
//! refusals the role gets.
//!
//! The demo data's ids are UUID v5 of readable names (`acme/user/coachee1`,
//! `acme/session/coachee1/2`, see `coachgraph::seed::demo_id`), and so are the ids of the
//! fixtures below: queries and snapshots hold them as they are. Only ids made during the run
//! (random v4: audit events, ...) become `<uuid:N>` in order of appearance, and cursors
//! `<cursor>`. Timestamps come from the test clock, which every request moves on by a fixed
//! step, so they are the same on every run; the demo data gives rows the API sorts by time
//! distinct times, and `errors` are sorted by path with their `locations` dropped (fields
//! resolve concurrently). The SQLite and the PostgreSQL variants assert against the same
//! snapshot files: the two backends must answer identically.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::parser::{Positioned, parse_query};
use chrono::Duration;
use coachgraph::db::entities::{
    access_notices, break_glass_grants, break_glass_requests, coach_assignments, coach_notes, integration_tokens, users,
};
use coachgraph::domain::kinds::{AiLevel, Role};
use coachgraph::seed::demo_id;
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

/// The id golden queries use for a row that does not exist, in any tenant; it stays as it is.
const NONEXISTENT: &str = "00000000-0000-4000-8000-000000000000";

/// One snapshot: a query, sent as the case's roles.
struct Case {
    /// Snapshot name.
    name: String,
    query: String,
    variables: Value,
    /// Roles to ask (`ACCOUNTS` names), in the order of `ACCOUNTS`.
    roles: Vec<&'static str>,
    /// Requests the AI principal makes first (each touching one resource of one coachee),
    /// so that the case has something to show.
    ai_prelude: Vec<String>,
}

fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_optional(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

/// The lines of a list file that are neither blank nor `#` comments.
fn list_lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

/// The cases under `tests/golden/answers/`, in the order of their `NN-` prefix.
fn data_cases() -> Vec<Case> {
    let dir = crate_root().join("tests/golden/answers");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("golden case directory {} is missing or unreadable: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut names = BTreeSet::new();
    dirs.into_iter()
        .map(|path| {
            let dir_name = path.file_name().and_then(|n| n.to_str()).expect("directory name").to_owned();
            let name = dir_name
                .split_once('-')
                .filter(|(n, rest)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && !rest.is_empty())
                .map(|(_, rest)| rest.to_owned())
                .unwrap_or_else(|| panic!("golden case directory {dir_name} is not named <NN>-<case>"));
            assert!(names.insert(name.clone()), "two golden case directories are named {name}");
            let query = std::fs::read_to_string(path.join("query.graphql"))
                .unwrap_or_else(|e| panic!("cannot read {}/query.graphql: {e}", path.display()));
            let variables = read_optional(&path.join("variables.json"))
                .map(|text| {
                    serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("{}/variables.json is not JSON: {e}", path.display()))
                })
                .unwrap_or_else(|| json!({}));
            let roles = match read_optional(&path.join("roles.txt")) {
                None => ACCOUNTS.iter().map(|(_, role)| *role).collect(),
                Some(text) => {
                    let wanted = list_lines(&text);
                    for role in &wanted {
                        assert!(
                            ACCOUNTS.iter().any(|(_, r)| r == role),
                            "{}/roles.txt names an unknown role {role}",
                            path.display()
                        );
                    }
                    ACCOUNTS.iter().map(|(_, role)| *role).filter(|r| wanted.iter().any(|w| w == r)).collect()
                }
            };
            let ai_prelude = read_optional(&path.join("ai_prelude.txt")).map(|t| list_lines(&t)).unwrap_or_default();
            Case { name, query, variables, roles, ai_prelude }
        })
        .collect()
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
            query,
            variables: json!({}),
            roles: ACCOUNTS.iter().map(|(_, role)| *role).collect(),
            ai_prelude: vec![],
        })
        .collect()
}

/// The Query fields a case asks for (its top-level fields).
fn top_fields(case: &Case) -> BTreeSet<String> {
    let doc = parse_query(&case.query).unwrap_or_else(|e| panic!("{}: query does not parse: {e}", case.name));
    let (_, op) = only_operation(&doc);
    op.selection_set
        .node
        .items
        .iter()
        .map(|item| {
            let Selection::Field(f) = &item.node else { panic!("golden queries select fields only (no fragments)") };
            f.node.name.node.to_string()
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

/// The id of a fixture row: named like the demo data's.
fn fixture_id(name: &str) -> Uuid {
    demo_id(name)
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
            id: fixture_id("acme/assignment/coach2/coachee2"),
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
            id: fixture_id("acme/note/coach2/coachee2"),
            tenant_id: acme,
            coach_id: coach2.id,
            coachee_id: coachee2.id,
            body: "Coach note by Coach2 (Acme) about Acme coachee 2, from the earlier engagement.".to_owned(),
            created_at: t0 - Duration::days(140),
            updated_at: t0 - Duration::days(140),
        },
    )
    .await;

    for (user, who, name, created_days, revoked) in [
        (&coachee1, "coachee1", "Calendar sync", 30, false),
        (&coachee1, "coachee1", "Old phone", 60, true),
        (&coach1, "coach1", "CRM export", 20, false),
        (&coach2, "coach2", "Coach2 notebook", 10, false),
    ] {
        put::<integration_tokens::Entity>(
            app,
            integration_tokens::Model {
                id: fixture_id(&format!("acme/token/{who}/{name}")),
                tenant_id: acme,
                user_id: user.id,
                name: name.to_owned(),
                token_hash: format!("fixture-hash-{name}"),
                created_at: t0 - Duration::days(created_days),
                last_used_at: (!revoked).then(|| t0 - Duration::days(1)),
                revoked_at: revoked.then(|| t0 - Duration::days(40)),
                use_audited_at: None,
            },
        )
        .await;
    }

    // Used and expired: admin1 asked, admin2 approved, 30 minutes two days ago.
    let used = fixture_id("acme/break-glass/coachee3");
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
    let grant = fixture_id("acme/grant/coachee3");
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
    for (coachee, who, at, reason) in [
        (
            &coachee3,
            "coachee3",
            approved_at + Duration::minutes(5),
            "Break-glass: safeguarding concern reported by the coach",
        ),
        (&coachee1, "coachee1", t0 - Duration::days(5), "Break-glass: billing dispute review"),
        (&coachee7, "coachee7", t0 - Duration::days(4), "Break-glass: complaint investigation"),
    ] {
        put::<access_notices::Entity>(
            app,
            access_notices::Model {
                id: fixture_id(&format!("acme/notice/{who}")),
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
    for (tenant, who, coachee, admin, reason, hours) in [
        (acme, "acme/break-glass/coachee4", &coachee4, &admin2, "Coachee asked for a review of their file", 3),
        (globex, "globex/break-glass/coachee1", &g_coachee1, &g_admin1, "Globex: legal hold", 4),
    ] {
        put::<break_glass_requests::Entity>(
            app,
            break_glass_requests::Model {
                id: fixture_id(who),
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

/// Replaces the ids made during the run (random, version 4, but for `NONEXISTENT`) by
/// `<uuid:N>`, numbered in order of appearance within the snapshot, and cursors by
/// `<cursor>`. The ids of the demo data and of the fixtures (version 5) stay as they are.
#[derive(Default)]
struct Redactor {
    unknown: HashMap<Uuid, String>,
}

impl Redactor {
    fn text(&mut self, s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        while i < bytes.len() {
            if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
                let text = &s[i..i + 36];
                let id = Uuid::parse_str(text).expect("uuid");
                if id.get_version_num() == 4 && text != NONEXISTENT {
                    let n = self.unknown.len() + 1;
                    out.push_str(self.unknown.entry(id).or_insert_with(|| format!("<uuid:{n}>")));
                } else {
                    out.push_str(text);
                }
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
    role: &'static str,
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
    let mut clock = Timeline { app, elapsed: Duration::zero() };

    let mut callers = Vec::new();
    for (i, (email, role)) in ACCOUNTS.into_iter().enumerate() {
        clock.tick();
        let session = app.login(email).await;
        callers.push(Caller {
            key: format!("{}. {email} ({role})", i + 1),
            role,
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
    let mut cases = data_cases();
    let fields: Vec<BTreeSet<String>> = cases.iter().map(top_fields).collect();
    let covered: BTreeSet<&String> = fields.iter().flatten().collect();
    let missing: Vec<&String> = declared.iter().filter(|f| !covered.contains(f)).collect();
    assert!(missing.is_empty(), "Query fields without a golden case (add one to tests/golden/answers): {missing:?}");
    // Cases asking for fields the server does not declare yet are skipped until it does.
    let mut fields = fields.into_iter();
    cases.retain(|_| fields.next().expect("fields of a case").iter().all(|f| declared.contains(f)));
    cases.extend(workload_cases());

    let ai = callers.iter().find(|c| c.email == "ai@acme.test").expect("ai").token.clone();
    for (index, case) in cases.iter().enumerate() {
        clock.start_case(index);
        for prelude in &case.ai_prelude {
            let answer = ask(app, &mut clock, &ai, prelude, &json!({})).await;
            assert!(answer["errors"].is_null(), "{}: AI prelude {prelude} failed: {answer}", case.name);
        }
        let doc: ExecutableDocument =
            parse_query(&case.query).unwrap_or_else(|e| panic!("{}: query does not parse: {e}", case.name));
        let (op_name, op) = only_operation(&doc);
        let printed = print_operation(op_name.as_deref(), op);
        let mut redactor = Redactor::default();
        let mut answers = Map::new();
        for caller in callers.iter().filter(|c| case.roles.contains(&c.role)) {
            let response = ask(app, &mut clock, &caller.token, &case.query, &case.variables).await;
            let mut entry = Map::new();
            entry.insert("response".to_owned(), redactor.answer(&response));
            if let Some(pruned) = pruned_operation(op_name.as_deref(), op, &caller.schema)
                && pruned != printed
            {
                let response = ask(app, &mut clock, &caller.token, &pruned, &case.variables).await;
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
