//! The one error type of the domain and data layers. Each variant documents the
//! `extensions.code` it becomes at the GraphQL boundary ([`AppError::into_graphql`]),
//! which is also the only place internal errors are logged and masked.

use async_graphql::ErrorExtensions;
use uuid::Uuid;

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// `UNAUTHENTICATED`: no credentials, or a token or session that is not (or no longer) valid.
    #[error("authentication required")]
    Unauthenticated,
    /// `INVALID_CREDENTIALS`: the same answer for an unknown email, a wrong password and a locked account.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// `INVALID_INVITATION`: the same answer for an unknown, used, expired or replaced
    /// invitation token.
    #[error(
        "this invitation is not valid: it may have expired, been used or been replaced; ask an administrator for a new one"
    )]
    InvalidInvitation,
    /// `CSRF_REJECTED`: a cookie-authenticated POST without the session's CSRF token.
    #[error("missing or invalid CSRF token")]
    CsrfRejected,
    /// `FORBIDDEN`: the role may read this kind of data, but not this row.
    #[error("forbidden")]
    Forbidden,
    /// `CONSENT_REQUIRED`: a consent gate is closed for this row.
    #[error("consent required")]
    ConsentRequired,
    /// `NOT_FOUND`: no such row; another tenant's id answers exactly the same.
    #[error("not found")]
    NotFound,
    /// `BAD_USER_INPUT`: the message says which input and why; it never echoes stored data.
    #[error("{0}")]
    BadInput(String),
    /// `CONFLICT`: the request clashes with the current state (e.g. already approved).
    #[error("{0}")]
    Conflict(String),
    /// `RATE_LIMITED` (HTTP 429 with `Retry-After`): too many requests for this principal,
    /// tenant or source address.
    #[error("rate limit exceeded")]
    RateLimited,
    /// `RATE_LIMITED` (HTTP 429), with the seconds after which a retry may succeed.
    #[error("rate limit exceeded; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// `SERVER_BUSY` (HTTP 503 with `Retry-After`): the server is at capacity for this kind
    /// of work (password hashing); nothing was done.
    #[error("server busy; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// `INTERNAL`: anything else. The detail is never shown (not even by `Display`, so an
    /// accidental conversion cannot leak it); it is logged with an incident id the client gets.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "UNAUTHENTICATED",
            AppError::InvalidCredentials => "INVALID_CREDENTIALS",
            AppError::InvalidInvitation => "INVALID_INVITATION",
            AppError::CsrfRejected => "CSRF_REJECTED",
            AppError::Forbidden => "FORBIDDEN",
            AppError::ConsentRequired => "CONSENT_REQUIRED",
            AppError::NotFound => "NOT_FOUND",
            AppError::BadInput(_) => "BAD_USER_INPUT",
            AppError::Conflict(_) => "CONFLICT",
            AppError::RateLimited | AppError::Throttled { .. } => "RATE_LIMITED",
            AppError::Busy { .. } => "SERVER_BUSY",
            AppError::Internal(_) => "INTERNAL",
        }
    }

    /// The message a client may see.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        AppError::Internal(e.to_string())
    }

    pub fn bad_input(msg: impl Into<String>) -> Self {
        AppError::BadInput(msg.into())
    }

    /// The boundary: the client sees a safe message and a code; internals go to the log only.
    pub fn into_graphql(self) -> async_graphql::Error {
        let code = self.code();
        let mut request_id = None;
        let message = match &self {
            AppError::Internal(detail) => {
                let incident = Uuid::new_v4();
                tracing::error!(%incident, detail = %detail, "internal error");
                // The request id lets an operator find the request's log lines from a
                // client's report.
                request_id = crate::telemetry::request_id();
                format!("internal error (incident {incident})")
            }
            other => other.to_string(),
        };
        let retry_after = self.retry_after_secs();
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(secs) = retry_after {
                ext.set("retryAfter", secs);
            }
            if let Some(id) = &request_id {
                ext.set("requestId", id.as_str());
            }
        })
    }

    /// Seconds after which the same request may succeed, for errors that say so.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AppError::Throttled { retry_after_secs } | AppError::Busy { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(e: sea_orm::DbErr) -> Self {
        AppError::Internal(format!("database: {e}"))
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(e: sea_orm::TransactionError<AppError>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(app) => app,
        }
    }
}
