//! PostgreSQL only: the application role, its grants, the tenant-context functions, row-level
//! security on every table and the append-only trigger of `audit_events`. A no-op on SQLite.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The role the server runs its queries as: neither superuser nor table owner, no BYPASSRLS.
pub const APP_ROLE: &str = "coachgraph_app";

/// `tenant_id = app_tenant_id()`
const T: &str = "tenant_id = app_tenant_id()";
/// `app_role() = 'SYSTEM_ADMIN'`
const SA: &str = "app_role() = 'SYSTEM_ADMIN'";

/// Which rows of a tenant table the restrictive tenant policy lets through.
#[derive(Clone, Copy)]
enum TenantRule {
    /// `USING (T) WITH CHECK (T)`.
    Strict,
    /// SYSTEM_ADMIN may also read and update any row (never insert or delete across tenants):
    /// `users`, `tenant_settings`.
    AdminReadUpdate,
    /// SYSTEM_ADMIN may also read any row: `break_glass_requests`.
    AdminRead,
    /// Platform sessions (tenant NULL) belong to SYSTEM_ADMIN: `auth_sessions`.
    PlatformSessions,
    /// Tenant-less events may be written under any context; SYSTEM_ADMIN reads all: `audit_events`.
    Audit,
}

struct TenantTable {
    name: &'static str,
    /// Privileges of the application role.
    privileges: &'static str,
    rule: TenantRule,
}

const CRUD: &str = "SELECT, INSERT, UPDATE, DELETE";

const fn tt(name: &'static str) -> TenantTable {
    TenantTable { name, privileges: CRUD, rule: TenantRule::Strict }
}

/// Every table that has a `tenant_id` column: RLS enabled + forced, a permissive `<t>_app`
/// policy and a restrictive `<t>_tenant` policy (plus `<t>_tenant_<cmd>` where the rule needs it).
const TENANT_TABLES: &[TenantTable] = &[
    TenantTable { name: "tenant_settings", privileges: CRUD, rule: TenantRule::AdminReadUpdate },
    TenantTable { name: "users", privileges: CRUD, rule: TenantRule::AdminReadUpdate },
    tt("coach_assignments"),
    tt("coaching_sessions"),
    tt("transcripts"),
    tt("insights"),
    tt("evidence_packs"),
    tt("action_items"),
    tt("goals"),
    tt("coach_notes"),
    tt("ai_feedback"),
    tt("consents"),
    tt("consent_history"),
    tt("ai_access_log"),
    tt("ai_action_proposals"),
    TenantTable { name: "audit_events", privileges: "SELECT, INSERT", rule: TenantRule::Audit },
    tt("access_notices"),
    TenantTable { name: "break_glass_requests", privileges: CRUD, rule: TenantRule::AdminRead },
    tt("break_glass_grants"),
    tt("integration_tokens"),
    TenantTable { name: "auth_sessions", privileges: CRUD, rule: TenantRule::PlatformSessions },
];

/// The functions the application role may execute (signatures as in GRANT/DROP).
const APP_FUNCTIONS: &[&str] = &[
    "app_tenant_id()",
    "app_principal_id()",
    "app_role()",
    "set_tenant_context(uuid, uuid, text)",
    "auth_login_candidates(text)",
];

const CREATE_ROLE: &str = r#"
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'coachgraph_app') THEN
        BEGIN
            CREATE ROLE coachgraph_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created concurrently by another database's migration
        END;
    END IF;
    -- Only touch an existing role when it is wrong: ALTER ROLE needs superuser for these
    -- attributes and races with parallel migrations ("tuple concurrently updated").
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
               WHERE rolname = 'coachgraph_app' AND (rolsuper OR rolbypassrls)) THEN
        ALTER ROLE coachgraph_app NOSUPERUSER NOBYPASSRLS;
    END IF;
END
$$;
"#;

const FUNCTIONS: &str = r#"
CREATE OR REPLACE FUNCTION app_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE OR REPLACE FUNCTION app_principal_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.principal_id', true), '')::uuid $$;

CREATE OR REPLACE FUNCTION app_role() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.role', true), '') $$;

