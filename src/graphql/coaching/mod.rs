//! Coaching content: `CoachingSession`, `Insight`, `EvidencePack`, `ActionItem`, `Goal`,
//! `CoachNote`, and the queries that list them. Rows are filtered by the caller's reach
//! before they are returned; per-row refusals of a readable field answer null with
//! `FORBIDDEN` or `CONSENT_REQUIRED`; lists drop what the caller may not see.

pub mod mutations;
pub mod queries;

use std::sync::Arc;

use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};
use uuid::Uuid;

use super::decl::{FieldDecl, ObjectDecl, Resolver, ctx_of};
use super::loaders::{self, Loaders};
use super::schema::{Catalog, enum_value, leaf, resolver};
use super::users::UserView;
use super::{datetime, uuid};
use crate::authz::{Access, Resource, Scope, VisibilityTag};
use crate::ctx::Ctx;
use crate::db::entities::{action_items, coach_notes, coaching_sessions, evidence_packs, goals, insights};
use crate::domain::kinds::{EvidenceLevel, InsightStatus, Role};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone)]
pub struct SessionView(pub coaching_sessions::Model);
#[derive(Debug, Clone)]
pub struct InsightView(pub insights::Model);
#[derive(Debug, Clone)]
pub struct PackView(pub evidence_packs::Model);
#[derive(Debug, Clone)]
pub struct ItemView(pub action_items::Model);
#[derive(Debug, Clone)]
pub struct GoalView(pub goals::Model);
#[derive(Debug, Clone)]
pub struct NoteView(pub coach_notes::Model);

pub fn loaders_of<'a>(rc: &ResolverContext<'a>) -> Result<&'a Loaders, async_graphql::Error> {
    rc.data::<Arc<Loaders>>()
        .map(|l| l.as_ref())
        .map_err(|_| AppError::internal("request without loaders").into_graphql())
}

/// Rows of `resource` about `coachee`, or none if the caller may not see them (lists never
/// error for rows the viewer may not see). AI reads are logged.
pub async fn coachee_rows<T, F, Fut>(
    ctx: &Ctx,
    coachee: Uuid,
    resource: Resource,
    load: F,
    id_of: fn(&T) -> Uuid,
) -> AppResult<Vec<T>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = AppResult<Vec<T>>>,
{
    if !ctx.reach().await?.allows(coachee, resource) {
        return Ok(Vec::new());
    }
    let rows = load().await?;
    ctx.note_ai_read(coachee, resource, rows.iter().map(id_of));
    Ok(rows)
}

/// A field of one row that needs the caller's reach on the row's coachee.
async fn gate(ctx: &Ctx, coachee: Uuid, resource: Resource) -> AppResult<()> {
    ctx.reach().await?.coachee(coachee, resource).map_err(|refusal| refusal.into_error(ctx, resource))
}

fn list_of<T: Clone + Send + Sync + 'static, V: Send + Sync + 'static>(
    rows: Vec<T>,
    view: fn(T) -> V,
) -> Option<FieldValue<'static>> {
    Some(FieldValue::list(rows.into_iter().map(|r| FieldValue::owned_any(view(r)))))
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn session_leaf(
    name: &'static str,
    ty: &'static str,
    value: fn(&coaching_sessions::Model) -> Option<Value>,
) -> FieldDecl {
    FieldDecl::tagged(
        name,
        ty,
        VisibilityTag::ClientVisible,
        Access::Resource(Resource::SessionMetadata),
        leaf(move |_: &Ctx, s: &SessionView| Ok(value(&s.0))),
    )
}

/// How the caller sees another user reached through a session (coach or coachee).
pub async fn relation_scope(ctx: &Ctx, user: Uuid, coachee: Uuid) -> AppResult<Scope> {
    let p = ctx.require()?;
    if p.user_id == user {
        return Ok(Scope::Own);
    }
    Ok(match p.role {
        Role::ProgramAdmin => Scope::Tenant,
        Role::Executive => Scope::TenantDirectory,
        // The coachee of a visible session is the caller's assigned (or consented) coachee.
        Role::Coach if user == coachee => Scope::Assigned,
        Role::AiAgent if user == coachee => Scope::Consented,
        // Anyone else named by a session (its coach, for a coachee or the AI; a colleague, for
        // a coach) shows id and display name only.
        _ => Scope::OwnCoaches,
    })
}

