//! Reads of operational data: the audit log, tenant settings, platform configuration,
//! account security status and break-glass requests (administrators), and the caller's
//! own integration tokens, AI access log, access notices and consents.
//!
//! Which rows a caller reaches follows the matrix grant's scope: `Tenant` starts from
//! [`scoped::select`] with the caller's tenant, `Platform` (SYSTEM_ADMIN only) reads the
//! whole table (PostgreSQL row-level security lets that role read exactly the platform-wide
//! tables: users, audit_events, break_glass_requests, tenant_settings, system_config), and
//! `Own` narrows to the caller's rows. Any other grant is refused (and audited).
//!
//! Successful reads of the audit log are deliberately not themselves audited: an
//! administrator paging through the log would otherwise grow it with every page.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::loaders::Loaders;
use crate::authz::{Action, Resource, Scope, matrix};
use crate::ctx::Ctx;
use crate::db::entities::{
    ai_access_log, audit_events, break_glass_grants, break_glass_requests, integration_tokens, system_config,
    tenant_settings, users,
};
use crate::db::scoped;
use crate::domain::access;
use crate::error::{AppError, AppResult};
use crate::kinds::{AuditOutcome, ConsentKind, Role, UserStatus};

/// How far an administrator's read of `resource` reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminReach {
    /// The caller's tenant.
    Tenant(Uuid),
    /// Every tenant and the platform (SYSTEM_ADMIN).
    Platform,
}

/// The reach of the caller's read grant on `resource`; anything but a tenant or platform
/// grant is refused.
pub fn admin_reach(ctx: &Ctx, resource: Resource) -> AppResult<AdminReach> {
    let role = ctx.require()?.role;
    match matrix::grant(role, resource, Action::Read).map(|g| g.scope) {
        Some(Scope::Tenant) => Ok(AdminReach::Tenant(ctx.tenant_id()?)),
        Some(Scope::Platform) => Ok(AdminReach::Platform),
        _ => Err(access::forbidden(ctx, resource, "no tenant or platform read grant")),
    }
}

/// The caller's tenant and id, for a resource it reads its own rows of.
pub fn own_reach(ctx: &Ctx, resource: Resource) -> AppResult<(Uuid, Uuid)> {
    let p = ctx.require()?;
    match matrix::grant(p.role, resource, Action::Read).map(|g| g.scope) {
        Some(Scope::Own) => Ok((ctx.tenant_id()?, p.user_id)),
        _ => Err(access::forbidden(ctx, resource, "no own-rows read grant")),
    }
}

// ------------------------------------------------------------------------ audit log

pub fn parse_outcome(s: &str) -> AppResult<AuditOutcome> {
    [AuditOutcome::Allowed, AuditOutcome::Denied, AuditOutcome::Alert]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| AppError::bad_input("outcome must be ALLOWED, DENIED or ALERT"))
}

