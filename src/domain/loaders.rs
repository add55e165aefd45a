//! DataLoaders (async-graphql's), one set per request. Every relation a level of an answer
//! needs (the goals, notes and sessions of a page of coachees; the summaries, insights and
//! items of those sessions) goes through one loader, [`Related`]: the keys one executor
//! pass registers are one batch, and a batch is one round trip, whatever the number of
//! rows ([`crate::db::combined`]). Content rows are filtered in SQL by the row policy's
//! list filter, so rows the caller may not read are never loaded; nested connections are
//! paged per parent in SQL ([`super::paging::per_parent`]). The loaders hold the request's
//! `Ctx`, so they use its transaction and never outlive the request.
//!
//! The executor resolves the fields of a nested object one after another, so the parent
//! of a level prefetches what its selection asks ([`Loaders::prefetch`]); the fields then
//! find their rows loaded.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use futures_util::future::BoxFuture;
use sea_orm::{
    ColumnTrait, EntityTrait, FromQueryResult, IdenStatic, Order, QueryFilter, QueryOrder, QueryTrait, Select,
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::paging::{self, Listed, Ordering, ParentCount, Window};
use super::reach::{self, Reach};
use crate::authz::ContentTable;
use crate::ctx::Ctx;
use crate::db::combined::{Ran, ReadId, Reads};
use crate::db::entities::{
    access_notices, action_items, coach_notes, coaching_sessions, consents, evidence_packs, goals, insights,
    session_private_notes, session_summaries, transcripts, users,
};
use crate::db::scoped::{self, TenantScoped};
use crate::error::{AppError, AppResult};

/// What one key of the request's relation loader asks for: the readable rows of one
/// relation under one parent, or a page of them (a nested connection's window).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Want {
    relation: usize,
    parent: Uuid,
    window: Option<Window>,
}

/// One parent's rows of a relation: a `Vec` of models, or a [`Listed`] page of them.
type Found = Arc<dyn Any + Send + Sync>;

/// Which reads a relation added to a level's [`Reads`].
struct Planned {
    rows: Option<ReadId>,
    counts: Option<ReadId>,
}

/// A relation from parents (coachees, sessions) to content rows.
trait Relation: Send + Sync {
    /// Adds the reads of this relation's readable rows under `parents` to `reads`.
    fn plan(
        &self,
        ctx: &Ctx,
        reach: &Reach,
        parents: &[Uuid],
        window: Option<&Window>,
        reads: &mut Reads,
    ) -> AppResult<Planned>;

    /// Each parent's rows (every parent gets a value), from the reads once run.
    fn split<'a, 'r: 'a>(
        &'a self,
        planned: Planned,
        ran: &'a mut Ran<'r>,
        parents: &'a [Uuid],
        window: Option<&'a Window>,
    ) -> BoxFuture<'a, AppResult<Vec<(Uuid, Found)>>>;
}

/// The rows of `E` the caller may read: tenant filter, then the row policy's list filter.
fn readable<E: TenantScoped>(ctx: &Ctx, reach: &Reach, table: ContentTable) -> AppResult<Select<E>> {
    Ok(scoped::select::<E>(ctx.tenant_id()?).filter(reach.list_filter(table)))
}

/// Which rows of a relation's table the caller may read.
#[derive(Debug, Clone, Copy)]
enum Readable {
    /// Those the row policy's list filter admits.
    Policy(ContentTable),
    /// The caller's own rows only: the relation's column is the caller (consents, access
    /// notices); under any other parent, none.
    Caller,
}

/// Rows of `E` whose `column` is the parent, in `order`.
struct RowsOf<E: EntityTrait> {
    readable: Readable,
    column: E::Column,
    key_of: fn(&E::Model) -> Uuid,
    order: Vec<(E::Column, Order)>,
}

