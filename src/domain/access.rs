//! Denials: every refusal of a row or field goes through [`deny`], which records an audit
//! event (who, what kind of resource, why; never the denied data) and returns the error.

use crate::authz::Resource;
use crate::ctx::Ctx;
use crate::domain::audit::AuditRecord;
use crate::domain::kinds::AuditOutcome;
use crate::error::AppError;

/// Records the denial of `action` on `resource` and hands back `error` for the caller to return.
pub fn deny(ctx: &Ctx, action: &str, resource: Resource, reason: &str, error: AppError) -> AppError {
    ctx.audit(AuditRecord::by(ctx, action, resource.as_str(), AuditOutcome::Denied).reason(reason));
    error
}

/// An id that names nothing this principal can see: nonexistent and another tenant's ids
/// answer the same, and both are audited.
pub fn not_found(ctx: &Ctx, resource: Resource) -> AppError {
    deny(ctx, "READ", resource, "no visible row with this id", AppError::NotFound)
}

pub fn forbidden(ctx: &Ctx, resource: Resource, reason: &str) -> AppError {
    deny(ctx, "READ", resource, reason, AppError::Forbidden)
}

pub fn consent_required(ctx: &Ctx, resource: Resource, reason: &str) -> AppError {
    deny(ctx, "READ", resource, reason, AppError::ConsentRequired)
}
