//! Coaching content: `CoachingSession`, `Insight`, `EvidencePack`, `ActionItem`, `Goal`,
//! `CoachNote`, and the queries that list them. Rows are filtered by the caller's reach
//! before they are returned; per-row refusals of a readable field answer null with
//! `FORBIDDEN` or `CONSENT_REQUIRED`; lists drop what the caller may not see.

pub mod mutations;
pub mod queries;

use crate::graphql::decl::Ty;
use crate::graphql::decl::ty;
use std::sync::Arc;

use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};
use uuid::Uuid;

use super::decl::{FieldDecl, ObjectDecl, Resolver, ctx_of};
use super::mutation::Args;
use super::schema::{Catalog, enum_value, leaf, resolver};
use super::users::UserView;
use super::{datetime, uuid};
use crate::authz::rows::Admitted;
use crate::authz::{Access, ContentTable, Refusal, Resource, RowFacts, VisibilityTag};
use crate::ctx::Ctx;
use crate::db::entities::{
    action_items, coach_notes, coaching_sessions, evidence_packs, goals, insights, session_private_notes,
    session_summaries, transcripts,
};
use crate::domain::loaders::{self, Loaders};
use crate::domain::paging::{Listed, SortKey};
use crate::error::{AppError, AppResult};
use crate::graphql::paging::{Connection, Page};
use crate::kinds::{EvidenceLevel, InsightStatus};

// Views of content rows hold what the row policy admitted (`Admitted` has no public
// constructor): a resolver cannot show a row the policy did not let through.
#[derive(Debug, Clone)]
pub struct SessionView(pub Admitted<coaching_sessions::Model>);
#[derive(Debug, Clone)]
pub struct InsightView(pub Admitted<insights::Model>);
#[derive(Debug, Clone)]
pub struct PackView(pub Admitted<evidence_packs::Model>);
#[derive(Debug, Clone)]
pub struct ItemView(pub Admitted<action_items::Model>);
#[derive(Debug, Clone)]
pub struct GoalView(pub Admitted<goals::Model>);
#[derive(Debug, Clone)]
pub struct NoteView(pub Admitted<coach_notes::Model>);

/// A page of sessions as a connection (cursor: the last session's time and id).
pub fn session_connection(page: &Page, listed: Listed<Admitted<coaching_sessions::Model>>) -> Connection<SessionView> {
    let nodes = listed.rows.into_iter().map(SessionView).collect();
    Connection::keyset(page, nodes, listed.has_next, listed.total, |s: &SessionView| {
        SortKey::At(s.0.scheduled_at, s.0.id)
    })
}

/// A page of action items as a connection (cursor: the last item's creation time and id).
pub fn item_connection(page: &Page, listed: Listed<Admitted<action_items::Model>>) -> Connection<ItemView> {
    let nodes = listed.rows.into_iter().map(ItemView).collect();
    Connection::keyset(page, nodes, listed.has_next, listed.total, |i: &ItemView| SortKey::At(i.0.created_at, i.0.id))
}

pub fn loaders_of<'a>(rc: &ResolverContext<'a>) -> Result<&'a Loaders, async_graphql::Error> {
    rc.data::<Arc<Loaders>>()
        .map(|l| l.as_ref())
        .map_err(|_| AppError::internal("request without loaders").into_graphql())
}

/// The rows of `table` about `coachee` that the row policy lets the caller read (lists never
/// error for rows the viewer may not see). Nothing is loaded when no row of the table about
/// this coachee could be readable. AI reads are logged.
pub async fn visible_rows<T, F, Fut>(
    ctx: &Ctx,
    table: ContentTable,
    coachee: Uuid,
    load: F,
    facts: fn(&T) -> RowFacts,
    id_of: fn(&T) -> Uuid,
) -> AppResult<Vec<Admitted<T>>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = AppResult<Vec<T>>>,
{
    let reach = crate::domain::reach::of(ctx).await?;
    if !reach.may_list(table, coachee) {
        return Ok(Vec::new());
    }
    let mut shown = Vec::new();
    for row in load().await? {
        if let Ok(admitted) = reach.admit(table, row, facts) {
            ctx.note_ai_read(coachee, table.resource(&facts(&admitted)), [id_of(&admitted)]);
            ctx.note_ai_listed([id_of(&admitted)]);
            shown.push(admitted);
        }
    }
    Ok(shown)
}

