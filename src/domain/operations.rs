//! Administrators' writes: coach assignments, invitations, deactivation and tenant settings
//! (PROGRAM_ADMIN, its own tenant), platform configuration and account unlocking
//! (SYSTEM_ADMIN).
//!
//! Each function checks the matrix grant itself (the per-role schema already hides the
//! mutation from every other role; this is the second look), reaches rows only through the
//! caller's tenant (another tenant's id is answered exactly like a missing one, and audited),
//! and records one ALLOWED audit event once its writes are done, naming the target by id:
//! never an email, a display name or a configuration value.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
use uuid::Uuid;

use crate::authz::{Action, Resource, Scope, matrix};
use crate::ctx::Ctx;
use crate::db::entities::{coach_assignments, login_throttles, system_config, tenant_settings, users};
use crate::db::scoped;
use crate::domain::access;
use crate::domain::audit::AuditRecord;
use crate::error::{AppError, AppResult};
use crate::identity::session;
use crate::kinds::{AiLevel, AuditOutcome, Role, UserStatus};

pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_DISPLAY_NAME_LEN: usize = 100;
pub const SESSION_TIMEOUT_MINUTES: std::ops::RangeInclusive<i64> = 5..=480;
pub const AUDIT_RETENTION_DAYS: std::ops::RangeInclusive<i64> = 30..=3650;
pub const DATA_RETENTION_DAYS: std::ops::RangeInclusive<i64> = 30..=36500;
pub const MAX_CONFIG_KEY_LEN: usize = 100;
pub const MAX_CONFIG_VALUE_LEN: usize = 2000;

// ------------------------------------------------------------------------ grants

/// The caller's tenant, if its grant of `action` on `resource` covers the tenant; otherwise
/// a FORBIDDEN denial (audited as `what`).
fn tenant_grant(ctx: &Ctx, what: &str, resource: Resource, action: Action) -> AppResult<Uuid> {
    let role = ctx.require()?.role;
    match matrix::grant(role, resource, action).map(|g| g.scope) {
        Some(Scope::Tenant) => ctx.tenant_id(),
        _ => Err(access::deny(ctx, what, resource, "no tenant grant for this action", AppError::Forbidden)),
    }
}

/// `Ok` if the caller's grant of `action` on `resource` is platform-wide (SYSTEM_ADMIN).
fn platform_grant(ctx: &Ctx, what: &str, resource: Resource, action: Action) -> AppResult<()> {
    let role = ctx.require()?.role;
    match matrix::grant(role, resource, action).map(|g| g.scope) {
        Some(Scope::Platform) => Ok(()),
        _ => Err(access::deny(ctx, what, resource, "no platform grant for this action", AppError::Forbidden)),
    }
}

/// NOT_FOUND for an id the caller's tenant does not hold (missing, or another tenant's).
fn missing(ctx: &Ctx, what: &str, resource: Resource) -> AppError {
    access::deny(ctx, what, resource, "no visible row with this id", AppError::NotFound)
}

fn allowed(ctx: &Ctx, what: &str, resource: Resource, reason: String) {
    ctx.audit(AuditRecord::by(ctx, what, resource.as_str(), AuditOutcome::Allowed).reason(reason));
}

async fn tenant_user(ctx: &Ctx, tenant: Uuid, id: Uuid) -> AppResult<Option<users::Model>> {
    Ok(scoped::select::<users::Entity>(tenant).filter(users::Column::Id.eq(id)).one(&*ctx.db().conn().await?).await?)
}

// ------------------------------------------------------------------------ assignments

const ASSIGN: &str = "ASSIGN_COACH";
const UNASSIGN: &str = "UNASSIGN_COACH";

