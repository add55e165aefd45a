//! `User` and the profile queries.

use crate::graphql::decl::Ty;
use crate::graphql::decl::ty;
use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue};

use std::sync::Arc;

use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::coaching::{
    GoalView, NoteView, item_connection, prefetch_session_relations, session_connection, visible_rows,
};
use super::decl::{Entry, FieldDecl, ObjectDecl, ctx_of};
use super::mutation::{Args, query};
use super::paging::Page;
use super::schema::{Catalog, enum_value, leaf, resolver};
use super::uuid;
use crate::authz::rows::Admitted;
use crate::authz::{Access, Action, ContentTable, Resource, RowFacts, Scope, VisibilityTag, profile_fields};
use crate::ctx::Ctx;
use crate::db::entities::{action_items, coach_notes, coaching_sessions, goals, users};
use crate::domain::access;
use crate::domain::loaders::{self, Loaders};
use crate::domain::paging::{Listed, Window};
use crate::error::{AppError, AppResult};
use crate::kinds::Role;

/// A user row together with how the viewer is related to it, which decides the
/// profile fields this row shows.
#[derive(Debug, Clone)]
pub struct UserView {
    pub model: users::Profile,
    /// The grant scope the row was reached through; `Own` for the caller's own profile.
    pub scope: Scope,
}

/// Row-level check of a profile field: a scope with a field list shows only those fields;
/// another field of that row is refused (null with FORBIDDEN at its path), audited.
fn profile_field(ctx: &Ctx, view: &UserView, field: &str) -> AppResult<()> {
    match profile_fields(view.scope) {
        Some(allowed) if !allowed.contains(&field) => {
            Err(access::forbidden(ctx, Resource::OtherUserProfiles, "profile field outside the grant"))
        }
        _ => Ok(()),
    }
}

/// Contract version 2: `role` and `email` are nullable, because on some rows the caller may
/// read only a user's id and display name (a coachee's own coaches) or the directory fields.
fn profile_leaf(field: &'static str, value: fn(&users::Profile) -> Value) -> FieldDecl {
    let ty = match field {
        "id" => ty::req("ID"),
        "displayName" => ty::req("String"),
        "role" => ty::opt("Role"),
        _ => ty::opt("String"),
    };
    FieldDecl::tagged(
        field,
        ty,
        VisibilityTag::ClientVisible,
        Access::Profile,
        leaf(move |ctx: &Ctx, v: &UserView| {
            profile_field(ctx, v, field)?;
            Ok(Some(value(&v.model)))
        }),
    )
}

pub async fn load_own_profile(ctx: &Ctx) -> AppResult<Option<UserView>> {
    Ok(crate::domain::reads::own_profile(ctx).await?.map(|model| UserView { model: model.into(), scope: Scope::Own }))
}

/// A relation of a user (as coachee): the rows the caller may see, possibly none.
fn relation(
    name: &'static str,
    ty: Ty,
    tag: VisibilityTag,
    resource: Resource,
    paged: Option<&'static str>,
    load: RelationLoad,
) -> FieldDecl {
    let decl = FieldDecl::tagged(
        name,
        ty,
        tag,
        Access::Resource(resource),
        resolver(move |rc| {
            FieldFuture::new(async move {
                let ctx = ctx_of(&rc)?;
                let loaders = rc.data::<Arc<Loaders>>()?.clone();
                let user = rc.parent_value.try_downcast_ref::<UserView>()?.model.id;
                let run = async {
                    let page = match paged {
                        Some(list) => {
                            let args = Args::from_rc(&rc);
                            Some((Page::from(&args, ctx.role(), list)?, args))
                        }
                        None => None,
                    };
                    load(ctx.clone(), loaders, user, page).await
                };
                Ok(Some(run.await.map_err(AppError::into_graphql)?))
            })
        }),
    );
    if paged.is_some() { decl.arg("first", ty::opt("Int")).arg("after", ty::opt("String")) } else { decl }
}

/// The page request of a nested connection (the relation is declared paged), with its
/// arguments.
fn page_of(page: Option<(Page, Args)>) -> AppResult<(Page, Args)> {
    page.ok_or_else(|| AppError::internal("a connection without its page"))
}

type RelationLoad =
    fn(Arc<Ctx>, Arc<Loaders>, Uuid, Option<(Page, Args)>) -> BoxFuture<'static, AppResult<FieldValue<'static>>>;

