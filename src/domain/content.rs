//! Writes to coaching content: sessions, transcripts, insights, evidence packs, action items,
//! goals, coach notes, AI feedback. Each function takes the `Ctx` first; tenant and owner
//! come from it, never from input. Relationship and consent rules go through `Reach::may`;
//! row conditions (authorship, status) are checked here. Refusals are audited.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
use uuid::Uuid;

use crate::authz::{Action, Resource};
use crate::ctx::Ctx;
use crate::db::entities::{
    action_items, ai_feedback, coach_notes, coaching_sessions, evidence_packs, goals, insights, session_private_notes,
    transcripts,
};
use crate::db::scoped::{self, TenantScoped};
use crate::domain::access::{self, action_name, require, require_coachee as coachee};
use crate::domain::audit::AuditRecord;
use crate::error::{AppError, AppResult};
use crate::kinds::{AuditOutcome, EvidenceLevel, InsightStatus, SessionStatus};

pub const MAX_BODY: usize = 20_000;
pub const MAX_TRANSCRIPT: usize = 500_000;
pub const MAX_TITLE: usize = 300;

/// A new row about `coachee_id`: a coachee of the caller's tenant the caller may create for.
async fn may_create_for(ctx: &Ctx, coachee_id: Uuid, resource: Resource) -> AppResult<()> {
    coachee(ctx, coachee_id, resource).await?;
    require(ctx, coachee_id, resource, Action::Create).await
}

fn written(ctx: &Ctx, action: Action, resource: Resource, id: Uuid) {
    ctx.audit(
        AuditRecord::by(ctx, action_name(action), resource.as_str(), AuditOutcome::Allowed).reason(format!("row {id}")),
    );
}

/// A row of the caller's tenant by id, or the refusal an absent row deserves.
async fn row<E>(ctx: &Ctx, table: &'static str, id: Uuid, resource: Resource, id_col: E::Column) -> AppResult<E::Model>
where
    E: TenantScoped,
    E::Model: Send + Sync,
{
    let found = scoped::select::<E>(ctx.tenant_id()?).filter(id_col.eq(id)).one(&*ctx.db().conn().await?).await?;
    match found {
        Some(m) => Ok(m),
        None => Err(access::refuse_missing(ctx, table, id, resource).await?),
    }
}

/// A session of the caller's tenant by id, or the refusal an absent row deserves.
async fn session_row(ctx: &Ctx, id: Uuid) -> AppResult<coaching_sessions::Model> {
    row::<coaching_sessions::Entity>(
        ctx,
        "coaching_sessions",
        id,
        Resource::SessionMetadata,
        coaching_sessions::Column::Id,
    )
    .await
}

fn check_schedule(ctx: &Ctx, at: DateTime<Utc>) -> AppResult<()> {
    let now = ctx.now();
    if at < now - Duration::days(366) || at > now + Duration::days(731) {
        return Err(AppError::bad_input("scheduledAt must be within a year in the past and two years ahead"));
    }
    Ok(())
}

pub fn check_duration(minutes: i64) -> AppResult<i32> {
    if !(15..=480).contains(&minutes) {
        return Err(AppError::bad_input("durationMinutes must be between 15 and 480"));
    }
    Ok(minutes as i32)
}

// --- sessions -----------------------------------------------------------------------------

pub async fn create_session(
    ctx: &Ctx,
    coachee_id: Uuid,
    at: DateTime<Utc>,
    minutes: i64,
) -> AppResult<coaching_sessions::Model> {
    let minutes = check_duration(minutes)?;
    check_schedule(ctx, at)?;
    may_create_for(ctx, coachee_id, Resource::SessionMetadata).await?;
    let now = ctx.now();
    let model = coaching_sessions::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(ctx.tenant_id()?),
        coach_id: Set(ctx.require()?.user_id),
        coachee_id: Set(coachee_id),
        scheduled_at: Set(at),
        duration_minutes: Set(minutes),
        status: Set(SessionStatus::Scheduled),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&*ctx.db().conn().await?)
    .await?;
    written(ctx, Action::Create, Resource::SessionMetadata, model.id);
    Ok(model)
}

