//! The database: one pool, and one way in: a [`TenantTx`], a transaction whose tenant
//! context is set before anything else runs. Nothing outside this module sees the pool.

pub mod combined;
pub mod entities;
pub mod scoped;
mod shared;
mod tenant_tx;

use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement,
    TryIntoModel,
};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::kinds::Role;
pub use shared::TokenTaken;
pub use tenant_tx::TenantTx;

/// Whose data a transaction may touch: the values `set_tenant_context()` receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DbScope {
    pub tenant_id: Option<Uuid>,
    pub principal_id: Option<Uuid>,
    pub role: Option<Role>,
}

impl DbScope {
    /// No tenant, no principal: on PostgreSQL every tenant table shows no rows.
    pub const ANONYMOUS: DbScope = DbScope { tenant_id: None, principal_id: None, role: None };
}

/// Inserts a row whose every column is set, without reading it back. A principal may write
/// rows that row-level security does not let it read (the AI's drafts, evidence packs and
/// proposals; a coach's transcript without TRANSCRIPT_SHARING), and `INSERT .. RETURNING`
/// would need read access to the new row.
pub async fn insert_unread<A, C>(conn: &C, row: A) -> AppResult<<A::Entity as EntityTrait>::Model>
where
    A: ActiveModelTrait + TryIntoModel<<A::Entity as EntityTrait>::Model> + Clone + Send,
    C: ConnectionTrait,
{
    <A::Entity as EntityTrait>::insert(row.clone()).exec_without_returning(conn).await?;
    Ok(row.try_into_model()?)
}

#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    /// Requests waiting for a connection (and its BEGIN) right now.
    waiting: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// PostgreSQL: a few connections of their own for the statements that run outside any
    /// request's transaction, beside it (the shared rate buckets, [`Db::take_rate_token`]).
    /// A request holding one of `conn`'s connections never waits for another of `conn`'s:
    /// sixteen requests doing so at once would each wait for the others until the acquire
    /// timeout. Connected lazily: a server that takes no token opens none.
    side: Option<DatabaseConnection>,
}

/// The pool right now, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub in_use: u64,
    pub idle: u64,
    pub waiting: u64,
    pub max: u64,
}

impl Db {
    /// Connects the server's pool. A SQLite file gets a few connections: in WAL mode readers
    /// run beside the one writer, so one slow request does not hold up the others (writers
    /// queue on SQLite's lock, waiting up to its busy timeout). In-memory SQLite is one
    /// connection (each connection would be its own database).
    pub async fn connect(url: &str) -> AppResult<Db> {
        Self::connect_with_statement_timeout(url, None).await
    }

    /// As [`Db::connect`], with PostgreSQL's `statement_timeout` on every connection of the
    /// pool (a startup parameter: no statement of its own, and a request's `SET LOCAL` could
    /// still lower it). SQLite has no such setting and ignores it.
    pub async fn connect_with_statement_timeout(url: &str, statement_timeout: Option<Duration>) -> AppResult<Db> {
        Self::connect_with(url, statement_timeout, None).await
    }

    /// As [`Db::connect_with_statement_timeout`], with `pool_size` connections at most on
    /// PostgreSQL (default 16; SQLite's pool is fixed).
    pub async fn connect_with(url: &str, statement_timeout: Option<Duration>, pool_size: Option<u32>) -> AppResult<Db> {
        if let Some(path) = sqlite_file(url) {
            private_file(&path)?;
        }
        let options = || {
            let mut opts = ConnectOptions::new(url.to_owned());
            opts.sqlx_logging(false).acquire_timeout(Duration::from_secs(10));
            // Generic plans: PostgreSQL kept judging a prepared statement's generic plan dearer
            // than a custom one (most of all under row-level security, with the policies'
            // InitPlans) and so planned every execution again. On the client app, 10,000
            // coachees, c=32, that was 445-572 req/s against 725-767 with generic plans. The
            // server's statements are equality and IN lookups on indexed keys, whose best plan
            // does not depend on the values.
            let mut settings = vec![("plan_cache_mode", "force_generic_plan".to_owned())];
            if let Some(timeout) = statement_timeout.filter(|t| !t.is_zero()) {
                settings.push(("statement_timeout", timeout.as_millis().to_string()));
            }
            opts.map_sqlx_postgres_opts(move |pg| pg.options(settings.iter().map(|(k, v)| (*k, v.as_str()))));
            opts
        };
        let mut opts = options();
        if url.starts_with("sqlite:") {
            let connections = if sqlite_file(url).is_some() { SQLITE_CONNECTIONS } else { 1 };
            opts.max_connections(connections).min_connections(1).idle_timeout(None).max_lifetime(None);
        } else {
            opts.max_connections(pool_size.unwrap_or(16)).min_connections(1);
        }
        let conn = sea_orm::Database::connect(opts).await?;
        let side = if conn.get_database_backend() == DbBackend::Postgres {
            let mut opts = options();
            // A short wait: a token call takes milliseconds, so a queue this long means a flood.
            opts.max_connections(SIDE_CONNECTIONS)
                .min_connections(0)
                .connect_lazy(true)
                .acquire_timeout(Duration::from_secs(2));
            Some(sea_orm::Database::connect(opts).await?)
        } else {
            None
        };
        if conn.get_database_backend() == DbBackend::Sqlite {
            // WAL lets readers of a file database proceed during a write; foreign keys are on
            // by default in sqlx, set here again so the guarantee is visible.
            conn.execute_unprepared("PRAGMA foreign_keys = ON").await?;
            if !url.contains(":memory:") && !url.contains("mode=memory") {
                conn.execute_unprepared("PRAGMA journal_mode = WAL").await?;
            }
        }
        let mut db = Db { conn, side, waiting: Default::default() };
        db.on_statement(|_| {});
        Ok(db)
    }

