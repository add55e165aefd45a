//! Every table of the data model (TABLES.md), portable between SQLite and PostgreSQL.
//!
//! Conventions enforced here:
//! - every tenant table has `id` (UUID PK), `tenant_id` and `UNIQUE (tenant_id, id)`;
//! - every foreign key between tenant tables is composite `(tenant_id, x_id)`, so a row can
//!   never point at another tenant's row, and cascades on delete;
//! - every foreign key column set is indexed (unless an index already starts with it).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Creation order (parents first). `down` drops them in reverse order.
pub const TABLES: &[&str] = &[
    "tenants",
    "tenant_settings",
    "users",
    "coach_assignments",
    "coaching_sessions",
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
    "audit_events",
    "access_notices",
    "break_glass_requests",
    "break_glass_grants",
    "system_config",
    "integration_tokens",
    "auth_sessions",
];

pub(crate) const TENANT_ID: &str = "tenant_id";

// ---------------------------------------------------------------- column helpers

pub(crate) fn uuid(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).uuid().not_null().take()
}
pub(crate) fn uuid_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).uuid().null().take()
}
pub(crate) fn text(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).text().not_null().take()
}
pub(crate) fn text_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).text().null().take()
}
pub(crate) fn ts(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).timestamp_with_time_zone().not_null().take()
}
pub(crate) fn ts_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).timestamp_with_time_zone().null().take()
}
pub(crate) fn int(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).integer().not_null().take()
}
pub(crate) fn boolean(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).boolean().not_null().take()
}

// ---------------------------------------------------------------- table builder

struct Idx {
    unique: bool,
    cols: Vec<&'static str>,
    /// Partial index on `tenant_id IS NULL`.
    where_tenant_null: bool,
}

/// A table under construction: the CREATE TABLE statement plus the indexes to create after it.
pub(crate) struct Tbl {
    name: &'static str,
    stmt: TableCreateStatement,
    indexes: Vec<Idx>,
    /// Column sets of foreign keys: indexed unless an explicit index already starts with them.
    fk_cols: Vec<Vec<&'static str>>,
    /// Columns of a composite primary key (`primary_key`), empty otherwise.
    pk: Vec<&'static str>,
}

