//! The end of a request: what its `Ctx` queued is written in its transaction, then the
//! transaction commits.

use crate::ctx::Ctx;
use crate::error::AppResult;

/// Writes the AI access log and the queued audit events, then commits. Called once, after
/// the operation ran.
///
/// If that fails (the transaction broke, a statement failed, the commit was refused), the
/// transaction rolls back and the audit events (denials included) are written on their own
/// in a new transaction: a failed request still leaves its trail. The error is returned
/// all the same.
pub async fn finish(ctx: &Ctx) -> AppResult<()> {
    let records = ctx.take_audit();
    let accesses = ctx.take_ai_accesses();
    let done = async {
        if !records.is_empty() || !accesses.is_empty() {
            ctx.db().prepare_write().await?;
        }
        super::ai_log::write(ctx, accesses).await?;
        super::audit::write(ctx.db(), records.clone(), ctx.now()).await?;
        ctx.db().commit().await
    }
    .await;
    let Err(failure) = done else { return Ok(()) };
    let _ = ctx.db().rollback().await;
    if !records.is_empty() {
        ctx.db().reopen().await;
        let kept = async {
            ctx.db().prepare_write().await?;
            super::audit::write(ctx.db(), records, ctx.now()).await?;
            ctx.db().commit().await
        }
        .await;
        if let Err(e) = kept {
            let _ = ctx.db().rollback().await;
            tracing::error!(error = ?e, "could not record a failed request's audit events");
        }
    }
    Err(failure)
}

/// A request refused before it ran: only its audit events are written.
pub async fn abandon(ctx: &Ctx) -> AppResult<()> {
    let _ = ctx.db().rollback().await;
    ctx.db().reopen().await;
    let _ = ctx.take_ai_accesses();
    finish(ctx).await
}
