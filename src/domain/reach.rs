//! Reach: loading the request's relationship facts (the pure policy over them is
//! [`crate::authz::rows`]). Loaded once per request, with a constant number of statements
//! whatever the data size, and never cached across requests, so a withdrawn consent or an
//! ended assignment counts from the next request.

use sea_orm::{ColumnTrait, QueryFilter};

use crate::authz::Resource;
use crate::authz::rows::AssignmentFact;
pub use crate::authz::rows::{AiReach, Reach, Refusal, ai_level_needed, consented_level, effective_level};
use crate::ctx::Ctx;
use crate::db::entities::{coach_assignments, consents};
use crate::db::scoped;
use crate::error::{AppError, AppResult};
use crate::kinds::{ConsentKind, Role};

/// The request's reach: loaded on first use, then kept in the request's `Ctx` (never across
/// requests).
pub async fn of(ctx: &Ctx) -> AppResult<std::sync::Arc<Reach>> {
    ctx.reach_cell().get_or_try_init(|| async { load(ctx).await.map(std::sync::Arc::new) }).await.cloned()
}

/// Loads the facts for the principal of `ctx`: the active
/// assignments and granted consents that concern it, or its break-glass grants, handed to
/// the pure [`Reach::from_facts`].
pub async fn load(ctx: &Ctx) -> AppResult<Reach> {
    let Some(p) = ctx.principal().copied() else { return Ok(Reach::default()) };
    let Some(tenant) = p.tenant_id else { return Ok(Reach::from_facts(p.role, p.user_id, &[], &[], &[])) };
    let active = scoped::select::<coach_assignments::Entity>(tenant).filter(coach_assignments::Column::Active.eq(true));
    let granted = scoped::select::<consents::Entity>(tenant).filter(consents::Column::Granted.eq(true));
    let (assignments, consents_granted, grants) = match p.role {
        Role::Coach => {
            let mine = active.filter(coach_assignments::Column::CoachId.eq(p.user_id));
            let rows = mine.all(&*ctx.db().conn().await?).await?;
            let shared = granted
                .filter(consents::Column::Kind.eq(ConsentKind::TranscriptSharing))
                .filter(consents::Column::CoacheeId.is_in(rows.iter().map(|a| a.coachee_id).collect::<Vec<_>>()))
                .all(&*ctx.db().conn().await?)
                .await?;
            (rows, shared, Vec::new())
        }
        Role::Coachee => {
            let mine = active.filter(coach_assignments::Column::CoacheeId.eq(p.user_id));
            (mine.all(&*ctx.db().conn().await?).await?, Vec::new(), Vec::new())
        }
        Role::AiAgent => {
            let rows = active.all(&*ctx.db().conn().await?).await?;
            (rows, granted.all(&*ctx.db().conn().await?).await?, Vec::new())
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
    let assignments: Vec<AssignmentFact> = assignments
        .into_iter()
        .map(|a| AssignmentFact { coach: a.coach_id, coachee: a.coachee_id, ai_level: a.ai_level })
        .collect();
    let granted: Vec<_> = consents_granted.into_iter().map(|c| (c.coachee_id, c.kind)).collect();
    Ok(Reach::from_facts(p.role, p.user_id, &assignments, &granted, &grants))
}

impl Refusal {
    pub fn into_error(self, ctx: &Ctx, resource: Resource) -> AppError {
        match self {
            Refusal::Forbidden => super::access::forbidden(ctx, resource, "no relationship grants this row"),
            Refusal::ConsentRequired => super::access::consent_required(ctx, resource, "consent gate closed"),
        }
    }
}
