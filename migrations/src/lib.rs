//! coachgraph's schema: tables and keys (SQLite and PostgreSQL), then PostgreSQL's
//! application role, tenant-context functions and row-level security.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_schema;
mod m20261122_000002_postgres_security;
mod m20261122_000003_audit_chain;
mod m20261122_000004_relationship_policies;
mod m20261122_000005_data_rights;
mod m20261122_000006_break_glass;
mod m20261201_000007_row_policy;
mod m20261202_000008_metric_rollups;
mod m20261202_000009_paging_indexes;
mod m20261202_000010_login_throttles;
mod m20261203_000011_shared_state;
mod m20261206_000012_onboarding;
mod m20261206_000013_device_sessions;

/// Every table of the schema, in creation order (parents first).
pub fn tables() -> Vec<&'static str> {
    m20261122_000001_schema::TABLES
        .iter()
        .chain(m20261201_000007_row_policy::NEW_TABLES)
        .chain(ROLLUP_TABLES)
        .chain(m20261202_000010_login_throttles::NEW_TABLES)
        .chain(m20261206_000012_onboarding::NEW_TABLES)
        .copied()
        .collect()
}
/// The PostgreSQL role the server's queries run as.
pub use m20261122_000002_postgres_security::APP_ROLE;
/// The program-metric rollups: written by triggers only; on PostgreSQL the application role
/// has no privilege on them.
pub use m20261202_000008_metric_rollups::NEW_TABLES as ROLLUP_TABLES;
pub use m20261202_000008_metric_rollups::{ROLLED_UP_TABLES, backfill_where as rollup_backfill_where};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_schema::Migration),
            Box::new(m20261122_000002_postgres_security::Migration),
            Box::new(m20261122_000003_audit_chain::Migration),
            Box::new(m20261122_000004_relationship_policies::Migration),
            Box::new(m20261122_000005_data_rights::Migration),
            Box::new(m20261122_000006_break_glass::Migration),
            Box::new(m20261201_000007_row_policy::Migration),
            Box::new(m20261202_000008_metric_rollups::Migration),
            Box::new(m20261202_000009_paging_indexes::Migration),
            Box::new(m20261202_000010_login_throttles::Migration),
            Box::new(m20261203_000011_shared_state::Migration),
            Box::new(m20261206_000012_onboarding::Migration),
            Box::new(m20261206_000013_device_sessions::Migration),
        ]
    }
}
