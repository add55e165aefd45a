//! Coaching-content mutations: who may call each one (the matrix), on which rows (the
//! relationship and consent), with which inputs, and that a refused or invalid mutation
//! writes nothing.

use std::collections::BTreeSet;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

const ACCOUNTS: [(&str, &str); 6] = [
    ("COACHEE", "coachee1@acme.test"),
    ("COACH", "coach1@acme.test"),
    ("PROGRAM_ADMIN", "admin1@acme.test"),
    ("EXECUTIVE", "exec1@acme.test"),
    ("AI_AGENT", "ai@acme.test"),
    ("SYSTEM_ADMIN", "root@coachgraph.test"),
];

/// Mutation -> the roles the matrix lets call it.
const CALLERS: [(&str, &[&str]); 19] = [
    ("createSession", &["COACH"]),
    ("updateSession", &["COACH"]),
    ("deleteSession", &["COACH"]),
    ("attachTranscript", &["COACH"]),
    ("createInsight", &["COACH", "AI_AGENT"]),
    ("updateInsight", &["COACH"]),
    ("approveInsight", &["COACH"]),
    ("rejectInsight", &["COACH"]),
    ("deleteInsight", &["COACH"]),
    ("createEvidencePack", &["COACH", "AI_AGENT"]),
    ("approveEvidencePack", &["COACH"]),
    ("createActionItem", &["COACH"]),
    ("completeActionItem", &["COACHEE", "COACH"]),
    ("createGoal", &["COACH"]),
    ("updateGoalProgress", &["COACH"]),
    ("addCoachNote", &["COACH"]),
    ("updateCoachNote", &["COACH"]),
    ("deleteCoachNote", &["COACH"]),
    ("giveAiFeedback", &["COACHEE"]),
];

fn code(v: &Value) -> Option<&str> {
    v["errors"][0]["extensions"]["code"].as_str()
}

async fn every_mutation_exists_exactly_for_the_roles_the_matrix_allows(app: &TestApp) {
    for (role, email) in ACCOUNTS {
        let s = app.session_for(email).await;
        let res = app.gql(&s.token, "{ __schema { mutationType { fields { name } } } }").await;
        let present: BTreeSet<String> = res["data"]["__schema"]["mutationType"]["fields"]
            .as_array()
            .map(|f| f.iter().map(|f| f["name"].as_str().unwrap_or("").to_owned()).collect())
            .unwrap_or_default();
        for (mutation, callers) in CALLERS {
            assert_eq!(present.contains(mutation), callers.contains(&role), "{role} and {mutation}");
            if !callers.contains(&role) {
                let res = app.gql(&s.token, &format!("mutation {{ {mutation} }}")).await;
                assert_eq!(
                    res["errors"][0]["message"],
                    format!("Unknown field \"{mutation}\" on type \"Mutation\"."),
                    "{role}"
                );
            }
        }
    }
}
both_backends!(
    every_mutation_exists_exactly_for_the_roles_the_matrix_allows,
    every_mutation_exists_exactly_for_the_roles_the_matrix_allows
);

const CREATE_SESSION: &str = "mutation($c: ID!, $at: DateTime!, $d: Int!) { createSession(coacheeId: $c, scheduledAt: $at, durationMinutes: $d) { id status coachee { email } } }";

