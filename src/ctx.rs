//! `Ctx`: who is asking (tenant, principal, role, session), and the request's
//! tenant-scoped transaction, the only handle to the database resolvers ever get.
//! Built in exactly one place ([`crate::identity::resolve_ctx`]). It holds the request's
//! state (pending audit events, the AI accesses to log, the cookie to set, the reach once
//! loaded) and writes nothing itself: `domain::request::finish` does, once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::authz::Reach;
use crate::clock::SharedClock;
use crate::db::TenantTx;
use crate::db::entities::users;
use crate::error::{AppError, AppResult};
use crate::kinds::{AuditOutcome, Role};

/// (coachee, resource, READ|WRITE) -> the rows touched.
pub type AiAccesses = BTreeMap<(Uuid, &'static str, &'static str), BTreeSet<Uuid>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    /// `None` only for the platform-wide SYSTEM_ADMIN.
    pub tenant_id: Option<Uuid>,
    pub role: Role,
    /// The `auth_sessions` row behind a session token; for an integration token, the
    /// token's id (see `credential`).
    pub session_id: Uuid,
    /// How the request proved who it is; decided where the request becomes a `Ctx`.
    pub credential: CredentialKind,
}

/// How a principal was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A signed-in session (browser cookie or device bearer token).
    Session,
    /// An integration token (`cgi_…`): the owner's rights for reading and working with data,
    /// never for minting or changing credentials.
    IntegrationToken,
}

/// What the request says about itself, besides credentials.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// AI_AGENT requests name the model and purpose of each access (`X-AI-Model`, `X-AI-Purpose`).
    pub ai_model: Option<String>,
    pub ai_purpose: Option<String>,
    /// The request carries a mutation (its transaction will write).
    pub writes: bool,
}

/// An event before it is written. Never holds the data that was denied: only who, what
/// kind of thing, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub tenant_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<Role>,
    pub action: String,
    pub resource: String,
    pub outcome: AuditOutcome,
    pub reason: Option<String>,
    pub ip_address: Option<String>,
    pub grant_id: Option<Uuid>,
    /// A denial's error code (`FORBIDDEN`, `CONSENT_REQUIRED`, ...), for the metrics and the
    /// log; not stored.
    pub code: Option<&'static str>,
}

impl AuditRecord {
    /// An event by the request's principal (or an anonymous caller).
    pub fn by(ctx: &Ctx, action: &str, resource: &str, outcome: AuditOutcome) -> Self {
        let p = ctx.principal();
        Self {
            tenant_id: p.and_then(|p| p.tenant_id),
            actor_id: p.map(|p| p.user_id),
            actor_role: p.map(|p| p.role),
            action: action.to_owned(),
            resource: resource.to_owned(),
            outcome,
            reason: None,
            ip_address: ctx.meta().ip.clone(),
            grant_id: None,
            code: None,
        }
    }

    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn tenant(mut self, tenant_id: Option<Uuid>) -> Self {
        self.tenant_id = tenant_id;
        self
    }

    pub fn actor(mut self, actor_id: Uuid, role: Role) -> Self {
        self.actor_id = Some(actor_id);
        self.actor_role = Some(role);
        self
    }
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
    /// The principal's user row as the session check read it.
    principal_user: Option<users::Model>,
    tx: TenantTx,
    clock: SharedClock,
    meta: RequestMeta,
    audit: Mutex<Vec<AuditRecord>>,
    cookie: Mutex<Option<CookieEffect>>,
    reach: tokio::sync::OnceCell<Arc<Reach>>,
    /// AI_AGENT accesses of this request: (coachee, resource, READ|WRITE) -> rows, logged at the end.
    ai_reads: Mutex<AiAccesses>,
    /// AI_AGENT: the list rows of coaching data this request has read (its cap).
    ai_listed: Mutex<BTreeSet<Uuid>>,
    /// Credential operations started by this request (at most one may run).
    credential_turns: std::sync::atomic::AtomicU32,
}

impl Ctx {
    pub(crate) fn new(
        principal: Option<(Principal, users::Model)>,
        tx: TenantTx,
        clock: SharedClock,
        meta: RequestMeta,
    ) -> Self {
        let (principal, principal_user) = principal.unzip();
        Self {
            principal,
            principal_user,
            tx,
            clock,
            meta,
            audit: Mutex::new(Vec::new()),
            cookie: Mutex::new(None),
            reach: tokio::sync::OnceCell::new(),
            ai_reads: Mutex::new(BTreeMap::new()),
            ai_listed: Mutex::new(BTreeSet::new()),
            credential_turns: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The request's one credential operation (login, refreshSession, changePassword,
    /// deleteMyAccount): a
    /// second one in the same request (aliases, several fields) is refused before it hashes.
    pub fn take_credential_turn(&self) -> AppResult<()> {
        if self.credential_turns.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            return Err(AppError::bad_input(
                "a request may carry one credential operation (login, refreshSession, changePassword, deleteMyAccount)",
            ));
        }
        Ok(())
    }

    /// AI_AGENT only: the distinct rows of coaching data its lists have returned so far in
    /// this request, across all fields and aliases (POLICY.md section 5 caps its list
    /// queries; the cap holds per request). What hangs off a listed row (a session's
    /// transcript or notes) is part of that row.
    pub fn ai_rows_read(&self) -> u64 {
        self.ai_listed.lock().unwrap_or_else(|p| p.into_inner()).len() as u64
    }

    /// Notes rows a list returned to the AI principal (a no-op for every other role).
    pub fn note_ai_listed(&self, rows: impl IntoIterator<Item = Uuid>) {
        if self.role() == Some(Role::AiAgent) {
            self.ai_listed.lock().unwrap_or_else(|p| p.into_inner()).extend(rows);
        }
    }

    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// The principal's user row, read with the session (as of the start of the request).
    pub fn principal_user(&self) -> Option<&users::Model> {
        self.principal_user.as_ref()
    }

    /// The principal of a signed-in session: credential operations (login, refresh, logout,
    /// password change, account deletion, integration tokens) are refused to integration
    /// tokens, whatever the schema lets through. The refusal is audited as a denial.
    pub fn require_session(&self, action: &str) -> AppResult<Option<&Principal>> {
        match self.principal.as_ref() {
            Some(p) if p.credential == CredentialKind::IntegrationToken => {
                self.audit(
                    AuditRecord::by(self, action, "auth", AuditOutcome::Denied)
                        .reason("credential operations need a signed-in session, not an integration token")
                        .code("FORBIDDEN"),
                );
                Err(AppError::Forbidden)
            }
            p => Ok(p),
        }
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
        if record.outcome == AuditOutcome::Denied {
            crate::telemetry::note_denial(record.code.unwrap_or(&record.action), &record.resource);
        }
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

    /// Where the principal's relationships are kept once loaded (`domain::reach::of` loads
    /// them on first use within this request only).
    pub fn reach_cell(&self) -> &tokio::sync::OnceCell<Arc<Reach>> {
        &self.reach
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
        let mut record = AuditRecord::by(self, "READ", resource.as_str(), crate::kinds::AuditOutcome::Allowed)
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

    /// The AI accesses of this request, taken once to be logged.
    pub(crate) fn take_ai_accesses(&self) -> AiAccesses {
        std::mem::take(&mut *self.ai_reads.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
