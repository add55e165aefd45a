//! Consent (POLICY.md section 5): the coachee grants and withdraws its own consents; the coach
//! sets its per-relationship AI level; the AI proposes actions under SASHA_ACT and the coachee
//! confirms them.
//!
//! Nothing here is cached: [`crate::domain::reach`] reads consents and levels again on every
//! request, and PostgreSQL's policies on every statement, so a withdrawal holds from the next
//! request in every process, with no grace period.
//!
//! Withdrawing a SASHA level withdraws the levels above it too (each SASHA kind includes the
//! ones below it, so keeping ANALYZE after withdrawing OBSERVE would keep OBSERVE's reach).
//!
//! Proposals never run by themselves. coachgraph has no executor: a proposal is a row whose
//! `confirmed_at` stays NULL until the coachee it concerns confirms it, and confirming only
//! records that (while the effective AI level is still ACT). Whatever later performs
//! confirmed actions must pick up confirmed rows only.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::authz::{Action, Resource, Scope, matrix};
use crate::ctx::Ctx;
use crate::db::entities::{ai_action_proposals, coach_assignments, consent_history, consents};
use crate::db::scoped;
use crate::domain::access::{self, refuse, require_coachee};
use crate::domain::admin::ConsentView;
use crate::domain::audit::AuditRecord;
use crate::domain::reach::{self, Refusal, consented_level, effective_level};
use crate::error::{AppError, AppResult};
use crate::kinds::{AiLevel, AuditOutcome, ConsentKind, Role};

/// The actions the AI may propose (POLICY.md section 5: "schedule a session, send a message").
pub const PROPOSAL_KINDS: [&str; 2] = ["SCHEDULE_SESSION", "SEND_MESSAGE"];
pub const MAX_PAYLOAD: usize = 4_000;

pub fn kind_name(kind: ConsentKind) -> &'static str {
    kind.into()
}

pub fn parse_kind(s: &str) -> Option<ConsentKind> {
    s.parse().ok()
}

pub fn parse_level(s: &str) -> Option<AiLevel> {
    s.parse().ok()
}

fn level_name(level: AiLevel) -> &'static str {
    level.into()
}

/// The kinds a change touches: a grant, the kind itself; a withdrawal of a SASHA level, that
/// level and every SASHA level above it.
pub fn kinds_changed(kind: ConsentKind, granted: bool) -> Vec<ConsentKind> {
    const SASHA: [ConsentKind; 3] = [ConsentKind::SashaObserve, ConsentKind::SashaAnalyze, ConsentKind::SashaAct];
    match SASHA.iter().position(|k| *k == kind) {
        Some(i) if !granted => SASHA[i..].to_vec(),
        _ => vec![kind],
    }
}

// ------------------------------------------------------------------------ consents

/// `grantConsent` / `withdrawConsent`: the caller (a coachee) sets one of its own consents.
/// Each actual change updates `consents`, appends to `consent_history` (changed_by = the
/// caller) and is audited (`CONSENT_GRANTED` / `CONSENT_WITHDRAWN`); setting a consent to
/// the state it is already in changes nothing. Returns the consent's state afterwards.
pub async fn set_consent(ctx: &Ctx, kind: ConsentKind, granted: bool) -> AppResult<ConsentView> {
    let p = *ctx.require()?;
    let action = if granted { Action::Create } else { Action::Update };
    if matrix::grant(p.role, Resource::Consents, Action::Update).map(|g| g.scope) != Some(Scope::Own) {
        return Err(refuse(ctx, action, Resource::Consents, Refusal::Forbidden));
    }
    let tenant = ctx.tenant_id()?;
    let me = p.user_id;
    let current: HashMap<ConsentKind, consents::Model> = scoped::select::<consents::Entity>(tenant)
        .filter(consents::Column::CoacheeId.eq(me))
        .all(&*ctx.db().conn().await?)
        .await?
        .into_iter()
        .map(|c| (c.kind, c))
        .collect();
    let now = ctx.now();
    let mut answer = None;
    for k in kinds_changed(kind, granted) {
        let existing = current.get(&k);
        // The named kind is written whenever its state differs or it was never set; the
        // levels above a withdrawn one only when they are granted.
        let changes = match existing {
            Some(c) => c.granted != granted,
            None => k == kind,
        };
        if !changes {
            if k == kind {
                answer = existing.map(|c| ConsentView { kind, granted: c.granted, changed_at: c.changed_at });
            }
            continue;
        }
        let row = consents::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(tenant),
            coachee_id: Set(me),
            kind: Set(k),
            granted: Set(granted),
            changed_at: Set(now),
        };
        consents::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([consents::Column::TenantId, consents::Column::CoacheeId, consents::Column::Kind])
                    .update_columns([consents::Column::Granted, consents::Column::ChangedAt])
                    .to_owned(),
            )
            .exec_without_returning(&*ctx.db().conn().await?)
            .await?;
        consent_history::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(tenant),
            coachee_id: Set(me),
            kind: Set(k),
            granted: Set(granted),
            changed_at: Set(now),
            changed_by: Set(me),
        }
        .insert(&*ctx.db().conn().await?)
        .await?;
        let event = if granted { "CONSENT_GRANTED" } else { "CONSENT_WITHDRAWN" };
        let mut reason = kind_name(k).to_owned();
        if k != kind {
            reason.push_str(&format!(" (with {})", kind_name(kind)));
        }
        ctx.audit(AuditRecord::by(ctx, event, Resource::Consents.as_str(), AuditOutcome::Allowed).reason(reason));
        if k == kind {
            answer = Some(ConsentView { kind, granted, changed_at: now });
        }
    }
    answer.ok_or_else(|| AppError::internal("consent change without an answer"))
}

