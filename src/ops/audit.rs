//! Operator tools for the audit trail, run outside any request through the owner
//! connection: `coachgraph verify-audit` ([`verify`]) and `coachgraph purge` ([`purge`]).
//!
//! Every chain (one per tenant, one for platform events) links each event to its
//! predecessor by hash ([`event_hash`]). [`verify`] walks each chain in `seq` order,
//! recomputing every hash and checking every `prev_hash` link and that no `seq` is
//! missing, and reports the first broken link of each chain.
//!
//! Retention removes the oldest events of a chain, so a chain no longer starts at the
//! genesis hash. [`purge`] therefore appends, to every chain it shortened, a `PURGE` event
//! (outcome ALLOWED, no actor) whose reason records the counts and the chain's new anchor:
//! the `seq` and `hash` of the last event removed (`anchor seq=<n> hash=<hex>`). That event
//! is itself a link of the chain, so the anchor cannot be edited without breaking the chain.
//! [`verify`] starts each chain from the anchor of its latest `PURGE` event (or from the
//! genesis hash at seq 0 when there is none): the first remaining event must have
//! `seq = anchor + 1` and `prev_hash = anchor hash`.
//!
//! What this cannot show: events cut from the *end* of a chain (the newest) leave no gap.
//! An external copy of the chain heads (e.g. the output of `verify-audit` shipped to a log
//! store) covers that.
//!
//! On PostgreSQL both run through the owner connection (`MIGRATION_DATABASE_URL`), which
//! reads every chain; `purge` sets `coachgraph.purge = 'on'` for its transaction only, the
//! one thing the append-only trigger lets a DELETE through for, and takes the chain's
//! advisory lock (the one `audit_chain_head` takes) so that no request appends meanwhile.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement, TransactionTrait, Value,
};
use uuid::Uuid;

use crate::db::entities::{audit_events, auth_sessions, tenant_settings, tenants};
use crate::domain::audit::{DEFAULT_AUDIT_RETENTION_DAYS, GENESIS_HASH, active_model, event_hash};
use crate::error::{AppError, AppResult};
use crate::identity::session::DEFAULT_INACTIVITY_MINUTES;
use crate::kinds::AuditOutcome;

/// The action of the event [`purge`] appends to each chain it shortened.
pub const PURGE_ACTION: &str = "PURGE";
/// The resource of that event.
pub const PURGE_RESOURCE: &str = "audit_events";
const ANCHOR_TAG: &str = "anchor seq=";
const VERIFY_BATCH: u64 = 5_000;

/// Where a chain starts: the last event before the first one kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

impl Anchor {
    fn genesis() -> Self {
        Anchor { seq: 0, hash: GENESIS_HASH.to_owned() }
    }
}

/// The first broken link of one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// `None`: the platform chain.
    pub tenant_id: Option<Uuid>,
    pub seq: i64,
    pub event_id: Uuid,
    pub problem: String,
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chain = self.tenant_id.map(|t| format!("tenant {t}")).unwrap_or_else(|| "platform".to_owned());
        write!(f, "BROKEN {chain} seq {} event {}: {}", self.seq, self.event_id, self.problem)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub chains: usize,
    pub events: u64,
    /// One entry per broken chain: its first broken link.
    pub broken: Vec<BrokenLink>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.broken.is_empty()
    }
}

/// Reads the anchor out of a `PURGE` event's reason.
pub fn parse_anchor(reason: &str) -> Option<Anchor> {
    let rest = &reason[reason.rfind(ANCHOR_TAG)? + ANCHOR_TAG.len()..];
    let (seq, rest) = rest.split_once(" hash=")?;
    let hash: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    let seq: i64 = seq.parse().ok()?;
    (seq >= 0 && hash.len() == 64).then_some(Anchor { seq, hash })
}

fn chain_filter(tenant_id: Option<Uuid>) -> sea_orm::sea_query::SimpleExpr {
    match tenant_id {
        Some(t) => audit_events::Column::TenantId.eq(t),
        None => audit_events::Column::TenantId.is_null(),
    }
}

/// Every chain present: the platform's first, then tenants by id.
async fn chains(conn: &impl ConnectionTrait) -> AppResult<Vec<Option<Uuid>>> {
    let mut ids: Vec<Option<Uuid>> = audit_events::Entity::find()
        .select_only()
        .column(audit_events::Column::TenantId)
        .distinct()
        .into_tuple()
        .all(conn)
        .await?;
    ids.sort();
    Ok(ids)
}

/// The chain's latest `PURGE` event, if any (written by [`purge`]: no actor).
async fn latest_purge(conn: &impl ConnectionTrait, tenant_id: Option<Uuid>) -> AppResult<Option<audit_events::Model>> {
    Ok(audit_events::Entity::find()
        .filter(chain_filter(tenant_id))
        .filter(audit_events::Column::Action.eq(PURGE_ACTION))
        .filter(audit_events::Column::Resource.eq(PURGE_RESOURCE))
        .filter(audit_events::Column::ActorId.is_null())
        .order_by_desc(audit_events::Column::Seq)
        .limit(1)
        .one(conn)
        .await?)
}