impl<E> Relation for RowsOf<E>
where
    E: TenantScoped + Send + Sync + 'static,
    E::Model: FromQueryResult + DeserializeOwned + Send + Sync + 'static,
    E::Column: Send + Sync,
{
    fn plan(
        &self,
        ctx: &Ctx,
        reach: &Reach,
        parents: &[Uuid],
        _: Option<&Window>,
        reads: &mut Reads,
    ) -> AppResult<Planned> {
        let mut query = match self.readable {
            // Keyed by the coachee: the policy's own list on `coachee_id`, narrowed to the
            // parents, is the parent filter too (one list, so the index is used).
            Readable::Policy(table) if self.column.as_str() == "coachee_id" => {
                scoped::select::<E>(ctx.tenant_id()?).filter(reach.list_filter_under(table, parents))
            }
            Readable::Policy(table) => {
                readable::<E>(ctx, reach, table)?.filter(self.column.is_in(parents.iter().copied()))
            }
            Readable::Caller => scoped::select::<E>(ctx.tenant_id()?)
                .filter(self.column.eq(ctx.require()?.user_id))
                .filter(self.column.is_in(parents.iter().copied())),
        };
        for (column, order) in &self.order {
            query = query.order_by(*column, order.clone());
        }
        let order: Vec<String> = self
            .order
            .iter()
            .map(|(column, order)| {
                format!("\"{}\" {}", column.as_str(), if *order == Order::Desc { "DESC" } else { "ASC" })
            })
            .collect();
        let order = (!order.is_empty()).then(|| order.join(", "));
        Ok(Planned { rows: Some(reads.add(query.build(ctx.db().backend()), order)), counts: None })
    }

    fn split<'a, 'r: 'a>(
        &'a self,
        planned: Planned,
        ran: &'a mut Ran<'r>,
        parents: &'a [Uuid],
        _: Option<&'a Window>,
    ) -> BoxFuture<'a, AppResult<Vec<(Uuid, Found)>>> {
        Box::pin(async move {
            let rows: Vec<E::Model> = match planned.rows {
                Some(read) => ran.rows(read).await?,
                None => Vec::new(),
            };
            let mut grouped: foldhash::HashMap<Uuid, Vec<E::Model>> =
                parents.iter().map(|p| (*p, Vec::new())).collect();
            for row in rows {
                grouped.entry((self.key_of)(&row)).or_default().push(row);
            }
            Ok(grouped.into_iter().map(|(parent, rows)| (parent, Arc::new(rows) as Found)).collect())
        })
    }
}

/// A nested connection: each parent's page of the readable rows of `E`, paged in SQL.
struct PagesOf<E: EntityTrait> {
    table: ContentTable,
    parent_column: &'static str,
    parent_of: fn(&E::Model) -> Uuid,
    order: Ordering,
}

impl<E> Relation for PagesOf<E>
where
    E: TenantScoped + Send + Sync + 'static,
    E::Model: FromQueryResult + DeserializeOwned + Send + Sync + 'static,
    E::Column: Send + Sync,
{
    fn plan(
        &self,
        ctx: &Ctx,
        reach: &Reach,
        parents: &[Uuid],
        window: Option<&Window>,
        reads: &mut Reads,
    ) -> AppResult<Planned> {
        let window = window.ok_or_else(|| AppError::internal("a nested connection without its window"))?;
        let backend = ctx.db().backend();
        let query = || readable::<E>(ctx, reach, self.table);
        let rows = paging::per_parent(backend, query()?, self.parent_column, parents, self.order, window)?;
        let counts =
            if window.count { paging::counts_per_parent(backend, query()?, self.parent_column, parents) } else { None };
        // Grouped by parent afterwards: the order within each parent is what counts.
        let order = format!("{}, {}", self.parent_column, self.order.sql());
        Ok(Planned {
            rows: rows.map(|read| reads.add(read, Some(order))),
            counts: counts.map(|read| reads.add(read, None)),
        })
    }

    fn split<'a, 'r: 'a>(
        &'a self,
        planned: Planned,
        ran: &'a mut Ran<'r>,
        parents: &'a [Uuid],
        window: Option<&'a Window>,
    ) -> BoxFuture<'a, AppResult<Vec<(Uuid, Found)>>> {
        Box::pin(async move {
            let window = window.ok_or_else(|| AppError::internal("a nested connection without its window"))?;
            let rows: Vec<E::Model> = match planned.rows {
                Some(read) => ran.rows(read).await?,
                None => Vec::new(),
            };
            let counts: Vec<ParentCount> = match planned.counts {
                Some(read) => ran.rows(read).await?,
                None => Vec::new(),
            };
            let pages = paging::pages_per_parent(parents, rows, self.parent_of, window, &counts);
            Ok(pages.into_iter().map(|(parent, page)| (parent, Arc::new(page) as Found)).collect())
        })
    }
}

