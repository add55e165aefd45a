//! Tags and per-role schemas: every output field is tagged, never more loosely than the
//! contract; a field outside a role's schema is rejected exactly like a misspelled one,
//! however it is reached, and the attempt is audited.

use std::collections::{HashMap, HashSet};

use coachgraph::authz::VisibilityTag;
use coachgraph::graphql::{self, Audience};
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

/// `Type.field -> tag` from `contract.graphql` (vendored in `docs/spec`).
fn contract_tags() -> HashMap<(String, String), VisibilityTag> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/spec/contract.graphql");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("type ") {
            current = rest.split_whitespace().next().map(str::to_owned);
            continue;
        }
        if line.starts_with('}') {
            current = None;
            continue;
        }
        let (Some(ty), Some(at)) = (&current, line.find("@visibility(tag: ")) else { continue };
        let field = line.split([':', '(']).next().unwrap_or("").trim().to_owned();
        let tag = line[at + "@visibility(tag: ".len()..].trim_end_matches(')').trim();
        out.insert((ty.clone(), field), VisibilityTag::parse(tag).expect("known tag"));
    }
    assert!(out.len() > 60, "parsed the contract's tags ({})", out.len());
    out
}

/// POLICY.md section 3: structural types hold only the caller's own identity or paging, or
/// the one-time answer of the mutation that made them (an invitation, a provisioned tenant).
fn structural(ty: &str) -> bool {
    matches!(
        ty,
        "Viewer"
            | "AuthPayload"
            | "PageInfo"
            | "DataExport"
            | "NewIntegrationToken"
            | "Invitation"
            | "TenantProvisioning"
            | "Query"
            | "Mutation"
    ) || ty.ends_with("Connection")
        || ty.ends_with("Edge")
}

#[test]
fn every_output_field_has_a_tag_no_looser_than_the_contract() {
    let contract = contract_tags();
    let catalog = graphql::catalog();
    let mut checked = 0;
    for object in &catalog.objects {
        for field in &object.fields {
            if structural(object.name) {
                assert!(object.structural, "{} must be declared structural", object.name);
                continue;
            }
            let tag = field.tag.unwrap_or_else(|| panic!("{}.{} has no visibility tag", object.name, field.name));
            if let Some(expected) = contract.get(&(object.name.to_owned(), field.name.to_owned())) {
                assert!(
                    tag.breadth() <= expected.breadth(),
                    "{}.{} is tagged {:?}, looser than the contract's {:?}",
                    object.name,
                    field.name,
                    tag,
                    expected
                );
                assert_eq!(&tag, expected, "{}.{}: tag differs from the contract", object.name, field.name);
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "checked {checked} contract fields");
}

#[test]
fn the_contract_sdl_carries_each_fields_tag_as_a_directive() {
    let sdl = graphql::schema::sdl(&graphql::catalog(), Audience::Contract).expect("sdl");
    assert!(sdl.contains("directive @visibility(tag: VisibilityTag!) on FIELD_DEFINITION"));
    assert!(sdl.contains("coachNotes: [CoachNote!]! @visibility(tag: COACH_ONLY)"), "{sdl}");
    assert!(sdl.contains("privateNotes: String @visibility(tag: COACH_ONLY)"));
}

/// The field names `type {ty} { .. }` declares in an SDL text; `None` when there is no such type.
fn sdl_fields(sdl: &str, ty: &str) -> Option<HashSet<String>> {
    let header = format!("type {ty} ");
    let mut lines = sdl.lines().skip_while(|l| !(l.starts_with(&header) && l.trim_end().ends_with('{')));
    lines.next()?;
    let fields = lines
        .take_while(|l| l.trim() != "}")
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('"') && !l.starts_with('#'))
        .filter_map(|l| l.split([':', '(']).next().map(|name| name.trim().to_owned()))
        .collect();
    Some(fields)
}

#[test]
fn every_contract_type_and_query_field_that_exists_keeps_its_contract_name() {
    // Names clients rely on: a served type must not rename them. Each field is looked for
    // in its own type's block, not anywhere in the SDL (`id` is in every type).
    let sdl = graphql::schema::sdl(&graphql::catalog(), Audience::Contract).expect("sdl");
    let mut checked = 0;
    for ((ty, field), _) in contract_tags() {
        if let Some(fields) = sdl_fields(&sdl, &ty) {
            assert!(fields.contains(&field), "{ty}.{field} missing from the contract schema's type {ty}");
            checked += 1;
        }
    }
    assert!(checked > 40, "checked {checked} contract fields");
    // The parser sees a type's own fields only.
    let user = sdl_fields(&sdl, "User").expect("type User");
    assert!(user.contains("coachNotes") && !user.contains("transcript"), "{user:?}");
}

/// What each role must never be able to name, with a way to reach the field's type.
/// (role account, query using `FIELD` where the hidden field goes, hidden field, type)
fn probes() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    vec![
        ("coachee1@acme.test", "{ me { FIELD { id } } }", "coachNotes", "User"),
        ("coachee1@acme.test", "{ me { sessions { nodes { FIELD { id } } } } }", "draftInsights", "CoachingSession"),
        ("coachee1@acme.test", "{ me { sessions { nodes { FIELD } } } }", "transcript", "CoachingSession"),
        ("coachee1@acme.test", "{ me { sessions { nodes { FIELD } } } }", "privateNotes", "CoachingSession"),
        ("coachee1@acme.test", "{ me { sessions { nodes { approvedInsights { FIELD } } } } }", "authorRole", "Insight"),
        ("coachee1@acme.test", "{ FIELD { nodes { id } } }", "coachees", "Query"),
        ("coach1@acme.test", "{ FIELD { nodes { id } } }", "auditEvents", "Query"),
        ("coach1@acme.test", "{ FIELD { activeCoachees } }", "programMetrics", "Query"),
        ("admin1@acme.test", "{ sessions { nodes { FIELD } } }", "summary", "CoachingSession"),
        ("admin1@acme.test", "{ sessions { nodes { FIELD } } }", "transcript", "CoachingSession"),
        ("admin1@acme.test", "{ coachees { nodes { FIELD { id } } } }", "goals", "User"),
        ("exec1@acme.test", "{ users { nodes { FIELD } } }", "email", "User"),
        ("exec1@acme.test", "{ users { nodes { FIELD { nodes { id } } } } }", "sessions", "User"),
        ("exec1@acme.test", "{ FIELD { id } }", "me", "Query"),
        ("ai@acme.test", "{ sessions { nodes { FIELD { id } } } }", "evidencePacks", "CoachingSession"),
        ("ai@acme.test", "{ sessions { nodes { FIELD { id } } } }", "draftInsights", "CoachingSession"),
        ("root@coachgraph.test", "{ FIELD { id } }", "me", "Query"),
        ("root@coachgraph.test", "{ FIELD { nodes { id } } }", "sessions", "Query"),
    ]
}

