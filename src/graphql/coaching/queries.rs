//! Root queries over people and coaching content: coachees, users, user, session,
//! sessions, actionItems, goals.

use std::collections::HashSet;

use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use uuid::Uuid;

use super::{GoalView, ItemView, SessionView, ctx_arc};
use crate::authz::{Action, ContentTable, Resource, RowFacts, Scope};
use crate::ctx::Ctx;
use crate::db::entities::{action_items, coaching_sessions, goals, users};
use crate::db::scoped;
use crate::domain::access;
use crate::domain::kinds::Role;
use crate::error::{AppError, AppResult};
use crate::graphql::decl::{Entry, FieldDecl, ctx_of};
use crate::graphql::paging::{Connection, Page, connection_decl};
use crate::graphql::schema::{Catalog, resolver};
use crate::graphql::users::UserView;

/// Reads an optional `ID` argument; a malformed id is bad input.
pub fn opt_id(rc: &ResolverContext<'_>, name: &str) -> AppResult<Option<Uuid>> {
    match rc.args.get(name) {
        Some(v) if !v.is_null() => {
            let s = v.string().map_err(|_| AppError::bad_input(format!("{name} must be an ID")))?;
            Uuid::parse_str(s).map(Some).map_err(|_| AppError::bad_input(format!("{name} is not a valid ID")))
        }
        _ => Ok(None),
    }
}

pub fn id(rc: &ResolverContext<'_>, name: &str) -> AppResult<Uuid> {
    opt_id(rc, name)?.ok_or_else(|| AppError::bad_input(format!("{name} is required")))
}

/// Runs a paged query: one statement for the page, one for the total.
async fn page_of<E>(ctx: &Ctx, query: Select<E>, page: Page) -> AppResult<(Vec<E::Model>, u64)>
where
    E: EntityTrait,
    E::Model: Send + Sync,
{
    let total = query.clone().count(&*ctx.db().conn().await?).await?;
    let rows = query.offset(page.offset).limit(page.limit).all(&*ctx.db().conn().await?).await?;
    Ok((rows, total))
}

/// Restricts `query` to the rows of `table` the row policy lets the caller read (its list
/// filter), and to the coachee `only` if given. `None` when nothing can match, so the
/// statement is not sent.
async fn policy_filter<E: EntityTrait>(
    ctx: &Ctx,
    query: Select<E>,
    table: ContentTable,
    column: E::Column,
    only: Option<Uuid>,
) -> AppResult<Option<Select<E>>> {
    let reach = ctx.reach().await?;
    let resource = table.resource(&RowFacts::about(Uuid::nil()));
    let nothing = reach.coachees_for(resource).is_some_and(|set| set.is_empty())
        || only.is_some_and(|coachee| !reach.may_list(table, coachee));
    if nothing {
        return Ok(None);
    }
    let mut query = query.filter(reach.list_filter(table));
    if let Some(only) = only {
        query = query.filter(column.eq(only));
    }
    Ok(Some(query))
}

fn ai_note_rows<T>(ctx: &Ctx, resource: Resource, rows: &[T], coachee: fn(&T) -> Uuid, id: fn(&T) -> Uuid) {
    for r in rows {
        ctx.note_ai_read(coachee(r), resource, [id(r)]);
    }
}

async fn coachees(ctx: &Ctx, page: Page) -> AppResult<Connection<UserView>> {
    let p = ctx.require()?;
    let tenant = ctx.tenant_id()?;
    let mut query = scoped::select::<users::Entity>(tenant)
        .filter(users::Column::Role.eq(Role::Coachee))
        .order_by_asc(users::Column::DisplayName)
        .order_by_asc(users::Column::Id);
    let scope = match p.role {
        Role::Coach => {
            let assigned: HashSet<Uuid> = ctx.reach().await?.assigned.keys().copied().collect();
            query = query.filter(users::Column::Id.is_in(assigned));
            Scope::Assigned
        }
        Role::ProgramAdmin => Scope::Tenant,
        _ => return Err(AppError::Forbidden),
    };
    let (rows, total) = page_of(ctx, query, page).await?;
    let nodes = rows.into_iter().map(|model| UserView { model, scope }).collect();
    Ok(Connection::new(nodes, page, Some(total)))
}

async fn users_list(ctx: &Ctx, role: Option<Role>, page: Page) -> AppResult<Connection<UserView>> {
    let p = ctx.require()?;
    let scope = match p.role {
        Role::ProgramAdmin => Scope::Tenant,
        Role::Executive => Scope::TenantDirectory,
        _ => return Err(AppError::Forbidden),
    };
    let mut query = scoped::select::<users::Entity>(ctx.tenant_id()?)
        .order_by_asc(users::Column::DisplayName)
        .order_by_asc(users::Column::Id);
    if let Some(role) = role {
        query = query.filter(users::Column::Role.eq(role));
    }
    let (rows, total) = page_of(ctx, query, page).await?;
    Ok(Connection::new(rows.into_iter().map(|model| UserView { model, scope }).collect(), page, Some(total)))
}

