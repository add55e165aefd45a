//! The audit trail: append-only, one hash chain per tenant (and one for platform events),
//! each event's hash covering its content and its predecessor's hash.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, Value,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::TenantTx;
use crate::db::entities::audit_events;
use crate::error::AppResult;
use crate::kinds::AuditOutcome;

/// Audit retention of a tenant without settings, and of the platform chain (POLICY.md 10).
pub const DEFAULT_AUDIT_RETENTION_DAYS: i32 = 90;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub use crate::ctx::AuditRecord;

/// The hash of one event: SHA-256 over its fields and its predecessor's hash, in a fixed
/// order with explicit separators, so that `verify-audit` can recompute it.
pub fn event_hash(e: &audit_events::Model) -> String {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let fields = [
        e.prev_hash.clone(),
        e.id.to_string(),
        opt(e.tenant_id.map(|t| t.to_string())),
        e.seq.to_string(),
        e.at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        opt(e.actor_id.map(|t| t.to_string())),
        opt(e.actor_role.map(|r| r.as_str().to_owned())),
        e.action.clone(),
        e.resource.clone(),
        e.outcome.as_str().to_owned(),
        opt(e.reason.clone()),
        opt(e.ip_address.clone()),
        opt(e.grant_id.map(|t| t.to_string())),
    ];
    let mut hasher = Sha256::new();
    for f in fields {
        hasher.update((f.len() as u64).to_be_bytes());
        hasher.update(f.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The last `(seq, hash)` of a chain. On PostgreSQL a SECURITY DEFINER function serialises
/// writers of the chain (advisory lock) and can read the platform chain, which no tenant
/// context may otherwise see.
async fn chain_head(tx: &TenantTx, tenant_id: Option<Uuid>) -> AppResult<(i64, String)> {
    if tx.backend() == DbBackend::Postgres {
        let stmt = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT seq, hash FROM audit_chain_head($1)",
            [Value::Uuid(tenant_id)],
        );
        let row = tx.conn().await?.query_one_raw(stmt).await?;
        return Ok(match row {
            Some(r) => (
                r.try_get::<Option<i64>>("", "seq")?.unwrap_or(0),
                r.try_get::<Option<String>>("", "hash")?.unwrap_or_else(|| GENESIS_HASH.to_owned()),
            ),
            None => (0, GENESIS_HASH.to_owned()),
        });
    }
    let filter = match tenant_id {
        Some(t) => audit_events::Column::TenantId.eq(t),
        None => audit_events::Column::TenantId.is_null(),
    };
    let last = audit_events::Entity::find()
        .filter(filter)
        .order_by_desc(audit_events::Column::Seq)
        .limit(1)
        .one(&*tx.conn().await?)
        .await?;
    Ok(last.map(|e| (e.seq, e.hash)).unwrap_or((0, GENESIS_HASH.to_owned())))
}

/// Denials by one principal within [`DENIAL_WINDOW`] that raise a `SECURITY_ALERT`.
pub const DENIAL_ALERT_THRESHOLD: u64 = 10;
/// The window of [`DENIAL_ALERT_THRESHOLD`]; at most one alert per principal per window.
pub const DENIAL_WINDOW: chrono::Duration = chrono::Duration::minutes(10);
/// The action of the alert raised by repeated denials (outcome ALERT).
pub const SECURITY_ALERT: &str = "SECURITY_ALERT";

/// Denial rows one request writes at most (POLICY.md section 12: audit writes per request
/// are bounded); the rest are summarised in one more.
pub const MAX_DENIALS_PER_REQUEST: usize = 8;

/// A request's denials, bounded: alike denials (same chain, actor, action and resource) are
/// one row that says how many there were; beyond [`MAX_DENIALS_PER_REQUEST`] rows, one more
/// row summarises the rest. Every other event (admin actions, logins, alerts) is kept as is.
pub fn bounded(records: Vec<AuditRecord>) -> Vec<AuditRecord> {
    let key = |r: &AuditRecord| (r.tenant_id, r.actor_id, r.action.clone(), r.resource.clone());
    let mut out: Vec<AuditRecord> = Vec::with_capacity(records.len());
    let mut alike: Vec<usize> = Vec::new();
    let mut overflow: Option<(AuditRecord, usize)> = None;
    for r in records {
        if r.outcome != AuditOutcome::Denied {
            out.push(r);
            alike.push(1);
            continue;
        }
        if let Some(i) = out.iter().position(|o| o.outcome == AuditOutcome::Denied && key(o) == key(&r)) {
            alike[i] += 1;
            continue;
        }
        if out.iter().filter(|o| o.outcome == AuditOutcome::Denied).count() >= MAX_DENIALS_PER_REQUEST {
            match &mut overflow {
                Some((_, n)) => *n += 1,
                None => overflow = Some((r, 1)),
            }
            continue;
        }
        out.push(r);
        alike.push(1);
    }
    for (r, n) in out.iter_mut().zip(alike) {
        if n > 1 {
            let first = r.reason.take().unwrap_or_default();
            r.reason = Some(format!("{first} ({n} alike refusals in one request)"));
        }
    }
    if let Some((mut r, n)) = overflow {
        r.resource = "api".to_owned();
        r.reason = Some(format!("{n} further refusals in the same request, not itemised"));
        out.push(r);
    }
    out
}

/// Appends `records` (bounded: [`bounded`]) to their chains; then, for each principal denied
/// in this batch, raises a [`SECURITY_ALERT`] when its denials reached the threshold within
/// the window, and likewise for each source address of anonymous denials.
pub async fn write(tx: &TenantTx, records: Vec<AuditRecord>, now: DateTime<Utc>) -> AppResult<()> {
    let mut denied: Vec<AuditRecord> = Vec::new();
    let mut anonymous: Vec<AuditRecord> = Vec::new();
    for r in bounded(records) {
        if r.outcome == AuditOutcome::Denied
            && r.actor_id.is_none()
            && r.tenant_id.is_none()
            && r.ip_address.is_some()
            && !anonymous.iter().any(|a| a.ip_address == r.ip_address)
        {
            anonymous.push(r.clone());
        }
        if r.outcome == AuditOutcome::Denied
            && r.actor_id.is_some()
            && !denied.iter().any(|d| d.actor_id == r.actor_id && d.tenant_id == r.tenant_id)
        {
            denied.push(r.clone());
        }
        append(tx, r, now).await?;
    }
    for d in denied {
        if let Some(alert) = denial_alert(tx, &d, now).await? {
            append(tx, alert, now).await?;
        }
    }
    for a in anonymous {
        if let Some(alert) = source_alert(tx, &a, now).await? {
            append(tx, alert, now).await?;
        }
    }
    Ok(())
}

/// Anonymous denials (failed logins of unknown accounts, probes) from one source address
/// within [`DENIAL_WINDOW`] that raise a [`SECURITY_ALERT`] about that address.
pub const SOURCE_ALERT_THRESHOLD: i64 = 20;

/// The alert about `denied`'s source address, if one is due: at least
/// [`SOURCE_ALERT_THRESHOLD`] anonymous DENIED events from it on the platform chain within
/// [`DENIAL_WINDOW`], and no alert about it in that window yet. On PostgreSQL an anonymous
/// request cannot read the platform chain, so a SECURITY DEFINER function counts.
async fn source_alert(tx: &TenantTx, denied: &AuditRecord, now: DateTime<Utc>) -> AppResult<Option<AuditRecord>> {
    let Some(ip) = denied.ip_address.clone() else { return Ok(None) };
    let since = now - DENIAL_WINDOW;
    let (denials, alerts): (i64, i64) = if tx.backend() == DbBackend::Postgres {
        let stmt = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT denials, alerts FROM audit_source_activity($1, $2, $3)",
            [
                Value::String(Some(ip.clone())),
                Value::ChronoDateTimeUtc(Some(since)),
                Value::String(Some(SECURITY_ALERT.to_owned())),
            ],
        );
        match tx.conn().await?.query_one_raw(stmt).await? {
            Some(r) => (r.try_get("", "denials")?, r.try_get("", "alerts")?),
            None => (0, 0),
        }
    } else {
        let recent = || {
            audit_events::Entity::find()
                .filter(audit_events::Column::TenantId.is_null())
                .filter(audit_events::Column::IpAddress.eq(ip.clone()))
                .filter(audit_events::Column::At.gt(since))
        };
        let conn = tx.conn().await?;
        let denials = recent()
            .filter(audit_events::Column::ActorId.is_null())
            .filter(audit_events::Column::Outcome.eq(AuditOutcome::Denied))
            .count(&*conn)
            .await?;
        let alerts = recent()
            .filter(audit_events::Column::Action.eq(SECURITY_ALERT))
            .filter(audit_events::Column::Outcome.eq(AuditOutcome::Alert))
            .count(&*conn)
            .await?;
        (denials as i64, alerts as i64)
    };
    if denials < SOURCE_ALERT_THRESHOLD || alerts > 0 {
        return Ok(None);
    }
    Ok(Some(AuditRecord {
        tenant_id: None,
        actor_id: None,
        actor_role: None,
        action: SECURITY_ALERT.to_owned(),
        resource: "access_control".to_owned(),
        outcome: AuditOutcome::Alert,
        reason: Some(format!(
            "{denials} denied anonymous requests from this address within {} minutes",
            DENIAL_WINDOW.num_minutes()
        )),
        ip_address: Some(ip),
        grant_id: None,
        code: None,
    }))
}

/// The alert for repeated denials of `denied`'s principal, if one is due: at least
/// [`DENIAL_ALERT_THRESHOLD`] DENIED events by it in its chain within [`DENIAL_WINDOW`] and
/// no [`SECURITY_ALERT`] about it in that window yet. Names the principal (as actor) and
/// counts; never what was denied.
async fn denial_alert(tx: &TenantTx, denied: &AuditRecord, now: DateTime<Utc>) -> AppResult<Option<AuditRecord>> {
    let Some(actor) = denied.actor_id else { return Ok(None) };
    let chain = match denied.tenant_id {
        Some(t) => audit_events::Column::TenantId.eq(t),
        None => audit_events::Column::TenantId.is_null(),
    };
    let since = now - DENIAL_WINDOW;
    let recent = || {
        audit_events::Entity::find()
            .filter(chain.clone())
            .filter(audit_events::Column::ActorId.eq(actor))
            .filter(audit_events::Column::At.gt(since))
    };
    // Denied requests, not denied rows (POLICY.md section 12): the rows one request wrote
    // share its request id; rows without one (written outside a request) count one each.
    let (requests, untagged): (i64, i64) = recent()
        .filter(audit_events::Column::Outcome.eq(AuditOutcome::Denied))
        .select_only()
        .column_as(Expr::cust("COUNT(DISTINCT request_id)"), "requests")
        .column_as(Expr::cust("COUNT(*) - COUNT(request_id)"), "untagged")
        .into_tuple()
        .one(&*tx.conn().await?)
        .await?
        .unwrap_or((0, 0));
    let denials = u64::try_from(requests + untagged).unwrap_or(0);
    if denials < DENIAL_ALERT_THRESHOLD {
        return Ok(None);
    }
    let alerted = recent()
        .filter(audit_events::Column::Action.eq(SECURITY_ALERT))
        .filter(audit_events::Column::Outcome.eq(AuditOutcome::Alert))
        .count(&*tx.conn().await?)
        .await?;
    if alerted > 0 {
        return Ok(None);
    }
    Ok(Some(AuditRecord {
        tenant_id: denied.tenant_id,
        actor_id: Some(actor),
        actor_role: denied.actor_role,
        action: SECURITY_ALERT.to_owned(),
        resource: "access_control".to_owned(),
        outcome: AuditOutcome::Alert,
        reason: Some(format!(
            "{denials} denied requests by this principal within {} minutes",
            DENIAL_WINDOW.num_minutes()
        )),
        ip_address: denied.ip_address.clone(),
        grant_id: None,
        code: None,
    }))
}

/// Appends one record to its chain.
async fn append(tx: &TenantTx, r: AuditRecord, now: DateTime<Utc>) -> AppResult<()> {
    if r.outcome == AuditOutcome::Alert {
        tracing::warn!(action = %r.action, actor = ?r.actor_id, tenant = ?r.tenant_id, reason = ?r.reason, "security alert");
    }
    let (seq, prev_hash) = chain_head(tx, r.tenant_id).await?;
    let mut model = audit_events::Model {
        id: Uuid::new_v4(),
        tenant_id: r.tenant_id,
        seq: seq + 1,
        at: now,
        actor_id: r.actor_id,
        actor_role: r.actor_role,
        action: r.action,
        resource: r.resource,
        outcome: r.outcome,
        reason: r.reason,
        ip_address: r.ip_address,
        grant_id: r.grant_id,
        prev_hash,
        hash: String::new(),
        request_id: crate::telemetry::request_serial().map(|s| s.to_string()),
    };
    model.hash = event_hash(&model);
    audit_events::Entity::insert(active_model(model)).exec_without_returning(&*tx.conn().await?).await?;
    Ok(())
}

/// Every column `Set`, for inserting an event whose hash is already computed.
pub fn active_model(model: audit_events::Model) -> audit_events::ActiveModel {
    audit_events::ActiveModel {
        id: Set(model.id),
        tenant_id: Set(model.tenant_id),
        seq: Set(model.seq),
        at: Set(model.at),
        actor_id: Set(model.actor_id),
        actor_role: Set(model.actor_role),
        action: Set(model.action),
        resource: Set(model.resource),
        outcome: Set(model.outcome),
        reason: Set(model.reason),
        ip_address: Set(model.ip_address),
        grant_id: Set(model.grant_id),
        prev_hash: Set(model.prev_hash),
        hash: Set(model.hash),
        request_id: Set(model.request_id),
    }
}
