//! Identity: passwords, tokens, sessions, and the one function that turns a request's
//! credentials into a [`Ctx`].

pub mod credential;
pub mod device;
pub mod integration;
pub mod invitation;
pub mod login;
pub mod password;
pub mod session;
pub mod token;

use crate::clock::SharedClock;
use crate::ctx::{AuditRecord, Ctx, RequestMeta};
use crate::db::{Db, DbScope};
use crate::error::{AppError, AppResult};
use crate::kinds::{AuditOutcome, Role};
pub use session::CsrfCheck;

/// Credentials as the HTTP layer found them.
#[derive(Debug, Clone)]
pub enum Credentials {
    None,
    Bearer(String),
    /// The session cookie, with what the request offered as CSRF proof.
    Cookie {
        token: String,
        csrf: CsrfCheck,
    },
}

/// What turning a request into a `Ctx` needs of the server.
#[derive(Debug, Clone, Copy)]
pub struct Server<'a> {
    pub db: &'a Db,
    pub keys: &'a token::TokenKeys,
    pub clock: &'a SharedClock,
}

fn begin(db: &Db, scope: DbScope, meta: &RequestMeta) -> crate::db::TenantTx {
    if meta.writes { db.begin_writing(scope) } else { db.begin(scope) }
}

/// Longest `X-AI-Model` / `X-AI-Purpose` label.
pub const MAX_LABEL: usize = 64;

/// The AI's declared model and purpose are shown to coachees in their AI access log: they
/// are labels (`session-summary`, `acme/model-2`), never sentences, links or anything else
/// that could pass for instructions: no spaces, no `:`.
fn is_label(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        !v.is_empty()
            && v.chars().count() <= MAX_LABEL
            && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
    })
}

/// Request -> `Ctx`. The only I/O is the session check, inside the request's transaction,
/// whose tenant context is set from the verified token before the first statement.
pub async fn resolve_ctx(state: Server<'_>, credentials: Credentials, meta: RequestMeta) -> AppResult<Ctx> {
    let now = state.clock.now();
    let (token, csrf) = match credentials {
        Credentials::None => {
            let tx = begin(state.db, DbScope::ANONYMOUS, &meta);
            return Ok(Ctx::new(None, tx, state.clock.clone(), meta));
        }
        // An integration token: the owner's rights, marked as such in the principal.
        Credentials::Bearer(token) if token.starts_with(integration::PREFIX) => {
            let named = integration::parse(&token).ok_or(AppError::Unauthenticated)?;
            let tx = begin(state.db, named.lookup_scope(), &meta);
            return match integration::check(&tx, &token, named, now).await {
                Ok((principal, user, audit_use)) => {
                    let ctx = Ctx::new(Some((principal, user)), tx, state.clock.clone(), meta);
                    if audit_use {
                        ctx.audit(
                            AuditRecord::by(
                                &ctx,
                                "INTEGRATION_TOKEN_USED",
                                "integration_tokens",
                                AuditOutcome::Allowed,
                            )
                            .reason(format!("integration token {} used", named.token_id)),
                        );
                    }
                    Ok(ctx)
                }
                Err(e) => {
                    let _ = tx.rollback().await;
                    Err(e)
                }
            };
        }
        Credentials::Bearer(token) => (token, CsrfCheck::NotRequired),
        Credentials::Cookie { token, csrf } => (token, csrf),
    };
    let claims = state.keys.verify(&token, now)?;
    let scope = DbScope { tenant_id: claims.tid, principal_id: Some(claims.sub), role: Some(claims.role) };
    let tx = begin(state.db, scope, &meta);
    let checked = session::check(&tx, &claims, &csrf, now).await.and_then(|(principal, user)| {
        // Every AI access is logged with the model and purpose its client declares.
        let declared = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        if principal.role == Role::AiAgent {
            if !(declared(&meta.ai_model) && declared(&meta.ai_purpose)) {
                return Err(AppError::bad_input("AI_AGENT requests must send the X-AI-Model and X-AI-Purpose headers"));
            }
            if !is_label(meta.ai_model.as_deref()) || !is_label(meta.ai_purpose.as_deref()) {
                return Err(AppError::bad_input(format!(
                    "X-AI-Model and X-AI-Purpose are short labels: at most {MAX_LABEL} characters of letters, \
                     digits and _ . / -"
                )));
            }
        }
        Ok((principal, user))
    });
    match checked {
        Ok(principal) => Ok(Ctx::new(Some(principal), tx, state.clock.clone(), meta)),
        Err(e) => {
            // Best effort: a refused session leaves nothing to keep.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}