pub async fn update_session(
    ctx: &Ctx,
    id: Uuid,
    at: Option<DateTime<Utc>>,
    status: Option<SessionStatus>,
    private_notes: Option<String>,
) -> AppResult<coaching_sessions::Model> {
    let s = session_row(ctx, id).await?;
    require(ctx, s.coachee_id, Resource::SessionMetadata, Action::Update).await?;
    if private_notes.is_some() && s.coach_id != ctx.require()?.user_id {
        // Private notes are the session coach's own notes.
        return Err(access::deny(ctx, "UPDATE", Resource::CoachNotes, "not the session's coach", AppError::Forbidden));
    }
    let mut m = s.into_active_model();
    if let Some(at) = at {
        check_schedule(ctx, at)?;
        m.scheduled_at = Set(at);
    }
    if let Some(status) = status {
        m.status = Set(status);
    }
    let now = ctx.now();
    m.updated_at = Set(now);
    let saved = m.update(&*ctx.db().conn().await?).await?;
    if let Some(notes) = private_notes {
        save_private_notes(ctx, &saved, notes, now).await?;
    }
    written(ctx, Action::Update, Resource::SessionMetadata, saved.id);
    Ok(saved)
}

pub async fn delete_session(ctx: &Ctx, id: Uuid) -> AppResult<()> {
    let s = session_row(ctx, id).await?;
    require(ctx, s.coachee_id, Resource::SessionMetadata, Action::Delete).await?;
    coaching_sessions::Entity::delete_by_id(s.id).exec(&*ctx.db().conn().await?).await?;
    written(ctx, Action::Delete, Resource::SessionMetadata, s.id);
    Ok(())
}

/// Writes (or replaces) the session's private notes: the session coach's own notes, kept
/// in a table of their own so that no one who reads session rows reads them.
async fn save_private_notes(
    ctx: &Ctx,
    s: &coaching_sessions::Model,
    body: String,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let existing = scoped::select::<session_private_notes::Entity>(s.tenant_id)
        .filter(session_private_notes::Column::SessionId.eq(s.id))
        .one(&*ctx.db().conn().await?)
        .await?;
    match existing {
        Some(row) => {
            let mut m = row.into_active_model();
            m.body = Set(body);
            m.updated_at = Set(now);
            m.update(&*ctx.db().conn().await?).await?;
        }
        None => {
            session_private_notes::ActiveModel {
                id: Set(Uuid::new_v4()),
                tenant_id: Set(s.tenant_id),
                session_id: Set(s.id),
                coachee_id: Set(s.coachee_id),
                coach_id: Set(s.coach_id),
                body: Set(body),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&*ctx.db().conn().await?)
            .await?;
        }
    }
    written(ctx, Action::Update, Resource::CoachNotes, s.id);
    Ok(())
}

/// Attaches (or replaces) a session's transcript: the session's coach only, with the
/// coachee's TRANSCRIPT_SHARING.
pub async fn attach_transcript(ctx: &Ctx, session_id: Uuid, text: String) -> AppResult<()> {
    let s = session_row(ctx, session_id).await?;
    require(ctx, s.coachee_id, Resource::SessionMetadata, Action::Update).await?;
    if s.coach_id != ctx.require()?.user_id {
        return Err(access::deny(ctx, "CREATE", Resource::Transcripts, "not the session's coach", AppError::Forbidden));
    }
    // Attaching replaces the session's transcript: only a coach who may read it (the
    // coachee's TRANSCRIPT_SHARING) may replace it, as PostgreSQL's policy also says.
    require(ctx, s.coachee_id, Resource::Transcripts, Action::Read).await?;
    let tenant = ctx.tenant_id()?;
    transcripts::Entity::delete_many()
        .filter(transcripts::Column::TenantId.eq(tenant))
        .filter(transcripts::Column::SessionId.eq(s.id))
        .exec(&*ctx.db().conn().await?)
        .await?;
    let t = crate::db::insert_unread(
        &*ctx.db().conn().await?,
        transcripts::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(tenant),
            session_id: Set(s.id),
            coachee_id: Set(s.coachee_id),
            body: Set(text),
            created_at: Set(ctx.now()),
        },
    )
    .await?;
    written(ctx, Action::Create, Resource::Transcripts, t.id);
    Ok(())
}

