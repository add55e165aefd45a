//! Administrators' reads: `auditEvents`, `tenantSettings`, `systemConfig`, `accountStatus`,
//! `breakGlassRequests`.

use crate::graphql::decl::Ty;
use crate::graphql::decl::ty;
use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue};

use crate::authz::{Access, Action, Resource, VisibilityTag};
use crate::db::entities::{audit_events, tenant_settings};
use crate::domain::admin::{self, AccountStatus, BreakGlassView};
use crate::graphql::decl::{Entry, FieldDecl, ObjectDecl};
use crate::graphql::mutation::query;
use crate::graphql::paging::{Connection, Page, connection_decl};
use crate::graphql::schema::{Catalog, enum_value, leaf, resolver};
use crate::graphql::{datetime, uuid};
use crate::kinds::Role;

/// `SystemConfig`: the platform configuration.
#[derive(Debug, Clone)]
pub struct SystemConfigView {
    pub entries: Vec<ConfigEntryView>,
}

/// `ConfigEntry`.
#[derive(Debug, Clone)]
pub struct ConfigEntryView {
    pub key: String,
    pub value: String,
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    v.map(f).unwrap_or(Value::Null)
}

fn declare_audit_events(c: &mut Catalog) {
    const AUDIT: Access = Access::Resource(Resource::AuditLogs);
    fn field(name: &'static str, ty: Ty, value: fn(&audit_events::Model) -> Value) -> FieldDecl {
        FieldDecl::tagged(
            name,
            ty,
            VisibilityTag::AdminAggregate,
            AUDIT,
            leaf(move |_, e: &audit_events::Model| Ok(Some(value(e)))),
        )
    }
    c.object(
        ObjectDecl::new("AuditEvent")
            .field(field("id", ty::req("ID"), |e| uuid(e.id)))
            .field(field("at", ty::req("DateTime"), |e| datetime(e.at)))
            .field(field("actorId", ty::opt("ID"), |e| opt(e.actor_id, uuid)))
            .field(field("actorRole", ty::opt("Role"), |e| opt(e.actor_role, |r| enum_value(r.as_str()))))
            .field(field("action", ty::req("String"), |e| string(&e.action)))
            .field(field("resource", ty::req("String"), |e| string(&e.resource)))
            .field(
                field("outcome", ty::req("String"), |e| string(e.outcome.as_str()))
                    .describe("ALLOWED, DENIED or ALERT."),
            )
            .field(field("reason", ty::opt("String"), |e| opt(e.reason.as_deref(), string)))
            .field(FieldDecl::tagged(
                "ipAddress",
                ty::opt("String"),
                VisibilityTag::SystemInternal,
                AUDIT,
                leaf(|_, e: &audit_events::Model| Ok(Some(opt(e.ip_address.as_deref(), string)))),
            )),
    );
    c.object(connection_decl::<audit_events::Model>("AuditEventConnection", ty::list("AuditEvent")));
    c.query(
        FieldDecl::root(
            "auditEvents",
            ty::req("AuditEventConnection"),
            Entry::Matrix(Resource::AuditLogs, Action::Read),
            query(|ctx, a| async move {
                let page = Page::from(&a, ctx.role(), "auditEvents")?;
                let skip = page.skip()?;
                let outcome = a.opt_text("outcome", 20)?.as_deref().map(admin::parse_outcome).transpose()?;
                let (rows, total) = admin::audit_events(&ctx, outcome, skip, page.limit).await?;
                Ok(Some(FieldValue::owned_any(Connection::positional(&page, skip, rows, total))))
            }),
        )
        .arg("first", ty::opt("Int"))
        .arg("after", ty::opt("String"))
        .arg("outcome", ty::opt("String"))
        .describe(
            "PROGRAM_ADMIN: its tenant's audit trail. SYSTEM_ADMIN: every tenant's and the \
             platform's. Newest first; `outcome` filters (ALLOWED, DENIED or ALERT).",
        ),
    );
}

fn declare_tenant_settings(c: &mut Catalog) {
    fn field(name: &'static str, ty: Ty, value: fn(&tenant_settings::Model) -> Value) -> FieldDecl {
        FieldDecl::tagged(
            name,
            ty,
            VisibilityTag::AdminAggregate,
            Access::Resource(Resource::SystemConfig),
            leaf(move |_, s: &tenant_settings::Model| Ok(Some(value(s)))),
        )
    }
    c.object(
        ObjectDecl::new("TenantSettings")
            .field(field("sessionTimeoutMinutes", ty::req("Int"), |s| Value::from(s.session_timeout_minutes)))
            .field(field("auditRetentionDays", ty::req("Int"), |s| Value::from(s.audit_retention_days)))
            .field(field("dataRetentionDays", ty::opt("Int"), |s| opt(s.data_retention_days, Value::from)))
            .field(field("deviceSessionDays", ty::req("Int"), |s| Value::from(s.device_session_days))),
    );
    c.query(
        FieldDecl::root(
            "tenantSettings",
            ty::req("TenantSettings"),
            Entry::Matrix(Resource::SystemConfig, Action::Read),
            query(|ctx, a| async move {
                let settings = admin::tenant_settings(&ctx, a.opt_id("tenantId")?).await?;
                Ok(Some(FieldValue::owned_any(settings)))
            }),
        )
        .arg("tenantId", ty::opt("ID"))
        .describe(
            "PROGRAM_ADMIN: its own tenant's settings (tenantId optional). SYSTEM_ADMIN: the \
             settings of tenantId (required).",
        ),
    );
}

