//! Reads of people and coaching content for the root queries (`coachees`, `users`, `user`,
//! `session`, `sessions`, `actionItems`, `goals`). Each list goes through the row policy's
//! list filter (`authz::rows`), each single row through its row check; who may see which
//! profile fields is the scope the policy returns with the row. AI reads are logged.

use sea_orm::{ColumnTrait, EntityTrait, PartialModelTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use uuid::Uuid;

use super::access::{self, refuse};
use super::paging::{self, Listed, Window};
use super::reach;
use crate::authz::rows::Admitted;
use crate::authz::{Action, ContentTable, Resource, RowFacts, Scope};
use crate::ctx::Ctx;
use crate::db::entities::users::Profile;
use crate::db::entities::{action_items, coaching_sessions, goals, users};
use crate::db::scoped;
use crate::error::{AppError, AppResult};
use crate::kinds::Role;

/// Most goals one `goals` answer holds (the list is not paged).
pub const MAX_GOALS: u64 = 500;

/// Restricts `query` to the rows of `table` the row policy lets the caller read (its list
/// filter), and to the coachee `only` if given. `None` when nothing can match, so that no
/// statement is sent.
async fn policy_filter<E: EntityTrait>(
    ctx: &Ctx,
    query: Select<E>,
    table: ContentTable,
    column: E::Column,
    only: Option<Uuid>,
) -> AppResult<Option<Select<E>>> {
    let reach = reach::of(ctx).await?;
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

fn session_facts(s: &coaching_sessions::Model) -> RowFacts {
    RowFacts::about(s.coachee_id)
}

/// The rows of a page that the row check admits: every row the list filter selected, as
/// the differential test shows; a disagreement would drop the row, never show it.
async fn admitted<T>(
    ctx: &Ctx,
    table: ContentTable,
    listed: Listed<T>,
    facts: fn(&T) -> RowFacts,
) -> AppResult<Listed<Admitted<T>>> {
    let reach = reach::of(ctx).await?;
    let rows = listed.rows.into_iter().filter_map(|row| reach.admit(table, row, facts).ok()).collect();
    Ok(Listed { rows, has_next: listed.has_next, total: listed.total })
}

fn note_ai_reads<T>(ctx: &Ctx, resource: Resource, rows: &[Admitted<T>], coachee: fn(&T) -> Uuid, id: fn(&T) -> Uuid) {
    for r in rows {
        ctx.note_ai_read(coachee(r), resource, [id(r)]);
    }
    ctx.note_ai_listed(rows.iter().map(|r| id(r)));
}

/// The tenant's users, selecting the profile columns only.
fn profiles(ctx: &Ctx) -> AppResult<Select<users::Entity>> {
    Ok(Profile::select_cols(scoped::select::<users::Entity>(ctx.tenant_id()?).select_only()))
}

/// `coachees`: a coach's assigned coachees, or every coachee of a program admin's tenant.
pub async fn coachees(ctx: &Ctx, window: &Window) -> AppResult<(Listed<Profile>, Scope)> {
    let (scope, only) = reach::of(ctx)
        .await?
        .coachee_list()
        .map_err(|refusal| refuse(ctx, Action::Read, Resource::OtherUserProfiles, refusal))?;
    let mut query = profiles(ctx)?.filter(users::Column::Role.eq(Role::Coachee));
    if let Some(only) = only {
        if only.is_empty() {
            return Ok((Listed::empty(window), scope));
        }
        query = query.filter(users::Column::Id.is_in(only));
    }
    let listed = paging::page(ctx, query, paging::BY_NAME, window).await?;
    // The AI's per-request row cap counts the profiles it lists too.
    ctx.note_ai_listed(listed.rows.iter().map(|p: &Profile| p.id));
    Ok((listed, scope))
}

/// `users`: the tenant's directory, optionally of one role.
pub async fn users(ctx: &Ctx, role: Option<Role>, window: &Window) -> AppResult<(Listed<Profile>, Scope)> {
    let scope = reach::of(ctx)
        .await?
        .directory_scope()
        .map_err(|refusal| refuse(ctx, Action::Read, Resource::OtherUserProfiles, refusal))?;
    let mut query = profiles(ctx)?;
    if let Some(role) = role {
        query = query.filter(users::Column::Role.eq(role));
    }
    let listed = paging::page(ctx, query, paging::BY_NAME, window).await?;
    // The AI's per-request row cap counts the profiles it lists too.
    ctx.note_ai_listed(listed.rows.iter().map(|p: &Profile| p.id));
    Ok((listed, scope))
}

/// `user(id)`: the profile, with the scope the caller's relationship to it allows.
pub async fn user(ctx: &Ctx, id: Uuid) -> AppResult<(Profile, Scope)> {
    let found =
        profiles(ctx)?.filter(users::Column::Id.eq(id)).into_model::<Profile>().one(&*ctx.db().conn().await?).await?;
    let Some(model) = found else { return Err(access::not_found(ctx, Resource::OtherUserProfiles)) };
    let scope = reach::of(ctx)
        .await?
        .profile_scope(id)
        .map_err(|refusal| refusal.into_error(ctx, Resource::OtherUserProfiles))?;
    if scope == Scope::Consented {
        ctx.note_ai_read(id, Resource::OtherUserProfiles, [id]);
    }
    Ok((model, scope))
}

/// The caller's own profile row, if it has one in its tenant (read with the session).
pub async fn own_profile(ctx: &Ctx) -> AppResult<Option<users::Model>> {
    let p = ctx.require()?;
    let model = principal_user(ctx, p.user_id).await?;
    Ok(Some(model).filter(|m| m.tenant_id == p.tenant_id))
}

/// The user row of a principal (the viewer), whatever its tenant: the session check's row
/// for the request's own principal, else (a login's payload) read by id.
pub async fn principal_user(ctx: &Ctx, id: Uuid) -> AppResult<users::Model> {
    if let Some(user) = ctx.principal_user().filter(|u| u.id == id) {
        return Ok(user.clone());
    }
    users::Entity::find_by_id(id).one(&*ctx.db().conn().await?).await?.ok_or(AppError::Unauthenticated)
}

/// `session(id)`.
pub async fn session(ctx: &Ctx, id: Uuid) -> AppResult<Admitted<coaching_sessions::Model>> {
    let found = scoped::select::<coaching_sessions::Entity>(ctx.tenant_id()?)
        .filter(coaching_sessions::Column::Id.eq(id))
        .one(&*ctx.db().conn().await?)
        .await?;
    let Some(s) = found else {
        return Err(access::refuse_missing(ctx, "coaching_sessions", id, Resource::SessionMetadata).await?);
    };
    let s = reach::of(ctx)
        .await?
        .admit(ContentTable::CoachingSessions, s, session_facts)
        .map_err(|refusal| refusal.into_error(ctx, Resource::SessionMetadata))?;
    ctx.note_ai_read(s.coachee_id, Resource::SessionMetadata, [s.id]);
    Ok(s)
}

/// `sessions(coacheeId)`: newest first.
pub async fn sessions(
    ctx: &Ctx,
    coachee: Option<Uuid>,
    window: &Window,
) -> AppResult<Listed<Admitted<coaching_sessions::Model>>> {
    let base = scoped::select::<coaching_sessions::Entity>(ctx.tenant_id()?);
    let table = ContentTable::CoachingSessions;
    let Some(query) = policy_filter(ctx, base, table, coaching_sessions::Column::CoacheeId, coachee).await? else {
        return Ok(Listed::empty(window));
    };
    let page = paging::page(ctx, query, paging::NEWEST_SCHEDULED, window).await?;
    let listed = admitted(ctx, table, page, session_facts).await?;
    note_ai_reads(ctx, Resource::SessionMetadata, &listed.rows, |s| s.coachee_id, |s| s.id);
    Ok(listed)
}

/// `actionItems(coacheeId)`: newest first.
pub async fn action_items(
    ctx: &Ctx,
    coachee: Option<Uuid>,
    window: &Window,
) -> AppResult<Listed<Admitted<action_items::Model>>> {
    let base = scoped::select::<action_items::Entity>(ctx.tenant_id()?);
    let table = ContentTable::ActionItems;
    let Some(query) = policy_filter(ctx, base, table, action_items::Column::CoacheeId, coachee).await? else {
        return Ok(Listed::empty(window));
    };
    let page = paging::page(ctx, query, paging::NEWEST_CREATED, window).await?;
    let listed = admitted(ctx, table, page, |i: &action_items::Model| RowFacts::about(i.coachee_id)).await?;
    note_ai_reads(ctx, Resource::ActionItems, &listed.rows, |i| i.coachee_id, |i| i.id);
    Ok(listed)
}

/// `goals(coacheeId)`: oldest first, at most [`MAX_GOALS`].
pub async fn goals(ctx: &Ctx, coachee: Option<Uuid>) -> AppResult<Vec<Admitted<goals::Model>>> {
    let base = scoped::select::<goals::Entity>(ctx.tenant_id()?)
        .order_by_asc(goals::Column::CreatedAt)
        .order_by_asc(goals::Column::Id);
    let Some(query) = policy_filter(ctx, base, ContentTable::Goals, goals::Column::CoacheeId, coachee).await? else {
        return Ok(Vec::new());
    };
    let rows = query.limit(MAX_GOALS).all(&*ctx.db().conn().await?).await?;
    let listed = Listed { rows, has_next: None, total: None };
    let listed = admitted(ctx, ContentTable::Goals, listed, |g| RowFacts::about(g.coachee_id)).await?;
    note_ai_reads(ctx, Resource::Goals, &listed.rows, |g| g.coachee_id, |g| g.id);
    Ok(listed.rows)
}
