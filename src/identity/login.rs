//! Login, logout, password change.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel,
    QueryFilter, Statement, Value,
};
use uuid::Uuid;

use super::credential::{self, CredentialGuard, Proof};
use super::token::TokenKeys;
use super::{device, password, session};
use crate::ctx::{CookieEffect, CredentialKind, Ctx, Principal};
use crate::db::entities::{tenants, users};
use crate::db::{DbScope, TenantTx};
use crate::domain::audit::AuditRecord;
use crate::domain::kinds::{AuditOutcome, ClientKind, Role, UserStatus};
use crate::error::{AppError, AppResult};

const MAX_EMAIL_LEN: usize = 254;

#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub token: String,
    pub csrf_token: String,
    /// When `token` expires (a BROWSER session's end; a DEVICE token's short life).
    pub expires_at: DateTime<Utc>,
    /// DEVICE sessions only: the refresh token, shown once.
    pub refresh_token: Option<String>,
    pub principal: Principal,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    user_id: Uuid,
    tenant_id: Option<Uuid>,
    role: Role,
}

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The accounts registered under `email`, in any tenant, or only in the tenant whose slug
/// is `tenant`. On PostgreSQL this is the one cross-tenant read, through a SECURITY DEFINER
/// function that returns ids only.
async fn candidates(tx: &TenantTx, email: &str, tenant: Option<&str>) -> AppResult<Vec<Candidate>> {
    if tx.backend() == DbBackend::Postgres {
        let stmt = match tenant {
            None => Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT user_id, tenant_id, role FROM auth_login_candidates($1)",
                [Value::String(Some(email.to_owned()))],
            ),
            Some(slug) => Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT user_id, tenant_id, role FROM auth_login_candidates($1, $2)",
                [Value::String(Some(email.to_owned())), Value::String(Some(slug.to_owned()))],
            ),
        };
        let rows = tx.conn().await?.query_all_raw(stmt).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let role: String = r.try_get("", "role")?;
            out.push(Candidate {
                user_id: r.try_get("", "user_id")?,
                tenant_id: r.try_get("", "tenant_id")?,
                role: Role::parse(&role).ok_or_else(|| AppError::internal("unknown role in database"))?,
            });
        }
        return Ok(out);
    }
    let mut rows = users::Entity::find().filter(users::Column::Email.eq(email)).all(&*tx.conn().await?).await?;
    if let Some(slug) = tenant {
        let id =
            tenants::Entity::find().filter(tenants::Column::Slug.eq(slug)).one(&*tx.conn().await?).await?.map(|t| t.id);
        rows.retain(|u| id.is_some() && u.tenant_id == id);
    }
    Ok(rows.into_iter().map(|u| Candidate { user_id: u.id, tenant_id: u.tenant_id, role: u.role }).collect())
}

/// Keeps the candidates whose account is ACTIVE, reading each in its own tenant context
/// (the transaction's context is restored by the caller's next `set_scope`).
async fn active_only(tx: &TenantTx, found: Vec<Candidate>) -> AppResult<Vec<Candidate>> {
    let mut active = Vec::new();
    for c in found {
        tx.set_scope(DbScope { tenant_id: c.tenant_id, principal_id: Some(c.user_id), role: Some(c.role) }).await?;
        let user = users::Entity::find_by_id(c.user_id).one(&*tx.conn().await?).await?;
        if user.is_some_and(|u| u.status == UserStatus::Active) {
            active.push(c);
        }
    }
    tx.set_scope(DbScope::ANONYMOUS).await?;
    Ok(active)
}

/// Accounts one login without `tenant:` may try its password on. A login without a tenant
/// takes as long as this many password checks (the missing ones are waited out, not
/// computed, up to [`MAX_LOGIN_PADDING`]), so its timing does not tell how many accounts an
/// email has, or whether it has one. An email with more accounts than this signs in by
/// naming the tenant.
pub const ACCOUNTS_TRIED_WITHOUT_TENANT: usize = 3;