/// Prefetches, as one batch, the relations that the selection asks of these users (as
/// coachees): see [`Loaders::prefetch`]. Where the caller's reach is loaded already, only
/// the lists it may read; it is never waited for, so that the keys join the batch of the
/// fields beside (`me` beside `myConsents`), and the loader's SQL filter decides anyway.
pub async fn prefetch_relations(ctx: &Ctx, args: &Args, users: &[Uuid]) {
    let Some(loaders) = args.loaders() else { return };
    let reach = crate::domain::reach::loaded(ctx);
    let may_list = |table, user| reach.as_ref().is_none_or(|r| r.may_list(table, user));
    let mut wants = Vec::new();
    for selected in args.selected() {
        let window = |list| Page::from(&selected.args, ctx.role(), list).and_then(|p| p.window()).ok();
        let (table, want): (ContentTable, Box<dyn Fn(Uuid) -> loaders::Want>) = match selected.name.as_str() {
            "goals" => (ContentTable::Goals, Box::new(|u| loaders.goals_by_coachee.want(u))),
            "coachNotes" => (ContentTable::CoachNotes, Box::new(|u| loaders.notes_by_coachee.want(u))),
            "sessions" => match window("User.sessions") {
                Some(w) => {
                    (ContentTable::CoachingSessions, Box::new(move |u| loaders.sessions_by_coachee.want(u, w.clone())))
                }
                None => continue,
            },
            "actionItems" => match window("User.actionItems") {
                Some(w) => (ContentTable::ActionItems, Box::new(move |u| loaders.items_by_coachee.want(u, w.clone()))),
                None => continue,
            },
            _ => continue,
        };
        wants.extend(users.iter().filter(|u| may_list(table, **u)).map(|u| want(*u)));
    }
    loaders.prefetch(wants).await;
}

/// This coachee's page of a nested connection: paged in SQL per parent, then each row
/// through the row check (AI reads logged).
async fn nested_page<T, Fut>(
    ctx: &Ctx,
    table: ContentTable,
    user: Uuid,
    window: &Window,
    load: impl FnOnce() -> Fut,
    facts: fn(&T) -> RowFacts,
    id_of: fn(&T) -> Uuid,
) -> AppResult<Listed<Admitted<T>>>
where
    Fut: Future<Output = AppResult<Listed<T>>>,
{
    // Nothing loaded (no row of this list is readable): an empty, complete list.
    let empty = Listed::<T>::empty(window);
    let mut meta = (empty.has_next, empty.total);
    let rows = visible_rows(
        ctx,
        table,
        user,
        || async {
            let listed = load().await?;
            meta = (listed.has_next, listed.total);
            Ok(listed.rows)
        },
        facts,
        id_of,
    )
    .await?;
    Ok(Listed { rows, has_next: meta.0, total: meta.1 })
}

fn user_sessions(
    ctx: Arc<Ctx>,
    l: Arc<Loaders>,
    user: Uuid,
    page: Option<(Page, Args)>,
) -> BoxFuture<'static, AppResult<FieldValue<'static>>> {
    Box::pin(async move {
        let (page, args) = page_of(page)?;
        let facts = |s: &coaching_sessions::Model| RowFacts::about(s.coachee_id);
        let table = ContentTable::CoachingSessions;
        let window = page.window()?;
        let load = || loaders::page(&l.sessions_by_coachee, user, window.clone());
        let listed = nested_page(&ctx, table, user, &window, load, facts, |s| s.id).await?;
        let sessions: Vec<(Uuid, Uuid)> = listed.rows.iter().map(|s| (s.id, s.coachee_id)).collect();
        prefetch_session_relations(&ctx, &args, &sessions).await;
        Ok(FieldValue::owned_any(session_connection(&page, listed)))
    })
}

fn user_items(
    ctx: Arc<Ctx>,
    l: Arc<Loaders>,
    user: Uuid,
    page: Option<(Page, Args)>,
) -> BoxFuture<'static, AppResult<FieldValue<'static>>> {
    Box::pin(async move {
        let (page, _) = page_of(page)?;
        let facts = |i: &action_items::Model| RowFacts::about(i.coachee_id);
        let table = ContentTable::ActionItems;
        let window = page.window()?;
        let load = || loaders::page(&l.items_by_coachee, user, window.clone());
        let listed = nested_page(&ctx, table, user, &window, load, facts, |i| i.id).await?;
        Ok(FieldValue::owned_any(item_connection(&page, listed)))
    })
}

