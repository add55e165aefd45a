//! Administrators' and operators' mutations (`assignCoach`, `unassignCoach`, `inviteUser`,
//! `deactivateUser`, `updateTenantSettings`, `updateSystemConfig`, `unlockAccount`) and the
//! data-rights mutations ([`rights`]: `deleteMyAccount`, `deleteCoachee`).
//!
//! Entries: the matrix cell where one fits; `Entry::Roles` where the policy's rule is prose
//! or narrower than the matrix row (`updateTenantSettings` is the program admin's part of
//! `system_config`; `updateSystemConfig` the system admin's). Payloads reuse the types of the
//! read side (`User`, `TenantSettings`, `SystemConfig`), so what a role sees of a payload is
//! exactly what it sees of the same type anywhere else.

mod rights;

use crate::graphql::decl::ty;
use std::sync::Arc;

use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};

use super::admin::{ConfigEntryView, SystemConfigView};
use super::decl::{Entry, FieldDecl, Resolver};
use super::mutation::{Args, done, mutation};
use super::schema::{Catalog, InputDecl, resolver};
use super::users::UserView;
use crate::authz::{Action, Resource, Scope};
use crate::ctx::Ctx;
use crate::domain::admin;
use crate::domain::operations::{self, TenantSettingsChange};
use crate::error::{AppError, AppResult};
use crate::kinds::Role;

pub fn declare(c: &mut Catalog) {
    declare_assignments(c);
    declare_users(c);
    declare_tenant_settings(c);
    declare_platform(c);
    rights::declare(c);
}

fn declare_assignments(c: &mut Catalog) {
    c.mutation(
        FieldDecl::root(
            "assignCoach",
            ty::req("Boolean"),
            Entry::Matrix(Resource::CoachAssignments, Action::Create),
            mutation(|ctx, args| async move {
                operations::assign_coach(&ctx, args.id("coachId")?, args.id("coacheeId")?).await?;
                Ok(done())
            }),
        )
        .arg("coachId", ty::req("ID"))
        .arg("coacheeId", ty::req("ID"))
        .describe(
            "PROGRAM_ADMIN: assigns a coach of the tenant to a coachee of the tenant (reactivates \
             an ended assignment).",
        ),
    );
    c.mutation(
        FieldDecl::root(
            "unassignCoach",
            ty::req("Boolean"),
            Entry::Matrix(Resource::CoachAssignments, Action::Delete),
            mutation(|ctx, args| async move {
                operations::unassign_coach(&ctx, args.id("coachId")?, args.id("coacheeId")?).await?;
                Ok(done())
            }),
        )
        .arg("coachId", ty::req("ID"))
        .arg("coacheeId", ty::req("ID"))
        .describe("PROGRAM_ADMIN: ends an active assignment; the coach loses access at once."),
    );
}

fn declare_users(c: &mut Catalog) {
    c.mutation(
        FieldDecl::root(
            "inviteUser",
            ty::req("User"),
            Entry::Matrix(Resource::OtherUserProfiles, Action::Create),
            mutation(|ctx, args| async move {
                let email = args.text("email", operations::MAX_EMAIL_LEN)?;
                let display_name = args.text("displayName", operations::MAX_DISPLAY_NAME_LEN)?;
                let role = args.enum_("role", Role::parse)?;
                let user = operations::invite_user(&ctx, &email, display_name, role).await?;
                Ok(FieldValue::owned_any(UserView { model: user.into(), scope: Scope::Tenant }))
            }),
        )
        .arg("email", ty::req("String"))
        .arg("displayName", ty::req("String"))
        .arg("role", ty::req("Role"))
        .describe("PROGRAM_ADMIN: a new user of the tenant, INVITED (no password yet)."),
    );
    c.mutation(
        FieldDecl::root(
            "deactivateUser",
            ty::req("Boolean"),
            Entry::Matrix(Resource::OtherUserProfiles, Action::Update),
            mutation(|ctx, args| async move {
                operations::deactivate_user(&ctx, args.id("id")?).await?;
                Ok(done())
            }),
        )
        .arg("id", ty::req("ID"))
        .describe("PROGRAM_ADMIN: deactivates a user of the tenant and ends its sessions at once (not itself)."),
    );
}

/// Whether `input.field` was sent as an explicit `null` (as opposed to left out).
fn explicit_null(rc: &ResolverContext<'_>, input: &str, field: &str) -> bool {
    match rc.args.as_index_map().get(input) {
        Some(Value::Object(fields)) => matches!(fields.get(field), Some(Value::Null)),
        _ => false,
    }
}

