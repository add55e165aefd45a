//! Onboarding (issue 11, POLICY.md sections 11 and 12): tenants, invitations, password
//! resets, tenant-aware login, access notices, the admin's audit view and alert counting.
//! Each behaviour on SQLite and PostgreSQL.

use chrono::Duration;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::process;
use crate::common::*;

const SYSADMIN: &str = "root@coachgraph.test";
const NEW_PASSWORD: &str = "a-long-enough-password";

const CREATE_TENANT: &str = "mutation($s: String!, $n: String!, $e: String!, $d: String!) {
  createTenant(slug: $s, name: $n, adminEmail: $e, adminDisplayName: $d) {
    tenantId slug invitation { userId email token expiresAt } } }";
const ACCEPT: &str = "mutation($t: String!, $p: String!) {
  acceptInvitation(token: $t, password: $p) { token csrfToken viewer { id role tenantId displayName } } }";
const ISSUE: &str = "mutation($u: ID!) { issueInvitation(userId: $u) { userId email token expiresAt } }";
const INVITE: &str =
    "mutation($e: String!, $d: String!, $r: Role!) { inviteUser(email: $e, displayName: $d, role: $r) { id } }";
const LOGIN_IN: &str = "mutation($e: String!, $p: String!, $t: String) {
  login(email: $e, password: $p, tenant: $t) { token viewer { id tenantId role } } }";

async fn create_tenant(app: &TestApp, token: &str, slug: &str, admin_email: &str) -> Response {
    let vars = json!({ "s": slug, "n": "Initech Coaching", "e": admin_email, "d": "Ina Admin" });
    app.post(&Auth::Bearer(token.to_owned()), CREATE_TENANT, vars).await
}

async fn accept(app: &TestApp, token: &str, password: &str) -> Response {
    app.post(&Auth::None, ACCEPT, json!({ "t": token, "p": password })).await
}

fn invitation_token(res: &Response, path: &[&str]) -> String {
    let mut v = &res.body["data"];
    for p in path {
        v = &v[*p];
    }
    v["token"].as_str().unwrap_or_else(|| panic!("no invitation in {}", res.body)).to_owned()
}

async fn login_in(app: &TestApp, email: &str, password: &str, tenant: Option<&str>) -> Response {
    app.post(&Auth::None, LOGIN_IN, json!({ "e": email, "p": password, "t": tenant })).await
}

// --- tenants -------------------------------------------------------------------------

async fn system_admin_creates_a_tenant_whose_first_admin_accepts_and_signs_in(app: &TestApp) {
    let root = app.session_for(SYSADMIN).await;
    let res = create_tenant(app, &root.token, "initech", "ina@initech.test").await;
    let created = &res.body["data"]["createTenant"];
    assert_eq!(created["slug"], "initech", "{}", res.body);
    assert_eq!(created["invitation"]["email"], "ina@initech.test");
    let token = invitation_token(&res, &["createTenant", "invitation"]);
    assert!(token.starts_with("cginv_"), "a recognisable secret: {token}");
    // Only the hash is stored.
    let stored = app.count(&format!("SELECT COUNT(*) FROM invitations WHERE token_hash = '{token}'")).await;
    assert_eq!(stored, 0);

    let accepted = accept(app, &token, NEW_PASSWORD).await;
    let viewer = &accepted.body["data"]["acceptInvitation"]["viewer"];
    assert_eq!(viewer["role"], "PROGRAM_ADMIN", "{}", accepted.body);
    assert_eq!(viewer["tenantId"], created["tenantId"]);
    // The new admin sees its own tenant only: no user of acme.
    let admin_token = accepted.body["data"]["acceptInvitation"]["token"].as_str().expect("token").to_owned();
    let users = app.gql(&admin_token, "{ users { nodes { displayName } totalCount } }").await;
    assert_eq!(users["data"]["users"]["totalCount"], 1, "{users}");
    assert_eq!(users["data"]["users"]["nodes"][0]["displayName"], "Ina Admin");
    // And it signs in with the password it chose, naming its tenant.
    let again = login_in(app, "ina@initech.test", NEW_PASSWORD, Some("initech")).await;
    assert_eq!(again.body["data"]["login"]["viewer"]["role"], "PROGRAM_ADMIN", "{}", again.body);
    // Other tenants see none of it.
    let acme_admin = app.session_for(&email("admin1", "acme")).await;
    let acme_users = app.gql(&acme_admin.token, "{ users(first: 100) { nodes { displayName } } }").await;
    assert!(!acme_users.to_string().contains("Ina Admin"));
}
both_backends!(
    system_admin_creates_a_tenant_whose_first_admin_accepts_and_signs_in,
    system_admin_creates_a_tenant_whose_first_admin_accepts_and_signs_in
);