/// `user(id)`: the profile as the caller's relationship to it allows.
async fn user(ctx: &Ctx, id: Uuid) -> AppResult<UserView> {
    let p = *ctx.require()?;
    let found = scoped::select::<users::Entity>(ctx.tenant_id()?)
        .filter(users::Column::Id.eq(id))
        .one(&*ctx.db().conn().await?)
        .await?;
    let Some(model) = found else { return Err(access::not_found(ctx, Resource::OtherUserProfiles)) };
    let reach = ctx.reach().await?;
    let scope = if id == p.user_id && crate::authz::may(p.role, Resource::OwnProfile, Action::Read) {
        Scope::Own
    } else {
        match p.role {
            Role::Coachee if reach.my_coaches.contains(&id) => Scope::OwnCoaches,
            Role::Coach if reach.assigned.contains_key(&id) => Scope::Assigned,
            Role::ProgramAdmin => Scope::Tenant,
            Role::Executive => Scope::TenantDirectory,
            Role::AiAgent => match reach.coachee(id, Resource::OtherUserProfiles) {
                Ok(()) => {
                    ctx.note_ai_read(id, Resource::OtherUserProfiles, [id]);
                    Scope::Consented
                }
                Err(refusal) => return Err(refusal.into_error(ctx, Resource::OtherUserProfiles)),
            },
            _ => return Err(access::forbidden(ctx, Resource::OtherUserProfiles, "no relationship with this user")),
        }
    };
    Ok(UserView { model, scope })
}

async fn session(ctx: &Ctx, id: Uuid) -> AppResult<SessionView> {
    let found = scoped::select::<coaching_sessions::Entity>(ctx.tenant_id()?)
        .filter(coaching_sessions::Column::Id.eq(id))
        .one(&*ctx.db().conn().await?)
        .await?;
    let Some(s) = found else {
        return Err(access::refuse_missing(ctx, "coaching_sessions", id, Resource::SessionMetadata).await?);
    };
    ctx.reach()
        .await?
        .coachee(s.coachee_id, Resource::SessionMetadata)
        .map_err(|refusal| refusal.into_error(ctx, Resource::SessionMetadata))?;
    ctx.note_ai_read(s.coachee_id, Resource::SessionMetadata, [s.id]);
    Ok(SessionView(s))
}

async fn sessions(ctx: &Ctx, coachee: Option<Uuid>, page: Page) -> AppResult<Connection<SessionView>> {
    let base = scoped::select::<coaching_sessions::Entity>(ctx.tenant_id()?)
        .order_by_desc(coaching_sessions::Column::ScheduledAt)
        .order_by_asc(coaching_sessions::Column::Id);
    let Some(query) =
        policy_filter(ctx, base, ContentTable::CoachingSessions, coaching_sessions::Column::CoacheeId, coachee).await?
    else {
        return Ok(Connection::new(Vec::new(), page, Some(0)));
    };
    let (rows, total) = page_of(ctx, query, page).await?;
    ai_note_rows(ctx, Resource::SessionMetadata, &rows, |s| s.coachee_id, |s| s.id);
    Ok(Connection::new(rows.into_iter().map(SessionView).collect(), page, Some(total)))
}

async fn action_items_list(ctx: &Ctx, coachee: Option<Uuid>, page: Page) -> AppResult<Connection<ItemView>> {
    let base = scoped::select::<action_items::Entity>(ctx.tenant_id()?)
        .order_by_desc(action_items::Column::CreatedAt)
        .order_by_asc(action_items::Column::Id);
    let Some(query) =
        policy_filter(ctx, base, ContentTable::ActionItems, action_items::Column::CoacheeId, coachee).await?
    else {
        return Ok(Connection::new(Vec::new(), page, Some(0)));
    };
    let (rows, total) = page_of(ctx, query, page).await?;
    ai_note_rows(ctx, Resource::ActionItems, &rows, |i| i.coachee_id, |i| i.id);
    Ok(Connection::new(rows.into_iter().map(ItemView).collect(), page, Some(total)))
}

async fn goals_list(ctx: &Ctx, coachee: Option<Uuid>) -> AppResult<Vec<GoalView>> {
    let base = scoped::select::<goals::Entity>(ctx.tenant_id()?)
        .order_by_asc(goals::Column::CreatedAt)
        .order_by_asc(goals::Column::Id);
    let Some(query) = policy_filter(ctx, base, ContentTable::Goals, goals::Column::CoacheeId, coachee).await? else {
        return Ok(Vec::new());
    };
    // Capped like any list (the AI's especially): goals per query stay bounded.
    let rows = query.limit(crate::graphql::paging::MAX_PAGE * 5).all(&*ctx.db().conn().await?).await?;
    ai_note_rows(ctx, Resource::Goals, &rows, |g| g.coachee_id, |g| g.id);
    Ok(rows.into_iter().map(GoalView).collect())
}

