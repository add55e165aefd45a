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