/// The request's relation loader. The keys one executor pass registers (every relation a
/// level of the answer needs, under every parent of that level) are one batch, and a batch
/// is one round trip: one read per relation (and window), combined ([`Reads`]).
pub struct Related {
    ctx: Arc<Ctx>,
    relations: Vec<Box<dyn Relation>>,
}

impl Loader<Want> for Related {
    type Value = Found;
    type Error = AppError;

    async fn load(&self, keys: &[Want]) -> Result<HashMap<Want, Found>, AppError> {
        // One read per relation and window, whatever the number of parents.
        let mut groups: Vec<(usize, Option<&Window>, Vec<Uuid>)> = Vec::new();
        for key in keys {
            let window = key.window.as_ref();
            match groups.iter_mut().find(|(r, w, _)| *r == key.relation && *w == window) {
                Some((_, _, parents)) => parents.push(key.parent),
                None => groups.push((key.relation, window, vec![key.parent])),
            }
        }
        // The keys come in no particular order. In relation order, a level's combined
        // statement has one text, so it is prepared and planned once per connection, not once
        // per ordering of its reads (and shows as one statement in pg_stat_statements).
        groups.sort_by_key(|(relation, _, _)| *relation);
        let reach = reach::of(&self.ctx).await?;
        let mut reads = Reads::default();
        let mut planned = Vec::with_capacity(groups.len());
        for (relation, window, parents) in &groups {
            let relation = self.relation(*relation)?;
            planned.push(relation.plan(&self.ctx, &reach, parents, *window, &mut reads)?);
        }
        let mut ran = reads.run(self.ctx.db()).await?;
        let mut found = HashMap::with_capacity(keys.len());
        for ((relation, window, parents), planned) in groups.iter().zip(planned) {
            for (parent, value) in self.relation(*relation)?.split(planned, &mut ran, parents, *window).await? {
                found.insert(Want { relation: *relation, parent, window: window.cloned() }, value);
            }
        }
        Ok(found)
    }
}

impl Related {
    fn relation(&self, index: usize) -> AppResult<&dyn Relation> {
        self.relations.get(index).map(|r| &**r).ok_or_else(|| AppError::internal("no such relation"))
    }
}

type RelatedLoader = DataLoader<Related, HashMapCache<foldhash::fast::RandomState>>;

/// A relation's handle: loads through the request's [`Related`] loader, typed.
pub struct Rel<E> {
    loader: Arc<RelatedLoader>,
    relation: usize,
    entity: PhantomData<fn() -> E>,
}

/// A nested connection's handle.
pub struct Pages<E>(Rel<E>);

impl<E> Pages<E> {
    /// The key of `parent`'s page, for [`Loaders::prefetch`].
    pub fn want(&self, parent: Uuid, window: Window) -> Want {
        Want { relation: self.0.relation, parent, window: Some(window) }
    }
}

impl<E> Rel<E> {
    fn new(loader: &Arc<RelatedLoader>, relation: usize) -> Self {
        Rel { loader: loader.clone(), relation, entity: PhantomData }
    }

    /// The key of `parent`'s rows, for [`Loaders::prefetch`].
    pub fn want(&self, parent: Uuid) -> Want {
        Want { relation: self.relation, parent, window: None }
    }

    async fn load<T: Clone + Send + Sync + 'static>(
        &self,
        parent: Uuid,
        window: Option<Window>,
    ) -> AppResult<Option<T>> {
        let want = Want { relation: self.relation, parent, window };
        match self.loader.load_one(want).await? {
            Some(found) => match found.downcast::<T>() {
                Ok(value) => Ok(Some(Arc::unwrap_or_clone(value))),
                Err(_) => Err(AppError::internal("a relation's rows of another type")),
            },
            None => Ok(None),
        }
    }
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

