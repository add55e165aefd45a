//! coachgraph: a GraphQL API for coaching platforms in which every field reaches exactly
//! the principals the access policy allows.
//!
//! Layers, outside in (checked by `layering.rs`: an upward `crate::` import fails a test):
//! - [`http`] (credentials, cookies, CSRF) and [`app`] (the server's state);
//! - [`graphql`]: per-role schemas declared from tagged fields; no SQL;
//! - [`domain`] (rules and reads, `fn(ctx, ..)`), with [`identity`] (passwords, tokens,
//!   sessions; [`identity::resolve_ctx`] is the one place a request becomes a [`ctx::Ctx`]),
//!   [`ops`] (operator tools, no request) and [`seed`];
//! - [`ctx`]: the request (who asks, its transaction, what it queued); writes nothing;
//! - [`authz`]: the policy as pure functions: tags, the matrix, the row policy
//!   ([`authz::rows`]); [`db`]: tenant-scoped transactions over SeaORM entities, PostgreSQL
//!   row-level security underneath; [`kinds`]: the vocabulary. These three are leaves.

pub mod app;
pub mod authz;
pub mod cli;
pub mod clock;
pub mod config;
pub mod ctx;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod identity;
pub mod kinds;
pub mod ops;
pub mod seed;
pub mod telemetry;

#[cfg(test)]
mod layering;
