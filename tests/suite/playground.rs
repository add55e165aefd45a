//! The development playground: its bundled page and assets (served from the binary, with a
//! CSP allowing only this origin), the demo account list, and the schema view's endpoint
//! (the caller's own role only, signed-in callers only). None of it exists in production.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clap::Parser;
use coachgraph::app::HttpSettings;
use serde_json::{Value, json};
use sha2::Digest;

use crate::both_backends;
use crate::common::*;

const ASSETS: [(&str, &str); 3] = [
    ("/playground/assets/playground.js", "text/javascript"),
    ("/playground/assets/playground.css", "text/css"),
    ("/playground/THIRD_PARTY_LICENSES.txt", "text/plain"),
];

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

fn get_as(path: &str, token: &str) -> Request<Body> {
    Request::get(path).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).expect("request")
}

fn production() -> HttpSettings {
    let cli = coachgraph::config::Cli::try_parse_from(["coachgraph", "--mode", "production"]).expect("arguments");
    HttpSettings::from_config(&cli.serve_config())
}

#[tokio::test]
async fn the_playground_page_loads_only_its_own_bundled_assets_under_a_self_only_csp() {
    let app = TestApp::start(Backend::Sqlite).await.expect("app");
    let first = app.send(get("/")).await;
    assert_eq!(first.status, StatusCode::OK);
    let html = first.body.as_str().expect("html").to_owned();
    let csp = first.headers.get(header::CONTENT_SECURITY_POLICY).expect("a CSP").to_str().expect("ascii").to_owned();
    for directive in ["default-src 'none'", "script-src 'self';", "connect-src 'self';", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-") && !csp.contains("http"), "{csp}");
    // No inline script or style: the bundle is files of this origin. CodeMirror's own style
    // elements carry the nonce of the response, which the page names in its meta tag.
    assert!(!html.contains("<style") && !html.contains("style="), "inline style in the page");
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script type=\"module\" crossorigin src=\"/playground/").count()
    );
    let nonce = csp.split("'nonce-").nth(1).and_then(|r| r.split('\'').next()).expect("a style nonce");
    assert!(nonce.len() >= 32 && html.contains(&format!("<meta name=\"csp-nonce\" content=\"{nonce}\">")), "{nonce}");
    let second = app.send(get("/playground")).await;
    let other = second.headers.get(header::CONTENT_SECURITY_POLICY).expect("CSP").to_str().expect("ascii");
    assert_ne!(other, csp, "a fresh nonce per response");
    // Every file the page names is served, with its content type.
    for (path, content_type) in ASSETS {
        if path.ends_with(".js") || path.ends_with(".css") {
            assert!(html.contains(path), "the page loads {path}");
        }
        let res = app.send(get(path)).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        let served = res.headers.get(header::CONTENT_TYPE).expect("content type").to_str().expect("ascii");
        assert!(served.starts_with(content_type), "{path}: {served}");
        assert_eq!(res.headers.get(header::X_CONTENT_TYPE_OPTIONS).expect("nosniff"), "nosniff");
    }
    assert_eq!(app.send(get("/playground/assets/other.js")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn production_mode_serves_no_playground_page_asset_account_list_or_schema_view() {
    let app = TestApp::start(Backend::Sqlite).await.expect("app");
    let token = app.session_for("coach1@acme.test").await.token;
    let state = app.state.clone().with_settings(production()).expect("state");
    let paths = ["/", "/playground", "/playground/accounts.json", "/playground/schema.json"];
    for path in paths.into_iter().chain(ASSETS.map(|(p, _)| p)) {
        assert_eq!(send_to(&state, get_as(path, &token)).await.status, StatusCode::NOT_FOUND, "{path}");
        // In development each of them answers.
        assert_eq!(app.send(get_as(path, &token)).await.status, StatusCode::OK, "{path} in development");
    }
}

async fn the_account_list_names_every_demo_account_by_tenant_and_role_and_each_signs_in(app: &TestApp) {
    let res = app.send(get("/playground/accounts.json")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["password"], DEMO_PASSWORD);
    let tenants = res.body["tenants"].as_array().expect("tenants");
    let names: Vec<&str> = tenants.iter().map(|t| t["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["acme", "globex", "platform (no tenant)"]);
    let accounts: Vec<(&str, &str)> = tenants
        .iter()
        .flat_map(|t| t["accounts"].as_array().expect("accounts"))
        .map(|a| (a["email"].as_str().expect("email"), a["role"].as_str().expect("role")))
        .collect();
    assert_eq!(accounts.len(), 2 * 18 + 1);
    for expected in [
        ("admin2@acme.test", "PROGRAM_ADMIN"),
        ("coach2@globex.test", "COACH"),
        ("coachee12@acme.test", "COACHEE"),
        ("ai@globex.test", "AI_AGENT"),
        ("root@coachgraph.test", "SYSTEM_ADMIN"),
    ] {
        assert!(accounts.contains(&expected), "{expected:?} missing");
    }
    // Each is a real account of that role (its role as the database has it).
    for (email, role) in &accounts {
        let token = app.session_for(email).await.token;
        let viewer = app.gql(&token, "{ viewer { role } }").await;
        assert_eq!(viewer["data"]["viewer"]["role"], *role, "{email}");
    }
    // And the listed password is the one that signs them in (one real PBKDF2 login).
    let login = app.login_full("admin2@globex.test", res.body["password"].as_str().expect("password")).await;
    assert_eq!(login.body["data"]["login"]["viewer"]["role"], "PROGRAM_ADMIN", "{}", login.body);
}
both_backends!(
    the_account_list_names_every_demo_account_by_tenant_and_role_and_each_signs_in,
    the_account_list_names_every_demo_account_by_tenant_and_role_and_each_signs_in
);

fn golden_sdl(role_slug: &str) -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/schema/{role_slug}.graphql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn field<'a>(view: &'a Value, ty: &str, name: &str) -> Option<&'a Value> {
    view["types"].as_array()?.iter().find(|t| t["name"] == ty)?["fields"].as_array()?.iter().find(|f| f["name"] == name)
}

async fn the_schema_view_answers_a_signed_in_caller_with_its_own_roles_sdl_tags_and_roles(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await;
    let res = app.send(get_as("/playground/schema.json", &coach.token)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["role"], "COACH");
    assert_eq!(res.body["sdl"].as_str().expect("sdl"), golden_sdl("coach"));
    let notes = field(&res.body, "User", "coachNotes").expect("User.coachNotes in the coach's view");
    assert_eq!(notes["tag"], "COACH_ONLY");
    let roles: Vec<&str> = notes["roles"].as_array().expect("roles").iter().filter_map(Value::as_str).collect();
    // As in tests/golden/schema: the coach's and the AI agent's (its rows gated by consent).
    assert_eq!(roles, ["COACH", "AI_AGENT"]);
    assert_eq!(field(&res.body, "User", "displayName").expect("displayName")["tag"], "CLIENT_VISIBLE");
    assert_eq!(field(&res.body, "Query", "viewer").expect("viewer")["kind"], "root");
    // Only what the coach's schema has: no platform configuration, no other role's fields.
    assert!(field(&res.body, "Query", "systemConfig").is_none());
    let tags: std::collections::BTreeSet<&str> = res.body["types"]
        .as_array()
        .expect("types")
        .iter()
        .flat_map(|t| t["fields"].as_array().expect("fields"))
        .filter_map(|f| f["tag"].as_str())
        .collect();
    assert_eq!(tags.into_iter().collect::<Vec<_>>(), ["CLIENT_VISIBLE", "COACH_ONLY"]);

    // A coachee, with the cookie session (a GET needs no CSRF token): its own role's view,
    // without the coach's fields.
    let coachee = app.session_for("coachee1@acme.test").await;
    let by_cookie = Request::get("/playground/schema.json")
        .header(header::COOKIE, format!("{}={}", coachgraph::http::SESSION_COOKIE, coachee.token))
        .body(Body::empty())
        .expect("request");
    let res = app.send(by_cookie).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["role"], "COACHEE");
    assert_eq!(res.body["sdl"].as_str().expect("sdl"), golden_sdl("coachee"));
    assert!(field(&res.body, "User", "coachNotes").is_none());

    // The AI agent, like on /graphql, must declare its model and purpose.
    let ai = app.session_for("ai@acme.test").await.token;
    let res = app.send(get_as("/playground/schema.json", &ai)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"));
    let declared = Request::get("/playground/schema.json")
        .header(header::AUTHORIZATION, format!("Bearer {ai}"))
        .header("x-ai-model", "test-model")
        .header("x-ai-purpose", "test-purpose")
        .body(Body::empty())
        .expect("request");
    assert_eq!(app.send(declared).await.body["role"], "AI_AGENT");
}
both_backends!(
    the_schema_view_answers_a_signed_in_caller_with_its_own_roles_sdl_tags_and_roles,
    the_schema_view_answers_a_signed_in_caller_with_its_own_roles_sdl_tags_and_roles
);

async fn the_schema_view_refuses_anonymous_callers_bad_tokens_and_ended_sessions(app: &TestApp) {
    let res = app.send(get("/playground/schema.json")).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.error_code(), Some("UNAUTHENTICATED"));
    assert!(res.body.get("role").is_none() && !res.body.to_string().contains("type Query"));
    let forged = app.send(get_as("/playground/schema.json", "not-a-token")).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let coach = app.session_for("coach1@acme.test").await.token;
    let out = app.gql(&coach, "mutation { logout }").await;
    assert_eq!(out["data"]["logout"], true, "{out}");
    let ended = app.send(get_as("/playground/schema.json", &coach)).await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED, "{}", ended.body);
    assert_eq!(
        ended.body,
        json!({"errors": [{"message": "authentication required", "extensions": {"code": "UNAUTHENTICATED"}}]})
    );
}
both_backends!(
    the_schema_view_refuses_anonymous_callers_bad_tokens_and_ended_sessions,
    the_schema_view_refuses_anonymous_callers_bad_tokens_and_ended_sessions
);

