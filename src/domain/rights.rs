//! Data rights (POLICY.md section 10): a coachee or a coach deletes its own account
//! (`deleteMyAccount`, password re-entered), a coach deletes a coachee it coaches
//! (`deleteCoachee`). Deletion is immediate and reaches every table:
//!
//! - Deleting the `users` row removes, through the foreign keys (all `ON DELETE CASCADE`),
//!   every row that references the person: assignments, sessions (and with them their
//!   transcripts, insights, evidence packs, action items and feedback), goals, notes,
//!   consents and their history, AI access log and proposals, access notices, break-glass
//!   requests and grants about it, integration tokens and auth sessions (so every token of
//!   the person is refused from the next request on). Deleting a COACH therefore also
//!   deletes the sessions it held and the content it authored for its coachees: those rows
//!   name the coach and cannot outlive it in this data model.
//! - Columns that name a person without a foreign key are cleared first
//!   ([`forget_references`]): nullable ones are set to NULL (`insights.approved_by`,
//!   `break_glass_requests.approved_by` / `revoked_by`), NOT NULL ones get the nil UUID
//!   meaning "a deleted principal" (`access_notices.actor_id`, `break_glass_grants.approved_by`,
//!   `consent_history.changed_by`).
//! - Audit events are kept: the trail is append-only and hash-chained, and it is what shows
//!   that the deletion happened. They hold no content of the person (events record who,
//!   what kind of thing, why; never data), only its id as `actor_id` (and in the reason of
//!   events about it), an identifier that after the deletion resolves to nothing. They leave
//!   the database through retention (`coachgraph purge`).
//!
//! The deletion itself is recorded as one `USER_DELETED` event naming the deleted id only.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement, Value};
use uuid::Uuid;

use crate::authz::{Action, Resource, Scope, matrix};
use crate::ctx::{CookieEffect, Ctx};
use crate::db::entities::{access_notices, break_glass_grants, break_glass_requests, consent_history, insights, users};
use crate::db::scoped;
use crate::domain::access;
use crate::domain::audit::AuditRecord;
use crate::domain::reach;
use crate::error::{AppError, AppResult};
use crate::identity::credential::{self, CredentialGuard, Proof};
use crate::identity::password;
use crate::kinds::{AuditOutcome, Role};

pub const USER_DELETED: &str = "USER_DELETED";
const DELETE_ACCOUNT: &str = "DELETE_ACCOUNT";
const DELETE_COACHEE: &str = "DELETE_COACHEE";

/// `deleteMyAccount`: the caller (COACHEE or COACH) proves its password again, then it and
/// everything about it is deleted. A wrong password is INVALID_CREDENTIALS, audited.
pub async fn delete_my_account(ctx: &Ctx, guard: &CredentialGuard, password: &str) -> AppResult<()> {
    const R: Resource = Resource::OwnProfile;
    ctx.require_session(DELETE_ACCOUNT)?;
    let p = *ctx.require()?;
    if matrix::grant(p.role, R, Action::Delete).map(|g| g.scope) != Some(Scope::Own) {
        return Err(access::deny(ctx, DELETE_ACCOUNT, R, "no delete grant on the own profile", AppError::Forbidden));
    }
    let tenant = ctx.tenant_id()?;
    let me = scoped::select::<users::Entity>(tenant)
        .filter(users::Column::Id.eq(p.user_id))
        .one(&*ctx.db().conn().await?)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if password.len() > password::MAX_PASSWORD_LEN {
        return Err(access::deny(ctx, DELETE_ACCOUNT, R, "wrong password", AppError::InvalidCredentials));
    }
    guard.admit(ctx).await?;
    // A wrong password counts like a failed login (and is audited as this denial).
    let failure = AuditRecord::by(ctx, DELETE_ACCOUNT, R.as_str(), AuditOutcome::Denied).reason("wrong password");
    if credential::prove(ctx, guard, &credential::Account::from(&me), password, failure).await? != Proof::Valid {
        return Err(AppError::InvalidCredentials);
    }
    ctx.db().atomic(erase(ctx, tenant, p.user_id)).await?;
    ctx.audit(
        AuditRecord::by(ctx, USER_DELETED, R.as_str(), AuditOutcome::Allowed)
            .reason(format!("user {} deleted its own account and every row about it", p.user_id)),
    );
    ctx.set_cookie_effect(CookieEffect::Clear);
    Ok(())
}

