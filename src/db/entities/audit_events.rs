//! `audit_events`: The hash-chained audit trail (append-only on PostgreSQL). No foreign keys.

use crate::kinds::{AuditOutcome, Role};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// NULL = platform-level event (the platform chain).
    pub tenant_id: Option<Uuid>,
    /// 1-based position in the tenant's (or platform's) chain.
    pub seq: i64,
    pub at: DateTimeUtc,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<Role>,
    pub action: String,
    pub resource: String,
    pub outcome: AuditOutcome,
    pub reason: Option<String>,
    pub ip_address: Option<String>,
    pub grant_id: Option<Uuid>,
    pub prev_hash: String,
    pub hash: String,
    /// The server-made serial of the request that wrote it (alerts count denied requests;
    /// not the client's `X-Request-Id`); not part of the hash.
    pub request_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
