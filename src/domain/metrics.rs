//! Program metrics: tenant-level aggregates for program admins and executives, with the
//! anonymity floor of POLICY.md section 7.
//!
//! # Design
//!
//! Every figure comes from per-month rollups of three sources of per-coachee data, kept
//! exact by database triggers in the same transaction as every write they summarise
//! (migration `m20261202_000008_metric_rollups`), so a report costs O(months), not O(rows),
//! and is one statement (SQLite: the rollup tables of the caller's tenant; PostgreSQL:
//! `app_program_month_stats`, as row-level security and grants keep the application role
//! out of the rows and the rollups):
//!
//! | figure | source rows | dated by |
//! |---|---|---|
//! | `activeCoachees` | distinct coachees with a `COMPLETED` session | `scheduled_at` |
//! | `sessionsCompleted` | `COMPLETED` sessions | `scheduled_at` |
//! | `actionItemCompletionRate` | action items (completed / all) | `created_at` |
//! | `averageSatisfaction` | AI feedback (helpful / all) | `created_at` |
//!
//! Per source and month the rollups hold the distinct coachees, the rows and the hits; the
//! distinct active coachees of a whole range come from `rollup_active_spans` (per month, the
//! coachees active in it, by their previous active month: a coachee counts once, at its first
//! active month of the range), so no figure is an estimate.
//!
//! **Whole months only.** `from` is snapped down to the first instant of its month and `to`
//! up to the last instant of its month (UTC), so a range is a set of calendar months. The
//! month of a row is computed by the triggers (`to_char(col AT TIME ZONE 'UTC', 'YYYY-MM')`
//! on PostgreSQL, `substr(col, 1, 7)` on SQLite, which stores `DateTimeUtc` as RFC 3339 text
//! in UTC) and a range filters those month keys, so filter and bucket can never disagree.
//!
//! **Suppression.** For every source and every month of the range, the number of distinct
//! coachees behind that month's rows must be 0 or at least [`ANONYMITY_FLOOR`]; and the
//! range as a whole must have at least [`ANONYMITY_FLOOR`] distinct coachees. Otherwise the
//! answer is suppressed: every figure `null`, `suppressed: true`, never a small number.
//! Checking each source separately (not only the union of contributors) is deliberate: a
//! month where five coachees have action items but one alone has a completed session would
//! otherwise let "Sept..Oct" minus "Oct" reveal that one person's session count. The
//! range-wide check needs no query of its own: if no month of any source is below the floor
//! and some source has rows, that month alone holds at least five distinct coachees, so the
//! range does too; a range without any rows is suppressed.
//!
//! **Why this stops differencing.** Two answers that are both unsuppressed differ only by
//! whole months, and each of those months has, per source, either no one or at least five
//! coachees; there are no other arguments (no coach, team or coachee filter: no drill-down),
//! so "all" minus "all but one" cannot isolate fewer than five people's rows. (A residual:
//! `activeCoachees` is a distinct count, so the difference of two ranges tells how many of
//! a month's >= 5 active coachees were not active in the other months; it names no one.)

use chrono::{DateTime, Datelike, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;

use crate::authz::{Action, Resource, Scope, matrix};
use crate::ctx::Ctx;
use crate::domain::access;
use crate::error::{AppError, AppResult};

/// POLICY.md section 7: a group of fewer than 5 distinct coachees is suppressed.
pub const ANONYMITY_FLOOR: i64 = 5;

/// An inclusive range of calendar months as `YYYY-MM` keys; `None` is unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthRange {
    pub from: Option<String>,
    pub to: Option<String>,
}

fn month_key(t: DateTime<Utc>, name: &str) -> AppResult<String> {
    let year = t.year();
    if !(1..=9999).contains(&year) {
        return Err(AppError::bad_input(format!("{name} must be between the years 1 and 9999")));
    }
    Ok(format!("{year:04}-{:02}", t.month()))
}

impl MonthRange {
    /// Snaps `from` down and `to` up to whole months (UTC). `from` after `to` is refused.
    pub fn snap(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> AppResult<Self> {
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(AppError::bad_input("from must not be after to"));
        }
        Ok(Self {
            from: from.map(|f| month_key(f, "from")).transpose()?,
            to: to.map(|t| month_key(t, "to")).transpose()?,
        })
    }
}

/// One month of one source: distinct coachees, rows, and rows counting towards a rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthStat {
    pub month: String,
    pub coachees: i64,
    pub rows: i64,
    pub hits: i64,
}