// --- insights -----------------------------------------------------------------------------

/// A draft by the session's assigned coach, or by the AI at ANALYZE.
pub async fn create_insight(ctx: &Ctx, session_id: Uuid, body: String) -> AppResult<insights::Model> {
    let s = session_row(ctx, session_id).await?;
    require(ctx, s.coachee_id, Resource::DraftInsights, Action::Create).await?;
    let p = *ctx.require()?;
    let now = ctx.now();
    let model = crate::db::insert_unread(
        &*ctx.db().conn().await?,
        insights::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(s.tenant_id),
            session_id: Set(s.id),
            coachee_id: Set(s.coachee_id),
            author_id: Set(p.user_id),
            author_role: Set(p.role),
            body: Set(body),
            status: Set(InsightStatus::Draft),
            approved_at: Set(None),
            approved_by: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        },
    )
    .await?;
    ctx.note_ai_write(model.coachee_id, Resource::DraftInsights, [model.id]);
    written(ctx, Action::Create, Resource::DraftInsights, model.id);
    Ok(model)
}

async fn insight_for(ctx: &Ctx, id: Uuid, action: Action) -> AppResult<insights::Model> {
    let i = row::<insights::Entity>(ctx, "insights", id, Resource::DraftInsights, insights::Column::Id).await?;
    require(ctx, i.coachee_id, Resource::DraftInsights, action).await?;
    Ok(i)
}

pub async fn update_insight(ctx: &Ctx, id: Uuid, body: String) -> AppResult<insights::Model> {
    let i = insight_for(ctx, id, Action::Update).await?;
    if i.status == InsightStatus::Approved {
        return Err(AppError::Conflict("an approved insight can no longer be edited".into()));
    }
    let mut m = i.into_active_model();
    m.body = Set(body);
    m.updated_at = Set(ctx.now());
    let saved = m.update(&*ctx.db().conn().await?).await?;
    written(ctx, Action::Update, Resource::DraftInsights, saved.id);
    Ok(saved)
}

/// Approval is what lets an insight reach the coachee.
pub async fn set_insight_status(ctx: &Ctx, id: Uuid, status: InsightStatus) -> AppResult<insights::Model> {
    let i = insight_for(ctx, id, Action::Update).await?;
    if i.status != InsightStatus::Draft && !(i.status == InsightStatus::Rejected && status == InsightStatus::Approved) {
        return Err(AppError::Conflict(format!("the insight is already {:?}", i.status).to_lowercase()));
    }
    let now = ctx.now();
    let me = ctx.require()?.user_id;
    let mut m = i.into_active_model();
    m.status = Set(status);
    m.approved_at = Set((status == InsightStatus::Approved).then_some(now));
    m.approved_by = Set((status == InsightStatus::Approved).then_some(me));
    m.updated_at = Set(now);
    let saved = m.update(&*ctx.db().conn().await?).await?;
    written(ctx, Action::Update, Resource::DraftInsights, saved.id);
    Ok(saved)
}

pub async fn delete_insight(ctx: &Ctx, id: Uuid) -> AppResult<()> {
    let i = insight_for(ctx, id, Action::Delete).await?;
    if i.status == InsightStatus::Approved {
        // The coach has no delete right on approved insights (matrix: R only).
        return Err(access::deny(
            ctx,
            "DELETE",
            Resource::ApprovedInsights,
            "approved insights are kept",
            AppError::Forbidden,
        ));
    }
    insights::Entity::delete_by_id(i.id).exec(&*ctx.db().conn().await?).await?;
    written(ctx, Action::Delete, Resource::DraftInsights, i.id);
    Ok(())
}

// --- evidence packs -------------------------------------------------------------------------

