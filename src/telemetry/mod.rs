//! What a request carries for the operator, from the HTTP edge down to the database layer
//! without being passed through every call: its id (for logs, spans and internal-error
//! extensions) and the count of the statements it runs (for the access log and metrics);
//! and, for its DataLoaders, whether its executor is mid-pass (the batching barrier,
//! [`executor_passes`]).
//!
//! It rides in a tokio task-local set by the HTTP middleware. The DataLoaders' batches run in
//! the request's own task, between the executor's passes ([`batch_in_request`]); a batch
//! that has to run in a task of its own carries the scope over ([`spawn_in_request`]).

pub mod metrics;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Whether the GraphQL executor is inside a poll right now (see [`executor_passes`]).
    pass: ExecutorPass,
    /// DataLoader batches waiting for the executor's driver to poll them.
    batches: BatchQueue,
}

type Batch = futures_util::future::BoxFuture<'static, ()>;

/// The DataLoader batches of a request whose executor is running ([`executor_passes`]):
/// `None` when no executor runs, and a batch then needs a task of its own.
#[derive(Default)]
struct BatchQueue(Mutex<Option<Queued>>);

#[derive(Default)]
struct Queued {
    batches: Vec<Batch>,
    /// The driver's waker while it waits, so a batch queued from another task (one that
    /// carries the request's scope) is not left waiting for a wake-up that never comes.
    /// Cleared whenever the driver's task is polled: a batch queued by that poll is run
    /// before the driver waits again, and wakes nothing.
    waiting: Option<std::task::Waker>,
}

impl std::fmt::Debug for BatchQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatchQueue")
    }
}

impl BatchQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Queued>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `batch` if an executor will poll it; gives it back otherwise.
    fn offer(&self, batch: Batch) -> Option<Batch> {
        let waiting = {
            let mut queue = self.lock();
            let Some(queue) = queue.as_mut() else { return Some(batch) };
            queue.batches.push(batch);
            queue.waiting.take()
        };
        if let Some(driver) = waiting {
            driver.wake();
        }
        None
    }

    fn open(&self) {
        self.lock().get_or_insert_with(Queued::default);
    }

    /// The queued batches.
    fn take(&self) -> Vec<Batch> {
        self.lock().as_mut().map(|queue| std::mem::take(&mut queue.batches)).unwrap_or_default()
    }

    /// The driver's task is polled: a batch its own poll queues needs no wake-up.
    fn driver_polled(&self) {
        if let Some(queue) = self.lock().as_mut() {
            queue.waiting = None;
        }
    }

    /// The driver waits: true if a batch came in meanwhile (it must not wait after all).
    /// A closed queue has nothing to wait for.
    fn wait(&self, driver: &std::task::Waker) -> bool {
        match self.lock().as_mut() {
            Some(queue) if queue.batches.is_empty() => {
                queue.waiting = Some(driver.clone());
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    /// No executor polls batches any more: what is queued is given back.
    fn close(&self) -> Vec<Batch> {
        self.lock().take().map(|queue| queue.batches).unwrap_or_default()
    }
}

/// The batching barrier. A DataLoader batch takes the keys registered before it starts; one
/// pass of the executor over a level (25 coachees' fields, say) registers them one by one,
/// and a batch that started midway would take part of the keys and leave the rest to a
/// second statement. So a batch of this request first waits (at most [`LONGEST_PASS_WAIT`])
/// for the executor's current pass to end: a pass yields once the fields it polled are
/// waiting, so the loads it registered are one batch. (Loads of one level registered in two
/// passes, e.g. when tokio's cooperative budget ends a pass early, can still be two.)
#[derive(Debug, Default)]
struct ExecutorPass {
    polling: AtomicBool,
    ended: tokio::sync::Notify,
}

impl ExecutorPass {
    async fn wait_for_end(&self) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before the check, so an end between the check and the await is seen.
            ended.as_mut().enable();
            if !self.polling.load(Ordering::Acquire) {
                return;
            }
            ended.await;
        }
    }
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
            pass: ExecutorPass::default(),
            batches: BatchQueue::default(),
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

/// How long a request's DataLoader waits before it starts a batch: not at all. Starting
/// batches only between the executor's passes ([`executor_passes`]) is what gathers a
/// level's keys; async-graphql's default (1 ms, on a timer thread of its own unless its
/// `tokio-timer` feature is on) only added a timer wake-up and a millisecond of latency to
/// every level of every request.
pub const BATCH_DELAY: std::time::Duration = std::time::Duration::ZERO;

/// The DataLoaders' spawner. A batch of a request whose executor is running is polled by
/// that executor's driver, in the request's own task, once the executor's current pass has
/// ended ([`executor_passes`]); otherwise it runs in a task of its own
/// ([`spawn_in_request`]).
///
/// Why not always a task: a spawned batch is a hand-over to another worker thread, and its
/// statements' answers wake that thread and then the request's (up to 9% more requests per
/// second on the client app without them, measured side by side).
pub fn batch_in_request(batch: Batch) {
    use tracing::Instrument;
    // The request's span too, so that what the batch logs names its request.
    let batch: Batch = Box::pin(batch.in_current_span());
    let refused = match current() {
        Some(scope) => scope.batches.offer(batch),
        None => Some(batch),
    };
    if let Some(batch) = refused {
        drop(spawn_in_request(batch));
    }
}

/// `tokio::spawn`, keeping the current request's scope in the new task (the statements of a
/// batch that runs outside its request's task are the request's statements too). The task
/// starts once the request's executor pass has ended (see [`ExecutorPass`]).
pub fn spawn_in_request<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    use tracing::Instrument;
    // The request's span too, so that what the batch logs names its request.
    let future = future.in_current_span();
    match current() {
        Some(scope) => {
            let batch = scope.clone();
            tokio::spawn(CURRENT.scope(scope, async move {
                // The barrier may delay a batch, never hold it back for good.
                let _ = tokio::time::timeout(LONGEST_PASS_WAIT, batch.pass.wait_for_end()).await;
                future.await
            }))
        }
        None => tokio::spawn(future),
    }
}

