//! Domain rules, each a function of the request's `Ctx` first.

pub mod access;
pub mod admin;
pub mod ai_log;
pub mod audit;
pub mod breakglass;
pub mod consent;
pub mod content;
pub mod export;
pub mod loaders;
pub use crate::kinds;
pub mod metrics;
pub mod onboarding;
pub mod operations;
pub mod paging;
pub mod rate_limit;
pub mod reach;
pub mod reads;
pub mod request;
pub mod rights;
pub mod tokens;