/// The same query through every path: direct, alias, named fragment, inline fragment.
fn paths(query: &str, field: &str, ty: &str) -> Vec<String> {
    let direct = query.replace("FIELD", field);
    let alias = query.replace("FIELD", &format!("renamed: {field}"));
    // Wrap the innermost selection containing FIELD into fragments on its type.
    let open = query.rfind('{').unwrap_or(0);
    let inner_start = query[..query.find("FIELD").unwrap_or(0)].rfind('{').unwrap_or(open);
    let inner_end = inner_start + query[inner_start..].find('}').unwrap_or(0);
    let inner = &query[inner_start + 1..inner_end];
    let balanced = inner.matches('{').count() == inner.matches('}').count();
    let mut out = vec![direct, alias];
    if balanced && ty != "Query" {
        let selection = inner.replace("FIELD", field);
        let named = format!(
            "{}{{ ...Probe }}{} fragment Probe on {ty} {{ {selection} }}",
            &query[..inner_start],
            &query[inner_end + 1..]
        );
        let inline = format!("{}{{ ... on {ty} {{ {selection} }} }}{}", &query[..inner_start], &query[inner_end + 1..]);
        out.push(named);
        out.push(inline);
    }
    out
}

async fn hidden_fields_are_rejected_like_misspelled_ones_through_every_path(app: &TestApp) {
    let mut sessions = HashMap::new();
    for (who, query, field, ty) in probes() {
        if !sessions.contains_key(who) {
            sessions.insert(who, app.session_for(who).await.token);
        }
        let token = &sessions[who];
        for q in paths(query, field, ty) {
            let hidden = app.gql(token, &q).await;
            // The same query with a field that exists nowhere.
            let bogus = app.gql(token, &q.replace(field, "zzNoSuchField")).await;
            assert!(hidden["data"].is_null(), "{who}: {q}: {hidden}");
            let message = hidden["errors"][0]["message"].as_str().unwrap_or_default();
            assert_eq!(message, format!("Unknown field \"{field}\" on type \"{ty}\"."), "{who}: {q}");
            assert!(!message.contains("Did you mean"), "no suggestions");
            let (h, b) = (hidden["errors"].as_array().expect("errors"), bogus["errors"].as_array().expect("errors"));
            assert_eq!(h.len(), b.len(), "{who}: {q}");
            for (he, be) in h.iter().zip(b) {
                let quoted = format!("\"{field}\"");
                let hm = he["message"].as_str().unwrap_or_default().replace(&quoted, "\"zzNoSuchField\"");
                assert_eq!(hm, be["message"].as_str().unwrap_or_default(), "{who}: {q}");
                assert_eq!(he["locations"], be["locations"], "{who}: {q}");
                assert_eq!(he.get("extensions"), be.get("extensions"), "{who}: {q}");
            }
        }
    }
}
both_backends!(
    hidden_fields_are_rejected_like_misspelled_ones_through_every_path,
    hidden_fields_are_rejected_like_misspelled_ones_through_every_path
);