/// One page of audit events, newest first (`at`, then chain position, then id), and the
/// total. PROGRAM_ADMIN: its tenant's chain. SYSTEM_ADMIN: every chain, including the
/// platform's (tenant-less) events.
pub async fn audit_events(
    ctx: &Ctx,
    outcome: Option<AuditOutcome>,
    offset: u64,
    limit: u64,
) -> AppResult<(Vec<audit_events::Model>, u64)> {
    let mut select = match admin_reach(ctx, Resource::AuditLogs)? {
        // What admins, coaches and the platform did in the tenant (POLICY.md section 12): a
        // coachee's own choices (consents, AI confirmations, exports, deletions, sign-ins)
        // are its own; the platform's alerts about anyone are shown.
        AdminReach::Tenant(t) => scoped::select::<audit_events::Entity>(t).filter(
            Condition::any()
                .add(audit_events::Column::ActorRole.is_null())
                .add(audit_events::Column::ActorRole.ne(Role::Coachee))
                .add(audit_events::Column::Outcome.eq(AuditOutcome::Alert)),
        ),
        AdminReach::Platform => audit_events::Entity::find(),
    };
    if let Some(o) = outcome {
        select = select.filter(audit_events::Column::Outcome.eq(o));
    }
    let total = select.clone().count(&*ctx.db().conn().await?).await?;
    let rows = select
        .order_by_desc(audit_events::Column::At)
        .order_by_desc(audit_events::Column::Seq)
        .order_by_desc(audit_events::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(&*ctx.db().conn().await?)
        .await?;
    Ok((rows, total))
}

// ------------------------------------------------------------------------ settings

/// PROGRAM_ADMIN: its own tenant's settings; naming any other tenant is `NOT_FOUND`, exactly
/// like a tenant that does not exist. SYSTEM_ADMIN: the named tenant's (required).
pub async fn tenant_settings(ctx: &Ctx, requested: Option<Uuid>) -> AppResult<tenant_settings::Model> {
    let found = match admin_reach(ctx, Resource::SystemConfig)? {
        AdminReach::Tenant(own) => {
            if requested.is_some_and(|id| id != own) {
                return Err(access::not_found(ctx, Resource::SystemConfig));
            }
            scoped::select::<tenant_settings::Entity>(own).one(&*ctx.db().conn().await?).await?
        }
        AdminReach::Platform => {
            let id =
                requested.ok_or_else(|| AppError::bad_input("tenantId is required for a platform administrator"))?;
            tenant_settings::Entity::find_by_id(id).one(&*ctx.db().conn().await?).await?
        }
    };
    found.ok_or_else(|| access::not_found(ctx, Resource::SystemConfig))
}

/// SYSTEM_ADMIN: every platform configuration entry, sorted by key (byte order, the same on
/// every backend).
pub async fn system_config(ctx: &Ctx) -> AppResult<Vec<(String, String)>> {
    if admin_reach(ctx, Resource::SystemConfig)? != AdminReach::Platform {
        return Err(access::forbidden(ctx, Resource::SystemConfig, "platform configuration is SYSTEM_ADMIN only"));
    }
    let mut entries: Vec<(String, String)> = system_config::Entity::find()
        .select_only()
        .columns([system_config::Column::Key, system_config::Column::Value])
        .into_tuple()
        .all(&*ctx.db().conn().await?)
        .await?;
    entries.sort();
    Ok(entries)
}

// ------------------------------------------------------------------------ account status

/// What SYSTEM_ADMIN sees of an account's security state (never its hash or profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStatus {
    pub user_id: Uuid,
    pub last_login_at: Option<DateTime<Utc>>,
    pub failed_login_count: i32,
    /// Only while the lock holds: a lock that has run out is no lock.
    pub locked_until: Option<DateTime<Utc>>,
    /// The account may log in (status ACTIVE; neither invited nor deactivated).
    pub active: bool,
}

pub async fn account_status(ctx: &Ctx, user_id: Uuid) -> AppResult<AccountStatus> {
    if admin_reach(ctx, Resource::AccountSecurityStatus)? != AdminReach::Platform {
        return Err(access::forbidden(ctx, Resource::AccountSecurityStatus, "account status is SYSTEM_ADMIN only"));
    }
    type Row = (Uuid, Option<DateTime<Utc>>, i32, Option<DateTime<Utc>>, UserStatus);
    let row: Option<Row> = users::Entity::find_by_id(user_id)
        .select_only()
        .columns([
            users::Column::Id,
            users::Column::LastLoginAt,
            users::Column::FailedLoginCount,
            users::Column::LockedUntil,
            users::Column::Status,
        ])
        .into_tuple()
        .one(&*ctx.db().conn().await?)
        .await?;
    let Some((id, last_login_at, failed, locked_until, status)) = row else {
        return Err(access::not_found(ctx, Resource::AccountSecurityStatus));
    };
    let now = ctx.now();
    Ok(AccountStatus {
        user_id: id,
        last_login_at,
        failed_login_count: failed,
        locked_until: locked_until.filter(|t| *t > now),
        active: status == UserStatus::Active,
    })
}

// ------------------------------------------------------------------------ break-glass

/// A break-glass request as administrators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassView {
    pub id: Uuid,
    pub coachee_id: Uuid,
    pub requested_by: Uuid,
    pub approved_by: Option<Uuid>,
    pub reason: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub active: bool,
}

impl BreakGlassView {
    /// Combines a request with its grant (if approved and readable). The expiry is the
    /// earlier of the grant's and `approved_at + minutes`; `active` means approved, revoked
    /// neither on the request nor on the grant, and not expired at `now`.
    pub fn new(r: break_glass_requests::Model, grant: Option<&break_glass_grants::Model>, now: DateTime<Utc>) -> Self {
        let approved_by = grant.map(|g| g.approved_by).or(r.approved_by);
        let by_request =
            r.approved_at.filter(|_| r.approved_by.is_some()).map(|at| at + Duration::minutes(i64::from(r.minutes)));
        let expires_at = match (grant.map(|g| g.expires_at), by_request) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let revoked = r.revoked_at.is_some() || grant.is_some_and(|g| g.revoked_at.is_some());
        let active = approved_by.is_some() && !revoked && expires_at.is_some_and(|e| now < e);
        Self {
            id: r.id,
            coachee_id: r.coachee_id,
            requested_by: r.requested_by,
            approved_by,
            reason: r.reason,
            expires_at,
            active,
        }
    }
}

