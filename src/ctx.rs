//! `Ctx`: who is asking (tenant, principal, role, session), and the request's
//! tenant-scoped transaction, the only handle to the database resolvers ever get.
//! Built in exactly one place ([`crate::identity::resolve_ctx`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::db::TenantTx;
use crate::domain::audit::AuditRecord;
use crate::domain::kinds::Role;
use crate::domain::reach::{self, Reach};
use crate::error::{AppError, AppResult};

/// (coachee, resource, READ|WRITE) -> the rows touched.
pub type AiAccesses = BTreeMap<(Uuid, &'static str, &'static str), BTreeSet<Uuid>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    /// `None` only for the platform-wide SYSTEM_ADMIN.
    pub tenant_id: Option<Uuid>,
    pub role: Role,
    pub session_id: Uuid,
}

/// What the request says about itself, besides credentials.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// AI_AGENT requests name the model and purpose of each access (`X-AI-Model`, `X-AI-Purpose`).
    pub ai_model: Option<String>,
    pub ai_purpose: Option<String>,
}

/// Cookies the HTTP layer must set or clear once the operation has run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieEffect {
    SetSession { token: String, csrf: String, expires_at: DateTime<Utc> },
    Clear,
}

#[derive(Debug)]
pub struct Ctx {
    principal: Option<Principal>,
    tx: TenantTx,
    clock: SharedClock,
    meta: RequestMeta,
    audit: Mutex<Vec<AuditRecord>>,
    cookie: Mutex<Option<CookieEffect>>,
    reach: tokio::sync::OnceCell<Arc<Reach>>,
    /// AI_AGENT accesses of this request: (coachee, resource, READ|WRITE) -> rows, logged at the end.
    ai_reads: Mutex<AiAccesses>,
}

impl Ctx {
    pub(crate) fn new(principal: Option<Principal>, tx: TenantTx, clock: SharedClock, meta: RequestMeta) -> Self {
        Self {
            principal,
            tx,
            clock,
            meta,
            audit: Mutex::new(Vec::new()),
            cookie: Mutex::new(None),
            reach: tokio::sync::OnceCell::new(),
            ai_reads: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// The "require" step: the principal, or `Unauthenticated`.
    pub fn require(&self) -> AppResult<&Principal> {
        self.principal.as_ref().ok_or(AppError::Unauthenticated)
    }

    pub fn role(&self) -> Option<Role> {
        self.principal.map(|p| p.role)
    }

    /// The tenant every query of this request is scoped to; `Forbidden` for a principal
    /// without one (SYSTEM_ADMIN) and `Unauthenticated` for anonymous requests.
    pub fn tenant_id(&self) -> AppResult<Uuid> {
        self.require()?.tenant_id.ok_or(AppError::Forbidden)
    }

    pub fn db(&self) -> &TenantTx {
        &self.tx
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn meta(&self) -> &RequestMeta {
        &self.meta
    }

    /// Queues an audit event; written in the request's transaction when it finishes, so a
    /// rolled-back mutation still leaves its denial on record.
    pub fn audit(&self, record: AuditRecord) {
        self.audit.lock().unwrap_or_else(|p| p.into_inner()).push(record);
    }

    pub(crate) fn take_audit(&self) -> Vec<AuditRecord> {
        std::mem::take(&mut *self.audit.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn set_cookie_effect(&self, effect: CookieEffect) {
        *self.cookie.lock().unwrap_or_else(|p| p.into_inner()) = Some(effect);
    }

    pub fn cookie_effect(&self) -> Option<CookieEffect> {
        self.cookie.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The principal's relationships, loaded on first use within this request only.
    pub async fn reach(&self) -> AppResult<Arc<Reach>> {
        self.reach.get_or_try_init(|| async { reach::load(self).await.map(Arc::new) }).await.cloned()
    }

    /// Notes that the AI principal read `rows` of `resource` about `coachee`. Written to the
    /// AI access log when the request finishes. Every read path of coaching data calls it, so
    /// it also audits a program admin's reads under break-glass (see `note_break_glass_read`);
    /// a no-op for every other role.
    pub fn note_ai_read(&self, coachee: Uuid, resource: crate::authz::Resource, rows: impl IntoIterator<Item = Uuid>) {
        self.note_break_glass_read(coachee, resource);
        self.note_ai_access(coachee, resource, "READ", rows);
    }

    /// POLICY.md section 6: a PROGRAM_ADMIN's read that only its break-glass grant allows is
    /// audited with the grant id (one event per grant and resource per request).
    fn note_break_glass_read(&self, coachee: Uuid, resource: crate::authz::Resource) {
        if self.role() != Some(Role::ProgramAdmin) {
            return;
        }
        let Some(grant) = self.reach.get().and_then(|r| r.break_glass_grant(coachee, resource)) else { return };
        let mut record = AuditRecord::by(self, "READ", resource.as_str(), crate::domain::kinds::AuditOutcome::Allowed)
            .reason(format!("break-glass read of coachee {coachee}"));
        record.grant_id = Some(grant);
        let mut queue = self.audit.lock().unwrap_or_else(|p| p.into_inner());
        if !queue.iter().any(|r| r.grant_id == record.grant_id && r.action == "READ" && r.resource == record.resource) {
            queue.push(record);
        }
    }

    /// Notes that the AI principal wrote `rows` of `resource` about `coachee`.
    pub fn note_ai_write(&self, coachee: Uuid, resource: crate::authz::Resource, rows: impl IntoIterator<Item = Uuid>) {
        self.note_ai_access(coachee, resource, "WRITE", rows);
    }

    fn note_ai_access(
        &self,
        coachee: Uuid,
        resource: crate::authz::Resource,
        action: &'static str,
        rows: impl IntoIterator<Item = Uuid>,
    ) {
        if self.role() != Some(Role::AiAgent) {
            return;
        }
        let mut reads = self.ai_reads.lock().unwrap_or_else(|p| p.into_inner());
        reads.entry((coachee, resource.as_str(), action)).or_default().extend(rows);
    }

    /// Writes the AI access log and the queued audit events, then commits. Called once,
    /// after the operation ran.
    pub async fn finish(&self) -> AppResult<()> {
        let reads = std::mem::take(&mut *self.ai_reads.lock().unwrap_or_else(|p| p.into_inner()));
        crate::domain::ai_log::write(self, reads).await?;
        let records = self.take_audit();
        crate::domain::audit::write(self.db(), records, self.now()).await?;
        self.tx.commit().await
    }
}
