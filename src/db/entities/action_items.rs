//! `action_items`: An action item of a coachee, optionally tied to a session.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "action_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub coachee_id: Uuid,
    pub session_id: Option<Uuid>,
    pub created_by: Uuid,
    pub title: String,
    pub due_on: Option<Date>,
    #[serde(default, deserialize_with = "crate::db::combined::utc_opt")]
    pub completed_at: Option<DateTimeUtc>,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
