//! `access_notices`: Tells a coachee who read its data under break-glass, when and why.

use crate::kinds::Role;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "access_notices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub coachee_id: Uuid,
    pub actor_id: Uuid,
    pub actor_role: Role,
    pub reason: String,
    pub grant_id: Option<Uuid>,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
