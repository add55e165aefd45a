//! PostgreSQL: state that every server on the database shares and no tenant owns (migration
//! 000011): the rate buckets and the development signing key. The application role reaches
//! each through its SECURITY DEFINER function only, in a statement of its own, never in a
//! request's transaction.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use super::Db;
use crate::error::{AppError, AppResult};

/// What [`Db::take_rate_token`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTaken {
    pub admitted: bool,
    /// Refused, and the first refusal since the bucket last admitted.
    pub first_refusal: bool,
    /// Refused: whole seconds until a token is available again.
    pub retry_after_secs: u64,
}

impl Db {
    /// Whether this database holds the state replicas share: PostgreSQL. SQLite is owned by
    /// one process, which keeps its buckets itself.
    pub fn shares_state(&self) -> bool {
        self.side.is_some()
    }

    /// Takes a token of the bucket `(scope, key)` at `now` (the application's clock), with
    /// `per_minute` as capacity and refill rate, in one autocommit call of
    /// `app_take_rate_token`: the bucket row is locked for that call only, not for the
    /// request, so one tenant's concurrent requests do not queue behind each other. It runs
    /// on the side pool (see [`Db`]), beside whatever transaction the caller holds.
    pub async fn take_rate_token(
        &self,
        scope: &str,
        key: &str,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> AppResult<TokenTaken> {
        let side = self.side.as_ref().ok_or_else(|| AppError::internal("shared rate buckets need PostgreSQL"))?;
        let stmt = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT admitted, first_refusal, retry_after_secs FROM app_take_rate_token($1, $2, $3, $4)",
            [
                Value::from(scope.to_owned()),
                Value::from(key.to_owned()),
                Value::from(i32::try_from(per_minute).unwrap_or(i32::MAX)),
                Value::from(now),
            ],
        );
        let answer = match side.query_one_raw(stmt).await {
            // Every side connection busy (a flood of credential checks, say): the request is
            // refused as the server being busy, not failed.
            Err(sea_orm::DbErr::ConnectionAcquire(_)) => return Err(AppError::Busy { retry_after_secs: 1 }),
            other => other?,
        };
        let row = answer.ok_or_else(|| AppError::internal("no rate-bucket answer"))?;
        let retry: i32 = row.try_get("", "retry_after_secs")?;
        Ok(TokenTaken {
            admitted: row.try_get("", "admitted")?,
            first_refusal: row.try_get("", "first_refusal")?,
            retry_after_secs: u64::try_from(retry).unwrap_or(1),
        })
    }

    /// The development signing key kept in the database: `candidate` if no server stored one
    /// before, else the one stored (`app_development_key`; race-free between servers starting
    /// together). Every server on the database then signs and verifies with the same key.
    pub async fn development_key(&self, candidate: &[u8]) -> AppResult<Vec<u8>> {
        if self.backend() != DbBackend::Postgres {
            return Err(AppError::internal("a development key is kept in PostgreSQL only"));
        }
        let stmt = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT app_development_key($1) AS key",
            [Value::from(candidate.to_vec())],
        );
        let row = self.conn.query_one_raw(stmt).await.map_err(|e| {
            AppError::Internal(format!(
                "cannot read the development signing key from the database ({e}); migrate it \
                 (MIGRATION_DATABASE_URL) or set COACHGRAPH_JWT_SECRET"
            ))
        })?;
        let key: Option<Vec<u8>> = match row {
            Some(row) => row.try_get("", "key")?,
            None => None,
        };
        key.ok_or_else(|| AppError::internal("no development signing key"))
    }
}
