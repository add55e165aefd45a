//! Break-glass (POLICY.md section 6): a program admin's emergency read of one coachee's data.
//!
//! 1. Admin A files a request: the coachee (of A's tenant), a reason (10..=500 characters) and
//!    a duration (1..=60 minutes).
//! 2. A different admin B of the same tenant approves it: never A itself (FORBIDDEN); an admin
//!    of another tenant finds no such request (NOT_FOUND, as for an id that does not exist).
//!    Approval is a conditional update of the still-pending request plus one grant row
//!    (`UNIQUE (tenant_id, request_id)`): of two concurrent approvals exactly one succeeds,
//!    the other gets CONFLICT.
//! 3. The grant lets A, and only A, read that coachee's CLIENT_VISIBLE and COACH_ONLY coaching
//!    data, read-only, from the approval until `expires_at` or revocation. Whether A holds an
//!    active grant is decided again on every request ([`active_grants`], one indexed query
//!    when A's request is set up), so the first request after expiry or revocation is refused.
//! 4. Every read the grant opens is audited with the grant id (`Ctx::note_ai_read`'s
//!    break-glass branch); approval and revocation are audited too. Any program admin of the
//!    tenant may revoke (revoking only ever takes access away).
//! 5. The coachee gets an access notice (who: the role; when; why: the reason) when the
//!    grant is issued, i.e. when the access becomes possible.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, SqlErr};
use uuid::Uuid;

use crate::authz::{Action, Resource, Scope, matrix};
use crate::ctx::Ctx;
use crate::db::entities::{access_notices, break_glass_grants, break_glass_requests, users};
use crate::db::scoped;
use crate::domain::access;
use crate::domain::admin::BreakGlassView;
use crate::domain::audit::AuditRecord;
use crate::error::{AppError, AppResult};
use crate::kinds::{AuditOutcome, Role};

pub const MIN_REASON_CHARS: usize = 10;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_MINUTES: i64 = 60;

const R: Resource = Resource::BreakGlassRequests;

/// The caller holds the tenant-wide break-glass grant of the matrix for `action`
/// (PROGRAM_ADMIN), else FORBIDDEN (audited).
fn require_admin(ctx: &Ctx, action: Action, verb: &str) -> AppResult<Uuid> {
    let p = ctx.require()?;
    match matrix::grant(p.role, R, action).map(|g| g.scope) {
        Some(Scope::Tenant) => Ok(p.user_id),
        _ => Err(access::deny(ctx, verb, R, "no tenant break-glass grant", AppError::Forbidden)),
    }
}

fn event(ctx: &Ctx, action: &str, reason: String, grant: Option<Uuid>) {
    let mut record = AuditRecord::by(ctx, action, R.as_str(), AuditOutcome::Allowed).reason(reason);
    record.grant_id = grant;
    ctx.audit(record);
}

/// The request `id` of the caller's tenant; NOT_FOUND (audited) for anything else.
async fn request_row(ctx: &Ctx, id: Uuid) -> AppResult<break_glass_requests::Model> {
    scoped::select::<break_glass_requests::Entity>(ctx.tenant_id()?)
        .filter(break_glass_requests::Column::Id.eq(id))
        .one(&*ctx.db().conn().await?)
        .await?
        .ok_or_else(|| access::not_found(ctx, R))
}

async fn grant_of(ctx: &Ctx, request: Uuid) -> AppResult<Option<break_glass_grants::Model>> {
    Ok(scoped::select::<break_glass_grants::Entity>(ctx.tenant_id()?)
        .filter(break_glass_grants::Column::RequestId.eq(request))
        .one(&*ctx.db().conn().await?)
        .await?)
}