/// `playground/dist/` is checked in; `SOURCE_HASH` is the hash of the inputs it was built
/// from (playground/vite.config.js writes it), over the same files in the same order.
#[test]
fn playground_dist_is_built_from_the_current_sources() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    fn walk(root: &std::path::Path, dir: &str, pick: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(root.join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(root).expect("under root").to_string_lossy().replace('\\', "/");
            if path.is_dir() {
                walk(root, &rel, pick, out);
            } else if pick(path.file_name().and_then(|n| n.to_str()).unwrap_or("")) {
                out.push(rel);
            }
        }
    }
    let mut inputs: Vec<String> =
        ["playground/index.html", "playground/package-lock.json", "playground/vite.config.js"].map(String::from).into();
    walk(root, "playground/src", &|_| true, &mut inputs);
    walk(root, "docs/spec/workloads", &|n| n.ends_with(".graphql"), &mut inputs);
    walk(root, "tests/golden/answers", &|n| n == "query.graphql" || n == "variables.json", &mut inputs);
    inputs.sort();
    let mut hash = sha2::Sha256::new();
    for path in &inputs {
        hash.update(format!("{path}\n"));
        hash.update(std::fs::read(root.join(path)).expect("input"));
        hash.update("\n");
    }
    let now = hex::encode(hash.finalize());
    let recorded =
        std::fs::read_to_string(root.join("playground/dist/SOURCE_HASH")).expect("playground/dist/SOURCE_HASH");
    assert_eq!(
        recorded.trim(),
        now,
        "playground/dist is stale: rebuild it with `npm --prefix playground ci && npm --prefix playground run build` \
         and commit playground/dist"
    );
}
