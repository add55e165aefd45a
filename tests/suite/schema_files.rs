//! The checked-in SDL files are what the code generates: `schema.graphql` (the contract)
//! and `tests/golden/schema/<role>.graphql` (what each role can see). Regenerate with
//! `cargo run -- export-schema`.

use coachgraph::domain::kinds::Role;
use coachgraph::graphql::{self, Audience};

fn assert_fresh(path: &str, audience: Audience) {
    let expected = graphql::schema::sdl(&graphql::catalog(), audience).expect("sdl");
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(on_disk == expected, "{path} is stale: run `cargo run -- export-schema` and review the diff");
}

#[test]
fn schema_graphql_is_fresh() {
    assert_fresh("schema.graphql", Audience::Contract);
}

#[test]
fn golden_role_schemas_are_fresh() {
    assert_fresh("tests/golden/schema/anonymous.graphql", Audience::Anonymous);
    for role in Role::ALL {
        assert_fresh(&format!("tests/golden/schema/{}.graphql", role.slug()), Audience::Role(role));
    }
}

/// The root fields of `type Query` and `type Mutation` in an SDL text, with their argument
/// names.
fn root_fields(sdl: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    let mut root: Option<&str> = None;
    for line in sdl.lines() {
        let line = line.trim();
        if line.starts_with("type Query") {
            root = Some("Query");
            continue;
        }
        if line.starts_with("type Mutation") {
            root = Some("Mutation");
            continue;
        }
        if line.starts_with('}') {
            root = None;
            continue;
        }
        let Some(root) = root else { continue };
        if line.is_empty() || line.starts_with('"') || line.starts_with('#') {
            continue;
        }
        let name: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let args = match (line.find('('), line.find(')')) {
            (Some(open), Some(close)) if open < close => line[open + 1..close]
                .split(',')
                .filter_map(|a| a.split(':').next())
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
            _ => Vec::new(),
        };
        out.push((root.to_owned(), name, args));
    }
    out
}

/// Contract coverage (issue 11): every Query and Mutation field of `contract.graphql` is
/// served to at least one audience (a role, or anonymous callers), with every argument the
/// contract gives it. A field of the contract that no schema serves is a broken promise to
/// the clients written against it.
#[test]
fn every_root_field_of_the_contract_is_served_to_some_role_with_its_arguments() {
    let contract =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/spec/contract.graphql")).expect("contract");
    let promised = root_fields(&contract);
    assert!(promised.len() > 60, "parsed the contract's root fields ({})", promised.len());
    let catalog = graphql::catalog();
    let audiences = std::iter::once(Audience::Anonymous).chain(Role::ALL.into_iter().map(Audience::Role));
    let served: Vec<(String, String, Vec<String>)> =
        audiences.flat_map(|a| root_fields(&graphql::schema::sdl(&catalog, a).expect("sdl"))).collect();
    let mut missing = Vec::new();
    for (root, name, args) in &promised {
        let found = served.iter().find(|(r, n, _)| r == root && n == name);
        match found {
            None => missing.push(format!("{root}.{name}: served to no role")),
            Some((_, _, have)) => {
                for arg in args.iter().filter(|a| !have.contains(a)) {
                    missing.push(format!("{root}.{name}({arg}): argument not served"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "the contract promises what no schema serves:\n{}", missing.join("\n"));
}