/// A reason of [`MIN_REASON_CHARS`]..=[`MAX_REASON_CHARS`] characters (already trimmed).
pub fn check_reason(reason: &str) -> AppResult<()> {
    let n = reason.chars().count();
    if !(MIN_REASON_CHARS..=MAX_REASON_CHARS).contains(&n) {
        return Err(AppError::bad_input(format!(
            "reason must be between {MIN_REASON_CHARS} and {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(())
}

/// `requestBreakGlass`.
pub async fn request(ctx: &Ctx, coachee: Uuid, reason: String, minutes: i64) -> AppResult<BreakGlassView> {
    let me = require_admin(ctx, Action::Create, "CREATE")?;
    check_reason(&reason)?;
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(AppError::bad_input(format!("minutes must be between 1 and {MAX_MINUTES}")));
    }
    let tenant = ctx.tenant_id()?;
    let found = scoped::select::<users::Entity>(tenant)
        .filter(users::Column::Id.eq(coachee))
        .filter(users::Column::Role.eq(Role::Coachee))
        .one(&*ctx.db().conn().await?)
        .await?;
    if found.is_none() {
        return Err(access::not_found(ctx, R));
    }
    let now = ctx.now();
    let model = break_glass_requests::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(tenant),
        coachee_id: Set(coachee),
        requested_by: Set(me),
        reason: Set(reason),
        minutes: Set(minutes as i32),
        created_at: Set(now),
        approved_by: Set(None),
        approved_at: Set(None),
        revoked_at: Set(None),
        revoked_by: Set(None),
    }
    .insert(&*ctx.db().conn().await?)
    .await?;
    event(ctx, "BREAK_GLASS_REQUESTED", format!("request {} for {minutes} minutes", model.id), None);
    Ok(BreakGlassView::new(model, None, now))
}

fn conflict(message: &str) -> AppError {
    AppError::Conflict(message.to_owned())
}

/// `approveBreakGlass`: issues the grant and the coachee's access notice.
pub async fn approve(ctx: &Ctx, id: Uuid) -> AppResult<BreakGlassView> {
    let me = require_admin(ctx, Action::Update, "UPDATE")?;
    let request = request_row(ctx, id).await?;
    if request.requested_by == me {
        return Err(access::deny(ctx, "UPDATE", R, "break-glass self-approval", AppError::Forbidden));
    }
    if request.revoked_at.is_some() {
        return Err(conflict("this request was revoked"));
    }
    if request.approved_by.is_some() {
        return Err(conflict("this request is already approved"));
    }
    let now = ctx.now();
    let tenant = ctx.tenant_id()?;
    // Only a still-pending request changes: of two approvals racing, the second one's update
    // waits for the first to commit and then matches nothing.
    let updated = break_glass_requests::Entity::update_many()
        .col_expr(break_glass_requests::Column::ApprovedBy, Expr::value(me))
        .col_expr(break_glass_requests::Column::ApprovedAt, Expr::value(now))
        .filter(break_glass_requests::Column::TenantId.eq(tenant))
        .filter(break_glass_requests::Column::Id.eq(id))
        .filter(break_glass_requests::Column::ApprovedBy.is_null())
        .filter(break_glass_requests::Column::RevokedAt.is_null())
        .filter(break_glass_requests::Column::RequestedBy.ne(me))
        .exec(&*ctx.db().conn().await?)
        .await?
        .rows_affected;
    if updated == 0 {
        return Err(conflict("this request is already approved"));
    }
    let grant = break_glass_grants::Model {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        request_id: id,
        coachee_id: request.coachee_id,
        grantee_id: request.requested_by,
        approved_by: me,
        starts_at: now,
        expires_at: now + Duration::minutes(i64::from(request.minutes)),
        revoked_at: None,
    };
    let inserted = break_glass_grants::ActiveModel {
        id: Set(grant.id),
        tenant_id: Set(grant.tenant_id),
        request_id: Set(grant.request_id),
        coachee_id: Set(grant.coachee_id),
        grantee_id: Set(grant.grantee_id),
        approved_by: Set(grant.approved_by),
        starts_at: Set(grant.starts_at),
        expires_at: Set(grant.expires_at),
        revoked_at: Set(None),
    }
    .insert(&*ctx.db().conn().await?)
    .await;
    if let Err(e) = inserted {
        // The backstop: one grant per request, whatever happened to the request row.
        return Err(match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => conflict("this request is already approved"),
            _ => e.into(),
        });
    }
    // The notice is the coachee's to read, not the admin's: written without reading it back.
    let notice = access_notices::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(tenant),
        coachee_id: Set(request.coachee_id),
        actor_id: Set(request.requested_by),
        actor_role: Set(Role::ProgramAdmin),
        reason: Set(request.reason.clone()),
        grant_id: Set(Some(grant.id)),
        at: Set(now),
    };
    crate::db::insert_unread(&*ctx.db().conn().await?, notice).await?;
    event(
        ctx,
        "BREAK_GLASS_APPROVED",
        format!("request {id}: grant until {}", grant.expires_at.format("%Y-%m-%dT%H:%M:%SZ")),
        Some(grant.id),
    );
    let request = break_glass_requests::Model { approved_by: Some(me), approved_at: Some(now), ..request };
    Ok(BreakGlassView::new(request, Some(&grant), now))
}

