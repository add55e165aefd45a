//! `coach_notes`: A coach's private note about a coachee; `coach_id` is the author.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "coach_notes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub coach_id: Uuid,
    pub coachee_id: Uuid,
    pub body: String,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub created_at: DateTimeUtc,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