/// The answer; every figure is `None` when suppressed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramMetrics {
    pub suppressed: bool,
    pub active_coachees: Option<i64>,
    pub sessions_completed: Option<i64>,
    pub action_item_completion_rate: Option<f64>,
    pub average_satisfaction: Option<f64>,
}

impl ProgramMetrics {
    pub const SUPPRESSED: ProgramMetrics = ProgramMetrics {
        suppressed: true,
        active_coachees: None,
        sessions_completed: None,
        action_item_completion_rate: None,
        average_satisfaction: None,
    };
}

/// The per-source monthly statistics of a range, and the range-wide active coachees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeStats {
    pub sessions: Vec<MonthStat>,
    pub action_items: Vec<MonthStat>,
    pub feedback: Vec<MonthStat>,
    /// Distinct coachees with a completed session anywhere in the range.
    pub active_coachees: i64,
}

fn ratio(stats: &[MonthStat]) -> Option<f64> {
    let rows: i64 = stats.iter().map(|m| m.rows).sum();
    let hits: i64 = stats.iter().map(|m| m.hits).sum();
    (rows > 0).then(|| hits as f64 / rows as f64)
}

/// The suppression rule and the figures, as a pure function of the statistics.
pub fn decide(stats: &RangeStats) -> ProgramMetrics {
    let months = || stats.sessions.iter().chain(&stats.action_items).chain(&stats.feedback);
    let small_month = months().any(|m| m.coachees > 0 && m.coachees < ANONYMITY_FLOOR);
    // A lower bound of the distinct coachees of the whole range (see the module docs).
    let contributors = months().map(|m| m.coachees).max().unwrap_or(0);
    if small_month || contributors < ANONYMITY_FLOOR {
        return ProgramMetrics::SUPPRESSED;
    }
    ProgramMetrics {
        suppressed: false,
        active_coachees: Some(stats.active_coachees),
        sessions_completed: Some(stats.sessions.iter().map(|m| m.rows).sum()),
        action_item_completion_rate: ratio(&stats.action_items),
        average_satisfaction: ratio(&stats.feedback),
    }
}

/// SQLite: the month statistics of the range and its active coachees from the rollups, one
/// statement. The same rows as PostgreSQL's `app_program_month_stats` before its floor.
fn rollup_statement(tenant_id: Uuid, range: &MonthRange) -> Statement {
    let mut values = vec![Value::Uuid(Some(tenant_id))];
    let mut months = String::new();
    if let Some(from) = &range.from {
        months.push_str(" AND month >= ?");
        values.push(Value::String(Some(from.clone())));
    }
    if let Some(to) = &range.to {
        months.push_str(" AND month <= ?");
        values.push(Value::String(Some(to.clone())));
    }
    values.extend(values.clone());
    // A coachee counts once, at its first active month of the range: the one whose previous
    // active month lies before the range ('' = none, before every month).
    let first = match &range.from {
        Some(from) => {
            values.push(Value::String(Some(from.clone())));
            "prev_month < ?"
        }
        None => "prev_month = ''",
    };
    let sql = format!(
        "SELECT source, month, coachees, total, hits FROM rollup_months WHERE tenant_id = ?{months} \
         UNION ALL \
         SELECT 'active', NULL, CAST(COALESCE(SUM(coachees), 0) AS BIGINT), 0, 0 FROM rollup_active_spans \
         WHERE tenant_id = ?{months} AND {first}"
    );
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

/// Loads the statistics of `range` for `tenant_id`: one statement over the per-month
/// rollups (migration 000008 keeps them exact, by trigger, in every write's transaction).
/// PostgreSQL: through `app_program_month_stats`: program admins and executives read no
/// session, action item, feedback or rollup row there; the function returns counts of the
/// caller's own tenant only, and applies the anonymity floor itself (the same rule as
/// [`decide`]): a suppressed answer reaches the application as no statistics at all.
pub async fn range_stats(ctx: &Ctx, tenant_id: Uuid, range: &MonthRange) -> AppResult<RangeStats> {
    let stmt = match ctx.db().backend() {
        DbBackend::Postgres => Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT source, month, coachees, total, hits FROM app_program_month_stats($1, $2)",
            [Value::String(range.from.clone()), Value::String(range.to.clone())],
        ),
        DbBackend::Sqlite => rollup_statement(tenant_id, range),
        other => return Err(AppError::internal(format!("program metrics: unsupported backend {other:?}"))),
    };
    let rows = ctx.db().conn().await?.query_all_raw(stmt).await?;
    let mut stats = RangeStats::default();
    for row in rows {
        let source: String = row.try_get("", "source")?;
        let stat = MonthStat {
            month: row.try_get::<Option<String>>("", "month")?.unwrap_or_default(),
            coachees: row.try_get("", "coachees")?,
            rows: row.try_get("", "total")?,
            hits: row.try_get("", "hits")?,
        };
        match source.as_str() {
            // Suppressed: no figure reaches the application; an empty range decides the same.
            "suppressed" => return Ok(RangeStats::default()),
            "sessions" => stats.sessions.push(stat),
            "action_items" => stats.action_items.push(stat),
            "feedback" => stats.feedback.push(stat),
            "active" => stats.active_coachees = stat.coachees,
            other => return Err(AppError::internal(format!("program metrics: unknown source {other}"))),
        }
    }
    Ok(stats)
}

