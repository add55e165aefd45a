use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait, Value,
};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::DbScope;
use crate::error::{AppError, AppResult};

/// A request's transaction. On PostgreSQL `set_tenant_context()` runs before any other
/// statement, so row-level security sees the request's tenant, principal and role; the
/// settings are transaction-local and vanish at commit or rollback, so a pooled connection
/// never carries one request's tenant into the next.
///
/// The transaction opens with its first statement, not before: a request that needs no data
/// (a refused login, a request the limits turn away) never takes a pool connection. A slow
/// step that needs no data (password hashing) may [`pause`](TenantTx::pause) it: what it
/// holds commits, the connection goes back to the pool, and the next statement opens a new
/// transaction with the same context.
///
/// The transaction sits behind a mutex: resolvers of one request may run concurrently
/// (DataLoaders), but a transaction is one connection and runs one statement at a time.
/// Take the guard for one statement only (`.all(&*tx.conn().await?)`) and never hold it
/// across a call into other data functions.
#[derive(Debug)]
pub struct TenantTx {
    pool: DatabaseConnection,
    waiting: std::sync::Arc<std::sync::atomic::AtomicU64>,
    tx: Mutex<Slot>,
    scope: std::sync::Mutex<DbScope>,
    /// The request's clock, once set: applied to every transaction this one opens.
    clock: std::sync::Mutex<Option<DateTime<Utc>>>,
    backend: DbBackend,
    savepoints: AtomicU32,
    /// Savepoints open right now: a transaction inside one cannot be paused.
    open_savepoints: AtomicU32,
    /// SQLite: the request writes, so its transactions begin IMMEDIATE (taking the one write
    /// lock up front); otherwise DEFERRED, reading a WAL snapshot beside any writer.
    writes: std::sync::atomic::AtomicBool,
}

