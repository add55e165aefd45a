//! Persisted operations (issue 9): automatic persisted queries (the Apollo APQ protocol)
//! and the safelist mode for production, where only operations registered by hash (files
//! in a folder) run. Unknown or unlisted operations are refused before any SQL.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use coachgraph::graphql::persisted::sha256_hex;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;
use crate::limits::{refused_before_sql, runs, still_answers, with};

const QUERY: &str = "{ viewer { id role } }";

/// A POST with `extensions.persistedQuery` (and the query text unless `None`).
fn apq_request(token: &str, query: Option<&str>, hash: &str) -> Request<Body> {
    let mut body = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
    if let Some(query) = query {
        body["query"] = Value::String(query.to_owned());
    }
    Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, GRAPHQL_RESPONSE)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .expect("request")
}

async fn an_unknown_persisted_query_hash_is_refused_then_registered_with_its_text(app: &TestApp) {
    let token = app.session_for("coach1@acme.test").await.token;
    let state = app.state.clone();
    let hash = sha256_hex(QUERY);
    // Unknown hash: the client is told to send the text.
    let res = refused_before_sql(app, &state, apq_request(&token, None, &hash), "PERSISTED_QUERY_NOT_FOUND").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    // Text and hash: verified, run and registered.
    let first = send_to(&state, apq_request(&token, Some(QUERY), &hash)).await;
    assert_eq!(first.body["data"]["viewer"]["role"], "COACH", "{}", first.body);
    // From now on the hash alone runs it.
    let again = send_to(&state, apq_request(&token, None, &hash)).await;
    assert_eq!(again.body, first.body);
    // A text that does not have the hash sent with it is refused and not registered.
    let other = "{ viewer { id } }";
    refused_before_sql(app, &state, apq_request(&token, Some(other), &hash), "PERSISTED_QUERY_HASH_MISMATCH").await;
    refused_before_sql(app, &state, apq_request(&token, None, &sha256_hex(other)), "PERSISTED_QUERY_NOT_FOUND").await;
    refused_before_sql(app, &state, apq_request(&token, None, "not-a-hash"), "PERSISTED_QUERY_INVALID").await;
    // A document over a limit is not registered either.
    let deep = format!("{{ viewer {{ id }} {} }}", "__typename @include(if: true) ".repeat(51));
    refused_before_sql(app, &state, apq_request(&token, Some(&deep), &sha256_hex(&deep)), "TOO_MANY_DIRECTIVES").await;
    refused_before_sql(app, &state, apq_request(&token, None, &sha256_hex(&deep)), "PERSISTED_QUERY_NOT_FOUND").await;
    // APQ off: persisted queries are refused with their own code.
    let off = with(app, |s| s.apq_capacity = 0);
    refused_before_sql(app, &off, apq_request(&token, None, &hash), "PERSISTED_QUERY_NOT_SUPPORTED").await;
    still_answers(&state, &token).await;
}
both_backends!(
    an_unknown_persisted_query_hash_is_refused_then_registered_with_its_text,
    an_unknown_persisted_query_hash_is_refused_then_registered_with_its_text
);

async fn in_safelist_mode_only_the_folders_operations_run(app: &TestApp) {
    let dir = std::env::temp_dir().join(format!("cg-safelist-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/spec/workloads/coach_dashboard.graphql"),
    )
    .expect("workload");
    std::fs::write(dir.join("coach_dashboard.graphql"), &dashboard).expect("write");
    std::fs::write(dir.join("viewer.graphql"), format!("{QUERY}\n")).expect("write");
    std::fs::write(dir.join("notes.txt"), "{ me { id } }").expect("write");
    let state = with(app, |s| s.safelist_dir = Some(dir.clone()));
    let token = app.session_for("coach1@acme.test").await.token;

    // Listed: as text (exact file, or without the editor's final newline) and by hash.
    runs(&state, &token, &dashboard, json!({})).await;
    runs(&state, &token, QUERY, json!({})).await;
    let by_hash = send_to(&state, apq_request(&token, None, &sha256_hex(&dashboard))).await;
    assert!(by_hash.body["errors"].is_null() && by_hash.body["data"]["coachees"].is_object(), "{}", by_hash.body);
    // Anything else: refused before any SQL, whether sent as text, by hash or with its hash.
    let other = "{ me { id } }";
    refused_before_sql(app, &state, gql_request(&token, other, json!({})), "OPERATION_NOT_SAFELISTED").await;
    refused_before_sql(app, &state, apq_request(&token, None, &sha256_hex(other)), "OPERATION_NOT_SAFELISTED").await;
    refused_before_sql(app, &state, apq_request(&token, Some(other), &sha256_hex(other)), "OPERATION_NOT_SAFELISTED")
        .await;
    // A listed operation with an edit is another operation.
    let edited = dashboard.replace("first: 25", "first: 26");
    refused_before_sql(app, &state, gql_request(&token, &edited, json!({})), "OPERATION_NOT_SAFELISTED").await;
    // Anonymous callers too (a login form would be listed like any operation).
    let anonymous = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({ "query": "mutation { login(email: \"a@b.c\", password: \"x\") { token } }" }).to_string(),
        ))
        .expect("request");
    refused_before_sql(app, &state, anonymous, "OPERATION_NOT_SAFELISTED").await;
    still_answers(&state, &token).await;
    let _ = std::fs::remove_dir_all(&dir);
}
both_backends!(in_safelist_mode_only_the_folders_operations_run, in_safelist_mode_only_the_folders_operations_run);