/// `programMetrics(from, to)`: the caller's tenant, whole months, suppressed below the floor.
pub async fn program_metrics(
    ctx: &Ctx,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> AppResult<ProgramMetrics> {
    let role = ctx.require()?.role;
    let grant = matrix::grant(role, Resource::ProgramMetrics, Action::Read);
    if grant.is_none_or(|g| g.scope != Scope::Tenant) {
        return Err(access::forbidden(ctx, Resource::ProgramMetrics, "role may not read program metrics"));
    }
    let range = MonthRange::snap(from, to)?;
    let stats = range_stats(ctx, ctx.tenant_id()?, &range).await?;
    Ok(decide(&stats))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn m(month: &str, coachees: i64, rows: i64, hits: i64) -> MonthStat {
        MonthStat { month: month.to_owned(), coachees, rows, hits }
    }

    fn at(y: i32, mo: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, 12, 0, 0).single().expect("date")
    }

    #[test]
    fn ranges_snap_to_whole_months_and_refuse_inverted_bounds() {
        let r = MonthRange::snap(Some(at(2026, 10, 15)), Some(at(2026, 11, 2))).expect("range");
        assert_eq!(r.from.as_deref(), Some("2026-10"));
        assert_eq!(r.to.as_deref(), Some("2026-11"));
        assert_eq!(MonthRange::snap(None, None).expect("open"), MonthRange { from: None, to: None });
        assert!(MonthRange::snap(Some(at(2026, 11, 2)), Some(at(2026, 10, 2))).is_err());
        // Same month, from after to within it: still an inverted range.
        assert!(MonthRange::snap(Some(at(2026, 10, 20)), Some(at(2026, 10, 2))).is_err());
    }

    fn healthy() -> RangeStats {
        RangeStats {
            sessions: vec![m("2026-10", 12, 24, 0)],
            action_items: vec![m("2026-10", 12, 48, 18)],
            feedback: vec![m("2026-10", 6, 6, 4)],
            active_coachees: 12,
        }
    }

    #[test]
    fn figures_come_from_the_sums() {
        let r = decide(&healthy());
        assert!(!r.suppressed);
        assert_eq!(r.active_coachees, Some(12));
        assert_eq!(r.sessions_completed, Some(24));
        assert_eq!(r.action_item_completion_rate, Some(18.0 / 48.0));
        assert_eq!(r.average_satisfaction, Some(4.0 / 6.0));
    }

    #[test]
    fn no_data_is_suppressed() {
        assert_eq!(decide(&RangeStats::default()), ProgramMetrics::SUPPRESSED);
    }

    #[test]
    fn any_month_of_any_source_below_five_suppresses_everything() {
        for source in 0..3 {
            for small in 1..ANONYMITY_FLOOR {
                let mut s = healthy();
                let extra = m("2026-08", small, 1, 1);
                match source {
                    0 => s.sessions.push(extra),
                    1 => s.action_items.push(extra),
                    _ => s.feedback.push(extra),
                }
                assert_eq!(decide(&s), ProgramMetrics::SUPPRESSED, "{source} {small}");
            }
        }
    }

    #[test]
    fn a_month_of_exactly_five_is_enough() {
        let mut s = healthy();
        s.sessions.push(m("2026-08", 5, 5, 0));
        assert!(!decide(&s).suppressed);
    }

    #[test]
    fn empty_sources_give_null_rates_not_zero() {
        let s = RangeStats {
            sessions: vec![m("2026-10", 5, 5, 0)],
            action_items: vec![],
            feedback: vec![],
            active_coachees: 5,
        };
        let r = decide(&s);
        assert!(!r.suppressed);
        assert_eq!(r.action_item_completion_rate, None);
        assert_eq!(r.average_satisfaction, None);
    }
}
