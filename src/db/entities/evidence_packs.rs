//! `evidence_packs`: An evidence pack; `L1` is visible to the coachee only once approved.

use crate::kinds::{EvidenceLevel, Role};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "evidence_packs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub session_id: Uuid,
    pub coachee_id: Uuid,
    pub author_id: Uuid,
    pub author_role: Role,
    pub level: EvidenceLevel,
    pub content: String,
    pub approved: bool,
    #[serde(default, deserialize_with = "crate::db::combined::utc_opt")]
    pub approved_at: Option<DateTimeUtc>,
    #[serde(deserialize_with = "crate::db::combined::utc")]
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
