//! The AI principal's rate limit (POLICY.md section 5: "The AI principal is rate-limited"),
//! and the token buckets behind it and the per-source limit of credential operations.
//!
//! A token bucket per tenant: it holds at most `limit` tokens (a minute's worth, the largest
//! burst) and refills continuously at `limit` per minute of the application's clock. Every
//! authenticated AI_AGENT request takes one token before anything else runs
//! ([`admit_ai`], called by the HTTP layer); without one the request is answered HTTP 429 with
//! `extensions.code = RATE_LIMITED` and a `Retry-After` header, and nothing executes.
//!
//! The limit is the platform setting `ai.rate_limit_per_minute` (`system_config`, a
//! SYSTEM_ADMIN's to change; read on every AI request, so a change applies at once), else the
//! environment variable `COACHGRAPH_AI_RATE_LIMIT`, else [`DEFAULT_PER_MINUTE`]. `0` refuses
//! every AI request (a kill switch). Refusals are audited once per episode: the first refused
//! request after an admitted one, not each of a flood.
//!
//! Where the buckets live ([`Buckets`], chosen by the database when the server's state is
//! built, `AppState::ai_limiter`):
//! - **PostgreSQL**: in the database (`rate_buckets`, migration 000011), shared by every
//!   replica on it, so a tenant's AI gets `limit` requests a minute in all, whichever servers
//!   answer them. A token is taken by one autocommit call of `app_take_rate_token` (the same
//!   arithmetic as below, with the application's clock), outside the request's transaction:
//!   the bucket row is locked for that call only.
//! - **SQLite** (one process owns the file): in the process ([`RateLimiter`]; not a static:
//!   several servers in one process, as in the tests, each keep their own, since their
//!   tenants may share ids).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement};
use uuid::Uuid;

use crate::ctx::Ctx;
use crate::db::Db;
use crate::db::entities::system_config;
use crate::domain::audit::AuditRecord;
use crate::error::AppResult;
use crate::kinds::{AuditOutcome, Role};

pub const DEFAULT_PER_MINUTE: u32 = 120;
/// Rows of coaching data the AI's lists may return in one request, across all its fields
/// and aliases (POLICY.md section 5: "its list queries are capped"; the HTTP layer refuses a
/// request that read more, with nothing served or logged).
pub const AI_ROWS_PER_REQUEST: u64 = 25;
/// The `system_config` key of the limit.
pub const CONFIG_KEY: &str = "ai.rate_limit_per_minute";
/// The environment variable read when the platform setting is absent or invalid.
pub const ENV_VAR: &str = "COACHGRAPH_AI_RATE_LIMIT";
/// Larger values are read as this (and anything unparsable as absent).
const MAX_PER_MINUTE: u32 = 1_000_000;

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    Refused {
        /// Whole seconds until a token is available again.
        retry_after_secs: u64,
        /// The first refusal since the last admitted request (the one that is audited).
        first: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
    refusing: bool,
}

/// The bucket scope of the AI's per-tenant limit.
pub const AI_SCOPE: &str = "ai";

/// Token buckets by key, where the server keeps them: shared through PostgreSQL, or in this
/// process (SQLite). The same arithmetic either way.
#[derive(Debug)]
pub enum Buckets<K = Uuid> {
    /// SQLite: this process's.
    InProcess(RateLimiter<K>),
    /// PostgreSQL: rows `(scope, key)` of `rate_buckets`, shared by every server on the database.
    Shared { db: Db, scope: &'static str },
}

impl<K> Buckets<K> {
    /// Buckets of this process only.
    pub fn in_process() -> Self {
        Buckets::InProcess(RateLimiter::default())
    }

