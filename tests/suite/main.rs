//! The integration suite, one binary (one build, one process) with a module per concern.
//! Every test that touches data runs on SQLite and on PostgreSQL (`both_backends!`).

#[path = "../common/mod.rs"]
mod common;

mod abuse;
mod admin_queries;
mod audit_chain;
mod auth;
mod batching;
mod break_glass;
mod consent;
mod content_writes;
mod data_rights;
mod devices;
mod golden_answers;
mod http_conformance;
mod limits;
mod metric_rollups;
mod migrations_run;
mod onboarding;
mod operability;
mod operations;
mod paging;
mod persisted;
mod playground;
mod property;
mod replicas;
mod rls;
mod rows;
mod schema_files;
mod seed_scale;
mod spec_vendored;
mod viewer;
mod visibility;
mod walls_agree;
