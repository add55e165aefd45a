//! One row policy in the database, the same as the application's (`coachgraph::authz::rows`),
//! paid once per statement.
//!
//! Both backends:
//! - A session's private notes and its approved summary leave `coaching_sessions` for tables
//!   of their own (`session_private_notes`, resource coach_notes; `session_summaries`,
//!   resource approved_insights), so that a program admin, who reads session rows, never
//!   holds a row with a coach's notes or a coachee's summary in it (POLICY.md section 2).
//!
//! PostgreSQL:
//! - The caller's reach is a set computed once per statement: `app_reach(resource)` is the
//!   array of coachees whose rows of that resource the caller may read, `app_writes(resource)`
//!   the array it may write. Policies compare `coachee_id = ANY ((SELECT app_reach('goals'))::uuid[])`,
//!   which PostgreSQL runs as one InitPlan per statement instead of a SECURITY DEFINER call
//!   per row. The functions read assignments, consents and grants as their owner (they
//!   filter by the caller's tenant themselves) and are parallel safe.
//! - Every content table has a read policy (FOR SELECT) that admits exactly the rows the
//!   application's row check admits, and write policies (INSERT, UPDATE, DELETE) for the
//!   roles the matrix lets write. Break-glass is part of `app_reach` (read-only: it is never
//!   part of `app_writes`).
//! - Program admins and executives no longer read action items or AI feedback, nor
//!   executives sessions: program metrics come from `app_program_month_stats`, which returns
//!   per-month counts only, for those two roles, in their own tenant.
//! - Only a caller without a tenant (anonymous, SYSTEM_ADMIN) may append to the platform
//!   audit chain (`tenant_id IS NULL`).
//! - The restrictive tenant policies compare with `(SELECT app_tenant_id())`, once per
//!   statement.
//! - `app_row_coachee` knows the new tables.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::APP_ROLE;
use crate::m20261122_000001_schema::{TENANT_ID, Tbl, text, ts, uuid};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000007_row_policy"
    }
}

/// The tables this migration creates, parents first.
pub const NEW_TABLES: &[&str] = &["session_summaries", "session_private_notes"];

/// `session_summaries` and `session_private_notes` have the same shape: one row per session.
fn session_text_table(name: &'static str) -> Tbl {
    Tbl::tenant_table(name)
        .col(uuid("session_id"))
        .col(uuid("coachee_id"))
        .col(uuid("coach_id"))
        .col(text("body"))
        .col(ts("created_at"))
        .col(ts("updated_at"))
        .tfk("session_id", "coaching_sessions")
        .tfk("coachee_id", "users")
        .tfk("coach_id", "users")
        .unique(&[TENANT_ID, "session_id"])
        .index(&[TENANT_ID, "coachee_id"])
}

/// Moves a `coaching_sessions` column into its own table, each row with a new random id (not
/// the session's: an id must not tell whether a session has notes).
fn move_out(backend: DbBackend, column: &str, table: &str) -> String {
    let new_id = match backend {
        DbBackend::Postgres => "gen_random_uuid()",
        // SQLite stores a uuid as its 16 bytes.
        _ => "randomblob(16)",
    };
    format!(
        "INSERT INTO {table} (id, tenant_id, session_id, coachee_id, coach_id, body, created_at, updated_at) \
         SELECT {new_id}, tenant_id, id, coachee_id, coach_id, {column}, created_at, updated_at \
         FROM coaching_sessions WHERE {column} IS NOT NULL;\n\
         ALTER TABLE coaching_sessions DROP COLUMN {column};\n"
    )
}

/// Tables whose restrictive tenant policy is the plain `tenant_id = app_tenant_id()`.
const STRICT_TABLES: &[&str] = &[
    "coach_assignments",
    "coaching_sessions",
    "session_summaries",
    "session_private_notes",
    "transcripts",
    "insights",
    "evidence_packs",
    "action_items",
    "goals",
    "coach_notes",
    "ai_feedback",
    "consents",
    "consent_history",
    "ai_access_log",
    "ai_action_proposals",
    "access_notices",
    "break_glass_grants",
    "integration_tokens",
];

