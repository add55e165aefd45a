//! Keyset paging in SQL, for root lists and for lists nested under many parents.
//!
//! Every list has a total order ending in the row id ([`Ordering`]); a page is "the first
//! `limit` rows after this key". The key of the last row of a page is the next page's
//! cursor (sealed by `graphql::paging`), so deep pages cost what the first one does and a
//! row inserted meanwhile neither repeats nor skips a row.
//!
//! Nested lists (`coachees { sessions(first: 5) }`) page per parent in one statement: on
//! PostgreSQL a `LATERAL` subquery with `LIMIT` per parent, which reads only the rows it
//! returns through the `(tenant_id, parent, key)` index; on SQLite, which has no `LATERAL`,
//! `ROW_NUMBER()` per parent. Either way the statement returns at most `limit` rows per
//! parent (one more when the selection asks whether there is a next page).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, SimpleExpr};
use sea_orm::{
    DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, Select,
    Statement,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ctx::Ctx;
use crate::error::{AppError, AppResult};

/// Where a page starts: after the row with this key (of the list's [`Ordering`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortKey {
    /// Lists ordered by a timestamp, then id.
    At(DateTime<Utc>, Uuid),
    /// Lists ordered by a name, then id.
    Named(String, Uuid),
}

/// Which rows of a list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Window {
    pub limit: u64,
    pub after: Option<SortKey>,
    /// Read one row more, to tell whether a next page exists (only when it is asked for).
    pub probe_next: bool,
    /// Count the whole list (only when `totalCount` is asked for).
    pub count: bool,
}

impl Window {
    /// The first `limit` rows, without probing or counting.
    pub fn first(limit: u64) -> Self {
        Window { limit, after: None, probe_next: false, count: false }
    }

    fn fetch(&self) -> u64 {
        self.limit + u64::from(self.probe_next)
    }
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub rows: Vec<T>,
    /// Known when the window asked for it.
    pub has_next: Option<bool>,
    /// Known when the window asked for it.
    pub total: Option<u64>,
}

impl<T> Listed<T> {
    pub fn empty(window: &Window) -> Self {
        Listed { rows: Vec::new(), has_next: window.probe_next.then_some(false), total: window.count.then_some(0) }
    }

    /// Cuts the probe row off.
    fn from_fetched(mut rows: Vec<T>, window: &Window, total: Option<u64>) -> Self {
        let has_next = window.probe_next.then_some(rows.len() as u64 > window.limit);
        rows.truncate(window.limit as usize);
        Listed { rows, has_next, total }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed { rows: self.rows.into_iter().map(f).collect(), has_next: self.has_next, total: self.total }
    }
}

/// A list's total order: `key` in `descending` order or not, then `id` ascending.
#[derive(Debug, Clone, Copy)]
pub struct Ordering {
    pub key: &'static str,
    pub descending: bool,
}

pub const NEWEST_SCHEDULED: Ordering = Ordering { key: "scheduled_at", descending: true };
pub const NEWEST_CREATED: Ordering = Ordering { key: "created_at", descending: true };
pub const BY_NAME: Ordering = Ordering { key: "display_name", descending: false };

impl Ordering {
    fn direction(self) -> &'static str {
        if self.descending { "DESC" } else { "ASC" }
    }

    /// `ORDER BY` text of the window function, the lateral subquery and a combined read.
    pub fn sql(self) -> String {
        format!("{} {}, id ASC", self.key, self.direction())
    }

    fn apply<E: EntityTrait>(self, select: Select<E>) -> Select<E> {
        let key = Expr::col(Alias::new(self.key));
        let select = if self.descending { select.order_by_desc(key) } else { select.order_by_asc(key) };
        select.order_by_asc(Expr::col(Alias::new("id")))
    }

    /// Rows strictly after `after` in this order. A key of the wrong shape for this list is
    /// refused (a cursor of another list).
    pub fn after(self, after: &SortKey) -> AppResult<Condition> {
        let key_value: SimpleExpr = match (self.key, after) {
            ("display_name", SortKey::Named(name, _)) => Expr::val(name.clone()),
            ("scheduled_at" | "created_at", SortKey::At(at, _)) => Expr::val(*at),
            _ => return Err(AppError::bad_input("after is not a cursor of this list")),
        };
        let id = match after {
            SortKey::At(_, id) | SortKey::Named(_, id) => *id,
        };
        let key = || Expr::col(Alias::new(self.key));
        let beyond = if self.descending { key().lt(key_value.clone()) } else { key().gt(key_value.clone()) };
        Ok(Condition::any()
            .add(beyond)
            .add(Condition::all().add(key().eq(key_value)).add(Expr::col(Alias::new("id")).gt(id))))
    }
}

/// A model with the `COUNT(*) OVER ()` of its statement.
struct Counted<M> {
    model: M,
    total: i64,
}

impl<M: FromQueryResult> FromQueryResult for Counted<M> {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, sea_orm::DbErr> {
        Ok(Counted { model: M::from_query_result(res, pre)?, total: res.try_get(pre, "total_rows")? })
    }
}

