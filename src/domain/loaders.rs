//! DataLoaders (async-graphql's), one set per request: each relation of a page of rows is
//! fetched with one tenant-scoped `IN (...)` statement, so a query costs a number of
//! statements that does not grow with the rows it returns. Content rows are filtered in SQL
//! by the row policy's list filter, so rows the caller may not read are never loaded;
//! nested connections are paged per parent in SQL ([`super::paging::per_parent`]). They
//! hold the request's `Ctx`, so they use its transaction and never outlive the request.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::{ColumnTrait, EntityTrait, Order, QueryFilter, QueryOrder, Select};
use uuid::Uuid;

use super::paging::{self, Listed, Ordering, Window};
use super::reach;
use crate::authz::ContentTable;
use crate::ctx::Ctx;
use crate::db::entities::{
    action_items, coach_notes, coaching_sessions, evidence_packs, goals, insights, session_private_notes,
    session_summaries, transcripts, users,
};
use crate::db::scoped::{self, TenantScoped};
use crate::error::{AppError, AppResult};

/// Rows of `E` whose `column` is one of the keys, grouped by that column; for a content
/// table, only the rows the row policy lets the caller read.
pub struct RowsBy<E: EntityTrait> {
    ctx: Arc<Ctx>,
    table: Option<ContentTable>,
    column: E::Column,
    key_of: fn(&E::Model) -> Uuid,
    order: Vec<(E::Column, Order)>,
}

/// The rows of `E` the caller may read: tenant filter, then the row policy's list filter.
async fn readable<E: TenantScoped>(ctx: &Ctx, table: Option<ContentTable>) -> Result<Select<E>, AppError> {
    let query = scoped::select::<E>(ctx.tenant_id()?);
    Ok(match table {
        Some(table) => query.filter(reach::of(ctx).await?.list_filter(table)),
        None => query,
    })
}

impl<E> Loader<Uuid> for RowsBy<E>
where
    E: TenantScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
    E::Column: Send + Sync,
{
    type Value = Vec<E::Model>;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<E::Model>>, AppError> {
        let mut query = readable::<E>(&self.ctx, self.table).await?.filter(self.column.is_in(keys.iter().copied()));
        for (column, order) in &self.order {
            query = query.order_by(*column, order.clone());
        }
        let rows = query.all(&*self.ctx.db().conn().await?).await?;
        let mut grouped: HashMap<Uuid, Vec<E::Model>> = HashMap::new();
        for row in rows {
            grouped.entry((self.key_of)(&row)).or_default().push(row);
        }
        Ok(grouped)
    }
}

type By<E> = DataLoader<RowsBy<E>>;

fn loader<E>(
    ctx: &Arc<Ctx>,
    table: Option<ContentTable>,
    column: E::Column,
    key_of: fn(&E::Model) -> Uuid,
    order: Vec<(E::Column, Order)>,
) -> By<E>
where
    E: TenantScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
    E::Column: Send + Sync,
{
    DataLoader::new(RowsBy { ctx: ctx.clone(), table, column, key_of, order }, crate::telemetry::spawn_in_request)
}

/// Profiles by id (the people of a page of sessions), profile columns only.
pub struct ProfilesById {
    ctx: Arc<Ctx>,
}

impl Loader<Uuid> for ProfilesById {
    type Value = users::Profile;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, users::Profile>, AppError> {
        let rows: Vec<users::Profile> = scoped::select::<users::Entity>(self.ctx.tenant_id()?)
            .filter(users::Column::Id.is_in(keys.iter().copied()))
            .into_partial_model()
            .all(&*self.ctx.db().conn().await?)
            .await?;
        Ok(rows.into_iter().map(|p| (p.id, p)).collect())
    }
}

/// A nested connection: each parent's page of the readable rows of `E`, paged in SQL.
pub struct PagesBy<E: EntityTrait> {
    ctx: Arc<Ctx>,
    table: ContentTable,
    parent_column: &'static str,
    parent_of: fn(&E::Model) -> Uuid,
    order: Ordering,
}

impl<E> Loader<(Uuid, Window)> for PagesBy<E>
where
    E: TenantScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
    E::Column: Send + Sync,
{
    type Value = Listed<E::Model>;
    type Error = AppError;

    async fn load(&self, keys: &[(Uuid, Window)]) -> Result<HashMap<(Uuid, Window), Listed<E::Model>>, AppError> {
        // One query asks for the same window under every parent: one statement per window.
        let mut windows: Vec<(&Window, Vec<Uuid>)> = Vec::new();
        for (parent, window) in keys {
            match windows.iter_mut().find(|(w, _)| *w == window) {
                Some((_, parents)) => parents.push(*parent),
                None => windows.push((window, vec![*parent])),
            }
        }
        let mut pages = HashMap::new();
        for (window, parents) in windows {
            let query = || readable::<E>(&self.ctx, Some(self.table));
            let rows =
                paging::per_parent(&self.ctx, query().await?, self.parent_column, &parents, self.order, window).await?;
            let counts = if window.count {
                paging::counts_per_parent(&self.ctx, query().await?, self.parent_column, &parents).await?
            } else {
                Vec::new()
            };
            for (parent, page) in paging::pages_per_parent(&parents, rows, self.parent_of, window, &counts) {
                pages.insert((parent, window.clone()), page);
            }
        }
        Ok(pages)
    }
}

