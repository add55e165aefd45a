//! Paging: cursors are sealed keyset positions. Following `endCursor` walks a list without
//! repeating or skipping a row, at the root and nested under each parent; a forged,
//! edited or foreign cursor is `BAD_USER_INPUT`, never a 500 and never someone else's rows.

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

fn ids(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no list at {pointer}: {v}"))
        .iter()
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .collect()
}

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

const ROOT: &str = "query($after: String) { sessions(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } }";

async fn following_end_cursors_walks_a_root_list_once(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await.token;
    let everything = app.gql(&coach, "{ sessions(first: 100) { totalCount nodes { id } } }").await;
    let all = ids(&everything, "/data/sessions/nodes");
    assert!(all.len() > 4, "{everything}");
    let (mut walked, mut after) = (Vec::new(), Value::Null);
    loop {
        let page = app.gql_vars(&coach, ROOT, json!({ "after": after })).await;
        assert!(page["errors"].is_null(), "{page}");
        assert_eq!(page["data"]["sessions"]["totalCount"], json!(all.len()), "the total of the whole list, every page");
        walked.extend(ids(&page, "/data/sessions/nodes"));
        let info = &page["data"]["sessions"]["pageInfo"];
        if info["hasNextPage"] != json!(true) {
            break;
        }
        after = info["endCursor"].clone();
    }
    assert_eq!(walked, all, "pages follow each other without gaps or repeats");
}
both_backends!(following_end_cursors_walks_a_root_list_once, following_end_cursors_walks_a_root_list_once);

const NESTED: &str = "query($after: String) { coachees(first: 1) { nodes { id sessions(first: 1, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } } } }";

async fn following_end_cursors_walks_a_nested_list_once(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await.token;
    let whole = app.gql(&coach, "{ coachees(first: 1) { nodes { sessions(first: 100) { nodes { id } } } } }").await;
    let all = ids(&whole, "/data/coachees/nodes/0/sessions/nodes");
    assert!(all.len() >= 2, "{whole}");
    let (mut walked, mut after) = (Vec::new(), Value::Null);
    loop {
        let page = app.gql_vars(&coach, NESTED, json!({ "after": after })).await;
        assert!(page["errors"].is_null(), "{page}");
        let sessions = &page["data"]["coachees"]["nodes"][0]["sessions"];
        assert_eq!(sessions["totalCount"], json!(all.len()));
        walked.extend(ids(&page, "/data/coachees/nodes/0/sessions/nodes"));
        if sessions["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = sessions["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(walked, all);
}
both_backends!(following_end_cursors_walks_a_nested_list_once, following_end_cursors_walks_a_nested_list_once);

async fn forged_edited_or_foreign_cursors_are_bad_input(app: &TestApp) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let coach = app.session_for("coach1@acme.test").await.token;
    let first = app.gql_vars(&coach, ROOT, json!({ "after": null })).await;
    let cursor = first["data"]["sessions"]["pageInfo"]["endCursor"].as_str().expect("cursor").to_owned();
    let mut edited = URL_SAFE_NO_PAD.decode(&cursor).expect("base64");
    edited[5] ^= 0x01;
    let old_style = URL_SAFE_NO_PAD.encode("o:1");
    let items = app.gql(&coach, "{ actionItems(first: 1) { pageInfo { endCursor } } }").await;
    let foreign = items["data"]["actionItems"]["pageInfo"]["endCursor"].as_str().expect("items cursor").to_owned();
    for bad in [URL_SAFE_NO_PAD.encode(&edited), old_style, foreign, "not a cursor".to_owned(), "x".repeat(5000)] {
        let answer = app.gql_vars(&coach, ROOT, json!({ "after": bad })).await;
        assert_eq!(code(&answer), "BAD_USER_INPUT", "{bad}: {answer}");
        assert!(answer["data"].is_null() || answer["data"]["sessions"].is_null(), "{answer}");
        let nested = app.gql_vars(&coach, NESTED, json!({ "after": bad })).await;
        assert_eq!(code(&nested), "BAD_USER_INPUT", "{bad}: {nested}");
    }
}
both_backends!(forged_edited_or_foreign_cursors_are_bad_input, forged_edited_or_foreign_cursors_are_bad_input);

async fn another_coachs_cursor_opens_nothing_of_theirs(app: &TestApp) {
    // A cursor is only a position: it carries no grant. coach2 following coach1's cursor
    // still sees only its own coachees' sessions.
    let coach1 = app.session_for("coach1@acme.test").await.token;
    let coach2 = app.session_for("coach2@acme.test").await.token;
    let mine = app.gql(&coach1, "{ sessions(first: 100) { nodes { id } } }").await;
    let mine = ids(&mine, "/data/sessions/nodes");
    let page = app.gql_vars(&coach1, ROOT, json!({ "after": null })).await;
    let cursor = page["data"]["sessions"]["pageInfo"]["endCursor"].clone();
    let theirs = app.gql_vars(&coach2, ROOT, json!({ "after": cursor })).await;
    assert!(theirs["errors"].is_null(), "{theirs}");
    for id in ids(&theirs, "/data/sessions/nodes") {
        assert!(!mine.contains(&id), "coach2 got coach1's session {id}");
    }
}
both_backends!(another_coachs_cursor_opens_nothing_of_theirs, another_coachs_cursor_opens_nothing_of_theirs);
