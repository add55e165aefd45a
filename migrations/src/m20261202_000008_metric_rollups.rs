//! Program metrics from exact per-month rollups (issue 8), so that `programMetrics` costs
//! O(months), not O(rows), and stays one statement.
//!
//! Both backends:
//! - `rollup_coachee_months(tenant_id, source, month, coachee_id, total, hits)`: per coachee
//!   and UTC month (`YYYY-MM`), the rows of one source (`sessions`: COMPLETED sessions by
//!   `scheduled_at`; `action_items` by `created_at`, a hit is a completed item; `feedback`:
//!   AI feedback by `created_at`, a hit is a helpful one). A row exists only while total > 0.
//! - `rollup_months(tenant_id, source, month, coachees, total, hits)`: the same per month,
//!   with the distinct coachees behind it (what the anonymity floor is checked against).
//! - `rollup_active_spans(tenant_id, month, prev_month, coachees)`: for `sessions`, how many
//!   coachees active in `month` were last active before it in `prev_month` ('' for never).
//!   The distinct active coachees of a range [a, b] are then
//!   `SUM(coachees) WHERE a <= month <= b AND prev_month < a`: each coachee is counted once,
//!   at its first active month of the range. Exact, in O(months^2) rows at most.
//! - Triggers on `coaching_sessions`, `action_items` and `ai_feedback` keep all three exact
//!   in the same transaction as every write (GraphQL mutations, deletion cascades, seeding,
//!   the owner's direct writes). Their statements come from one generator ([`add`],
//!   [`remove`]) shared by both backends. The existing rows are backfilled.
//!
//! PostgreSQL:
//! - The trigger functions are SECURITY DEFINER (the migration's owner, which bypasses RLS:
//!   see the README); the application role has no privilege at all on the rollup tables
//!   (RLS is enabled and forced on them too, with only the restrictive tenant policy).
//! - A coachee's session rollups are serialised by a transaction-scoped advisory lock: the
//!   spans of a month depend on the coachee's neighbouring active months, which another
//!   transaction may be changing (READ COMMITTED sees its rows only once it commits).
//! - `app_program_month_stats` keeps its signature and result contract (the 'suppressed'
//!   row, the roles) and reads only `rollup_months` and `rollup_active_spans`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::APP_ROLE;
use crate::m20261122_000001_schema::{TENANT_ID, Tbl, text, uuid};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000008_metric_rollups"
    }
}

/// The tables this migration creates, parents first.
pub const NEW_TABLES: &[&str] = &["rollup_coachee_months", "rollup_months", "rollup_active_spans"];

fn count(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().take()
}

fn tables() -> Vec<Tbl> {
    vec![
        Tbl::new("rollup_coachee_months")
            .col(uuid(TENANT_ID))
            .col(text("source"))
            .col(text("month"))
            .col(uuid("coachee_id"))
            .col(count("total"))
            .col(count("hits"))
            .primary_key(&[TENANT_ID, "source", "month", "coachee_id"])
            // The neighbouring active months of one coachee.
            .index(&[TENANT_ID, "source", "coachee_id", "month"])
            .fk(TENANT_ID, "tenants", "id"),
        Tbl::new("rollup_months")
            .col(uuid(TENANT_ID))
            .col(text("source"))
            .col(text("month"))
            .col(count("coachees"))
            .col(count("total"))
            .col(count("hits"))
            .primary_key(&[TENANT_ID, "source", "month"])
            .fk(TENANT_ID, "tenants", "id"),
        Tbl::new("rollup_active_spans")
            .col(uuid(TENANT_ID))
            .col(text("month"))
            .col(text("prev_month"))
            .col(count("coachees"))
            .primary_key(&[TENANT_ID, "month", "prev_month"])
            .fk(TENANT_ID, "tenants", "id"),
    ]
}

/// One source of program metrics. In the SQL templates `{r}` stands for the row (`NEW`,
/// `OLD`, or a table alias).
struct Source {
    /// `source` in the rollup tables.
    name: &'static str,
    table: &'static str,
    /// The column whose UTC month a row belongs to.
    dated_by: &'static str,
    /// Whether a row counts at all.
    counts: &'static str,
    /// 1 when a row counts towards the source's rate, else 0.
    hit: &'static str,
}

/// The tables whose rows the rollups summarise (their triggers keep the rollups exact).
pub const ROLLED_UP_TABLES: [&str; 3] = ["coaching_sessions", "action_items", "ai_feedback"];

