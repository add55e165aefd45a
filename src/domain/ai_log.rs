//! The AI access log: every read or write by the AI principal, with the model and purpose
//! its client declared, the resource and the rows touched. Visible to the coachee concerned.

use sea_orm::{ActiveValue::Set, EntityTrait};
use uuid::Uuid;

use crate::ctx::Ctx;
use crate::db::entities::ai_access_log;
use crate::error::AppResult;

pub async fn write(ctx: &Ctx, reads: crate::ctx::AiAccesses) -> AppResult<()> {
    let Some(p) = ctx.principal().copied() else { return Ok(()) };
    let (Some(tenant), false) = (p.tenant_id, reads.is_empty()) else { return Ok(()) };
    let now = ctx.now();
    let model = ctx.meta().ai_model.clone().unwrap_or_default();
    let purpose = ctx.meta().ai_purpose.clone().unwrap_or_default();
    let rows = reads.into_iter().map(|((coachee, resource, action), ids)| ai_access_log::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(tenant),
        coachee_id: Set(coachee),
        ai_principal_id: Set(p.user_id),
        model: Set(model.clone()),
        purpose: Set(purpose.clone()),
        resource: Set(resource.to_owned()),
        action: Set(action.to_owned()),
        row_ids: Set(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned())),
        at: Set(now),
    });
    ai_access_log::Entity::insert_many(rows).exec_without_returning(&*ctx.db().conn().await?).await?;
    Ok(())
}