pub async fn create_evidence_pack(
    ctx: &Ctx,
    session_id: Uuid,
    level: EvidenceLevel,
    content: String,
) -> AppResult<evidence_packs::Model> {
    let s = session_row(ctx, session_id).await?;
    require(ctx, s.coachee_id, Resource::EvidencePacks, Action::Create).await?;
    let p = *ctx.require()?;
    let model = crate::db::insert_unread(
        &*ctx.db().conn().await?,
        evidence_packs::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(s.tenant_id),
            session_id: Set(s.id),
            coachee_id: Set(s.coachee_id),
            author_id: Set(p.user_id),
            author_role: Set(p.role),
            level: Set(level),
            content: Set(content),
            approved: Set(false),
            approved_at: Set(None),
            created_at: Set(ctx.now()),
        },
    )
    .await?;
    ctx.note_ai_write(model.coachee_id, Resource::EvidencePacks, [model.id]);
    written(ctx, Action::Create, Resource::EvidencePacks, model.id);
    Ok(model)
}

/// Approval is what lets an L1 pack reach the coachee.
pub async fn approve_evidence_pack(ctx: &Ctx, id: Uuid) -> AppResult<evidence_packs::Model> {
    let p =
        row::<evidence_packs::Entity>(ctx, "evidence_packs", id, Resource::EvidencePacks, evidence_packs::Column::Id)
            .await?;
    require(ctx, p.coachee_id, Resource::EvidencePacks, Action::Update).await?;
    if p.approved {
        return Ok(p);
    }
    let mut m = p.into_active_model();
    m.approved = Set(true);
    m.approved_at = Set(Some(ctx.now()));
    let saved = m.update(&*ctx.db().conn().await?).await?;
    written(ctx, Action::Update, Resource::EvidencePacks, saved.id);
    Ok(saved)
}

// --- action items and goals -------------------------------------------------------------------

pub async fn create_action_item(
    ctx: &Ctx,
    coachee_id: Uuid,
    title: String,
    due_on: Option<NaiveDate>,
) -> AppResult<action_items::Model> {
    may_create_for(ctx, coachee_id, Resource::ActionItems).await?;
    if let Some(due) = due_on {
        let today = ctx.now().date_naive();
        if due < today - Duration::days(366) || due > today + Duration::days(3 * 366) {
            return Err(AppError::bad_input("dueOn must be within a year in the past and three years ahead"));
        }
    }
    let model = action_items::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(ctx.tenant_id()?),
        coachee_id: Set(coachee_id),
        session_id: Set(None),
        created_by: Set(ctx.require()?.user_id),
        title: Set(title),
        due_on: Set(due_on),
        completed_at: Set(None),
        created_at: Set(ctx.now()),
    }
    .insert(&*ctx.db().conn().await?)
    .await?;
    written(ctx, Action::Create, Resource::ActionItems, model.id);
    Ok(model)
}

/// The coachee may only mark its own items complete (its one update right); the coach any
/// of its assigned coachees'. Idempotent.
pub async fn complete_action_item(ctx: &Ctx, id: Uuid) -> AppResult<action_items::Model> {
    let item =
        row::<action_items::Entity>(ctx, "action_items", id, Resource::ActionItems, action_items::Column::Id).await?;
    require(ctx, item.coachee_id, Resource::ActionItems, Action::Update).await?;
    if item.completed_at.is_some() {
        return Ok(item);
    }
    let now = ctx.now();
    action_items::Entity::update_many()
        .col_expr(action_items::Column::CompletedAt, Expr::value(now))
        .filter(action_items::Column::Id.eq(item.id))
        .exec(&*ctx.db().conn().await?)
        .await?;
    written(ctx, Action::Update, Resource::ActionItems, item.id);
    Ok(action_items::Model { completed_at: Some(now), ..item })
}

pub async fn create_goal(ctx: &Ctx, coachee_id: Uuid, title: String) -> AppResult<goals::Model> {
    may_create_for(ctx, coachee_id, Resource::Goals).await?;
    let now = ctx.now();
    let model = goals::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(ctx.tenant_id()?),
        coachee_id: Set(coachee_id),
        created_by: Set(ctx.require()?.user_id),
        title: Set(title),
        progress_percent: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&*ctx.db().conn().await?)
    .await?;
    written(ctx, Action::Create, Resource::Goals, model.id);
    Ok(model)
}

