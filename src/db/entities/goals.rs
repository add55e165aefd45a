//! `goals`: A coachee's goal; `progress_percent` is 0..=100 (CHECK).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "goals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub coachee_id: Uuid,
    pub created_by: Uuid,
    pub title: String,
    pub progress_percent: i32,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub created_at: DateTimeUtc,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