const SOURCES: [Source; 3] = [
    Source {
        name: "sessions",
        table: "coaching_sessions",
        dated_by: "scheduled_at",
        counts: "{r}.status = 'COMPLETED'",
        hit: "0",
    },
    Source {
        name: "action_items",
        table: "action_items",
        dated_by: "created_at",
        counts: "true",
        hit: "CASE WHEN {r}.completed_at IS NOT NULL THEN 1 ELSE 0 END",
    },
    Source {
        name: "feedback",
        table: "ai_feedback",
        dated_by: "created_at",
        counts: "true",
        hit: "CASE WHEN {r}.helpful THEN 1 ELSE 0 END",
    },
];

/// The source's SQL for one row.
struct Row<'a> {
    backend: DbBackend,
    source: &'a Source,
    rec: &'a str,
}

impl Row<'_> {
    fn tenant(&self) -> String {
        format!("{}.tenant_id", self.rec)
    }
    fn coachee(&self) -> String {
        format!("{}.coachee_id", self.rec)
    }
    /// The UTC month as `YYYY-MM`: the same expressions as `coachgraph::domain::metrics`
    /// (SQLite stores timestamps as RFC 3339 text in UTC).
    fn month(&self) -> String {
        let col = format!("{}.{}", self.rec, self.source.dated_by);
        match self.backend {
            DbBackend::Postgres => format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM')"),
            _ => format!("substr({col}, 1, 7)"),
        }
    }
    fn counts(&self) -> String {
        self.source.counts.replace("{r}", self.rec)
    }
    fn hit(&self) -> String {
        self.source.hit.replace("{r}", self.rec)
    }
    fn is_sessions(&self) -> bool {
        self.source.name == "sessions"
    }
}

/// The row's coachee-month row exists with `total = n` (after this trigger's own change).
fn coachee_month_total(r: &Row, n: i64) -> String {
    format!(
        "EXISTS (SELECT 1 FROM rollup_coachee_months k WHERE k.tenant_id = {t} AND k.source = '{s}' \
         AND k.month = {m} AND k.coachee_id = {c} AND k.total = {n})",
        t = r.tenant(),
        s = r.source.name,
        m = r.month(),
        c = r.coachee(),
    )
}

/// The coachee's nearest active month before (`MAX`, `<`) or after (`MIN`, `>`) the row's.
fn neighbour(r: &Row, agg: &str, op: &str) -> String {
    format!(
        "(SELECT {agg}(n.month) FROM rollup_coachee_months n WHERE n.tenant_id = {t} \
         AND n.source = 'sessions' AND n.coachee_id = {c} AND n.month {op} {m})",
        t = r.tenant(),
        c = r.coachee(),
        m = r.month(),
    )
}

/// `spans(month, prev) += 1` when `guard` holds and `month` is not NULL.
fn span_add(r: &Row, month: &str, prev: &str, guard: &str) -> String {
    format!(
        "INSERT INTO rollup_active_spans (tenant_id, month, prev_month, coachees) \
         SELECT {t}, x.month, x.prev_month, 1 FROM (SELECT {month} AS month, {prev} AS prev_month) x \
         WHERE x.month IS NOT NULL AND {guard} \
         ON CONFLICT (tenant_id, month, prev_month) DO UPDATE SET coachees = rollup_active_spans.coachees + excluded.coachees;",
        t = r.tenant(),
    )
}

/// `spans(month, prev) -= 1` when `guard` holds.
fn span_sub(r: &Row, month: &str, prev: &str, guard: &str) -> String {
    format!(
        "UPDATE rollup_active_spans SET coachees = coachees - 1 \
         WHERE tenant_id = {t} AND month = {month} AND prev_month = {prev} AND {guard};",
        t = r.tenant(),
    )
}

/// Spans that reached 0 (only those of the row's month and the next active one can have).
fn span_sweep(r: &Row, next: &str) -> String {
    format!(
        "DELETE FROM rollup_active_spans WHERE tenant_id = {t} AND month IN ({m}, {next}) AND coachees = 0;",
        t = r.tenant(),
        m = r.month(),
    )
}

