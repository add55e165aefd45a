//! `tenant_settings`: Per-tenant settings; one row per tenant.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    pub session_timeout_minutes: i32,
    pub audit_retention_days: i32,
    pub data_retention_days: Option<i32>,
    /// Absolute lifetime of a DEVICE session.
    pub device_session_days: i32,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