/// The request's loaders.
pub struct Loaders {
    related: Arc<RelatedLoader>,
    /// A query's loads are kept for the rest of the request, so that a prefetch serves the
    /// fields that ask later; a request that writes keeps nothing (a read after its write
    /// must see it).
    reuse: bool,
    pub profiles_by_id: DataLoader<ProfilesById>,
    pub sessions_by_coachee: Pages<coaching_sessions::Entity>,
    pub goals_by_coachee: Rel<goals::Entity>,
    pub items_by_coachee: Pages<action_items::Entity>,
    pub items_by_session: Rel<action_items::Entity>,
    pub notes_by_coachee: Rel<coach_notes::Entity>,
    pub insights_by_session: Rel<insights::Entity>,
    pub packs_by_session: Rel<evidence_packs::Entity>,
    pub transcripts_by_session: Rel<transcripts::Entity>,
    pub private_notes_by_session: Rel<session_private_notes::Entity>,
    pub summaries_by_session: Rel<session_summaries::Entity>,
    /// The caller's own consents (keyed by the caller).
    pub own_consents: Rel<consents::Entity>,
    /// The break-glass notices about the caller (keyed by the caller), newest first.
    pub own_access_notices: Rel<access_notices::Entity>,
}

fn rows_of<E>(
    readable: Readable,
    column: E::Column,
    key_of: fn(&E::Model) -> Uuid,
    order: Vec<(E::Column, Order)>,
) -> Box<dyn Relation>
where
    E: TenantScoped + Send + Sync + 'static,
    E::Model: FromQueryResult + DeserializeOwned + Send + Sync + 'static,
    E::Column: Send + Sync,
{
    Box::new(RowsOf::<E> { readable, column, key_of, order })
}

fn pages_of<E>(
    table: ContentTable,
    parent_column: &'static str,
    parent_of: fn(&E::Model) -> Uuid,
    order: Ordering,
) -> Box<dyn Relation>
where
    E: TenantScoped + Send + Sync + 'static,
    E::Model: FromQueryResult + DeserializeOwned + Send + Sync + 'static,
    E::Column: Send + Sync,
{
    Box::new(PagesOf::<E> { table, parent_column, parent_of, order })
}

