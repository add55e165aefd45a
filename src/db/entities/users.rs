//! `users`: A principal. `tenant_id` is NULL exactly for `Role::SystemAdmin`. Emails are stored lower-cased.

use crate::kinds::{Role, UserStatus};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub status: UserStatus,
    pub password_hash: Option<String>,
    pub failed_login_count: i32,
    pub locked_until: Option<DateTimeUtc>,
    pub last_login_at: Option<DateTimeUtc>,
    pub password_changed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// A profile as other users read it: no credential or lockout state, which no read of a
/// profile needs, so none is ever loaded into another user's request.
#[derive(Clone, Debug, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "Entity", from_query_result)]
pub struct Profile {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub email: String,
    pub display_name: String,
    pub role: Role,
}

impl From<Model> for Profile {
    fn from(m: Model) -> Self {
        Profile { id: m.id, tenant_id: m.tenant_id, email: m.email, display_name: m.display_name, role: m.role }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
