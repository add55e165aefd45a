//! Operational queries: program metrics (aggregates), the audit log, tenant settings,
//! platform configuration, account status and break-glass requests for administrators;
//! and the caller's own integration tokens, AI access log, access notices and consents.
//!
//! Every type here is declared once with its tag and matrix resource; which of it a role
//! sees is decided by the per-role schema builder, and the resolvers check the grant's
//! scope again before they touch a row ([`crate::domain::admin`], [`crate::domain::metrics`]).
//!
//! Parent values (for anyone returning these types, e.g. from mutations): `ProgramMetrics`
//! is [`crate::domain::metrics::ProgramMetrics`], `AuditEvent` an `audit_events::Model`,
//! `TenantSettings` a `tenant_settings::Model`, `SystemConfig` [`SystemConfigView`],
//! `AccountStatus`, `BreakGlassRequest`, `IntegrationToken`, `AiAccessLogEntry`,
//! `AccessNotice` and `Consent` the view structs of [`crate::domain::admin`].

mod metrics;
mod operations;
mod own;

pub use operations::{ConfigEntryView, SystemConfigView};

use async_graphql::dynamic::ResolverContext;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::schema::Catalog;
use crate::error::{AppError, AppResult};

pub fn declare(c: &mut Catalog) {
    metrics::declare(c);
    operations::declare(c);
    own::declare(c);
}

/// An optional string argument (`null` and absent are the same).
fn string_arg(rc: &ResolverContext<'_>, name: &str) -> AppResult<Option<String>> {
    match rc.args.get(name) {
        Some(v) if !v.is_null() => {
            v.string().map(|s| Some(s.to_owned())).map_err(|_| AppError::bad_input(format!("{name} must be a string")))
        }
        _ => Ok(None),
    }
}

/// An optional `ID` argument; a malformed id is `BAD_USER_INPUT`.
fn id_arg(rc: &ResolverContext<'_>, name: &str) -> AppResult<Option<Uuid>> {
    string_arg(rc, name)?
        .map(|s| Uuid::parse_str(&s).map_err(|_| AppError::bad_input(format!("{name} is not a valid id"))))
        .transpose()
}

/// An optional `DateTime` argument in RFC 3339.
fn datetime_arg(rc: &ResolverContext<'_>, name: &str) -> AppResult<Option<DateTime<Utc>>> {
    string_arg(rc, name)?
        .map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| AppError::bad_input(format!("{name} is not an RFC 3339 date-time")))
        })
        .transpose()
}