fn session_user(name: &'static str, pick: fn(&coaching_sessions::Model) -> Uuid) -> FieldDecl {
    FieldDecl::tagged(
        name,
        "User!",
        VisibilityTag::ClientVisible,
        Access::Resource(Resource::SessionMetadata),
        resolver(move |rc| {
            FieldFuture::new(async move {
                let ctx = ctx_of(&rc)?;
                let s = &rc.parent_value.try_downcast_ref::<SessionView>()?.0;
                let id = pick(s);
                let run = async {
                    let scope = relation_scope(ctx, id, s.coachee_id).await?;
                    let user =
                        loaders::rows(&loaders_of(&rc).map_err(|_| AppError::internal("loaders"))?.users_by_id, id)
                            .await?
                            .into_iter()
                            .next()
                            .ok_or(AppError::NotFound)?;
                    Ok::<_, AppError>(UserView { model: user, scope })
                };
                Ok(Some(FieldValue::owned_any(run.await.map_err(AppError::into_graphql)?)))
            })
        }),
    )
}

/// A resolver over the parent session that returns a (possibly refused) value.
fn on_session<F, Fut>(f: F) -> Resolver
where
    F: Fn(Arc<SessionCall>) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = AppResult<Option<FieldValue<'static>>>> + Send + 'static,
{
    resolver(move |rc| {
        FieldFuture::new(async move {
            let ctx = ctx_of(&rc)?;
            let session = rc.parent_value.try_downcast_ref::<SessionView>()?.0.clone();
            let loaders = rc.data::<Arc<Loaders>>()?.clone();
            let call = Arc::new(SessionCall { ctx: ctx_arc(&rc)?, loaders, session });
            let _ = ctx;
            f(call).await.map_err(AppError::into_graphql)
        })
    })
}

/// What a session field resolver works with (owned, so its future is `'static`).
pub struct SessionCall {
    pub ctx: Arc<Ctx>,
    pub loaders: Arc<Loaders>,
    pub session: coaching_sessions::Model,
}

pub fn ctx_arc(rc: &ResolverContext<'_>) -> Result<Arc<Ctx>, async_graphql::Error> {
    rc.data::<Arc<Ctx>>().cloned().map_err(|_| AppError::internal("request without Ctx").into_graphql())
}

