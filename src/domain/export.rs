//! `myDataExport`: everything stored about the calling coachee that the policy lets it read,
//! as one machine-readable JSON document. Nothing about anyone else (its coaches appear by
//! id and display name only), no coach notes, no private notes, no drafts, no transcripts
//! (the matrix gives the coachee no read on those), no unapproved L1 evidence, no secrets.

use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::db::entities::{
    access_notices, action_items, ai_access_log, ai_feedback, coach_assignments, coaching_sessions, consent_history,
    consents, evidence_packs, goals, insights, integration_tokens, session_summaries, users,
};
use crate::db::scoped;
use crate::error::{AppError, AppResult};
use crate::kinds::{EvidenceLevel, InsightStatus, Role};

fn ts(t: chrono::DateTime<chrono::Utc>) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

fn opt_ts(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    t.map(ts).unwrap_or(Value::Null)
}

pub async fn my_data_export(ctx: &Ctx) -> AppResult<Value> {
    let p = *ctx.require()?;
    if p.role != Role::Coachee {
        return Err(AppError::Forbidden);
    }
    let tenant = ctx.tenant_id()?;
    let me = p.user_id;
    let conn = || ctx.db().conn();

    let profile = scoped::select::<users::Entity>(tenant)
        .filter(users::Column::Id.eq(me))
        .one(&*conn().await?)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let assignments = scoped::select::<coach_assignments::Entity>(tenant)
        .filter(coach_assignments::Column::CoacheeId.eq(me))
        .all(&*conn().await?)
        .await?;
    let coach_ids: Vec<_> = assignments.iter().map(|a| a.coach_id).collect();
    let coaches = scoped::select::<users::Entity>(tenant)
        .filter(users::Column::Id.is_in(coach_ids))
        .order_by_asc(users::Column::DisplayName)
        .all(&*conn().await?)
        .await?;
    let summaries: std::collections::HashMap<uuid::Uuid, String> = scoped::select::<session_summaries::Entity>(tenant)
        .filter(session_summaries::Column::CoacheeId.eq(me))
        .all(&*conn().await?)
        .await?
        .into_iter()
        .map(|s| (s.session_id, s.body))
        .collect();
    let sessions = scoped::select::<coaching_sessions::Entity>(tenant)
        .filter(coaching_sessions::Column::CoacheeId.eq(me))
        .order_by_asc(coaching_sessions::Column::ScheduledAt)
        .all(&*conn().await?)
        .await?;
    let approved = scoped::select::<insights::Entity>(tenant)
        .filter(insights::Column::CoacheeId.eq(me))
        .filter(insights::Column::Status.eq(InsightStatus::Approved))
        .order_by_asc(insights::Column::CreatedAt)
        .all(&*conn().await?)
        .await?;
    let packs = scoped::select::<evidence_packs::Entity>(tenant)
        .filter(evidence_packs::Column::CoacheeId.eq(me))
        .order_by_asc(evidence_packs::Column::CreatedAt)
        .all(&*conn().await?)
        .await?;
    let items = scoped::select::<action_items::Entity>(tenant)
        .filter(action_items::Column::CoacheeId.eq(me))
        .order_by_asc(action_items::Column::CreatedAt)
        .all(&*conn().await?)
        .await?;
    let my_goals = scoped::select::<goals::Entity>(tenant)
        .filter(goals::Column::CoacheeId.eq(me))
        .order_by_asc(goals::Column::CreatedAt)
        .all(&*conn().await?)
        .await?;
    let my_consents = scoped::select::<consents::Entity>(tenant)
        .filter(consents::Column::CoacheeId.eq(me))
        .all(&*conn().await?)
        .await?;
    let history = scoped::select::<consent_history::Entity>(tenant)
        .filter(consent_history::Column::CoacheeId.eq(me))
        .order_by_asc(consent_history::Column::ChangedAt)
        .all(&*conn().await?)
        .await?;
    let feedback = scoped::select::<ai_feedback::Entity>(tenant)
        .filter(ai_feedback::Column::CoacheeId.eq(me))
        .order_by_asc(ai_feedback::Column::CreatedAt)
        .all(&*conn().await?)
        .await?;
    let ai_log = scoped::select::<ai_access_log::Entity>(tenant)
        .filter(ai_access_log::Column::CoacheeId.eq(me))
        .order_by_asc(ai_access_log::Column::At)
        .all(&*conn().await?)
        .await?;
    let notices = scoped::select::<access_notices::Entity>(tenant)
        .filter(access_notices::Column::CoacheeId.eq(me))
        .order_by_asc(access_notices::Column::At)
        .all(&*conn().await?)
        .await?;
    let tokens = scoped::select::<integration_tokens::Entity>(tenant)
        .filter(integration_tokens::Column::UserId.eq(me))
        .order_by_asc(integration_tokens::Column::CreatedAt)
        .all(&*conn().await?)
        .await?;

    Ok(json!({
        "format": "coachgraph.export.v1",
        "generatedAt": ts(ctx.now()),
        "profile": {
            "id": profile.id, "email": profile.email, "displayName": profile.display_name,
            "role": profile.role.as_str(), "createdAt": ts(profile.created_at), "lastLoginAt": opt_ts(profile.last_login_at),
        },
        "coaches": coaches.iter().map(|c| json!({ "id": c.id, "displayName": c.display_name })).collect::<Vec<_>>(),
        "coachAssignments": assignments.iter().map(|a| json!({
            "coachId": a.coach_id, "active": a.active, "since": ts(a.created_at), "endedAt": opt_ts(a.ended_at),
        })).collect::<Vec<_>>(),
        "sessions": sessions.iter().map(|s| json!({
            "id": s.id, "coachId": s.coach_id, "scheduledAt": ts(s.scheduled_at), "durationMinutes": s.duration_minutes,
            "status": format!("{:?}", s.status).to_uppercase(), "summary": summaries.get(&s.id),
        })).collect::<Vec<_>>(),
        "approvedInsights": approved.iter().map(|i| json!({
            "id": i.id, "sessionId": i.session_id, "body": i.body, "approvedAt": opt_ts(i.approved_at),
        })).collect::<Vec<_>>(),
        "evidencePacks": packs.iter().filter(|p| p.level == EvidenceLevel::L0 || p.approved).map(|p| json!({
            "id": p.id, "sessionId": p.session_id, "level": format!("{:?}", p.level), "content": p.content,
            "approved": p.approved, "approvedAt": opt_ts(p.approved_at),
        })).collect::<Vec<_>>(),
        "actionItems": items.iter().map(|i| json!({
            "id": i.id, "sessionId": i.session_id, "title": i.title,
            "dueOn": i.due_on.map(|d| d.format("%Y-%m-%d").to_string()), "completedAt": opt_ts(i.completed_at),
        })).collect::<Vec<_>>(),
        "goals": my_goals.iter().map(|g| json!({
            "id": g.id, "title": g.title, "progressPercent": g.progress_percent, "updatedAt": ts(g.updated_at),
        })).collect::<Vec<_>>(),
        "consents": my_consents.iter().map(|c| json!({
            "kind": serde_json::to_value(c.kind).unwrap_or(Value::Null), "granted": c.granted, "changedAt": ts(c.changed_at),
        })).collect::<Vec<_>>(),
        "consentHistory": history.iter().map(|c| json!({
            "kind": serde_json::to_value(c.kind).unwrap_or(Value::Null), "granted": c.granted, "changedAt": ts(c.changed_at),
        })).collect::<Vec<_>>(),
        "aiFeedback": feedback.iter().map(|f| json!({
            "id": f.id, "insightId": f.insight_id, "helpful": f.helpful, "comment": f.comment, "createdAt": ts(f.created_at),
        })).collect::<Vec<_>>(),
        "aiAccessLog": ai_log.iter().map(|l| json!({
            "at": ts(l.at), "model": l.model, "purpose": l.purpose, "resource": l.resource, "action": l.action,
        })).collect::<Vec<_>>(),
        "accessNotices": notices.iter().map(|n| json!({
            "at": ts(n.at), "actorRole": n.actor_role.as_str(), "reason": n.reason,
        })).collect::<Vec<_>>(),
        "integrationTokens": tokens.iter().map(|t| json!({
            "id": t.id, "name": t.name, "createdAt": ts(t.created_at), "lastUsedAt": opt_ts(t.last_used_at),
            "revokedAt": opt_ts(t.revoked_at),
        })).collect::<Vec<_>>(),
    }))
}
