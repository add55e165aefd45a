//! `auth_sessions`: A server-side login session; `tenant_id` is NULL for SYSTEM_ADMIN sessions.

use crate::kinds::Role;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub user_id: Uuid,
    pub role: Role,
    pub csrf_hash: String,
    pub created_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    /// Absolute end of the session.
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// A DEVICE session's current refresh token (sha-256 hex); `None` for BROWSER sessions.
    pub refresh_hash: Option<String>,
    /// How many times the refresh token was rotated (the current token names this number).
    pub refresh_generation: i32,
}

/// Joined by the session check, which reads session, user and tenant settings in one
/// statement.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::users::Entity", from = "Column::UserId", to = "super::users::Column::Id")]
    User,
    #[sea_orm(
        belongs_to = "super::tenant_settings::Entity",
        from = "Column::TenantId",
        to = "super::tenant_settings::Column::TenantId"
    )]
    TenantSettings,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::tenant_settings::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TenantSettings.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