impl Loaders {
    /// `writes`: the request may write (a mutation), so nothing loaded is kept.
    pub fn new(ctx: &Arc<Ctx>, writes: bool) -> Self {
        use sea_orm::Order::{Asc, Desc};
        let mut relations: Vec<Box<dyn Relation>> = Vec::new();
        let mut register = |relation: Box<dyn Relation>| {
            relations.push(relation);
            relations.len() - 1
        };
        let sessions_by_coachee = register(pages_of::<coaching_sessions::Entity>(
            ContentTable::CoachingSessions,
            "coachee_id",
            |s| s.coachee_id,
            paging::NEWEST_SCHEDULED,
        ));
        let goals_by_coachee = register(rows_of::<goals::Entity>(
            Readable::Policy(ContentTable::Goals),
            goals::Column::CoacheeId,
            |g| g.coachee_id,
            vec![(goals::Column::CreatedAt, Asc), (goals::Column::Id, Asc)],
        ));
        let items_by_coachee = register(pages_of::<action_items::Entity>(
            ContentTable::ActionItems,
            "coachee_id",
            |i| i.coachee_id,
            paging::NEWEST_CREATED,
        ));
        let items_by_session = register(rows_of::<action_items::Entity>(
            Readable::Policy(ContentTable::ActionItems),
            action_items::Column::SessionId,
            |i| i.session_id.unwrap_or_default(),
            vec![(action_items::Column::CreatedAt, Asc), (action_items::Column::Id, Asc)],
        ));
        let notes_by_coachee = register(rows_of::<coach_notes::Entity>(
            Readable::Policy(ContentTable::CoachNotes),
            coach_notes::Column::CoacheeId,
            |n| n.coachee_id,
            vec![(coach_notes::Column::CreatedAt, Desc), (coach_notes::Column::Id, Asc)],
        ));
        let insights_by_session = register(rows_of::<insights::Entity>(
            Readable::Policy(ContentTable::Insights),
            insights::Column::SessionId,
            |i| i.session_id,
            vec![(insights::Column::CreatedAt, Asc), (insights::Column::Id, Asc)],
        ));
        let packs_by_session = register(rows_of::<evidence_packs::Entity>(
            Readable::Policy(ContentTable::EvidencePacks),
            evidence_packs::Column::SessionId,
            |p| p.session_id,
            vec![(evidence_packs::Column::CreatedAt, Asc), (evidence_packs::Column::Id, Asc)],
        ));
        let transcripts_by_session = register(rows_of::<transcripts::Entity>(
            Readable::Policy(ContentTable::Transcripts),
            transcripts::Column::SessionId,
            |t| t.session_id,
            vec![],
        ));
        let private_notes_by_session = register(rows_of::<session_private_notes::Entity>(
            Readable::Policy(ContentTable::SessionPrivateNotes),
            session_private_notes::Column::SessionId,
            |n| n.session_id,
            vec![],
        ));
        let summaries_by_session = register(rows_of::<session_summaries::Entity>(
            Readable::Policy(ContentTable::SessionSummaries),
            session_summaries::Column::SessionId,
            |n| n.session_id,
            vec![],
        ));
        let own_consents = register(rows_of::<consents::Entity>(
            Readable::Caller,
            consents::Column::CoacheeId,
            |c| c.coachee_id,
            vec![(consents::Column::Kind, Asc)],
        ));
        let own_access_notices = register(rows_of::<access_notices::Entity>(
            Readable::Caller,
            access_notices::Column::CoacheeId,
            |n| n.coachee_id,
            vec![(access_notices::Column::At, Desc), (access_notices::Column::Id, Desc)],
        ));
        let related = Arc::new(
            DataLoader::with_cache(
                Related { ctx: ctx.clone(), relations },
                crate::telemetry::batch_in_request,
                HashMapCache::<foldhash::fast::RandomState>::new(),
            )
            .delay(crate::telemetry::BATCH_DELAY),
        );
        related.enable_all_cache(!writes);
        Self {
            related: related.clone(),
            reuse: !writes,
            profiles_by_id: DataLoader::new(ProfilesById { ctx: ctx.clone() }, crate::telemetry::batch_in_request)
                .delay(crate::telemetry::BATCH_DELAY),
            sessions_by_coachee: Pages(Rel::new(&related, sessions_by_coachee)),
            goals_by_coachee: Rel::new(&related, goals_by_coachee),
            items_by_coachee: Pages(Rel::new(&related, items_by_coachee)),
            items_by_session: Rel::new(&related, items_by_session),
            notes_by_coachee: Rel::new(&related, notes_by_coachee),
            insights_by_session: Rel::new(&related, insights_by_session),
            packs_by_session: Rel::new(&related, packs_by_session),
            transcripts_by_session: Rel::new(&related, transcripts_by_session),
            private_notes_by_session: Rel::new(&related, private_notes_by_session),
            summaries_by_session: Rel::new(&related, summaries_by_session),
            own_consents: Rel::new(&related, own_consents),
            own_access_notices: Rel::new(&related, own_access_notices),
        }
    }
}

impl std::fmt::Debug for Loaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaders").field("reuse", &self.reuse).finish_non_exhaustive()
    }
}

impl Loaders {
    /// Loads these relations now, as one batch, so that the fields which ask for them later
    /// find them loaded. The GraphQL executor resolves the fields of a nested object one
    /// after another, so without this each relation of a level would be a batch (a round
    /// trip) of its own. Only a warm-up: a field still loads, and checks, what it shows.
    /// A failed prefetch is logged and left for the fields to report (on PostgreSQL the
    /// failed statement has ended the transaction, so they fail too, as the same read
    /// would have made them fail without a prefetch).
    pub async fn prefetch(&self, wants: Vec<Want>) {
        if !self.reuse || wants.is_empty() {
            return;
        }
        if let Err(e) = self.related.load_many(wants).await {
            tracing::warn!(error = ?e, "a prefetch failed");
        }
    }
}

/// Loads the rows for one key (empty when none).
pub async fn rows<E>(rel: &Rel<E>, key: Uuid) -> AppResult<Vec<E::Model>>
where
    E: EntityTrait,
    E::Model: Clone + Send + Sync + 'static,
{
    Ok(rel.load::<Vec<E::Model>>(key, None).await?.unwrap_or_default())
}

/// One parent's page of a nested connection (empty when it has no rows).
pub async fn page<E>(pages: &Pages<E>, parent: Uuid, window: Window) -> AppResult<Listed<E::Model>>
where
    E: EntityTrait,
    E::Model: Clone + Send + Sync + 'static,
{
    let empty = Listed::empty(&window);
    Ok(pages.0.load::<Listed<E::Model>>(parent, Some(window)).await?.unwrap_or(empty))
}
