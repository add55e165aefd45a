//! Tenant-scoped query builders: the way domain code starts a SeaORM query, so that the
//! tenant filter is part of the query by construction (PostgreSQL RLS is the second wall).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};
use uuid::Uuid;

use super::entities;

pub trait TenantScoped: EntityTrait {
    fn tenant_column() -> Self::Column;
}

macro_rules! tenant_scoped {
    ($($table:ident),* $(,)?) => {
        $(impl TenantScoped for entities::$table::Entity {
            fn tenant_column() -> Self::Column {
                entities::$table::Column::TenantId
            }
        })*
    };
}

tenant_scoped!(
    tenant_settings,
    users,
    coach_assignments,
    coaching_sessions,
    session_private_notes,
    session_summaries,
    transcripts,
    insights,
    evidence_packs,
    action_items,
    goals,
    coach_notes,
    ai_feedback,
    consents,
    consent_history,
    ai_access_log,
    ai_action_proposals,
    audit_events,
    access_notices,
    break_glass_requests,
    break_glass_grants,
    integration_tokens,
    auth_sessions,
);

/// `SELECT .. FROM <table> WHERE tenant_id = <tenant>`.
pub fn select<E: TenantScoped>(tenant_id: Uuid) -> Select<E> {
    E::find().filter(E::tenant_column().eq(tenant_id))
}
