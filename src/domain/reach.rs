//! Reach: loading the request's relationship facts (the pure policy over them is
//! [`crate::authz::rows`]). Loaded once per request, with a constant number of statements
//! whatever the data size, and never cached across requests, so a withdrawn consent or an
//! ended assignment counts from the next request.

use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationDef};
use uuid::Uuid;

use crate::authz::Resource;
use crate::authz::rows::AssignmentFact;
pub use crate::authz::rows::{AiReach, Reach, Refusal, ai_level_needed, consented_level, effective_level};
use crate::ctx::Ctx;
use crate::db::entities::{coach_assignments, consents};
use crate::db::scoped;
use crate::error::{AppError, AppResult};
use crate::kinds::{AiLevel, ConsentKind, Role};

/// The request's reach: loaded on first use, then kept in the request's `Ctx` (never across
/// requests).
pub async fn of(ctx: &Ctx) -> AppResult<std::sync::Arc<Reach>> {
    ctx.reach_cell().get_or_try_init(|| async { load(ctx).await.map(std::sync::Arc::new) }).await.cloned()
}

/// The request's reach if it is loaded already (never loads it).
pub fn loaded(ctx: &Ctx) -> Option<std::sync::Arc<Reach>> {
    ctx.reach_cell().get().cloned()
}

/// Loads the facts for the principal of `ctx`: the active
/// assignments and granted consents that concern it, or its break-glass grants, handed to
/// the pure [`Reach::from_facts`].
pub async fn load(ctx: &Ctx) -> AppResult<Reach> {
    let Some(p) = ctx.principal().copied() else { return Ok(Reach::default()) };
    let Some(tenant) = p.tenant_id else { return Ok(Reach::from_facts(p.role, p.user_id, &[], &[], &[])) };
    let (assignments, consents_granted, grants) = match p.role {
        Role::Coach => {
            let rows =
                assignments_with_consents(ctx, tenant, Some(p.user_id), Some(ConsentKind::TranscriptSharing)).await?;
            (rows.0, rows.1, Vec::new())
        }
        Role::Coachee => {
            let mine = scoped::select::<coach_assignments::Entity>(tenant)
                .filter(coach_assignments::Column::Active.eq(true))
                .filter(coach_assignments::Column::CoacheeId.eq(p.user_id))
                .all(&*ctx.db().conn().await?)
                .await?;
            let facts = mine
                .into_iter()
                .map(|a| AssignmentFact { coach: a.coach_id, coachee: a.coachee_id, ai_level: a.ai_level })
                .collect();
            (facts, Vec::new(), Vec::new())
        }
        Role::AiAgent => {
            let rows = assignments_with_consents(ctx, tenant, None, None).await?;
            (rows.0, rows.1, Vec::new())
        }
        Role::ProgramAdmin => {
            // Break-glass: the request's clock for the database's policies, then my grants.
            let now = ctx.now();
            ctx.db().set_clock(now).await?;
            let grants = crate::domain::breakglass::active_grants(ctx, tenant, p.user_id, now).await?;
            (Vec::new(), Vec::new(), grants.into_iter().collect())
        }
        Role::Executive | Role::SystemAdmin => (Vec::new(), Vec::new(), Vec::new()),
    };
    Ok(Reach::from_facts(p.role, p.user_id, &assignments, &consents_granted, &grants))
}

/// Active assignments (of `coach`, or all) with the granted consents (of `kind`, or all) of
/// their coachees, in one statement: a left join, one row per (assignment, consent).
async fn assignments_with_consents(
    ctx: &Ctx,
    tenant: Uuid,
    coach: Option<Uuid>,
    kind: Option<ConsentKind>,
) -> AppResult<(Vec<AssignmentFact>, Vec<(Uuid, ConsentKind)>)> {
    let consents_of_coachee: RelationDef = coach_assignments::Entity::belongs_to(consents::Entity)
        .from(coach_assignments::Column::CoacheeId)
        .to(consents::Column::CoacheeId)
        .on_condition(move |_, _| {
            let same_tenant = Expr::col((consents::Entity, consents::Column::TenantId))
                .equals((coach_assignments::Entity, coach_assignments::Column::TenantId));
            let mut on = Condition::all().add(same_tenant).add(consents::Column::Granted.eq(true));
            if let Some(kind) = kind {
                on = on.add(consents::Column::Kind.eq(kind));
            }
            on
        })
        .into();
    let mut query = scoped::select::<coach_assignments::Entity>(tenant)
        .filter(coach_assignments::Column::Active.eq(true))
        .join(JoinType::LeftJoin, consents_of_coachee)
        .select_only()
        .column(coach_assignments::Column::Id)
        .column(coach_assignments::Column::CoachId)
        .column(coach_assignments::Column::CoacheeId)
        .column(coach_assignments::Column::AiLevel)
        .column_as(consents::Column::Kind, "consent_kind");
    if let Some(coach) = coach {
        query = query.filter(coach_assignments::Column::CoachId.eq(coach));
    }
    let rows: Vec<(Uuid, Uuid, Uuid, AiLevel, Option<ConsentKind>)> =
        query.into_tuple().all(&*ctx.db().conn().await?).await?;
    let mut seen = std::collections::HashSet::new();
    let mut assignments = Vec::new();
    let mut granted = std::collections::HashSet::new();
    for (id, coach, coachee, ai_level, consent) in rows {
        if seen.insert(id) {
            assignments.push(AssignmentFact { coach, coachee, ai_level });
        }
        if let Some(kind) = consent {
            granted.insert((coachee, kind));
        }
    }
    Ok((assignments, granted.into_iter().collect()))
}

impl Refusal {
    pub fn into_error(self, ctx: &Ctx, resource: Resource) -> AppError {
        match self {
            Refusal::Forbidden => super::access::forbidden(ctx, resource, "no relationship grants this row"),
            Refusal::ConsentRequired => super::access::consent_required(ctx, resource, "consent gate closed"),
        }
    }
}