pub type Pages<E> = DataLoader<PagesBy<E>>;

fn pages<E>(
    ctx: &Arc<Ctx>,
    table: ContentTable,
    parent_column: &'static str,
    parent_of: fn(&E::Model) -> Uuid,
    order: Ordering,
) -> Pages<E>
where
    E: TenantScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
    E::Column: Send + Sync,
{
    DataLoader::new(
        PagesBy { ctx: ctx.clone(), table, parent_column, parent_of, order },
        crate::telemetry::spawn_in_request,
    )
}

/// The request's loaders.
pub struct Loaders {
    pub profiles_by_id: DataLoader<ProfilesById>,
    pub sessions_by_coachee: Pages<coaching_sessions::Entity>,
    pub goals_by_coachee: By<goals::Entity>,
    pub items_by_coachee: Pages<action_items::Entity>,
    pub items_by_session: By<action_items::Entity>,
    pub notes_by_coachee: By<coach_notes::Entity>,
    pub insights_by_session: By<insights::Entity>,
    pub packs_by_session: By<evidence_packs::Entity>,
    pub transcripts_by_session: By<transcripts::Entity>,
    pub private_notes_by_session: By<session_private_notes::Entity>,
    pub summaries_by_session: By<session_summaries::Entity>,
}

impl Loaders {
    pub fn new(ctx: &Arc<Ctx>) -> Self {
        use sea_orm::Order::{Asc, Desc};
        Self {
            profiles_by_id: DataLoader::new(ProfilesById { ctx: ctx.clone() }, crate::telemetry::spawn_in_request),
            sessions_by_coachee: pages(
                ctx,
                ContentTable::CoachingSessions,
                "coachee_id",
                |s: &coaching_sessions::Model| s.coachee_id,
                paging::NEWEST_SCHEDULED,
            ),
            goals_by_coachee: loader(
                ctx,
                Some(ContentTable::Goals),
                goals::Column::CoacheeId,
                |g: &goals::Model| g.coachee_id,
                vec![(goals::Column::CreatedAt, Asc), (goals::Column::Id, Asc)],
            ),
            items_by_coachee: pages(
                ctx,
                ContentTable::ActionItems,
                "coachee_id",
                |i: &action_items::Model| i.coachee_id,
                paging::NEWEST_CREATED,
            ),
            items_by_session: loader(
                ctx,
                Some(ContentTable::ActionItems),
                action_items::Column::SessionId,
                |i: &action_items::Model| i.session_id.unwrap_or_default(),
                vec![(action_items::Column::CreatedAt, Asc), (action_items::Column::Id, Asc)],
            ),
            notes_by_coachee: loader(
                ctx,
                Some(ContentTable::CoachNotes),
                coach_notes::Column::CoacheeId,
                |n: &coach_notes::Model| n.coachee_id,
                vec![(coach_notes::Column::CreatedAt, Desc), (coach_notes::Column::Id, Asc)],
            ),
            insights_by_session: loader(
                ctx,
                Some(ContentTable::Insights),
                insights::Column::SessionId,
                |i: &insights::Model| i.session_id,
                vec![(insights::Column::CreatedAt, Asc), (insights::Column::Id, Asc)],
            ),
            packs_by_session: loader(
                ctx,
                Some(ContentTable::EvidencePacks),
                evidence_packs::Column::SessionId,
                |p: &evidence_packs::Model| p.session_id,
                vec![(evidence_packs::Column::CreatedAt, Asc), (evidence_packs::Column::Id, Asc)],
            ),
            transcripts_by_session: loader(
                ctx,
                Some(ContentTable::Transcripts),
                transcripts::Column::SessionId,
                |t: &transcripts::Model| t.session_id,
                vec![],
            ),
            private_notes_by_session: loader(
                ctx,
                Some(ContentTable::SessionPrivateNotes),
                session_private_notes::Column::SessionId,
                |n: &session_private_notes::Model| n.session_id,
                vec![],
            ),
            summaries_by_session: loader(
                ctx,
                Some(ContentTable::SessionSummaries),
                session_summaries::Column::SessionId,
                |n: &session_summaries::Model| n.session_id,
                vec![],
            ),
        }
    }
}

/// Loads the rows for one key (empty when none).
pub async fn rows<E>(loader: &By<E>, key: Uuid) -> Result<Vec<E::Model>, AppError>
where
    E: TenantScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
    E::Column: Send + Sync,
{
    Ok(loader.load_one(key).await?.unwrap_or_default())
}

/// One parent's page of a nested connection (empty when it has no rows).
pub async fn page<E>(loader: &Pages<E>, parent: Uuid, window: Window) -> AppResult<Listed<E::Model>>
where
    E: TenantScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
    E::Column: Send + Sync,
{
    let empty = Listed::empty(&window);
    Ok(loader.load_one((parent, window)).await?.unwrap_or(empty))
}
