//! GraphQL over HTTP (issue 10, item 6): the response media type is negotiated; a refused
//! operation is a request error (HTTP 400 in application/graphql-response+json, 200 in
//! application/json) without a `data` entry; every refusal, of a malformed request too, is
//! GraphQL JSON with a code and a readable message; every field error has its path; the
//! custom scalars name their specification. `tests/http-audit/run` runs graphql-http's own
//! audit against a live server.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

const JSON: &str = "application/json";

fn post(
    accept: Option<&str>,
    content_type: Option<&str>,
    bearer: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut req = Request::post("/graphql");
    if let Some(accept) = accept {
        req = req.header(header::ACCEPT, accept);
    }
    if let Some(content_type) = content_type {
        req = req.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(token) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    req.body(body.into()).expect("request")
}

fn query(accept: Option<&str>, bearer: Option<&str>, query: &str, variables: Value) -> Request<Body> {
    post(accept, Some(JSON), bearer, json!({ "query": query, "variables": variables }).to_string())
}

fn content_type(res: &Response) -> &str {
    res.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A refusal as GraphQL-over-HTTP wants it: JSON, `errors` only (nothing ran: no `data` entry),
/// one error with a readable message and a code; the security headers as on every answer.
fn assert_refusal(res: &Response, status: StatusCode, code: &str) {
    assert_eq!(res.status, status, "{}", res.body);
    assert!(res.body.is_object(), "a JSON body: {:?}", res.body);
    assert!(res.body.get("data").is_none(), "no data entry: {}", res.body);
    assert_eq!(res.error_code(), Some(code), "{}", res.body);
    let message = res.body["errors"][0]["message"].as_str().expect("a message");
    for debug in ["Error(", "Some(", "{ ", "\\n", "panicked", "SELECT"] {
        assert!(!message.contains(debug), "a plain message, not debug text: {message}");
    }
    assert!(content_type(res).contains("json"), "{}", content_type(res));
    assert_eq!(res.headers.get(header::X_CONTENT_TYPE_OPTIONS).map(|v| v.as_bytes()), Some(&b"nosniff"[..]));
    assert!(res.headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_media_type_is_negotiated() {
    let app = TestApp::start(Backend::Sqlite).await.expect("app");
    for (accept, expected) in [
        (None, JSON),
        (Some("application/json"), JSON),
        (Some("*/*"), JSON),
        (Some("application/json; charset=utf-8"), JSON),
        (Some(GRAPHQL_RESPONSE), GRAPHQL_RESPONSE),
        (Some("application/graphql-response+json, application/json"), GRAPHQL_RESPONSE),
        (Some("application/json, application/graphql-response+json"), JSON),
        (Some("application/json;q=0.5, application/graphql-response+json"), GRAPHQL_RESPONSE),
        (Some("text/html, application/graphql-response+json;q=0.9, */*;q=0.1"), GRAPHQL_RESPONSE),
    ] {
        let res = app.send(query(accept, None, "{ __typename }", json!({}))).await;
        assert_eq!(res.status, StatusCode::OK, "{accept:?}: {}", res.body);
        assert_eq!(res.body, json!({ "data": { "__typename": "Query" } }), "{accept:?}");
        assert_eq!(content_type(&res), format!("{expected}; charset=utf-8"), "{accept:?}");
    }
    // Neither is acceptable: 406, in JSON all the same, before anything is read.
    for accept in ["text/html", "application/xml", "application/json;q=0", "application/json; charset=iso-8859-1"] {
        let res = app.send(query(Some(accept), None, "{ __typename }", json!({}))).await;
        assert_refusal(&res, StatusCode::NOT_ACCEPTABLE, "NOT_ACCEPTABLE");
        assert!(content_type(&res).starts_with(JSON), "{accept}");
    }
    // GET queries work too, negotiated alike.
    let get = |accept: &str| {
        Request::get("/graphql?query=%7B%20__typename%20%7D")
            .header(header::ACCEPT, accept)
            .body(Body::empty())
            .expect("request")
    };
    let res = app.send(get(GRAPHQL_RESPONSE)).await;
    assert_eq!((res.status, content_type(&res)), (StatusCode::OK, "application/graphql-response+json; charset=utf-8"));
    assert_eq!(res.body["data"]["__typename"], "Query");
    let res = app.send(get(JSON)).await;
    assert_eq!((res.status, content_type(&res)), (StatusCode::OK, "application/json; charset=utf-8"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_does_not_parse_is_a_request_error_without_data() {
    let app = TestApp::start(Backend::Sqlite).await.expect("app");
    for (accept, status) in [(GRAPHQL_RESPONSE, StatusCode::BAD_REQUEST), (JSON, StatusCode::OK)] {
        let res = app.send(query(Some(accept), None, "{ viewer { id }", json!({}))).await;
        assert_refusal(&res, status, "GRAPHQL_PARSE_FAILED");
        let error = &res.body["errors"][0];
        assert_eq!(error["message"], "the query is not valid GraphQL: expected selection at 1:16", "{}", res.body);
        assert_eq!(error["locations"], json!([{ "line": 1, "column": 16 }]), "{}", res.body);
    }
    // So are the perimeter's refusals of a document: a request error, coded.
    let deep = format!("{}{}", "{ viewer ".repeat(20), "}".repeat(20));
    for (accept, status) in [(GRAPHQL_RESPONSE, StatusCode::BAD_REQUEST), (JSON, StatusCode::OK)] {
        let res = app.send(query(Some(accept), None, &deep, json!({}))).await;
        assert_refusal(&res, status, "QUERY_TOO_DEEP");
    }
}

async fn validation_failures_are_coded_request_errors_and_hidden_fields_are_audited(app: &TestApp) {
    let token = app.session_for("coach1@acme.test").await.token;
    for (accept, status) in [(GRAPHQL_RESPONSE, StatusCode::BAD_REQUEST), (JSON, StatusCode::OK)] {
        let res = app.send(query(Some(accept), Some(&token), "{ viewer { id rol } }", json!({}))).await;
        assert_refusal(&res, status, "GRAPHQL_VALIDATION_FAILED");
        let error = &res.body["errors"][0];
        // The typo's message, and no "did you mean" (suggestions are off: they would name
        // fields, hidden ones included).
        assert_eq!(error["message"], "Unknown field \"rol\" on type \"Viewer\".", "{}", res.body);
        assert_eq!(error["locations"], json!([{ "line": 1, "column": 15 }]), "{}", res.body);
        // A variable that does not coerce: the same.
        let res = app
            .send(query(
                Some(accept),
                Some(&token),
                "query($id: ID!) { session(id: $id) { id } }",
                json!({ "id": null }),
            ))
            .await;
        assert_refusal(&res, status, "GRAPHQL_VALIDATION_FAILED");
    }
    // A field outside the role's schema reads like a typo, coded alike, and is audited.
    let outside =
        "SELECT count(*) FROM audit_events WHERE outcome = 'DENIED' AND reason LIKE '%Query.accountStatus is outside%'";
    let before = app.count(outside).await;
    let res = app
        .send(query(Some(GRAPHQL_RESPONSE), Some(&token), "{ accountStatus(userId: \"x\") { active } }", json!({})))
        .await;
    assert_refusal(&res, StatusCode::BAD_REQUEST, "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(res.body["errors"][0]["message"], "Unknown field \"accountStatus\" on type \"Query\".");
    assert_eq!(app.count(outside).await, before + 1, "the probe is audited");
}
both_backends!(
    validation_failures_are_coded_request_errors_and_hidden_fields_are_audited,
    validation_failures_are_coded_request_errors_and_hidden_fields_are_audited
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_are_not_graphql_requests_are_answered_in_graphql_json() {
    let app = TestApp::start(Backend::Sqlite).await.expect("app");
    // A bearer token (never checked: these are refused before any credential is looked at),
    // so the login CSRF check does not answer first.
    let token = Some("not-a-token");
    let accepts = [None, Some(GRAPHQL_RESPONSE)];
    for accept in accepts {
        let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
            (post(accept, Some(JSON), token, "{ \"not a JSON"), StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            (post(accept, Some(JSON), token, ""), StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            (post(accept, Some(JSON), token, "\"{ __typename }\""), StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            (post(accept, Some(JSON), token, r#"{"qeury": "{ __typename }"}"#), StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            (post(accept, Some(JSON), token, r#"{"query": 0}"#), StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            (post(accept, Some(JSON), token, r#"{"query": ["{ a }"]}"#), StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            (
                post(accept, Some(JSON), token, r#"{"query": "{ __typename }", "variables": "x"}"#),
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                post(accept, Some(JSON), token, r#"{"query": "{ __typename }", "operationName": false}"#),
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                post(accept, Some(JSON), token, r#"{"query": "{ __typename }", "extensions": []}"#),
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                post(accept, Some(JSON), token, r#"[{"query": "{ __typename }"}]"#),
                StatusCode::BAD_REQUEST,
                "BATCHING_NOT_SUPPORTED",
            ),
            (
                post(accept, Some("application/graphql"), token, "{ __typename }"),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "BAD_USER_INPUT",
            ),
            (
                post(accept, Some("text/plain"), token, r#"{"query": "{ __typename }"}"#),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "BAD_USER_INPUT",
            ),
            (
                post(accept, Some("application/json; charset=latin1"), token, r#"{"query": "{ __typename }"}"#),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "BAD_USER_INPUT",
            ),
            (
                post(accept, None, token, r#"{"query": "{ __typename }"}"#),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "BAD_USER_INPUT",
            ),
            // Anonymous, not JSON: the login CSRF check's 415, in the same shape.
            (
                post(accept, Some("text/plain"), None, r#"{"query": "{ __typename }"}"#),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "BAD_USER_INPUT",
            ),
        ];
        for (req, status, code) in cases {
            let res = app.send(req).await;
            assert_refusal(&res, status, code);
            let expected = accept.unwrap_or(JSON);
            assert!(content_type(&res).starts_with(expected), "{accept:?}: {}", content_type(&res));
        }
        // Over the body limit (256 KiB): declared by Content-Length, or found while reading.
        let big = format!(r#"{{"query": "{{ __typename }}", "extensions": {{"pad": "{}"}}}}"#, "x".repeat(300 * 1024));
        let mut declared = post(accept, Some(JSON), token, big.clone());
        declared.headers_mut().insert(header::CONTENT_LENGTH, big.len().into());
        assert_refusal(&app.send(declared).await, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
        let streamed = post(accept, Some(JSON), token, big);
        assert_refusal(&app.send(streamed).await, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    }
    // GET: the query in the URL, variables and extensions as JSON strings.
    for (uri, code) in [
        ("/graphql", "BAD_REQUEST"),
        ("/graphql?operationName=x", "BAD_REQUEST"),
        ("/graphql?query=%7B__typename%7D&variables=nope", "BAD_REQUEST"),
        ("/graphql?query=%7B__typename%7D&query=%7B__typename%7D", "BAD_REQUEST"),
    ] {
        let res = app.send(Request::get(uri).body(Body::empty()).expect("request")).await;
        assert_refusal(&res, StatusCode::BAD_REQUEST, code);
    }
    // A mutation over GET: 405, saying which method would do.
    let res =
        app.send(Request::get("/graphql?query=mutation%7B__typename%7D").body(Body::empty()).expect("request")).await;
    assert_refusal(&res, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    assert_eq!(res.headers.get(header::ALLOW).map(|v| v.as_bytes()), Some(&b"POST"[..]));
    // The router's own answers: another method on /graphql, an unknown route.
    for method in ["PUT", "DELETE", "PATCH"] {
        let req = Request::builder().method(method).uri("/graphql").body(Body::empty()).expect("request");
        let res = app.send(req).await;
        assert_refusal(&res, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
        let allow = res.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(allow.contains("GET") && allow.contains("POST"), "{method}: Allow {allow}");
    }
    let res = app.send(Request::get("/no-such-route").body(Body::empty()).expect("request")).await;
    assert_refusal(&res, StatusCode::NOT_FOUND, "NOT_FOUND");
    let res = app.send(Request::post("/healthz").body(Body::empty()).expect("request")).await;
    assert_refusal(&res, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
}

async fn every_field_error_has_its_path(app: &TestApp) {
    // A non-null root field refused (async-graphql's dynamic executor reports these without
    // a path; the server adds it): the operation ran, so it is 200 in both media types, and
    // the one error says where.
    for accept in [GRAPHQL_RESPONSE, JSON] {
        let res = app.send(query(Some(accept), None, "{ viewer { id } }", json!({}))).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.error_code(), Some("UNAUTHENTICATED"), "{}", res.body);
        assert_eq!(res.body["errors"][0]["path"], json!(["viewer"]), "{}", res.body);
        assert_eq!(res.body["errors"].as_array().map(Vec::len), Some(1), "one error: {}", res.body);
        assert!(res.body.get("data").is_some(), "the operation ran: {}", res.body);
        let res = app.send(query(Some(accept), None, "{ who: viewer { id } }", json!({}))).await;
        assert_eq!(res.body["errors"][0]["path"], json!(["who"]), "by its alias: {}", res.body);
    }
    // A nullable field refused on one row of a list: null, and its error's path has the index.
    let coach = app.session_for("coach1@acme.test").await.token;
    let res = app.gql(&coach, "{ sessions(first: 10) { nodes { id transcript } } }").await;
    let errors = res["errors"].as_array().expect("some transcripts are refused");
    assert!(!errors.is_empty(), "{res}");
    for error in errors {
        let path = error["path"].as_array().expect("a path");
        assert_eq!(path.len(), 4, "{error}");
        assert_eq!((&path[0], &path[1], &path[3]), (&json!("sessions"), &json!("nodes"), &json!("transcript")));
        let row = path[2].as_u64().expect("an index") as usize;
        assert!(res["data"]["sessions"]["nodes"][row]["transcript"].is_null(), "{res}");
    }
}
both_backends!(every_field_error_has_its_path, every_field_error_has_its_path);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_date_scalars_name_their_specification() {
    const DATE_TIME: &str = "https://www.rfc-editor.org/rfc/rfc3339#section-5.6";
    const DATE: &str = "https://scalars.graphql.org/andimarek/local-date";
    let sdl = std::fs::read_to_string("schema.graphql").expect("schema.graphql");
    assert!(sdl.contains(&format!("scalar DateTime @specifiedBy(url: \"{DATE_TIME}\")")), "DateTime");
    assert!(sdl.contains(&format!("scalar Date @specifiedBy(url: \"{DATE}\")")), "Date");
    // And introspection says so, in the schema a caller is served.
    let app = TestApp::start(Backend::Sqlite).await.expect("app");
    let res = app.send(query(None, None, "{ __type(name: \"DateTime\") { specifiedByURL } }", json!({}))).await;
    assert_eq!(res.body["data"]["__type"]["specifiedByURL"], DATE_TIME, "{}", res.body);
}
