//! The server's Prometheus metrics (`/metrics`), with `prometheus-client`: one registry per
//! server state (several servers in one test process keep theirs apart).
//!
//! Every label value comes from a bounded set: codes, roles and resources are the server's
//! own; GraphQL operation names, which clients choose, are kept for the first
//! [`MAX_OPERATION_NAMES`] distinct ones and counted as `other` beyond.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::Notes;

/// Distinct operation names labelled as themselves.
pub const MAX_OPERATION_NAMES: usize = 200;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DenialLabels {
    reason: String,
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: String,
}

/// The pool as `/metrics` reports it (from `db::PoolStats`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Pool {
    pub in_use: u64,
    pub idle: u64,
    pub waiting: u64,
    pub max: u64,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Histogram,
    errors: Family<CodeLabels, Counter>,
    denials: Family<DenialLabels, Counter>,
    login_failures: Counter,
    rate_limited: Family<CodeLabels, Counter>,
    statements: Histogram,
    pool: Family<PoolLabels, Gauge>,
    operation_names: Mutex<HashSet<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// How a request ended, for `coachgraph_requests_total{outcome}`.
fn outcome(status: u16, notes: &Notes) -> &'static str {
    match status {
        500.. => "error",
        400.. => "refused",
        _ if notes.error_codes.is_empty() => "ok",
        _ => "partial",
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("coachgraph");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "HTTP requests by GraphQL operation (or path) and outcome", requests.clone());
        // 1 ms .. ~16 s.
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register("request_duration_seconds", "Time from request to response", duration.clone());
        let errors = Family::<CodeLabels, Counter>::default();
        registry.register("errors", "Errors in responses, by extensions.code", errors.clone());
        let denials = Family::<DenialLabels, Counter>::default();
        registry.register("denials", "Audited denials, by reason and resource", denials.clone());
        let login_failures = Counter::default();
        registry.register("login_failures", "Credential checks answered INVALID_CREDENTIALS", login_failures.clone());
        let rate_limited = Family::<CodeLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit or a full hashing queue, by code",
            rate_limited.clone(),
        );
        // At zero from the start, so that a rate of refusals is defined before the first one.
        for code in ["RATE_LIMITED", "SERVER_BUSY"] {
            let _ = rate_limited.get_or_create(&CodeLabels { code: code.to_owned() });
        }
        let statements = Histogram::new([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0]);
        registry.register("statements_per_request", "SQL statements a request ran", statements.clone());
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register("db_pool_connections", "Database pool: in_use, idle, waiting and max", pool.clone());
        Metrics {
            registry,
            requests,
            duration,
            errors,
            denials,
            login_failures,
            rate_limited,
            statements,
            pool,
            operation_names: Mutex::new(HashSet::new()),
        }
    }

    /// The label for a request: its GraphQL operation's name (bounded), `anonymous` for an
    /// unnamed operation, or the path for the few other routes.
    fn operation_label(&self, path: &str, status: u16, notes: &Notes) -> String {
        let Some(kind) = notes.operation_type else {
            return match path {
                "/graphql" => "unparsed",
                "/" | "/playground" | "/healthz" | "/readyz" | "/metrics" => path,
                _ => "other_path",
            }
            .to_owned();
        };
        let Some(name) = notes.operation.as_deref() else { return format!("anonymous_{kind}") };
        let mut seen = self.operation_names.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(name) {
            return name.to_owned();
        }
        // A new name takes a label slot only when its request was authenticated and answered
        // without errors: anonymous or failing clients cannot use the slots up.
        let earned = status < 300 && notes.role.is_some() && notes.error_codes.is_empty();
        if earned && seen.len() < MAX_OPERATION_NAMES && name.len() <= 64 {
            seen.insert(name.to_owned());
            name.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// Records one finished request.
    pub fn observe(&self, path: &str, status: u16, elapsed: Duration, statements: u64, notes: &Notes) {
        let operation = self.operation_label(path, status, notes);
        self.requests.get_or_create(&RequestLabels { operation, outcome: outcome(status, notes).to_owned() }).inc();
        self.duration.observe(elapsed.as_secs_f64());
        if path == "/graphql" {
            self.statements.observe(statements as f64);
        }
        for code in &notes.error_codes {
            self.errors.get_or_create(&CodeLabels { code: code.clone() }).inc();
            match code.as_str() {
                "INVALID_CREDENTIALS" => {
                    self.login_failures.inc();
                }
                "RATE_LIMITED" | "SERVER_BUSY" => {
                    self.rate_limited.get_or_create(&CodeLabels { code: code.clone() }).inc();
                }
                _ => {}
            }
        }
        for (reason, resource) in &notes.denials {
            self.denials.get_or_create(&DenialLabels { reason: reason.clone(), resource: resource.clone() }).inc();
        }
    }

    /// The Prometheus text exposition, with the pool as it is now.
    pub fn render(&self, pool: Pool) -> String {
        for (state, value) in
            [("in_use", pool.in_use), ("idle", pool.idle), ("waiting", pool.waiting), ("max", pool.max)]
        {
            self.pool.get_or_create(&PoolLabels { state: state.to_owned() }).set(value as i64);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_chosen_operation_names_are_bounded() {
        let metrics = Metrics::new();
        let named = |n: &str| Notes {
            operation: Some(n.to_owned()),
            operation_type: Some("query"),
            role: Some("COACH"),
            ..Notes::default()
        };
        for i in 0..MAX_OPERATION_NAMES + 50 {
            metrics.observe("/graphql", 200, Duration::from_millis(1), 1, &named(&format!("Op{i}")));
        }
        let text = metrics.render(Pool::default());
        assert!(text.contains("operation=\"Op0\""), "{text}");
        assert!(!text.contains(&format!("operation=\"Op{}\"", MAX_OPERATION_NAMES + 1)), "{text}");
        assert!(text.contains("coachgraph_requests_total{operation=\"other\",outcome=\"ok\"} 50"), "{text}");
        // An anonymous request's new name takes no slot.
        let fresh = Metrics::new();
        fresh.observe("/graphql", 200, Duration::from_millis(1), 1, &Notes { role: None, ..named("Probe") });
        assert!(fresh.render(Pool::default()).contains("operation=\"other\""));
    }

    #[test]
    fn codes_feed_errors_login_failures_and_rate_limits() {
        let metrics = Metrics::new();
        let notes = Notes {
            operation_type: Some("mutation"),
            error_codes: vec!["INVALID_CREDENTIALS".into(), "RATE_LIMITED".into()],
            denials: vec![("INVALID_CREDENTIALS".into(), "auth".into())],
            ..Notes::default()
        };
        metrics.observe("/graphql", 200, Duration::from_millis(3), 4, &notes);
        let text = metrics.render(Pool { in_use: 1, idle: 2, waiting: 0, max: 16 });
        for line in [
            "coachgraph_requests_total{operation=\"anonymous_mutation\",outcome=\"partial\"} 1",
            "coachgraph_errors_total{code=\"INVALID_CREDENTIALS\"} 1",
            "coachgraph_login_failures_total 1",
            "coachgraph_rate_limited_total{code=\"RATE_LIMITED\"} 1",
            "coachgraph_denials_total{reason=\"INVALID_CREDENTIALS\",resource=\"auth\"} 1",
            "coachgraph_db_pool_connections{state=\"idle\"} 2",
            "coachgraph_statements_per_request_count 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
