//! `insights`: An insight on a session, drafted by a coach or the AI.

use crate::kinds::{InsightStatus, Role};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "insights")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub session_id: Uuid,
    pub coachee_id: Uuid,
    pub author_id: Uuid,
    pub author_role: Role,
    pub body: String,
    pub status: InsightStatus,
    #[serde(default, deserialize_with = "crate::db::combined::utc_opt")]
    pub approved_at: Option<DateTimeUtc>,
    pub approved_by: Option<Uuid>,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub created_at: DateTimeUtc,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