impl Tbl {
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            stmt: Table::create().table(name).if_not_exists().take(),
            indexes: Vec::new(),
            fk_cols: Vec::new(),
            pk: Vec::new(),
        }
    }

    /// `id` UUID PK, `tenant_id` UUID NOT NULL, `UNIQUE (tenant_id, id)`.
    pub(crate) fn tenant_table(name: &'static str) -> Self {
        Self::new(name).id().col(uuid(TENANT_ID)).unique(&[TENANT_ID, "id"])
    }

    pub(crate) fn id(mut self) -> Self {
        self.stmt.col(ColumnDef::new("id").uuid().not_null().primary_key());
        self
    }

    pub(crate) fn col(mut self, col: impl IntoColumnDef) -> Self {
        self.stmt.col(col);
        self
    }

    pub(crate) fn check(mut self, name: &'static str, sql: &'static str) -> Self {
        self.stmt.check((name, Expr::cust(sql)));
        self
    }

    pub(crate) fn unique(mut self, cols: &[&'static str]) -> Self {
        self.indexes.push(Idx { unique: true, cols: cols.to_vec(), where_tenant_null: false });
        self
    }

    /// Unique index restricted to `tenant_id IS NULL` rows (NULLs are distinct in a plain UNIQUE).
    pub(crate) fn unique_where_tenant_null(mut self, cols: &[&'static str]) -> Self {
        self.indexes.push(Idx { unique: true, cols: cols.to_vec(), where_tenant_null: true });
        self
    }

    pub(crate) fn index(mut self, cols: &[&'static str]) -> Self {
        self.indexes.push(Idx { unique: false, cols: cols.to_vec(), where_tenant_null: false });
        self
    }

    /// A composite primary key (it also covers a foreign key whose columns start it).
    pub(crate) fn primary_key(mut self, cols: &[&'static str]) -> Self {
        let mut pk = Index::create();
        for col in cols {
            pk.col(*col);
        }
        self.stmt.primary_key(&mut pk);
        self.pk = cols.to_vec();
        self
    }

    /// Plain foreign key `col -> parent(parent_col)` ON DELETE CASCADE.
    pub(crate) fn fk(mut self, col: &'static str, parent: &'static str, parent_col: &'static str) -> Self {
        self.stmt.foreign_key(
            ForeignKey::create()
                .name(format!("fk_{}_{}_{}", self.name, col, parent))
                .from_tbl(self.name)
                .from_col(col)
                .to_tbl(parent)
                .to_col(parent_col)
                .on_delete(ForeignKeyAction::Cascade)
                .on_update(ForeignKeyAction::NoAction),
        );
        self.fk_cols.push(vec![col]);
        self
    }

    /// Composite tenant foreign key `(tenant_id, col) -> parent(tenant_id, id)` ON DELETE CASCADE.
    pub(crate) fn tfk(mut self, col: &'static str, parent: &'static str) -> Self {
        self.stmt.foreign_key(
            ForeignKey::create()
                .name(format!("fk_{}_{}", self.name, col))
                .from_tbl(self.name)
                .from_col(TENANT_ID)
                .from_col(col)
                .to_tbl(parent)
                .to_col(TENANT_ID)
                .to_col("id")
                .on_delete(ForeignKeyAction::Cascade)
                .on_update(ForeignKeyAction::NoAction),
        );
        self.fk_cols.push(vec![TENANT_ID, col]);
        self
    }

    pub(crate) async fn create(self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let Tbl { name, stmt, mut indexes, fk_cols, pk } = self;
        for cols in fk_cols {
            let covered =
                pk.starts_with(&cols) || indexes.iter().any(|ix| !ix.where_tenant_null && ix.cols.starts_with(&cols));
            if !covered {
                indexes.push(Idx { unique: false, cols, where_tenant_null: false });
            }
        }
        manager.create_table(stmt).await?;
        for ix in indexes {
            let prefix = if ix.unique { "ux" } else { "ix" };
            let suffix = if ix.where_tenant_null { "_platform" } else { "" };
            let mut stmt = Index::create()
                .if_not_exists()
                .name(format!("{prefix}_{name}_{}{suffix}", ix.cols.join("_")))
                .table(name)
                .take();
            for col in &ix.cols {
                stmt.col(*col);
            }
            if ix.unique {
                stmt.unique();
            }
            if ix.where_tenant_null {
                stmt.and_where(Expr::col(TENANT_ID).is_null());
            }
            manager.create_index(stmt).await?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- tables

fn tables() -> Vec<Tbl> {
    vec![
        // 1
        Tbl::new("tenants").id().col(text("slug")).col(text("name")).col(ts("created_at")).unique(&["slug"]),
        // 2
        Tbl::new("tenant_settings")
            .col(ColumnDef::new(TENANT_ID).uuid().not_null().primary_key())
            .col(int("session_timeout_minutes").default(30))
            .col(int("audit_retention_days").default(90))
            .col(ColumnDef::new("data_retention_days").integer().null())
            .col(ts("updated_at"))
            .fk(TENANT_ID, "tenants", "id"),
        // 3
        Tbl::new("users")
            .id()
            .col(uuid_null(TENANT_ID))
            .col(text("email"))
            .col(text("display_name"))
            .col(text("role"))
            .col(text("status"))
            .col(text_null("password_hash"))
            .col(int("failed_login_count").default(0))
            .col(ts_null("locked_until"))
            .col(ts_null("last_login_at"))
            .col(ts_null("password_changed_at"))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .check("ck_users_platform_role", "(tenant_id IS NULL) = (role = 'SYSTEM_ADMIN')")
            .fk(TENANT_ID, "tenants", "id")
            .unique(&[TENANT_ID, "id"])
            .unique(&[TENANT_ID, "email"])
            .unique_where_tenant_null(&["email"])
            .index(&["email"]),
        // 4
        Tbl::tenant_table("coach_assignments")
            .col(uuid("coach_id"))
            .col(uuid("coachee_id"))
            .col(boolean("active").default(true))
            .col(text("ai_level").default("OFF"))
            .col(ts("created_at"))
            .col(ts_null("ended_at"))
            .tfk("coach_id", "users")
            .tfk("coachee_id", "users")
            .unique(&[TENANT_ID, "coach_id", "coachee_id"])
            .index(&[TENANT_ID, "coachee_id"]),
        // 5
        Tbl::tenant_table("coaching_sessions")
            .col(uuid("coach_id"))
            .col(uuid("coachee_id"))
            .col(ts("scheduled_at"))
            .col(int("duration_minutes"))
            .col(text("status"))
            .col(text_null("summary"))
            .col(text_null("private_notes"))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .tfk("coach_id", "users")
            .tfk("coachee_id", "users")
            .index(&[TENANT_ID, "coachee_id", "scheduled_at"])
            .index(&[TENANT_ID, "coach_id"]),
        // 6
        Tbl::tenant_table("transcripts")
            .col(uuid("session_id"))
            .col(uuid("coachee_id"))
            .col(text("body"))
            .col(ts("created_at"))
            .tfk("session_id", "coaching_sessions")
            .tfk("coachee_id", "users")
            .unique(&[TENANT_ID, "session_id"]),
        // 7
        Tbl::tenant_table("insights")
            .col(uuid("session_id"))
            .col(uuid("coachee_id"))
            .col(uuid("author_id"))
            .col(text("author_role"))
            .col(text("body"))
            .col(text("status"))
            .col(ts_null("approved_at"))
            .col(uuid_null("approved_by"))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .tfk("session_id", "coaching_sessions")
            .tfk("coachee_id", "users")
            .tfk("author_id", "users")
            .index(&[TENANT_ID, "session_id"]),
        // 8
        Tbl::tenant_table("evidence_packs")
            .col(uuid("session_id"))
            .col(uuid("coachee_id"))
            .col(uuid("author_id"))
            .col(text("author_role"))
            .col(text("level"))
            .col(text("content"))
            .col(boolean("approved").default(false))
            .col(ts_null("approved_at"))
            .col(ts("created_at"))
            .tfk("session_id", "coaching_sessions")
            .tfk("coachee_id", "users")
            .tfk("author_id", "users")
            .index(&[TENANT_ID, "session_id"]),
        // 9
        Tbl::tenant_table("action_items")
            .col(uuid("coachee_id"))
            .col(uuid_null("session_id"))
            .col(uuid("created_by"))
            .col(text("title"))
            .col(ColumnDef::new("due_on").date().null())
            .col(ts_null("completed_at"))
            .col(ts("created_at"))
            .tfk("coachee_id", "users")
            .tfk("session_id", "coaching_sessions")
            .tfk("created_by", "users")
            .index(&[TENANT_ID, "coachee_id"])
            .index(&[TENANT_ID, "session_id"]),
        // 10
        Tbl::tenant_table("goals")
            .col(uuid("coachee_id"))
            .col(uuid("created_by"))
            .col(text("title"))
            .col(int("progress_percent").default(0))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .check("ck_goals_progress_percent", "progress_percent >= 0 AND progress_percent <= 100")
            .tfk("coachee_id", "users")
            .tfk("created_by", "users")
            .index(&[TENANT_ID, "coachee_id"]),
        // 11
        Tbl::tenant_table("coach_notes")
            .col(uuid("coach_id"))
            .col(uuid("coachee_id"))
            .col(text("body"))
            .col(ts("created_at"))
            .col(ts("updated_at"))
            .tfk("coach_id", "users")
            .tfk("coachee_id", "users")
            .index(&[TENANT_ID, "coachee_id", "coach_id"]),
        // 12
        Tbl::tenant_table("ai_feedback")
            .col(uuid("insight_id"))
            .col(uuid("coachee_id"))
            .col(boolean("helpful"))
            .col(text_null("comment"))
            .col(ts("created_at"))
            .tfk("insight_id", "insights")
            .tfk("coachee_id", "users")
            .index(&[TENANT_ID, "coachee_id"]),
        // 13
        Tbl::tenant_table("consents")
            .col(uuid("coachee_id"))
            .col(text("kind"))
            .col(boolean("granted"))
            .col(ts("changed_at"))
            .tfk("coachee_id", "users")
            .unique(&[TENANT_ID, "coachee_id", "kind"]),
        // 14
        Tbl::tenant_table("consent_history")
            .col(uuid("coachee_id"))
            .col(text("kind"))
            .col(boolean("granted"))
            .col(ts("changed_at"))
            .col(uuid("changed_by"))
            .tfk("coachee_id", "users")
            .index(&[TENANT_ID, "coachee_id"]),
        // 15
        Tbl::tenant_table("ai_access_log")
            .col(uuid("coachee_id"))
            .col(uuid("ai_principal_id"))
            .col(text("model"))
            .col(text("purpose"))
            .col(text("resource"))
            .col(text("action"))
            .col(text("row_ids"))
            .col(ts("at"))
            .check("ck_ai_access_log_action", "action IN ('READ', 'WRITE')")
            .tfk("coachee_id", "users")
            .tfk("ai_principal_id", "users")
            .index(&[TENANT_ID, "coachee_id", "at"]),
        // 16
        Tbl::tenant_table("ai_action_proposals")
            .col(uuid("coachee_id"))
            .col(uuid("proposed_by"))
            .col(text("kind"))
            .col(text("payload"))
            .col(ts("created_at"))
            .col(ts_null("confirmed_at"))
            .tfk("coachee_id", "users")
            .tfk("proposed_by", "users"),
        // 17: no foreign keys at all; tenant_id NULL = platform chain.
        Tbl::new("audit_events")
            .id()
            .col(uuid_null(TENANT_ID))
            .col(ColumnDef::new("seq").big_integer().not_null())
            .col(ts("at"))
            .col(uuid_null("actor_id"))
            .col(text_null("actor_role"))
            .col(text("action"))
            .col(text("resource"))
            .col(text("outcome"))
            .col(text_null("reason"))
            .col(text_null("ip_address"))
            .col(uuid_null("grant_id"))
            .col(text("prev_hash"))
            .col(text("hash"))
            .check("ck_audit_events_seq", "seq >= 1")
            .unique(&[TENANT_ID, "id"])
            .unique(&[TENANT_ID, "seq"])
            .unique_where_tenant_null(&["seq"])
            .index(&[TENANT_ID, "at"]),
        // 18
        Tbl::tenant_table("access_notices")
            .col(uuid("coachee_id"))
            .col(uuid("actor_id"))
            .col(text("actor_role"))
            .col(text("reason"))
            .col(uuid_null("grant_id"))
            .col(ts("at"))
            .tfk("coachee_id", "users"),
        // 19
        Tbl::tenant_table("break_glass_requests")
            .col(uuid("coachee_id"))
            .col(uuid("requested_by"))
            .col(text("reason"))
            .col(int("minutes"))
            .col(ts("created_at"))
            .col(uuid_null("approved_by"))
            .col(ts_null("approved_at"))
            .col(ts_null("revoked_at"))
            .col(uuid_null("revoked_by"))
            .check("ck_break_glass_requests_minutes", "minutes >= 1 AND minutes <= 60")
            .tfk("coachee_id", "users")
            .tfk("requested_by", "users"),
        // 20
        Tbl::tenant_table("break_glass_grants")
            .col(uuid("request_id"))
            .col(uuid("coachee_id"))
            .col(uuid("grantee_id"))
            .col(uuid("approved_by"))
            .col(ts("starts_at"))
            .col(ts("expires_at"))
            .col(ts_null("revoked_at"))
            .tfk("request_id", "break_glass_requests")
            .tfk("coachee_id", "users")
            .tfk("grantee_id", "users")
            .unique(&[TENANT_ID, "request_id"]),
        // 21: platform table, no tenant.
        Tbl::new("system_config")
            .col(ColumnDef::new("key").text().not_null().primary_key())
            .col(text("value"))
            .col(ts("updated_at"))
            .col(uuid_null("updated_by")),
        // 22
        Tbl::tenant_table("integration_tokens")
            .col(uuid("user_id"))
            .col(text("name"))
            .col(text("token_hash"))
            .col(ts("created_at"))
            .col(ts_null("last_used_at"))
            .col(ts_null("revoked_at"))
            .tfk("user_id", "users")
            .unique(&["token_hash"]),
        // 23: tenant_id NULL for SYSTEM_ADMIN sessions. The plain FK on user_id always holds;
        // the composite one additionally pins tenant sessions to a user of the same tenant
        // (not checked when tenant_id is NULL).
        Tbl::new("auth_sessions")
            .id()
            .col(uuid_null(TENANT_ID))
            .col(uuid("user_id"))
            .col(text("role"))
            .col(text("csrf_hash"))
            .col(ts("created_at"))
            .col(ts("last_seen_at"))
            .col(ts("expires_at"))
            .col(ts_null("revoked_at"))
            .fk("user_id", "users", "id")
            .tfk("user_id", "users")
            .unique(&[TENANT_ID, "id"])
            .index(&["user_id"]),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = tables();
        debug_assert_eq!(tables.iter().map(|t| t.name).collect::<Vec<_>>(), TABLES.to_vec());
        for table in tables {
            table.create(manager).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in TABLES.iter().rev() {
            manager.drop_table(Table::drop().table(*name).if_exists().take()).await?;
        }
        Ok(())
    }
}