async fn create_tenant_refuses_a_taken_or_malformed_slug_and_every_role_but_system_admin(app: &TestApp) {
    let root = app.session_for(SYSADMIN).await;
    let taken = create_tenant(app, &root.token, "acme", "x@acme-two.test").await;
    assert_eq!(taken.error_code(), Some("CONFLICT"), "{}", taken.body);
    for bad in ["ab", "Upper", "9lives", "trailing-"] {
        let res = create_tenant(app, &root.token, bad, "x@initech.test").await;
        assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "{bad}: {}", res.body);
    }
    let bad_email = create_tenant(app, &root.token, "initech", "not-an-email").await;
    assert_eq!(bad_email.error_code(), Some("BAD_USER_INPUT"));
    assert_eq!(app.count("SELECT COUNT(*) FROM tenants").await, 2, "nothing was created");
    for who in ["admin1", "coach1", "coachee1", "exec1"] {
        let s = app.session_for(&email(who, "acme")).await;
        let res = create_tenant(app, &s.token, "initech", "x@initech.test").await;
        assert!(res.body["data"].is_null(), "{who}: {}", res.body);
        assert!(res.body["errors"][0]["message"].as_str().unwrap_or("").contains("createTenant"), "{}", res.body);
    }
}
both_backends!(
    create_tenant_refuses_a_taken_or_malformed_slug_and_every_role_but_system_admin,
    create_tenant_refuses_a_taken_or_malformed_slug_and_every_role_but_system_admin
);

// --- invitations -----------------------------------------------------------------------

/// A new coach invited by acme's admin; returns (user id, invitation token).
async fn invite_coach(app: &TestApp, admin: &Session, address: &str) -> (String, String) {
    let invited = app.gql_vars(&admin.token, INVITE, json!({ "e": address, "d": "New Coach", "r": "COACH" })).await;
    let id = invited["data"]["inviteUser"]["id"].as_str().unwrap_or_else(|| panic!("{invited}")).to_owned();
    let issued = app.post(&Auth::Bearer(admin.token.clone()), ISSUE, json!({ "u": id })).await;
    (id, invitation_token(&issued, &["issueInvitation"]))
}

async fn an_invitation_works_once_and_used_expired_replaced_or_unknown_tokens_get_one_answer(app: &TestApp) {
    let admin = app.session_for(&email("admin1", "acme")).await;
    let (id, first) = invite_coach(app, &admin, "newcoach@acme.test").await;
    // A newer invitation voids the first.
    let second = app.post(&Auth::Bearer(admin.token.clone()), ISSUE, json!({ "u": id })).await;
    let second = invitation_token(&second, &["issueInvitation"]);
    let replaced = accept(app, &first, NEW_PASSWORD).await;
    assert_eq!(replaced.error_code(), Some("INVALID_INVITATION"), "{}", replaced.body);

    let ok = accept(app, &second, NEW_PASSWORD).await;
    assert_eq!(ok.body["data"]["acceptInvitation"]["viewer"]["id"], id.as_str(), "{}", ok.body);
    let used = accept(app, &second, NEW_PASSWORD).await;
    let unknown = accept(app, &format!("cginv_{}", "A".repeat(43)), NEW_PASSWORD).await;
    let malformed = accept(app, "hello", NEW_PASSWORD).await;
    for other in [&used, &unknown, &malformed] {
        assert_eq!(other.status, replaced.status);
        assert_eq!(other.body, replaced.body, "one and the same answer");
    }

    // Expiry: 7 days.
    let (_, late) = invite_coach(app, &admin, "latecoach@acme.test").await;
    app.clock.advance(Duration::days(7) + Duration::seconds(1));
    let expired = accept(app, &late, NEW_PASSWORD).await;
    assert_eq!(expired.body, replaced.body);
}
both_backends!(
    an_invitation_works_once_and_used_expired_replaced_or_unknown_tokens_get_one_answer,
    an_invitation_works_once_and_used_expired_replaced_or_unknown_tokens_get_one_answer
);