CREATE OR REPLACE FUNCTION set_tenant_context(p_tenant uuid, p_principal uuid, p_role text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    AS $$
BEGIN
    PERFORM set_config('app.tenant_id', COALESCE(p_tenant::text, ''), true);
    PERFORM set_config('app.principal_id', COALESCE(p_principal::text, ''), true);
    PERFORM set_config('app.role', COALESCE(p_role, ''), true);
END
$$;

CREATE OR REPLACE FUNCTION auth_login_candidates(p_email text)
    RETURNS TABLE (user_id uuid, tenant_id uuid, role text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$ SELECT u.id, u.tenant_id, u.role FROM public.users u WHERE u.email = p_email $$;
REVOKE ALL ON FUNCTION auth_login_candidates(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    -- A later owner-run purge of expired events sets coachgraph.purge = 'on' (DELETE only).
    IF TG_OP = 'DELETE' AND current_setting('coachgraph.purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events;
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
"#;

/// `CREATE POLICY` has no `IF NOT EXISTS`: drop first so that re-running is harmless.
fn policy(sql: &mut String, table: &str, name: &str, kind: &str, cmd: &str, using: Option<&str>, check: Option<&str>) {
    sql.push_str(&format!("DROP POLICY IF EXISTS {name} ON {table};\n"));
    sql.push_str(&format!("CREATE POLICY {name} ON {table} AS {kind} FOR {cmd} TO {APP_ROLE}"));
    if let Some(using) = using {
        sql.push_str(&format!(" USING ({using})"));
    }
    if let Some(check) = check {
        sql.push_str(&format!(" WITH CHECK ({check})"));
    }
    sql.push_str(";\n");
}

fn enable_rls(sql: &mut String, table: &str) {
    sql.push_str(&format!(
        "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\nALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n"
    ));
}

/// Grants, RLS and policies of every table.
fn security_sql() -> String {
    let mut sql = String::new();
    sql.push_str(&format!("GRANT USAGE ON SCHEMA public TO {APP_ROLE};\n"));
    for f in APP_FUNCTIONS {
        sql.push_str(&format!("GRANT EXECUTE ON FUNCTION {f} TO {APP_ROLE};\n"));
    }

    for t in TENANT_TABLES {
        let name = t.name;
        sql.push_str(&format!("GRANT {} ON TABLE {name} TO {APP_ROLE};\n", t.privileges));
        enable_rls(&mut sql, name);
        policy(&mut sql, name, &format!("{name}_app"), "PERMISSIVE", "ALL", Some("true"), Some("true"));
        let tenant = format!("{name}_tenant");
        let t_or_sa = format!("{T} OR {SA}");
        match t.rule {
            TenantRule::Strict => {
                policy(&mut sql, name, &tenant, "RESTRICTIVE", "ALL", Some(T), Some(T));
            }
            TenantRule::AdminReadUpdate => {
                policy(&mut sql, name, &tenant, "RESTRICTIVE", "ALL", Some(&t_or_sa), Some(&t_or_sa));
                // The SYSTEM_ADMIN exception covers reads and updates only.
                let insert = format!("{tenant}_insert");
                policy(&mut sql, name, &insert, "RESTRICTIVE", "INSERT", None, Some(T));
                let delete = format!("{tenant}_delete");
                policy(&mut sql, name, &delete, "RESTRICTIVE", "DELETE", Some(T), None);
            }
            TenantRule::AdminRead => {
                policy(&mut sql, name, &tenant, "RESTRICTIVE", "ALL", Some(&t_or_sa), Some(T));
                // The SYSTEM_ADMIN exception covers reads only.
                let update = format!("{tenant}_update");
                policy(&mut sql, name, &update, "RESTRICTIVE", "UPDATE", Some(T), Some(T));
                let delete = format!("{tenant}_delete");
                policy(&mut sql, name, &delete, "RESTRICTIVE", "DELETE", Some(T), None);
            }
            TenantRule::PlatformSessions => {
                let rule = format!("{T} OR (tenant_id IS NULL AND {SA})");
                policy(&mut sql, name, &tenant, "RESTRICTIVE", "ALL", Some(&rule), Some(&rule));
            }
            TenantRule::Audit => {
                let check = format!("{T} OR tenant_id IS NULL");
                policy(&mut sql, name, &tenant, "RESTRICTIVE", "ALL", Some(&t_or_sa), Some(&check));
            }
        }
    }

    // tenants: the caller's own tenant row (or all for SYSTEM_ADMIN); read-only.
    sql.push_str(&format!("GRANT SELECT ON TABLE tenants TO {APP_ROLE};\n"));
    enable_rls(&mut sql, "tenants");
    policy(
        &mut sql,
        "tenants",
        "tenants_app",
        "PERMISSIVE",
        "SELECT",
        Some(&format!("id = app_tenant_id() OR {SA}")),
        None,
    );

    // system_config: SYSTEM_ADMIN only.
    sql.push_str(&format!("GRANT {CRUD} ON TABLE system_config TO {APP_ROLE};\n"));
    enable_rls(&mut sql, "system_config");
    policy(&mut sql, "system_config", "system_config_app", "PERMISSIVE", "ALL", Some(SA), Some(SA));
    sql
}

fn all_rls_tables() -> impl Iterator<Item = &'static str> {
    TENANT_TABLES.iter().map(|t| t.name).chain(["tenants", "system_config"])
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(CREATE_ROLE).await?;
        db.execute_unprepared(FUNCTIONS).await?;
        db.execute_unprepared(&security_sql()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        // The role is cluster-wide and shared by other databases: revoke, never drop.
        let mut sql = String::new();
        for t in all_rls_tables() {
            sql.push_str(&format!(
                "DO $$ BEGIN IF to_regclass('{t}') IS NOT NULL THEN \
                 EXECUTE 'REVOKE ALL ON TABLE {t} FROM {APP_ROLE}'; \
                 EXECUTE 'ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY'; \
                 EXECUTE 'ALTER TABLE {t} DISABLE ROW LEVEL SECURITY'; \
                 END IF; END $$;\n"
            ));
            for p in policy_names(t) {
                sql.push_str(&format!(
                    "DO $$ BEGIN IF to_regclass('{t}') IS NOT NULL THEN \
                     EXECUTE 'DROP POLICY IF EXISTS {p} ON {t}'; END IF; END $$;\n"
                ));
            }
        }
        sql.push_str(
            "DO $$ BEGIN IF to_regclass('audit_events') IS NOT NULL THEN \
             EXECUTE 'DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events'; \
             END IF; END $$;\n",
        );
        sql.push_str("DROP FUNCTION IF EXISTS audit_events_append_only();\n");
        for f in APP_FUNCTIONS {
            sql.push_str(&format!("DROP FUNCTION IF EXISTS {f};\n"));
        }
        sql.push_str(&format!("REVOKE USAGE ON SCHEMA public FROM {APP_ROLE};\n"));
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }
}

/// Every policy name `up` may have created on `table`.
fn policy_names(table: &str) -> Vec<String> {
    ["app", "tenant", "tenant_insert", "tenant_update", "tenant_delete"]
        .iter()
        .map(|s| format!("{table}_{s}"))
        .collect()
}
