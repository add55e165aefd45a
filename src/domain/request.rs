//! The end of a request: what its `Ctx` queued is written in its transaction, then the
//! transaction commits.

use crate::ctx::Ctx;
use crate::error::AppResult;

/// Writes the AI access log and the queued audit events, then commits. Called once, after
/// the operation ran.
pub async fn finish(ctx: &Ctx) -> AppResult<()> {
    super::ai_log::write(ctx, ctx.take_ai_accesses()).await?;
    super::audit::write(ctx.db(), ctx.take_audit(), ctx.now()).await?;
    ctx.db().commit().await
}
