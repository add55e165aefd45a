//! What a request carries for the operator, from the HTTP edge down to the database layer
//! without being passed through every call: its id (for logs, spans and internal-error
//! extensions) and the count of the statements it runs (for the access log and metrics).
//!
//! It rides in a tokio task-local set by the HTTP middleware; the DataLoaders, whose batches
//! run in tasks of their own, carry it over with [`spawn_in_request`].

pub mod metrics;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One request, as the operator sees it.
#[derive(Debug)]
pub struct RequestScope {
    pub id: String,
    /// Made by this server for every request, whatever id the client sent: what the audit
    /// trail groups a request's events by (a client-chosen id could merge many requests'
    /// denials into one and keep them under the alert threshold).
    pub serial: uuid::Uuid,
    statements: AtomicU64,
    notes: Mutex<Notes>,
}

/// What the layers below the edge learnt about a request, for its access log line and its
/// metrics. Never personal data: ids, role and codes only.
#[derive(Debug, Default, Clone)]
pub struct Notes {
    /// The GraphQL operation's name, if it has one.
    pub operation: Option<String>,
    /// `query` or `mutation`.
    pub operation_type: Option<&'static str>,
    pub role: Option<&'static str>,
    pub tenant: Option<String>,
    pub principal: Option<String>,
    /// The `extensions.code` of each error the response carries.
    pub error_codes: Vec<String>,
    /// Each denial audited: (reason, resource).
    pub denials: Vec<(String, String)>,
}

impl RequestScope {
    pub fn new(id: String) -> Arc<RequestScope> {
        Arc::new(RequestScope {
            id,
            serial: uuid::Uuid::new_v4(),
            statements: AtomicU64::new(0),
            notes: Mutex::new(Notes::default()),
        })
    }

    /// Statements the request has run so far.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    pub fn notes(&self) -> Notes {
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn note(f: impl FnOnce(&mut Notes)) {
    let _ = CURRENT.try_with(|s| f(&mut s.notes.lock().unwrap_or_else(|p| p.into_inner())));
}

/// The operation being run (name, if any, and type).
pub fn note_operation(name: Option<&str>, operation_type: &'static str) {
    note(|n| {
        n.operation = name.map(str::to_owned);
        n.operation_type = Some(operation_type);
    });
}

/// Who is asking: recorded in the request's span too.
pub fn note_principal(role: Option<&'static str>, tenant: Option<String>, principal: Option<String>) {
    let span = tracing::Span::current();
    if let Some(role) = role {
        span.record("role", role);
    }
    if let Some(tenant) = &tenant {
        span.record("tenant", tenant.as_str());
    }
    if let Some(principal) = &principal {
        span.record("principal", principal.as_str());
    }
    note(|n| {
        n.role = role;
        n.tenant = tenant;
        n.principal = principal;
    });
}

/// An error code the response carries.
pub fn note_error_code(code: &str) {
    note(|n| n.error_codes.push(code.to_owned()));
}

/// A denial: logged at info with its reason (a code or the audited action) and resource,
/// never the data or free text.
pub fn note_denial(reason: &str, resource: &str) {
    tracing::info!(reason, resource, "denied");
    note(|n| n.denials.push((reason.to_owned(), resource.to_owned())));
}

tokio::task_local! {
    static CURRENT: Arc<RequestScope>;
}

/// Runs `future` as part of the request `scope`.
pub fn within<F: Future>(scope: Arc<RequestScope>, future: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(scope, future)
}

/// The request being served by this task, if any.
pub fn current() -> Option<Arc<RequestScope>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// The id of the request being served by this task, if any.
pub fn request_id() -> Option<String> {
    CURRENT.try_with(|s| s.id.clone()).ok()
}

/// The current request's server-made serial (see [`RequestScope::serial`]).
pub fn request_serial() -> Option<uuid::Uuid> {
    CURRENT.try_with(|s| s.serial).ok()
}

/// Called for every statement the pool runs: counted against the current request.
pub fn count_statement() {
    let _ = CURRENT.try_with(|s| s.statements.fetch_add(1, Ordering::Relaxed));
}

/// `tokio::spawn`, keeping the current request's scope in the new task (the DataLoaders'
/// spawner: their batches are the request's statements too).
pub fn spawn_in_request<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    use tracing::Instrument;
    // The request's span too, so that what the batch logs names its request.
    let future = future.in_current_span();
    match current() {
        Some(scope) => tokio::spawn(CURRENT.scope(scope, future)),
        None => tokio::spawn(future),
    }
}

/// An incoming `x-request-id` worth keeping: 1 to 128 characters of `A-Z a-z 0-9 - _ . : /`.
/// Anything else (empty, long, spaces, control or non-ASCII characters) is replaced by a
/// fresh id, so a client cannot forge log lines or carry data through it.
pub fn well_formed_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_well_formed() {
        assert!(well_formed_request_id("0b6f5a0e-2c8e-4df1-9b1a-3f3c0e6a9d11"));
        assert!(well_formed_request_id("lb-7f3a:42/1.2_x"));
        for bad in ["", "a b", "id\nforged log line", "ünïcode", &"x".repeat(129), "<script>"] {
            assert!(!well_formed_request_id(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn statements_count_against_the_request_of_the_task_and_its_spawned_batches() {
        let scope = RequestScope::new("r1".into());
        within(scope.clone(), async {
            count_statement();
            spawn_in_request(async { count_statement() }).await.expect("task");
        })
        .await;
        count_statement(); // outside any request: counted nowhere
        assert_eq!(scope.statements(), 2);
    }
}