async fn a_password_outside_the_rules_is_refused_and_the_invitation_still_works(app: &TestApp) {
    let admin = app.session_for(&email("admin1", "acme")).await;
    let (_, token) = invite_coach(app, &admin, "rules.person@acme.test").await;
    for (bad, why) in [
        ("short-pass", "at least 12"),
        (&"x".repeat(129) as &str, "at most 128"),
        ("rules.person@acme.test", "email"),
        ("RULES.PERSON", "email"),
    ] {
        let res = accept(app, &token, bad).await;
        assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "{bad}: {}", res.body);
        assert!(res.body["errors"][0]["message"].as_str().unwrap_or("").contains(why), "{}", res.body);
    }
    let ok = accept(app, &token, NEW_PASSWORD).await;
    assert_eq!(ok.body["data"]["acceptInvitation"]["viewer"]["role"], "COACH", "{}", ok.body);
}
both_backends!(
    a_password_outside_the_rules_is_refused_and_the_invitation_still_works,
    a_password_outside_the_rules_is_refused_and_the_invitation_still_works
);

async fn an_invitation_for_an_active_user_resets_its_password_ends_its_sessions_and_notifies_it(app: &TestApp) {
    let admin = app.session_for(&email("admin1", "acme")).await;
    let coachee = app.session_for(&email("coachee1", "acme")).await;
    let create = "mutation { createIntegrationToken(name: \"sync\") { secret } }";
    let minted = app.gql(&coachee.token, create).await;
    let secret =
        minted["data"]["createIntegrationToken"]["secret"].as_str().unwrap_or_else(|| panic!("{minted}")).to_owned();
    assert_eq!(app.gql(&secret, "{ viewer { id } }").await["data"]["viewer"]["id"], coachee.user_id.as_str());
    let issued = app.post(&Auth::Bearer(admin.token.clone()), ISSUE, json!({ "u": coachee.user_id })).await;
    let token = invitation_token(&issued, &["issueInvitation"]);
    // Its session ended, its integration tokens are revoked, and the old password no longer works.
    let me = app.post(&Auth::Bearer(coachee.token.clone()), "{ viewer { id } }", json!({})).await;
    assert_eq!(me.error_code(), Some("UNAUTHENTICATED"));
    let via_token = app.post(&Auth::Bearer(secret), "{ viewer { id } }", json!({})).await;
    assert_eq!(via_token.error_code(), Some("UNAUTHENTICATED"), "{}", via_token.body);
    let old = app.login_full(&email("coachee1", "acme"), DEMO_PASSWORD).await;
    assert_eq!(old.error_code(), Some("INVALID_CREDENTIALS"));
    // The new one does, once set; the person is told an administrator reset it.
    let ok = accept(app, &token, NEW_PASSWORD).await;
    let fresh = ok.body["data"]["acceptInvitation"]["token"].as_str().expect("signed in").to_owned();
    let notices = app.gql(&fresh, "{ accessNotices { actorRole reason } }").await;
    assert_eq!(notices["data"]["accessNotices"][0]["actorRole"], "PROGRAM_ADMIN", "{notices}");
    assert_eq!(notices["data"]["accessNotices"][0]["reason"], "password reset by an administrator");
}
both_backends!(
    an_invitation_for_an_active_user_resets_its_password_ends_its_sessions_and_notifies_it,
    an_invitation_for_an_active_user_resets_its_password_ends_its_sessions_and_notifies_it
);

