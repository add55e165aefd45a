//! Integration tokens (matrix row `integration_tokens`: COACHEE and COACH, their own):
//! created with a secret shown once, revoked at once. Listing is `admin::my_integration_tokens`;
//! using one is `identity::integration`.
//!
//! Minting or revoking a credential needs a signed-in session: an integration token cannot
//! make another one, nor revoke one ([`Ctx::require_session`]).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
use uuid::Uuid;

use crate::authz::{Action, Resource, Scope, matrix};
use crate::ctx::{AuditRecord, Ctx};
use crate::db::entities::integration_tokens;
use crate::domain::access;
use crate::domain::admin::IntegrationTokenView;
use crate::error::{AppError, AppResult};
use crate::identity::integration;
use crate::identity::session::sha256_hex;
use crate::kinds::AuditOutcome;

const R: Resource = Resource::IntegrationTokens;
const CREATE: &str = "CREATE_INTEGRATION_TOKEN";
const REVOKE: &str = "REVOKE_INTEGRATION_TOKEN";
/// Longest token name, in characters.
pub const MAX_NAME: usize = 100;

/// The caller's tenant and id, if its grant of `action` on integration tokens is on its own.
fn own_grant(ctx: &Ctx, what: &str, action: Action) -> AppResult<(Uuid, Uuid)> {
    ctx.require_session(what)?;
    let p = ctx.require()?;
    match matrix::grant(p.role, R, action).map(|g| g.scope) {
        Some(Scope::Own) => Ok((ctx.tenant_id()?, p.user_id)),
        _ => Err(access::deny(ctx, what, R, "no own grant on integration tokens", AppError::Forbidden)),
    }
}

/// `createIntegrationToken(name)`: a new token of the caller and its secret (returned once,
/// stored as a hash).
pub async fn create(ctx: &Ctx, name: &str) -> AppResult<(IntegrationTokenView, String)> {
    let (tenant, me) = own_grant(ctx, CREATE, Action::Create)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(AppError::bad_input(format!("name must be 1 to {MAX_NAME} characters")));
    }
    let now = ctx.now();
    let id = Uuid::new_v4();
    let secret = integration::mint(tenant, id);
    let row = integration_tokens::Model {
        id,
        tenant_id: tenant,
        user_id: me,
        name: name.to_owned(),
        token_hash: sha256_hex(&secret),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
        use_audited_at: None,
    };
    integration_tokens::Entity::insert(row.into_active_model())
        .exec_without_returning(&*ctx.db().conn().await?)
        .await?;
    ctx.audit(
        AuditRecord::by(ctx, CREATE, R.as_str(), AuditOutcome::Allowed)
            .reason(format!("integration token {id} created")),
    );
    let view = IntegrationTokenView { id, name: name.to_owned(), created_at: now, last_used_at: None };
    Ok((view, secret))
}

/// `revokeIntegrationToken(id)`: the caller's token stops working from the next request on.
/// Another user's or tenant's token, a revoked one and an unknown id answer alike
/// (`NOT_FOUND`, audited).
pub async fn revoke(ctx: &Ctx, id: Uuid) -> AppResult<()> {
    let (tenant, me) = own_grant(ctx, REVOKE, Action::Delete)?;
    let revoked = integration_tokens::Entity::update_many()
        .col_expr(integration_tokens::Column::RevokedAt, Expr::value(ctx.now()))
        .filter(integration_tokens::Column::Id.eq(id))
        .filter(integration_tokens::Column::TenantId.eq(tenant))
        .filter(integration_tokens::Column::UserId.eq(me))
        .filter(integration_tokens::Column::RevokedAt.is_null())
        .exec(&*ctx.db().conn().await?)
        .await?;
    if revoked.rows_affected == 0 {
        return Err(access::deny(ctx, REVOKE, R, "no visible row with this id", AppError::NotFound));
    }
    ctx.audit(
        AuditRecord::by(ctx, REVOKE, R.as_str(), AuditOutcome::Allowed)
            .reason(format!("integration token {id} revoked")),
    );
    Ok(())
}
