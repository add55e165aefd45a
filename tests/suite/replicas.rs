//! Two server processes over one PostgreSQL database (POLICY.md section 5: a withdrawal
//! holds "everywhere (every replica)"; section 9: logout revokes a token at once). Each
//! process has its own pool and schemas, as two replicas behind a load balancer would; what
//! one changes, the other enforces on its very next request, because nothing that decides
//! access is cached in a process: sessions, users, consents, levels and grants are read
//! again in every request's transaction. PostgreSQL only (an in-memory SQLite database
//! cannot be shared by two pools); skipped like the others when unreachable.

use axum::http::StatusCode;
use coachgraph::app::AppState;
use coachgraph::db::entities::{coaching_sessions, users};
use coachgraph::domain::kinds::SessionStatus;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::*;
use crate::consent::user_id;

async fn two_processes() -> Option<(TestApp, AppState)> {
    let app = TestApp::start(Backend::Postgres).await?;
    let second = app.second_process().await.expect("second process");
    Some((app, second))
}

async fn on(state: &AppState, token: &str, query: &str, variables: Value) -> Response {
    send_to(state, gql_request(token, query, variables)).await
}

#[tokio::test]
async fn a_consent_withdrawn_through_one_process_holds_in_the_other() {
    let Some((app, p2)) = two_processes().await else { return };
    // Demo: coachee2 grants OBSERVE and ANALYZE; its coach's level is ANALYZE.
    let coachee2 = user_id(&app, "coachee2@acme.test").await;
    let session = coaching_sessions::Entity::find()
        .filter(coaching_sessions::Column::CoacheeId.eq(coachee2))
        .filter(coaching_sessions::Column::Status.eq(SessionStatus::Completed))
        .one(&app.owner)
        .await
        .expect("q")
        .expect("session")
        .id;
    let ai = app.session_for("ai@acme.test").await;
    let goals = "query($c: ID) { goals(coacheeId: $c) { id } }";
    let read = "query($id: ID!) { session(id: $id) { id transcript } }";
    let res = on(&p2, &ai.token, goals, json!({ "c": coachee2 })).await;
    assert!(!res.body["data"]["goals"].as_array().expect("goals").is_empty(), "{}", res.body);
    let res = on(&p2, &ai.token, read, json!({ "id": session })).await;
    assert_eq!(res.body["data"]["session"]["id"], json!(session), "{}", res.body);

    // Process 1: the coachee withdraws.
    let c = app.session_for("coachee2@acme.test").await;
    let res = app.gql_vars(&c.token, "mutation { withdrawConsent(kind: SASHA_OBSERVE) { granted } }", json!({})).await;
    assert_eq!(res["data"]["withdrawConsent"]["granted"], false, "{res}");

    // Process 2, very next request: nothing, with no grace period.
    let res = on(&p2, &ai.token, goals, json!({ "c": coachee2 })).await;
    assert_eq!(res.body["data"]["goals"], json!([]), "{}", res.body);
    let res = on(&p2, &ai.token, read, json!({ "id": session })).await;
    assert!(res.body["data"]["session"].is_null(), "{}", res.body);
    assert_eq!(res.error_code(), Some("CONSENT_REQUIRED"), "{}", res.body);
}

#[tokio::test]
async fn a_logout_through_one_process_is_refused_by_the_other() {
    let Some((app, p2)) = two_processes().await else { return };
    let s = app.login("coach1@acme.test").await;
    let res = on(&p2, &s.token, "{ viewer { id } }", json!({})).await;
    assert_eq!(res.body["data"]["viewer"]["id"], json!(s.user_id), "{}", res.body);

    let res = app.gql(&s.token, "mutation { logout }").await;
    assert_eq!(res["data"]["logout"], true, "{res}");

    let res = on(&p2, &s.token, "{ viewer { id } }", json!({})).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    assert_eq!(res.error_code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn a_deactivated_user_is_refused_by_the_other_process() {
    let Some((app, p2)) = two_processes().await else { return };
    let s = app.session_for("coach2@acme.test").await;
    let res = on(&p2, &s.token, "{ me { email } }", json!({})).await;
    assert_eq!(res.body["data"]["me"]["email"], "coach2@acme.test", "{}", res.body);

    // Deactivated behind both processes' backs (as `deactivateUser` through process 1 would).
    let id: Uuid = s.user_id.parse().expect("uuid");
    let affected = users::Entity::update_many()
        .col_expr(users::Column::Status, sea_orm::sea_query::Expr::value("DEACTIVATED"))
        .filter(users::Column::Id.eq(id))
        .exec(&app.owner)
        .await
        .expect("deactivate")
        .rows_affected;
    assert_eq!(affected, 1);

    let res = on(&p2, &s.token, "{ me { email } }", json!({})).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    assert_eq!(res.error_code(), Some("UNAUTHENTICATED"));
    let res = app.post(&Auth::Bearer(s.token.clone()), "{ me { email } }", json!({})).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "process 1 alike");

    // The same through the API: an admin deactivates a coachee through process 1.
    let c = app.session_for("coachee3@acme.test").await;
    assert_eq!(on(&p2, &c.token, "{ me { email } }", json!({})).await.status, StatusCode::OK);
    let admin = app.session_for("admin1@acme.test").await;
    let res =
        app.gql_vars(&admin.token, "mutation($id: ID!) { deactivateUser(id: $id) }", json!({ "id": c.user_id })).await;
    assert_eq!(res["data"]["deactivateUser"], true, "{res}");
    let res = on(&p2, &c.token, "{ me { email } }", json!({})).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
}

#[tokio::test]
async fn a_break_glass_grant_revoked_through_one_process_is_refused_by_the_other() {
    let Some((app, p2)) = two_processes().await else { return };
    let coachee = user_id(&app, "coachee1@acme.test").await;
    let a1 = app.session_for("admin1@acme.test").await;
    let a2 = app.session_for("admin2@acme.test").await;
    let request = "mutation($c: ID!) { requestBreakGlass(coacheeId: $c, reason: \"Urgent safeguarding review\", minutes: 30) { id } }";
    let res = on(&p2, &a1.token, request, json!({ "c": coachee })).await;
    let id = res.body["data"]["requestBreakGlass"]["id"].clone();
    assert!(id.is_string(), "{}", res.body);
    let res = app
        .gql_vars(&a2.token, "mutation($id: ID!) { approveBreakGlass(id: $id) { active } }", json!({ "id": id }))
        .await;
    assert_eq!(res["data"]["approveBreakGlass"]["active"], true, "{res}");

    let goals = "query($c: ID!) { user(id: $c) { goals { id } } }";
    let res = on(&p2, &a1.token, goals, json!({ "c": coachee })).await;
    assert!(!res.body["data"]["user"]["goals"].as_array().expect("goals").is_empty(), "{}", res.body);

    let res = app
        .gql_vars(&a2.token, "mutation($id: ID!) { revokeBreakGlass(id: $id) { active } }", json!({ "id": id }))
        .await;
    assert_eq!(res["data"]["revokeBreakGlass"]["active"], false, "{res}");
    let res = on(&p2, &a1.token, goals, json!({ "c": coachee })).await;
    assert_eq!(res.body["errors"][0]["message"], "Unknown field \"goals\" on type \"User\".", "{}", res.body);
}
