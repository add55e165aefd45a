//! Proving a password: the one path of `login`, `changePassword` and `deleteMyAccount`.
//!
//! - **One per request.** A request runs at most one credential operation; aliases cannot
//!   multiply the hashing work or the guesses ([`Ctx::take_credential_turn`]).
//! - **Per source address** a token bucket limits credential operations
//!   ([`CredentialGuard::admit`]: HTTP 429 with `Retry-After`); on PostgreSQL the buckets are
//!   shared by every server on the database (`rate_buckets`), so replicas do not multiply
//!   the limit.
//! - **No connection while hashing.** The request's transaction pauses (commits, gives its
//!   connection back) before PBKDF2 runs on the bounded [`Hashing`] pool.
//! - **Per account and source** (`login_throttles`): failures are counted in one atomic
//!   statement; every [`BLOCK_AFTER`] failures in a row from one address block that
//!   address for that account, 15 minutes and doubling each time (at most a day). The owner,
//!   signing in from elsewhere, is not blocked: knowing an email is not enough to keep its
//!   owner out. A success from an address clears that address's count.
//! - **Failures persist.** A failure's counters and its audit event commit before the answer,
//!   whatever the rest of the request does.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::password::Hashing;
use crate::ctx::Ctx;
use crate::db::Db;
use crate::db::entities::{login_throttles, users};
use crate::domain::audit::AuditRecord;
use crate::domain::rate_limit::{Admission, Buckets};
use crate::error::{AppError, AppResult};
use crate::kinds::{AuditOutcome, Role};

/// Failures in a row from one source that block it for the account.
pub const BLOCK_AFTER: i32 = 5;
/// The first block; each further one doubles, up to [`LONGEST_BLOCK`].
pub const FIRST_BLOCK: Duration = Duration::minutes(15);
pub const LONGEST_BLOCK: Duration = Duration::hours(24);
/// Credential operations a source address may start per minute (burst included).
pub const DEFAULT_PER_SOURCE_PER_MINUTE: u32 = 20;
/// What a request without a known address counts as.
const UNKNOWN_SOURCE: &str = "unknown";
/// The bucket scope of the per-source limit.
pub const SOURCE_SCOPE: &str = "credential";

/// The server's limits on credential work: the hashing pool and the per-source buckets.
#[derive(Debug)]
pub struct CredentialGuard {
    pub hashing: Hashing,
    per_source: Buckets<String>,
    per_source_per_minute: u32,
}

impl Default for CredentialGuard {
    fn default() -> Self {
        Self::new(Hashing::default(), DEFAULT_PER_SOURCE_PER_MINUTE)
    }
}

impl CredentialGuard {
    /// A guard whose per-source buckets are this process's; [`on`](CredentialGuard::on)
    /// shares them through the server's database.
    pub fn new(hashing: Hashing, per_source_per_minute: u32) -> Self {
        Self { hashing, per_source: Buckets::in_process(), per_source_per_minute }
    }

    /// The same guard, keeping its per-source buckets where `db` keeps shared state
    /// (PostgreSQL: every server on the database counts in the same buckets).
    pub fn on(mut self, db: &Db) -> Self {
        self.per_source = Buckets::for_db(db, SOURCE_SCOPE);
        self
    }

    /// Takes the request's one credential turn and a token of its source's bucket.
    pub async fn admit(&self, ctx: &Ctx) -> AppResult<()> {
        ctx.take_credential_turn()?;
        let Some(ip) = ctx.meta().ip.as_deref() else { return Ok(()) };
        match self.per_source.admit(source_key(ip), self.per_source_per_minute, ctx.now()).await? {
            Admission::Admitted => Ok(()),
            Admission::Refused { retry_after_secs, first } => {
                if first {
                    ctx.audit(AuditRecord::by(ctx, "CREDENTIAL_RATE_LIMITED", "auth", AuditOutcome::Alert).reason(
                        format!(
                            "more than {} credential operations a minute from this address",
                            self.per_source_per_minute
                        ),
                    ));
                }
                Err(AppError::Throttled { retry_after_secs })
            }
        }
    }
}

/// Whose password is being checked.
#[derive(Debug, Clone)]
pub struct Account {
    pub user_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub role: Role,
    pub password_hash: Option<String>,
}

impl From<&users::Model> for Account {
    fn from(u: &users::Model) -> Self {
        Self { user_id: u.id, tenant_id: u.tenant_id, role: u.role, password_hash: u.password_hash.clone() }
    }
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    Valid,
    Wrong,
    /// This source is blocked for this account; the password was not checked (a dummy hash
    /// was, so that the answer takes as long).
    Blocked,
}

fn source(ctx: &Ctx) -> String {
    ctx.meta().ip.as_deref().map_or_else(|| UNKNOWN_SOURCE.to_owned(), source_key)
}

/// What the limits count a client address as: IPv4 as is, IPv6 by its /64 (the block one
/// subscriber gets: rotating addresses within it buys no fresh limits).
pub fn source_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => ip.to_owned(),
    }
}

/// Checks `password` for `account`; the request's transaction must be scoped to the account.
/// A wrong password is counted, and `failure` (its audit event, in the account's chain) is
/// committed before this returns, as is a blocked attempt's.
pub async fn prove(
    ctx: &Ctx,
    guard: &CredentialGuard,
    account: &Account,
    password: &str,
    failure: AuditRecord,
) -> AppResult<Proof> {
    let proof = check(ctx, guard, account, password, &failure).await?;
    if proof == Proof::Wrong {
        count_wrong(ctx, account, failure).await?;
    }
    Ok(proof)
}