/// Walks one chain from its anchor; the first broken link, if any, and the events seen.
async fn verify_chain(conn: &impl ConnectionTrait, tenant_id: Option<Uuid>) -> AppResult<(u64, Option<BrokenLink>)> {
    let broken =
        |e: &audit_events::Model, problem: String| BrokenLink { tenant_id, seq: e.seq, event_id: e.id, problem };
    let anchor = match latest_purge(conn, tenant_id).await? {
        None => Anchor::genesis(),
        Some(p) => match p.reason.as_deref().and_then(parse_anchor) {
            Some(a) => a,
            None => return Ok((0, Some(broken(&p, "PURGE event without a readable chain anchor".to_owned())))),
        },
    };
    let (mut expected_seq, mut prev) = (anchor.seq + 1, anchor.hash);
    let mut seen = 0u64;
    let mut after = i64::MIN;
    loop {
        let batch = audit_events::Entity::find()
            .filter(chain_filter(tenant_id))
            .filter(audit_events::Column::Seq.gt(after))
            .order_by_asc(audit_events::Column::Seq)
            .limit(VERIFY_BATCH)
            .all(conn)
            .await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in &batch {
            seen += 1;
            let problem = if e.seq != expected_seq && seen == 1 {
                Some(format!(
                    "the chain's anchor says it starts at seq {expected_seq}: its oldest events were removed, \
                     or a PURGE event was altered"
                ))
            } else if e.seq != expected_seq {
                Some(format!("expected seq {expected_seq}: events are missing or out of place"))
            } else if e.prev_hash != prev {
                Some("prev_hash does not match the hash of the event before it".to_owned())
            } else if event_hash(e) != e.hash {
                Some("hash does not match the event's content".to_owned())
            } else {
                None
            };
            if let Some(problem) = problem {
                return Ok((seen, Some(broken(e, problem))));
            }
            expected_seq = e.seq + 1;
            prev = e.hash.clone();
        }
    }
    Ok((seen, None))
}

/// `verify-audit`: every chain, from its anchor to its head.
pub async fn verify(conn: &DatabaseConnection) -> AppResult<VerifyReport> {
    let mut report = VerifyReport::default();
    for tenant_id in chains(conn).await? {
        let (events, broken) = verify_chain(conn, tenant_id).await?;
        report.chains += 1;
        report.events += events;
        report.broken.extend(broken);
    }
    Ok(report)
}

/// What [`purge`] removed from one chain (and the sessions of its tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPurge {
    pub tenant_id: Option<Uuid>,
    pub events: u64,
    pub sessions: u64,
    /// The chain's anchor after the purge.
    pub anchor: Anchor,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Only the chains where something was removed.
    pub chains: Vec<ChainPurge>,
}

impl PurgeReport {
    pub fn events(&self) -> u64 {
        self.chains.iter().map(|c| c.events).sum()
    }
    pub fn sessions(&self) -> u64 {
        self.chains.iter().map(|c| c.sessions).sum()
    }
}