    /// Calls `observe` for every statement the pools run (the batching tests count
    /// statements with it); each is also counted against its request ([`crate::telemetry`]).
    pub fn on_statement(&mut self, observe: impl Fn(&sea_orm::Statement) + Send + Sync + 'static) {
        let observe = std::sync::Arc::new(observe);
        if let Some(side) = &mut self.side {
            let observe = observe.clone();
            side.set_metric_callback(move |info| {
                crate::telemetry::count_statement();
                observe(info.statement)
            });
        }
        self.conn.set_metric_callback(move |info| {
            crate::telemetry::count_statement();
            observe(info.statement)
        });
    }

    /// Connections in use and idle, and requests waiting for one (the main pool).
    pub fn pool_stats(&self) -> PoolStats {
        let waiting = self.waiting.load(std::sync::atomic::Ordering::Relaxed);
        let (size, idle, max) = match self.backend() {
            DbBackend::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                (pool.size(), pool.num_idle() as u32, pool.options().get_max_connections())
            }
            _ => {
                let pool = self.conn.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle() as u32, pool.options().get_max_connections())
            }
        };
        PoolStats { in_use: u64::from(size.saturating_sub(idle)), idle: u64::from(idle), waiting, max: u64::from(max) }
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// The request's transaction, with its tenant context; it begins with its first
    /// statement (see [`TenantTx`]).
    pub fn begin(&self, scope: DbScope) -> TenantTx {
        TenantTx::new(&self.conn, &self.waiting, scope, false)
    }

    /// Like [`begin`](Db::begin), for a request that writes (a mutation): on SQLite its
    /// transactions take the write lock as they begin.
    pub fn begin_writing(&self, scope: DbScope) -> TenantTx {
        TenantTx::new(&self.conn, &self.waiting, scope, true)
    }

    /// `/readyz`: the database answers.
    pub async fn ping(&self) -> AppResult<()> {
        self.conn.ping().await.map_err(AppError::from)
    }

    /// PostgreSQL: refuse to serve as a role that would bypass row-level security
    /// (superuser, BYPASSRLS) or that owns a table (owners bypass RLS unless forced,
    /// and can switch it off).
    pub async fn check_runtime_role(&self) -> AppResult<()> {
        if self.backend() != DbBackend::Postgres {
            return Ok(());
        }
        let stmt = Statement::from_string(
            DbBackend::Postgres,
            "SELECT r.rolname::text AS name, r.rolsuper AS superuser, r.rolbypassrls AS bypass, \
             (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
               WHERE c.relowner = r.oid AND n.nspname = 'public')::bigint AS owned \
             FROM pg_roles r WHERE r.rolname = current_user",
        );
        let row = self.conn.query_one_raw(stmt).await?.ok_or_else(|| AppError::internal("no current role"))?;
        let name: String = row.try_get("", "name")?;
        let superuser: bool = row.try_get("", "superuser")?;
        let bypass: bool = row.try_get("", "bypass")?;
        let owned: i64 = row.try_get("", "owned")?;
        if superuser || bypass || owned > 0 {
            return Err(AppError::Internal(format!(
                "refusing to serve as database role {name:?}: superuser={superuser}, bypassrls={bypass}, \
                 owns {owned} relations. Connect as the application role (coachgraph_app); run migrations \
                 through MIGRATION_DATABASE_URL."
            )));
        }
        Ok(())
    }

    /// For the CLI commands that run outside any request (migrate, seed-demo, export),
    /// never for request handling.
    pub(crate) fn raw(&self) -> &DatabaseConnection {
        &self.conn
    }
}

/// Connections to a SQLite file: readers beside the one writer.
const SQLITE_CONNECTIONS: u32 = 4;
/// PostgreSQL: connections for statements outside any request's transaction (one short
/// function call each).
const SIDE_CONNECTIONS: u32 = 4;

/// The file behind a file-backed SQLite URL.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

/// Coaching notes live in this file: it is created readable by its owner only (0600), and
/// an existing one is narrowed to that. SQLite gives its `-wal` and `-shm` files the
/// database file's mode; any already there are narrowed too.
fn private_file(path: &std::path::Path) -> AppResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let cannot = |e: std::io::Error| AppError::Internal(format!("cannot secure {}: {e}", path.display()));
        if !path.exists() {
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(cannot)?;
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let file = std::path::PathBuf::from(file);
            if file.exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(cannot)?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Test seam: the owner's view of the database (in-memory SQLite has only one). Request
/// handling never uses it; it is here so integration tests can inspect and tamper.
#[doc(hidden)]
pub mod testing {
    pub fn connection(db: &super::Db) -> &sea_orm::DatabaseConnection {
        &db.conn
    }
}