pub fn declare(c: &mut Catalog) {
    use VisibilityTag::{ClientVisible, CoachOnly};
    c.object(
        ObjectDecl::new("CoachingSession")
            .field(session_leaf("id", "ID!", |s| Some(uuid(s.id))))
            .field(session_leaf("scheduledAt", "DateTime!", |s| Some(datetime(s.scheduled_at))))
            .field(session_leaf("durationMinutes", "Int!", |s| Some(Value::from(s.duration_minutes))))
            .field(session_leaf("status", "SessionStatus!", |s| {
                Some(enum_value(match s.status {
                    crate::domain::kinds::SessionStatus::Scheduled => "SCHEDULED",
                    crate::domain::kinds::SessionStatus::Completed => "COMPLETED",
                    crate::domain::kinds::SessionStatus::Cancelled => "CANCELLED",
                }))
            }))
            .field(session_user("coach", |s| s.coach_id))
            .field(session_user("coachee", |s| s.coachee_id))
            .field(
                FieldDecl::tagged(
                    "summary",
                    "String",
                    ClientVisible,
                    Access::Resource(Resource::ApprovedInsights),
                    on_session(|call| async move {
                        let s = &call.session;
                        gate(&call.ctx, s.coachee_id, Resource::ApprovedInsights).await?;
                        call.ctx.note_ai_read(s.coachee_id, Resource::ApprovedInsights, [s.id]);
                        Ok(s.summary.clone().map(|t| FieldValue::value(Value::String(t))))
                    }),
                )
                .describe("Approved summary; null until the coach approves one."),
            )
            .field(FieldDecl::tagged(
                "approvedInsights",
                "[Insight!]!",
                ClientVisible,
                Access::Resource(Resource::ApprovedInsights),
                on_session(|call| async move {
                    let s = &call.session;
                    let rows = coachee_rows(
                        &call.ctx,
                        s.coachee_id,
                        Resource::ApprovedInsights,
                        || async {
                            let all = loaders::rows(&call.loaders.insights_by_session, s.id).await?;
                            Ok(all.into_iter().filter(|i| i.status == InsightStatus::Approved).collect())
                        },
                        |i: &insights::Model| i.id,
                    )
                    .await?;
                    Ok(list_of(rows, InsightView))
                }),
            ))
            .field(FieldDecl::tagged(
                "evidencePacks",
                "[EvidencePack!]!",
                ClientVisible,
                Access::Resource(Resource::EvidencePacks),
                on_session(|call| async move {
                    let s = &call.session;
                    let coachee_view = call.ctx.role() == Some(Role::Coachee);
                    let rows = coachee_rows(
                        &call.ctx,
                        s.coachee_id,
                        Resource::EvidencePacks,
                        || async {
                            let all = loaders::rows(&call.loaders.packs_by_session, s.id).await?;
                            // The coachee sees L0 always, L1 only once approved.
                            Ok(all
                                .into_iter()
                                .filter(|p| !coachee_view || p.level == EvidenceLevel::L0 || p.approved)
                                .collect())
                        },
                        |p: &evidence_packs::Model| p.id,
                    )
                    .await?;
                    Ok(list_of(rows, PackView))
                }),
            ))
            .field(FieldDecl::tagged(
                "actionItems",
                "[ActionItem!]!",
                ClientVisible,
                Access::Resource(Resource::ActionItems),
                on_session(|call| async move {
                    let s = &call.session;
                    let rows = coachee_rows(
                        &call.ctx,
                        s.coachee_id,
                        Resource::ActionItems,
                        || async { loaders::rows(&call.loaders.items_by_session, s.id).await },
                        |i: &action_items::Model| i.id,
                    )
                    .await?;
                    Ok(list_of(rows, ItemView))
                }),
            ))
            .field(FieldDecl::tagged(
                "draftInsights",
                "[Insight!]!",
                CoachOnly,
                Access::Resource(Resource::DraftInsights),
                on_session(|call| async move {
                    let s = &call.session;
                    let rows = coachee_rows(
                        &call.ctx,
                        s.coachee_id,
                        Resource::DraftInsights,
                        || async {
                            let all = loaders::rows(&call.loaders.insights_by_session, s.id).await?;
                            Ok(all.into_iter().filter(|i| i.status != InsightStatus::Approved).collect())
                        },
                        |i: &insights::Model| i.id,
                    )
                    .await?;
                    Ok(list_of(rows, InsightView))
                }),
            ))
            .field(FieldDecl::tagged(
                "privateNotes",
                "String",
                CoachOnly,
                Access::Resource(Resource::CoachNotes),
                on_session(|call| async move {
                    let (ctx, s) = (&call.ctx, &call.session);
                    let p = ctx.require()?;
                    let reach = ctx.reach().await?;
                    let allowed = match p.role {
                        // A session's private notes are its coach's own notes.
                        Role::Coach => s.coach_id == p.user_id && reach.assigned.contains_key(&s.coachee_id),
                        Role::AiAgent => reach.ai_may_read_notes_of(s.coachee_id, s.coach_id),
                        // Break-glass: the one coachee of the admin's grant.
                        Role::ProgramAdmin => reach.break_glass.contains_key(&s.coachee_id),
                        _ => false,
                    };
                    if !allowed {
                        let refusal =
                            if p.role == Role::AiAgent && reach.allows(s.coachee_id, Resource::SessionMetadata) {
                                crate::domain::reach::Refusal::ConsentRequired
                            } else {
                                crate::domain::reach::Refusal::Forbidden
                            };
                        return Err(refusal.into_error(ctx, Resource::CoachNotes));
                    }
                    ctx.note_ai_read(s.coachee_id, Resource::CoachNotes, [s.id]);
                    Ok(s.private_notes.clone().map(|t| FieldValue::value(Value::String(t))))
                }),
            ))
            .field(
                FieldDecl::tagged(
                    "transcript",
                    "String",
                    CoachOnly,
                    Access::Resource(Resource::Transcripts),
                    on_session(|call| async move {
                        let (ctx, s) = (&call.ctx, &call.session);
                        gate(ctx, s.coachee_id, Resource::Transcripts).await?;
                        let t = loaders::rows(&call.loaders.transcripts_by_session, s.id).await?.into_iter().next();
                        if let Some(t) = &t {
                            ctx.note_ai_read(s.coachee_id, Resource::Transcripts, [t.id]);
                        }
                        Ok(t.map(|t| FieldValue::value(Value::String(t.body))))
                    }),
                )
                .describe("Full transcript; the coach needs the coachee's TRANSCRIPT_SHARING consent."),
            ),
    );

    let insight = |name, ty, tag, value: fn(&insights::Model) -> Option<Value>| {
        FieldDecl::tagged(
            name,
            ty,
            tag,
            Access::Resource(Resource::ApprovedInsights),
            leaf(move |_: &Ctx, i: &InsightView| Ok(value(&i.0))),
        )
    };
    c.object(
        ObjectDecl::new("Insight")
            .field(insight("id", "ID!", ClientVisible, |i| Some(uuid(i.id))))
            .field(insight("body", "String!", ClientVisible, |i| Some(string(&i.body))))
            .field(insight("status", "InsightStatus!", ClientVisible, |i| {
                Some(enum_value(match i.status {
                    InsightStatus::Draft => "DRAFT",
                    InsightStatus::Approved => "APPROVED",
                    InsightStatus::Rejected => "REJECTED",
                }))
            }))
            .field(insight("approvedAt", "DateTime", ClientVisible, |i| i.approved_at.map(datetime)))
            .field(
                insight("authorRole", "Role!", CoachOnly, |i| Some(enum_value(i.author_role.as_str())))
                    .describe("Who drafted it: a coach or the AI principal."),
            ),
    );

    let pack = |name, ty, value: fn(&evidence_packs::Model) -> Value| {
        FieldDecl::tagged(
            name,
            ty,
            ClientVisible,
            Access::Resource(Resource::EvidencePacks),
            leaf(move |_: &Ctx, p: &PackView| Ok(Some(value(&p.0)))),
        )
    };
    c.object(
        ObjectDecl::new("EvidencePack")
            .field(pack("id", "ID!", |p| uuid(p.id)))
            .field(pack("level", "EvidenceLevel!", |p| {
                enum_value(if p.level == EvidenceLevel::L0 { "L0" } else { "L1" })
            }))
            .field(pack("content", "String!", |p| string(&p.content)))
            .field(pack("approved", "Boolean!", |p| Value::Boolean(p.approved))),
    );

    let item = |name, ty, value: fn(&action_items::Model) -> Option<Value>| {
        FieldDecl::tagged(
            name,
            ty,
            ClientVisible,
            Access::Resource(Resource::ActionItems),
            leaf(move |_: &Ctx, i: &ItemView| Ok(value(&i.0))),
        )
    };
    c.object(
        ObjectDecl::new("ActionItem")
            .field(item("id", "ID!", |i| Some(uuid(i.id))))
            .field(item("title", "String!", |i| Some(string(&i.title))))
            .field(item("dueOn", "Date", |i| i.due_on.map(|d| Value::String(d.format("%Y-%m-%d").to_string()))))
            .field(item("completedAt", "DateTime", |i| i.completed_at.map(datetime))),
    );

    let goal = |name, ty, value: fn(&goals::Model) -> Value| {
        FieldDecl::tagged(
            name,
            ty,
            ClientVisible,
            Access::Resource(Resource::Goals),
            leaf(move |_: &Ctx, g: &GoalView| Ok(Some(value(&g.0)))),
        )
    };
    c.object(
        ObjectDecl::new("Goal")
            .field(goal("id", "ID!", |g| uuid(g.id)))
            .field(goal("title", "String!", |g| string(&g.title)))
            .field(goal("progressPercent", "Int!", |g| Value::from(g.progress_percent))),
    );

    let note = |name, ty, value: fn(&coach_notes::Model) -> Value| {
        FieldDecl::tagged(
            name,
            ty,
            CoachOnly,
            Access::Resource(Resource::CoachNotes),
            leaf(move |_: &Ctx, n: &NoteView| Ok(Some(value(&n.0)))),
        )
    };
    c.object(
        ObjectDecl::new("CoachNote")
            .field(note("id", "ID!", |n| uuid(n.id)))
            .field(note("body", "String!", |n| string(&n.body)))
            .field(note("createdAt", "DateTime!", |n| datetime(n.created_at))),
    );

    queries::declare(c);
    mutations::declare(c);
}