async fn a_program_admin_cannot_invite_another_tenants_user_itself_or_a_deactivated_user(app: &TestApp) {
    let admin = app.session_for(&email("admin1", "acme")).await;
    let globex = app.user_id(&email("coachee1", "globex")).await;
    let other = app.post(&Auth::Bearer(admin.token.clone()), ISSUE, json!({ "u": globex })).await;
    assert_eq!(other.error_code(), Some("NOT_FOUND"), "{}", other.body);
    let itself = app.post(&Auth::Bearer(admin.token.clone()), ISSUE, json!({ "u": admin.user_id })).await;
    assert_eq!(itself.error_code(), Some("FORBIDDEN"), "{}", itself.body);
    let coachee2 = app.user_id(&email("coachee2", "acme")).await;
    let q = "mutation($u: ID!) { deactivateUser(id: $u) }";
    app.post(&Auth::Bearer(admin.token.clone()), q, json!({ "u": coachee2 })).await;
    let deactivated = app.post(&Auth::Bearer(admin.token.clone()), ISSUE, json!({ "u": coachee2 })).await;
    assert_eq!(deactivated.error_code(), Some("CONFLICT"), "{}", deactivated.body);
    // Coaches and coachees have no such mutation.
    let coach = app.session_for(&email("coach1", "acme")).await;
    let res = app.post(&Auth::Bearer(coach.token.clone()), ISSUE, json!({ "u": coachee2 })).await;
    assert!(res.body["errors"][0]["message"].as_str().unwrap_or("").contains("issueInvitation"), "{}", res.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM invitations").await, 0, "nothing was issued");
}
both_backends!(
    a_program_admin_cannot_invite_another_tenants_user_itself_or_a_deactivated_user,
    a_program_admin_cannot_invite_another_tenants_user_itself_or_a_deactivated_user
);

// --- tenant-aware login ----------------------------------------------------------------

/// `multi@..` with an account in acme and another in globex, each with its own password.
async fn person_in_two_tenants(app: &TestApp, acme_password: &str, globex_password: &str) {
    for (tenant, password) in [("acme", acme_password), ("globex", globex_password)] {
        let admin = app.session_for(&email("admin1", tenant)).await;
        let (_, token) = invite_coach(app, &admin, "multi@coaches.test").await;
        let ok = accept(app, &token, password).await;
        assert!(ok.body["data"]["acceptInvitation"].is_object(), "{}", ok.body);
    }
}

async fn an_email_in_two_tenants_signs_in_where_the_password_matches_or_by_naming_the_tenant(app: &TestApp) {
    person_in_two_tenants(app, "acme-password-1234", "globex-password-1234").await;
    let acme = app.uuid_of("SELECT id FROM tenants WHERE slug = 'acme'").await;
    let globex = app.uuid_of("SELECT id FROM tenants WHERE slug = 'globex'").await;
    let in_acme = login_in(app, "multi@coaches.test", "acme-password-1234", None).await;
    assert_eq!(in_acme.body["data"]["login"]["viewer"]["tenantId"], acme.as_str(), "{}", in_acme.body);
    let in_globex = login_in(app, "multi@coaches.test", "globex-password-1234", None).await;
    assert_eq!(in_globex.body["data"]["login"]["viewer"]["tenantId"], globex.as_str(), "{}", in_globex.body);
    let named = login_in(app, "multi@coaches.test", "globex-password-1234", Some("globex")).await;
    assert_eq!(named.body["data"]["login"]["viewer"]["tenantId"], globex.as_str());
    // Naming the wrong tenant, an unknown tenant, or a wrong password: the usual answer.
    let unknown = login_in(app, "nobody@coaches.test", "acme-password-1234", None).await;
    for res in [
        login_in(app, "multi@coaches.test", "globex-password-1234", Some("acme")).await,
        login_in(app, "multi@coaches.test", "acme-password-1234", Some("no-such-tenant")).await,
        login_in(app, "multi@coaches.test", "wrong-password-1234", None).await,
    ] {
        assert_eq!(res.error_code(), Some("INVALID_CREDENTIALS"), "{}", res.body);
        assert_eq!(res.body, unknown.body);
    }
}
both_backends!(
    an_email_in_two_tenants_signs_in_where_the_password_matches_or_by_naming_the_tenant,
    an_email_in_two_tenants_signs_in_where_the_password_matches_or_by_naming_the_tenant
);

async fn the_same_password_in_two_tenants_asks_for_the_tenant(app: &TestApp) {
    person_in_two_tenants(app, "same-password-1234", "same-password-1234").await;
    let res = login_in(app, "multi@coaches.test", "same-password-1234", None).await;
    assert_eq!(res.error_code(), Some("BAD_USER_INPUT"), "{}", res.body);
    assert!(res.body["errors"][0]["message"].as_str().unwrap_or("").contains("name the tenant"));
    let named = login_in(app, "multi@coaches.test", "same-password-1234", Some("acme")).await;
    assert_eq!(named.body["data"]["login"]["viewer"]["role"], "COACH", "{}", named.body);
}
both_backends!(
    the_same_password_in_two_tenants_asks_for_the_tenant,
    the_same_password_in_two_tenants_asks_for_the_tenant
);

// --- notices, audit view, alerts ---------------------------------------------------------

async fn deactivation_and_a_support_unlock_leave_the_person_an_access_notice(app: &TestApp) {
    let root = app.session_for(SYSADMIN).await;
    let coachee = app.session_for(&email("coachee3", "acme")).await;
    let unlock = "mutation($u: ID!) { unlockAccount(userId: $u) }";
    let res = app.post(&Auth::Bearer(root.token.clone()), unlock, json!({ "u": coachee.user_id })).await;
    assert_eq!(res.body["data"]["unlockAccount"], true, "{}", res.body);
    let notices = app.gql(&coachee.token, "{ accessNotices { actorRole reason } }").await;
    assert_eq!(
        notices["data"]["accessNotices"],
        json!([{ "actorRole": "SYSTEM_ADMIN", "reason": "account unlocked by platform support" }])
    );

    let admin = app.session_for(&email("admin1", "acme")).await;
    let deactivate = "mutation($u: ID!) { deactivateUser(id: $u) }";
    app.post(&Auth::Bearer(admin.token.clone()), deactivate, json!({ "u": coachee.user_id })).await;
    use coachgraph::db::entities::access_notices;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let person: uuid::Uuid = coachee.user_id.parse().expect("uuid");
    let notices = access_notices::Entity::find()
        .filter(access_notices::Column::CoacheeId.eq(person))
        .all(&app.owner)
        .await
        .expect("notices");
    let reasons: Vec<&str> = notices.iter().map(|n| n.reason.as_str()).collect();
    assert!(reasons.contains(&"account deactivated by an administrator"), "{reasons:?}");
    assert_eq!(notices.len(), 2);
}
both_backends!(
    deactivation_and_a_support_unlock_leave_the_person_an_access_notice,
    deactivation_and_a_support_unlock_leave_the_person_an_access_notice
);

async fn audit_actions(app: &TestApp, token: &str) -> Vec<(String, Option<String>)> {
    let res = app.gql(token, "{ auditEvents(first: 100) { nodes { action actorRole } } }").await;
    res["data"]["auditEvents"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{res}"))
        .iter()
        .map(|n| (n["action"].as_str().unwrap_or("").to_owned(), n["actorRole"].as_str().map(str::to_owned)))
        .collect()
}

async fn a_program_admin_never_sees_a_coachees_own_choices_in_the_audit_log(app: &TestApp) {
    let coachee = app.session_for(&email("coachee4", "acme")).await;
    let grant = "mutation { grantConsent(kind: TRANSCRIPT_SHARING) { granted } }";
    let res = app.gql(&coachee.token, grant).await;
    assert_eq!(res["data"]["grantConsent"]["granted"], true, "{res}");
    app.gql(&coachee.token, "mutation { withdrawConsent(kind: TRANSCRIPT_SHARING) { granted } }").await;
    let coach = app.session_for(&email("coach1", "acme")).await;
    let coachee4 = coachee.user_id.clone();
    app.gql_vars(
        &coach.token,
        "mutation($c: ID!) { addCoachNote(coacheeId: $c, body: \"note\") { id } }",
        json!({ "c": coachee4 }),
    )
    .await;

    let admin = app.session_for(&email("admin1", "acme")).await;
    let seen = audit_actions(app, &admin.token).await;
    assert!(seen.iter().all(|(_, role)| role.as_deref() != Some("COACHEE")), "{seen:?}");
    assert!(!seen.iter().any(|(a, _)| a.starts_with("CONSENT_")), "{seen:?}");
    // The platform's administrator, who investigates incidents, still sees them.
    let root = app.session_for(SYSADMIN).await;
    let all = audit_actions(app, &root.token).await;
    assert!(all.iter().any(|(a, _)| a == "CONSENT_GRANTED"), "{all:?}");
}
both_backends!(
    a_program_admin_never_sees_a_coachees_own_choices_in_the_audit_log,
    a_program_admin_never_sees_a_coachees_own_choices_in_the_audit_log
);

fn alerts(events: &[(String, Option<String>)]) -> usize {
    events.iter().filter(|(a, _)| a == "SECURITY_ALERT").count()
}

async fn security_alerts_count_denied_requests_not_denied_cells(app: &TestApp) {
    let coach = app.session_for(&email("coach1", "acme")).await;
    // One request, many refusals: transcripts of coachees without TRANSCRIPT_SHARING, and a
    // field of another coach's coachee.
    let stranger = app.user_id(&email("coachee1", "globex")).await;
    let dashboard = format!(
        "{{ coachees(first: 25) {{ nodes {{ id sessions(first: 5) {{ nodes {{ transcript }} }} }} }} \
         stranger: user(id: \"{stranger}\") {{ displayName }} }}"
    );
    let mut denied_requests = 0;
    for _ in 0..9 {
        let res: Value = app.gql(&coach.token, &dashboard).await;
        assert!(res["errors"].as_array().is_some_and(|e| e.len() > 2), "several refusals a request: {res}");
        denied_requests += 1;
    }
    let admin = app.session_for(&email("admin1", "acme")).await;
    assert_eq!(
        alerts(&audit_actions(app, &admin.token).await),
        0,
        "{denied_requests} requests are under the threshold"
    );
    app.gql(&coach.token, &dashboard).await;
    assert_eq!(alerts(&audit_actions(app, &admin.token).await), 1, "the tenth denied request raises one");
}
both_backends!(
    security_alerts_count_denied_requests_not_denied_cells,
    security_alerts_count_denied_requests_not_denied_cells
);

/// The client's `X-Request-Id` is for its logs, never for the alert count: denied requests
/// that all send the same id still count one each.
async fn a_client_chosen_request_id_does_not_merge_denied_requests(app: &TestApp) {
    use axum::body::Body;
    use axum::http::{Request, header};
    let coach = app.session_for(&email("coach1", "acme")).await;
    let stranger = app.user_id(&email("coachee1", "globex")).await;
    let probe = json!({ "query": format!("{{ user(id: \"{stranger}\") {{ displayName }} }}") }).to_string();
    for _ in 0..10 {
        let req = Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", coach.token))
            .header("x-request-id", "same-id-every-time")
            .body(Body::from(probe.clone()))
            .expect("request");
        let res = app.send(req).await;
        assert!(res.body["errors"].is_array(), "{}", res.body);
    }
    let admin = app.session_for(&email("admin1", "acme")).await;
    assert_eq!(alerts(&audit_actions(app, &admin.token).await), 1, "ten denied requests, one alert");
}
both_backends!(
    a_client_chosen_request_id_does_not_merge_denied_requests,
    a_client_chosen_request_id_does_not_merge_denied_requests
);

// --- the operator's command line, in production mode --------------------------------------

fn printed_token(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("token:"))
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|| panic!("no token printed:\n{output}"))
}

