//! Onboarding (issue 11, POLICY.md sections 11 and 12).
//!
//! Both backends:
//! - `invitations`: one-time secrets that set an account's password (an invitation, or an
//!   administrator's password reset). Only the sha-256 of the secret is stored; a row is
//!   spent (`used_at`), voided by a newer one (`voided_at`) or expired (`expires_at`). The
//!   platform's own invitations (a SYSTEM_ADMIN's) have no tenant.
//! - `audit_events.request_id`: the server-made serial of the request an event was written by, so that security alerts
//!   count denied requests, not denied rows. Not part of the hash chain: it is operational
//!   metadata, and the chain stays verifiable for the events written before it existed.
//!
//! PostgreSQL:
//! - `invitations` is readable and writable by administrators (PROGRAM_ADMIN in its tenant,
//!   SYSTEM_ADMIN for the platform's and for a new tenant's first admin) and by the invited
//!   user itself (accepting it), always within the transaction's tenant.
//! - `auth_invitation_lookup(hash)`: the one anonymous cross-tenant read of accepting an
//!   invitation, like `auth_login_candidates`: ids only.
//! - `auth_login_candidates(email, slug)`: login naming its tenant.
//! - A SYSTEM_ADMIN may create tenants (`tenants` INSERT), and write the access notice of a
//!   support unlock (within the account's tenant).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::APP_ROLE;
use crate::m20261122_000001_schema::{TENANT_ID, Tbl, text, ts, ts_null, uuid, uuid_null};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000012_onboarding"
    }
}

pub const NEW_TABLES: &[&str] = &["invitations"];

fn up_sql() -> String {
    let tenant = "tenant_id IS NOT DISTINCT FROM (SELECT app_tenant_id())";
    let who = "(SELECT app_role()) IN ('PROGRAM_ADMIN', 'SYSTEM_ADMIN') OR user_id = (SELECT app_principal_id())";
    format!(
        r#"
GRANT SELECT, INSERT, UPDATE ON TABLE invitations TO {APP_ROLE};
ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS invitations_app ON invitations;
CREATE POLICY invitations_app ON invitations AS PERMISSIVE FOR ALL TO {APP_ROLE}
  USING (({tenant}) AND ({who})) WITH CHECK (({tenant}) AND ({who}));

CREATE OR REPLACE FUNCTION auth_invitation_lookup(p_hash text)
  RETURNS TABLE (user_id uuid, tenant_id uuid, role text)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
  AS $$ SELECT u.id, u.tenant_id, u.role FROM public.invitations i
        JOIN public.users u ON u.id = i.user_id
        WHERE i.token_hash = p_hash $$;
REVOKE ALL ON FUNCTION auth_invitation_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_invitation_lookup(text) TO {APP_ROLE};

CREATE OR REPLACE FUNCTION auth_login_candidates(p_email text, p_slug text)
  RETURNS TABLE (user_id uuid, tenant_id uuid, role text)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
  AS $$ SELECT u.id, u.tenant_id, u.role FROM public.users u
        JOIN public.tenants t ON t.id = u.tenant_id
        WHERE u.email = p_email AND t.slug = p_slug $$;
REVOKE ALL ON FUNCTION auth_login_candidates(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_login_candidates(text, text) TO {APP_ROLE};

GRANT INSERT ON TABLE tenants TO {APP_ROLE};
DROP POLICY IF EXISTS tenants_create ON tenants;
CREATE POLICY tenants_create ON tenants AS PERMISSIVE FOR INSERT TO {APP_ROLE}
  WITH CHECK ((SELECT app_role()) = 'SYSTEM_ADMIN');

DROP POLICY IF EXISTS access_notices_platform_insert ON access_notices;
CREATE POLICY access_notices_platform_insert ON access_notices AS PERMISSIVE FOR INSERT TO {APP_ROLE}
  WITH CHECK ((SELECT app_role()) = 'SYSTEM_ADMIN' AND {tenant});
"#
    )
}

const DOWN_SQL: &str = r#"
DROP POLICY IF EXISTS access_notices_platform_insert ON access_notices;
DROP POLICY IF EXISTS tenants_create ON tenants;
REVOKE INSERT ON TABLE tenants FROM coachgraph_app;
DROP FUNCTION IF EXISTS auth_login_candidates(text, text);
DROP FUNCTION IF EXISTS auth_invitation_lookup(text);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        Tbl::new("invitations")
            .id()
            .col(uuid_null(TENANT_ID))
            .col(uuid("user_id"))
            .col(text("token_hash"))
            .col(ts("created_at"))
            .col(ts("expires_at"))
            .col(ts_null("used_at"))
            .col(ts_null("voided_at"))
            .fk(TENANT_ID, "tenants", "id")
            .fk("user_id", "users", "id")
            .unique(&["token_hash"])
            .index(&["user_id"])
            .create(manager)
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("audit_events"))
                    .add_column(ColumnDef::new(Alias::new("request_id")).text().null())
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(&up_sql()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(DOWN_SQL).await?;
        }
        manager
            .alter_table(
                Table::alter().table(Alias::new("audit_events")).drop_column(Alias::new("request_id")).to_owned(),
            )
            .await?;
        manager.drop_table(Table::drop().table("invitations").if_exists().to_owned()).await
    }
}