/// One row of `table` that a field shows, or the audited refusal (null with FORBIDDEN or
/// CONSENT_REQUIRED at the field's path). Without a row, `table`'s resource for the coachee
/// decides.
async fn visible_row<T>(
    ctx: &Ctx,
    table: ContentTable,
    coachee: Uuid,
    row: Option<T>,
    facts: fn(&T) -> RowFacts,
    id_of: fn(&T) -> Uuid,
) -> AppResult<Option<Admitted<T>>> {
    let reach = crate::domain::reach::of(ctx).await?;
    let refused = |refusal: Refusal| refusal.into_error(ctx, table.resource(&RowFacts::about(coachee)));
    match row {
        Some(row) => {
            let admitted = reach.admit(table, row, facts).map_err(refused)?;
            ctx.note_ai_read(coachee, table.resource(&facts(&admitted)), [id_of(&admitted)]);
            Ok(Some(admitted))
        }
        None => {
            reach.coachee(coachee, table.resource(&RowFacts::about(coachee))).map_err(refused)?;
            Ok(None)
        }
    }
}

pub fn insight_facts(i: &insights::Model) -> RowFacts {
    RowFacts::insight(i.coachee_id, i.status == InsightStatus::Approved)
}

pub fn pack_facts(p: &evidence_packs::Model) -> RowFacts {
    RowFacts::evidence(p.coachee_id, p.level == EvidenceLevel::L1, p.approved)
}