/// Newest first. PROGRAM_ADMIN: its tenant's requests with their grants. SYSTEM_ADMIN: every
/// tenant's requests, from the request rows alone (grants are tenant rows that row-level
/// security keeps from a platform context, so they are not read on either backend).
pub async fn break_glass_requests(ctx: &Ctx) -> AppResult<Vec<BreakGlassView>> {
    let reach = admin_reach(ctx, Resource::BreakGlassRequests)?;
    let select = match reach {
        AdminReach::Tenant(t) => scoped::select::<break_glass_requests::Entity>(t),
        AdminReach::Platform => break_glass_requests::Entity::find(),
    };
    let requests = select
        .order_by_desc(break_glass_requests::Column::CreatedAt)
        .order_by_desc(break_glass_requests::Column::Id)
        .all(&*ctx.db().conn().await?)
        .await?;
    let grants: HashMap<Uuid, break_glass_grants::Model> = match reach {
        AdminReach::Tenant(t) if !requests.is_empty() => scoped::select::<break_glass_grants::Entity>(t)
            .filter(break_glass_grants::Column::RequestId.is_in(requests.iter().map(|r| r.id)))
            .all(&*ctx.db().conn().await?)
            .await?
            .into_iter()
            .map(|g| (g.request_id, g))
            .collect(),
        _ => HashMap::new(),
    };
    let now = ctx.now();
    Ok(requests
        .into_iter()
        .map(|r| {
            let grant = grants.get(&r.id);
            BreakGlassView::new(r, grant, now)
        })
        .collect())
}

// ------------------------------------------------------------------------ own rows

/// An integration token without its hash (the hash is never even selected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationTokenView {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The caller's tokens that are not revoked, newest first.
pub async fn my_integration_tokens(ctx: &Ctx) -> AppResult<Vec<IntegrationTokenView>> {
    let (tenant, me) = own_reach(ctx, Resource::IntegrationTokens)?;
    type Row = (Uuid, String, DateTime<Utc>, Option<DateTime<Utc>>);
    let rows: Vec<Row> = scoped::select::<integration_tokens::Entity>(tenant)
        .filter(integration_tokens::Column::UserId.eq(me))
        .filter(integration_tokens::Column::RevokedAt.is_null())
        .select_only()
        .columns([
            integration_tokens::Column::Id,
            integration_tokens::Column::Name,
            integration_tokens::Column::CreatedAt,
            integration_tokens::Column::LastUsedAt,
        ])
        .order_by_desc(integration_tokens::Column::CreatedAt)
        .order_by_desc(integration_tokens::Column::Id)
        .into_tuple()
        .all(&*ctx.db().conn().await?)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, created_at, last_used_at)| IntegrationTokenView { id, name, created_at, last_used_at })
        .collect())
}

/// One AI access as the coachee sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiAccessEntry {
    pub at: DateTime<Utc>,
    pub model: String,
    pub purpose: String,
    pub resource: String,
}

/// One page of the AI accesses to the caller's (a coachee's) data, newest first, and the total.
pub async fn my_ai_access_log(ctx: &Ctx, offset: u64, limit: u64) -> AppResult<(Vec<AiAccessEntry>, u64)> {
    let (tenant, me) = own_reach(ctx, Resource::AiAccessLog)?;
    let select = scoped::select::<ai_access_log::Entity>(tenant).filter(ai_access_log::Column::CoacheeId.eq(me));
    let total = select.clone().count(&*ctx.db().conn().await?).await?;
    type Row = (DateTime<Utc>, String, String, String);
    let rows: Vec<Row> = select
        .select_only()
        .columns([
            ai_access_log::Column::At,
            ai_access_log::Column::Model,
            ai_access_log::Column::Purpose,
            ai_access_log::Column::Resource,
        ])
        .order_by_desc(ai_access_log::Column::At)
        .order_by_desc(ai_access_log::Column::Id)
        .offset(offset)
        .limit(limit)
        .into_tuple()
        .all(&*ctx.db().conn().await?)
        .await?;
    let entries =
        rows.into_iter().map(|(at, model, purpose, resource)| AiAccessEntry { at, model, purpose, resource }).collect();
    Ok((entries, total))
}

