//! Onboarding (POLICY.md section 11): creating a tenant with its first program admin, a
//! platform administrator from the operator's command line, and invitations.
//!
//! An invitation is a one-time secret (256 random bits, `cginv_` + base64url, so secret
//! scanners can spot a leaked one) that sets its account's password; only its sha-256 is
//! stored. It expires after [`INVITATION_LIFETIME`], works once, and issuing a newer one
//! for the same user voids it. For an ACTIVE user a new invitation is a password reset: the
//! old password stops working and every session of the user ends. Accepting one is
//! `identity::invitation::accept`.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
use uuid::Uuid;

use crate::authz::{Action, Resource, Scope, matrix};
use crate::ctx::{AuditRecord, Ctx};
use crate::db::entities::{access_notices, invitations, tenant_settings, tenants, users};
use crate::db::{DbScope, TenantTx, scoped};
use crate::domain::access;
use crate::domain::operations::{MAX_DISPLAY_NAME_LEN, normalize_email};
use crate::error::{AppError, AppResult};
use crate::identity::session;
use crate::kinds::{AuditOutcome, Role, UserStatus};

pub const INVITATION_LIFETIME: Duration = Duration::days(7);
/// The prefix of every invitation secret.
pub const INVITATION_PREFIX: &str = "cginv_";
pub const SLUG_LEN: std::ops::RangeInclusive<usize> = 3..=40;
pub const MAX_TENANT_NAME_LEN: usize = 100;

const CREATE_TENANT: &str = "CREATE_TENANT";
const ISSUE_INVITATION: &str = "ISSUE_INVITATION";

/// A fresh invitation: the secret is in the answer once and nowhere else.
#[derive(Debug, Clone)]
pub struct IssuedInvitation {
    pub user_id: Uuid,
    pub email: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
    pub admin_email: String,
    pub admin_display_name: String,
}

#[derive(Debug, Clone)]
pub struct ProvisionedTenant {
    pub tenant_id: Uuid,
    pub slug: String,
    pub invitation: IssuedInvitation,
}

/// A tenant's slug: 3 to 40 of `a-z`, `0-9` and `-`, starting with a letter and not ending
/// with `-` (it appears in URLs and is typed at login).
pub fn check_slug(raw: &str) -> AppResult<String> {
    let slug = raw.trim().to_owned();
    let ok = SLUG_LEN.contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_lowercase())
        && !slug.ends_with('-')
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(slug)
    } else {
        Err(AppError::bad_input(
            "slug must be 3 to 40 characters of a-z, 0-9 and '-', start with a letter and not end with '-'",
        ))
    }
}

/// A required, trimmed text of at most `max` characters.
pub fn check_text(field: &str, raw: &str, max: usize) -> AppResult<String> {
    let value = raw.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(AppError::bad_input(format!("{field} must be 1 to {max} characters")));
    }
    Ok(value.to_owned())
}