/// The statements that add a counting row `r` to the rollups. The coachee-month row is
/// written first: its total then tells whether the coachee just became active in the month
/// (a concurrent writer of the same coachee-month waits on that row, so this is exact).
fn add(r: &Row) -> Vec<String> {
    let (t, s, m, c, h) = (r.tenant(), r.source.name, r.month(), r.coachee(), r.hit());
    let fresh = coachee_month_total(r, 1);
    let mut sql = vec![format!(
        "INSERT INTO rollup_coachee_months (tenant_id, source, month, coachee_id, total, hits) \
         VALUES ({t}, '{s}', {m}, {c}, 1, {h}) \
         ON CONFLICT (tenant_id, source, month, coachee_id) DO UPDATE SET \
         total = rollup_coachee_months.total + excluded.total, hits = rollup_coachee_months.hits + excluded.hits;"
    )];
    if r.is_sessions() {
        // Active in m between p (before) and q (after): spans(q, p) -= 1, spans(q, m) += 1,
        // spans(m, p) += 1.
        let prev = format!("COALESCE({}, '')", neighbour(r, "MAX", "<"));
        let next = neighbour(r, "MIN", ">");
        sql.push(span_sub(r, &next, &prev, &fresh));
        sql.push(span_add(r, &next, &m, &fresh));
        sql.push(span_add(r, &m, &prev, &fresh));
        sql.push(span_sweep(r, &next));
    }
    sql.push(format!(
        "INSERT INTO rollup_months (tenant_id, source, month, coachees, total, hits) \
         VALUES ({t}, '{s}', {m}, CASE WHEN {fresh} THEN 1 ELSE 0 END, 1, {h}) \
         ON CONFLICT (tenant_id, source, month) DO UPDATE SET \
         coachees = rollup_months.coachees + excluded.coachees, total = rollup_months.total + excluded.total, \
         hits = rollup_months.hits + excluded.hits;"
    ));
    sql
}

/// The statements that take a counting row `r` out of the rollups (the reverse of [`add`]).
fn remove(r: &Row) -> Vec<String> {
    let (t, s, m, c, h) = (r.tenant(), r.source.name, r.month(), r.coachee(), r.hit());
    let key = format!("tenant_id = {t} AND source = '{s}' AND month = {m} AND coachee_id = {c}");
    let gone = coachee_month_total(r, 0);
    let mut sql = vec![format!("UPDATE rollup_coachee_months SET total = total - 1, hits = hits - {h} WHERE {key};")];
    if r.is_sessions() {
        // No longer active in m: spans(m, p) -= 1, spans(q, m) -= 1, spans(q, p) += 1. A tenant
        // being deleted takes its rollups with it: no new span row for it.
        let prev = format!("COALESCE({}, '')", neighbour(r, "MAX", "<"));
        let next = neighbour(r, "MIN", ">");
        sql.push(span_sub(r, &m, &prev, &gone));
        sql.push(span_sub(r, &next, &m, &gone));
        sql.push(span_add(r, &next, &prev, &format!("{gone} AND EXISTS (SELECT 1 FROM tenants WHERE id = {t})")));
        sql.push(span_sweep(r, &next));
    }
    let month = format!("tenant_id = {t} AND source = '{s}' AND month = {m}");
    sql.push(format!(
        "UPDATE rollup_months SET coachees = coachees - CASE WHEN {gone} THEN 1 ELSE 0 END, \
         total = total - 1, hits = hits - {h} WHERE {month};"
    ));
    sql.push(format!("DELETE FROM rollup_months WHERE {month} AND total = 0;"));
    sql.push(format!("DELETE FROM rollup_coachee_months WHERE {key} AND total = 0;"));
    sql
}

/// An update that changes none of tenant, coachee, month, whether the row counts and its
/// hit leaves the rollups alone (most updates: a session's duration, notes, timestamps).
fn changed(backend: DbBackend, source: &Source) -> String {
    let old = Row { backend, source, rec: "OLD" };
    let new = Row { backend, source, rec: "NEW" };
    let same = |a: String, b: String| match backend {
        DbBackend::Postgres => format!("({a}) IS NOT DISTINCT FROM ({b})"),
        _ => format!("({a}) IS ({b})"),
    };
    let parts = [
        same(old.tenant(), new.tenant()),
        same(old.coachee(), new.coachee()),
        same(old.month(), new.month()),
        same(old.counts(), new.counts()),
        same(old.hit(), new.hit()),
    ];
    format!("NOT ({})", parts.join(" AND "))
}

fn trigger_names(source: &Source) -> [String; 4] {
    ["insert", "delete", "update_old", "update_new"].map(|op| format!("{}_rollup_{op}", source.table))
}