    /// The buckets of `scope` where `db` keeps them: in the database if it is shared by
    /// replicas (PostgreSQL), else in this process.
    pub fn for_db(db: &Db, scope: &'static str) -> Self {
        if db.shares_state() { Buckets::Shared { db: db.clone(), scope } } else { Self::in_process() }
    }
}

impl<K: std::hash::Hash + Eq + std::fmt::Display> Buckets<K> {
    /// Takes a token from `key`'s bucket at `now`, with `per_minute` as capacity and refill
    /// rate ([`RateLimiter::admit`]). Shared buckets cost one statement, outside the caller's
    /// transaction.
    pub async fn admit(&self, key: K, per_minute: u32, now: DateTime<Utc>) -> AppResult<Admission> {
        match self {
            Buckets::InProcess(limiter) => Ok(limiter.admit(key, per_minute, now)),
            Buckets::Shared { db, scope } => {
                let taken = db.take_rate_token(scope, &key.to_string(), per_minute, now).await?;
                Ok(if taken.admitted {
                    Admission::Admitted
                } else {
                    Admission::Refused { retry_after_secs: taken.retry_after_secs, first: taken.first_refusal }
                })
            }
        }
    }
}

/// Token buckets by key (the tenant for the AI; the source address for credential checks),
/// in this process.
#[derive(Debug)]
pub struct RateLimiter<K = Uuid> {
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K> Default for RateLimiter<K> {
    fn default() -> Self {
        Self { buckets: Mutex::new(HashMap::new()) }
    }
}

/// Beyond this many keys, buckets idle for a minute (full again) are forgotten, so that a
/// flood from ever new addresses cannot grow the map without bound.
const PRUNE_ABOVE: usize = 10_000;

impl<K: std::hash::Hash + Eq> RateLimiter<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a token from `key`'s bucket at `now`, with `per_minute` as capacity and refill
    /// rate. A clock that goes backwards refills nothing.
    pub fn admit(&self, key: K, per_minute: u32, now: DateTime<Utc>) -> Admission {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            let idle = now - chrono::Duration::minutes(1);
            buckets.retain(|_, b| b.at > idle);
        }
        let capacity = f64::from(per_minute);
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: capacity, at: now, refusing: false });
        if now > bucket.at {
            let elapsed = (now - bucket.at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            bucket.tokens += elapsed * capacity / 60.0;
            bucket.at = now;
        }
        bucket.tokens = bucket.tokens.min(capacity);
        if per_minute > 0 && bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.refusing = false;
            return Admission::Admitted;
        }
        let first = !bucket.refusing;
        bucket.refusing = true;
        let retry_after_secs =
            if per_minute == 0 { 60 } else { ((1.0 - bucket.tokens) * 60.0 / capacity).ceil().max(1.0) as u64 };
        Admission::Refused { retry_after_secs, first }
    }
}

fn parse_limit(s: &str) -> Option<u32> {
    s.trim().parse::<u64>().ok().map(|n| n.min(u64::from(MAX_PER_MINUTE)) as u32)
}

fn env_limit() -> u32 {
    std::env::var(ENV_VAR).ok().as_deref().and_then(parse_limit).unwrap_or(DEFAULT_PER_MINUTE)
}

/// The configured limit, read in the request's transaction. On PostgreSQL `system_config` is
/// SYSTEM_ADMIN's alone under row-level security, so the one value is read through the
/// SECURITY DEFINER function `app_ai_rate_limit()`.
async fn configured_limit(ctx: &Ctx) -> AppResult<u32> {
    let value: Option<String> = if ctx.db().backend() == DbBackend::Postgres {
        let stmt = Statement::from_string(DbBackend::Postgres, "SELECT app_ai_rate_limit()::text AS v");
        match ctx.db().conn().await?.query_one_raw(stmt).await? {
            Some(row) => row.try_get::<Option<String>>("", "v")?,
            None => None,
        }
    } else {
        system_config::Entity::find_by_id(CONFIG_KEY.to_owned()).one(&*ctx.db().conn().await?).await?.map(|c| c.value)
    };
    Ok(value.as_deref().and_then(parse_limit).unwrap_or_else(env_limit))
}