fn to_i32(v: Option<i64>) -> AppResult<Option<i32>> {
    v.map(|v| i32::try_from(v).map_err(|_| AppError::bad_input("integer out of range"))).transpose()
}

async fn update_tenant_settings(
    ctx: Arc<Ctx>,
    args: Args,
    clear_data_retention: bool,
) -> AppResult<FieldValue<'static>> {
    let input = args.object("input")?;
    let change = TenantSettingsChange {
        session_timeout_minutes: to_i32(input.opt_int("sessionTimeoutMinutes", operations::SESSION_TIMEOUT_MINUTES)?)?,
        audit_retention_days: to_i32(input.opt_int("auditRetentionDays", operations::AUDIT_RETENTION_DAYS)?)?,
        data_retention_days: match to_i32(input.opt_int("dataRetentionDays", operations::DATA_RETENTION_DAYS)?)? {
            Some(days) => Some(Some(days)),
            None if clear_data_retention => Some(None),
            None => None,
        },
        device_session_days: to_i32(input.opt_int("deviceSessionDays", crate::identity::device::DEVICE_SESSION_DAYS)?)?,
    };
    let settings = operations::update_tenant_settings(&ctx, change).await?;
    Ok(FieldValue::owned_any(settings))
}

/// Like [`mutation`], plus the one thing `Args` cannot tell: `dataRetentionDays: null`
/// (clear it) from a left-out `dataRetentionDays` (keep it).
fn update_tenant_settings_resolver() -> Resolver {
    resolver(|rc| {
        FieldFuture::new(async move {
            let ctx =
                rc.data::<Arc<Ctx>>().cloned().map_err(|_| AppError::internal("request without Ctx").into_graphql())?;
            let args = Args::from_rc(&rc);
            let clear = explicit_null(&rc, "input", "dataRetentionDays");
            let tx_ctx = ctx.clone();
            let value =
                tx_ctx.db().atomic(update_tenant_settings(ctx, args, clear)).await.map_err(AppError::into_graphql)?;
            Ok(Some(value))
        })
    })
}

fn declare_tenant_settings(c: &mut Catalog) {
    c.input(InputDecl {
        name: "TenantSettingsInput",
        fields: vec![
            ("sessionTimeoutMinutes", ty::opt("Int")),
            ("auditRetentionDays", ty::opt("Int")),
            ("dataRetentionDays", ty::opt("Int")),
            ("deviceSessionDays", ty::opt("Int")),
        ],
    });
    c.mutation(
        FieldDecl::root(
            "updateTenantSettings",
            ty::req("TenantSettings"),
            // The program admin's part of `system_config` (Gate::TenantSettingsOnly); the
            // system administrator reads tenant settings but changes platform config only.
            Entry::Roles(&[Role::ProgramAdmin]),
            update_tenant_settings_resolver(),
        )
        .arg("input", ty::req("TenantSettingsInput"))
        .describe(
            "PROGRAM_ADMIN: its tenant's settings. sessionTimeoutMinutes 5..480, auditRetentionDays \
             30..3650, dataRetentionDays 30..36500 or null (keep), deviceSessionDays 1..90; a field left out \
             is unchanged.",
        ),
    );
}

fn declare_platform(c: &mut Catalog) {
    c.mutation(
        FieldDecl::root(
            "updateSystemConfig",
            ty::req("SystemConfig"),
            Entry::Roles(&[Role::SystemAdmin]),
            mutation(|ctx, args| async move {
                let key = args.text("key", operations::MAX_CONFIG_KEY_LEN)?;
                let value = args.text("value", operations::MAX_CONFIG_VALUE_LEN)?;
                operations::update_system_config(&ctx, key, value).await?;
                let entries = admin::system_config(&ctx).await?;
                Ok(FieldValue::owned_any(SystemConfigView {
                    entries: entries.into_iter().map(|(key, value)| ConfigEntryView { key, value }).collect(),
                }))
            }),
        )
        .arg("key", ty::req("String"))
        .arg("value", ty::req("String"))
        .describe("SYSTEM_ADMIN: sets one platform configuration entry (key: 1..100 of a-z 0-9 . _ -)."),
    );
    c.mutation(
        FieldDecl::root(
            "unlockAccount",
            ty::req("Boolean"),
            Entry::Matrix(Resource::AccountSecurityStatus, Action::Update),
            mutation(|ctx, args| async move {
                operations::unlock_account(&ctx, args.id("userId")?).await?;
                Ok(done())
            }),
        )
        .arg("userId", ty::req("ID"))
        .describe("SYSTEM_ADMIN: clears an account's lock and failed-login count (any tenant)."),
    );
}