/// `login(email, password, tenant)`. Unknown email, wrong password, a blocked source or an
/// inactive account all give `InvalidCredentials` after one full PBKDF2 verification, so
/// neither the answer nor its timing tells them apart. With `tenant` (a slug) only that
/// tenant's account is considered; without it, the password is tried on each active account
/// of the email (up to [`ACCOUNTS_TRIED_WITHOUT_TENANT`]) and signs in where it matches
/// exactly one. The password check is [`credential::prove`]: no connection is held while it
/// hashes, and a failure is counted and audited for good before the answer.
pub async fn login(
    ctx: &Ctx,
    keys: &TokenKeys,
    guard: &CredentialGuard,
    email: &str,
    password: &str,
    tenant: Option<&str>,
    client: ClientKind,
) -> AppResult<LoginOutcome> {
    ctx.require_session("LOGIN")?;
    let email = normalize_email(email);
    if email.len() > MAX_EMAIL_LEN || password.len() > password::MAX_PASSWORD_LEN {
        return Err(AppError::bad_input("email or password too long"));
    }
    guard.admit(ctx).await?;
    let tx = ctx.db();
    let mut found = candidates(tx, &email, tenant).await?;
    if found.len() > 1 {
        // Only active accounts compete for an email: an invitation in another tenant must
        // not lock the owner of the address out.
        found = active_only(tx, found).await?;
    }
    let (checks, outcome) = match found.as_slice() {
        [candidate] => (1, login_to(ctx, keys, guard, *candidate, password, client).await),
        several if several.len() > 1 && several.len() <= ACCOUNTS_TRIED_WITHOUT_TENANT => {
            (several.len(), login_to_one_of(ctx, keys, guard, several, password, client).await)
        }
        _ => {
            // Unknown email (or more accounts than a login without a tenant tries).
            tx.pause().await?;
            guard.hashing.verify(None, password.to_owned()).await?;
            ctx.audit(AuditRecord::by(ctx, "LOGIN_FAILED", "auth", AuditOutcome::Denied).reason("unknown account"));
            (1, Err(AppError::InvalidCredentials))
        }
    };
    if tenant.is_none() && checks < ACCOUNTS_TRIED_WITHOUT_TENANT {
        // The checks not run are waited out at their measured cost (queueing excluded, so a
        // busy hashing pool does not lengthen the wait), holding no connection or worker.
        // Bounded, so that the login stays within the request timeout. The bound bites only
        // when a check computes for over 1.5 s (an overloaded hashing pool; a check takes a
        // fraction of a second on a server); then an email with one account or none answers
        // sooner than one with three. A trade-off, documented in the README.
        let missing = (ACCOUNTS_TRIED_WITHOUT_TENANT - checks) as u32;
        tokio::time::sleep((guard.hashing.typical_check() * missing).min(MAX_LOGIN_PADDING)).await;
    }
    outcome
}

/// The longest a tenant-less login waits out the checks it did not run.
const MAX_LOGIN_PADDING: std::time::Duration = std::time::Duration::from_secs(3);

/// The login of one candidate account.
async fn login_to(
    ctx: &Ctx,
    keys: &TokenKeys,
    guard: &CredentialGuard,
    candidate: Candidate,
    password: &str,
    client: ClientKind,
) -> AppResult<LoginOutcome> {
    let tx = ctx.db();
    let now = ctx.now();
    tx.set_scope(DbScope {
        tenant_id: candidate.tenant_id,
        principal_id: Some(candidate.user_id),
        role: Some(candidate.role),
    })
    .await?;
    let user = users::Entity::find_by_id(candidate.user_id)
        .one(&*tx.conn().await?)
        .await?
        .ok_or(AppError::InvalidCredentials)?;
    let mut account = credential::Account::from(&user);
    if user.status != UserStatus::Active {
        // Checked against a dummy hash (same time), and not counted: nothing to guess. The
        // event goes to the account's chain now, while the transaction is scoped to it.
        account.password_hash = None;
        crate::domain::audit::write(
            tx,
            vec![login_record(ctx, &user, "LOGIN_FAILED", AuditOutcome::Denied).reason("account not active")],
            now,
        )
        .await?;
        tx.pause().await?;
        guard.hashing.verify(None, password.to_owned()).await?;
        tx.set_scope(DbScope::ANONYMOUS).await?;
        return Err(AppError::InvalidCredentials);
    }
    let failure = login_record(ctx, &user, "LOGIN_FAILED", AuditOutcome::Denied).reason("wrong password");
    match credential::prove(ctx, guard, &account, password, failure).await? {
        Proof::Valid => signed_in(ctx, keys, &user, client).await,
        Proof::Wrong | Proof::Blocked => {
            // The rest of the request is an anonymous caller's again.
            tx.set_scope(DbScope::ANONYMOUS).await?;
            Err(AppError::InvalidCredentials)
        }
    }
}