/// One page of a root list, as rows of `M` (the entity's model, or a projection the query
/// already selects): one statement, which also counts the list when asked to and the page
/// starts at the beginning (`COUNT(*) OVER ()`); a later page counts separately.
pub async fn page<E, M>(ctx: &Ctx, query: Select<E>, order: Ordering, window: &Window) -> AppResult<Listed<M>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    M: FromQueryResult + Send + Sync,
{
    let mut paged = order.apply(query.clone()).limit(window.fetch());
    if let Some(after) = &window.after {
        paged = paged.filter(order.after(after)?);
    } else if window.count && window.fetch() > 0 {
        let counted: Vec<Counted<M>> = paged
            .column_as(Expr::cust("COUNT(*) OVER ()"), "total_rows")
            .into_model()
            .all(&*ctx.db().conn().await?)
            .await?;
        let total = counted.first().map(|c| std::cmp::max(c.total, 0) as u64);
        let rows = counted.into_iter().map(|c| c.model).collect();
        // An empty page says nothing about the count only when nothing matched.
        return Ok(Listed::from_fetched(rows, window, Some(total.unwrap_or(0))));
    }
    let rows = paged.into_model::<M>().all(&*ctx.db().conn().await?).await?;
    let total = if window.count { Some(query.count_rows(ctx).await?) } else { None };
    Ok(Listed::from_fetched(rows, window, total))
}

trait CountRows {
    async fn count_rows(self, ctx: &Ctx) -> AppResult<u64>;
}

impl<E: EntityTrait> CountRows for Select<E>
where
    E::Model: Send + Sync,
{
    async fn count_rows(self, ctx: &Ctx) -> AppResult<u64> {
        use sea_orm::PaginatorTrait;
        Ok(self.count(&*ctx.db().conn().await?).await?)
    }
}

/// The read of per-parent pages of a nested list, as one statement: for each of `parents`,
/// the window's rows of `query` (already tenant- and policy-filtered) whose `parent_column`
/// is that parent, in list order per parent. `None` when it can return nothing.
pub fn per_parent<E>(
    backend: DbBackend,
    query: Select<E>,
    parent_column: &'static str,
    parents: &[Uuid],
    order: Ordering,
    window: &Window,
) -> AppResult<Option<Statement>>
where
    E: EntityTrait,
{
    if parents.is_empty() || window.fetch() == 0 {
        return Ok(None);
    }
    let mut query = query;
    if let Some(after) = &window.after {
        query = query.filter(order.after(after)?);
    }
    let fetch = window.fetch();
    Ok(Some(match backend {
        DbBackend::Postgres => {
            // The parent of the lateral row is `p.id`, a column of the outer VALUES list.
            let inner = order
                .apply(query.filter(Expr::cust(format!("{parent_column} = p.id"))))
                .limit(fetch)
                .build(DbBackend::Postgres);
            let first = inner.values.as_ref().map_or(0, |v| v.0.len()) + 1;
            let list: Vec<String> = (0..parents.len()).map(|i| format!("(${}::uuid)", first + i)).collect();
            let mut values = inner.values.map(|v| v.0).unwrap_or_default();
            values.extend(parents.iter().map(|p| sea_orm::Value::Uuid(Some(*p))));
            Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT s.* FROM (VALUES {}) AS p(id) CROSS JOIN LATERAL ({}) AS s",
                    list.join(", "),
                    inner.sql
                ),
                values,
            )
        }
        _ => {
            let inner = query
                .filter(Expr::col(Alias::new(parent_column)).is_in(parents.iter().copied()))
                .column_as(
                    Expr::cust(format!("ROW_NUMBER() OVER (PARTITION BY {parent_column} ORDER BY {})", order.sql())),
                    "row_in_parent",
                )
                .build(backend);
            Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT * FROM ({}) AS s WHERE row_in_parent <= {fetch} ORDER BY {parent_column}, row_in_parent",
                    inner.sql
                ),
                inner.values.map(|v| v.0).unwrap_or_default(),
            )
        }
    }))
}

/// One parent's list length (only for `totalCount`).
#[derive(Debug, Clone, Copy, FromQueryResult, Deserialize)]
pub struct ParentCount {
    pub parent: Uuid,
    pub n: i64,
}

/// The read of the length of each parent's list, as one grouped statement (rows of
/// [`ParentCount`]). `None` when there are no parents.
pub fn counts_per_parent<E>(
    backend: DbBackend,
    query: Select<E>,
    parent_column: &'static str,
    parents: &[Uuid],
) -> Option<Statement>
where
    E: EntityTrait,
{
    if parents.is_empty() {
        return None;
    }
    let read = query
        .filter(Expr::col(Alias::new(parent_column)).is_in(parents.iter().copied()))
        .select_only()
        .column_as(Expr::col(Alias::new(parent_column)), "parent")
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
        .group_by(Expr::col(Alias::new(parent_column)))
        .build(backend);
    Some(read)
}

/// Splits rows fetched for many parents into each parent's page (every parent gets one).
pub fn pages_per_parent<T>(
    parents: &[Uuid],
    rows: Vec<T>,
    parent_of: impl Fn(&T) -> Uuid,
    window: &Window,
    counts: &[ParentCount],
) -> std::collections::HashMap<Uuid, Listed<T>> {
    let mut grouped: std::collections::HashMap<Uuid, Vec<T>> = parents.iter().map(|p| (*p, Vec::new())).collect();
    for row in rows {
        grouped.entry(parent_of(&row)).or_default().push(row);
    }
    let counts: std::collections::HashMap<Uuid, i64> = counts.iter().map(|c| (c.parent, c.n)).collect();
    let count_of = |parent: Uuid| counts.get(&parent).map_or(0, |n| std::cmp::max(*n, 0) as u64);
    grouped
        .into_iter()
        .map(|(parent, rows)| {
            let total = window.count.then(|| count_of(parent));
            (parent, Listed::from_fetched(rows, window, total))
        })
        .collect()
}
