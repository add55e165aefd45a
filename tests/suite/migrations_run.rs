//! Migrations apply to an empty database and re-apply as a no-op, on both backends.

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database};

use crate::common::*;

async fn tables(conn: &sea_orm::DatabaseConnection) -> Vec<String> {
    let sql = match conn.get_database_backend() {
        sea_orm::DbBackend::Postgres => "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        _ => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1",
    };
    conn.query_all_raw(sea_orm::Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("tables")
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("name"))
        .collect()
}

async fn check(conn: &sea_orm::DatabaseConnection) {
    Migrator::up(conn, None).await.expect("first run");
    let first = tables(conn).await;
    for table in migrations::tables() {
        assert!(first.iter().any(|t| t == table), "table {table} missing after migration");
    }
    Migrator::up(conn, None).await.expect("second run");
    assert_eq!(tables(conn).await, first, "a re-run changes nothing");
    assert!(Migrator::get_pending_migrations(conn).await.expect("pending").is_empty());
}

#[tokio::test]
async fn migrations_apply_and_reapply_on_sqlite() {
    let conn = Database::connect("sqlite::memory:").await.expect("sqlite");
    check(&conn).await;
}

#[tokio::test]
async fn migrations_apply_and_reapply_on_postgres() {
    let Some(pg) = create_pg_database().await else {
        return;
    };
    let conn = Database::connect(pg.owner_url()).await.expect("owner");
    check(&conn).await;
}
