//! The integration suite, one binary (one build, one process) with a module per concern.
//! Every test that touches data runs on SQLite and on PostgreSQL (`both_backends!`).

#[path = "../common/mod.rs"]
mod common;

mod admin_queries;
mod auth;
mod batching;
mod migrations_run;
mod rls;
mod rows;
mod schema_files;
mod viewer;
mod visibility;