pub async fn update_goal_progress(ctx: &Ctx, id: Uuid, percent: i64) -> AppResult<goals::Model> {
    if !(0..=100).contains(&percent) {
        return Err(AppError::bad_input("progressPercent must be between 0 and 100"));
    }
    let g = row::<goals::Entity>(ctx, "goals", id, Resource::Goals, goals::Column::Id).await?;
    require(ctx, g.coachee_id, Resource::Goals, Action::Update).await?;
    let mut m = g.into_active_model();
    m.progress_percent = Set(percent as i32);
    m.updated_at = Set(ctx.now());
    let saved = m.update(&*ctx.db().conn().await?).await?;
    written(ctx, Action::Update, Resource::Goals, saved.id);
    Ok(saved)
}

// --- coach notes ------------------------------------------------------------------------------

pub async fn add_coach_note(ctx: &Ctx, coachee_id: Uuid, body: String) -> AppResult<coach_notes::Model> {
    may_create_for(ctx, coachee_id, Resource::CoachNotes).await?;
    let now = ctx.now();
    let model = coach_notes::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(ctx.tenant_id()?),
        coach_id: Set(ctx.require()?.user_id),
        coachee_id: Set(coachee_id),
        body: Set(body),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&*ctx.db().conn().await?)
    .await?;
    written(ctx, Action::Create, Resource::CoachNotes, model.id);
    Ok(model)
}

/// A note is its author's alone: another coach of the same coachee gets FORBIDDEN.
async fn own_note(ctx: &Ctx, id: Uuid, action: Action) -> AppResult<coach_notes::Model> {
    let n = row::<coach_notes::Entity>(ctx, "coach_notes", id, Resource::CoachNotes, coach_notes::Column::Id).await?;
    require(ctx, n.coachee_id, Resource::CoachNotes, action).await?;
    if n.coach_id != ctx.require()?.user_id {
        return Err(access::deny(
            ctx,
            action_name(action),
            Resource::CoachNotes,
            "not the note's author",
            AppError::Forbidden,
        ));
    }
    Ok(n)
}

pub async fn update_coach_note(ctx: &Ctx, id: Uuid, body: String) -> AppResult<coach_notes::Model> {
    let n = own_note(ctx, id, Action::Update).await?;
    let mut m = n.into_active_model();
    m.body = Set(body);
    m.updated_at = Set(ctx.now());
    let saved = m.update(&*ctx.db().conn().await?).await?;
    written(ctx, Action::Update, Resource::CoachNotes, saved.id);
    Ok(saved)
}

pub async fn delete_coach_note(ctx: &Ctx, id: Uuid) -> AppResult<()> {
    let n = own_note(ctx, id, Action::Delete).await?;
    coach_notes::Entity::delete_by_id(n.id).exec(&*ctx.db().conn().await?).await?;
    written(ctx, Action::Delete, Resource::CoachNotes, n.id);
    Ok(())
}

// --- AI feedback --------------------------------------------------------------------------------

/// The coachee's feedback on an insight it can see (approved, its own).
pub async fn give_ai_feedback(
    ctx: &Ctx,
    insight_id: Uuid,
    helpful: bool,
    comment: Option<String>,
) -> AppResult<ai_feedback::Model> {
    let i =
        row::<insights::Entity>(ctx, "insights", insight_id, Resource::ApprovedInsights, insights::Column::Id).await?;
    require(ctx, i.coachee_id, Resource::AiFeedback, Action::Create).await?;
    if i.status != InsightStatus::Approved {
        // A draft does not exist for the coachee.
        return Err(access::not_found(ctx, Resource::ApprovedInsights));
    }
    let model = ai_feedback::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(i.tenant_id),
        insight_id: Set(i.id),
        coachee_id: Set(i.coachee_id),
        helpful: Set(helpful),
        comment: Set(comment),
        created_at: Set(ctx.now()),
    }
    .insert(&*ctx.db().conn().await?)
    .await?;
    written(ctx, Action::Create, Resource::AiFeedback, model.id);
    Ok(model)
}