/// Per-table permissive policies the earlier migrations created; this one replaces them.
const OLD_POLICIES: &[(&str, &str)] = &[
    ("coaching_sessions", "coaching_sessions_relationship"),
    ("action_items", "action_items_relationship"),
    ("ai_feedback", "ai_feedback_relationship"),
    ("transcripts", "transcripts_relationship"),
    ("insights", "insights_relationship"),
    ("evidence_packs", "evidence_packs_relationship"),
    ("goals", "goals_relationship"),
    ("ai_action_proposals", "ai_action_proposals_relationship"),
    ("coach_notes", "coach_notes_relationship"),
    ("consents", "consents_relationship"),
    ("consent_history", "consent_history_relationship"),
    ("ai_access_log", "ai_access_log_read"),
    ("ai_access_log", "ai_access_log_write"),
    ("transcripts", "transcripts_break_glass"),
    ("insights", "insights_break_glass"),
    ("evidence_packs", "evidence_packs_break_glass"),
    ("goals", "goals_break_glass"),
    ("coach_notes", "coach_notes_break_glass"),
];

const FUNCTIONS: &str = r#"
-- AI_AGENT: the coachees whose effective AI level is at least p_min (1 OBSERVE, 2 ANALYZE,
-- 3 ACT): the lower of the coachee's highest SASHA consent and the lowest AI level among
-- its active coaches. No active coach, no AI.
CREATE OR REPLACE FUNCTION app_ai_coachees(p_min integer) RETURNS uuid[]
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT COALESCE(array_agg(a.coachee_id), '{}'::uuid[])
  FROM (SELECT coachee_id,
               min(CASE ai_level WHEN 'OBSERVE' THEN 1 WHEN 'ANALYZE' THEN 2 WHEN 'ACT' THEN 3 ELSE 0 END) AS lvl
        FROM coach_assignments
        WHERE tenant_id = app_tenant_id() AND active
        GROUP BY coachee_id) a
  JOIN (SELECT coachee_id,
               max(CASE kind WHEN 'SASHA_OBSERVE' THEN 1 WHEN 'SASHA_ANALYZE' THEN 2 WHEN 'SASHA_ACT' THEN 3 ELSE 0 END) AS lvl
        FROM consents
        WHERE tenant_id = app_tenant_id() AND granted
        GROUP BY coachee_id) c ON c.coachee_id = a.coachee_id
  WHERE app_role() = 'AI_AGENT' AND least(a.lvl, c.lvl) >= p_min
$$;

-- AI_AGENT: whose notes about whom it may read: a coachee at ANALYZE or higher, and an active
-- coach of that coachee whose own AI level is ANALYZE or higher.
CREATE OR REPLACE FUNCTION app_ai_note_authors() RETURNS TABLE (coachee_id uuid, coach_id uuid)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT a.coachee_id, a.coach_id
  FROM unnest(app_ai_coachees(2)) AS c(id)
  JOIN coach_assignments a ON a.coachee_id = c.id
  WHERE a.tenant_id = app_tenant_id() AND a.active AND a.ai_level IN ('ANALYZE', 'ACT')
$$;

-- The coachees whose rows of p_resource (a matrix row name) the caller may read.
CREATE OR REPLACE FUNCTION app_reach(p_resource text) RETURNS uuid[]
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_tenant uuid := app_tenant_id();
  v_me uuid := app_principal_id();
  v_role text := app_role();
