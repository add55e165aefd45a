//! Device sessions and integration tokens (issue 11, items 2 and 3).
//!
//! - `auth_sessions.refresh_hash`: a DEVICE session's current refresh token (sha-256 hex;
//!   NULL for BROWSER sessions), and `refresh_generation`, how many times it was rotated: a
//!   refresh token names its generation, so one from an earlier generation is recognised as
//!   used (theft detection) without keeping every old hash.
//! - `tenant_settings.device_session_days`: the absolute lifetime of a device session.
//! - `integration_tokens.use_audited_at`: when the token's use was last audited (at most one
//!   event per token and hour).
//!
//! Columns on tables that already have their row-level security: no new policy, no new
//! grant (the application role's table privileges cover new columns).

use sea_orm_migration::prelude::*;

use crate::m20261122_000001_schema::{int, text_null, ts_null};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000013_device_sessions"
    }
}

const ADDED: &[(&str, &str)] = &[
    ("auth_sessions", "refresh_hash"),
    ("auth_sessions", "refresh_generation"),
    ("tenant_settings", "device_session_days"),
    ("integration_tokens", "use_audited_at"),
];

fn column(name: &str) -> ColumnDef {
    match name {
        "refresh_hash" => text_null("refresh_hash"),
        "refresh_generation" => int("refresh_generation").default(0).take(),
        "device_session_days" => int("device_session_days").default(30).take(),
        _ => ts_null("use_audited_at"),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for (table, name) in ADDED {
            manager.alter_table(Table::alter().table(Alias::new(*table)).add_column(column(name)).take()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, name) in ADDED.iter().rev() {
            manager.alter_table(Table::alter().table(Alias::new(*table)).drop_column(Alias::new(*name)).take()).await?;
        }
        Ok(())
    }
}