/// Runs the GraphQL executor's `future` and, between its passes, the current request's
/// DataLoader batches ([`batch_in_request`]): a batch starts only once the pass that
/// registered its keys has ended, so the keys of one pass are one batch. A finished batch
/// lets the executor go on at once. Outside a request, `future` runs as it is.
pub fn executor_passes<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let mut future = Box::pin(future);
    let mut driver: Option<BatchDriver> = None;
    std::future::poll_fn(move |cx| {
        let Some(scope) = current() else { return future.as_mut().poll(cx) };
        let driver = driver.get_or_insert_with(|| BatchDriver::start(scope.clone()));
        scope.batches.driver_polled();
        loop {
            scope.pass.polling.store(true, Ordering::Release);
            let polled = {
                // Ends the pass when the poll returns or unwinds (a resolver's panic, caught at
                // the HTTP edge), so a batch in a task of its own never waits on a pass that
                // is over.
                let _pass = PassEnd(&scope.pass);
                future.as_mut().poll(cx)
            };
            if polled.is_ready() || !driver.run(cx) {
                return polled;
            }
        }
    })
}

/// Polls a request's DataLoader batches in the request's task (see [`executor_passes`]).
struct BatchDriver {
    scope: Arc<RequestScope>,
    running: futures_util::stream::FuturesUnordered<Batch>,
}

impl BatchDriver {
    fn start(scope: Arc<RequestScope>) -> BatchDriver {
        scope.batches.open();
        BatchDriver { scope, running: futures_util::stream::FuturesUnordered::new() }
    }

    /// Polls every batch, the newly queued ones too; whether any finished (its loads are
    /// answered, so the executor has work). When none did, the driver waits, and a batch
    /// queued from elsewhere wakes it.
    fn run(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        use futures_util::StreamExt as _;
        let mut finished = false;
        loop {
            self.running.extend(self.scope.batches.take());
            while let std::task::Poll::Ready(Some(())) = self.running.poll_next_unpin(cx) {
                finished = true;
            }
            // A batch may have queued another (a loader that loads through another).
            if finished || !self.scope.batches.wait(cx.waker()) {
                return finished;
            }
        }
    }
}