async fn coach_schedules_sessions_for_assigned_coachees_only(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await.token;
    let mine = app.user_id("coachee2@acme.test").await;
    let theirs = app.user_id("coachee8@acme.test").await;
    let foreign = app.user_id("coachee2@globex.test").await;
    let at = "2026-11-20T10:00:00Z";
    let before = app.count("SELECT count(*) FROM coaching_sessions").await;

    let ok = app.gql_vars(&coach, CREATE_SESSION, json!({ "c": mine, "at": at, "d": 60 })).await;
    assert_eq!(ok["data"]["createSession"]["status"], "SCHEDULED", "{ok}");
    assert_eq!(ok["data"]["createSession"]["coachee"]["email"], "coachee2@acme.test");

    let refused = app.gql_vars(&coach, CREATE_SESSION, json!({ "c": theirs, "at": at, "d": 60 })).await;
    assert_eq!(code(&refused), Some("FORBIDDEN"), "{refused}");
    let other_tenant = app.gql_vars(&coach, CREATE_SESSION, json!({ "c": foreign, "at": at, "d": 60 })).await;
    let nobody = app.gql_vars(&coach, CREATE_SESSION, json!({ "c": uuid::Uuid::new_v4(), "at": at, "d": 60 })).await;
    assert_eq!(other_tenant, nobody, "another tenant's coachee is like no coachee");
    assert_eq!(code(&nobody), Some("NOT_FOUND"));

    for (vars, what) in [
        (json!({ "c": mine, "at": at, "d": 5 }), "too short"),
        (json!({ "c": mine, "at": at, "d": 100000 }), "too long"),
        (json!({ "c": mine, "at": "tomorrow", "d": 60 }), "not a date-time"),
        (json!({ "c": mine, "at": "2031-01-01T00:00:00Z", "d": 60 }), "too far ahead"),
        (json!({ "c": "not-an-id", "at": at, "d": 60 }), "bad id"),
    ] {
        let res = app.gql_vars(&coach, CREATE_SESSION, vars).await;
        assert_eq!(code(&res), Some("BAD_USER_INPUT"), "{what}: {res}");
    }
    assert_eq!(app.count("SELECT count(*) FROM coaching_sessions").await, before + 1, "only the valid one was written");
}
both_backends!(
    coach_schedules_sessions_for_assigned_coachees_only,
    coach_schedules_sessions_for_assigned_coachees_only
);

