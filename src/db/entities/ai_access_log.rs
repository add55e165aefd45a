//! `ai_access_log`: Every AI read or write, visible to the coachee it concerns.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ai_access_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub coachee_id: Uuid,
    pub ai_principal_id: Uuid,
    pub model: String,
    pub purpose: String,
    pub resource: String,
    /// `READ` or `WRITE` (CHECK).
    pub action: String,
    /// JSON array of the uuids touched.
    pub row_ids: String,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
