//! Failed credential checks per account and source address (issue 9), so that guessing is
//! throttled where it comes from, with a backoff, while the account's owner, elsewhere,
//! still signs in: an attacker who knows an email cannot keep its owner out.
//!
//! `login_throttles(user_id, source, tenant_id, failures, blocked_until, updated_at)`, one row
//! per account and source with failures since that source's last success. The server
//! increments it in one statement (`INSERT .. ON CONFLICT DO UPDATE .. RETURNING`), so
//! concurrent wrong passwords each count.
//!
//! PostgreSQL: row-level security lets a transaction touch only the rows of its own
//! principal (login scopes its transaction to the account it checks).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::APP_ROLE;
use crate::m20261122_000001_schema::{TENANT_ID, Tbl, int, text, ts, ts_null, uuid, uuid_null};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000010_login_throttles"
    }
}

pub const NEW_TABLES: &[&str] = &["login_throttles"];

/// Anonymous denials and alerts from one address on the platform chain since a moment: what
/// an anonymous request (which cannot read that chain) needs to raise an alert per source.
/// Counts only, never rows.
const SOURCE_ACTIVITY: &str = "
CREATE OR REPLACE FUNCTION audit_source_activity(p_ip text, p_since timestamptz, p_alert text)
RETURNS TABLE (denials bigint, alerts bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT count(*) FILTER (WHERE actor_id IS NULL AND outcome = 'DENIED'),
         count(*) FILTER (WHERE action = p_alert AND outcome = 'ALERT')
  FROM audit_events
  WHERE tenant_id IS NULL AND ip_address = p_ip AND at > p_since
$$;";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        Tbl::new("login_throttles")
            .col(uuid("user_id"))
            .col(text("source"))
            .col(uuid_null(TENANT_ID))
            .col(int("failures"))
            .col(ts_null("blocked_until"))
            .col(ts("updated_at"))
            .primary_key(&["user_id", "source"])
            .fk("user_id", "users", "id")
            .create(manager)
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_source")
                    .table(Alias::new("audit_events"))
                    .col(Alias::new("ip_address"))
                    .col(Alias::new("at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            // Its own rows (login scopes its transaction to the account it checks), and the
            // platform's support unlock.
            let own = "(user_id = (SELECT app_principal_id()) \
                       AND tenant_id IS NOT DISTINCT FROM (SELECT app_tenant_id())) \
                       OR (SELECT app_role()) = 'SYSTEM_ADMIN'";
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE login_throttles TO {APP_ROLE};\n\
                     ALTER TABLE login_throttles ENABLE ROW LEVEL SECURITY;\n\
                     ALTER TABLE login_throttles FORCE ROW LEVEL SECURITY;\n\
                     DROP POLICY IF EXISTS login_throttles_own ON login_throttles;\n\
                     CREATE POLICY login_throttles_own ON login_throttles AS PERMISSIVE FOR ALL TO {APP_ROLE} \
                     USING ({own}) WITH CHECK ({own});\n\
                     {SOURCE_ACTIVITY}\n\
                     REVOKE ALL ON FUNCTION audit_source_activity(text, timestamptz, text) FROM PUBLIC;\n\
                     GRANT EXECUTE ON FUNCTION audit_source_activity(text, timestamptz, text) TO {APP_ROLE};\n"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS audit_source_activity(text, timestamptz, text);")
                .await?;
        }
        manager
            .drop_index(Index::drop().name("idx_audit_events_source").table(Alias::new("audit_events")).to_owned())
            .await?;
        manager.drop_table(Table::drop().table("login_throttles").if_exists().to_owned()).await
    }
}
