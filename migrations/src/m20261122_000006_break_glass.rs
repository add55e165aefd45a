//! PostgreSQL: break-glass reads (POLICY.md section 6) in row-level security, and the AI
//! rate limit's setting.
//!
//! The relationship policies keep program admins out of the content tables (goals, notes,
//! transcripts, insights, evidence). A break-glass grant opens them for one coachee, to one
//! admin, for a while:
//! - `app_now()`: the request's clock, the transaction-local setting `app.now` the
//!   application sets (`TenantTx::set_clock`) before a program admin's first query. The
//!   database's own `now()` is never used: the application's clock is the one that decides
//!   (and tests move it). Unset means no time, which opens nothing.
//! - `app_break_glass(coachee)`: the caller is a PROGRAM_ADMIN holding a grant for that
//!   coachee, issued by an approval, revoked neither on the grant nor on its request, with
//!   `starts_at <= app_now() < expires_at`.
//! - `<table>_break_glass`: a PERMISSIVE policy FOR SELECT only on transcripts, insights,
//!   evidence_packs, goals and coach_notes, so the grant is read-only in the database too
//!   (sessions, action items and AI feedback already admit program admins for aggregates).
//!   The RESTRICTIVE tenant policies still apply.
//! - `app_ai_rate_limit()`: the one platform setting `ai.rate_limit_per_minute` (a
//!   non-negative integer, else NULL), readable by the AI principal's requests although
//!   `system_config` is SYSTEM_ADMIN's alone.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::APP_ROLE;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000006_break_glass"
    }
}

/// The content tables a grant opens (beyond those program admins already read).
const TABLES: &[&str] = &["transcripts", "insights", "evidence_packs", "goals", "coach_notes"];

pub(crate) fn up_sql() -> String {
    let mut sql = format!(
        r#"
CREATE OR REPLACE FUNCTION app_now() RETURNS timestamptz
LANGUAGE sql STABLE AS $$ SELECT NULLIF(current_setting('app.now', true), '')::timestamptz $$;

CREATE OR REPLACE FUNCTION app_break_glass(p_coachee uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT app_role() = 'PROGRAM_ADMIN' AND app_now() IS NOT NULL AND EXISTS (
    SELECT 1 FROM break_glass_grants g
    JOIN break_glass_requests r ON r.tenant_id = g.tenant_id AND r.id = g.request_id
    WHERE g.tenant_id = app_tenant_id() AND g.grantee_id = app_principal_id()
      AND g.coachee_id = p_coachee
      AND g.revoked_at IS NULL AND r.revoked_at IS NULL AND r.approved_by IS NOT NULL
      AND g.starts_at <= app_now() AND g.expires_at > app_now())
$$;

CREATE OR REPLACE FUNCTION app_ai_rate_limit() RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT CASE WHEN c.value ~ '^[0-9]{{1,7}}$' THEN c.value::integer END
  FROM system_config c WHERE c.key = 'ai.rate_limit_per_minute'
$$;

REVOKE ALL ON FUNCTION app_break_glass(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION app_ai_rate_limit() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_now() TO {APP_ROLE};
GRANT EXECUTE ON FUNCTION app_break_glass(uuid) TO {APP_ROLE};
GRANT EXECUTE ON FUNCTION app_ai_rate_limit() TO {APP_ROLE};
"#
    );
    for table in TABLES {
        sql.push_str(&format!(
            "DROP POLICY IF EXISTS {table}_break_glass ON {table};\n\
             CREATE POLICY {table}_break_glass ON {table} AS PERMISSIVE FOR SELECT TO {APP_ROLE} \
             USING (app_role() = 'PROGRAM_ADMIN' AND app_break_glass(coachee_id));\n"
        ));
    }
    sql
}

fn down_sql() -> String {
    let mut sql = String::new();
    for table in TABLES {
        sql.push_str(&format!("DROP POLICY IF EXISTS {table}_break_glass ON {table};\n"));
    }
    sql.push_str(
        "DROP FUNCTION IF EXISTS app_ai_rate_limit();\n\
         DROP FUNCTION IF EXISTS app_break_glass(uuid);\n\
         DROP FUNCTION IF EXISTS app_now();\n",
    );
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(&up_sql()).await?;
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