/// SQLite: one trigger per case, each guarded by a WHEN clause (SQLite triggers have no
/// variables; every statement finds what it needs by subquery).
fn sqlite_triggers(source: &Source) -> Vec<String> {
    let b = DbBackend::Sqlite;
    let old = Row { backend: b, source, rec: "OLD" };
    let new = Row { backend: b, source, rec: "NEW" };
    let changed = changed(b, source);
    let [insert, delete, update_old, update_new] = trigger_names(source);
    let table = source.table;
    let trigger = |name: &str, event: &str, when: String, body: Vec<String>| {
        format!(
            "CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} FOR EACH ROW WHEN {when}\nBEGIN\n  {}\nEND;",
            body.join("\n  ")
        )
    };
    // The two update triggers may fire in either order: each is an exact change on its own.
    vec![
        trigger(&insert, "INSERT", new.counts(), add(&new)),
        trigger(&delete, "DELETE", old.counts(), remove(&old)),
        trigger(&update_old, "UPDATE", format!("({}) AND {changed}", old.counts()), remove(&old)),
        trigger(&update_new, "UPDATE", format!("({}) AND {changed}", new.counts()), add(&new)),
    ]
}

/// PostgreSQL: one trigger function per table: remove(OLD), then add(NEW).
fn postgres_trigger(source: &Source) -> String {
    let b = DbBackend::Postgres;
    let old = Row { backend: b, source, rec: "OLD" };
    let new = Row { backend: b, source, rec: "NEW" };
    let table = source.table;
    let lock = |r: &Row| {
        if r.is_sessions() {
            format!(
                "PERFORM pg_advisory_xact_lock(hashtextextended('rollup:' || {}::text || ':' || {}::text, 0));\n      ",
                r.tenant(),
                r.coachee()
            )
        } else {
            String::new()
        }
    };
    format!(
        "CREATE OR REPLACE FUNCTION {table}_rollup() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NOT ({changed}) THEN
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    IF {old_counts} THEN
      {old_lock}{remove}
    END IF;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    IF {new_counts} THEN
      {new_lock}{add}
    END IF;
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION {table}_rollup() FROM PUBLIC;
DROP TRIGGER IF EXISTS {table}_rollup ON {table};
CREATE TRIGGER {table}_rollup AFTER INSERT OR UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION {table}_rollup();
",
        changed = changed(b, source),
        old_counts = old.counts(),
        new_counts = new.counts(),
        old_lock = lock(&old),
        new_lock = lock(&new),
        remove = remove(&old).join("\n      "),
        add = add(&new).join("\n      "),
    )
}

/// The rollups of the rows already there.
fn backfill(backend: DbBackend) -> Vec<String> {
    backfill_where(backend, "TRUE")
}

/// The rollups of the rows of the tenants `tenants` selects (a condition on `tenant_id`)
/// whose rollups are still empty: a bulk loader writes its rows with the rollup triggers
/// off (row triggers would cost it most of its time), then builds their rollups at once.
pub fn backfill_where(backend: DbBackend, tenants: &str) -> Vec<String> {
    let mut sql = Vec::new();
    for source in &SOURCES {
        let x = Row { backend, source, rec: "x" };
        sql.push(format!(
            "INSERT INTO rollup_coachee_months (tenant_id, source, month, coachee_id, total, hits) \
             SELECT x.tenant_id, '{s}', {m}, x.coachee_id, COUNT(*), SUM({h}) FROM {table} x \
             WHERE {counts} AND ({tenants}) \
             GROUP BY x.tenant_id, {m}, x.coachee_id;",
            s = source.name,
            m = x.month(),
            h = x.hit(),
            table = source.table,
            counts = x.counts(),
        ));
    }
    sql.push(format!(
        "INSERT INTO rollup_months (tenant_id, source, month, coachees, total, hits) \
         SELECT tenant_id, source, month, COUNT(*), SUM(total), SUM(hits) FROM rollup_coachee_months \
         WHERE ({tenants}) GROUP BY tenant_id, source, month;"
    ));
    sql.push(format!(
        "INSERT INTO rollup_active_spans (tenant_id, month, prev_month, coachees) \
         SELECT tenant_id, month, prev_month, COUNT(*) FROM ( \
           SELECT tenant_id, month, \
                  COALESCE(LAG(month) OVER (PARTITION BY tenant_id, coachee_id ORDER BY month), '') AS prev_month \
           FROM rollup_coachee_months WHERE source = 'sessions' AND ({tenants})) a \
         GROUP BY tenant_id, month, prev_month;"
    ));
    sql
}