/// A login without a tenant for an email with several active accounts: the password is
/// checked on each; it signs in where it matches exactly one. Accounts it matched none of
/// count a failure only when it matched no account at all (a person signing in to one of
/// its tenants is not guessing at the others).
async fn login_to_one_of(
    ctx: &Ctx,
    keys: &TokenKeys,
    guard: &CredentialGuard,
    several: &[Candidate],
    password: &str,
    client: ClientKind,
) -> AppResult<LoginOutcome> {
    let tx = ctx.db();
    let mut matched = Vec::new();
    let mut wrong = Vec::new();
    for c in several {
        tx.set_scope(DbScope { tenant_id: c.tenant_id, principal_id: Some(c.user_id), role: Some(c.role) }).await?;
        let Some(user) = users::Entity::find_by_id(c.user_id).one(&*tx.conn().await?).await? else { continue };
        let account = credential::Account::from(&user);
        let failure = login_record(ctx, &user, "LOGIN_FAILED", AuditOutcome::Denied).reason("wrong password");
        match credential::check(ctx, guard, &account, password, &failure).await? {
            Proof::Valid => matched.push(user),
            Proof::Wrong => wrong.push((user, account, failure)),
            Proof::Blocked => {}
        }
    }
    match matched.as_slice() {
        [user] => {
            let user = user.clone();
            tx.set_scope(DbScope { tenant_id: user.tenant_id, principal_id: Some(user.id), role: Some(user.role) })
                .await?;
            signed_in(ctx, keys, &user, client).await
        }
        [] => {
            for (user, account, failure) in wrong {
                tx.set_scope(DbScope { tenant_id: user.tenant_id, principal_id: Some(user.id), role: Some(user.role) })
                    .await?;
                credential::count_wrong(ctx, &account, failure).await?;
            }
            tx.set_scope(DbScope::ANONYMOUS).await?;
            Err(AppError::InvalidCredentials)
        }
        _ => {
            // The caller proved the password of each: telling it to name the tenant reveals
            // nothing it does not know.
            tx.set_scope(DbScope::ANONYMOUS).await?;
            Err(AppError::bad_input(
                "this email and password match accounts in several tenants: name the tenant (login's tenant argument)",
            ))
        }
    }
}

fn login_record(ctx: &Ctx, user: &users::Model, action: &str, outcome: AuditOutcome) -> AuditRecord {
    AuditRecord::by(ctx, action, "auth", outcome).tenant(user.tenant_id).actor(user.id, user.role)
}

/// The end of a successful login: the transaction is scoped to `user`, whose password was
/// just proven.
async fn signed_in(ctx: &Ctx, keys: &TokenKeys, user: &users::Model, client: ClientKind) -> AppResult<LoginOutcome> {
    let tx = ctx.db();
    let now = ctx.now();
    // The account as it is now: the hash took a while, without a transaction, and the
    // password may have changed or the account been deactivated meanwhile.
    let current = users::Entity::find_by_id(user.id).one(&*tx.conn().await?).await?;
    if current.is_none_or(|c| c.password_hash != user.password_hash || c.status != UserStatus::Active) {
        tx.set_scope(DbScope::ANONYMOUS).await?;
        return Err(AppError::InvalidCredentials);
    }
    let mut row = user.clone().into_active_model();
    row.failed_login_count = Set(0);
    row.locked_until = Set(None);
    row.last_login_at = Set(Some(now));
    row.updated_at = Set(now);
    row.update(&*tx.conn().await?).await?;

    let outcome = sign_in(ctx, keys, user, client).await?;
    ctx.audit(match client {
        ClientKind::Browser => login_record(ctx, user, "LOGIN", AuditOutcome::Allowed),
        ClientKind::Device => {
            login_record(ctx, user, "LOGIN", AuditOutcome::Allowed).reason("device session (refresh token issued)")
        }
    });
    Ok(outcome)
}

/// Signs `user` in, whose identity has just been proven (a password, an accepted
/// invitation): opens its session and decides how the client keeps it. BROWSER: the
/// session cookie is set with the answer. DEVICE: no cookie; the outcome carries the
/// refresh token. Writes no audit event (the caller's business). The request's transaction
/// must already be scoped to `user`.
pub async fn sign_in(ctx: &Ctx, keys: &TokenKeys, user: &users::Model, client: ClientKind) -> AppResult<LoginOutcome> {
    let outcome = start_session_as(ctx.db(), keys, user, ctx.now(), client).await?;
    if client == ClientKind::Browser {
        ctx.set_cookie_effect(CookieEffect::SetSession {
            token: outcome.token.clone(),
            csrf: outcome.csrf_token.clone(),
            expires_at: outcome.expires_at,
        });
    }
    Ok(outcome)
}

