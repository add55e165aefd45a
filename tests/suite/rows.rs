//! Rows and relationships: who reaches which coachee's data, consent gates, another
//! tenant's ids, and the audit trail of every refusal. Each on both backends.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

fn code(v: &Value) -> Option<&str> {
    v["errors"][0]["extensions"]["code"].as_str()
}

fn emails(v: &Value) -> BTreeSet<String> {
    v.as_array().expect("list").iter().map(|n| n["email"].as_str().expect("email").to_owned()).collect()
}

async fn denied(app: &TestApp, resource: &str, reason_like: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM audit_events WHERE outcome = 'DENIED' AND resource = '{resource}' AND reason LIKE '%{reason_like}%'"
    ))
    .await
}

// --- coach ------------------------------------------------------------------------------

async fn coach_lists_only_assigned_coachees(app: &TestApp) {
    let s = app.session_for("coach1@acme.test").await;
    let res = app.gql(&s.token, "{ coachees(first: 50) { totalCount nodes { email } } }").await;
    let expected: BTreeSet<String> = (1..=6).map(|i| format!("coachee{i}@acme.test")).collect();
    assert_eq!(emails(&res["data"]["coachees"]["nodes"]), expected, "{res}");
    assert_eq!(res["data"]["coachees"]["totalCount"], 6);
}
both_backends!(coach_lists_only_assigned_coachees, coach_lists_only_assigned_coachees);