async fn drafts_reach_the_coachee_only_once_approved(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await.token;
    let coachee = app.session_for("coachee1@acme.test").await.token;
    let session = app.completed_session_of("coachee1@acme.test").await;
    let create = "mutation($s: ID!, $b: String!) { createInsight(sessionId: $s, body: $b) { id status authorRole } }";
    let res = app.gql_vars(&coach, create, json!({ "s": session, "b": "A brand new draft" })).await;
    let id = res["data"]["createInsight"]["id"].as_str().expect("id").to_owned();
    assert_eq!(res["data"]["createInsight"]["status"], "DRAFT");
    assert_eq!(res["data"]["createInsight"]["authorRole"], "COACH");
    let visible = |v: &Value| v.to_string().contains("A brand new draft");
    let q = format!(r#"{{ session(id: "{session}") {{ approvedInsights {{ body }} }} }}"#);
    assert!(!visible(&app.gql(&coachee, &q).await), "a draft never reaches the coachee");
    let res = app
        .gql_vars(&coach, "mutation($i: ID!) { approveInsight(id: $i) { status approvedAt } }", json!({ "i": id }))
        .await;
    assert_eq!(res["data"]["approveInsight"]["status"], "APPROVED", "{res}");
    assert!(visible(&app.gql(&coachee, &q).await), "approved: the coachee sees it");
    // Approved insights are final for the coach: no edit, no delete, no second approval.
    let edit = app
        .gql_vars(&coach, "mutation($i: ID!) { updateInsight(id: $i, body: \"x\") { id } }", json!({ "i": id }))
        .await;
    assert_eq!(code(&edit), Some("CONFLICT"));
    let del = app.gql_vars(&coach, "mutation($i: ID!) { deleteInsight(id: $i) }", json!({ "i": id })).await;
    assert_eq!(code(&del), Some("FORBIDDEN"));
    let again = app.gql_vars(&coach, "mutation($i: ID!) { approveInsight(id: $i) { id } }", json!({ "i": id })).await;
    assert_eq!(code(&again), Some("CONFLICT"));
    // The coachee gives feedback on it; not on a draft.
    let fb =
        "mutation($i: ID!) { giveAiFeedback(insightId: $i, helpful: true, comment: \"useful\") { helpful comment } }";
    let res = app.gql_vars(&coachee, fb, json!({ "i": id })).await;
    assert_eq!(res["data"]["giveAiFeedback"]["comment"], "useful", "{res}");
    let draft = app.uuid_of("SELECT i.id FROM insights i JOIN users u ON u.id = i.coachee_id WHERE u.email = 'coachee1@acme.test' AND i.status = 'DRAFT' LIMIT 1",
    )
    .await;
    assert_eq!(code(&app.gql_vars(&coachee, fb, json!({ "i": draft })).await), Some("NOT_FOUND"));
    // Another coach cannot approve coach1's coachee's drafts.
    let coach2 = app.session_for("coach2@acme.test").await.token;
    let res = app.gql_vars(&coach2, "mutation($i: ID!) { rejectInsight(id: $i) { id } }", json!({ "i": draft })).await;
    assert_eq!(code(&res), Some("FORBIDDEN"), "{res}");
}
both_backends!(drafts_reach_the_coachee_only_once_approved, drafts_reach_the_coachee_only_once_approved);

async fn l1_evidence_reaches_the_coachee_once_approved(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await.token;
    let coachee = app.session_for("coachee1@acme.test").await.token;
    let session = app.completed_session_of("coachee1@acme.test").await;
    let res = app
        .gql_vars(
            &coach,
            "mutation($s: ID!) { createEvidencePack(sessionId: $s, level: L1, content: \"Fresh L1 evidence\") { id approved } }",
            json!({ "s": session }),
        )
        .await;
    let id = res["data"]["createEvidencePack"]["id"].as_str().expect("id").to_owned();
    let q = format!(r#"{{ session(id: "{session}") {{ evidencePacks {{ content }} }} }}"#);
    assert!(!app.gql(&coachee, &q).await.to_string().contains("Fresh L1"));
    app.gql_vars(&coach, "mutation($i: ID!) { approveEvidencePack(id: $i) { approved } }", json!({ "i": id })).await;
    assert!(app.gql(&coachee, &q).await.to_string().contains("Fresh L1"));
}
both_backends!(l1_evidence_reaches_the_coachee_once_approved, l1_evidence_reaches_the_coachee_once_approved);

async fn the_ai_writes_drafts_and_evidence_only_at_analyze_and_each_write_is_logged(app: &TestApp) {
    let ai = app.session_for("ai@acme.test").await.token;
    let analyze = app.completed_session_of("coachee2@acme.test").await;
    let observe = app.completed_session_of("coachee1@acme.test").await;
    let create = "mutation($s: ID!) { createInsight(sessionId: $s, body: \"Sasha's draft\") { id status authorRole } }";
    let res = app.gql_vars(&ai, create, json!({ "s": analyze })).await;
    assert_eq!(res["data"]["createInsight"]["authorRole"], "AI_AGENT", "{res}");
    let res = app.gql_vars(&ai, create, json!({ "s": observe })).await;
    assert_eq!(code(&res), Some("CONSENT_REQUIRED"), "{res}");
    // Evidence: the AI sees only the id of what it wrote.
    let ev = "mutation($s: ID!) { createEvidencePack(sessionId: $s, level: L0, content: \"x\") { id } }";
    assert!(app.gql_vars(&ai, ev, json!({ "s": analyze })).await["data"]["createEvidencePack"]["id"].is_string());
    let ev_content = "mutation($s: ID!) { createEvidencePack(sessionId: $s, level: L0, content: \"x\") { content } }";
    let res = app.gql_vars(&ai, ev_content, json!({ "s": analyze })).await;
    assert_eq!(res["errors"][0]["message"], "Unknown field \"content\" on type \"EvidencePack\".");
    assert_eq!(
        app.count("SELECT count(*) FROM ai_access_log WHERE action = 'WRITE' AND resource IN ('draft_insights', 'evidence_packs')").await,
        2
    );
    assert_eq!(
        app.count("SELECT count(*) FROM insights WHERE body = 'Sasha''s draft'").await,
        1,
        "the refused one wrote nothing"
    );
}
both_backends!(
    the_ai_writes_drafts_and_evidence_only_at_analyze_and_each_write_is_logged,
    the_ai_writes_drafts_and_evidence_only_at_analyze_and_each_write_is_logged
);

async fn coachee_may_only_complete_its_own_action_items(app: &TestApp) {
    let coachee = app.session_for("coachee1@acme.test").await.token;
    let mine = app.uuid_of("SELECT a.id FROM action_items a JOIN users u ON u.id = a.coachee_id WHERE u.email = 'coachee1@acme.test' AND a.completed_at IS NULL LIMIT 1",
    )
    .await;
    let theirs = app.uuid_of("SELECT a.id FROM action_items a JOIN users u ON u.id = a.coachee_id WHERE u.email = 'coachee2@acme.test' AND a.completed_at IS NULL LIMIT 1",
    )
    .await;
    let complete = "mutation($i: ID!) { completeActionItem(id: $i) { completedAt } }";
    let res = app.gql_vars(&coachee, complete, json!({ "i": mine })).await;
    assert!(res["data"]["completeActionItem"]["completedAt"].is_string(), "{res}");
    let res = app.gql_vars(&coachee, complete, json!({ "i": theirs })).await;
    assert_eq!(code(&res), Some("FORBIDDEN"), "{res}");
    let foreign = app.uuid_of("SELECT a.id FROM action_items a JOIN users u ON u.id = a.coachee_id WHERE u.email = 'coachee1@globex.test' LIMIT 1").await;
    let a = app.gql_vars(&coachee, complete, json!({ "i": foreign })).await;
    let b = app.gql_vars(&coachee, complete, json!({ "i": uuid::Uuid::new_v4() })).await;
    assert_eq!(a, b);
    assert_eq!(code(&a), Some("NOT_FOUND"));
}
both_backends!(coachee_may_only_complete_its_own_action_items, coachee_may_only_complete_its_own_action_items);

async fn coach_notes_belong_to_their_author(app: &TestApp) {
    let coach1 = app.session_for("coach1@acme.test").await.token;
    let coachee1 = app.user_id("coachee1@acme.test").await;
    let res = app
        .gql_vars(
            &coach1,
            "mutation($c: ID!) { addCoachNote(coacheeId: $c, body: \"mine only\") { id body } }",
            json!({ "c": coachee1 }),
        )
        .await;
    let note = res["data"]["addCoachNote"]["id"].as_str().expect("id").to_owned();
    // coach2 also coaches coachee1 but the note stays coach1's.
    app.owner
        .execute_unprepared(
            "UPDATE coach_assignments SET coach_id = (SELECT id FROM users WHERE email = 'coach2@acme.test') \
             WHERE coachee_id = (SELECT id FROM users WHERE email = 'coachee2@acme.test')",
        )
        .await
        .expect("reassign");
    let coach2 = app.session_for("coach2@acme.test").await.token;
    for m in [
        "mutation($i: ID!) { updateCoachNote(id: $i, body: \"pwned\") { id } }",
        "mutation($i: ID!) { deleteCoachNote(id: $i) }",
    ] {
        let res = app.gql_vars(&coach2, m, json!({ "i": note })).await;
        assert!(matches!(code(&res), Some("FORBIDDEN")), "{res}");
    }
    let res = app
        .gql_vars(
            &coach1,
            "mutation($i: ID!) { updateCoachNote(id: $i, body: \"edited\") { body } }",
            json!({ "i": note }),
        )
        .await;
    assert_eq!(res["data"]["updateCoachNote"]["body"], "edited");
    let res = app.gql_vars(&coach1, "mutation($i: ID!) { deleteCoachNote(id: $i) }", json!({ "i": note })).await;
    assert_eq!(res["data"]["deleteCoachNote"], true);
}
both_backends!(coach_notes_belong_to_their_author, coach_notes_belong_to_their_author);

async fn goals_transcripts_and_sessions_round_trip_for_the_coach(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await.token;
    let coachee = app.user_id("coachee3@acme.test").await;
    let res = app
        .gql_vars(
            &coach,
            "mutation($c: ID!) { createGoal(coacheeId: $c, title: \"Sleep more\") { id progressPercent } }",
            json!({ "c": coachee }),
        )
        .await;
    let goal = res["data"]["createGoal"]["id"].as_str().expect("goal").to_owned();
    let res = app
        .gql_vars(
            &coach,
            "mutation($g: ID!) { updateGoalProgress(id: $g, progressPercent: 40) { progressPercent } }",
            json!({ "g": goal }),
        )
        .await;
    assert_eq!(res["data"]["updateGoalProgress"]["progressPercent"], 40);
    let res = app
        .gql_vars(
            &coach,
            "mutation($g: ID!) { updateGoalProgress(id: $g, progressPercent: 140) { progressPercent } }",
            json!({ "g": goal }),
        )
        .await;
    assert_eq!(code(&res), Some("BAD_USER_INPUT"));
    let item = app
        .gql_vars(
            &coach,
            "mutation($c: ID!) { createActionItem(coacheeId: $c, title: \"Walk\", dueOn: \"2026-12-01\") { dueOn } }",
            json!({ "c": coachee }),
        )
        .await;
    assert_eq!(item["data"]["createActionItem"]["dueOn"], "2026-12-01", "{item}");
    // coachee3 shares transcripts (odd): the attached one is readable.
    let session = app.completed_session_of("coachee3@acme.test").await;
    let res = app
        .gql_vars(
            &coach,
            "mutation($s: ID!) { attachTranscript(sessionId: $s, text: \"New transcript\") }",
            json!({ "s": session }),
        )
        .await;
    assert_eq!(res["data"]["attachTranscript"], true, "{res}");
    let read = app.gql(&coach, &format!(r#"{{ session(id: "{session}") {{ transcript }} }}"#)).await;
    assert_eq!(read["data"]["session"]["transcript"], "New transcript");
    let res = app
        .gql_vars(&coach, "mutation($s: ID!) { updateSession(id: $s, status: CANCELLED, privateNotes: \"n\") { status privateNotes } }", json!({ "s": session }))
        .await;
    assert_eq!(res["data"]["updateSession"]["status"], "CANCELLED", "{res}");
    let res = app.gql_vars(&coach, "mutation($s: ID!) { deleteSession(id: $s) }", json!({ "s": session })).await;
    assert_eq!(res["data"]["deleteSession"], true);
    assert_eq!(
        app.count("SELECT count(*) FROM transcripts WHERE body = 'New transcript'").await,
        0,
        "deleted with its session"
    );
}
both_backends!(
    goals_transcripts_and_sessions_round_trip_for_the_coach,
    goals_transcripts_and_sessions_round_trip_for_the_coach
);

async fn a_failed_mutation_leaves_nothing_behind_and_earlier_ones_stand(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await.token;
    let coachee = app.user_id("coachee4@acme.test").await;
    let before = app.count("SELECT count(*) FROM goals").await;
    let doc = format!(
        r#"mutation {{
            ok: createGoal(coacheeId: "{coachee}", title: "First") {{ id }}
            bad: createGoal(coacheeId: "{coachee}", title: "{}") {{ id }}
        }}"#,
        "x".repeat(400)
    );
    let res = app.gql(&coach, &doc).await;
    assert!(res["data"]["ok"]["id"].is_string(), "{res}");
    assert_eq!(code(&res), Some("BAD_USER_INPUT"));
    assert_eq!(app.count("SELECT count(*) FROM goals").await, before + 1);
    // An error message never carries SQL or internals.
    assert!(!res.to_string().to_lowercase().contains("sql"));
}
both_backends!(
    a_failed_mutation_leaves_nothing_behind_and_earlier_ones_stand,
    a_failed_mutation_leaves_nothing_behind_and_earlier_ones_stand
);

async fn every_id_taking_content_mutation_treats_another_tenants_id_as_nonexistent(app: &TestApp) {
    let coach = app.session_for("coach1@acme.test").await.token;
    let coachee = app.session_for("coachee1@acme.test").await.token;
    let ai = app.session_for("ai@acme.test").await.token;
    let of = |table: &str| {
        format!(
            "SELECT t.id FROM {table} t JOIN users u ON u.id = t.coachee_id WHERE u.email = 'coachee2@globex.test' LIMIT 1"
        )
    };
    let session = app.uuid_of(&of("coaching_sessions")).await;
    let insight = app.uuid_of(&of("insights")).await;
    let pack = app.uuid_of(&of("evidence_packs")).await;
    let item = app.uuid_of(&of("action_items")).await;
    let goal = app.uuid_of(&of("goals")).await;
    let note = app.uuid_of(&of("coach_notes")).await;
    let coachee_id = app.user_id("coachee2@globex.test").await;
    let cases: Vec<(&String, &str, String)> = vec![
        (&coach, "mutation($i: ID!) { updateSession(id: $i, status: CANCELLED) { id } }", session.clone()),
        (&coach, "mutation($i: ID!) { deleteSession(id: $i) }", session.clone()),
        (&coach, "mutation($i: ID!) { attachTranscript(sessionId: $i, text: \"t\") }", session.clone()),
        (&coach, "mutation($i: ID!) { createInsight(sessionId: $i, body: \"b\") { id } }", session.clone()),
        (&ai, "mutation($i: ID!) { createInsight(sessionId: $i, body: \"b\") { id } }", session.clone()),
        (&coach, "mutation($i: ID!) { updateInsight(id: $i, body: \"b\") { id } }", insight.clone()),
        (&coach, "mutation($i: ID!) { approveInsight(id: $i) { id } }", insight.clone()),
        (&coach, "mutation($i: ID!) { rejectInsight(id: $i) { id } }", insight.clone()),
        (&coach, "mutation($i: ID!) { deleteInsight(id: $i) }", insight.clone()),
        (
            &coach,
            "mutation($i: ID!) { createEvidencePack(sessionId: $i, level: L0, content: \"c\") { id } }",
            session.clone(),
        ),
        (&coach, "mutation($i: ID!) { approveEvidencePack(id: $i) { id } }", pack),
        (&coach, "mutation($i: ID!) { createActionItem(coacheeId: $i, title: \"t\") { id } }", coachee_id.clone()),
        (&coach, "mutation($i: ID!) { completeActionItem(id: $i) { id } }", item.clone()),
        (&coachee, "mutation($i: ID!) { completeActionItem(id: $i) { id } }", item),
        (&coach, "mutation($i: ID!) { createGoal(coacheeId: $i, title: \"t\") { id } }", coachee_id.clone()),
        (&coach, "mutation($i: ID!) { updateGoalProgress(id: $i, progressPercent: 5) { id } }", goal),
        (&coach, "mutation($i: ID!) { addCoachNote(coacheeId: $i, body: \"b\") { id } }", coachee_id),
        (&coach, "mutation($i: ID!) { updateCoachNote(id: $i, body: \"b\") { id } }", note.clone()),
        (&coach, "mutation($i: ID!) { deleteCoachNote(id: $i) }", note),
        (&coachee, "mutation($i: ID!) { giveAiFeedback(insightId: $i, helpful: true) { id } }", insight),
    ];
    let rows_before =
        app.count("SELECT count(*) FROM coaching_sessions").await + app.count("SELECT count(*) FROM insights").await;
    for (token, mutation, foreign) in cases {
        let theirs = app.gql_vars(token, mutation, json!({ "i": foreign })).await;
        let nobody = app.gql_vars(token, mutation, json!({ "i": uuid::Uuid::new_v4() })).await;
        assert_eq!(theirs, nobody, "{mutation}");
        assert_eq!(code(&theirs), Some("NOT_FOUND"), "{mutation}: {theirs}");
    }
    let rows_after =
        app.count("SELECT count(*) FROM coaching_sessions").await + app.count("SELECT count(*) FROM insights").await;
    assert_eq!(rows_before, rows_after, "nothing written, nothing deleted");
}
both_backends!(
    every_id_taking_content_mutation_treats_another_tenants_id_as_nonexistent,
    every_id_taking_content_mutation_treats_another_tenants_id_as_nonexistent
);