/// [`prove`] without counting a wrong password: for a login that tries one password on
/// several accounts, where only the accounts it matches none of count a failure
/// ([`count_wrong`]). A blocked attempt is audited (`failure`) and committed.
pub async fn check(
    ctx: &Ctx,
    guard: &CredentialGuard,
    account: &Account,
    password: &str,
    failure: &AuditRecord,
) -> AppResult<Proof> {
    let tx = ctx.db();
    let now = ctx.now();
    let source = source(ctx);
    let throttle =
        login_throttles::Entity::find_by_id((account.user_id, source.clone())).one(&*tx.conn().await?).await?;
    let blocked = throttle.and_then(|t| t.blocked_until).is_some_and(|until| until > now);
    tx.pause().await?;
    tracing::debug!("credential check started");
    let hash = if blocked { None } else { account.password_hash.clone() };
    let valid = guard.hashing.verify(hash, password.to_owned()).await?;
    if blocked {
        let record = failure.clone().reason("this address is blocked for this account after repeated failures");
        crate::domain::audit::write(tx, vec![record], now).await?;
        tx.pause().await?;
        return Ok(Proof::Blocked);
    }
    if valid {
        login_throttles::Entity::delete_many()
            .filter(login_throttles::Column::UserId.eq(account.user_id))
            .filter(login_throttles::Column::Source.eq(source))
            .exec(&*tx.conn().await?)
            .await?;
        return Ok(Proof::Valid);
    }
    Ok(Proof::Wrong)
}

/// Counts a wrong password for `account` from the request's source (blocking the source
/// every [`BLOCK_AFTER`] failures) and commits `failure` with it. The transaction must be
/// scoped to the account.
pub async fn count_wrong(ctx: &Ctx, account: &Account, failure: AuditRecord) -> AppResult<()> {
    let tx = ctx.db();
    let now = ctx.now();
    let source = source(ctx);
    let failures = count_failure(ctx, account, &source, now).await?;
    let mut records = vec![failure];
    if failures % BLOCK_AFTER == 0 {
        let until = now + block_length(failures);
        block(ctx, account, &source, until, now).await?;
        records.push(
            AuditRecord::by(ctx, "ACCOUNT_LOCKED", "auth", AuditOutcome::Alert)
                .tenant(account.tenant_id)
                .actor(account.user_id, account.role)
                .reason(format!(
                    "{failures} failed credential checks in a row from one address; it is blocked for this \
                     account until {}",
                    until.to_rfc3339()
                )),
        );
    }
    // The failure and its trail are kept whatever the rest of the request does.
    crate::domain::audit::write(tx, records, now).await?;
    tx.pause().await?;
    Ok(())
}

/// 15 minutes for the first block, doubling with each further one, at most a day.
pub fn block_length(failures: i32) -> Duration {
    let nth = (failures / BLOCK_AFTER).clamp(1, 16) as u32;
    let minutes = FIRST_BLOCK.num_minutes().saturating_mul(1 << (nth - 1));
    Duration::minutes(minutes).min(LONGEST_BLOCK)
}

/// One more failure of `account` from `source`, counted in one statement (concurrent wrong
/// passwords each count); returns the count. The account's own counter goes up too (what
/// administrators see).
async fn count_failure(ctx: &Ctx, account: &Account, source: &str, now: DateTime<Utc>) -> AppResult<i32> {
    use login_throttles::Column as C;
    let tx = ctx.db();
    let mut insert = Query::insert();
    insert
        .into_table(login_throttles::Entity)
        .columns([C::UserId, C::Source, C::TenantId, C::Failures, C::UpdatedAt])
        .values_panic([account.user_id.into(), source.into(), account.tenant_id.into(), 1i32.into(), now.into()])
        .on_conflict(
            OnConflict::columns([C::UserId, C::Source])
                .value(C::Failures, Expr::col((login_throttles::Entity, C::Failures)).add(1))
                .value(C::UpdatedAt, Expr::value(now))
                .to_owned(),
        )
        .returning_col(C::Failures);
    let stmt = tx.backend().build(&insert);
    let row = tx.conn().await?.query_one_raw(stmt).await?.ok_or_else(|| AppError::internal("no failure count"))?;
    let failures: i32 = row.try_get("", "failures")?;
    users::Entity::update_many()
        .col_expr(users::Column::FailedLoginCount, Expr::col(users::Column::FailedLoginCount).add(1))
        .filter(users::Column::Id.eq(account.user_id))
        .exec(&*tx.conn().await?)
        .await?;
    Ok(failures)
}

/// Blocks `source` for `account` until `until`; the account shows the latest block to
/// administrators (`lockedUntil`).
async fn block(ctx: &Ctx, account: &Account, source: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> AppResult<()> {
    let tx = ctx.db();
    login_throttles::Entity::update_many()
        .col_expr(login_throttles::Column::BlockedUntil, Expr::value(until))
        .col_expr(login_throttles::Column::UpdatedAt, Expr::value(now))
        .filter(login_throttles::Column::UserId.eq(account.user_id))
        .filter(login_throttles::Column::Source.eq(source))
        .exec(&*tx.conn().await?)
        .await?;
    users::Entity::update_many()
        .col_expr(users::Column::LockedUntil, Expr::value(until))
        .filter(users::Column::Id.eq(account.user_id))
        .exec(&*tx.conn().await?)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_sources_count_by_their_64() {
        assert_eq!(source_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(source_key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_eq!(source_key("203.0.113.7"), "203.0.113.7");
    }

    #[test]
    fn blocks_start_at_fifteen_minutes_and_double_up_to_a_day() {
        assert_eq!(block_length(5), Duration::minutes(15));
        assert_eq!(block_length(10), Duration::minutes(30));
        assert_eq!(block_length(15), Duration::minutes(60));
        assert_eq!(block_length(50), LONGEST_BLOCK);
        assert_eq!(block_length(i32::MAX), LONGEST_BLOCK);
    }
}
