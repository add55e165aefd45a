//! DEVICE sessions (POLICY.md section 11): a short-lived bearer token plus a refresh token
//! that works once.
//!
//! A refresh token is `cgr_` and the base64url of: the tenant id (16 bytes, zero for the
//! platform), the session id (16), the rotation generation (4, big-endian) and 32 random
//! bytes. Only its sha-256 is stored, on the session row. Naming tenant and session lets the
//! refresh find the row under row-level security without a cross-tenant read; the random
//! part is what proves possession. The generation tells a token from an earlier rotation
//! (used: the session ends at once, theft detection) from one never issued.
//!
//! Refresh is refused once the session is revoked (logout, password change, deactivation),
//! past its absolute end (the tenant's `deviceSessionDays`) or idle for longer than the
//! tenant's inactivity timeout. Every refusal is the same `UNAUTHENTICATED`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::login::LoginOutcome;
use super::session::{self, sha256_hex};
use super::token::TokenKeys;
use crate::ctx::{CredentialKind, Ctx, Principal};
use crate::db::entities::{auth_sessions, tenant_settings, users};
use crate::db::{DbScope, TenantTx};
use crate::domain::audit::AuditRecord;
use crate::error::{AppError, AppResult};
use crate::kinds::{AuditOutcome, Role};

/// What a refresh token starts with (secret scanners can recognise it).
pub const REFRESH_PREFIX: &str = "cgr_";
/// A device session's absolute lifetime unless its tenant sets another.
pub const DEFAULT_DEVICE_SESSION_DAYS: i32 = 30;
/// What `deviceSessionDays` may be set to.
pub const DEVICE_SESSION_DAYS: std::ops::RangeInclusive<i64> = 1..=90;
/// A device's bearer token lives this long; its session row still governs it.
pub const ACCESS_LIFETIME: Duration = Duration::minutes(15);

const RAW_LEN: usize = 16 + 16 + 4 + 32;

/// What a refresh token names (its random part is checked against the stored hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Named {
    tenant_id: Option<Uuid>,
    session_id: Uuid,
    generation: i32,
}

/// A new refresh token of `session_id` at `generation`.
pub(super) fn mint(tenant_id: Option<Uuid>, session_id: Uuid, generation: i32) -> String {
    let mut raw = Vec::with_capacity(RAW_LEN);
    raw.extend_from_slice(tenant_id.unwrap_or(Uuid::nil()).as_bytes());
    raw.extend_from_slice(session_id.as_bytes());
    raw.extend_from_slice(&generation.to_be_bytes());
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    raw.extend_from_slice(&secret);
    format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
}

fn parse(token: &str) -> Option<Named> {
    let raw = URL_SAFE_NO_PAD.decode(token.strip_prefix(REFRESH_PREFIX)?).ok()?;
    if raw.len() != RAW_LEN {
        return None;
    }
    let tenant = Uuid::from_slice(&raw[..16]).ok()?;
    let generation = i32::from_be_bytes(raw[32..36].try_into().ok()?);
    Some(Named {
        tenant_id: (!tenant.is_nil()).then_some(tenant),
        session_id: Uuid::from_slice(&raw[16..32]).ok()?,
        generation,
    })
}

/// The absolute lifetime of a new device session of `tenant_id` (the platform's: the default).
pub async fn lifetime(tx: &TenantTx, tenant_id: Option<Uuid>) -> AppResult<Duration> {
    let Some(tenant) = tenant_id else { return Ok(Duration::days(DEFAULT_DEVICE_SESSION_DAYS.into())) };
    let settings = tenant_settings::Entity::find_by_id(tenant).one(&*tx.conn().await?).await?;
    let days = settings.map_or(DEFAULT_DEVICE_SESSION_DAYS, |s| s.device_session_days);
    Ok(Duration::days(days.into()))
}