BEGIN
  IF v_tenant IS NULL OR v_me IS NULL OR v_role IS NULL THEN
    RETURN '{}';
  END IF;
  IF v_role = 'COACHEE' THEN
    IF p_resource IN ('session_metadata', 'approved_insights', 'evidence_packs', 'action_items', 'goals',
                      'ai_feedback', 'consents', 'ai_access_log', 'ai_action_proposals') THEN
      RETURN ARRAY[v_me];
    END IF;
  ELSIF v_role = 'COACH' THEN
    IF p_resource = 'transcripts' THEN
      RETURN ARRAY(
        SELECT a.coachee_id FROM coach_assignments a
        WHERE a.tenant_id = v_tenant AND a.coach_id = v_me AND a.active
          AND EXISTS (SELECT 1 FROM consents c
                      WHERE c.tenant_id = v_tenant AND c.coachee_id = a.coachee_id
                        AND c.kind = 'TRANSCRIPT_SHARING' AND c.granted));
    ELSIF p_resource IN ('session_metadata', 'draft_insights', 'approved_insights', 'evidence_packs',
                         'coach_notes', 'action_items', 'goals', 'ai_feedback', 'consents') THEN
      RETURN ARRAY(
        SELECT a.coachee_id FROM coach_assignments a
        WHERE a.tenant_id = v_tenant AND a.coach_id = v_me AND a.active);
    END IF;
  ELSIF v_role = 'AI_AGENT' THEN
    IF p_resource IN ('session_metadata', 'transcripts') THEN
      RETURN app_ai_coachees(1);
    ELSIF p_resource IN ('approved_insights', 'coach_notes', 'action_items', 'goals', 'ai_feedback') THEN
      RETURN app_ai_coachees(2);
    END IF;
  ELSIF v_role = 'PROGRAM_ADMIN' THEN
    -- Break-glass (POLICY.md section 6): the coachees of the caller's approved, unrevoked
    -- grants that are current by the request's clock.
    IF p_resource IN ('session_metadata', 'transcripts', 'draft_insights', 'approved_insights',
                      'evidence_packs', 'coach_notes', 'action_items', 'goals', 'ai_feedback')
       AND app_now() IS NOT NULL THEN
      RETURN ARRAY(
        SELECT g.coachee_id FROM break_glass_grants g
        JOIN break_glass_requests r ON r.tenant_id = g.tenant_id AND r.id = g.request_id
        WHERE g.tenant_id = v_tenant AND g.grantee_id = v_me
          AND g.revoked_at IS NULL AND r.revoked_at IS NULL AND r.approved_by IS NOT NULL
          AND g.starts_at <= app_now() AND g.expires_at > app_now());
    END IF;
  END IF;
  RETURN '{}';
END
$$;

-- The coachees whose rows of p_resource the caller may write (create, update, delete).
CREATE OR REPLACE FUNCTION app_writes(p_resource text) RETURNS uuid[]
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_tenant uuid := app_tenant_id();
  v_me uuid := app_principal_id();
  v_role text := app_role();
BEGIN
  IF v_tenant IS NULL OR v_me IS NULL OR v_role IS NULL THEN
    RETURN '{}';
  END IF;
  IF v_role = 'COACHEE' THEN
    -- Own feedback and consents; completing own action items; confirming own proposals.
    IF p_resource IN ('ai_feedback', 'consents', 'action_items', 'ai_action_proposals') THEN
      RETURN ARRAY[v_me];
    END IF;
  ELSIF v_role = 'COACH' THEN
    IF p_resource = 'transcripts' THEN
      -- Attaching a transcript replaces one: only where the coach may read it.
      RETURN app_reach('transcripts');
    ELSIF p_resource IN ('session_metadata', 'draft_insights', 'evidence_packs', 'coach_notes',
                         'action_items', 'goals') THEN
      RETURN ARRAY(
        SELECT a.coachee_id FROM coach_assignments a
        WHERE a.tenant_id = v_tenant AND a.coach_id = v_me AND a.active);
    END IF;
  ELSIF v_role = 'AI_AGENT' THEN
    IF p_resource = 'ai_access_log' THEN
      RETURN app_ai_coachees(1);
    ELSIF p_resource IN ('draft_insights', 'evidence_packs') THEN
      RETURN app_ai_coachees(2);
    ELSIF p_resource = 'ai_action_proposals' THEN
      RETURN app_ai_coachees(3);
    END IF;
  END IF;
  RETURN '{}';
END
$$;

-- For a row the caller's policies hide: its coachee, if the row exists in the caller's
-- tenant (see migration 000004). Now also for the session text tables.
CREATE OR REPLACE FUNCTION app_row_coachee(p_table text, p_id uuid) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v uuid;
BEGIN
  -- Only roles that read coaching rows learn whose a hidden row is.
  IF app_role() IS NULL OR app_role() NOT IN ('COACHEE', 'COACH', 'AI_AGENT', 'PROGRAM_ADMIN') THEN
    RETURN NULL;
  END IF;
  IF p_table NOT IN ('coaching_sessions', 'session_summaries', 'session_private_notes', 'insights',
                     'evidence_packs', 'action_items', 'goals', 'coach_notes', 'transcripts', 'ai_feedback',
                     'ai_action_proposals') THEN
    RAISE EXCEPTION 'app_row_coachee: % is not a coaching table', p_table USING ERRCODE = '42501';
  END IF;
  EXECUTE format('SELECT coachee_id FROM %I WHERE tenant_id = $1 AND id = $2', p_table)
    INTO v USING app_tenant_id(), p_id;
  RETURN v;
END
$$;
"#;

