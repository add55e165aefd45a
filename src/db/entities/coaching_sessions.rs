//! `coaching_sessions`: A coaching session.

use crate::kinds::SessionStatus;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "coaching_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub coach_id: Uuid,
    pub coachee_id: Uuid,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub scheduled_at: DateTimeUtc,
    pub duration_minutes: i32,
    pub status: SessionStatus,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub created_at: DateTimeUtc,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
