//! PostgreSQL: relationship rules in row-level security, the second wall behind the
//! application's checks. The tenant policy (RESTRICTIVE) already confines every query to
//! one tenant; these PERMISSIVE policies replace the `USING (true)` ones on coaching content
//! so that, inside the tenant:
//! - a coachee's context reaches its own rows only;
//! - a coach's context reaches only coachees with an active assignment to it, and only its
//!   own coach notes;
//! - the AI principal's context reaches only coachees who granted a SASHA consent and whose
//!   coaches have not switched the AI off for them (withdrawal works on the next statement);
//! - program admins and executives reach only the tables their aggregates and session
//!   metadata need (sessions, action items, AI feedback), never notes, drafts, transcripts,
//!   goals or evidence.
//!
//! Helper functions that read assignments and consents are SECURITY DEFINER so a policy on
//! one table can consult another without recursing through that table's own policies; each
//! filters by the caller's tenant explicitly.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::APP_ROLE;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000004_relationship_policies"
    }
}

/// (table, USING expression). The same expression is the WITH CHECK of writes.
const RULES: &[(&str, &str)] = &[
    ("coaching_sessions", "app_sees_coachee(coachee_id) OR app_role() IN ('PROGRAM_ADMIN', 'EXECUTIVE')"),
    ("action_items", "app_sees_coachee(coachee_id) OR app_role() IN ('PROGRAM_ADMIN', 'EXECUTIVE')"),
    ("ai_feedback", "app_sees_coachee(coachee_id) OR app_role() IN ('PROGRAM_ADMIN', 'EXECUTIVE')"),
    ("transcripts", "app_sees_coachee(coachee_id)"),
    ("insights", "app_sees_coachee(coachee_id)"),
    ("evidence_packs", "app_sees_coachee(coachee_id)"),
    ("goals", "app_sees_coachee(coachee_id)"),
    ("ai_action_proposals", "app_sees_coachee(coachee_id)"),
    (
        "coach_notes",
        "(app_role() = 'COACH' AND coach_id = app_principal_id() AND app_assigned(coach_id, coachee_id)) \
         OR (app_role() = 'AI_AGENT' AND app_ai_consented(coachee_id))",
    ),
    // The AI computes its reach from every coachee's consents; others see their own or assigned.
    ("consents", "app_sees_coachee(coachee_id) OR app_role() = 'AI_AGENT'"),
    ("consent_history", "app_sees_coachee(coachee_id) OR app_role() = 'AI_AGENT'"),
];

