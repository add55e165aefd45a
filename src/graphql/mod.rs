//! The GraphQL API: declarations per domain, assembled into one [`Catalog`], from which
//! the per-role schemas are built.

pub mod admin;
pub mod breakglass;
pub mod coaching;
pub mod consent;
pub mod decl;
pub mod identity;
pub mod mutation;
pub mod onboarding;
pub mod operations;
pub mod paging;
pub mod parsed;
pub mod perimeter;
pub mod persisted;
pub mod schema;
pub mod users;
pub mod visibility;

use crate::authz::VisibilityTag;
use crate::kinds::{AiLevel, ClientKind, ConsentKind, EvidenceLevel, InsightStatus, Role, SessionStatus};
pub use schema::{Audience, Catalog, SchemaOptions, Schemas};

/// Every declaration of the API.
pub fn catalog() -> Catalog {
    let mut c = Catalog::default();
    c.enum_type::<VisibilityTag>("VisibilityTag");
    c.enum_type::<Role>("Role");
    c.enum_type::<ConsentKind>("ConsentKind");
    c.enum_type::<AiLevel>("AiLevel");
    c.enum_type::<InsightStatus>("InsightStatus");
    c.enum_type::<EvidenceLevel>("EvidenceLevel");
    c.enum_type::<SessionStatus>("SessionStatus");
    c.described_enum::<ClientKind>(
        "ClientKind",
        "BROWSER: the session rides in cookies (coach dashboard). DEVICE: bearer token plus a refresh token \
         (mobile app, reporting jobs); no cookies.",
    );
    c.scalars = vec!["DateTime", "Date"];
    paging::declare_page_info(&mut c);
    identity::declare(&mut c);
    users::declare(&mut c);
    coaching::declare(&mut c);
    admin::declare(&mut c);
    consent::declare(&mut c);
    breakglass::declare(&mut c);
    operations::declare(&mut c);
    onboarding::declare(&mut c);
    c
}

/// RFC 3339 with microseconds and `Z`: the wire form of `DateTime`.
pub fn datetime(t: chrono::DateTime<chrono::Utc>) -> async_graphql::Value {
    // `to_rfc3339_opts` writes the digits directly; `format` would parse a pattern per value.
    async_graphql::Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

pub fn uuid(id: uuid::Uuid) -> async_graphql::Value {
    async_graphql::Value::String(id.to_string())
}