/// Whether an invitation token has the shape of one (anything else is answered like an
/// unknown token, without a statement).
pub fn well_formed_token(token: &str) -> bool {
    token
        .strip_prefix(INVITATION_PREFIX)
        .is_some_and(|rest| rest.len() == 43 && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

/// Writes a new invitation for `user` and voids its open ones; returns whether an older one
/// was still open. The transaction's scope must reach the user's tenant (PostgreSQL).
async fn write_invitation(
    tx: &TenantTx,
    user: &users::Model,
    now: DateTime<Utc>,
) -> AppResult<(IssuedInvitation, bool)> {
    let voided = invitations::Entity::update_many()
        .col_expr(invitations::Column::VoidedAt, Expr::value(now))
        .filter(invitations::Column::UserId.eq(user.id))
        .filter(invitations::Column::UsedAt.is_null())
        .filter(invitations::Column::VoidedAt.is_null())
        .filter(invitations::Column::ExpiresAt.gt(now))
        .exec(&*tx.conn().await?)
        .await?
        .rows_affected;
    let token = format!("{INVITATION_PREFIX}{}", session::random_token());
    let expires_at = now + INVITATION_LIFETIME;
    let row = invitations::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(user.tenant_id),
        user_id: Set(user.id),
        token_hash: Set(session::sha256_hex(&token)),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
        voided_at: Set(None),
    };
    invitations::Entity::insert(row).exec_without_returning(&*tx.conn().await?).await?;
    Ok((IssuedInvitation { user_id: user.id, email: user.email.clone(), token, expires_at }, voided > 0))
}

/// A new account, INVITED and without a password (it cannot sign in until it accepts an
/// invitation).
pub fn invited_user(
    tenant_id: Option<Uuid>,
    email: String,
    display_name: String,
    role: Role,
    now: DateTime<Utc>,
) -> users::Model {
    users::Model {
        id: Uuid::new_v4(),
        tenant_id,
        email,
        display_name,
        role,
        status: UserStatus::Invited,
        password_hash: None,
        failed_login_count: 0,
        locked_until: None,
        last_login_at: None,
        password_changed_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// Creates a tenant, its default settings and its first PROGRAM_ADMIN (INVITED), with that
/// admin's invitation. `tx` is scoped as a SYSTEM_ADMIN (or is the operator's connection);
/// the tenant's own rows are written within the new tenant's context, which is then put
/// back. A slug in use is a CONFLICT.
pub async fn provision_tenant(tx: &TenantTx, new: NewTenant, now: DateTime<Utc>) -> AppResult<ProvisionedTenant> {
    let slug = check_slug(&new.slug)?;
    let name = check_text("name", &new.name, MAX_TENANT_NAME_LEN)?;
    let email = normalize_email(&new.admin_email)?;
    let display_name = check_text("adminDisplayName", &new.admin_display_name, MAX_DISPLAY_NAME_LEN)?;
    let taken = tenants::Entity::find().filter(tenants::Column::Slug.eq(slug.as_str())).one(&*tx.conn().await?).await?;
    if taken.is_some() {
        return Err(AppError::Conflict("a tenant with this slug already exists".into()));
    }
    let tenant_id = Uuid::new_v4();
    let tenant =
        tenants::ActiveModel { id: Set(tenant_id), slug: Set(slug.clone()), name: Set(name), created_at: Set(now) };
    tenants::Entity::insert(tenant).exec_without_returning(&*tx.conn().await?).await?;
    let outer = tx.scope();
    tx.set_scope(DbScope { tenant_id: Some(tenant_id), ..outer }).await?;
    let written = async {
        let settings = tenant_settings::Model {
            tenant_id,
            session_timeout_minutes: session::DEFAULT_INACTIVITY_MINUTES,
            audit_retention_days: crate::domain::audit::DEFAULT_AUDIT_RETENTION_DAYS,
            data_retention_days: None,
            device_session_days: crate::identity::device::DEFAULT_DEVICE_SESSION_DAYS,
            updated_at: now,
        };
        tenant_settings::Entity::insert(settings.into_active_model())
            .exec_without_returning(&*tx.conn().await?)
            .await?;
        let admin = invited_user(Some(tenant_id), email, display_name, Role::ProgramAdmin, now);
        users::Entity::insert(admin.clone().into_active_model()).exec_without_returning(&*tx.conn().await?).await?;
        write_invitation(tx, &admin, now).await
    }
    .await;
    tx.set_scope(outer).await?;
    let (invitation, _) = written?;
    Ok(ProvisionedTenant { tenant_id, slug, invitation })
}

/// `createTenant` (SYSTEM_ADMIN).
pub async fn create_tenant(ctx: &Ctx, new: NewTenant) -> AppResult<ProvisionedTenant> {
    const R: Resource = Resource::Tenants;
    let role = ctx.require()?.role;
    if matrix::grant(role, R, Action::Create).map(|g| g.scope) != Some(Scope::Platform) {
        return Err(access::deny(ctx, CREATE_TENANT, R, "only a SYSTEM_ADMIN creates tenants", AppError::Forbidden));
    }
    let provisioned = provision_tenant(ctx.db(), new, ctx.now()).await?;
    ctx.audit(AuditRecord::by(ctx, CREATE_TENANT, R.as_str(), AuditOutcome::Allowed).reason(format!(
        "tenant {} ({}) created; its first PROGRAM_ADMIN {} invited",
        provisioned.tenant_id, provisioned.slug, provisioned.invitation.user_id
    )));
    Ok(provisioned)
}

/// The operator's command line (`coachgraph admin create-system-admin`): a platform
/// SYSTEM_ADMIN, INVITED, and its invitation. An email already used by a platform account
/// is a CONFLICT. `tx` is the operator's (owner) connection, scoped as a SYSTEM_ADMIN.
pub async fn create_system_admin(
    tx: &TenantTx,
    email: &str,
    display_name: &str,
    now: DateTime<Utc>,
) -> AppResult<IssuedInvitation> {
    let email = normalize_email(email)?;
    let display_name = check_text("display name", display_name, MAX_DISPLAY_NAME_LEN)?;
    let taken = users::Entity::find()
        .filter(users::Column::TenantId.is_null())
        .filter(users::Column::Email.eq(email.as_str()))
        .one(&*tx.conn().await?)
        .await?;
    if taken.is_some() {
        return Err(AppError::Conflict("a platform account with this email already exists".into()));
    }
    let admin = invited_user(None, email, display_name, Role::SystemAdmin, now);
    users::Entity::insert(admin.clone().into_active_model()).exec_without_returning(&*tx.conn().await?).await?;
    let (invitation, _) = write_invitation(tx, &admin, now).await?;
    Ok(invitation)
}

/// `issueInvitation` (PROGRAM_ADMIN): a new invitation for a user of its tenant; older ones
/// stop working. For an ACTIVE user it is a password reset: the password is cleared, every
/// session ends and every integration token is revoked. The person gets an access notice when this resets its password or
/// replaces an invitation it already had. Not for the caller itself (it has
/// `changePassword`), nor for a deactivated user.
pub async fn issue_invitation(ctx: &Ctx, user_id: Uuid) -> AppResult<IssuedInvitation> {
    const R: Resource = Resource::Invitations;
    let me = *ctx.require()?;
    let tenant = match matrix::grant(me.role, R, Action::Create).map(|g| g.scope) {
        Some(Scope::Tenant) => ctx.tenant_id()?,
        _ => {
            return Err(access::deny(ctx, ISSUE_INVITATION, R, "no tenant grant for this action", AppError::Forbidden));
        }
    };
    if me.user_id == user_id {
        return Err(access::deny(
            ctx,
            ISSUE_INVITATION,
            R,
            "an administrator does not reset its own password",
            AppError::Forbidden,
        ));
    }
    let tx = ctx.db();
    let user = scoped::select::<users::Entity>(tenant)
        .filter(users::Column::Id.eq(user_id))
        .one(&*tx.conn().await?)
        .await?
        .ok_or_else(|| access::deny(ctx, ISSUE_INVITATION, R, "no visible row with this id", AppError::NotFound))?;
    if user.status == UserStatus::Deactivated {
        return Err(AppError::Conflict("a deactivated user cannot be invited".into()));
    }
    let now = ctx.now();
    let reset = user.status == UserStatus::Active;
    let (invitation, replaced) = write_invitation(tx, &user, now).await?;
    let what = if reset {
        users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(Option::<String>::None))
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(users::Column::TenantId.eq(tenant))
            .filter(users::Column::Id.eq(user.id))
            .exec(&*tx.conn().await?)
            .await?;
        let ended = session::revoke_all(tx, user.id, None, now).await?;
        let tokens = crate::identity::integration::revoke_all_of(tx, user.id, now).await?;
        notify(ctx, tenant, user.id, "password reset by an administrator").await?;
        format!("password reset for user {}; {ended} sessions ended, {tokens} integration tokens revoked", user.id)
    } else if replaced {
        notify(ctx, tenant, user.id, "invitation reissued by an administrator").await?;
        format!("invitation reissued for user {}", user.id)
    } else {
        format!("invitation issued for user {}", user.id)
    };
    ctx.audit(AuditRecord::by(ctx, ISSUE_INVITATION, R.as_str(), AuditOutcome::Allowed).reason(what));
    Ok(invitation)
}

/// An access notice to `person` (POLICY.md section 12) about what the caller did to its
/// account, written without reading it back (it is the person's to read). The transaction
/// must be within `tenant`.
pub async fn notify(ctx: &Ctx, tenant: Uuid, person: Uuid, reason: &str) -> AppResult<()> {
    let me = *ctx.require()?;
    let notice = access_notices::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(tenant),
        coachee_id: Set(person),
        actor_id: Set(me.user_id),
        actor_role: Set(me.role),
        reason: Set(reason.to_owned()),
        grant_id: Set(None),
        at: Set(ctx.now()),
    };
    crate::db::insert_unread(&*ctx.db().conn().await?, notice).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_short_lowercase_words() {
        assert_eq!(check_slug(" acme-coaching ").ok().as_deref(), Some("acme-coaching"));
        for bad in ["ab", "Acme", "1acme", "acme-", "ac me", "acmé", &"a".repeat(41)] {
            assert!(check_slug(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_prefixed_43_character_secrets_look_like_invitations() {
        let token = format!("{INVITATION_PREFIX}{}", session::random_token());
        assert!(well_formed_token(&token));
        assert!(!well_formed_token(&token[1..]));
        assert!(!well_formed_token(&format!("{token}x")));
        assert!(!well_formed_token("cginv_' OR 1=1 --"));
    }
}