/// Opens a session for `user`, whose identity has just been proven: the `auth_sessions` row
/// (with its CSRF token) and the signed token naming it. This is what a successful `login`
/// does once the password is checked; it writes no audit event and sets no cookie (the
/// caller's business). `tx` must already be scoped to `user`.
pub async fn start_session(
    tx: &TenantTx,
    keys: &TokenKeys,
    user: &users::Model,
    now: DateTime<Utc>,
) -> AppResult<LoginOutcome> {
    start_session_as(tx, keys, user, now, ClientKind::Browser).await
}

/// [`start_session`] for either kind of client: a DEVICE session lives the tenant's device
/// lifetime, its bearer token [`device::ACCESS_LIFETIME`], and it gets a refresh token.
pub async fn start_session_as(
    tx: &TenantTx,
    keys: &TokenKeys,
    user: &users::Model,
    now: DateTime<Utc>,
    client: ClientKind,
) -> AppResult<LoginOutcome> {
    let scope = tx.scope();
    if scope.principal_id != Some(user.id) || scope.tenant_id != user.tenant_id || scope.role != Some(user.role) {
        return Err(AppError::internal("a session is opened in a transaction scoped to its user"));
    }
    let new_session = session::create(tx, user.id, user.tenant_id, user.role, now, client).await?;
    let expires_at = match client {
        ClientKind::Browser => new_session.expires_at,
        ClientKind::Device => device::access_expiry(now, new_session.expires_at),
    };
    let token = keys.issue(user.id, user.tenant_id, user.role, new_session.id, now, expires_at)?;
    Ok(LoginOutcome {
        token,
        csrf_token: new_session.csrf_token,
        expires_at,
        refresh_token: new_session.refresh_token,
        principal: Principal {
            user_id: user.id,
            tenant_id: user.tenant_id,
            role: user.role,
            session_id: new_session.id,
            credential: CredentialKind::Session,
        },
    })
}

/// Revokes the caller's session at once; the same token is refused from the next request on.
pub async fn logout(ctx: &Ctx) -> AppResult<()> {
    ctx.require_session("LOGOUT")?;
    let p = *ctx.require()?;
    session::revoke(ctx.db(), p.session_id, ctx.now()).await?;
    ctx.audit(AuditRecord::by(ctx, "LOGOUT", "auth", AuditOutcome::Allowed));
    ctx.set_cookie_effect(CookieEffect::Clear);
    Ok(())
}

/// Changes the caller's password, ends its other sessions and revokes its integration tokens. A wrong current password
/// counts like a failed login ([`credential::prove`]).
pub async fn change_password(ctx: &Ctx, guard: &CredentialGuard, current: &str, new: &str) -> AppResult<()> {
    ctx.require_session("PASSWORD_CHANGE")?;
    let p = *ctx.require()?;
    password::check_new_password(new)?;
    if current.len() > password::MAX_PASSWORD_LEN {
        return Err(AppError::InvalidCredentials);
    }
    guard.admit(ctx).await?;
    let tx = ctx.db();
    let user = users::Entity::find_by_id(p.user_id).one(&*tx.conn().await?).await?.ok_or(AppError::Unauthenticated)?;
    password::check_new_password_for(new, &user.email)?;
    let failure =
        AuditRecord::by(ctx, "PASSWORD_CHANGE_FAILED", "auth", AuditOutcome::Denied).reason("wrong current password");
    if credential::prove(ctx, guard, &credential::Account::from(&user), current, failure).await? != Proof::Valid {
        return Err(AppError::InvalidCredentials);
    }
    // Hashing holds no connection either: the transaction pauses first.
    tx.pause().await?;
    let hash = guard.hashing.hash(new.to_owned()).await?;
    let now = ctx.now();
    tx.atomic(async {
        let mut row = user.into_active_model();
        row.password_hash = Set(Some(hash));
        row.password_changed_at = Set(Some(now));
        row.updated_at = Set(now);
        row.update(&*tx.conn().await?).await?;
        session::revoke_all(tx, p.user_id, Some(p.session_id), now).await?;
        super::integration::revoke_all_of(tx, p.user_id, now).await?;
        Ok(())
    })
    .await?;
    ctx.audit(AuditRecord::by(ctx, "PASSWORD_CHANGED", "auth", AuditOutcome::Allowed));
    Ok(())
}

/// Used by `revoke_all` callers elsewhere; kept here so all session endings are in one file.
pub async fn end_all_sessions_of(ctx: &Ctx, user_id: Uuid) -> AppResult<u64> {
    session::revoke_all(ctx.db(), user_id, None, ctx.now()).await
}
