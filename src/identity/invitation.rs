//! `acceptInvitation`: an invited (or reset) account sets its password with its one-time
//! invitation token, and signs in.
//!
//! An unknown, used, expired or replaced token, and a deactivated account, all get one and
//! the same answer (`INVALID_INVITATION`). The token is 256 random bits, so its validity
//! is not worth hiding in the timing: a wrong one is answered without hashing anything.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement, Value};
use uuid::Uuid;

use super::credential::CredentialGuard;
use super::login::{LoginOutcome, sign_in};
use super::token::TokenKeys;
use super::{password, session};
use crate::ctx::Ctx;
use crate::db::entities::{invitations, login_throttles, users};
use crate::db::{DbScope, TenantTx};
use crate::domain::audit::AuditRecord;
use crate::domain::onboarding::well_formed_token;
use crate::error::{AppError, AppResult};
use crate::kinds::{AuditOutcome, ClientKind, Role, UserStatus};

/// The account an invitation token names, if any (its validity is checked afterwards, within
/// the account's own tenant context). On PostgreSQL this is an anonymous cross-tenant read,
/// through a SECURITY DEFINER function that returns ids only.
async fn invited_account(tx: &TenantTx, token_hash: &str) -> AppResult<Option<(Uuid, Option<Uuid>, Role)>> {
    if tx.backend() == DbBackend::Postgres {
        let stmt = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT user_id, tenant_id, role FROM auth_invitation_lookup($1)",
            [Value::String(Some(token_hash.to_owned()))],
        );
        let Some(row) = tx.conn().await?.query_one_raw(stmt).await? else { return Ok(None) };
        let role: String = row.try_get("", "role")?;
        let role = Role::parse(&role).ok_or_else(|| AppError::internal("unknown role in database"))?;
        return Ok(Some((row.try_get("", "user_id")?, row.try_get("", "tenant_id")?, role)));
    }
    let Some(invitation) = invitations::Entity::find()
        .filter(invitations::Column::TokenHash.eq(token_hash))
        .one(&*tx.conn().await?)
        .await?
    else {
        return Ok(None);
    };
    let user = users::Entity::find_by_id(invitation.user_id).one(&*tx.conn().await?).await?;
    Ok(user.map(|u| (u.id, u.tenant_id, u.role)))
}

