//! `coach_assignments`: A coach-coachee relationship; a coach sees a coachee only through an active one.

use crate::kinds::AiLevel;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "coach_assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub coach_id: Uuid,
    pub coachee_id: Uuid,
    pub active: bool,
    /// The coach's per-relationship AI level.
    pub ai_level: AiLevel,
    pub created_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
