//! Several independent reads in one round trip.
//!
//! The relations one level of a GraphQL answer needs (a page of coachees' goals, notes and
//! sessions) are independent `SELECT`s. On PostgreSQL they go to the server as one
//! statement: each read becomes a scalar subquery that aggregates its rows into a JSON
//! array (`json_agg` over the read, which keeps the read's order), and the rows are decoded
//! straight into the entity models. Row-level security applies to each read as it would
//! alone: the subqueries are the same statements.
//!
//! On SQLite, which is in-process (a statement costs no round trip) and stores UUIDs as
//! blobs that its JSON functions refuse, each read stays its own statement, run when its
//! rows are taken.

use chrono::{DateTime, FixedOffset, Utc};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement, Value};
use serde::de::DeserializeOwned;

use super::TenantTx;
use crate::error::{AppError, AppResult};

/// Reads to run together.
#[derive(Debug, Default)]
pub struct Reads {
    parts: Vec<Statement>,
    /// Each read's order, as `ORDER BY` text over its output columns: `json_agg` keeps the
    /// order of a sorted subquery only "usually", so the aggregate states it.
    orders: Vec<Option<String>>,
}

/// One read of a [`Reads`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadId(usize);

impl Reads {
    /// Adds a read whose rows come in `order` (`ORDER BY` text over its output columns,
    /// e.g. `created_at ASC, id ASC`), if their order matters.
    pub fn add(&mut self, read: Statement, order: Option<String>) -> ReadId {
        self.parts.push(read);
        self.orders.push(order);
        ReadId(self.parts.len() - 1)
    }

    /// PostgreSQL: runs every read, as one statement when there are several. SQLite:
    /// nothing yet (each read runs when [`Ran::rows`] takes it).
    pub async fn run(self, tx: &TenantTx) -> AppResult<Ran<'_>> {
        let combined = match tx.backend() {
            DbBackend::Postgres if self.parts.len() > 1 => combined_sql(&self.parts, &self.orders),
            _ => None,
        };
        let Some((sql, values)) = combined else {
            return Ok(Ran { tx, parts: self.parts.into_iter().map(Part::Pending).collect() });
        };
        let row = tx
            .conn()
            .await?
            .query_one_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
            .await?
            .ok_or_else(|| AppError::internal("a combined read returned no row"))?;
        let mut parts = Vec::with_capacity(self.parts.len());
        for i in 0..self.parts.len() {
            let json: String = row.try_get_by_index(i)?;
            parts.push(Part::Json(json));
        }
        Ok(Ran { tx, parts })
    }
}

/// The results of [`Reads::run`].
pub struct Ran<'a> {
    tx: &'a TenantTx,
    parts: Vec<Part>,
}

enum Part {
    /// A JSON array of the read's rows (PostgreSQL, combined).
    Json(String),
    /// Not run yet (a lone read, or SQLite).
    Pending(Statement),
    Taken,
}

impl Ran<'_> {
    /// The rows of one read, in its order; each read can be taken once.
    pub async fn rows<M>(&mut self, id: ReadId) -> AppResult<Vec<M>>
    where
        M: FromQueryResult + DeserializeOwned + Send + Sync,
    {
        let part = self.parts.get_mut(id.0).ok_or_else(|| AppError::internal("no such read"))?;
        match std::mem::replace(part, Part::Taken) {
            Part::Json(json) => serde_json::from_str(&json).map_err(AppError::internal),
            Part::Pending(read) => Ok(M::find_by_statement(read).all(&*self.tx.conn().await?).await?),
            Part::Taken => Err(AppError::internal("a read taken twice")),
        }
    }
}

/// Decodes a timestamp of a combined read: PostgreSQL writes `timestamptz` in JSON as RFC 3339
/// (`2026-11-20T10:00:00.123456+00:00`), which chrono's RFC 3339 parser reads several times
/// faster than the general `FromStr` its serde impl uses (that parse was 4% of the server's
/// CPU on the coach dashboard). Anything else falls back to `FromStr`. For
/// `#[serde(deserialize_with = "..")]` on the models the combined reads decode.
pub fn utc<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    d.deserialize_str(UtcVisitor)
}

/// [`utc`] for a nullable column.
pub fn utc_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    d.deserialize_option(OptionalUtcVisitor)
}

struct UtcVisitor;

impl serde::de::Visitor<'_> for UtcVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an RFC 3339 timestamp")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        DateTime::parse_from_rfc3339(text)
            .or_else(|_| text.parse::<DateTime<FixedOffset>>())
            .map(|t| t.with_timezone(&Utc))
            .map_err(E::custom)
    }
}

struct OptionalUtcVisitor;

impl<'de> serde::de::Visitor<'de> for OptionalUtcVisitor {
    type Value = Option<DateTime<Utc>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an RFC 3339 timestamp or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        utc(d).map(Some)
    }
}

