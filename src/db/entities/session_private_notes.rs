//! `session_private_notes`: A coach's private notes on one of its sessions (resource coach_notes: the session's coach, the AI with that coach's ANALYZE, break-glass). Kept apart from `coaching_sessions`, whose rows program admins read.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "session_private_notes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub session_id: Uuid,
    pub coachee_id: Uuid,
    /// The session's coach.
    pub coach_id: Uuid,
    pub body: String,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub created_at: DateTimeUtc,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