/// Counts a request among those waiting for a connection while it lives.
struct Waiting<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> Waiting<'a> {
    fn enter(count: &'a std::sync::atomic::AtomicU64) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
enum Slot {
    /// No statement yet (or paused): the next one begins a transaction.
    Idle,
    Open(DatabaseTransaction),
    /// Committed or rolled back for good.
    Finished,
}

impl TenantTx {
    pub(super) fn new(
        pool: &DatabaseConnection,
        waiting: &std::sync::Arc<std::sync::atomic::AtomicU64>,
        scope: DbScope,
        writes: bool,
    ) -> TenantTx {
        TenantTx {
            waiting: waiting.clone(),
            writes: std::sync::atomic::AtomicBool::new(writes),
            backend: pool.get_database_backend(),
            pool: pool.clone(),
            tx: Mutex::new(Slot::Idle),
            scope: std::sync::Mutex::new(scope),
            clock: std::sync::Mutex::new(None),
            savepoints: AtomicU32::new(0),
            open_savepoints: AtomicU32::new(0),
        }
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
        let slot = self.tx.lock().await;
        if let Slot::Open(tx) = &*slot {
            apply_scope(tx, scope).await?;
        }
        *self.scope.lock().unwrap_or_else(|p| p.into_inner()) = scope;
        Ok(())
    }

    /// PostgreSQL: the request's clock as the transaction-local setting `app.now`, which the
    /// break-glass policies compare expiries with (never the database's `now()`: the
    /// application's clock decides, and tests move it). Unset, those policies open nothing.
    pub async fn set_clock(&self, now: DateTime<Utc>) -> AppResult<()> {
        let slot = self.tx.lock().await;
        if let Slot::Open(tx) = &*slot {
            apply_clock(tx, now).await?;
        }
        *self.clock.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        Ok(())
    }

    /// The connection for one statement; the first one begins the transaction and sets its
    /// context.
    pub async fn conn(&self) -> AppResult<MappedMutexGuard<'_, DatabaseTransaction>> {
        let mut slot = self.tx.lock().await;
        match &*slot {
            Slot::Open(_) => {}
            Slot::Finished => return Err(AppError::internal("transaction already finished")),
            Slot::Idle => {
                let (pool, waiting) = (self.pool.clone(), self.waiting.clone());
                let immediate = self.backend == DbBackend::Sqlite && self.writes.load(Ordering::SeqCst);
                let begin = async move {
                    // Counted while the BEGIN waits for a connection, the request there or not.
                    let _waiting = Waiting::enter(&waiting);
                    if immediate {
                        let options = TransactionOptions {
                            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                            ..TransactionOptions::default()
                        };
                        pool.begin_with_options(options).await
                    } else {
                        pool.begin().await
                    }
                };
                // The BEGIN runs to its end whether or not the request is still there to take
                // the transaction (a dropped request hands it to a task of its own): sqlx 0.9
                // (transact-rs/sqlx#4393) does not roll back a BEGIN dropped in flight (a
                // client that disconnects), and the pool took that connection back inside a
                // transaction, which the next request then ran in. Dropped here, the finished
                // transaction rolls back.
                // (sea-orm acquires and begins in one call, so a request dropped while it
                // waits for a connection leaves that task waiting; it then costs the pool a
                // BEGIN and a ROLLBACK.)
                let tx = to_the_end(begin, "BEGIN").await?;
                apply_scope(&tx, self.scope()).await?;
                let clock = *self.clock.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(now) = clock {
                    apply_clock(&tx, now).await?;
                }
                *slot = Slot::Open(tx);
            }
        }
        MutexGuard::try_map(slot, |slot| match slot {
            Slot::Open(tx) => Some(tx),
            _ => None,
        })
        .map_err(|_| AppError::internal("transaction not open"))
    }

    /// Commits what the transaction holds and gives its connection back to the pool; the
    /// next statement opens a new transaction with the same context. For slow work that
    /// needs no data (password hashing), so that it never holds a connection. Refused
    /// inside [`atomic`](TenantTx::atomic): a savepoint cannot outlive its transaction.
    pub async fn pause(&self) -> AppResult<()> {
        if self.open_savepoints.load(Ordering::SeqCst) > 0 {
            return Err(AppError::internal("a transaction cannot pause inside a savepoint"));
        }
        let mut slot = self.tx.lock().await;
        match std::mem::replace(&mut *slot, Slot::Idle) {
            Slot::Open(tx) => commit_to_the_end(tx).await?,
            Slot::Idle => {}
            Slot::Finished => {
                *slot = Slot::Finished;
                return Err(AppError::internal("transaction already finished"));
            }
        }
        Ok(())
    }

    /// Call before the first write of a request that began as a reader. SQLite: a reading
    /// transaction cannot safely turn into a writing one (another connection may have
    /// written since its snapshot), so it commits here and the next statement begins a
    /// writing (IMMEDIATE) transaction. PostgreSQL: nothing to do.
    /// Returns whether it switched (the caller may then [`end_write`](TenantTx::end_write)).
    pub async fn prepare_write(&self) -> AppResult<bool> {
        if self.backend != DbBackend::Sqlite || self.writes.swap(true, Ordering::SeqCst) {
            return Ok(false);
        }
        if self.open_savepoints.load(Ordering::SeqCst) > 0 {
            return Ok(true);
        }
        let mut slot = self.tx.lock().await;
        if matches!(*slot, Slot::Open(_))
            && let Slot::Open(tx) = std::mem::replace(&mut *slot, Slot::Idle)
        {
            commit_to_the_end(tx).await?;
        }
        Ok(true)
    }

    /// SQLite: the write that [`prepare_write`](TenantTx::prepare_write) switched for is done;
    /// it commits, and the request reads on without holding the write lock.
    pub async fn end_write(&self) -> AppResult<()> {
        if self.backend != DbBackend::Sqlite || self.open_savepoints.load(Ordering::SeqCst) > 0 {
            return Ok(());
        }
        self.pause().await?;
        self.writes.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// After a failed transaction was rolled back: lets the request write what must survive
    /// its failure (its audit events) in a new transaction with the same context.
    pub async fn reopen(&self) {
        let mut slot = self.tx.lock().await;
        if matches!(*slot, Slot::Finished) {
            *slot = Slot::Idle;
        }
    }

    /// Runs `work` so that it either fully happens or leaves nothing behind (a savepoint),
    /// while the request's transaction, and what it already recorded, carries on.
    pub async fn atomic<T, F>(&self, work: F) -> AppResult<T>
    where
        F: Future<Output = AppResult<T>>,
    {
        let name = format!("sp_{}", self.savepoints.fetch_add(1, Ordering::Relaxed));
        self.conn().await?.execute_unprepared(&format!("SAVEPOINT {name}")).await?;
        self.open_savepoints.fetch_add(1, Ordering::SeqCst);
        let outcome = work.await;
        self.open_savepoints.fetch_sub(1, Ordering::SeqCst);
        match outcome {
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

    /// Commits the transaction, if one is open; either way the request's data access ends.
    pub async fn commit(&self) -> AppResult<()> {
        match std::mem::replace(&mut *self.tx.lock().await, Slot::Finished) {
            Slot::Open(tx) => commit_to_the_end(tx).await?,
            Slot::Idle => {}
            Slot::Finished => return Err(AppError::internal("transaction already finished")),
        }
        Ok(())
    }

    pub async fn rollback(&self) -> AppResult<()> {
        if let Slot::Open(tx) = std::mem::replace(&mut *self.tx.lock().await, Slot::Finished) {
            to_the_end(tx.rollback(), "ROLLBACK").await?;
        }
        Ok(())
    }
}

/// Runs a transaction's BEGIN, COMMIT or ROLLBACK so that it ends as it would have had the
/// request stayed (see [`TenantTx::conn`]): in the request's own task while the request
/// waits for it, and, if the request is dropped first, in a task of its own that finishes it
/// in the request's span. A COMMIT or ROLLBACK cut short had sea-orm queue a ROLLBACK behind
/// it, which PostgreSQL answers with a warning in the server's log ("there is no transaction
/// in progress").
///
/// Why not `tokio::spawn` up front: a spawned task is a hand-over to another worker thread
/// (a futex wake and a context switch) on every BEGIN and COMMIT of every request; handing
/// over only on drop costs nothing on the usual path (up to 8% more requests per second on the
/// program report and the client app, measured side by side).
async fn to_the_end<T: Send + 'static>(
    work: impl Future<Output = Result<T, sea_orm::DbErr>> + Send + 'static,
    what: &'static str,
) -> AppResult<T> {
    use tracing::Instrument;
    match FinishOnDrop(Some(Box::pin(work.in_current_span()))).await {
        Ok(done) => Ok(done?),
        // As a spawned task's panic was: the request fails with an internal error, and its
        // refusal is recorded as any other.
        Err(Panicked) => Err(AppError::internal(format!("the {what} panicked"))),
    }
}

/// The work of a [`FinishOnDrop`] panicked (the panic is reported by the panic hook).
struct Panicked;

/// A future polled in place that, dropped before it is ready, is moved into a task that
/// polls it to its end (its output is then dropped there: an unfinished BEGIN's
/// transaction rolls back). Outside a runtime nothing can finish it, and it is dropped as
/// any future would be. A panic while it is polled ends it: it is never polled again.
struct FinishOnDrop<F: Future + Send + 'static>(Option<std::pin::Pin<Box<F>>>)
where
    F::Output: Send + 'static;

impl<F: Future + Send + 'static> Future for FinishOnDrop<F>
where
    F::Output: Send + 'static,
{
    type Output = Result<F::Output, Panicked>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        // Out of `self` while it is polled: if the poll panics, the work is dropped here
        // rather than handed, broken, to a task by `drop`.
        let Some(mut work) = self.0.take() else {
            panic!("FinishOnDrop polled after it was ready");
        };
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.as_mut().poll(cx)));
        match polled {
            Ok(std::task::Poll::Ready(done)) => std::task::Poll::Ready(Ok(done)),
            Ok(std::task::Poll::Pending) => {
                self.0 = Some(work);
                std::task::Poll::Pending
            }
            Err(_) => std::task::Poll::Ready(Err(Panicked)),
        }
    }
}

