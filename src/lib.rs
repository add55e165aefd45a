//! coachgraph: a GraphQL API for coaching platforms in which every field reaches exactly
//! the principals the access policy allows.
//!
//! Layers, outside in: [`http`] (credentials, cookies, CSRF) -> [`identity`] (one place
//! that turns a request into a [`ctx::Ctx`]) -> [`graphql`] (per-role schemas declared
//! from tagged fields) -> [`domain`] (rules, `fn(ctx, ..)`) -> [`db`] (tenant-scoped
//! transactions; PostgreSQL row-level security underneath). [`authz`] holds the policy
//! as pure functions.

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
pub mod seed;