/// Sets the password of the account `token` was issued for, makes it ACTIVE, spends the
/// invitation (and voids any other open one), ends the account's other sessions and opens
/// a new one. The password rules are [`password::check_new_password_for`].
pub async fn accept(
    ctx: &Ctx,
    keys: &TokenKeys,
    guard: &CredentialGuard,
    token: &str,
    new_password: &str,
    client: ClientKind,
) -> AppResult<(LoginOutcome, users::Model)> {
    password::check_new_password(new_password)?;
    guard.admit(ctx).await?;
    if !well_formed_token(token) {
        return Err(refused(ctx, "malformed token"));
    }
    let token_hash = session::sha256_hex(token);
    let tx = ctx.db();
    let Some((user_id, tenant_id, role)) = invited_account(tx, &token_hash).await? else {
        return Err(refused(ctx, "unknown token"));
    };
    tx.set_scope(DbScope { tenant_id, principal_id: Some(user_id), role: Some(role) }).await?;
    let now = ctx.now();
    let invitation = invitations::Entity::find()
        .filter(invitations::Column::TokenHash.eq(token_hash.as_str()))
        .one(&*tx.conn().await?)
        .await?;
    let user = users::Entity::find_by_id(user_id).one(&*tx.conn().await?).await?;
    let (Some(invitation), Some(user)) = (invitation, user) else {
        tx.set_scope(DbScope::ANONYMOUS).await?;
        return Err(refused(ctx, "unknown token"));
    };
    let spent = invitation.used_at.is_some() || invitation.voided_at.is_some() || now >= invitation.expires_at;
    if spent || user.status == UserStatus::Deactivated {
        let record = AuditRecord::by(ctx, "INVITATION_REFUSED", "invitations", AuditOutcome::Denied)
            .tenant(user.tenant_id)
            .actor(user.id, user.role)
            .reason(if spent { "used, expired or replaced invitation" } else { "account deactivated" });
        crate::domain::audit::write(tx, vec![record], now).await?;
        tx.pause().await?;
        tx.set_scope(DbScope::ANONYMOUS).await?;
        return Err(AppError::InvalidInvitation);
    }
    if let Err(e) = password::check_new_password_for(new_password, &user.email) {
        tx.set_scope(DbScope::ANONYMOUS).await?;
        return Err(e);
    }
    // No connection is held while the new password is hashed.
    tx.pause().await?;
    let hash = guard.hashing.hash(new_password.to_owned()).await?;
    let now = ctx.now();
    let accepted = tx
        .atomic(async {
            // Spent in the same statement that checks it is still open: of two concurrent
            // accepts, one wins.
            let spent = invitations::Entity::update_many()
                .col_expr(invitations::Column::UsedAt, Expr::value(now))
                .filter(invitations::Column::Id.eq(invitation.id))
                .filter(invitations::Column::UsedAt.is_null())
                .filter(invitations::Column::VoidedAt.is_null())
                .exec(&*tx.conn().await?)
                .await?
                .rows_affected;
            if spent != 1 {
                return Err(AppError::InvalidInvitation);
            }
            invitations::Entity::update_many()
                .col_expr(invitations::Column::VoidedAt, Expr::value(now))
                .filter(invitations::Column::UserId.eq(user.id))
                .filter(invitations::Column::UsedAt.is_null())
                .filter(invitations::Column::VoidedAt.is_null())
                .exec(&*tx.conn().await?)
                .await?;
            let updated = users::Entity::update_many()
                .col_expr(users::Column::PasswordHash, Expr::value(Some(hash)))
                .col_expr(users::Column::Status, Expr::value(UserStatus::Active))
                .col_expr(users::Column::PasswordChangedAt, Expr::value(Some(now)))
                .col_expr(users::Column::FailedLoginCount, Expr::value(0))
                .col_expr(users::Column::LockedUntil, Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None))
                .col_expr(users::Column::UpdatedAt, Expr::value(now))
                .filter(users::Column::Id.eq(user.id))
                .filter(users::Column::Status.ne(UserStatus::Deactivated))
                .exec(&*tx.conn().await?)
                .await?
                .rows_affected;
            if updated != 1 {
                return Err(AppError::InvalidInvitation);
            }
            login_throttles::Entity::delete_many()
                .filter(login_throttles::Column::UserId.eq(user.id))
                .exec(&*tx.conn().await?)
                .await?;
            session::revoke_all(tx, user.id, None, now).await?;
            users::Entity::find_by_id(user.id).one(&*tx.conn().await?).await?.ok_or(AppError::InvalidInvitation)
        })
        .await;
    let user = match accepted {
        Ok(user) => user,
        Err(e) => {
            tx.set_scope(DbScope::ANONYMOUS).await?;
            return Err(e);
        }
    };
    let outcome = sign_in(ctx, keys, &user, client).await?;
    ctx.audit(
        AuditRecord::by(ctx, "INVITATION_ACCEPTED", "invitations", AuditOutcome::Allowed)
            .tenant(user.tenant_id)
            .actor(user.id, user.role),
    );
    Ok((outcome, user))
}

/// The one answer for a token that names no invitation; audited as an anonymous denial
/// (so a flood of guesses raises an alert for its source address).
fn refused(ctx: &Ctx, why: &str) -> AppError {
    ctx.audit(AuditRecord::by(ctx, "INVITATION_REFUSED", "invitations", AuditOutcome::Denied).reason(why));
    AppError::InvalidInvitation
}
