//! PostgreSQL: erasing a person (POLICY.md section 10, `deleteMyAccount`, `deleteCoachee`).
//!
//! Deleting the `users` row removes every row that references the person through a
//! foreign key (all cascade). A few columns name a person without a foreign key; before the
//! delete they are cleared by `app_forget_user`, a SECURITY DEFINER function, because some
//! of those rows are hidden from the caller by the relationship policies (an insight a
//! coach approved for a coachee no longer assigned to it, a break-glass grant):
//! - nullable columns are set to NULL: `insights.approved_by`,
//!   `break_glass_requests.approved_by` / `revoked_by`;
//! - NOT NULL columns get the nil UUID, "a deleted principal": `access_notices.actor_id`
//!   (the notice stays with the coachee it concerns: role, time, reason),
//!   `break_glass_grants.approved_by`, `consent_history.changed_by`.
//!
//! The function acts only inside the caller's tenant and only for a person the caller may
//! erase: itself (a COACH or COACHEE) or, for a COACH, a coachee actively assigned to it.
//! It returns nothing and reads nothing back. The `users` row itself is deleted by the
//! application role under its own row-level security.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::APP_ROLE;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000005_data_rights"
    }
}

fn up_sql() -> String {
    format!(
        r#"
CREATE OR REPLACE FUNCTION app_forget_user(p_user uuid) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_tenant uuid := app_tenant_id();
  v_nil uuid := '00000000-0000-0000-0000-000000000000';
BEGIN
  IF v_tenant IS NULL OR p_user IS NULL OR NOT EXISTS (
      SELECT 1 FROM users u
      WHERE u.tenant_id = v_tenant AND u.id = p_user AND u.role IN ('COACH', 'COACHEE')) THEN
    RAISE EXCEPTION 'app_forget_user: no such person in this tenant' USING ERRCODE = '42501';
  END IF;
  IF NOT (
      (p_user = app_principal_id() AND app_role() IN ('COACH', 'COACHEE'))
      OR (app_role() = 'COACH' AND app_assigned(app_principal_id(), p_user))) THEN
    RAISE EXCEPTION 'app_forget_user: not permitted' USING ERRCODE = '42501';
  END IF;
  UPDATE insights SET approved_by = NULL WHERE tenant_id = v_tenant AND approved_by = p_user;
  UPDATE break_glass_requests SET approved_by = NULL WHERE tenant_id = v_tenant AND approved_by = p_user;
  UPDATE break_glass_requests SET revoked_by = NULL WHERE tenant_id = v_tenant AND revoked_by = p_user;
  UPDATE break_glass_grants SET approved_by = v_nil WHERE tenant_id = v_tenant AND approved_by = p_user;
  UPDATE access_notices SET actor_id = v_nil WHERE tenant_id = v_tenant AND actor_id = p_user;
  UPDATE consent_history SET changed_by = v_nil WHERE tenant_id = v_tenant AND changed_by = p_user;
END
$$;
REVOKE ALL ON FUNCTION app_forget_user(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_forget_user(uuid) TO {APP_ROLE};
"#
    )
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
        manager.get_connection().execute_unprepared("DROP FUNCTION IF EXISTS app_forget_user(uuid);").await?;
        Ok(())
    }
}