/// `assignCoach`: both users in the caller's tenant, a COACH and a COACHEE, neither
/// deactivated. An ended assignment is reactivated (with the AI level back at OFF: the coach
/// chooses it again); an active one is left as it is.
pub async fn assign_coach(ctx: &Ctx, coach_id: Uuid, coachee_id: Uuid) -> AppResult<()> {
    const R: Resource = Resource::CoachAssignments;
    let tenant = tenant_grant(ctx, ASSIGN, R, Action::Create)?;
    let coach = tenant_user(ctx, tenant, coach_id).await?.ok_or_else(|| missing(ctx, ASSIGN, R))?;
    let coachee = tenant_user(ctx, tenant, coachee_id).await?.ok_or_else(|| missing(ctx, ASSIGN, R))?;
    if coach.role != Role::Coach {
        return Err(AppError::bad_input("coachId must name a COACH"));
    }
    if coachee.role != Role::Coachee {
        return Err(AppError::bad_input("coacheeId must name a COACHEE"));
    }
    if coach.status == UserStatus::Deactivated || coachee.status == UserStatus::Deactivated {
        return Err(AppError::Conflict("a deactivated user cannot be assigned".into()));
    }
    let now = ctx.now();
    let existing = scoped::select::<coach_assignments::Entity>(tenant)
        .filter(coach_assignments::Column::CoachId.eq(coach_id))
        .filter(coach_assignments::Column::CoacheeId.eq(coachee_id))
        .one(&*ctx.db().conn().await?)
        .await?;
    let what = match existing {
        Some(a) if a.active => "already assigned",
        Some(a) => {
            let mut row = a.into_active_model();
            row.active = Set(true);
            row.ended_at = Set(None);
            row.ai_level = Set(AiLevel::Off);
            row.update(&*ctx.db().conn().await?).await?;
            "assignment reactivated"
        }
        None => {
            let row = coach_assignments::ActiveModel {
                id: Set(Uuid::new_v4()),
                tenant_id: Set(tenant),
                coach_id: Set(coach_id),
                coachee_id: Set(coachee_id),
                active: Set(true),
                ai_level: Set(AiLevel::Off),
                created_at: Set(now),
                ended_at: Set(None),
            };
            coach_assignments::Entity::insert(row).exec_without_returning(&*ctx.db().conn().await?).await?;
            "assigned"
        }
    };
    allowed(ctx, ASSIGN, R, format!("coach {coach_id} -> coachee {coachee_id}: {what}"));
    Ok(())
}

/// `unassignCoach`: ends the active assignment (the row stays, inactive, with `ended_at`);
/// from the next request on the coach no longer reaches the coachee. No active assignment
/// between the two (or ids of another tenant) is NOT_FOUND.
pub async fn unassign_coach(ctx: &Ctx, coach_id: Uuid, coachee_id: Uuid) -> AppResult<()> {
    const R: Resource = Resource::CoachAssignments;
    let tenant = tenant_grant(ctx, UNASSIGN, R, Action::Delete)?;
    let active = scoped::select::<coach_assignments::Entity>(tenant)
        .filter(coach_assignments::Column::CoachId.eq(coach_id))
        .filter(coach_assignments::Column::CoacheeId.eq(coachee_id))
        .filter(coach_assignments::Column::Active.eq(true))
        .one(&*ctx.db().conn().await?)
        .await?
        .ok_or_else(|| missing(ctx, UNASSIGN, R))?;
    let mut row = active.into_active_model();
    row.active = Set(false);
    row.ended_at = Set(Some(ctx.now()));
    row.update(&*ctx.db().conn().await?).await?;
    allowed(ctx, UNASSIGN, R, format!("coach {coach_id} -> coachee {coachee_id}: assignment ended"));
    Ok(())
}

// ------------------------------------------------------------------------ users

const INVITE: &str = "INVITE_USER";
const DEACTIVATE: &str = "DEACTIVATE_USER";

