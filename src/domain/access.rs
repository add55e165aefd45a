//! Denials: every refusal of a row or field goes through [`deny`], which records an audit
//! event (who, what kind of resource, why; never the denied data) and returns the error.

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;

use sea_orm::{ColumnTrait, QueryFilter};

use crate::authz::{Action, Resource};
use crate::ctx::Ctx;
use crate::db::entities::users;
use crate::db::scoped;
use crate::domain::audit::AuditRecord;
use crate::domain::reach;
use crate::domain::reach::Refusal;
use crate::error::{AppError, AppResult};
use crate::kinds::AuditOutcome;
use crate::kinds::Role;

/// Records the denial of `action` on `resource` and hands back `error` for the caller to return.
pub fn deny(ctx: &Ctx, action: &str, resource: Resource, reason: &str, error: AppError) -> AppError {
    ctx.audit(AuditRecord::by(ctx, action, resource.as_str(), AuditOutcome::Denied).reason(reason).code(error.code()));
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
        Some(coachee) => match reach::of(ctx).await?.coachee(coachee, resource) {
            Err(refusal) => refusal.into_error(ctx, resource),
            // The relationship holds, and a row condition of the policy hides the row. For a
            // coachee, content not yet released to it (a draft, an unapproved L1 pack) does not
            // exist, as the application answers on SQLite; anyone else is refused.
            Ok(()) if ctx.role() == Some(Role::Coachee) => not_found(ctx, resource),
            Ok(()) => forbidden(ctx, resource, "hidden by the row policy"),
        },
    })
}

/// The audit action name of a matrix action.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Create => "CREATE",
        Action::Read => "READ",
        Action::Update => "UPDATE",
        Action::Delete => "DELETE",
    }
}

/// A relationship refusal of `action` on `resource`, audited.
pub fn refuse(ctx: &Ctx, action: Action, resource: Resource, refusal: Refusal) -> AppError {
    match refusal {
        Refusal::Forbidden => {
            deny(ctx, action_name(action), resource, "no relationship grants this", AppError::Forbidden)
        }
        Refusal::ConsentRequired => {
            deny(ctx, action_name(action), resource, "consent gate closed", AppError::ConsentRequired)
        }
    }
}

/// The caller may `action` `resource` about `coachee` (relationship and consent), or the
/// audited refusal. Row conditions (authorship, status) are the caller's to check.
pub async fn require(ctx: &Ctx, coachee: Uuid, resource: Resource, action: Action) -> AppResult<()> {
    reach::of(ctx).await?.may(coachee, resource, action).map_err(|refusal| refuse(ctx, action, resource, refusal))
}

/// A coachee of the caller's tenant, or NOT_FOUND (another tenant's id answers the same).
pub async fn require_coachee(ctx: &Ctx, id: Uuid, resource: Resource) -> AppResult<()> {
    let found = scoped::select::<users::Entity>(ctx.tenant_id()?)
        .filter(users::Column::Id.eq(id))
        .filter(users::Column::Role.eq(Role::Coachee))
        .one(&*ctx.db().conn().await?)
        .await?;
    found.map(|_| ()).ok_or_else(|| not_found(ctx, resource))
}
