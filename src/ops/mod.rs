//! Operator tools: work that runs outside any request, through the owner connection, for
//! the command line (`coachgraph verify-audit`, `coachgraph purge`). They sit beside
//! `domain` (they may use its rules and the database) but take no request `Ctx`.

pub mod audit;
