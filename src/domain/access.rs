//! Denials: every refusal of a row or field goes through [`deny`], which records an audit
//! event (who, what kind of resource, why; never the denied data) and returns the error.

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;

use crate::authz::Resource;
use crate::ctx::Ctx;
use crate::domain::audit::AuditRecord;
use crate::domain::kinds::AuditOutcome;
use crate::error::{AppError, AppResult};

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

/// The refusal for an id the caller's tenant-scoped query did not find. On SQLite that query
/// has no relationship filter, so the row does not exist. On PostgreSQL row-level security
/// may have hidden a row of the caller's own tenant: `app_row_coachee` says whose it is, and
/// the caller gets the same FORBIDDEN / CONSENT_REQUIRED it would get on SQLite.
pub async fn refuse_missing(ctx: &Ctx, table: &'static str, id: Uuid, resource: Resource) -> AppResult<AppError> {
    if ctx.db().backend() != DbBackend::Postgres {
        return Ok(not_found(ctx, resource));
    }
    let stmt = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT app_row_coachee($1, $2) AS coachee",
        [Value::String(Some(table.to_owned())), Value::Uuid(Some(id))],
    );
    let row = ctx.db().conn().await?.query_one_raw(stmt).await?;
    let coachee: Option<Uuid> = match row {
        Some(r) => r.try_get("", "coachee")?,
        None => None,
    };
    Ok(match coachee {
        None => not_found(ctx, resource),
        Some(coachee) => match ctx.reach().await?.coachee(coachee, resource) {
            Err(refusal) => refusal.into_error(ctx, resource),
            // Visible to the application's rules yet hidden by the database's: refuse.
            Ok(()) => forbidden(ctx, resource, "hidden by row-level security"),
        },
    })
}