async fn accept_over_http(server: &process::ServerProcess, token: &str) -> Value {
    let body = json!({ "query": ACCEPT, "variables": { "t": token, "p": NEW_PASSWORD } });
    let res = reqwest::Client::new()
        .post(server.url("/graphql"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("acceptInvitation");
    res.json::<Value>().await.expect("json")
}

/// A production installation starts empty: the operator creates the first system admin and
/// a tenant from the command line, and both invitations sign their people in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_production_database_is_put_into_service_from_the_command_line() {
    use process::{ScratchDir, ServerProcess, run_to_exit};
    let dir = ScratchDir::new();
    let db = dir.sqlite_url();
    let envs = [("DATABASE_URL", db.as_str())];
    let (status, root_out) = run_to_exit(&dir, &["admin", "create-system-admin", "--email", "ops@example.test"], &envs);
    assert!(status.success(), "{root_out}");
    let args = [
        "tenant",
        "create",
        "--slug",
        "initech",
        "--name",
        "Initech Coaching",
        "--admin-email",
        "ina@initech.test",
        "--admin-name",
        "Ina Admin",
    ];
    let (status, tenant_out) = run_to_exit(&dir, &args, &envs);
    assert!(status.success(), "{tenant_out}");
    assert!(tenant_out.contains("tenant initech created"), "{tenant_out}");
    // Once only, with a message that says why.
    let (status, again) = run_to_exit(&dir, &args, &envs);
    assert!(!status.success(), "{again}");
    assert!(again.contains("slug already exists"), "{again}");
    let (status, bad) = run_to_exit(&dir, &["admin", "create-system-admin", "--email", "not-an-email"], &envs);
    assert!(!status.success() && bad.contains("email"), "{bad}");

    let secret = "an-operator-chosen-secret-of-more-than-32-bytes";
    let server = ServerProcess::start(
        &dir,
        &[("DATABASE_URL", db.as_str()), ("COACHGRAPH_MODE", "production"), ("COACHGRAPH_JWT_SECRET", secret)],
    )
    .await;
    let root = accept_over_http(&server, &printed_token(&root_out)).await;
    assert_eq!(root["data"]["acceptInvitation"]["viewer"]["role"], "SYSTEM_ADMIN", "{root}");
    let ina = accept_over_http(&server, &printed_token(&tenant_out)).await;
    assert_eq!(ina["data"]["acceptInvitation"]["viewer"]["role"], "PROGRAM_ADMIN", "{ina}");
    assert_eq!(ina["data"]["acceptInvitation"]["viewer"]["displayName"], "Ina Admin");
}

// --- the whole path (issue 11, "done when") ---------------------------------------------

async fn accept_as(app: &TestApp, token: &str, client: &str) -> Value {
    let q = "mutation($t: String!, $p: String!, $c: ClientKind) {
      acceptInvitation(token: $t, password: $p, client: $c) { token refreshToken viewer { id role tenantId } } }";
    let res = app.post(&Auth::None, q, json!({ "t": token, "p": NEW_PASSWORD, "c": client })).await;
    assert!(res.body["data"]["acceptInvitation"].is_object(), "{}", res.body);
    res.body["data"]["acceptInvitation"].clone()
}