/// `SELECT (SELECT COALESCE(json_agg(read ORDER BY ..), '[]') FROM (<read 0>) AS read)::text,
/// ...`, with each read's `$n` placeholders renumbered after the previous reads'. `None`
/// when a read's placeholders are not exactly `$1..$n` for its `n` values (SQL this scanner
/// does not understand): then each read runs on its own.
fn combined_sql(parts: &[Statement], orders: &[Option<String>]) -> Option<(String, Vec<Value>)> {
    let mut columns = Vec::with_capacity(parts.len());
    let mut values = Vec::new();
    for (part, order) in parts.iter().zip(orders) {
        let own = part.values.as_ref().map_or(0, |v| v.0.len());
        let (sql, highest) = shift_placeholders(&part.sql, values.len());
        if highest != values.len() + own {
            return None;
        }
        let order = order.as_ref().map(|o| format!(" ORDER BY {o}")).unwrap_or_default();
        columns.push(format!(
            "(SELECT COALESCE(json_agg(coachgraph_read{order}), '[]') FROM ({sql}) AS coachgraph_read)::text"
        ));
        values.extend(part.values.iter().flat_map(|v| v.0.iter().cloned()));
    }
    Some((format!("SELECT {}", columns.join(", ")), values))
}

/// Adds `offset` to every `$n` placeholder outside quoted literals and identifiers; returns
/// the new text and the highest placeholder number in it (`offset` when there is none).
fn shift_placeholders(sql: &str, offset: usize) -> (String, usize) {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut highest = offset;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut digits = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d);
                }
                let n = digits.parse::<usize>().unwrap_or(0) + offset;
                highest = highest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            None => out.push(c),
        }
    }
    (out, highest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Stamped {
        #[serde(deserialize_with = "utc")]
        at: DateTime<Utc>,
        #[serde(default, deserialize_with = "utc_opt")]
        done: Option<DateTime<Utc>>,
    }

    #[test]
    fn timestamps_decode_as_postgresql_writes_them_in_json() {
        let expected = |text: &str| text.parse::<DateTime<Utc>>().expect("a timestamp");
        for (json, at, done) in [
            (r#"{"at": "2026-11-20T10:00:00+00:00", "done": null}"#, "2026-11-20T10:00:00Z", None),
            (
                r#"{"at": "2026-11-20T10:00:00.123456+01:00", "done": "2026-11-21T08:30:00.5+00:00"}"#,
                "2026-11-20T09:00:00.123456Z",
                Some("2026-11-21T08:30:00.5Z"),
            ),
            // Not RFC 3339 (a space for the `T`): read by the general parser.
            (r#"{"at": "2026-11-20 10:00:00+00:00"}"#, "2026-11-20T10:00:00Z", None),
        ] {
            let row: Stamped = serde_json::from_str(json).expect(json);
            assert_eq!(row.at, expected(at), "{json}");
            assert_eq!(row.done, done.map(expected), "{json}");
        }
        assert!(serde_json::from_str::<Stamped>(r#"{"at": "yesterday"}"#).is_err());
        assert!(serde_json::from_str::<Stamped>(r#"{"at": null}"#).is_err());
    }

    #[test]
    fn placeholders_are_renumbered_outside_quotes_only() {
        assert_eq!(
            shift_placeholders(r#"SELECT "a$1" FROM t WHERE x = $1 AND y = '$2' AND z IN ($2, $10)"#, 3),
            (r#"SELECT "a$1" FROM t WHERE x = $4 AND y = '$2' AND z IN ($5, $13)"#.to_owned(), 13)
        );
        assert_eq!(shift_placeholders("x = 1", 4), ("x = 1".to_owned(), 4));
    }

    fn read(sql: &str, v: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(DbBackend::Postgres, sql, v)
    }

    #[test]
    fn reads_are_combined_in_their_order_with_their_values_in_order() {
        let (sql, values) = combined_sql(
            &[
                read("SELECT * FROM a WHERE x = $1 AND y = $2", vec![1i32.into(), 2i32.into()]),
                read("SELECT * FROM b WHERE x = $1", vec![3i32.into()]),
            ],
            &[Some("at DESC, id ASC".to_owned()), None],
        )
        .expect("combined");
        assert_eq!(
            sql,
            "SELECT (SELECT COALESCE(json_agg(coachgraph_read ORDER BY at DESC, id ASC), '[]') \
             FROM (SELECT * FROM a WHERE x = $1 AND y = $2) AS coachgraph_read)::text, \
             (SELECT COALESCE(json_agg(coachgraph_read), '[]') FROM (SELECT * FROM b WHERE x = $3) AS coachgraph_read)::text"
        );
        assert_eq!(values, vec![Value::from(1i32), Value::from(2i32), Value::from(3i32)]);
    }

    #[test]
    fn a_read_whose_placeholders_do_not_match_its_values_is_not_combined() {
        let parts = [read("SELECT 1 WHERE x = $1", vec![1i32.into()]), read("SELECT $$a$$ WHERE y = $1", vec![])];
        assert_eq!(combined_sql(&parts, &[None, None]), None);
    }
}