/// `revokeBreakGlass`: ends a request (pending or approved) and its grant at once.
pub async fn revoke(ctx: &Ctx, id: Uuid) -> AppResult<BreakGlassView> {
    let me = require_admin(ctx, Action::Update, "UPDATE")?;
    let request = request_row(ctx, id).await?;
    if request.revoked_at.is_some() {
        return Err(conflict("this request is already revoked"));
    }
    let now = ctx.now();
    let tenant = ctx.tenant_id()?;
    let updated = break_glass_requests::Entity::update_many()
        .col_expr(break_glass_requests::Column::RevokedAt, Expr::value(now))
        .col_expr(break_glass_requests::Column::RevokedBy, Expr::value(me))
        .filter(break_glass_requests::Column::TenantId.eq(tenant))
        .filter(break_glass_requests::Column::Id.eq(id))
        .filter(break_glass_requests::Column::RevokedAt.is_null())
        .exec(&*ctx.db().conn().await?)
        .await?
        .rows_affected;
    if updated == 0 {
        return Err(conflict("this request is already revoked"));
    }
    break_glass_grants::Entity::update_many()
        .col_expr(break_glass_grants::Column::RevokedAt, Expr::value(now))
        .filter(break_glass_grants::Column::TenantId.eq(tenant))
        .filter(break_glass_grants::Column::RequestId.eq(id))
        .filter(break_glass_grants::Column::RevokedAt.is_null())
        .exec(&*ctx.db().conn().await?)
        .await?;
    let grant = grant_of(ctx, id).await?;
    event(ctx, "BREAK_GLASS_REVOKED", format!("request {id}"), grant.as_ref().map(|g| g.id));
    let request = break_glass_requests::Model { revoked_at: Some(now), revoked_by: Some(me), ..request };
    Ok(BreakGlassView::new(request, grant.as_ref(), now))
}

/// The active grants of `grantee` at `now`: coachee -> grant id (approved, neither grant nor
/// request revoked, `starts_at <= now < expires_at`). One query; called
/// once per PROGRAM_ADMIN request when its `Reach` is loaded.
pub async fn active_grants(
    ctx: &Ctx,
    tenant: Uuid,
    grantee: Uuid,
    now: DateTime<Utc>,
) -> AppResult<HashMap<Uuid, Uuid>> {
    type Row = (Uuid, Uuid, DateTime<Utc>, DateTime<Utc>);
    // A grant counts while neither it nor its request is revoked, and the request was
    // approved (as PostgreSQL's `app_reach` also requires).
    let live_requests = sea_orm::sea_query::Query::select()
        .column(break_glass_requests::Column::Id)
        .from(break_glass_requests::Entity)
        .and_where(break_glass_requests::Column::TenantId.eq(tenant))
        .and_where(break_glass_requests::Column::RevokedAt.is_null())
        .and_where(break_glass_requests::Column::ApprovedBy.is_not_null())
        .to_owned();
    let rows: Vec<Row> = scoped::select::<break_glass_grants::Entity>(tenant)
        .filter(break_glass_grants::Column::GranteeId.eq(grantee))
        .filter(break_glass_grants::Column::RevokedAt.is_null())
        .filter(break_glass_grants::Column::ExpiresAt.gt(now))
        .filter(break_glass_grants::Column::RequestId.in_subquery(live_requests))
        .select_only()
        .columns([
            break_glass_grants::Column::Id,
            break_glass_grants::Column::CoacheeId,
            break_glass_grants::Column::StartsAt,
            break_glass_grants::Column::ExpiresAt,
        ])
        .into_tuple()
        .all(&*ctx.db().conn().await?)
        .await?;
    Ok(active(rows, now))
}

/// The grants of `rows` (id, coachee, starts, expires) active at `now`, by coachee; of two
/// for one coachee, the one that lasts longer.
fn active(rows: Vec<(Uuid, Uuid, DateTime<Utc>, DateTime<Utc>)>, now: DateTime<Utc>) -> HashMap<Uuid, Uuid> {
    let mut best: HashMap<Uuid, (Uuid, DateTime<Utc>)> = HashMap::new();
    for (id, coachee, starts, expires) in rows {
        if starts > now || expires <= now {
            continue;
        }
        match best.get(&coachee) {
            Some((_, e)) if *e >= expires => {}
            _ => {
                best.insert(coachee, (id, expires));
            }
        }
    }
    best.into_iter().map(|(coachee, (id, _))| (coachee, id)).collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().expect("t") + Duration::minutes(min)
    }

    #[test]
    fn a_grant_is_active_from_its_start_until_just_before_its_expiry() {
        let (g, c) = (Uuid::new_v4(), Uuid::new_v4());
        let rows = || vec![(g, c, t(0), t(30))];
        assert!(active(rows(), t(-1)).is_empty(), "not before the approval");
        assert_eq!(active(rows(), t(0)).get(&c), Some(&g));
        assert_eq!(active(rows(), t(29)).get(&c), Some(&g));
        assert!(active(rows(), t(30)).is_empty(), "expired at expires_at");
    }

    #[test]
    fn of_two_grants_for_one_coachee_the_longer_one_counts() {
        let (short, long, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let got = active(vec![(short, c, t(0), t(10)), (long, c, t(0), t(50))], t(5));
        assert_eq!(got.len(), 1);
        assert_eq!(got.get(&c), Some(&long));
    }

    #[test]
    fn reasons_are_ten_to_five_hundred_characters() {
        assert!(check_reason("too short").is_err());
        assert!(check_reason("ten chars!").is_ok());
        assert!(check_reason(&"é".repeat(500)).is_ok(), "characters, not bytes");
        assert!(check_reason(&"x".repeat(501)).is_err());
    }
}