/// `purge`: for the platform and every tenant, removes audit events older than the tenant's
/// `audit_retention_days` (default 90) and auth sessions that have ended (revoked, past their
/// absolute lifetime, or idle beyond the tenant's timeout), and records what it did in a
/// `PURGE` event carrying the chain's new anchor. One transaction per chain.
pub async fn purge(conn: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<PurgeReport> {
    let now = crate::clock::micros(now);
    let mut targets: Vec<Option<Uuid>> = vec![None];
    let mut tenant_ids: Vec<Uuid> =
        tenants::Entity::find().select_only().column(tenants::Column::Id).into_tuple().all(conn).await?;
    tenant_ids.sort();
    targets.extend(tenant_ids.into_iter().map(Some));
    let mut report = PurgeReport::default();
    for tenant_id in targets {
        if let Some(done) = purge_chain(conn, tenant_id, now).await? {
            report.chains.push(done);
        }
    }
    Ok(report)
}

async fn purge_chain(
    conn: &DatabaseConnection,
    tenant_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> AppResult<Option<ChainPurge>> {
    let backend = conn.get_database_backend();
    let tx = conn.begin().await?;
    if backend == DbBackend::Postgres {
        tx.execute_unprepared("SET LOCAL coachgraph.purge = 'on'").await?;
        let key = format!("coachgraph.audit:{}", tenant_id.map(|t| t.to_string()).unwrap_or_else(|| "platform".into()));
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [Value::String(Some(key))],
        ))
        .await?;
    }
    let settings = match tenant_id {
        Some(t) => tenant_settings::Entity::find_by_id(t).one(&tx).await?,
        None => None,
    };
    let retention_days = settings.as_ref().map(|s| s.audit_retention_days).unwrap_or(DEFAULT_AUDIT_RETENTION_DAYS);
    let idle_minutes = settings.as_ref().map(|s| s.session_timeout_minutes).unwrap_or(DEFAULT_INACTIVITY_MINUTES);
    let cutoff = now - Duration::days(i64::from(retention_days));

    let head = audit_events::Entity::find()
        .filter(chain_filter(tenant_id))
        .order_by_desc(audit_events::Column::Seq)
        .limit(1)
        .one(&tx)
        .await?;
    // A prefix of the chain: everything before the first event that is still young.
    let first_kept: Option<i64> = audit_events::Entity::find()
        .filter(chain_filter(tenant_id))
        .filter(audit_events::Column::At.gte(cutoff))
        .select_only()
        .column_as(audit_events::Column::Seq.min(), "seq")
        .into_tuple::<Option<i64>>()
        .one(&tx)
        .await?
        .flatten();
    let last_purged = match &head {
        None => None,
        Some(head) => {
            let through = first_kept.map(|k| k - 1).unwrap_or(head.seq);
            audit_events::Entity::find()
                .filter(chain_filter(tenant_id))
                .filter(audit_events::Column::Seq.lte(through))
                .order_by_desc(audit_events::Column::Seq)
                .limit(1)
                .one(&tx)
                .await?
        }
    };
    let (events, anchor) = match &last_purged {
        Some(last) => {
            let removed = audit_events::Entity::delete_many()
                .filter(chain_filter(tenant_id))
                .filter(audit_events::Column::Seq.lte(last.seq))
                .exec(&tx)
                .await?
                .rows_affected;
            (removed, Anchor { seq: last.seq, hash: last.hash.clone() })
        }
        None => {
            let previous = latest_purge(&tx, tenant_id).await?.and_then(|p| p.reason.as_deref().and_then(parse_anchor));
            (0, previous.unwrap_or_else(Anchor::genesis))
        }
    };

    let session_chain = match tenant_id {
        Some(t) => auth_sessions::Column::TenantId.eq(t),
        None => auth_sessions::Column::TenantId.is_null(),
    };
    let ended = auth_sessions::Column::RevokedAt
        .is_not_null()
        .or(auth_sessions::Column::ExpiresAt.lte(now))
        .or(auth_sessions::Column::LastSeenAt.lte(now - Duration::minutes(i64::from(idle_minutes))));
    let sessions =
        auth_sessions::Entity::delete_many().filter(session_chain).filter(ended).exec(&tx).await?.rows_affected;

    if events == 0 && sessions == 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    let (seq, prev_hash) = head.map(|h| (h.seq, h.hash)).unwrap_or((0, GENESIS_HASH.to_owned()));
    let mut event = audit_events::Model {
        id: Uuid::new_v4(),
        tenant_id,
        seq: seq + 1,
        at: now,
        actor_id: None,
        actor_role: None,
        action: PURGE_ACTION.to_owned(),
        resource: PURGE_RESOURCE.to_owned(),
        outcome: AuditOutcome::Allowed,
        reason: Some(format!(
            "purged {events} audit events older than {retention_days} days and {sessions} ended sessions; \
             {ANCHOR_TAG}{} hash={}",
            anchor.seq, anchor.hash
        )),
        ip_address: None,
        grant_id: None,
        prev_hash,
        hash: String::new(),
        request_id: None,
    };
    event.hash = event_hash(&event);
    audit_events::Entity::insert(active_model(event)).exec_without_returning(&tx).await?;
    tx.commit().await?;
    tracing::info!(tenant = ?tenant_id, events, sessions, "purged");
    Ok(Some(ChainPurge { tenant_id, events, sessions, anchor }))
}

/// The owner connection the tools need: on PostgreSQL `MIGRATION_DATABASE_URL` (the
/// application role sees no chain without a tenant context and may not delete events).
pub fn owner_url(config: &crate::config::DbArgs) -> AppResult<&str> {
    match (&config.migration_database_url, config.is_postgres()) {
        (Some(url), _) => Ok(url),
        (None, false) => Ok(&config.database_url),
        (None, true) => Err(AppError::bad_input(
            "on PostgreSQL this command runs through the owner connection: set MIGRATION_DATABASE_URL",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_parse_from_purge_reasons_only_when_well_formed() {
        let h = "ab".repeat(32);
        let reason = format!("purged 3 audit events older than 90 days and 1 ended sessions; anchor seq=42 hash={h}");
        assert_eq!(parse_anchor(&reason), Some(Anchor { seq: 42, hash: h.clone() }));
        assert_eq!(parse_anchor("anchor seq=x hash=00"), None);
        assert_eq!(parse_anchor(&format!("anchor seq=-1 hash={h}")), None);
        assert_eq!(parse_anchor("no anchor here"), None);
        assert_eq!(parse_anchor(&format!("anchor seq=1 hash={}", &h[..10])), None);
    }
}
