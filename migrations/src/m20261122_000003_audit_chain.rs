//! PostgreSQL: the head of an audit hash chain, for the writer of the next link.
//!
//! A tenant context may not read the platform chain (tenant_id NULL), yet failed logins
//! for unknown emails are written there; and two requests appending to one chain at once
//! must not both link to the same predecessor. This SECURITY DEFINER function takes a
//! transaction-scoped advisory lock on the chain and returns its last (seq, hash). It
//! refuses any tenant but the caller's own, so it reveals no other tenant's chain.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::APP_ROLE;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000003_audit_chain"
    }
}

fn up_sql() -> String {
    format!(
        r#"
CREATE OR REPLACE FUNCTION audit_chain_head(p_tenant uuid)
RETURNS TABLE (seq bigint, hash text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
  IF p_tenant IS NOT NULL AND p_tenant IS DISTINCT FROM app_tenant_id() THEN
    RAISE EXCEPTION 'audit chain of another tenant' USING ERRCODE = '42501';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('coachgraph.audit:' || COALESCE(p_tenant::text, 'platform'), 0));
  IF p_tenant IS NULL THEN
    RETURN QUERY SELECT e.seq, e.hash FROM audit_events e WHERE e.tenant_id IS NULL ORDER BY e.seq DESC LIMIT 1;
  ELSE
    RETURN QUERY SELECT e.seq, e.hash FROM audit_events e WHERE e.tenant_id = p_tenant ORDER BY e.seq DESC LIMIT 1;
  END IF;
END
$$;
REVOKE ALL ON FUNCTION audit_chain_head(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_chain_head(uuid) TO {APP_ROLE};
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
        manager.get_connection().execute_unprepared("DROP FUNCTION IF EXISTS audit_chain_head(uuid);").await?;
        Ok(())
    }
}
