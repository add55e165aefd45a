//! Domain rules, each a function of the request's `Ctx` first.

pub mod access;
pub mod audit;
pub mod kinds;
