//! Domain rules, each a function of the request's `Ctx` first.

pub mod access;
pub mod admin;
pub mod ai_log;
pub mod audit;
pub mod export;
pub mod kinds;
pub mod metrics;
pub mod reach;