// ------------------------------------------------------------------------ AI level

/// `setAiLevel`: the caller (a coach) sets its own AI level for a coachee actively assigned
/// to it. Another tenant's (or no) coachee: NOT_FOUND; a coachee of the tenant not assigned
/// to the caller: FORBIDDEN.
pub async fn set_ai_level(ctx: &Ctx, coachee: Uuid, level: AiLevel) -> AppResult<()> {
    let p = *ctx.require()?;
    if p.role != Role::Coach {
        return Err(refuse(ctx, Action::Update, Resource::CoachAssignments, Refusal::Forbidden));
    }
    let tenant = ctx.tenant_id()?;
    require_coachee(ctx, coachee, Resource::CoachAssignments).await?;
    let updated = coach_assignments::Entity::update_many()
        .col_expr(coach_assignments::Column::AiLevel, Expr::value(level))
        .filter(coach_assignments::Column::TenantId.eq(tenant))
        .filter(coach_assignments::Column::CoachId.eq(p.user_id))
        .filter(coach_assignments::Column::CoacheeId.eq(coachee))
        .filter(coach_assignments::Column::Active.eq(true))
        .exec(&*ctx.db().conn().await?)
        .await?
        .rows_affected;
    if updated == 0 {
        return Err(refuse(ctx, Action::Update, Resource::CoachAssignments, Refusal::Forbidden));
    }
    ctx.audit(
        AuditRecord::by(ctx, "AI_LEVEL_SET", Resource::CoachAssignments.as_str(), AuditOutcome::Allowed)
            .reason(format!("coachee {coachee}: {}", level_name(level))),
    );
    Ok(())
}

// ------------------------------------------------------------------------ proposals

/// `proposeAiAction`: the AI proposes an action for a coachee whose effective AI level is ACT
/// (else CONSENT_REQUIRED; no active coach relationship at all: FORBIDDEN, as for reads).
/// Logged in the AI access log as a WRITE. The proposal does not run: see the module notes.
pub async fn propose(ctx: &Ctx, coachee: Uuid, kind: &str, payload: String) -> AppResult<ai_action_proposals::Model> {
    if !PROPOSAL_KINDS.contains(&kind) {
        return Err(AppError::bad_input(format!("kind must be one of {}", PROPOSAL_KINDS.join(", "))));
    }
    let p = *ctx.require()?;
    require_coachee(ctx, coachee, Resource::AiActionProposals).await?;
    reach::of(ctx)
        .await?
        .may(coachee, Resource::AiActionProposals, Action::Create)
        .map_err(|refusal| refuse(ctx, Action::Create, Resource::AiActionProposals, refusal))?;
    let model = crate::db::insert_unread(
        &*ctx.db().conn().await?,
        ai_action_proposals::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(ctx.tenant_id()?),
            coachee_id: Set(coachee),
            proposed_by: Set(p.user_id),
            kind: Set(kind.to_owned()),
            payload: Set(payload),
            created_at: Set(ctx.now()),
            confirmed_at: Set(None),
        },
    )
    .await?;
    ctx.note_ai_write(coachee, Resource::AiActionProposals, [model.id]);
    ctx.audit(
        AuditRecord::by(ctx, "AI_ACTION_PROPOSED", Resource::AiActionProposals.as_str(), AuditOutcome::Allowed)
            .reason(format!("proposal {} ({kind})", model.id)),
    );
    Ok(model)
}