fn user_goals(
    ctx: Arc<Ctx>,
    l: Arc<Loaders>,
    user: Uuid,
    _: Option<(Page, Args)>,
) -> BoxFuture<'static, AppResult<FieldValue<'static>>> {
    Box::pin(async move {
        let load = || loaders::rows(&l.goals_by_coachee, user);
        let facts = |g: &goals::Model| RowFacts::about(g.coachee_id);
        let rows = visible_rows(&ctx, ContentTable::Goals, user, load, facts, |g| g.id).await?;
        Ok(FieldValue::list(rows.into_iter().map(|g| FieldValue::owned_any(GoalView(g)))))
    })
}

/// The coach notes about this coachee that the row policy lets the caller read.
fn user_notes(
    ctx: Arc<Ctx>,
    l: Arc<Loaders>,
    user: Uuid,
    _: Option<(Page, Args)>,
) -> BoxFuture<'static, AppResult<FieldValue<'static>>> {
    Box::pin(async move {
        let load = || loaders::rows(&l.notes_by_coachee, user);
        let facts = |n: &coach_notes::Model| RowFacts::authored(n.coachee_id, n.coach_id);
        let rows = visible_rows(&ctx, ContentTable::CoachNotes, user, load, facts, |n| n.id).await?;
        Ok(FieldValue::list(rows.into_iter().map(|n| FieldValue::owned_any(NoteView(n)))))
    })
}

#[derive(Debug, Clone)]
struct DataExportView {
    json: String,
    generated_at: chrono::DateTime<chrono::Utc>,
}

fn declare_export(c: &mut Catalog) {
    c.object(
        ObjectDecl::structural("DataExport")
            .field(
                FieldDecl::structural(
                    "json",
                    ty::req("String"),
                    leaf(|_, e: &DataExportView| Ok(Some(Value::String(e.json.clone())))),
                )
                .describe("JSON document of everything stored about the caller."),
            )
            .field(FieldDecl::structural(
                "generatedAt",
                ty::req("DateTime"),
                leaf(|_, e: &DataExportView| Ok(Some(super::datetime(e.generated_at)))),
            )),
    );
    c.query(
        FieldDecl::root(
            "myDataExport",
            ty::req("DataExport"),
            Entry::Roles(&[Role::Coachee]),
            query(|ctx, _| async move {
                let doc = crate::domain::export::my_data_export(&ctx).await?;
                Ok(Some(FieldValue::owned_any(DataExportView { json: doc.to_string(), generated_at: ctx.now() })))
            }),
        )
        .describe("COACHEE only: everything stored about the caller, complete."),
    );
}

pub fn declare(c: &mut Catalog) {
    declare_export(c);
    use VisibilityTag::{ClientVisible, CoachOnly};
    c.object(
        ObjectDecl::new("User")
            .field(profile_leaf("id", |u| uuid(u.id)))
            .field(profile_leaf("role", |u| enum_value(u.role.as_str())))
            .field(profile_leaf("displayName", |u| Value::String(u.display_name.clone())))
            .field(profile_leaf("email", |u| Value::String(u.email.clone())))
            .field(
                relation("coachNotes", ty::list("CoachNote"), CoachOnly, Resource::CoachNotes, None, user_notes)
                    .describe("The coach's private notes about this coachee (own notes only)."),
            )
            .field(relation(
                "sessions",
                ty::req("CoachingSessionConnection"),
                ClientVisible,
                Resource::SessionMetadata,
                Some("User.sessions"),
                user_sessions,
            ))
            .field(relation("goals", ty::list("Goal"), ClientVisible, Resource::Goals, None, user_goals))
            .field(relation(
                "actionItems",
                ty::req("ActionItemConnection"),
                ClientVisible,
                Resource::ActionItems,
                Some("User.actionItems"),
                user_items,
            )),
    );
    c.query(
        FieldDecl::root(
            "me",
            ty::opt("User"),
            Entry::Matrix(Resource::OwnProfile, Action::Read),
            query(|ctx, args| async move {
                let me = load_own_profile(&ctx).await?;
                if let Some(me) = &me {
                    prefetch_relations(&ctx, &args, &[me.model.id]).await;
                }
                Ok(me.map(FieldValue::owned_any))
            }),
        )
        .describe("Own profile (roles with R on own_profile)."),
    );
}