/// Admits or refuses the request of `ctx`: every request of an AI_AGENT principal takes a
/// token of its tenant's bucket in `buckets` (the server's); other principals are not limited
/// here. The first refusal of an episode is queued as a DENIED audit event (written when the
/// caller finishes `ctx`).
pub async fn admit_ai(ctx: &Ctx, buckets: &Buckets) -> AppResult<Admission> {
    let Some(p) = ctx.principal().copied() else { return Ok(Admission::Admitted) };
    if p.role != Role::AiAgent {
        return Ok(Admission::Admitted);
    }
    let tenant = ctx.tenant_id()?;
    let limit = configured_limit(ctx).await?;
    let admission = buckets.admit(tenant, limit, ctx.now()).await?;
    if let Admission::Refused { first: true, .. } = admission {
        ctx.audit(
            AuditRecord::by(ctx, "REQUEST", "api", AuditOutcome::Denied)
                .reason(format!("AI rate limit reached: {limit} requests per minute per tenant")),
        );
    }
    Ok(admission)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().expect("t0")
    }

    #[test]
    fn a_full_bucket_admits_a_minutes_worth_then_refuses_once_per_episode() {
        let limiter = RateLimiter::new();
        let tenant = Uuid::new_v4();
        for _ in 0..120 {
            assert_eq!(limiter.admit(tenant, 120, t0()), Admission::Admitted);
        }
        assert_eq!(limiter.admit(tenant, 120, t0()), Admission::Refused { retry_after_secs: 1, first: true });
        assert_eq!(limiter.admit(tenant, 120, t0()), Admission::Refused { retry_after_secs: 1, first: false });
        // Another tenant has its own bucket.
        assert_eq!(limiter.admit(Uuid::new_v4(), 120, t0()), Admission::Admitted);
    }

    #[test]
    fn tokens_come_back_at_the_limit_per_minute() {
        let limiter = RateLimiter::new();
        let tenant = Uuid::new_v4();
        for _ in 0..6 {
            assert_eq!(limiter.admit(tenant, 6, t0()), Admission::Admitted);
        }
        assert_eq!(limiter.admit(tenant, 6, t0()), Admission::Refused { retry_after_secs: 10, first: true });
        // 6 a minute: one every 10 seconds.
        assert!(matches!(limiter.admit(tenant, 6, t0() + Duration::seconds(5)), Admission::Refused { .. }));
        assert_eq!(limiter.admit(tenant, 6, t0() + Duration::seconds(10)), Admission::Admitted);
        // A long pause refills to the capacity, not beyond.
        let later = t0() + Duration::hours(1);
        for _ in 0..6 {
            assert_eq!(limiter.admit(tenant, 6, later), Admission::Admitted);
        }
        assert_eq!(limiter.admit(tenant, 6, later), Admission::Refused { retry_after_secs: 10, first: true });
    }

    #[test]
    fn zero_refuses_everything_and_a_lowered_limit_caps_the_bucket() {
        let limiter = RateLimiter::new();
        let tenant = Uuid::new_v4();
        assert!(matches!(limiter.admit(tenant, 0, t0()), Admission::Refused { retry_after_secs: 60, .. }));
        let other = Uuid::new_v4();
        assert_eq!(limiter.admit(other, 120, t0()), Admission::Admitted);
        assert_eq!(limiter.admit(other, 2, t0()), Admission::Admitted);
        assert_eq!(limiter.admit(other, 2, t0()), Admission::Admitted);
        assert_eq!(limiter.admit(other, 2, t0()), Admission::Refused { retry_after_secs: 30, first: true });
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let limiter = RateLimiter::new();
        let tenant = Uuid::new_v4();
        assert_eq!(limiter.admit(tenant, 1, t0()), Admission::Admitted);
        assert!(matches!(limiter.admit(tenant, 1, t0() - Duration::hours(1)), Admission::Refused { .. }));
    }

    #[test]
    fn limits_parse_strictly() {
        assert_eq!(parse_limit("120"), Some(120));
        assert_eq!(parse_limit(" 7 "), Some(7));
        assert_eq!(parse_limit("-1"), None);
        assert_eq!(parse_limit("lots"), None);
        assert_eq!(parse_limit("99999999999"), Some(MAX_PER_MINUTE));
    }
}