/// The caller's (a coachee's) effective AI level now: its SASHA consents against its active
/// coaches' levels.
async fn own_effective_level(ctx: &Ctx, tenant: Uuid, me: Uuid) -> AppResult<AiLevel> {
    let granted: HashSet<ConsentKind> = scoped::select::<consents::Entity>(tenant)
        .filter(consents::Column::CoacheeId.eq(me))
        .filter(consents::Column::Granted.eq(true))
        .all(&*ctx.db().conn().await?)
        .await?
        .into_iter()
        .map(|c| c.kind)
        .collect();
    let levels = scoped::select::<coach_assignments::Entity>(tenant)
        .filter(coach_assignments::Column::CoacheeId.eq(me))
        .filter(coach_assignments::Column::Active.eq(true))
        .all(&*ctx.db().conn().await?)
        .await?
        .into_iter()
        .map(|a| a.ai_level);
    Ok(effective_level(consented_level(&granted), levels))
}

/// `confirmAiAction`: the coachee a proposal concerns confirms it, once. Another coachee's
/// proposal: FORBIDDEN; another tenant's or no proposal: NOT_FOUND; confirmed already:
/// CONFLICT; the effective AI level fell below ACT since the proposal: CONSENT_REQUIRED.
pub async fn confirm(ctx: &Ctx, id: Uuid) -> AppResult<ai_action_proposals::Model> {
    let p = *ctx.require()?;
    let tenant = ctx.tenant_id()?;
    let found = scoped::select::<ai_action_proposals::Entity>(tenant)
        .filter(ai_action_proposals::Column::Id.eq(id))
        .one(&*ctx.db().conn().await?)
        .await?;
    let Some(proposal) = found else {
        return Err(access::refuse_missing(ctx, "ai_action_proposals", id, Resource::AiActionProposals).await?);
    };
    reach::of(ctx)
        .await?
        .may(proposal.coachee_id, Resource::AiActionProposals, Action::Update)
        .map_err(|refusal| refuse(ctx, Action::Update, Resource::AiActionProposals, refusal))?;
    if proposal.confirmed_at.is_some() {
        return Err(AppError::Conflict("this proposal is already confirmed".into()));
    }
    if own_effective_level(ctx, tenant, p.user_id).await? < AiLevel::Act {
        return Err(refuse(ctx, Action::Update, Resource::AiActionProposals, Refusal::ConsentRequired));
    }
    let now = ctx.now();
    let updated = ai_action_proposals::Entity::update_many()
        .col_expr(ai_action_proposals::Column::ConfirmedAt, Expr::value(now))
        .filter(ai_action_proposals::Column::TenantId.eq(tenant))
        .filter(ai_action_proposals::Column::Id.eq(id))
        .filter(ai_action_proposals::Column::ConfirmedAt.is_null())
        .exec(&*ctx.db().conn().await?)
        .await?
        .rows_affected;
    if updated == 0 {
        return Err(AppError::Conflict("this proposal is already confirmed".into()));
    }
    ctx.audit(
        AuditRecord::by(ctx, "AI_ACTION_CONFIRMED", Resource::AiActionProposals.as_str(), AuditOutcome::Allowed)
            .reason(format!("proposal {id}")),
    );
    Ok(ai_action_proposals::Model { confirmed_at: Some(now), ..proposal })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withdrawing_a_sasha_level_withdraws_the_levels_above_it() {
        use ConsentKind::*;
        assert_eq!(kinds_changed(SashaObserve, false), vec![SashaObserve, SashaAnalyze, SashaAct]);
        assert_eq!(kinds_changed(SashaAnalyze, false), vec![SashaAnalyze, SashaAct]);
        assert_eq!(kinds_changed(SashaAct, false), vec![SashaAct]);
        assert_eq!(kinds_changed(TranscriptSharing, false), vec![TranscriptSharing]);
        for k in ConsentKind::ALL {
            assert_eq!(kinds_changed(k, true), vec![k], "a grant is the kind itself");
        }
    }

    #[test]
    fn names_round_trip() {
        for k in ConsentKind::ALL {
            assert_eq!(parse_kind(kind_name(k)), Some(k));
        }
        for l in [AiLevel::Off, AiLevel::Observe, AiLevel::Analyze, AiLevel::Act] {
            assert_eq!(parse_level(level_name(l)), Some(l));
        }
        assert_eq!(parse_kind("sasha_act"), None);
        assert_eq!(parse_level("FULL"), None);
    }
}
