//! Integration tokens as credentials (POLICY.md section 11): `Authorization: Bearer cgi_…`.
//!
//! A secret is `cgi_` and the base64url of the tenant id (16 bytes), the token id (16) and
//! 32 random bytes; only its sha-256 is stored. The prefix lets secret scanners recognise a
//! leaked one; the ids let the check find the row inside its tenant's row-level security,
//! with no cross-tenant read. The request then runs as the owner (same role, same row rules,
//! same consent gates), marked [`CredentialKind::IntegrationToken`] so that credential
//! operations are refused to it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::session::sha256_hex;
use crate::authz::{Action, Resource};
use crate::ctx::{CredentialKind, Principal};
use crate::db::entities::{integration_tokens, users};
use crate::db::{DbScope, TenantTx};
use crate::error::{AppError, AppResult};
use crate::kinds::UserStatus;

/// What an integration token's secret starts with.
pub const PREFIX: &str = "cgi_";
/// `last_used_at` is written at most this often (like the session touch), so reads do not
/// all become writes.
const TOUCH_EVERY: Duration = Duration::seconds(30);
/// A token's use is audited at most once per this interval: a reporting job polling every
/// few seconds would otherwise put a row per request on the tenant's audit chain, drowning
/// what the chain is for; one event an hour still shows who used which token, and when.
pub const AUDIT_USE_EVERY: Duration = Duration::hours(1);

const RAW_LEN: usize = 16 + 16 + 32;

/// What a secret names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named {
    pub tenant_id: Uuid,
    pub token_id: Uuid,
}

impl Named {
    /// The context the check reads in: the token's tenant, no principal yet.
    pub fn lookup_scope(&self) -> DbScope {
        DbScope { tenant_id: Some(self.tenant_id), principal_id: None, role: None }
    }
}

/// A new secret for token `token_id` of `tenant_id` (256 random bits).
pub fn mint(tenant_id: Uuid, token_id: Uuid) -> String {
    let mut raw = Vec::with_capacity(RAW_LEN);
    raw.extend_from_slice(tenant_id.as_bytes());
    raw.extend_from_slice(token_id.as_bytes());
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    raw.extend_from_slice(&secret);
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
}

pub fn parse(secret: &str) -> Option<Named> {
    let raw = URL_SAFE_NO_PAD.decode(secret.strip_prefix(PREFIX)?).ok()?;
    if raw.len() != RAW_LEN {
        return None;
    }
    Some(Named { tenant_id: Uuid::from_slice(&raw[..16]).ok()?, token_id: Uuid::from_slice(&raw[16..32]).ok()? })
}

/// The check of a request bearing an integration token, in the request's transaction
/// (scoped by [`Named::lookup_scope`]): the token exists, is not revoked, matches the hash;
/// its owner is active and may hold tokens. Then the transaction is scoped to the owner,
/// `last_used_at` is kept, and whether this use is to be audited is returned. Every refusal
/// is `Unauthenticated`.
pub async fn check(
    tx: &TenantTx,
    secret: &str,
    named: Named,
    now: DateTime<Utc>,
) -> AppResult<(Principal, users::Model, bool)> {
    let row = integration_tokens::Entity::find_by_id(named.token_id)
        .filter(integration_tokens::Column::TenantId.eq(named.tenant_id))
        .one(&*tx.conn().await?)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let matches = bool::from(sha256_hex(secret).as_bytes().ct_eq(row.token_hash.as_bytes()));
    if !matches || row.revoked_at.is_some() {
        return Err(AppError::Unauthenticated);
    }
    let user = users::Entity::find_by_id(row.user_id)
        .filter(users::Column::TenantId.eq(named.tenant_id))
        .one(&*tx.conn().await?)
        .await?
        .filter(|u| {
            u.status == UserStatus::Active && crate::authz::may(u.role, Resource::IntegrationTokens, Action::Read)
        })
        .ok_or(AppError::Unauthenticated)?;
    tx.set_scope(DbScope { tenant_id: user.tenant_id, principal_id: Some(user.id), role: Some(user.role) }).await?;
    let touch = row.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY);
    let audit_use = row.use_audited_at.is_none_or(|t| now - t >= AUDIT_USE_EVERY);
    if touch || audit_use {
        let switched = tx.prepare_write().await?;
        let mut update = integration_tokens::Entity::update_many()
            .col_expr(integration_tokens::Column::LastUsedAt, Expr::value(now))
            .filter(integration_tokens::Column::Id.eq(row.id));
        if audit_use {
            update = update.col_expr(integration_tokens::Column::UseAuditedAt, Expr::value(now));
        }
        update.exec(&*tx.conn().await?).await?;
        if switched {
            // A reading request does not keep SQLite's one write lock for the rest of its run.
            tx.end_write().await?;
        }
    }
    let principal = Principal {
        user_id: user.id,
        tenant_id: user.tenant_id,
        role: user.role,
        session_id: row.id,
        credential: CredentialKind::IntegrationToken,
    };
    Ok((principal, user, audit_use))
}

/// Revokes every live integration token of `user_id`: a password change or an
/// administrator's reset must also cut off whoever minted tokens with the old password.
/// Returns how many were live.
pub async fn revoke_all_of(tx: &TenantTx, user_id: Uuid, now: DateTime<Utc>) -> AppResult<u64> {
    Ok(integration_tokens::Entity::update_many()
        .col_expr(integration_tokens::Column::RevokedAt, Expr::value(now))
        .filter(integration_tokens::Column::UserId.eq(user_id))
        .filter(integration_tokens::Column::RevokedAt.is_null())
        .exec(&*tx.conn().await?)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_prefixed_and_names_its_tenant_and_token() {
        let (t, id) = (Uuid::new_v4(), Uuid::new_v4());
        let secret = mint(t, id);
        assert!(secret.starts_with("cgi_"));
        assert_eq!(parse(&secret), Some(Named { tenant_id: t, token_id: id }));
        assert_ne!(mint(t, id), secret);
    }

    #[test]
    fn malformed_secrets_name_nothing() {
        for bad in ["", "cgi_", "cgi_!!", "cgr_AAAA", "eyJhbGciOi.x.y"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