/// A notice that someone read the coachee's data (break-glass): who (role), when, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessNoticeView {
    pub at: DateTime<Utc>,
    pub actor_role: Role,
    pub reason: String,
}

/// Notices about the caller's own data (`coachee_id` = caller), newest first.
pub async fn my_access_notices(ctx: &Ctx, loaders: &Loaders) -> AppResult<Vec<AccessNoticeView>> {
    let (_, me) = own_reach(ctx, Resource::AccessNotices)?;
    let rows = super::loaders::rows(&loaders.own_access_notices, me).await?;
    Ok(rows.into_iter().map(|n| AccessNoticeView { at: n.at, actor_role: n.actor_role, reason: n.reason }).collect())
}

/// One consent's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentView {
    pub kind: ConsentKind,
    pub granted: bool,
    pub changed_at: DateTime<Utc>,
}

/// Every consent kind of the caller (a coachee), in [`ConsentKind::ALL`] order; a kind never
/// set is not granted, as of the account's creation.
pub async fn my_consents(ctx: &Ctx, loaders: &Loaders) -> AppResult<Vec<ConsentView>> {
    let (_, me) = own_reach(ctx, Resource::Consents)?;
    let rows = super::loaders::rows(&loaders.own_consents, me).await?;
    // The account's creation, from the user row the session check read.
    let created_at = super::reads::principal_user(ctx, me).await?.created_at;
    Ok(ConsentKind::ALL
        .into_iter()
        .map(|kind| match rows.iter().find(|r| r.kind == kind) {
            Some(r) => ConsentView { kind, granted: r.granted, changed_at: r.changed_at },
            None => ConsentView { kind, granted: false, changed_at: created_at },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, h, 0, 0).single().expect("t")
    }

    fn request() -> break_glass_requests::Model {
        break_glass_requests::Model {
            id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            coachee_id: Uuid::new_v4(),
            requested_by: Uuid::new_v4(),
            reason: "emergency".to_owned(),
            minutes: 30,
            created_at: t(8),
            approved_by: None,
            approved_at: None,
            revoked_at: None,
            revoked_by: None,
        }
    }

    fn grant_of(r: &break_glass_requests::Model, approver: Uuid) -> break_glass_grants::Model {
        break_glass_grants::Model {
            id: Uuid::new_v4(),
            tenant_id: r.tenant_id,
            request_id: r.id,
            coachee_id: r.coachee_id,
            grantee_id: r.requested_by,
            approved_by: approver,
            starts_at: t(9),
            expires_at: t(9) + Duration::minutes(30),
            revoked_at: None,
        }
    }

    #[test]
    fn a_pending_request_is_not_active_and_has_no_expiry() {
        let v = BreakGlassView::new(request(), None, t(9));
        assert!(!v.active);
        assert_eq!(v.expires_at, None);
        assert_eq!(v.approved_by, None);
    }

    #[test]
    fn an_approved_request_is_active_until_it_expires_or_is_revoked() {
        let approver = Uuid::new_v4();
        let mut r = request();
        r.approved_by = Some(approver);
        r.approved_at = Some(t(9));
        let g = grant_of(&r, approver);
        let v = BreakGlassView::new(r.clone(), Some(&g), t(9) + Duration::minutes(10));
        assert!(v.active);
        assert_eq!(v.approved_by, Some(approver));
        assert_eq!(v.expires_at, Some(t(9) + Duration::minutes(30)));
        // The request alone (platform view) gives the same answer.
        assert_eq!(BreakGlassView::new(r.clone(), None, t(9) + Duration::minutes(10)), v);
        assert!(!BreakGlassView::new(r.clone(), Some(&g), t(9) + Duration::minutes(30)).active);
        let mut revoked = g.clone();
        revoked.revoked_at = Some(t(9) + Duration::minutes(5));
        assert!(!BreakGlassView::new(r.clone(), Some(&revoked), t(9) + Duration::minutes(10)).active);
        let mut r2 = r;
        r2.revoked_at = Some(t(9) + Duration::minutes(5));
        assert!(!BreakGlassView::new(r2, Some(&g), t(9) + Duration::minutes(10)).active);
    }

    #[test]
    fn outcomes_parse_strictly() {
        assert_eq!(parse_outcome("DENIED").ok(), Some(AuditOutcome::Denied));
        assert!(parse_outcome("denied").is_err());
        assert!(parse_outcome("").is_err());
    }
}
