//! DataLoaders (async-graphql's), one set per request: each relation of a page of rows is
//! fetched with one tenant-scoped `IN (...)` statement, so a query costs a number of
//! statements that does not grow with the rows it returns. They hold the request's `Ctx`,
//! so they use its transaction and never outlive the request.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::{ColumnTrait, EntityTrait, Order, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::ctx::Ctx;
use crate::db::entities::{
    action_items, coach_notes, coaching_sessions, evidence_packs, goals, insights, session_private_notes,
    session_summaries, transcripts, users,
};
use crate::db::scoped::{self, TenantScoped};
use crate::error::AppError;

/// Rows of `E` whose `column` is one of the keys, grouped by that column.
pub struct RowsBy<E: EntityTrait> {
    ctx: Arc<Ctx>,
    column: E::Column,
    key_of: fn(&E::Model) -> Uuid,
    order: Vec<(E::Column, Order)>,
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
        let tenant = self.ctx.tenant_id()?;
        let mut query = scoped::select::<E>(tenant).filter(self.column.is_in(keys.iter().copied()));
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

fn loader<E>(ctx: &Arc<Ctx>, column: E::Column, key_of: fn(&E::Model) -> Uuid, order: Vec<(E::Column, Order)>) -> By<E>
where
    E: TenantScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
    E::Column: Send + Sync,
{
    DataLoader::new(RowsBy { ctx: ctx.clone(), column, key_of, order }, tokio::spawn)
}

/// The request's loaders.
pub struct Loaders {
    pub users_by_id: By<users::Entity>,
    pub sessions_by_coachee: By<coaching_sessions::Entity>,
    pub goals_by_coachee: By<goals::Entity>,
    pub items_by_coachee: By<action_items::Entity>,
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
            users_by_id: loader(ctx, users::Column::Id, |u: &users::Model| u.id, vec![]),
            sessions_by_coachee: loader(
                ctx,
                coaching_sessions::Column::CoacheeId,
                |s: &coaching_sessions::Model| s.coachee_id,
                vec![(coaching_sessions::Column::ScheduledAt, Desc), (coaching_sessions::Column::Id, Asc)],
            ),
            goals_by_coachee: loader(
                ctx,
                goals::Column::CoacheeId,
                |g: &goals::Model| g.coachee_id,
                vec![(goals::Column::CreatedAt, Asc), (goals::Column::Id, Asc)],
            ),
            items_by_coachee: loader(
                ctx,
                action_items::Column::CoacheeId,
                |i: &action_items::Model| i.coachee_id,
                vec![(action_items::Column::CreatedAt, Desc), (action_items::Column::Id, Asc)],
            ),
            items_by_session: loader(
                ctx,
                action_items::Column::SessionId,
                |i: &action_items::Model| i.session_id.unwrap_or_default(),
                vec![(action_items::Column::CreatedAt, Asc), (action_items::Column::Id, Asc)],
            ),
            notes_by_coachee: loader(
                ctx,
                coach_notes::Column::CoacheeId,
                |n: &coach_notes::Model| n.coachee_id,
                vec![(coach_notes::Column::CreatedAt, Desc), (coach_notes::Column::Id, Asc)],
            ),
            insights_by_session: loader(
                ctx,
                insights::Column::SessionId,
                |i: &insights::Model| i.session_id,
                vec![(insights::Column::CreatedAt, Asc), (insights::Column::Id, Asc)],
            ),
            packs_by_session: loader(
                ctx,
                evidence_packs::Column::SessionId,
                |p: &evidence_packs::Model| p.session_id,
                vec![(evidence_packs::Column::CreatedAt, Asc), (evidence_packs::Column::Id, Asc)],
            ),
            transcripts_by_session: loader(
                ctx,
                transcripts::Column::SessionId,
                |t: &transcripts::Model| t.session_id,
                vec![],
            ),
            private_notes_by_session: loader(
                ctx,
                session_private_notes::Column::SessionId,
                |n: &session_private_notes::Model| n.session_id,
                vec![],
            ),
            summaries_by_session: loader(
                ctx,
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
