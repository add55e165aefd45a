//! Server-side sessions: the row behind every token. Logout revokes it at once; it ends
//! after the tenant's inactivity timeout and after an absolute lifetime.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::token::Claims;
use crate::ctx::{CredentialKind, Principal};
use crate::db::TenantTx;
use crate::db::entities::{auth_sessions, tenant_settings, users};
use crate::domain::kinds::{ClientKind, Role, UserStatus};
use crate::error::{AppError, AppResult};

pub const ABSOLUTE_LIFETIME: Duration = Duration::hours(12);
pub const DEFAULT_INACTIVITY_MINUTES: i32 = 30;
/// `last_seen_at` is written at most this often, so reads do not all become writes.
const TOUCH_EVERY: Duration = Duration::seconds(30);

/// Whether this request must prove it came from our own page (cookie-authenticated POST).
#[derive(Debug, Clone)]
pub enum CsrfCheck {
    NotRequired,
    Required(Option<String>),
}

pub struct NewSession {
    pub id: Uuid,
    pub csrf_token: String,
    /// The session's absolute end.
    pub expires_at: DateTime<Utc>,
    /// DEVICE sessions: the first refresh token (shown once; only its hash is kept).
    pub refresh_token: Option<String>,
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Opens a session for a user whose identity has just been proven: a BROWSER session lives
/// [`ABSOLUTE_LIFETIME`]; a DEVICE session `lifetime` (the tenant's device setting), and
/// gets its first refresh token.
pub async fn create(
    tx: &TenantTx,
    user_id: Uuid,
    tenant_id: Option<Uuid>,
    role: Role,
    now: DateTime<Utc>,
    client: ClientKind,
) -> AppResult<NewSession> {
    let id = Uuid::new_v4();
    let (expires_at, refresh_token) = match client {
        ClientKind::Browser => (now + ABSOLUTE_LIFETIME, None),
        ClientKind::Device => {
            (now + super::device::lifetime(tx, tenant_id).await?, Some(super::device::mint(tenant_id, id, 0)))
        }
    };
    let session = NewSession { id, csrf_token: random_token(), expires_at, refresh_token };
    let row = auth_sessions::ActiveModel {
        id: Set(session.id),
        tenant_id: Set(tenant_id),
        user_id: Set(user_id),
        role: Set(role),
        csrf_hash: Set(sha256_hex(&session.csrf_token)),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(session.expires_at),
        revoked_at: Set(None),
        refresh_hash: Set(session.refresh_token.as_deref().map(sha256_hex)),
        refresh_generation: Set(0),
    };
    auth_sessions::Entity::insert(row).exec_without_returning(&*tx.conn().await?).await?;
    Ok(session)
}

/// Whether `session` (with its user and tenant settings, as one statement read them) is
/// still live for `user_id`/`role` at `now`: not revoked, before its absolute end, used
/// within the tenant's inactivity timeout, its user active and unchanged.
pub(super) fn live(
    session: &auth_sessions::Model,
    user: Option<&users::Model>,
    settings: Option<&tenant_settings::Model>,
    now: DateTime<Utc>,
) -> bool {
    let minutes = settings.map(|s| s.session_timeout_minutes).unwrap_or(DEFAULT_INACTIVITY_MINUTES);
    let idle = Duration::minutes(i64::from(minutes));
    session.revoked_at.is_none()
        && now < session.expires_at
        && now < session.last_seen_at + idle
        && user.is_some_and(|u| {
            u.id == session.user_id
                && u.status == UserStatus::Active
                && u.tenant_id == session.tenant_id
                && u.role == session.role
        })
}

/// The session check every authenticated request passes: session, user and tenant settings
/// in one statement. The transaction's tenant context is the token's, so on PostgreSQL a
/// token naming another tenant's session finds nothing. Returns the principal and its user
/// row (the request's `viewer` and `me` need no statement of their own).
pub async fn check(
    tx: &TenantTx,
    claims: &Claims,
    csrf: &CsrfCheck,
    now: DateTime<Utc>,
) -> AppResult<(Principal, users::Model)> {
    let tenant_filter = match claims.tid {
        Some(t) => auth_sessions::Column::TenantId.eq(t),
        None => auth_sessions::Column::TenantId.is_null(),
    };
    let (session, user, settings) = auth_sessions::Entity::find_by_id(claims.sid)
        .filter(tenant_filter)
        .find_also_related(users::Entity)
        .find_also_related(tenant_settings::Entity)
        .one(&*tx.conn().await?)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let minutes = settings.map(|s| s.session_timeout_minutes).unwrap_or(DEFAULT_INACTIVITY_MINUTES);
    let idle = Duration::minutes(i64::from(minutes));
    let valid = session.user_id == claims.sub
        && session.role == claims.role
        && session.revoked_at.is_none()
        && now < session.expires_at
        && now < session.last_seen_at + idle;
    if !valid {
        return Err(AppError::Unauthenticated);
    }
    if let CsrfCheck::Required(header) = csrf {
        let presented = header.as_deref().map(sha256_hex).unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(session.csrf_hash.as_bytes())) {
            return Err(AppError::CsrfRejected);
        }
    }
    let user = user
        .filter(|u| u.status == UserStatus::Active && u.tenant_id == claims.tid && u.role == claims.role)
        .ok_or(AppError::Unauthenticated)?;
    if now - session.last_seen_at >= TOUCH_EVERY {
        let switched = tx.prepare_write().await?;
        auth_sessions::Entity::update_many()
            .col_expr(auth_sessions::Column::LastSeenAt, Expr::value(now))
            .filter(auth_sessions::Column::Id.eq(session.id))
            .exec(&*tx.conn().await?)
            .await?;
        if switched {
            // A reading request does not keep SQLite's one write lock for the rest of its run.
            tx.end_write().await?;
        }
    }
    let principal = Principal {
        user_id: claims.sub,
        tenant_id: claims.tid,
        role: claims.role,
        session_id: session.id,
        credential: CredentialKind::Session,
    };
    Ok((principal, user))
}

pub async fn revoke(tx: &TenantTx, session_id: Uuid, now: DateTime<Utc>) -> AppResult<()> {
    auth_sessions::Entity::update_many()
        .col_expr(auth_sessions::Column::RevokedAt, Expr::value(now))
        .filter(auth_sessions::Column::Id.eq(session_id))
        .filter(auth_sessions::Column::RevokedAt.is_null())
        .exec(&*tx.conn().await?)
        .await?;
    Ok(())
}

/// Ends every session of `user_id` except `keep` (password change, deactivation).
pub async fn revoke_all(tx: &TenantTx, user_id: Uuid, keep: Option<Uuid>, now: DateTime<Utc>) -> AppResult<u64> {
    let mut q = auth_sessions::Entity::update_many()
        .col_expr(auth_sessions::Column::RevokedAt, Expr::value(now))
        .filter(auth_sessions::Column::UserId.eq(user_id))
        .filter(auth_sessions::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        q = q.filter(auth_sessions::Column::Id.ne(keep));
    }
    Ok(q.exec(&*tx.conn().await?).await?.rows_affected)
}