/// Program metrics by scanning every row (migration 000008 replaces it with a version that
/// reads rollups; its `down` restores this one).
pub(crate) const PROGRAM_MONTH_STATS: &str = r#"
-- Program metrics (POLICY.md section 7): per-month counts over the caller's tenant, for the
-- two roles that read them. Rows never leave the function, and neither do small groups:
-- when any month of any source has 1 to 4 coachees, or no month has 5, the answer is the
-- single row ('suppressed', ...) and nothing else (the application's `decide` applies the
-- same rule to what it gets).
CREATE OR REPLACE FUNCTION app_program_month_stats(p_from text, p_to text)
RETURNS TABLE (source text, month text, coachees bigint, total bigint, hits bigint)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  WITH scope AS (
    SELECT app_tenant_id() AS tenant
    WHERE app_role() IN ('PROGRAM_ADMIN', 'EXECUTIVE') AND app_tenant_id() IS NOT NULL
  ), s AS (
    SELECT to_char(x.scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, x.coachee_id, 0 AS hit
    FROM coaching_sessions x JOIN scope ON x.tenant_id = scope.tenant
    WHERE x.status = 'COMPLETED'
  ), i AS (
    SELECT to_char(x.created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, x.coachee_id,
           CASE WHEN x.completed_at IS NOT NULL THEN 1 ELSE 0 END AS hit
    FROM action_items x JOIN scope ON x.tenant_id = scope.tenant
  ), f AS (
    SELECT to_char(x.created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, x.coachee_id,
           CASE WHEN x.helpful THEN 1 ELSE 0 END AS hit
    FROM ai_feedback x JOIN scope ON x.tenant_id = scope.tenant
  ), tagged AS (
    SELECT 'sessions' AS source, * FROM s
    UNION ALL SELECT 'action_items', * FROM i
    UNION ALL SELECT 'feedback', * FROM f
  ), ranged AS (
    SELECT * FROM tagged
    WHERE (p_from IS NULL OR month >= p_from) AND (p_to IS NULL OR month <= p_to)
  ), stats AS (
    SELECT source, month, count(DISTINCT coachee_id) AS coachees, count(*) AS total,
           COALESCE(sum(hit), 0)::bigint AS hits
    FROM ranged GROUP BY source, month
    UNION ALL
    SELECT 'active', NULL, count(DISTINCT coachee_id), count(*), 0::bigint
    FROM ranged WHERE source = 'sessions'
  ), verdict AS (
    SELECT EXISTS (SELECT 1 FROM stats WHERE source <> 'active' AND coachees BETWEEN 1 AND 4)
        OR COALESCE((SELECT max(coachees) FROM stats WHERE source <> 'active'), 0) < 5 AS suppressed
  )
  SELECT st.* FROM stats st, verdict v WHERE NOT v.suppressed
  UNION ALL
  SELECT 'suppressed', NULL, 0::bigint, 0::bigint, 0::bigint FROM verdict v WHERE v.suppressed
$$;
"#;

/// The functions this migration creates (signatures as in GRANT/DROP).
const NEW_FUNCTIONS: &[&str] = &[
    "app_ai_coachees(integer)",
    "app_ai_note_authors()",
    "app_reach(text)",
    "app_writes(text)",
    "app_program_month_stats(text, text)",
];

/// Per-row functions no policy uses any more.
const RETIRED_FUNCTIONS: &[&str] = &["app_sees_coachee(uuid)", "app_ai_consented(uuid)", "app_break_glass(uuid)"];

/// `coachee_id = ANY ((SELECT app_reach('<resource>'))::uuid[])`: the read set, once per
/// statement (an InitPlan; the cast keeps PostgreSQL from reading `ANY (subquery)`).
fn reads(resource: &str) -> String {
    format!("coachee_id = ANY ((SELECT app_reach('{resource}'))::uuid[])")
}

/// `coachee_id = ANY ((SELECT app_writes('<resource>'))::uuid[])`.
fn writes(resource: &str) -> String {
    format!("coachee_id = ANY ((SELECT app_writes('{resource}'))::uuid[])")
}

const ROLE: &str = "(SELECT app_role())";
const ME: &str = "(SELECT app_principal_id())";

/// Coach notes and session private notes: a coach its own; the AI those of coaches at
/// ANALYZE or higher; break-glass all of the one coachee.
fn notes_read() -> String {
    format!(
        "{} AND ({ROLE} <> 'COACH' OR coach_id = {ME}) \
         AND ({ROLE} <> 'AI_AGENT' OR (coachee_id, coach_id) IN (SELECT n.coachee_id, n.coach_id FROM app_ai_note_authors() n))",
        reads("coach_notes")
    )
}

/// One permissive policy: `<table>_<name>` for one command.
struct Policy {
    table: &'static str,
    name: &'static str,
    cmd: &'static str,
    using: Option<String>,
    check: Option<String>,
}

fn read(table: &'static str, using: String) -> Policy {
    Policy { table, name: "read", cmd: "SELECT", using: Some(using), check: None }
}

fn insert(table: &'static str, check: String) -> Policy {
    Policy { table, name: "insert", cmd: "INSERT", using: None, check: Some(check) }
}

fn update(table: &'static str, using: String, check: String) -> Policy {
    Policy { table, name: "update", cmd: "UPDATE", using: Some(using), check: Some(check) }
}

fn delete(table: &'static str, using: String) -> Policy {
    Policy { table, name: "delete", cmd: "DELETE", using: Some(using), check: None }
}

/// Insert, update and delete under one rule.
fn writes_all(table: &'static str, rule: String) -> [Policy; 3] {
    [insert(table, rule.clone()), update(table, rule.clone(), rule.clone()), delete(table, rule)]
}

/// Every permissive policy of the tables this migration governs. A command without a policy
/// is refused to every principal (permissive policies are OR-ed; none means no row).
fn policies() -> Vec<Policy> {
    let role_is = |role: &str| format!("{ROLE} = '{role}'");
    let coach = role_is("COACH");
    let admin = role_is("PROGRAM_ADMIN");
    let mut p = vec![
        read("coaching_sessions", format!("{} OR {admin}", reads("session_metadata"))),
        read("session_summaries", reads("approved_insights")),
        read("session_private_notes", notes_read()),
        read("transcripts", reads("transcripts")),
        read(
            "insights",
            format!(
                "(status = 'APPROVED' AND {}) OR (status <> 'APPROVED' AND {})",
                reads("approved_insights"),
                reads("draft_insights")
            ),
        ),
        // The coachee reads L0 always, L1 once approved.
        read(
            "evidence_packs",
            format!("{} AND ({ROLE} <> 'COACHEE' OR level = 'L0' OR approved)", reads("evidence_packs")),
        ),
        read("action_items", reads("action_items")),
        read("goals", reads("goals")),
        read("coach_notes", notes_read()),
        read("ai_feedback", reads("ai_feedback")),
        read("ai_action_proposals", reads("ai_action_proposals")),
        // The AI reads every consent of its tenant ("own grants": they are grants to it).
        read("consents", format!("{} OR {}", reads("consents"), role_is("AI_AGENT"))),
        read("consent_history", format!("{} OR {}", reads("consents"), role_is("AI_AGENT"))),
        read("ai_access_log", reads("ai_access_log")),
        // Relationship facts: the two people of an assignment, the tenant's admins, and the
        // AI (its reach is computed from them).
        read(
            "coach_assignments",
            format!("{admin} OR {} OR coach_id = {ME} OR coachee_id = {ME}", role_is("AI_AGENT")),
        ),
        read("break_glass_requests", format!("{ROLE} IN ('PROGRAM_ADMIN', 'SYSTEM_ADMIN')")),
        read("break_glass_grants", admin.clone()),
        read("access_notices", format!("coachee_id = {ME}")),
        // The audit log is the admins' (POLICY.md matrix: audit_logs); anyone else sees only
        // its own events (what the denial alert counts).
        read("audit_events", format!("{ROLE} IN ('PROGRAM_ADMIN', 'SYSTEM_ADMIN') OR actor_id = {ME}")),
        insert("audit_events", "true".to_owned()),
    ];
    // Coaching content. Coaches write their assigned coachees' sessions, drafts, evidence,
    // action items and goals, and their own notes; approved insights are final.
    p.extend(writes_all("coaching_sessions", writes("session_metadata")));
    p.extend(writes_all("session_private_notes", format!("{} AND coach_id = {ME}", writes("coach_notes"))));
    p.extend(writes_all("coach_notes", format!("{} AND coach_id = {ME}", writes("coach_notes"))));
    p.extend(writes_all("goals", writes("goals")));
    // Transcripts: the session's own coach, with TRANSCRIPT_SHARING (app_writes).
    let session_coach = format!(
        "{} AND EXISTS (SELECT 1 FROM coaching_sessions s WHERE s.tenant_id = transcripts.tenant_id \
         AND s.id = transcripts.session_id AND s.coach_id = {ME})",
        writes("transcripts")
    );
    p.extend(writes_all("transcripts", session_coach));
    // Drafts: the coach, or the AI creating a draft of its own.
    let draft = writes("draft_insights");
    p.push(insert("insights", format!("{draft} AND status = 'DRAFT' AND author_id = {ME}")));
    p.push(update("insights", format!("{draft} AND {coach} AND status <> 'APPROVED'"), format!("{draft} AND {coach}")));
    p.push(delete("insights", format!("{draft} AND {coach} AND status <> 'APPROVED'")));
    let packs = writes("evidence_packs");
    p.push(insert("evidence_packs", format!("{packs} AND author_id = {ME} AND ({coach} OR NOT approved)")));
    p.push(update("evidence_packs", format!("{packs} AND {coach}"), format!("{packs} AND {coach}")));
    p.push(delete("evidence_packs", format!("{packs} AND {coach}")));
    // Action items: the coach; the coachee completes its own (a trigger keeps it to that).
    let items = writes("action_items");
    p.push(insert("action_items", format!("{items} AND {coach}")));
    p.push(update("action_items", items.clone(), items.clone()));
    p.push(delete("action_items", format!("{items} AND {coach}")));
    // The coachee's own feedback and consents; consent history is append-only.
    p.extend(writes_all("ai_feedback", writes("ai_feedback")));
    p.extend(writes_all("consents", writes("consents")));
    p.push(insert("consent_history", writes("consents")));
    // Proposals: the AI proposes (unconfirmed, as itself); the coachee confirms (a trigger
    // keeps it to that).
    let proposals = writes("ai_action_proposals");
    p.push(insert(
        "ai_action_proposals",
        format!("{proposals} AND {} AND proposed_by = {ME} AND confirmed_at IS NULL", role_is("AI_AGENT")),
    ));
    p.push(update(
        "ai_action_proposals",
        format!("{proposals} AND {}", role_is("COACHEE")),
        format!("{proposals} AND {}", role_is("COACHEE")),
    ));
    // The AI access log is append-only, written by the AI about itself.
    p.push(insert("ai_access_log", format!("{} AND ai_principal_id = {ME}", writes("ai_access_log"))));
    // Assignments: the tenant's admins; a coach changes its own relationship's AI level (a
    // trigger keeps it to that).
    p.push(insert("coach_assignments", admin.clone()));
    p.push(update(
        "coach_assignments",
        format!("{admin} OR ({coach} AND coach_id = {ME})"),
        format!("{admin} OR ({coach} AND coach_id = {ME})"),
    ));
    p.push(delete("coach_assignments", admin.clone()));
    // Break-glass: an admin files its own request; another admin approves it; a grant is
    // issued only for a request approved by someone other than its requester, to the
    // requester, by the approver.
    p.push(insert("break_glass_requests", format!("{admin} AND requested_by = {ME} AND approved_by IS NULL")));
    p.push(update(
        "break_glass_requests",
        admin.clone(),
        format!("{admin} AND (approved_by IS NULL OR approved_by <> requested_by)"),
    ));
    p.push(insert(
        "break_glass_grants",
        format!(
            "{admin} AND approved_by = {ME} AND EXISTS (SELECT 1 FROM break_glass_requests r \
             WHERE r.tenant_id = break_glass_grants.tenant_id AND r.id = break_glass_grants.request_id \
             AND r.approved_by = {ME} AND r.requested_by = break_glass_grants.grantee_id \
             AND r.requested_by <> {ME} AND r.revoked_at IS NULL)"
        ),
    ));
    p.push(update("break_glass_grants", admin.clone(), admin.clone()));
    // Access notices are written when an admin's break-glass grant is issued.
    p.push(insert("access_notices", admin));
    p
}

/// Tables whose every permissive policy this migration replaces (the earlier `<t>_app`
/// `USING (true)` ones among them).
const GOVERNED: &[&str] = &[
    "coaching_sessions",
    "session_summaries",
    "session_private_notes",
    "transcripts",
    "insights",
    "evidence_packs",
    "action_items",
    "goals",
    "coach_notes",
    "ai_feedback",
    "ai_action_proposals",
    "consents",
    "consent_history",
    "ai_access_log",
    "coach_assignments",
    "break_glass_requests",
    "break_glass_grants",
    "access_notices",
    "audit_events",
];

const POLICY_SUFFIXES: &[&str] = &["app", "read", "insert", "update", "delete"];

/// Column guards for what a policy cannot express: which columns an update may change.
const TRIGGERS: &str = r#"
-- A coachee completes its own action items: only completed_at changes.
CREATE OR REPLACE FUNCTION action_items_coachee_completes_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF app_role() = 'COACHEE' AND (ROW(NEW.tenant_id, NEW.id, NEW.coachee_id, NEW.session_id, NEW.created_by,
      NEW.title, NEW.due_on, NEW.created_at) IS DISTINCT FROM ROW(OLD.tenant_id, OLD.id, OLD.coachee_id,
      OLD.session_id, OLD.created_by, OLD.title, OLD.due_on, OLD.created_at)) THEN
    RAISE EXCEPTION 'a coachee may only complete its action items' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS action_items_coachee_completes_only ON action_items;
CREATE TRIGGER action_items_coachee_completes_only BEFORE UPDATE ON action_items
  FOR EACH ROW EXECUTE FUNCTION action_items_coachee_completes_only();

-- A coachee confirms a proposal once: only confirmed_at changes, from NULL.
CREATE OR REPLACE FUNCTION ai_action_proposals_confirm_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF app_role() = 'COACHEE' AND (OLD.confirmed_at IS NOT NULL OR ROW(NEW.tenant_id, NEW.id, NEW.coachee_id,
      NEW.proposed_by, NEW.kind, NEW.payload, NEW.created_at) IS DISTINCT FROM ROW(OLD.tenant_id, OLD.id,
      OLD.coachee_id, OLD.proposed_by, OLD.kind, OLD.payload, OLD.created_at)) THEN
    RAISE EXCEPTION 'a coachee may only confirm a proposal, once' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS ai_action_proposals_confirm_only ON ai_action_proposals;
CREATE TRIGGER ai_action_proposals_confirm_only BEFORE UPDATE ON ai_action_proposals
  FOR EACH ROW EXECUTE FUNCTION ai_action_proposals_confirm_only();

-- A coach changes only the AI level of its own assignments.
CREATE OR REPLACE FUNCTION coach_assignments_coach_sets_ai_level_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF app_role() = 'COACH' AND (ROW(NEW.tenant_id, NEW.id, NEW.coach_id, NEW.coachee_id, NEW.active,
      NEW.created_at, NEW.ended_at) IS DISTINCT FROM ROW(OLD.tenant_id, OLD.id, OLD.coach_id, OLD.coachee_id,
      OLD.active, OLD.created_at, OLD.ended_at)) THEN
    RAISE EXCEPTION 'a coach may only set the AI level of its assignments' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS coach_assignments_coach_sets_ai_level_only ON coach_assignments;
CREATE TRIGGER coach_assignments_coach_sets_ai_level_only BEFORE UPDATE ON coach_assignments
  FOR EACH ROW EXECUTE FUNCTION coach_assignments_coach_sets_ai_level_only();
"#;

const TRIGGER_NAMES: &[(&str, &str)] = &[
    ("action_items", "action_items_coachee_completes_only"),
    ("ai_action_proposals", "ai_action_proposals_confirm_only"),
    ("coach_assignments", "coach_assignments_coach_sets_ai_level_only"),
];

fn up_security_sql() -> String {
    let mut sql = String::from(FUNCTIONS);
    sql.push_str(PROGRAM_MONTH_STATS);
    sql.push_str(TRIGGERS);
    for f in NEW_FUNCTIONS {
        sql.push_str(&format!(
            "REVOKE ALL ON FUNCTION {f} FROM PUBLIC;\nGRANT EXECUTE ON FUNCTION {f} TO {APP_ROLE};\n"
        ));
    }
    sql.push_str(&format!(
        "REVOKE ALL ON FUNCTION app_row_coachee(text, uuid) FROM PUBLIC;\n\
         GRANT EXECUTE ON FUNCTION app_row_coachee(text, uuid) TO {APP_ROLE};\n"
    ));
    for table in NEW_TABLES {
        sql.push_str(&format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {table} TO {APP_ROLE};\n\
             ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n\
             ALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n\
             DROP POLICY IF EXISTS {table}_tenant ON {table};\n\
             CREATE POLICY {table}_tenant ON {table} AS RESTRICTIVE FOR ALL TO {APP_ROLE} \
             USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());\n"
        ));
    }
    for table in STRICT_TABLES {
        let t = "tenant_id = (SELECT app_tenant_id())";
        sql.push_str(&format!("ALTER POLICY {table}_tenant ON {table} USING ({t}) WITH CHECK ({t});\n"));
    }
    for (table, policy) in OLD_POLICIES {
        sql.push_str(&format!("DROP POLICY IF EXISTS {policy} ON {table};\n"));
    }
    for table in GOVERNED {
        for suffix in POLICY_SUFFIXES {
            sql.push_str(&format!("DROP POLICY IF EXISTS {table}_{suffix} ON {table};\n"));
        }
    }
    for p in policies() {
        sql.push_str(&format!(
            "CREATE POLICY {t}_{n} ON {t} AS PERMISSIVE FOR {c} TO {APP_ROLE}",
            t = p.table,
            n = p.name,
            c = p.cmd
        ));
        if let Some(using) = &p.using {
            sql.push_str(&format!(" USING ({using})"));
        }
        if let Some(check) = &p.check {
            sql.push_str(&format!(" WITH CHECK ({check})"));
        }
        sql.push_str(";\n");
    }
    // The platform chain is written by platform operations only.
    sql.push_str(
        "ALTER POLICY audit_events_tenant ON audit_events \
         USING (tenant_id = (SELECT app_tenant_id()) OR (SELECT app_role()) = 'SYSTEM_ADMIN') \
         WITH CHECK (tenant_id = (SELECT app_tenant_id()) OR (tenant_id IS NULL AND (SELECT app_tenant_id()) IS NULL));\n",
    );
    for f in RETIRED_FUNCTIONS {
        sql.push_str(&format!("DROP FUNCTION IF EXISTS {f};\n"));
    }
    sql
}

fn down_security_sql() -> String {
    let mut sql = String::new();
    for table in GOVERNED {
        for suffix in POLICY_SUFFIXES {
            sql.push_str(&format!("DROP POLICY IF EXISTS {table}_{suffix} ON {table};\n"));
        }
        if !NEW_TABLES.contains(table) {
            // What migration 000002 gave every tenant table; 000004 and 000006 narrow it again below.
            sql.push_str(&format!(
                "CREATE POLICY {table}_app ON {table} AS PERMISSIVE FOR ALL TO {APP_ROLE} USING (true) WITH CHECK (true);\n"
            ));
        }
    }
    for (table, trigger) in TRIGGER_NAMES {
        sql.push_str(&format!("DROP TRIGGER IF EXISTS {trigger} ON {table};\nDROP FUNCTION IF EXISTS {trigger}();\n"));
    }
    for f in NEW_FUNCTIONS {
        sql.push_str(&format!("DROP FUNCTION IF EXISTS {f};\n"));
    }
    sql.push_str(
        "ALTER POLICY audit_events_tenant ON audit_events \
         USING (tenant_id = app_tenant_id() OR app_role() = 'SYSTEM_ADMIN') \
         WITH CHECK (tenant_id = app_tenant_id() OR tenant_id IS NULL);\n",
    );
    for table in STRICT_TABLES.iter().filter(|t| !NEW_TABLES.contains(t)) {
        let t = "tenant_id = app_tenant_id()";
        sql.push_str(&format!("ALTER POLICY {table}_tenant ON {table} USING ({t}) WITH CHECK ({t});\n"));
    }
    // The per-row policies of migrations 000004 and 000006, as they were.
    sql.push_str(&crate::m20261122_000004_relationship_policies::functions_sql());
    sql.push_str(&crate::m20261122_000004_relationship_policies::policies_sql());
    sql.push_str(&crate::m20261122_000006_break_glass::up_sql());
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in NEW_TABLES {
            session_text_table(name).create(manager).await?;
        }
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        db.execute_unprepared(&move_out(backend, "summary", "session_summaries")).await?;
        db.execute_unprepared(&move_out(backend, "private_notes", "session_private_notes")).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(&up_security_sql()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(&down_security_sql()).await?;
        }
        for (column, table) in [("summary", "session_summaries"), ("private_notes", "session_private_notes")] {
            db.execute_unprepared(&format!(
                "ALTER TABLE coaching_sessions ADD COLUMN {column} TEXT NULL;\n\
                 UPDATE coaching_sessions SET {column} = \
                 (SELECT t.body FROM {table} t WHERE t.tenant_id = coaching_sessions.tenant_id \
                  AND t.session_id = coaching_sessions.id);\n\
                 DROP TABLE {table};\n"
            ))
            .await?;
        }
        Ok(())
    }
}