async fn introspection_shows_each_role_only_its_schema(app: &TestApp) {
    let fields_of = |v: &Value, ty: &str| -> Vec<String> {
        v["data"]["__schema"]["types"]
            .as_array()
            .expect("types")
            .iter()
            .find(|t| t["name"] == ty)
            .map(|t| {
                t["fields"]
                    .as_array()
                    .expect("fields")
                    .iter()
                    .map(|f| f["name"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let q = "{ __schema { types { name fields { name } } } }";
    let coachee = app.gql(&app.session_for("coachee1@acme.test").await.token, q).await;
    let coach = app.gql(&app.session_for("coach1@acme.test").await.token, q).await;
    assert!(!fields_of(&coachee, "User").contains(&"coachNotes".to_owned()));
    assert!(fields_of(&coach, "User").contains(&"coachNotes".to_owned()));
    assert!(!fields_of(&coachee, "CoachingSession").contains(&"transcript".to_owned()));
    assert!(fields_of(&coach, "CoachingSession").contains(&"transcript".to_owned()));
    let exec = app.gql(&app.session_for("exec1@acme.test").await.token, q).await;
    let mut exec_user = fields_of(&exec, "User");
    exec_user.sort();
    assert_eq!(exec_user, ["displayName", "id", "role"], "the executive's User is the directory entry");
    assert!(fields_of(&exec, "CoachNote").is_empty(), "the type does not exist for the executive");
}
both_backends!(introspection_shows_each_role_only_its_schema, introspection_shows_each_role_only_its_schema);

async fn probing_a_hidden_field_is_audited_and_a_typo_is_not(app: &TestApp) {
    let s = app.session_for("coachee1@acme.test").await;
    let before = app.count("SELECT count(*) FROM audit_events WHERE outcome = 'DENIED'").await;
    app.gql(&s.token, "{ me { coachNotes { id body } } }").await;
    let after = app.count("SELECT count(*) FROM audit_events WHERE outcome = 'DENIED'").await;
    assert_eq!(after, before + 1);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_events WHERE outcome = 'DENIED' AND resource = 'coach_notes' \
             AND reason LIKE '%User.coachNotes%' AND actor_role = 'COACHEE'"
        )
        .await,
        1
    );
    app.gql(&s.token, "{ me { coachNotez { id } } }").await;
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE outcome = 'DENIED'").await,
        after,
        "a typo is no denial"
    );
    let _ = json!({});
}
both_backends!(
    probing_a_hidden_field_is_audited_and_a_typo_is_not,
    probing_a_hidden_field_is_audited_and_a_typo_is_not
);

async fn deeply_nested_queries_are_refused_before_execution(app: &TestApp) {
    let s = app.session_for("coach1@acme.test").await;
    let mut q = String::from("id");
    // 1 + 6 x 3 + 1 = 20 levels: above the schema's depth limit (16).
    for _ in 0..6 {
        q = format!("sessions {{ nodes {{ coach {{ {q} }} }} }}");
    }
    let statements = || app.statements.load(std::sync::atomic::Ordering::SeqCst);
    let before = statements();
    let res = app.gql(&s.token, &format!("{{ me {{ {q} }} }}")).await;
    let ran = statements() - before;
    assert!(res["data"].is_null(), "{res}");
    assert_eq!(res["errors"][0]["extensions"]["code"], "QUERY_TOO_DEEP", "{res}");
    assert_eq!(ran, 0, "refused before the request's transaction (issue 9: no statement at all)");
    // Deeper still (1 + 30 x 3 + 1 = 92 levels) is refused by the scan of the text, before
    // the parser sees it.
    let mut deeper = String::from("id");
    for _ in 0..30 {
        deeper = format!("sessions {{ nodes {{ coach {{ {deeper} }} }} }}");
    }
    let before = statements();
    let res = app.gql(&s.token, &format!("{{ me {{ {deeper} }} }}")).await;
    let ran = statements() - before;
    assert!(res["data"].is_null(), "{res}");
    assert_eq!(res["errors"][0]["extensions"]["code"], "QUERY_TOO_DEEP", "{res}");
    assert_eq!(ran, 0, "refused before the request's transaction");
}
both_backends!(deeply_nested_queries_are_refused_before_execution, deeply_nested_queries_are_refused_before_execution);
