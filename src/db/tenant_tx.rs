use std::sync::atomic::{AtomicU32, Ordering};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement, TransactionTrait, Value,
};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::DbScope;
use crate::error::{AppError, AppResult};

/// A request's transaction. On PostgreSQL `set_tenant_context()` runs before any other
/// statement, so row-level security sees the request's tenant, principal and role; the
/// settings are transaction-local and vanish at commit or rollback, so a pooled connection
/// never carries one request's tenant into the next.
///
/// The transaction sits behind a mutex: resolvers of one request may run concurrently
/// (DataLoaders), but a transaction is one connection and runs one statement at a time.
/// Take the guard for one statement only (`.all(&*tx.conn().await?)`) and never hold it
/// across a call into other data functions.
#[derive(Debug)]
pub struct TenantTx {
    tx: Mutex<Option<DatabaseTransaction>>,
    scope: std::sync::Mutex<DbScope>,
    backend: DbBackend,
    savepoints: AtomicU32,
}

impl TenantTx {
    pub(super) async fn begin(conn: &DatabaseConnection, scope: DbScope) -> AppResult<TenantTx> {
        let tx = conn.begin().await?;
        let this = TenantTx {
            backend: tx.get_database_backend(),
            tx: Mutex::new(Some(tx)),
            scope: std::sync::Mutex::new(scope),
            savepoints: AtomicU32::new(0),
        };
        this.apply_scope(scope).await?;
        Ok(this)
    }

    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    pub fn scope(&self) -> DbScope {
        *self.scope.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Narrows or switches the context inside the transaction. Login uses it once it
    /// knows whose account it is looking at; nothing else should.
    pub async fn set_scope(&self, scope: DbScope) -> AppResult<()> {
        self.apply_scope(scope).await?;
        *self.scope.lock().unwrap_or_else(|p| p.into_inner()) = scope;
        Ok(())
    }

    async fn apply_scope(&self, scope: DbScope) -> AppResult<()> {
        if self.backend != DbBackend::Postgres {
            return Ok(());
        }
        let stmt = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_tenant_context($1, $2, $3)",
            [
                Value::Uuid(scope.tenant_id),
                Value::Uuid(scope.principal_id),
                Value::String(scope.role.map(|r| r.as_str().to_owned())),
            ],
        );
        self.conn().await?.execute_raw(stmt).await?;
        Ok(())
    }

    /// PostgreSQL: the request's clock as the transaction-local setting `app.now`, which the
    /// break-glass policies compare expiries with (never the database's `now()`: the
    /// application's clock decides, and tests move it). Unset, those policies open nothing.
    pub async fn set_clock(&self, now: chrono::DateTime<chrono::Utc>) -> AppResult<()> {
        if self.backend != DbBackend::Postgres {
            return Ok(());
        }
        let stmt = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config('app.now', $1, true)",
            [Value::String(Some(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))],
        );
        self.conn().await?.execute_raw(stmt).await?;
        Ok(())
    }

    /// The connection for one statement.
    pub async fn conn(&self) -> AppResult<MappedMutexGuard<'_, DatabaseTransaction>> {
        let guard = self.tx.lock().await;
        MutexGuard::try_map(guard, |tx| tx.as_mut()).map_err(|_| AppError::internal("transaction already finished"))
    }

    /// Runs `work` so that it either fully happens or leaves nothing behind (a savepoint),
    /// while the request's transaction, and what it already recorded, carries on.
    pub async fn atomic<T, F>(&self, work: F) -> AppResult<T>
    where
        F: Future<Output = AppResult<T>>,
    {
        let name = format!("sp_{}", self.savepoints.fetch_add(1, Ordering::Relaxed));
        self.conn().await?.execute_unprepared(&format!("SAVEPOINT {name}")).await?;
        match work.await {
            Ok(value) => {
                self.conn().await?.execute_unprepared(&format!("RELEASE SAVEPOINT {name}")).await?;
                Ok(value)
            }
            Err(e) => {
                self.conn().await?.execute_unprepared(&format!("ROLLBACK TO SAVEPOINT {name}")).await?;
                self.conn().await?.execute_unprepared(&format!("RELEASE SAVEPOINT {name}")).await?;
                Err(e)
            }
        }
    }

    pub async fn commit(&self) -> AppResult<()> {
        let tx = self.tx.lock().await.take().ok_or_else(|| AppError::internal("transaction already finished"))?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(&self) -> AppResult<()> {
        if let Some(tx) = self.tx.lock().await.take() {
            tx.rollback().await?;
        }
        Ok(())
    }
}
