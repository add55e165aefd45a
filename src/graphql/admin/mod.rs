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

use super::schema::Catalog;

pub fn declare(c: &mut Catalog) {
    metrics::declare(c);
    operations::declare(c);
    own::declare(c);
}