impl Drop for BatchDriver {
    /// The executor is done or dropped (a cancelled request, a panic): batches it left run
    /// to their end in a task of their own, as they would have had they been spawned, so a
    /// batch never stops halfway through its statement.
    fn drop(&mut self) {
        use futures_util::StreamExt as _;
        self.running.extend(self.scope.batches.close());
        if self.running.is_empty() {
            return;
        }
        let left = std::mem::take(&mut self.running);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(CURRENT.scope(self.scope.clone(), left.for_each(|()| async {})));
        }
    }
}

/// The longest a batch waits for its executor pass to end: a pass is CPU work on one
/// request's fields, well under this; the bound keeps a batch from ever being held back.
const LONGEST_PASS_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

struct PassEnd<'a>(&'a ExecutorPass);

impl Drop for PassEnd<'_> {
    fn drop(&mut self) {
        self.0.polling.store(false, Ordering::Release);
        self.0.ended.notify_waiters();
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

    /// Counts its batches; each batch is the keys it was given.
    struct Batches(Arc<Mutex<Vec<Vec<u32>>>>);

    impl async_graphql::dataloader::Loader<u32> for Batches {
        type Value = u32;
        type Error = std::convert::Infallible;

        async fn load(&self, keys: &[u32]) -> Result<std::collections::HashMap<u32, u32>, Self::Error> {
            let mut keys = keys.to_vec();
            keys.sort_unstable();
            self.0.lock().expect("batches").push(keys.clone());
            Ok(keys.into_iter().map(|k| (k, k)).collect())
        }
    }

    /// One pass of an executor: a load, then work that outlasts any wait of the loader's own
    /// (a busy machine), then another load; `join3` polls the three in order in one pass.
    /// Returns the batches the loader made.
    async fn batches_of_one_slow_pass<S, R>(spawner: S) -> Vec<Vec<u32>>
    where
        S: Fn(futures_util::future::BoxFuture<'static, ()>) -> R + Send + Sync + 'static,
    {
        use async_graphql::dataloader::DataLoader;
        let batches = Arc::new(Mutex::new(Vec::new()));
        let loader = DataLoader::new(Batches(batches.clone()), spawner).delay(BATCH_DELAY);
        let busy = async { std::thread::sleep(std::time::Duration::from_millis(30)) };
        let pass = futures_util::future::join3(loader.load_one(0), busy, loader.load_one(2));
        let (first, (), second) = within(RequestScope::new("r1".into()), executor_passes(pass)).await;
        assert_eq!((first.ok().flatten(), second.ok().flatten()), (Some(0), Some(2)));
        batches.lock().expect("batches").clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loads_of_one_executor_pass_are_one_batch_however_long_the_pass_takes() {
        assert_eq!(batches_of_one_slow_pass(batch_in_request).await, vec![vec![0, 2]], "one batch");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loads_of_one_executor_pass_are_one_batch_when_the_batch_has_a_task_of_its_own() {
        assert_eq!(batches_of_one_slow_pass(spawn_in_request).await, vec![vec![0, 2]], "one batch");
    }

    /// Answers each key with the task that ran its batch.
    struct TaskOfBatch;

    impl async_graphql::dataloader::Loader<u32> for TaskOfBatch {
        type Value = Option<tokio::task::Id>;
        type Error = std::convert::Infallible;

        async fn load(&self, keys: &[u32]) -> Result<std::collections::HashMap<u32, Self::Value>, Self::Error> {
            Ok(keys.iter().map(|k| (*k, tokio::task::try_id())).collect())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_s_batches_run_in_the_request_s_own_task() {
        use async_graphql::dataloader::DataLoader;
        let request = tokio::spawn(within(RequestScope::new("r1".into()), async {
            let loader = DataLoader::new(TaskOfBatch, batch_in_request).delay(BATCH_DELAY);
            let ran_in = executor_passes(loader.load_one(1)).await.ok().flatten().flatten();
            (tokio::task::id(), ran_in)
        }));
        let (request_task, batch_task) = request.await.expect("request");
        assert_eq!(batch_task, Some(request_task));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_queued_from_another_task_of_the_request_wakes_the_executor_s_driver() {
        use async_graphql::dataloader::DataLoader;
        let loader = Arc::new(DataLoader::new(TaskOfBatch, batch_in_request).delay(BATCH_DELAY));
        let request = within(RequestScope::new("r1".into()), {
            let loader = loader.clone();
            // The executor waits on a task that carries the request's scope and loads: its
            // batch goes to the executor's driver, which is waiting.
            async move {
                let ran_in = executor_passes(async move {
                    spawn_in_request(async move { loader.load_one(1).await.ok().flatten().flatten() }).await
                })
                .await;
                (tokio::task::id(), ran_in.ok().flatten())
            }
        });
        // A task of its own, so that nothing but a wake-up polls it again (a timeout around
        // the request itself would).
        let ran = tokio::time::timeout(std::time::Duration::from_secs(5), tokio::spawn(request)).await;
        let (request_task, batch_task) = ran.expect("the batch ran in time").expect("request");
        assert_eq!(batch_task, Some(request_task), "the driver ran it, in the request's task");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_executor_inside_another_of_the_same_request_leaves_the_outer_one_working() {
        use async_graphql::dataloader::DataLoader;
        let loader = Arc::new(DataLoader::new(TaskOfBatch, batch_in_request).delay(BATCH_DELAY));
        let request = within(RequestScope::new("r1".into()), {
            let loader = loader.clone();
            executor_passes(async move {
                // The inner driver closes the request's queue when it ends; the outer one
                // then waits for its loads' answers, without spinning, and its next batch
                // gets a task of its own.
                let inner = executor_passes(loader.load_one(1)).await.ok().flatten();
                let outer = loader.load_one(2).await.ok().flatten();
                (inner.is_some(), outer.is_some())
            })
        });
        let ran = tokio::time::timeout(std::time::Duration::from_secs(5), tokio::spawn(request)).await;
        assert_eq!(ran.expect("in time").expect("request"), (true, true));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_with_no_executor_to_run_it_gets_a_task_of_its_own() {
        use async_graphql::dataloader::DataLoader;
        let scope = RequestScope::new("r1".into());
        let request = tokio::spawn(within(scope.clone(), async {
            let loader = DataLoader::new(TaskOfBatch, batch_in_request).delay(BATCH_DELAY);
            // A load outside `executor_passes`: no driver, so a task of its own.
            let ran_in = loader.load_one(1).await.ok().flatten().flatten();
            (tokio::task::id(), ran_in)
        }));
        let (request_task, batch_task) = request.await.expect("request");
        assert!(batch_task.is_some_and(|t| t != request_task), "{batch_task:?} vs {request_task:?}");
    }

    async fn a_panicking_pass_leaves_its_batch_running<S, R>(spawner: S)
    where
        S: Fn(futures_util::future::BoxFuture<'static, ()>) -> R + Send + Sync + 'static,
    {
        use async_graphql::dataloader::DataLoader;
        use futures_util::FutureExt as _;
        let batches = Arc::new(Mutex::new(Vec::new()));
        let loader = Arc::new(DataLoader::new(Batches(batches.clone()), spawner).delay(BATCH_DELAY));
        let in_pass = loader.clone();
        // A pass registers a load, then a resolver panics (the HTTP edge catches it).
        let pass = std::future::poll_fn(move |cx| {
            let mut load = Box::pin(in_pass.load_one(7));
            let _ = load.as_mut().poll(cx);
            panic!("a resolver's bug");
            #[allow(unreachable_code)]
            std::task::Poll::Ready(())
        });
        let caught =
            within(RequestScope::new("r1".into()), std::panic::AssertUnwindSafe(executor_passes(pass)).catch_unwind())
                .await;
        assert!(caught.is_err(), "the pass panicked");
        // Its batch still runs: the request's transaction is never left to a task that waits.
        let started = std::time::Instant::now();
        while batches.lock().expect("batches").is_empty() && started.elapsed() < std::time::Duration::from_secs(5) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(*batches.lock().expect("batches"), vec![vec![7]]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pass_that_panics_does_not_hold_back_its_batches() {
        a_panicking_pass_leaves_its_batch_running(batch_in_request).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pass_that_panics_does_not_hold_back_batches_in_tasks_of_their_own() {
        a_panicking_pass_leaves_its_batch_running(spawn_in_request).await;
    }
}
