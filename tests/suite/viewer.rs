//! `viewer` (and `me` where the matrix grants own_profile) for every demo role.

use serde_json::json;

use crate::both_backends;
use crate::common::*;

const ACCOUNTS: [(&str, &str, &str); 6] = [
    ("coachee1@acme.test", "COACHEE", "Coachee1 (Acme)"),
    ("coach1@acme.test", "COACH", "Coach1 (Acme)"),
    ("admin1@acme.test", "PROGRAM_ADMIN", "Admin1 (Acme)"),
    ("exec1@acme.test", "EXECUTIVE", "Exec1 (Acme)"),
    ("ai@acme.test", "AI_AGENT", "Sasha (Acme)"),
    ("root@coachgraph.test", "SYSTEM_ADMIN", "Platform Root"),
];

async fn viewer_answers_for_every_demo_role(app: &TestApp) {
    for (email, role, name) in ACCOUNTS {
        let s = app.session_for(email).await;
        let res = app.gql(&s.token, "{ viewer { id role tenantId displayName } }").await;
        let v = &res["data"]["viewer"];
        assert_eq!(v["role"], role, "{email}: {res}");
        assert_eq!(v["displayName"], name);
        assert_eq!(v["id"], s.user_id.as_str());
        assert_eq!(v["tenantId"].is_null(), role == "SYSTEM_ADMIN", "{email}: only the system admin has no tenant");
    }
}
both_backends!(viewer_answers_for_every_demo_role, viewer_answers_for_every_demo_role);

async fn me_returns_the_own_profile_where_the_matrix_grants_it(app: &TestApp) {
    for (email, role, _) in ACCOUNTS {
        let s = app.session_for(email).await;
        let res = app.gql(&s.token, "{ me { id email role displayName } }").await;
        match role {
            // own_profile is `-` for executives and system admins: `me` is not in their schema.
            "EXECUTIVE" | "SYSTEM_ADMIN" => {
                assert!(res["data"].is_null(), "{email}: {res}");
                assert_eq!(res["errors"][0]["message"], "Unknown field \"me\" on type \"Query\".");
            }
            _ => {
                assert_eq!(res["data"]["me"]["email"], email, "{res}");
                assert_eq!(res["data"]["me"]["id"], s.user_id.as_str());
                assert_eq!(res["data"]["me"]["role"], role);
            }
        }
    }
}
both_backends!(
    me_returns_the_own_profile_where_the_matrix_grants_it,
    me_returns_the_own_profile_where_the_matrix_grants_it
);

async fn anonymous_callers_can_only_log_in(app: &TestApp) {
    let res = app.post(&Auth::None, "{ viewer { id } }", json!({})).await;
    assert_eq!(res.error_code(), Some("UNAUTHENTICATED"));
    let res = app.post(&Auth::None, "{ me { id } }", json!({})).await;
    assert_eq!(res.body["errors"][0]["message"], "Unknown field \"me\" on type \"Query\".");
    let res = app.post(&Auth::None, "mutation { logout }", json!({})).await;
    assert_eq!(res.body["errors"][0]["message"], "Unknown field \"logout\" on type \"Mutation\".");
}
both_backends!(anonymous_callers_can_only_log_in, anonymous_callers_can_only_log_in);

async fn the_same_email_in_two_tenants_is_two_accounts(app: &TestApp) {
    let a = app.login("coach1@acme.test").await;
    let g = app.login("coach1@globex.test").await;
    let va = app.gql(&a.token, "{ viewer { tenantId } }").await;
    let vg = app.gql(&g.token, "{ viewer { tenantId } }").await;
    assert_ne!(va["data"]["viewer"]["tenantId"], vg["data"]["viewer"]["tenantId"]);
}
both_backends!(the_same_email_in_two_tenants_is_two_accounts, the_same_email_in_two_tenants_is_two_accounts);