/// A syntactically plausible email address, trimmed and lower-cased: one `@`, a local part
/// of printable ASCII without spaces or quoting, a dotted domain of letters, digits and
/// hyphens.
pub fn normalize_email(raw: &str) -> AppResult<String> {
    let email = crate::identity::login::normalize_email(raw);
    let bad = || AppError::bad_input("email is not a valid email address");
    if email.is_empty() || email.len() > MAX_EMAIL_LEN {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok { Ok(email) } else { Err(bad()) }
}

/// `inviteUser`: a new user of the caller's tenant, status INVITED and without a password
/// (so it cannot log in until it sets one). SYSTEM_ADMIN is not a tenant role. An email
/// already used in this tenant is a CONFLICT; another tenant's accounts are not looked at.
pub async fn invite_user(ctx: &Ctx, email: &str, display_name: String, role: Role) -> AppResult<users::Model> {
    const R: Resource = Resource::OtherUserProfiles;
    let tenant = tenant_grant(ctx, INVITE, R, Action::Create)?;
    if role == Role::SystemAdmin {
        return Err(AppError::bad_input("role SYSTEM_ADMIN cannot be invited into a tenant"));
    }
    let email = normalize_email(email)?;
    let taken = scoped::select::<users::Entity>(tenant)
        .filter(users::Column::Email.eq(email.as_str()))
        .one(&*ctx.db().conn().await?)
        .await?;
    if taken.is_some() {
        return Err(AppError::Conflict("a user with this email already exists in the tenant".into()));
    }
    let now = ctx.now();
    let user = crate::domain::onboarding::invited_user(Some(tenant), email, display_name, role, now);
    users::Entity::insert(user.clone().into_active_model()).exec_without_returning(&*ctx.db().conn().await?).await?;
    allowed(ctx, INVITE, R, format!("user {} invited as {}", user.id, role.as_str()));
    Ok(user)
}

/// `deactivateUser`: status DEACTIVATED and every session of the user ended at once (its
/// tokens are refused from the next request on). An administrator cannot deactivate itself.
/// Deactivating a deactivated user changes nothing but is answered the same.
pub async fn deactivate_user(ctx: &Ctx, id: Uuid) -> AppResult<()> {
    const R: Resource = Resource::OtherUserProfiles;
    let tenant = tenant_grant(ctx, DEACTIVATE, R, Action::Update)?;
    if ctx.require()?.user_id == id {
        return Err(access::deny(ctx, DEACTIVATE, R, "an administrator cannot deactivate itself", AppError::Forbidden));
    }
    let user = tenant_user(ctx, tenant, id).await?.ok_or_else(|| missing(ctx, DEACTIVATE, R))?;
    let now = ctx.now();
    let mut row = user.into_active_model();
    row.status = Set(UserStatus::Deactivated);
    row.updated_at = Set(now);
    row.update(&*ctx.db().conn().await?).await?;
    let ended = session::revoke_all(ctx.db(), id, None, now).await?;
    crate::domain::onboarding::notify(ctx, tenant, id, "account deactivated by an administrator").await?;
    allowed(ctx, DEACTIVATE, R, format!("user {id} deactivated; {ended} sessions ended"));
    Ok(())
}

// ------------------------------------------------------------------------ tenant settings

/// `updateTenantSettings`: what the input sets; `data_retention_days: Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantSettingsChange {
    pub session_timeout_minutes: Option<i32>,
    pub audit_retention_days: Option<i32>,
    pub data_retention_days: Option<Option<i32>>,
    pub device_session_days: Option<i32>,
}

impl TenantSettingsChange {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// PROGRAM_ADMIN: changes its own tenant's settings (limits are checked by the caller of
/// this function, at the argument boundary, and again here).
pub async fn update_tenant_settings(ctx: &Ctx, change: TenantSettingsChange) -> AppResult<tenant_settings::Model> {
    const WHAT: &str = "UPDATE_TENANT_SETTINGS";
    const R: Resource = Resource::SystemConfig;
    let tenant = tenant_grant(ctx, WHAT, R, Action::Update)?;
    if change.is_empty() {
        return Err(AppError::bad_input("input sets no setting"));
    }
    let in_range = |v: Option<i32>, r: &std::ops::RangeInclusive<i64>| v.is_none_or(|v| r.contains(&i64::from(v)));
    if !in_range(change.session_timeout_minutes, &SESSION_TIMEOUT_MINUTES)
        || !in_range(change.audit_retention_days, &AUDIT_RETENTION_DAYS)
        || !in_range(change.data_retention_days.flatten(), &DATA_RETENTION_DAYS)
        || !in_range(change.device_session_days, &crate::identity::device::DEVICE_SESSION_DAYS)
    {
        return Err(AppError::bad_input("a setting is out of range"));
    }
    let now = ctx.now();
    let current = scoped::select::<tenant_settings::Entity>(tenant).one(&*ctx.db().conn().await?).await?;
    let current = match current {
        Some(s) => s,
        None => {
            let defaults = tenant_settings::Model {
                tenant_id: tenant,
                session_timeout_minutes: session::DEFAULT_INACTIVITY_MINUTES,
                audit_retention_days: crate::domain::audit::DEFAULT_AUDIT_RETENTION_DAYS,
                data_retention_days: None,
                device_session_days: crate::identity::device::DEFAULT_DEVICE_SESSION_DAYS,
                updated_at: now,
            };
            tenant_settings::Entity::insert(defaults.clone().into_active_model())
                .exec_without_returning(&*ctx.db().conn().await?)
                .await?;
            defaults
        }
    };
    let mut changed = Vec::new();
    let mut row = current.into_active_model();
    if let Some(v) = change.session_timeout_minutes {
        row.session_timeout_minutes = Set(v);
        changed.push(format!("sessionTimeoutMinutes={v}"));
    }
    if let Some(v) = change.audit_retention_days {
        row.audit_retention_days = Set(v);
        changed.push(format!("auditRetentionDays={v}"));
    }
    if let Some(v) = change.data_retention_days {
        row.data_retention_days = Set(v);
        changed.push(format!("dataRetentionDays={}", v.map(|d| d.to_string()).unwrap_or_else(|| "null".into())));
    }
    if let Some(v) = change.device_session_days {
        row.device_session_days = Set(v);
        changed.push(format!("deviceSessionDays={v}"));
    }
    row.updated_at = Set(now);
    let updated = row.update(&*ctx.db().conn().await?).await?;
    allowed(ctx, WHAT, R, format!("tenant {tenant}: {}", changed.join(", ")));
    Ok(updated)
}

// ------------------------------------------------------------------------ platform

/// A configuration key: 1..=100 characters of `[a-z0-9._-]`.
pub fn check_config_key(key: &str) -> AppResult<()> {
    let ok = !key.is_empty()
        && key.len() <= MAX_CONFIG_KEY_LEN
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(()) } else { Err(AppError::bad_input("key must be 1 to 100 characters of a-z, 0-9, '.', '_', '-'")) }
}