fn connection<T: Clone + Send + Sync + 'static>(c: Connection<T>) -> Option<FieldValue<'static>> {
    Some(FieldValue::owned_any(c))
}

pub fn declare(c: &mut Catalog) {
    c.object(connection_decl::<UserView>("UserConnection", "[User!]!"));
    c.object(connection_decl::<SessionView>("CoachingSessionConnection", "[CoachingSession!]!"));
    c.object(connection_decl::<ItemView>("ActionItemConnection", "[ActionItem!]!"));

    c.query(
        FieldDecl::root(
            "coachees",
            "UserConnection!",
            Entry::Roles(&[Role::Coach, Role::ProgramAdmin]),
            resolver(|rc| {
                FieldFuture::new(async move {
                    let ctx = ctx_of(&rc)?;
                    let run = async { coachees(ctx, Page::from_args(&rc, ctx.role())?).await };
                    Ok(connection(run.await.map_err(AppError::into_graphql)?))
                })
            }),
        )
        .arg("first", "Int")
        .arg("after", "String")
        .describe("COACH: assigned coachees. PROGRAM_ADMIN: all coachees of the tenant."),
    );
    c.query(
        FieldDecl::root(
            "users",
            "UserConnection!",
            Entry::Roles(&[Role::ProgramAdmin, Role::Executive]),
            resolver(|rc| {
                FieldFuture::new(async move {
                    let ctx = ctx_of(&rc)?;
                    let run = async {
                        let role = match rc.args.get("role") {
                            Some(v) if !v.is_null() => Some(
                                v.enum_name()
                                    .ok()
                                    .and_then(Role::parse)
                                    .ok_or_else(|| AppError::bad_input("role is not a Role"))?,
                            ),
                            _ => None,
                        };
                        users_list(ctx, role, Page::from_args(&rc, ctx.role())?).await
                    };
                    Ok(connection(run.await.map_err(AppError::into_graphql)?))
                })
            }),
        )
        .arg("role", "Role")
        .arg("first", "Int")
        .arg("after", "String")
        .describe("PROGRAM_ADMIN and EXECUTIVE: users of the tenant."),
    );
    c.query(
        FieldDecl::root(
            "user",
            "User",
            Entry::Matrix(Resource::OtherUserProfiles, Action::Read),
            resolver(|rc| {
                FieldFuture::new(async move {
                    let ctx = ctx_of(&rc)?;
                    let run = async { user(ctx, id(&rc, "id")?).await };
                    Ok(Some(FieldValue::owned_any(run.await.map_err(AppError::into_graphql)?)))
                })
            }),
        )
        .arg("id", "ID!"),
    );
    c.query(
        FieldDecl::root(
            "session",
            "CoachingSession",
            Entry::Matrix(Resource::SessionMetadata, Action::Read),
            resolver(|rc| {
                FieldFuture::new(async move {
                    let ctx = ctx_of(&rc)?;
                    let run = async { session(ctx, id(&rc, "id")?).await };
                    Ok(Some(FieldValue::owned_any(run.await.map_err(AppError::into_graphql)?)))
                })
            }),
        )
        .arg("id", "ID!"),
    );
    c.query(
        FieldDecl::root(
            "sessions",
            "CoachingSessionConnection!",
            Entry::Matrix(Resource::SessionMetadata, Action::Read),
            resolver(|rc| {
                FieldFuture::new(async move {
                    let ctx = ctx_of(&rc)?;
                    let run =
                        async { sessions(ctx, opt_id(&rc, "coacheeId")?, Page::from_args(&rc, ctx.role())?).await };
                    Ok(connection(run.await.map_err(AppError::into_graphql)?))
                })
            }),
        )
        .arg("coacheeId", "ID")
        .arg("first", "Int")
        .arg("after", "String"),
    );
    c.query(
        FieldDecl::root(
            "actionItems",
            "ActionItemConnection!",
            Entry::Matrix(Resource::ActionItems, Action::Read),
            resolver(|rc| {
                FieldFuture::new(async move {
                    let ctx = ctx_of(&rc)?;
                    let run = async {
                        action_items_list(ctx, opt_id(&rc, "coacheeId")?, Page::from_args(&rc, ctx.role())?).await
                    };
                    Ok(connection(run.await.map_err(AppError::into_graphql)?))
                })
            }),
        )
        .arg("coacheeId", "ID")
        .arg("first", "Int")
        .arg("after", "String"),
    );
    c.query(
        FieldDecl::root(
            "goals",
            "[Goal!]!",
            Entry::Matrix(Resource::Goals, Action::Read),
            resolver(|rc| {
                FieldFuture::new(async move {
                    let ctx = ctx_of(&rc)?;
                    let run = async { goals_list(ctx, opt_id(&rc, "coacheeId")?).await };
                    let rows = run.await.map_err(AppError::into_graphql)?;
                    Ok(Some(FieldValue::list(rows.into_iter().map(FieldValue::owned_any))))
                })
            }),
        )
        .arg("coacheeId", "ID"),
    );
    let _ = ctx_arc;
}