async fn invite(app: &TestApp, admin: &str, address: &str, name: &str, role: &str) -> (String, String) {
    let invited = app.gql_vars(admin, INVITE, json!({ "e": address, "d": name, "r": role })).await;
    let id = invited["data"]["inviteUser"]["id"].as_str().unwrap_or_else(|| panic!("{invited}")).to_owned();
    let issued = app.post(&Auth::Bearer(admin.to_owned()), ISSUE, json!({ "u": id })).await;
    (id, invitation_token(&issued, &["issueInvitation"]))
}

async fn a_new_tenant_goes_from_provisioning_to_devices_and_integrations_seen_by_no_other_tenant(app: &TestApp) {
    // 1. The system admin creates the tenant.
    let root = app.session_for(SYSADMIN).await;
    let res = create_tenant(app, &root.token, "initech", "ina@initech.test").await;
    let tenant_id = res.body["data"]["createTenant"]["tenantId"].as_str().expect("tenant").to_owned();
    // 2. Its admin accepts, invites a coach and a coachee, and assigns them.
    let ina = accept_as(app, &invitation_token(&res, &["createTenant", "invitation"]), "BROWSER").await;
    let ina = ina["token"].as_str().expect("token").to_owned();
    let (coach_id, coach_invite) = invite(app, &ina, "carla@initech.test", "Carla Coach", "COACH").await;
    let (coachee_id, coachee_invite) = invite(app, &ina, "cody@initech.test", "Cody Coachee", "COACHEE").await;
    let assign = "mutation($a: ID!, $b: ID!) { assignCoach(coachId: $a, coacheeId: $b) }";
    let assigned = app.gql_vars(&ina, assign, json!({ "a": coach_id, "b": coachee_id })).await;
    assert_eq!(assigned["data"]["assignCoach"], true, "{assigned}");
    // 3. Both accept and use the API: the coachee from its phone (a device session).
    let carla = accept_as(app, &coach_invite, "BROWSER").await;
    let carla = carla["token"].as_str().expect("token").to_owned();
    let coachees = app.gql(&carla, "{ coachees { nodes { id displayName } } }").await;
    assert_eq!(coachees["data"]["coachees"]["nodes"], json!([{ "id": coachee_id, "displayName": "Cody Coachee" }]));
    let cody = accept_as(app, &coachee_invite, "DEVICE").await;
    assert_eq!(cody["viewer"]["tenantId"], tenant_id.as_str());
    let cody_token = cody["token"].as_str().expect("token").to_owned();
    let me = app.gql(&cody_token, "{ me { displayName } }").await;
    assert_eq!(me["data"]["me"]["displayName"], "Cody Coachee", "{me}");
    // 4. The mobile session refreshes; replaying a used refresh token ends it.
    let refresh = "mutation($r: String!) { refreshSession(refreshToken: $r) { token refreshToken } }";
    let first = cody["refreshToken"].as_str().expect("a device session has a refresh token").to_owned();
    let rotated = app.post(&Auth::None, refresh, json!({ "r": first })).await;
    let rotated = &rotated.body["data"]["refreshSession"];
    let (new_token, second) = (rotated["token"].as_str().expect("token"), rotated["refreshToken"].as_str().expect("r"));
    assert_ne!(second, first);
    assert_eq!(app.gql(new_token, "{ me { displayName } }").await["data"]["me"]["displayName"], "Cody Coachee");
    let replayed = app.post(&Auth::None, refresh, json!({ "r": first })).await;
    assert!(replayed.body["data"].is_null() || replayed.body["data"]["refreshSession"].is_null(), "{}", replayed.body);
    let after = app.post(&Auth::Bearer(new_token.to_owned()), "{ me { displayName } }", json!({})).await;
    assert_eq!(after.error_code(), Some("UNAUTHENTICATED"), "the replay ended the session: {}", after.body);
    let second_too = app.post(&Auth::None, refresh, json!({ "r": second })).await;
    assert!(second_too.body["errors"].is_array(), "{}", second_too.body);
    // 5. The coach's integration token reads its coachees, then stops once revoked.
    let create = "mutation { createIntegrationToken(name: \"notebook sync\") { token { id name } secret } }";
    let created = app.gql(&carla, create).await;
    let secret = created["data"]["createIntegrationToken"]["secret"].as_str().unwrap_or_else(|| panic!("{created}"));
    let token_id = created["data"]["createIntegrationToken"]["token"]["id"].as_str().expect("id").to_owned();
    let via_token = app.gql(secret, "{ coachees { nodes { displayName } } }").await;
    assert_eq!(via_token["data"]["coachees"]["nodes"], json!([{ "displayName": "Cody Coachee" }]), "{via_token}");
    let revoke = "mutation($i: ID!) { revokeIntegrationToken(id: $i) }";
    assert_eq!(app.gql_vars(&carla, revoke, json!({ "i": token_id })).await["data"]["revokeIntegrationToken"], true);
    let revoked = app.post(&Auth::Bearer(secret.to_owned()), "{ coachees { nodes { id } } }", json!({})).await;
    assert_eq!(revoked.error_code(), Some("UNAUTHENTICATED"), "{}", revoked.body);
    // Other tenants see none of it.
    let acme_admin = app.session_for(&email("admin1", "acme")).await;
    let directory = app.gql(&acme_admin.token, "{ users(first: 100) { nodes { displayName } } }").await.to_string();
    for name in ["Ina Admin", "Carla Coach", "Cody Coachee"] {
        assert!(!directory.contains(name), "{name} leaked into acme: {directory}");
    }
    let acme_coach = app.session_for(&email("coach1", "acme")).await;
    let stranger = app
        .gql_vars(&acme_coach.token, "query($u: ID!) { user(id: $u) { displayName } }", json!({ "u": coachee_id }))
        .await;
    assert!(stranger["data"]["user"].is_null(), "{stranger}");
    let issue_there = app.post(&Auth::Bearer(acme_admin.token.clone()), ISSUE, json!({ "u": coachee_id })).await;
    assert_eq!(issue_there.error_code(), Some("NOT_FOUND"), "{}", issue_there.body);
}
both_backends!(
    a_new_tenant_goes_from_provisioning_to_devices_and_integrations_seen_by_no_other_tenant,
    a_new_tenant_goes_from_provisioning_to_devices_and_integrations_seen_by_no_other_tenant
);