/// Program metrics from the rollups: the same contract as migration 000007's version (which
/// scanned every row of the three sources).
const PROGRAM_MONTH_STATS: &str = r#"
-- Program metrics (POLICY.md section 7): per-month counts over the caller's tenant, for the
-- two roles that read them. Small groups never leave the function: when any month of any
-- source has 1 to 4 coachees, or no month has 5, the answer is the single row
-- ('suppressed', ...) and nothing else (the application's `decide` applies the same rule).
-- 'active' is the range's distinct coachees with a completed session: each is counted once,
-- at its first active month in the range, whose previous active month lies before it.
CREATE OR REPLACE FUNCTION app_program_month_stats(p_from text, p_to text)
RETURNS TABLE (source text, month text, coachees bigint, total bigint, hits bigint)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  WITH scope AS (
    SELECT app_tenant_id() AS tenant
    WHERE app_role() IN ('PROGRAM_ADMIN', 'EXECUTIVE') AND app_tenant_id() IS NOT NULL
  ), months AS (
    SELECT r.source, r.month, r.coachees, r.total, r.hits
    FROM rollup_months r JOIN scope ON r.tenant_id = scope.tenant
    WHERE (p_from IS NULL OR r.month >= p_from) AND (p_to IS NULL OR r.month <= p_to)
  ), stats AS (
    SELECT * FROM months
    UNION ALL
    SELECT 'active', NULL,
           (SELECT COALESCE(sum(a.coachees), 0)::bigint
            FROM rollup_active_spans a JOIN scope ON a.tenant_id = scope.tenant
            WHERE (p_from IS NULL OR a.month >= p_from) AND (p_to IS NULL OR a.month <= p_to)
              AND (a.prev_month < p_from OR (p_from IS NULL AND a.prev_month = ''))),
           (SELECT COALESCE(sum(m.total), 0)::bigint FROM months m WHERE m.source = 'sessions'),
           0::bigint
    FROM scope
  ), verdict AS (
    SELECT EXISTS (SELECT 1 FROM stats WHERE source <> 'active' AND coachees BETWEEN 1 AND 4)
        OR COALESCE((SELECT max(coachees) FROM stats WHERE source <> 'active'), 0) < 5 AS suppressed
  )
  SELECT st.* FROM stats st, verdict v WHERE NOT v.suppressed
  UNION ALL
  SELECT 'suppressed', NULL, 0::bigint, 0::bigint, 0::bigint FROM verdict v WHERE v.suppressed
$$;
"#;

fn postgres_security() -> String {
    let mut sql = String::new();
    for table in NEW_TABLES {
        let t = "tenant_id = (SELECT app_tenant_id())";
        // Only the trigger and report functions (as the owner) touch these tables.
        sql.push_str(&format!(
            "REVOKE ALL ON TABLE {table} FROM PUBLIC;\n\
             REVOKE ALL ON TABLE {table} FROM {APP_ROLE};\n\
             ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n\
             ALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n\
             DROP POLICY IF EXISTS {table}_tenant ON {table};\n\
             CREATE POLICY {table}_tenant ON {table} AS RESTRICTIVE FOR ALL TO {APP_ROLE} USING ({t}) WITH CHECK ({t});\n"
        ));
    }
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            table.create(manager).await?;
        }
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        for stmt in backfill(backend) {
            db.execute_unprepared(&stmt).await?;
        }
        for source in &SOURCES {
            match backend {
                DbBackend::Postgres => {
                    db.execute_unprepared(&postgres_trigger(source)).await?;
                }
                _ => {
                    for trigger in sqlite_triggers(source) {
                        db.execute_unprepared(&trigger).await?;
                    }
                }
            }
        }
        if backend == DbBackend::Postgres {
            db.execute_unprepared(&postgres_security()).await?;
            db.execute_unprepared(PROGRAM_MONTH_STATS).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        for source in &SOURCES {
            let table = source.table;
            if backend == DbBackend::Postgres {
                db.execute_unprepared(&format!(
                    "DROP TRIGGER IF EXISTS {table}_rollup ON {table};\nDROP FUNCTION IF EXISTS {table}_rollup();\n"
                ))
                .await?;
            } else {
                for name in trigger_names(source) {
                    db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {name};")).await?;
                }
            }
        }
        if backend == DbBackend::Postgres {
            // Migration 000007's scanning version.
            db.execute_unprepared(crate::m20261201_000007_row_policy::PROGRAM_MONTH_STATS).await?;
        }
        for table in NEW_TABLES.iter().rev() {
            manager.drop_table(Table::drop().table(*table).if_exists().take()).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_refer_to_their_own_row_only() {
        for source in &SOURCES {
            let pg = postgres_trigger(source);
            assert!(!pg.contains("{r}"), "{pg}");
            for t in sqlite_triggers(source) {
                assert!(!t.contains("{r}"), "{t}");
                // An insert trigger never sees OLD, a delete trigger never NEW.
                if t.contains("AFTER INSERT") {
                    assert!(!t.contains("OLD."), "{t}");
                }
                if t.contains("AFTER DELETE") {
                    assert!(!t.contains("NEW."), "{t}");
                }
            }
        }
    }
}