fn summary_facts(r: &session_summaries::Model) -> RowFacts {
    RowFacts::about(r.coachee_id)
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

fn session_leaf(name: &'static str, ty: Ty, value: fn(&coaching_sessions::Model) -> Option<Value>) -> FieldDecl {
    FieldDecl::tagged(
        name,
        ty,
        VisibilityTag::ClientVisible,
        Access::Resource(Resource::SessionMetadata),
        leaf(move |_: &Ctx, s: &SessionView| Ok(value(&s.0))),
    )
}

fn session_user(name: &'static str, pick: fn(&coaching_sessions::Model) -> Uuid) -> FieldDecl {
    FieldDecl::tagged(
        name,
        ty::req("User"),
        VisibilityTag::ClientVisible,
        Access::Resource(Resource::SessionMetadata),
        resolver(move |rc| {
            FieldFuture::new(async move {
                let ctx = ctx_of(&rc)?;
                let s = &rc.parent_value.try_downcast_ref::<SessionView>()?.0;
                let id = pick(s);
                let run = async {
                    let scope = crate::domain::reach::of(&ctx).await?.session_person_scope(id, s.coachee_id);
                    let loaders = loaders_of(&rc).map_err(|_| AppError::internal("loaders"))?;
                    let user = loaders.profiles_by_id.load_one(id).await?.ok_or(AppError::NotFound)?;
                    Ok::<_, AppError>(UserView { model: user, scope })
                };
                Ok(Some(FieldValue::owned_any(run.await.map_err(AppError::into_graphql)?)))
            })
        }),
    )
}

/// Prefetches, as one batch, the relations that the selection asks of these sessions
/// (`(session, coachee)` pairs): see [`Loaders::prefetch`]. Where the caller's reach is
/// loaded already (it is, once sessions are), only the lists it may read.
pub async fn prefetch_session_relations(ctx: &Ctx, args: &Args, sessions: &[(Uuid, Uuid)]) {
    let Some(loaders) = args.loaders() else { return };
    if sessions.is_empty() {
        return;
    }
    let reach = crate::domain::reach::loaded(ctx);
    let may_list = |table, coachee| reach.as_ref().is_none_or(|r| r.may_list(table, coachee));
    let mut wants = Vec::new();
    for selected in args.selected() {
        let (table, want): (ContentTable, fn(&Loaders, Uuid) -> loaders::Want) = match selected.name.as_str() {
            "summary" => (ContentTable::SessionSummaries, |l, s| l.summaries_by_session.want(s)),
            // One relation for both lists (the loader takes a key once, however often asked).
            "approvedInsights" | "draftInsights" => (ContentTable::Insights, |l, s| l.insights_by_session.want(s)),
            "evidencePacks" => (ContentTable::EvidencePacks, |l, s| l.packs_by_session.want(s)),
            "actionItems" => (ContentTable::ActionItems, |l, s| l.items_by_session.want(s)),
            "privateNotes" => (ContentTable::SessionPrivateNotes, |l, s| l.private_notes_by_session.want(s)),
            "transcript" => (ContentTable::Transcripts, |l, s| l.transcripts_by_session.want(s)),
            _ => continue,
        };
        let readable = sessions.iter().filter(|(_, coachee)| may_list(table, *coachee));
        wants.extend(readable.map(|(session, _)| want(loaders, *session)));
    }
    loaders.prefetch(wants).await;
}

/// A resolver over the parent session that returns a (possibly refused) value.
fn on_session<F, Fut>(f: F) -> Resolver
where
    F: Fn(Arc<SessionCall>) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = AppResult<Option<FieldValue<'static>>>> + Send + 'static,
{
    resolver(move |rc| {
        FieldFuture::new(async move {
            let session = rc.parent_value.try_downcast_ref::<SessionView>()?.0.clone();
            let loaders = rc.data::<Arc<Loaders>>()?.clone();
            let call = Arc::new(SessionCall { ctx: ctx_of(&rc)?, loaders, session });
            f(call).await.map_err(AppError::into_graphql)
        })
    })
}

/// What a session field resolver works with (owned, so its future is `'static`).
pub struct SessionCall {
    pub ctx: Arc<Ctx>,
    pub loaders: Arc<Loaders>,
    pub session: Admitted<coaching_sessions::Model>,
}

pub fn declare(c: &mut Catalog) {
    use VisibilityTag::{ClientVisible, CoachOnly};
    c.object(
        ObjectDecl::new("CoachingSession")
            .field(session_leaf("id", ty::req("ID"), |s| Some(uuid(s.id))))
            .field(session_leaf("scheduledAt", ty::req("DateTime"), |s| Some(datetime(s.scheduled_at))))
            .field(session_leaf("durationMinutes", ty::req("Int"), |s| Some(Value::from(s.duration_minutes))))
            .field(session_leaf("status", ty::req("SessionStatus"), |s| Some(enum_value(crate::kinds::name(s.status)))))
            .field(session_user("coach", |s| s.coach_id))
            .field(session_user("coachee", |s| s.coachee_id))
            .field(
                FieldDecl::tagged(
                    "summary",
                    ty::opt("String"),
                    ClientVisible,
                    Access::Resource(Resource::ApprovedInsights),
                    on_session(|call| async move {
                        let s = &call.session;
                        let row = loaders::rows(&call.loaders.summaries_by_session, s.id).await?.into_iter().next();
                        let row = visible_row(
                            &call.ctx,
                            ContentTable::SessionSummaries,
                            s.coachee_id,
                            row,
                            summary_facts,
                            |r| r.id,
                        )
                        .await?;
                        Ok(row.map(|r| FieldValue::value(Value::String(r.into_row().body))))
                    }),
                )
                .describe("Approved summary; null until the coach approves one."),
            )
            .field(FieldDecl::tagged(
                "approvedInsights",
                ty::list("Insight"),
                ClientVisible,
                Access::Resource(Resource::ApprovedInsights),
                on_session(|call| async move {
                    let s = &call.session;
                    let load = || async {
                        let all = loaders::rows(&call.loaders.insights_by_session, s.id).await?;
                        Ok(all.into_iter().filter(|i| i.status == InsightStatus::Approved).collect())
                    };
                    let rows = visible_rows(
                        &call.ctx,
                        ContentTable::Insights,
                        s.coachee_id,
                        load,
                        insight_facts,
                        |i: &insights::Model| i.id,
                    )
                    .await?;
                    Ok(list_of(rows, InsightView))
                }),
            ))
            .field(FieldDecl::tagged(
                "evidencePacks",
                ty::list("EvidencePack"),
                ClientVisible,
                Access::Resource(Resource::EvidencePacks),
                on_session(|call| async move {
                    let s = &call.session;
                    let load = || loaders::rows(&call.loaders.packs_by_session, s.id);
                    let rows = visible_rows(
                        &call.ctx,
                        ContentTable::EvidencePacks,
                        s.coachee_id,
                        load,
                        pack_facts,
                        |p: &evidence_packs::Model| p.id,
                    )
                    .await?;
                    Ok(list_of(rows, PackView))
                }),
            ))
            .field(FieldDecl::tagged(
                "actionItems",
                ty::list("ActionItem"),
                ClientVisible,
                Access::Resource(Resource::ActionItems),
                on_session(|call| async move {
                    let s = &call.session;
                    let load = || loaders::rows(&call.loaders.items_by_session, s.id);
                    let rows = visible_rows(
                        &call.ctx,
                        ContentTable::ActionItems,
                        s.coachee_id,
                        load,
                        |i: &action_items::Model| RowFacts::about(i.coachee_id),
                        |i: &action_items::Model| i.id,
                    )
                    .await?;
                    Ok(list_of(rows, ItemView))
                }),
            ))
            .field(FieldDecl::tagged(
                "draftInsights",
                ty::list("Insight"),
                CoachOnly,
                Access::Resource(Resource::DraftInsights),
                on_session(|call| async move {
                    let s = &call.session;
                    let load = || async {
                        let all = loaders::rows(&call.loaders.insights_by_session, s.id).await?;
                        Ok(all.into_iter().filter(|i| i.status != InsightStatus::Approved).collect())
                    };
                    let rows = visible_rows(
                        &call.ctx,
                        ContentTable::Insights,
                        s.coachee_id,
                        load,
                        insight_facts,
                        |i: &insights::Model| i.id,
                    )
                    .await?;
                    Ok(list_of(rows, InsightView))
                }),
            ))
            .field(FieldDecl::tagged(
                "privateNotes",
                ty::opt("String"),
                CoachOnly,
                Access::Resource(Resource::CoachNotes),
                on_session(|call| async move {
                    let (ctx, s) = (&call.ctx, &call.session);
                    let row = loaders::rows(&call.loaders.private_notes_by_session, s.id).await?.into_iter().next();
                    // No notes yet: decided as the session coach's notes would be.
                    let facts = |n: &session_private_notes::Model| RowFacts::authored(n.coachee_id, n.coach_id);
                    let row = match row {
                        Some(row) => {
                            visible_row(ctx, ContentTable::SessionPrivateNotes, s.coachee_id, Some(row), facts, |n| {
                                n.id
                            })
                            .await?
                        }
                        None => {
                            let reach = crate::domain::reach::of(ctx).await?;
                            reach
                                .read(ContentTable::SessionPrivateNotes, &RowFacts::authored(s.coachee_id, s.coach_id))
                                .map_err(|refusal| refusal.into_error(ctx, Resource::CoachNotes))?;
                            None
                        }
                    };
                    Ok(row.map(|n| FieldValue::value(Value::String(n.into_row().body))))
                }),
            ))
            .field(
                FieldDecl::tagged(
                    "transcript",
                    ty::opt("String"),
                    CoachOnly,
                    Access::Resource(Resource::Transcripts),
                    on_session(|call| async move {
                        let (ctx, s) = (&call.ctx, &call.session);
                        let t = loaders::rows(&call.loaders.transcripts_by_session, s.id).await?.into_iter().next();
                        let facts = |t: &transcripts::Model| RowFacts::about(t.coachee_id);
                        let t = visible_row(ctx, ContentTable::Transcripts, s.coachee_id, t, facts, |t| t.id).await?;
                        Ok(t.map(|t| FieldValue::value(Value::String(t.into_row().body))))
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
            .field(insight("id", ty::req("ID"), ClientVisible, |i| Some(uuid(i.id))))
            .field(insight("body", ty::req("String"), ClientVisible, |i| Some(string(&i.body))))
            .field(insight("status", ty::req("InsightStatus"), ClientVisible, |i| {
                Some(enum_value(crate::kinds::name(i.status)))
            }))
            .field(insight("approvedAt", ty::opt("DateTime"), ClientVisible, |i| i.approved_at.map(datetime)))
            .field(
                insight("authorRole", ty::req("Role"), CoachOnly, |i| Some(enum_value(i.author_role.as_str())))
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
            .field(pack("id", ty::req("ID"), |p| uuid(p.id)))
            .field(pack("level", ty::req("EvidenceLevel"), |p| enum_value(crate::kinds::name(p.level))))
            .field(pack("content", ty::req("String"), |p| string(&p.content)))
            .field(pack("approved", ty::req("Boolean"), |p| Value::Boolean(p.approved))),
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
            .field(item("id", ty::req("ID"), |i| Some(uuid(i.id))))
            .field(item("title", ty::req("String"), |i| Some(string(&i.title))))
            .field(item("dueOn", ty::opt("Date"), |i| i.due_on.map(|d| Value::String(d.to_string()))))
            .field(item("completedAt", ty::opt("DateTime"), |i| i.completed_at.map(datetime))),
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
            .field(goal("id", ty::req("ID"), |g| uuid(g.id)))
            .field(goal("title", ty::req("String"), |g| string(&g.title)))
            .field(goal("progressPercent", ty::req("Int"), |g| Value::from(g.progress_percent))),
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
            .field(note("id", ty::req("ID"), |n| uuid(n.id)))
            .field(note("body", ty::req("String"), |n| string(&n.body)))
            .field(note("createdAt", ty::req("DateTime"), |n| datetime(n.created_at))),
    );

    queries::declare(c);
    mutations::declare(c);
}