/// SYSTEM_ADMIN: sets one platform configuration entry (created if new). The audit event
/// names the key, never the value (it may be a credential).
pub async fn update_system_config(ctx: &Ctx, key: String, value: String) -> AppResult<()> {
    const WHAT: &str = "UPDATE_SYSTEM_CONFIG";
    const R: Resource = Resource::SystemConfig;
    platform_grant(ctx, WHAT, R, Action::Update)?;
    check_config_key(&key)?;
    if value.chars().count() > MAX_CONFIG_VALUE_LEN {
        return Err(AppError::bad_input(format!("value must be at most {MAX_CONFIG_VALUE_LEN} characters")));
    }
    let me = ctx.require()?.user_id;
    let now = ctx.now();
    let existing = system_config::Entity::find_by_id(key.clone()).one(&*ctx.db().conn().await?).await?;
    match existing {
        Some(entry) => {
            let mut row = entry.into_active_model();
            row.value = Set(value);
            row.updated_at = Set(now);
            row.updated_by = Set(Some(me));
            row.update(&*ctx.db().conn().await?).await?;
        }
        None => {
            let row = system_config::ActiveModel {
                key: Set(key.clone()),
                value: Set(value),
                updated_at: Set(now),
                updated_by: Set(Some(me)),
            };
            system_config::Entity::insert(row).exec_without_returning(&*ctx.db().conn().await?).await?;
        }
    }
    allowed(ctx, WHAT, R, format!("key {key} set"));
    Ok(())
}

/// SYSTEM_ADMIN: clears an account's lock and its failed-login count, in any tenant.
pub async fn unlock_account(ctx: &Ctx, user_id: Uuid) -> AppResult<()> {
    const WHAT: &str = "UNLOCK_ACCOUNT";
    const R: Resource = Resource::AccountSecurityStatus;
    platform_grant(ctx, WHAT, R, Action::Update)?;
    let now = ctx.now();
    let user =
        users::Entity::find_by_id(user_id).one(&*ctx.db().conn().await?).await?.ok_or_else(|| missing(ctx, WHAT, R))?;
    users::Entity::update_many()
        .col_expr(users::Column::LockedUntil, Expr::value(Option::<chrono::DateTime<Utc>>::None))
        .col_expr(users::Column::FailedLoginCount, Expr::value(0))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(user_id))
        .exec(&*ctx.db().conn().await?)
        .await?;
    // Every address blocked for the account is let in again.
    login_throttles::Entity::delete_many()
        .filter(login_throttles::Column::UserId.eq(user_id))
        .exec(&*ctx.db().conn().await?)
        .await?;
    // The person hears of it (POLICY.md section 12); the notice is written within its
    // tenant (a platform account has no notices).
    if let Some(tenant) = user.tenant_id {
        let outer = ctx.db().scope();
        ctx.db().set_scope(crate::db::DbScope { tenant_id: Some(tenant), ..outer }).await?;
        let noticed =
            crate::domain::onboarding::notify(ctx, tenant, user_id, "account unlocked by platform support").await;
        ctx.db().set_scope(outer).await?;
        noticed?;
    }
    allowed(ctx, WHAT, R, format!("account {user_id} unlocked"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(normalize_email("  New.Person@Acme.Test ").ok().as_deref(), Some("new.person@acme.test"));
        for bad in ["", "plain", "a@b", "@acme.test", "a@@acme.test", "a b@acme.test", "a@acme..test", "a@-x.test"] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_email(&format!("{}@acme.test", "a".repeat(250))).is_err());
    }

    #[test]
    fn config_keys_are_restricted() {
        assert!(check_config_key("ai.rate_limit-per_minute2").is_ok());
        for bad in ["", "Upper", "with space", "semi;colon", &"k".repeat(101)] {
            assert!(check_config_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_config_key(&"k".repeat(100)).is_ok());
    }
}