impl<F: Future + Send + 'static> Drop for FinishOnDrop<F>
where
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let (Some(work), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                drop(work.await);
            });
        }
    }
}

async fn commit_to_the_end(tx: DatabaseTransaction) -> AppResult<()> {
    to_the_end(tx.commit(), "COMMIT").await
}

async fn apply_scope(tx: &DatabaseTransaction, scope: DbScope) -> AppResult<()> {
    if tx.get_database_backend() != DbBackend::Postgres {
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
    tx.execute_raw(stmt).await?;
    Ok(())
}

async fn apply_clock(tx: &DatabaseTransaction, now: DateTime<Utc>) -> AppResult<()> {
    if tx.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let stmt = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT set_config('app.now', $1, true)",
        [Value::String(Some(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))],
    );
    tx.execute_raw(stmt).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_dropped_before_it_is_ready_runs_to_its_end_in_a_task_of_its_own() {
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let ended = Arc::new(AtomicBool::new(false));
        let work = {
            let ended = ended.clone();
            async move {
                let _ = released.await;
                ended.store(true, Ordering::SeqCst);
                Ok::<(), sea_orm::DbErr>(())
            }
        };
        let mut waiting = Box::pin(to_the_end(work, "COMMIT"));
        assert!(futures_util::poll!(waiting.as_mut()).is_pending());
        drop(waiting); // the request is gone mid-statement
        release.send(()).expect("the work still waits");
        let started = std::time::Instant::now();
        while !ended.load(Ordering::SeqCst) && started.elapsed() < std::time::Duration::from_secs(5) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(ended.load(Ordering::SeqCst), "the work ran to its end");
    }

    #[tokio::test]
    async fn work_that_panics_is_an_internal_error_of_the_request() {
        let work = async {
            if true {
                panic!("a driver's bug");
            }
            Ok::<(), sea_orm::DbErr>(())
        };
        let outcome = to_the_end(work, "BEGIN").await;
        assert!(matches!(&outcome, Err(AppError::Internal(m)) if m.contains("BEGIN")), "{outcome:?}");
    }
}