async fn coach_cannot_read_unassigned_coachee_data(app: &TestApp) {
    let s = app.session_for("coach1@acme.test").await;
    let other = app.user_id("coachee7@acme.test").await;
    let other_session = app.completed_session_of("coachee7@acme.test").await;

    let res = app.gql(&s.token, &format!(r#"{{ user(id: "{other}") {{ id }} }}"#)).await;
    assert!(res["data"]["user"].is_null());
    assert_eq!(code(&res), Some("FORBIDDEN"));
    let res = app.gql(&s.token, &format!(r#"{{ session(id: "{other_session}") {{ id summary }} }}"#)).await;
    assert!(res["data"]["session"].is_null());
    assert_eq!(code(&res), Some("FORBIDDEN"));
    // Lists drop the rows silently.
    let res = app
        .gql(
            &s.token,
            &format!(
                r#"{{ sessions(coacheeId: "{other}") {{ totalCount nodes {{ id }} }}
                     goals(coacheeId: "{other}") {{ id }}
                     actionItems(coacheeId: "{other}") {{ totalCount nodes {{ id }} }} }}"#
            ),
        )
        .await;
    assert!(res["errors"].is_null(), "{res}");
    assert_eq!(res["data"]["sessions"]["totalCount"], 0);
    assert_eq!(res["data"]["goals"], json!([]));
    assert_eq!(res["data"]["actionItems"]["totalCount"], 0);
    // Every sessions row the coach gets is of an assigned coachee.
    let res = app.gql(&s.token, "{ sessions(first: 100) { totalCount nodes { coachee { email } } } }").await;
    assert_eq!(res["data"]["sessions"]["totalCount"], 18, "6 coachees x 3 sessions");
    for n in res["data"]["sessions"]["nodes"].as_array().expect("nodes") {
        let email = n["coachee"]["email"].as_str().expect("email");
        let i: u32 = email.trim_start_matches("coachee").split('@').next().expect("n").parse().expect("num");
        assert!((1..=6).contains(&i), "{email}");
    }
    // Both refusals are on record, without the data.
    assert_eq!(denied(app, "other_user_profiles", "relationship").await, 1);
    assert_eq!(denied(app, "session_metadata", "relationship").await, 1);
}
both_backends!(coach_cannot_read_unassigned_coachee_data, coach_cannot_read_unassigned_coachee_data);

async fn coach_reads_transcripts_only_with_transcript_sharing(app: &TestApp) {
    let s = app.session_for("coach1@acme.test").await;
    // Demo: odd coachees share transcripts, even ones do not.
    let shared = app.completed_session_of("coachee1@acme.test").await;
    let not_shared = app.completed_session_of("coachee2@acme.test").await;
    let res = app.gql(&s.token, &format!(r#"{{ session(id: "{shared}") {{ transcript }} }}"#)).await;
    assert!(res["data"]["session"]["transcript"].as_str().is_some_and(|t| t.starts_with("Transcript")), "{res}");
    let res = app.gql(&s.token, &format!(r#"{{ session(id: "{not_shared}") {{ id transcript }} }}"#)).await;
    assert!(res["data"]["session"]["id"].is_string(), "the session itself stays readable");
    assert!(res["data"]["session"]["transcript"].is_null());
    assert_eq!(code(&res), Some("CONSENT_REQUIRED"));
    assert_eq!(res["errors"][0]["path"], json!(["session", "transcript"]), "{res}");
    assert_eq!(denied(app, "transcripts", "consent").await, 1);
    let leaked = app.count("SELECT count(*) FROM audit_events WHERE reason LIKE '%Transcript of%'").await;
    assert_eq!(leaked, 0, "the audit trail holds no denied content");
    // The coachee withdraws sharing: the next request is refused.
    app.owner
        .execute_unprepared(
            "UPDATE consents SET granted = false WHERE kind = 'TRANSCRIPT_SHARING' AND coachee_id IN \
             (SELECT id FROM users WHERE email = 'coachee1@acme.test')",
        )
        .await
        .expect("withdraw");
    let res = app.gql(&s.token, &format!(r#"{{ session(id: "{shared}") {{ transcript }} }}"#)).await;
    assert_eq!(code(&res), Some("CONSENT_REQUIRED"));
}
both_backends!(
    coach_reads_transcripts_only_with_transcript_sharing,
    coach_reads_transcripts_only_with_transcript_sharing
);

async fn coaches_read_only_their_own_notes(app: &TestApp) {
    // coach2 also coaches coachee1, and writes its own note and session.
    let coach2 = app.user_id("coach2@acme.test").await;
    let coachee1 = app.user_id("coachee1@acme.test").await;
    let tenant = app.uuid_of("SELECT id FROM tenants WHERE slug = 'acme'").await;
    let backend = app.owner.get_database_backend();
    let uuid = |s: &str| match backend {
        sea_orm::DbBackend::Postgres => format!("'{s}'::uuid"),
        _ => format!("X'{}'", s.replace('-', "")),
    };
    let now = match backend {
        sea_orm::DbBackend::Postgres => "now()".to_owned(),
        _ => "'2026-11-02 09:00:00+00:00'".to_owned(),
    };
    app.owner
        .execute_unprepared(&format!(
            "INSERT INTO coach_assignments (id, tenant_id, coach_id, coachee_id, active, ai_level, created_at) \
             VALUES ({}, {}, {}, {}, true, 'OFF', {now})",
            uuid(&uuid::Uuid::new_v4().to_string()),
            uuid(&tenant),
            uuid(&coach2),
            uuid(&coachee1)
        ))
        .await
        .expect("assign");
    app.owner
        .execute_unprepared(&format!(
            "INSERT INTO coach_notes (id, tenant_id, coach_id, coachee_id, body, created_at, updated_at) \
             VALUES ({}, {}, {}, {}, 'coach2 secret', {now}, {now})",
            uuid(&uuid::Uuid::new_v4().to_string()),
            uuid(&tenant),
            uuid(&coach2),
            uuid(&coachee1)
        ))
        .await
        .expect("note");
    let q = format!(
        r#"{{ user(id: "{coachee1}") {{ coachNotes {{ body }} sessions(first: 10) {{ nodes {{ privateNotes }} }} }} }}"#
    );
    let c1 = app.gql(&app.session_for("coach1@acme.test").await.token, &q).await;
    let bodies: Vec<&str> =
        c1["data"]["user"]["coachNotes"].as_array().expect("notes").iter().filter_map(|n| n["body"].as_str()).collect();
    assert_eq!(bodies.len(), 1, "{c1}");
    assert!(bodies[0].contains("Coach1"), "{bodies:?}");
    let c2 = app.gql(&app.session_for("coach2@acme.test").await.token, &q).await;
    let bodies: Vec<&str> =
        c2["data"]["user"]["coachNotes"].as_array().expect("notes").iter().filter_map(|n| n["body"].as_str()).collect();
    assert_eq!(bodies, ["coach2 secret"]);
    // The sessions are coach1's: coach2 sees them (assigned coachee) but not their private notes.
    let notes = &c2["data"]["user"]["sessions"]["nodes"];
    assert!(notes.as_array().expect("nodes").iter().all(|n| n["privateNotes"].is_null()));
    assert!(c2["errors"].as_array().expect("errors").iter().all(|e| e["extensions"]["code"] == "FORBIDDEN"));
}
both_backends!(coaches_read_only_their_own_notes, coaches_read_only_their_own_notes);

// --- coachee ----------------------------------------------------------------------------

async fn coachee_sees_its_own_data_and_only_approved_l1_evidence(app: &TestApp) {
    let s = app.session_for("coachee1@acme.test").await;
    let res = app
        .gql(
            &s.token,
            "{ me { sessions(first: 10) { totalCount nodes { status summary approvedInsights { status } evidencePacks { level approved } coach { id displayName } } } goals { id } } }",
        )
        .await;
    assert!(res["errors"].is_null(), "{res}");
    let sessions = res["data"]["me"]["sessions"]["nodes"].as_array().expect("nodes");
    assert_eq!(res["data"]["me"]["sessions"]["totalCount"], 3);
    let mut packs = 0;
    for n in sessions {
        for p in n["evidencePacks"].as_array().expect("packs") {
            assert!(p["level"] == "L0" || p["approved"] == true, "unapproved L1 leaked: {p}");
            packs += 1;
        }
        for i in n["approvedInsights"].as_array().expect("insights") {
            assert_eq!(i["status"], "APPROVED");
        }
    }
    // Demo: per completed session one L0, and one approved L1 in the first session.
    assert_eq!(packs, 3);
    let stored = app
        .count("SELECT count(*) FROM evidence_packs p JOIN users u ON u.id = p.coachee_id WHERE u.email = 'coachee1@acme.test'")
        .await;
    assert_eq!(stored, 6, "the other three are unapproved L1");
    assert_eq!(res["data"]["me"]["goals"].as_array().map(Vec::len), Some(2));
}
both_backends!(
    coachee_sees_its_own_data_and_only_approved_l1_evidence,
    coachee_sees_its_own_data_and_only_approved_l1_evidence
);

async fn coachee_sees_only_id_and_name_of_its_coach_and_nothing_of_other_coachees(app: &TestApp) {
    let s = app.session_for("coachee1@acme.test").await;
    let coach = app.user_id("coach1@acme.test").await;
    let peer = app.user_id("coachee2@acme.test").await;
    let res = app.gql(&s.token, &format!(r#"{{ user(id: "{coach}") {{ id displayName }} }}"#)).await;
    assert_eq!(res["data"]["user"]["displayName"], "Coach1 (Acme)", "{res}");
    // Contract version 2: the refused cell is null, with FORBIDDEN at its path.
    let res = app.gql(&s.token, &format!(r#"{{ user(id: "{coach}") {{ email role }} }}"#)).await;
    assert_eq!(res["data"]["user"], serde_json::json!({ "email": null, "role": null }), "{res}");
    let paths: Vec<&serde_json::Value> = res["errors"].as_array().expect("errors").iter().map(|e| &e["path"]).collect();
    assert_eq!(paths.len(), 2, "{res}");
    for field in ["email", "role"] {
        assert!(paths.contains(&&serde_json::json!(["user", field])), "{res}");
    }
    assert_eq!(code(&res), Some("FORBIDDEN"));
    let res = app.gql(&s.token, &format!(r#"{{ user(id: "{peer}") {{ id }} }}"#)).await;
    assert_eq!(code(&res), Some("FORBIDDEN"));
    let res = app
        .gql(
            &s.token,
            &format!(r#"{{ goals(coacheeId: "{peer}") {{ id }} sessions(coacheeId: "{peer}") {{ totalCount }} }}"#),
        )
        .await;
    assert_eq!(res["data"]["goals"], json!([]));
    assert_eq!(res["data"]["sessions"]["totalCount"], 0);
}
both_backends!(
    coachee_sees_only_id_and_name_of_its_coach_and_nothing_of_other_coachees,
    coachee_sees_only_id_and_name_of_its_coach_and_nothing_of_other_coachees
);

// --- AI agent -----------------------------------------------------------------------------

async fn ai_reads_only_within_the_effective_consent_level_and_every_read_is_logged(app: &TestApp) {
    let s = app.session_for("ai@acme.test").await;
    // Demo effective levels: OBSERVE for coachees 1, 7, 11; ANALYZE for 2, 6, 10; OFF otherwise.
    let res =
        app.gql(&s.token, "{ sessions(first: 25) { totalCount nodes { coachee { email } } } goals { id } }").await;
    assert!(res["errors"].is_null(), "{res}");
    let seen: BTreeSet<String> = res["data"]["sessions"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["coachee"]["email"].as_str().expect("email").to_owned())
        .collect();
    let expected: BTreeSet<String> = [1, 2, 6, 7, 10, 11].iter().map(|i| format!("coachee{i}@acme.test")).collect();
    assert_eq!(seen, expected);
    assert_eq!(res["data"]["goals"].as_array().map(Vec::len), Some(6), "goals of 2, 6, 10 (ANALYZE) only");

    let observe_only = app.completed_session_of("coachee1@acme.test").await;
    let analyze = app.completed_session_of("coachee2@acme.test").await;
    let res = app.gql(&s.token, &format!(r#"{{ session(id: "{observe_only}") {{ transcript summary }} }}"#)).await;
    assert!(res["data"]["session"]["transcript"].is_string(), "OBSERVE reads transcripts: {res}");
    assert!(res["data"]["session"]["summary"].is_null());
    assert_eq!(code(&res), Some("CONSENT_REQUIRED"));
    let res = app.gql(&s.token, &format!(r#"{{ session(id: "{analyze}") {{ summary }} }}"#)).await;
    assert!(res["data"]["session"]["summary"].is_string(), "{res}");

    // Logged with model and purpose, per coachee and resource.
    let logged =
        app.count("SELECT count(*) FROM ai_access_log WHERE model = 'test-model' AND purpose = 'test-purpose'").await;
    assert!(logged >= 6, "{logged}");
    assert_eq!(
        app.count(
            "SELECT count(*) FROM ai_access_log l JOIN users u ON u.id = l.coachee_id \
             WHERE u.email = 'coachee3@acme.test'"
        )
        .await,
        0,
        "nothing read, nothing logged"
    );

    // Withdrawal: coachee2 withdraws every SASHA consent; the very next request is denied.
    app.owner
        .execute_unprepared(
            "UPDATE consents SET granted = false WHERE coachee_id IN (SELECT id FROM users WHERE email = 'coachee2@acme.test')",
        )
        .await
        .expect("withdraw");
    let res = app.gql(&s.token, &format!(r#"{{ session(id: "{analyze}") {{ summary }} }}"#)).await;
    assert!(res["data"]["session"].is_null());
    assert_eq!(code(&res), Some("CONSENT_REQUIRED"));
}
both_backends!(
    ai_reads_only_within_the_effective_consent_level_and_every_read_is_logged,
    ai_reads_only_within_the_effective_consent_level_and_every_read_is_logged
);

async fn ai_requests_without_model_and_purpose_are_refused(app: &TestApp) {
    let s = app.session_for("ai@acme.test").await;
    let req = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, GRAPHQL_RESPONSE)
        .header(header::AUTHORIZATION, format!("Bearer {}", s.token))
        .body(Body::from(json!({ "query": "{ viewer { id } }" }).to_string()))
        .expect("req");
    let res = app.send(req).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"));
}
both_backends!(ai_requests_without_model_and_purpose_are_refused, ai_requests_without_model_and_purpose_are_refused);

// --- admin and executive ------------------------------------------------------------------

async fn program_admin_reads_session_metadata_of_the_tenant_and_profiles(app: &TestApp) {
    let s = app.session_for("admin1@acme.test").await;
    let res = app
        .gql(&s.token, "{ sessions(first: 100) { totalCount nodes { status coach { email } coachee { email } } } coachees { totalCount } }")
        .await;
    assert!(res["errors"].is_null(), "{res}");
    assert_eq!(res["data"]["sessions"]["totalCount"], 36);
    assert_eq!(res["data"]["coachees"]["totalCount"], 12);
}
both_backends!(
    program_admin_reads_session_metadata_of_the_tenant_and_profiles,
    program_admin_reads_session_metadata_of_the_tenant_and_profiles
);

async fn executive_reads_the_directory_only(app: &TestApp) {
    let s = app.session_for("exec1@acme.test").await;
    let res = app.gql(&s.token, "{ users(first: 100) { totalCount nodes { id role displayName } } }").await;
    assert_eq!(res["data"]["users"]["totalCount"], 18, "{res}");
    let coachees = app.gql(&s.token, "{ users(role: COACHEE) { totalCount } }").await;
    assert_eq!(coachees["data"]["users"]["totalCount"], 12);
}
both_backends!(executive_reads_the_directory_only, executive_reads_the_directory_only);

// --- another tenant's ids -----------------------------------------------------------------

async fn another_tenants_ids_behave_like_ids_that_do_not_exist(app: &TestApp) {
    let foreign_user = app.user_id("coachee1@globex.test").await;
    let foreign_session = app.completed_session_of("coachee1@globex.test").await;
    let random = uuid::Uuid::new_v4().to_string();
    let queries = [
        r#"{ user(id: "ID") { id } }"#,
        r#"{ session(id: "ID") { id } }"#,
        r#"{ sessions(coacheeId: "ID") { totalCount nodes { id } } }"#,
        r#"{ goals(coacheeId: "ID") { id } }"#,
        r#"{ actionItems(coacheeId: "ID") { totalCount nodes { id } } }"#,
    ];
    for who in ["coachee1@acme.test", "coach1@acme.test", "admin1@acme.test", "ai@acme.test"] {
        let s = app.session_for(who).await;
        for q in queries {
            for foreign in [&foreign_user, &foreign_session] {
                let theirs = app.gql(&s.token, &q.replace("ID", foreign)).await;
                let nobody = app.gql(&s.token, &q.replace("ID", &random)).await;
                assert_eq!(theirs, nobody, "{who}: {q}");
            }
        }
    }
    // The probes are audited as refusals.
    assert!(denied(app, "other_user_profiles", "no visible row").await >= 4);
}
both_backends!(
    another_tenants_ids_behave_like_ids_that_do_not_exist,
    another_tenants_ids_behave_like_ids_that_do_not_exist
);

// --- data export ------------------------------------------------------------------------

async fn coachee_export_holds_its_own_data_and_nothing_of_anyone_else(app: &TestApp) {
    let s = app.session_for("coachee1@acme.test").await;
    let res = app.gql(&s.token, "{ myDataExport { json generatedAt } }").await;
    let doc: Value = serde_json::from_str(res["data"]["myDataExport"]["json"].as_str().expect("json")).expect("parse");
    assert_eq!(doc["profile"]["email"], "coachee1@acme.test");
    assert_eq!(doc["sessions"].as_array().map(Vec::len), Some(3));
    assert_eq!(doc["goals"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["evidencePacks"].as_array().map(Vec::len), Some(3), "L0 and approved L1 only");
    assert_eq!(doc["coaches"][0]["displayName"], "Coach1 (Acme)");
    let text = doc.to_string();
    for forbidden in
        ["Coach note", "Private note", "Draft insight", "Transcript of", "coach1@acme.test", "token_hash", "password"]
    {
        assert!(!text.contains(forbidden), "export leaks {forbidden:?}");
    }
    // Nothing of any other user: no other coachee's id appears.
    for i in 2..=12 {
        let other = app.user_id(&format!("coachee{i}@acme.test")).await;
        assert!(!text.contains(&other), "coachee{i}'s id in coachee1's export");
    }
    let other_tenant = app.user_id("coachee1@globex.test").await;
    assert!(!text.contains(&other_tenant));
    // Only the coachee may export.
    let coach = app.session_for("coach1@acme.test").await;
    let res = app.gql(&coach.token, "{ myDataExport { json } }").await;
    assert_eq!(res["errors"][0]["message"], "Unknown field \"myDataExport\" on type \"Query\".");
}
both_backends!(
    coachee_export_holds_its_own_data_and_nothing_of_anyone_else,
    coachee_export_holds_its_own_data_and_nothing_of_anyone_else
);