pub(crate) fn functions_sql() -> String {
    format!(
        r#"
CREATE OR REPLACE FUNCTION app_assigned(p_coach uuid, p_coachee uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT EXISTS (
    SELECT 1 FROM coach_assignments a
    WHERE a.tenant_id = app_tenant_id() AND a.coach_id = p_coach AND a.coachee_id = p_coachee AND a.active)
$$;

CREATE OR REPLACE FUNCTION app_ai_consented(p_coachee uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT EXISTS (
      SELECT 1 FROM consents c
      WHERE c.tenant_id = app_tenant_id() AND c.coachee_id = p_coachee AND c.granted
        AND c.kind IN ('SASHA_OBSERVE', 'SASHA_ANALYZE', 'SASHA_ACT'))
    AND EXISTS (
      SELECT 1 FROM coach_assignments a
      WHERE a.tenant_id = app_tenant_id() AND a.coachee_id = p_coachee AND a.active)
    AND NOT EXISTS (
      SELECT 1 FROM coach_assignments a
      WHERE a.tenant_id = app_tenant_id() AND a.coachee_id = p_coachee AND a.active AND a.ai_level = 'OFF')
$$;

CREATE OR REPLACE FUNCTION app_sees_coachee(p_coachee uuid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
  SELECT CASE app_role()
    WHEN 'COACHEE' THEN p_coachee = app_principal_id()
    WHEN 'COACH' THEN app_assigned(app_principal_id(), p_coachee)
    WHEN 'AI_AGENT' THEN app_ai_consented(p_coachee)
    ELSE false
  END
$$;

-- For a row the caller's policies hide: its coachee, if the row exists in the caller's
-- tenant. Lets the application answer FORBIDDEN or CONSENT_REQUIRED for a row of its own
-- tenant it may not read (POLICY.md section 8) and NOT_FOUND for anything else, exactly as
-- without row-level security. Returns an id only, never content.
CREATE OR REPLACE FUNCTION app_row_coachee(p_table text, p_id uuid) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v uuid;
BEGIN
  IF p_table NOT IN ('coaching_sessions', 'insights', 'evidence_packs', 'action_items', 'goals',
                     'coach_notes', 'transcripts', 'ai_feedback', 'ai_action_proposals') THEN
    RAISE EXCEPTION 'app_row_coachee: % is not a coaching table', p_table USING ERRCODE = '42501';
  END IF;
  EXECUTE format('SELECT coachee_id FROM %I WHERE tenant_id = $1 AND id = $2', p_table)
    INTO v USING app_tenant_id(), p_id;
  RETURN v;
END
$$;

REVOKE ALL ON FUNCTION app_row_coachee(text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_row_coachee(text, uuid) TO {APP_ROLE};
REVOKE ALL ON FUNCTION app_assigned(uuid, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION app_ai_consented(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION app_sees_coachee(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_assigned(uuid, uuid) TO {APP_ROLE};
GRANT EXECUTE ON FUNCTION app_ai_consented(uuid) TO {APP_ROLE};
GRANT EXECUTE ON FUNCTION app_sees_coachee(uuid) TO {APP_ROLE};
"#
    )
}

pub(crate) fn policies_sql() -> String {
    let mut sql = String::new();
    for (table, rule) in RULES {
        sql.push_str(&format!(
            "DROP POLICY IF EXISTS {table}_app ON {table};\n\
             DROP POLICY IF EXISTS {table}_relationship ON {table};\n\
             CREATE POLICY {table}_relationship ON {table} AS PERMISSIVE FOR ALL TO {APP_ROLE} \
             USING ({rule}) WITH CHECK ({rule});\n"
        ));
    }
    // The AI access log: the coachee reads its own; the AI writes entries about coachees it
    // may reach.
    sql.push_str(&format!(
        "DROP POLICY IF EXISTS ai_access_log_app ON ai_access_log;\n\
         DROP POLICY IF EXISTS ai_access_log_read ON ai_access_log;\n\
         DROP POLICY IF EXISTS ai_access_log_write ON ai_access_log;\n\
         CREATE POLICY ai_access_log_read ON ai_access_log AS PERMISSIVE FOR SELECT TO {APP_ROLE} \
         USING (app_role() = 'COACHEE' AND coachee_id = app_principal_id());\n\
         CREATE POLICY ai_access_log_write ON ai_access_log AS PERMISSIVE FOR INSERT TO {APP_ROLE} \
         WITH CHECK (app_role() = 'AI_AGENT' AND ai_principal_id = app_principal_id() AND app_ai_consented(coachee_id));\n"
    ));
    sql
}

fn down_sql() -> String {
    let mut sql = String::new();
    for (table, _) in RULES.iter().chain([("ai_access_log", "")].iter()) {
        sql.push_str(&format!(
            "DROP POLICY IF EXISTS {table}_relationship ON {table};\n\
             DROP POLICY IF EXISTS {table}_read ON {table};\n\
             DROP POLICY IF EXISTS {table}_write ON {table};\n\
             DROP POLICY IF EXISTS {table}_app ON {table};\n\
             CREATE POLICY {table}_app ON {table} AS PERMISSIVE FOR ALL TO {APP_ROLE} USING (true) WITH CHECK (true);\n"
        ));
    }
    sql.push_str(
        "DROP FUNCTION IF EXISTS app_row_coachee(text, uuid);\n\
         DROP FUNCTION IF EXISTS app_sees_coachee(uuid);\n\
         DROP FUNCTION IF EXISTS app_ai_consented(uuid);\n\
         DROP FUNCTION IF EXISTS app_assigned(uuid, uuid);\n",
    );
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(&functions_sql()).await?;
        db.execute_unprepared(&policies_sql()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(&down_sql()).await?;
        Ok(())
    }
}