/// `deleteCoachee`: a COACH deletes a coachee actively assigned to it. An id the tenant does
/// not hold (or another tenant's) is NOT_FOUND; anyone else of the tenant is FORBIDDEN.
pub async fn delete_coachee(ctx: &Ctx, coachee_id: Uuid) -> AppResult<()> {
    const R: Resource = Resource::OtherUserProfiles;
    let p = *ctx.require()?;
    if p.role != Role::Coach {
        return Err(access::deny(ctx, DELETE_COACHEE, R, "only a coach deletes a coachee", AppError::Forbidden));
    }
    let tenant = ctx.tenant_id()?;
    let target = scoped::select::<users::Entity>(tenant)
        .filter(users::Column::Id.eq(coachee_id))
        .one(&*ctx.db().conn().await?)
        .await?
        .ok_or_else(|| access::deny(ctx, DELETE_COACHEE, R, "no visible row with this id", AppError::NotFound))?;
    let assigned = reach::of(ctx).await?.assigned.contains_key(&coachee_id);
    if target.role != Role::Coachee || !assigned {
        return Err(access::deny(ctx, DELETE_COACHEE, R, "not a coachee assigned to this coach", AppError::Forbidden));
    }
    erase(ctx, tenant, coachee_id).await?;
    ctx.audit(
        AuditRecord::by(ctx, USER_DELETED, R.as_str(), AuditOutcome::Allowed)
            .reason(format!("coachee {coachee_id} and every row about it deleted by its coach")),
    );
    Ok(())
}

/// Clears the references without a foreign key, then deletes the `users` row (the rest
/// cascades). On PostgreSQL the row delete runs under the application role's row-level
/// security (the tenant policy allows deleting a user of the caller's tenant).
async fn erase(ctx: &Ctx, tenant: Uuid, user_id: Uuid) -> AppResult<()> {
    forget_references(ctx, tenant, user_id).await?;
    let deleted = users::Entity::delete_many()
        .filter(users::Column::TenantId.eq(tenant))
        .filter(users::Column::Id.eq(user_id))
        .exec(&*ctx.db().conn().await?)
        .await?
        .rows_affected;
    if deleted != 1 {
        return Err(AppError::Internal(format!("deleting user {user_id} removed {deleted} rows")));
    }
    Ok(())
}

/// See the module documentation. On PostgreSQL some of these rows are hidden from the caller
/// by the relationship policies, so a SECURITY DEFINER function (`app_forget_user`, which
/// checks that the caller may erase this person) does it.
async fn forget_references(ctx: &Ctx, tenant: Uuid, user_id: Uuid) -> AppResult<()> {
    let db = ctx.db();
    if db.backend() == DbBackend::Postgres {
        let stmt = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT app_forget_user($1)",
            [Value::Uuid(Some(user_id))],
        );
        db.conn().await?.execute_raw(stmt).await?;
        return Ok(());
    }
    let nil = Uuid::nil();
    insights::Entity::update_many()
        .col_expr(insights::Column::ApprovedBy, Expr::value(Option::<Uuid>::None))
        .filter(insights::Column::TenantId.eq(tenant))
        .filter(insights::Column::ApprovedBy.eq(user_id))
        .exec(&*db.conn().await?)
        .await?;
    break_glass_requests::Entity::update_many()
        .col_expr(break_glass_requests::Column::ApprovedBy, Expr::value(Option::<Uuid>::None))
        .filter(break_glass_requests::Column::TenantId.eq(tenant))
        .filter(break_glass_requests::Column::ApprovedBy.eq(user_id))
        .exec(&*db.conn().await?)
        .await?;
    break_glass_requests::Entity::update_many()
        .col_expr(break_glass_requests::Column::RevokedBy, Expr::value(Option::<Uuid>::None))
        .filter(break_glass_requests::Column::TenantId.eq(tenant))
        .filter(break_glass_requests::Column::RevokedBy.eq(user_id))
        .exec(&*db.conn().await?)
        .await?;
    break_glass_grants::Entity::update_many()
        .col_expr(break_glass_grants::Column::ApprovedBy, Expr::value(nil))
        .filter(break_glass_grants::Column::TenantId.eq(tenant))
        .filter(break_glass_grants::Column::ApprovedBy.eq(user_id))
        .exec(&*db.conn().await?)
        .await?;
    access_notices::Entity::update_many()
        .col_expr(access_notices::Column::ActorId, Expr::value(nil))
        .filter(access_notices::Column::TenantId.eq(tenant))
        .filter(access_notices::Column::ActorId.eq(user_id))
        .exec(&*db.conn().await?)
        .await?;
    consent_history::Entity::update_many()
        .col_expr(consent_history::Column::ChangedBy, Expr::value(nil))
        .filter(consent_history::Column::TenantId.eq(tenant))
        .filter(consent_history::Column::ChangedBy.eq(user_id))
        .exec(&*db.conn().await?)
        .await?;
    Ok(())
}