fn declare_system_config(c: &mut Catalog) {
    const CONFIG: Access = Access::Resource(Resource::SystemConfig);
    c.object(
        ObjectDecl::new("ConfigEntry")
            .field(FieldDecl::tagged(
                "key",
                ty::req("String"),
                VisibilityTag::SystemInternal,
                CONFIG,
                leaf(|_, e: &ConfigEntryView| Ok(Some(string(&e.key)))),
            ))
            .field(FieldDecl::tagged(
                "value",
                ty::req("String"),
                VisibilityTag::SystemInternal,
                CONFIG,
                leaf(|_, e: &ConfigEntryView| Ok(Some(string(&e.value)))),
            )),
    );
    c.object(ObjectDecl::new("SystemConfig").field(FieldDecl::tagged(
        "entries",
        ty::list("ConfigEntry"),
        VisibilityTag::SystemInternal,
        CONFIG,
        resolver(|rc| {
            FieldFuture::new(async move {
                let config = rc.parent_value.try_downcast_ref::<SystemConfigView>()?;
                Ok(Some(FieldValue::list(config.entries.iter().cloned().map(FieldValue::owned_any))))
            })
        }),
    )));
    c.query(
        FieldDecl::root(
            "systemConfig",
            ty::req("SystemConfig"),
            // The program admin's SystemConfig grant covers tenant settings only
            // (Gate::TenantSettingsOnly): the platform configuration is SYSTEM_ADMIN's.
            Entry::Roles(&[Role::SystemAdmin]),
            query(|ctx, _| async move {
                let entries = admin::system_config(&ctx).await?;
                Ok(Some(FieldValue::owned_any(SystemConfigView {
                    entries: entries.into_iter().map(|(key, value)| ConfigEntryView { key, value }).collect(),
                })))
            }),
        )
        .describe("SYSTEM_ADMIN: the platform configuration, sorted by key."),
    );
}

fn declare_account_status(c: &mut Catalog) {
    fn field(name: &'static str, ty: Ty, value: fn(&AccountStatus) -> Value) -> FieldDecl {
        FieldDecl::tagged(
            name,
            ty,
            VisibilityTag::SystemInternal,
            Access::Resource(Resource::AccountSecurityStatus),
            leaf(move |_, s: &AccountStatus| Ok(Some(value(s)))),
        )
    }
    c.object(
        ObjectDecl::new("AccountStatus")
            .field(field("userId", ty::req("ID"), |s| uuid(s.user_id)))
            .field(field("lastLoginAt", ty::opt("DateTime"), |s| opt(s.last_login_at, datetime)))
            .field(field("failedLoginCount", ty::req("Int"), |s| Value::from(s.failed_login_count)))
            .field(
                field("lockedUntil", ty::opt("DateTime"), |s| opt(s.locked_until, datetime))
                    .describe("Set only while the account is locked."),
            )
            .field(field("active", ty::req("Boolean"), |s| Value::Boolean(s.active))),
    );
    c.query(
        FieldDecl::root(
            "accountStatus",
            ty::opt("AccountStatus"),
            Entry::Matrix(Resource::AccountSecurityStatus, Action::Read),
            query(|ctx, a| async move {
                Ok(Some(FieldValue::owned_any(admin::account_status(&ctx, a.id("userId")?).await?)))
            }),
        )
        .arg("userId", ty::req("ID")),
    );
}

fn declare_break_glass(c: &mut Catalog) {
    fn field(name: &'static str, ty: Ty, value: fn(&BreakGlassView) -> Value) -> FieldDecl {
        FieldDecl::tagged(
            name,
            ty,
            VisibilityTag::AdminAggregate,
            Access::Resource(Resource::BreakGlassRequests),
            leaf(move |_, r: &BreakGlassView| Ok(Some(value(r)))),
        )
    }
    c.object(
        ObjectDecl::new("BreakGlassRequest")
            .field(field("id", ty::req("ID"), |r| uuid(r.id)))
            .field(field("coacheeId", ty::req("ID"), |r| uuid(r.coachee_id)))
            .field(field("requestedBy", ty::req("ID"), |r| uuid(r.requested_by)))
            .field(field("approvedBy", ty::opt("ID"), |r| opt(r.approved_by, uuid)))
            .field(field("reason", ty::req("String"), |r| string(&r.reason)))
            .field(field("expiresAt", ty::opt("DateTime"), |r| opt(r.expires_at, datetime)))
            .field(field("active", ty::req("Boolean"), |r| Value::Boolean(r.active))),
    );
    c.query(
        FieldDecl::root(
            "breakGlassRequests",
            ty::list("BreakGlassRequest"),
            Entry::Matrix(Resource::BreakGlassRequests, Action::Read),
            query(|ctx, _| async move {
                let requests = admin::break_glass_requests(&ctx).await?;
                Ok(Some(FieldValue::list(requests.into_iter().map(FieldValue::owned_any))))
            }),
        )
        .describe(
            "PROGRAM_ADMIN: its tenant's break-glass requests. SYSTEM_ADMIN: every tenant's. \
             Newest first.",
        ),
    );
}

pub fn declare(c: &mut Catalog) {
    declare_audit_events(c);
    declare_tenant_settings(c);
    declare_system_config(c);
    declare_account_status(c);
    declare_break_glass(c);
}