/// Why a refresh was refused (all answered alike).
enum Refusal {
    /// Malformed, unknown, not a device session's, or already ended.
    Refused(&'static str),
    /// A token of an earlier generation of a live session: it was used before.
    Reused(auth_sessions::Model),
}

/// `refreshSession(refreshToken)`: a new bearer token and a new refresh token for the
/// session the presented one names; the presented one is used up. A used one ends the
/// session at once (audited as an alert in the session's tenant). Every refusal is
/// `Unauthenticated`, also audited (as an anonymous denial).
pub async fn refresh(ctx: &Ctx, keys: &TokenKeys, presented: &str) -> AppResult<LoginOutcome> {
    ctx.require_session("REFRESH_SESSION")?;
    if ctx.principal().is_some() {
        // Served to anonymous callers only; a signed-in caller has no business here.
        return Err(AppError::Forbidden);
    }
    ctx.take_credential_turn()?;
    let tx = ctx.db();
    let now = ctx.now();
    let outcome = rotate(ctx, keys, presented, now).await;
    let why = match outcome {
        Ok(outcome) => return Ok(outcome),
        Err(Err(e)) => {
            tx.set_scope(DbScope::ANONYMOUS).await?;
            return Err(e);
        }
        Err(Ok(Refusal::Refused(why))) => why,
        Err(Ok(Refusal::Reused(row))) => {
            // The transaction is still scoped to the session's tenant: the revocation and
            // its alert are written there, and kept (this mutation runs outside a savepoint).
            session::revoke(tx, row.id, now).await?;
            let alert = AuditRecord::by(ctx, "REFRESH_TOKEN_REUSED", "auth", AuditOutcome::Alert)
                .tenant(row.tenant_id)
                .actor(row.user_id, row.role)
                .reason(format!("a used refresh token was presented again; device session {} ended", row.id));
            crate::domain::audit::write(tx, vec![alert], now).await?;
            "a used refresh token (the session is ended)"
        }
    };
    tx.set_scope(DbScope::ANONYMOUS).await?;
    ctx.audit(AuditRecord::by(ctx, "REFRESH_FAILED", "auth", AuditOutcome::Denied).reason(why));
    Err(AppError::Unauthenticated)
}

type Rotated = Result<LoginOutcome, Result<Refusal, AppError>>;

async fn rotate(ctx: &Ctx, keys: &TokenKeys, presented: &str, now: DateTime<Utc>) -> Rotated {
    let tx = ctx.db();
    let Some(named) = parse(presented) else { return Err(Ok(Refusal::Refused("a malformed refresh token"))) };
    // Platform sessions are visible to the SYSTEM_ADMIN context only (row-level security);
    // the statement below reads one row by id, and the hash decides.
    let lookup = DbScope {
        tenant_id: named.tenant_id,
        principal_id: None,
        role: named.tenant_id.is_none().then_some(Role::SystemAdmin),
    };
    tx.set_scope(lookup).await.map_err(Err)?;
    let tenant_filter = match named.tenant_id {
        Some(t) => auth_sessions::Column::TenantId.eq(t),
        None => auth_sessions::Column::TenantId.is_null(),
    };
    let conn = tx.conn().await.map_err(Err)?;
    let found = auth_sessions::Entity::find_by_id(named.session_id)
        .filter(tenant_filter)
        .find_also_related(users::Entity)
        .find_also_related(tenant_settings::Entity)
        .one(&*conn)
        .await
        .map_err(|e| Err(e.into()))?;
    drop(conn);
    let Some((row, user, settings)) = found else { return Err(Ok(Refusal::Refused("an unknown refresh token"))) };
    let Some(current) = row.refresh_hash.clone() else { return Err(Ok(Refusal::Refused("not a device session"))) };
    let hash = sha256_hex(presented);
    if !bool::from(hash.as_bytes().ct_eq(current.as_bytes())) {
        // Only the holder of one of this session's tokens knows its id: an earlier
        // generation is a token that was used (by the device or by a thief).
        if named.generation < row.refresh_generation && row.revoked_at.is_none() {
            return Err(Ok(Refusal::Reused(row)));
        }
        return Err(Ok(Refusal::Refused("an unknown refresh token")));
    }
    if !session::live(&row, user.as_ref(), settings.as_ref(), now) {
        return Err(Ok(Refusal::Refused("the session has ended")));
    }
    let user = user.ok_or(Ok(Refusal::Refused("the session has ended")))?;
    tx.set_scope(DbScope { tenant_id: user.tenant_id, principal_id: Some(user.id), role: Some(user.role) })
        .await
        .map_err(Err)?;
    let generation = row.refresh_generation.saturating_add(1);
    let refresh_token = mint(row.tenant_id, row.id, generation);
    let csrf_token = session::random_token();
    // Used up in one statement: of two concurrent refreshes with the same token, one wins
    // and the other finds the hash changed, as a reuse.
    let updated = auth_sessions::Entity::update_many()
        .col_expr(auth_sessions::Column::RefreshHash, Expr::value(sha256_hex(&refresh_token)))
        .col_expr(auth_sessions::Column::RefreshGeneration, Expr::value(generation))
        .col_expr(auth_sessions::Column::CsrfHash, Expr::value(sha256_hex(&csrf_token)))
        .col_expr(auth_sessions::Column::LastSeenAt, Expr::value(now))
        .filter(auth_sessions::Column::Id.eq(row.id))
        .filter(auth_sessions::Column::RefreshHash.eq(current))
        .filter(auth_sessions::Column::RevokedAt.is_null())
        .exec(&*tx.conn().await.map_err(Err)?)
        .await
        .map_err(|e| Err(e.into()))?;
    if updated.rows_affected != 1 {
        return Err(Ok(Refusal::Reused(row)));
    }
    let expires_at = access_expiry(now, row.expires_at);
    let token = keys.issue(user.id, user.tenant_id, user.role, row.id, now, expires_at).map_err(Err)?;
    Ok(LoginOutcome {
        token,
        csrf_token,
        expires_at,
        refresh_token: Some(refresh_token),
        principal: Principal {
            user_id: user.id,
            tenant_id: user.tenant_id,
            role: user.role,
            session_id: row.id,
            credential: CredentialKind::Session,
        },
    })
}

/// A device's bearer token ends after [`ACCESS_LIFETIME`], never after its session.
pub fn access_expiry(now: DateTime<Utc>, session_end: DateTime<Utc>) -> DateTime<Utc> {
    (now + ACCESS_LIFETIME).min(session_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_names_its_tenant_session_and_generation() {
        let (t, s) = (Uuid::new_v4(), Uuid::new_v4());
        let token = mint(Some(t), s, 7);
        assert!(token.starts_with(REFRESH_PREFIX));
        assert_eq!(parse(&token), Some(Named { tenant_id: Some(t), session_id: s, generation: 7 }));
        assert_eq!(parse(&mint(None, s, 0)).map(|n| n.tenant_id), Some(None));
        assert_ne!(mint(Some(t), s, 7), token, "256 random bits each time");
    }

    #[test]
    fn malformed_refresh_tokens_name_nothing() {
        for bad in ["", "cgr_", "cgr_abc", "cgi_AAAA", &format!("cgr_{}", URL_SAFE_NO_PAD.encode([0u8; 67]))] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
