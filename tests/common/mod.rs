//! Shared test harness: a fresh database per test (in-memory SQLite, or a new PostgreSQL
//! database migrated as the owner and served as `coachgraph_app`), demo data, a clock the
//! test moves, and helpers that send real HTTP requests through the router.
#![allow(dead_code)]

pub mod process;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, TimeZone, Utc};
use coachgraph::app::AppState;
use coachgraph::clock::ManualClock;
use coachgraph::db::Db;
use http_body_util::BodyExt;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

pub const DEMO_PASSWORD: &str = coachgraph::seed::DEMO_PASSWORD;
pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret!!";
pub const ISSUER: &str = "coachgraph";
pub const AUDIENCE: &str = "coachgraph-api";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `COACHGRAPH_REQUIRE_POSTGRES=1` (set by `.ci/run`) turns "PostgreSQL unreachable" from a
/// skip into a failure.
pub fn postgres_required() -> bool {
    std::env::var("COACHGRAPH_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
}

/// Owner (superuser) connection to the server, for creating test databases.
pub fn pg_admin_base() -> String {
    std::env::var("COACHGRAPH_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

fn pg_url_as(user: &str, db: &str) -> String {
    let base = pg_admin_base();
    let rest = base.split_once("://").map(|(_, r)| r).unwrap_or(&base);
    let host = rest.split_once('@').map(|(_, h)| h).unwrap_or(rest);
    format!("postgres://{user}@{host}/{db}")
}

/// A PostgreSQL database that is dropped when the test ends.
pub struct PgDatabase {
    pub name: String,
}

impl PgDatabase {
    pub fn owner_url(&self) -> String {
        pg_url_as("postgres", &self.name)
    }
    pub fn app_url(&self) -> String {
        pg_url_as(migrations::APP_ROLE, &self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop from a thread of its own: this may run inside a runtime that is shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let admin = Database::connect(pg_url_as("postgres", "postgres")).await.ok()?;
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.ok()
            })
        })
        .join();
    }
}

/// Creates an empty database, or `None` (skip) when PostgreSQL is unreachable and not required.
pub async fn create_pg_database() -> Option<PgDatabase> {
    let admin = match Database::connect(pg_url_as("postgres", "postgres")).await {
        Ok(c) => c,
        Err(e) => {
            if postgres_required() {
                panic!("PostgreSQL is required (COACHGRAPH_REQUIRE_POSTGRES=1) but unreachable: {e}");
            }
            eprintln!("SKIPPED: PostgreSQL test (server unreachable at {}: {e})", pg_admin_base());
            return None;
        }
    };
    let name = format!("cg_test_{}", Uuid::new_v4().simple());
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create database");
    Some(PgDatabase { name })
}

pub async fn migrate(conn: &DatabaseConnection) {
    Migrator::up(conn, None).await.expect("migrations");
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().expect("date")
}

/// A running coachgraph (router in process) over its own database with demo data.
pub struct TestApp {
    pub backend: Backend,
    pub state: AppState,
    pub clock: ManualClock,
    /// Owner connection (PostgreSQL: superuser) for inspecting and tampering, never the app's.
    pub owner: DatabaseConnection,
    pub pg: Option<PgDatabase>,
    /// Statements the application's pool has run (not the owner's).
    pub statements: Arc<std::sync::atomic::AtomicU64>,
    /// While `Some`, every statement the application's pool runs, with its values.
    pub statement_log: Arc<std::sync::Mutex<Option<Vec<sea_orm::Statement>>>>,
}

impl TestApp {
    /// A migrated database with the demo data; `None` when PostgreSQL is skipped.
    pub async fn start(backend: Backend) -> Option<TestApp> {
        let clock = ManualClock::new(t0());
        let (app_db, owner, pg) = match backend {
            Backend::Sqlite => {
                let db = Db::connect("sqlite::memory:").await.expect("sqlite");
                migrate(db_conn(&db)).await;
                // In-memory SQLite is one connection: the owner view is the same database.
                let owner = db_conn(&db).clone();
                (db, owner, None)
            }
            Backend::Postgres => {
                let pg = create_pg_database().await?;
                let owner = Database::connect(pg.owner_url()).await.expect("owner connection");
                migrate(&owner).await;
                let db = Db::connect(&pg.app_url()).await.expect("app connection");
                db.check_runtime_role().await.expect("app role is neither superuser nor owner");
                (db, owner, Some(pg))
            }
        };
        let seed_db = match &pg {
            Some(pg) => Db::connect(&pg.owner_url()).await.expect("owner db"),
            None => app_db.clone(),
        };
        coachgraph::seed::seed_demo(&seed_db, t0()).await.expect("seed");
        let statements = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut app_db = app_db;
        let counter = statements.clone();
        let statement_log = Arc::new(std::sync::Mutex::new(None::<Vec<sea_orm::Statement>>));
        let log = statement_log.clone();
        app_db.on_statement(move |statement| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Some(log) = log.lock().expect("statement log").as_mut() {
                log.push(statement.clone());
            }
        });
        let state = AppState::new(app_db, SECRET, ISSUER, AUDIENCE, Arc::new(clock.clone())).expect("state");
        Some(TestApp { backend, state, clock, owner, pg, statements, statement_log })
    }

    pub fn router(&self) -> axum::Router {
        coachgraph::http::router(self.state.clone())
    }

    /// Sends a raw request; returns status, headers and JSON body.
    pub async fn send(&self, request: Request<Body>) -> Response {
        let res = self.router().oneshot(request).await.expect("router");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        Response { status, headers, body }
    }

    pub async fn post(&self, auth: &Auth, query: &str, variables: Value) -> Response {
        // The AI principal must declare model and purpose; the headers mean nothing to others.
        // A current GraphQL-over-HTTP client: a refused operation is an HTTP 400.
        let mut req = Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, GRAPHQL_RESPONSE)
            .header("x-ai-model", "test-model")
            .header("x-ai-purpose", "test-purpose");
        match auth {
            Auth::None => {}
            Auth::Bearer(t) => req = req.header(header::AUTHORIZATION, format!("Bearer {t}")),
            Auth::Cookie { token, csrf } => {
                req = req.header(header::COOKIE, format!("{}={token}", coachgraph::http::SESSION_COOKIE));
                if let Some(csrf) = csrf {
                    req = req.header(coachgraph::http::CSRF_HEADER, csrf);
                }
            }
        }
        let body = json!({ "query": query, "variables": variables }).to_string();
        self.send(req.body(Body::from(body)).expect("request")).await
    }

    /// A GraphQL call with a bearer token; returns the JSON body.
    pub async fn gql(&self, token: &str, query: &str) -> Value {
        self.post(&Auth::Bearer(token.to_owned()), query, json!({})).await.body
    }

    pub async fn gql_vars(&self, token: &str, query: &str, variables: Value) -> Value {
        self.post(&Auth::Bearer(token.to_owned()), query, variables).await.body
    }

    /// Logs in through the API (the real PBKDF2 check).
    pub async fn login_full(&self, email: &str, password: &str) -> Response {
        let q = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token csrfToken expiresAt viewer { id role tenantId displayName } } }";
        self.post(&Auth::None, q, json!({ "e": email, "p": password })).await
    }

    /// Logs in through the API with the demo password (the real PBKDF2 check, the LOGIN audit
    /// event, the cookies). Tests that are not about identity use `session_for`.
    pub async fn login(&self, email: &str) -> Session {
        let res = self.login_full(email, DEMO_PASSWORD).await;
        let login = &res.body["data"]["login"];
        assert!(login.is_object(), "login of {email} failed: {}", res.body);
        Session {
            token: login["token"].as_str().expect("token").to_owned(),
            csrf: login["csrfToken"].as_str().expect("csrf").to_owned(),
            user_id: login["viewer"]["id"].as_str().expect("id").to_owned(),
            set_cookies: res
                .headers
                .get_all(header::SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap_or("").to_owned())
                .collect(),
        }
    }

    /// A session for `email` opened the way a successful login opens one (the same
    /// `identity::login::start_session`: the `auth_sessions` row, its CSRF token, the signed
    /// token), without the password check: only the identity tests pay for 600,000 PBKDF2
    /// rounds a login. Unlike `login` it writes no LOGIN audit event, leaves `last_login_at`
    /// and the failed-login count alone and sets no cookie (`set_cookies` is empty): tests
    /// about those log in for real.
    pub async fn session_for(&self, email: &str) -> Session {
        use coachgraph::db::entities::users;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let now = self.state.clock.now();
        let found = users::Entity::find()
            .filter(users::Column::Email.eq(coachgraph::identity::login::normalize_email(email)))
            .all(&self.owner)
            .await
            .expect("users with this email");
        let [user] = found.as_slice() else { panic!("session_for({email}): {} accounts, not one", found.len()) };
        // Only where a login with the right password would succeed.
        assert_eq!(user.status, coachgraph::domain::kinds::UserStatus::Active, "session_for({email}): not active");
        assert!(user.locked_until.is_none_or(|until| until <= now), "session_for({email}): account locked");
        let scope =
            coachgraph::db::DbScope { tenant_id: user.tenant_id, principal_id: Some(user.id), role: Some(user.role) };
        let tx = self.state.db.begin(scope);
        let outcome = coachgraph::identity::login::start_session(&tx, &self.state.keys, user, now)
            .await
            .unwrap_or_else(|e| panic!("session_for({email}): {e:?}"));
        tx.commit().await.expect("commit");
        Session {
            token: outcome.token,
            csrf: outcome.csrf_token,
            user_id: user.id.to_string(),
            set_cookies: Vec::new(),
        }
    }

    /// The uuid in the first column of the first row of `sql` (owner connection).
    pub async fn uuid_of(&self, sql: &str) -> String {
        let row = self
            .owner
            .query_one_raw(sea_orm::Statement::from_string(self.owner.get_database_backend(), sql.to_owned()))
            .await
            .expect("query")
            .unwrap_or_else(|| panic!("no row: {sql}"));
        row.try_get_by_index::<uuid::Uuid>(0).map(|u| u.to_string()).expect("uuid")
    }

    pub async fn user_id(&self, email: &str) -> String {
        self.uuid_of(&format!("SELECT id FROM users WHERE email = '{email}'")).await
    }

    /// The earliest completed session of the coachee with this email.
    pub async fn completed_session_of(&self, email: &str) -> String {
        self.uuid_of(&format!(
            "SELECT s.id FROM coaching_sessions s JOIN users u ON u.id = s.coachee_id \
             WHERE u.email = '{email}' AND s.status = 'COMPLETED' ORDER BY s.scheduled_at LIMIT 1"
        ))
        .await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let row = self
            .owner
            .query_one_raw(sea_orm::Statement::from_string(self.owner.get_database_backend(), sql.to_owned()))
            .await
            .expect("query")
            .expect("row");
        row.try_get_by_index::<i64>(0).expect("count")
    }
}

/// A second server process over the same database (PostgreSQL): its own pool, its own
/// schemas, the same signing key and clock, as a second replica behind a load balancer
/// would have. `None` on SQLite (an in-memory database lives in one pool).
impl TestApp {
    pub async fn second_process(&self) -> Option<AppState> {
        let pg = self.pg.as_ref()?;
        let db = Db::connect(&pg.app_url()).await.expect("second pool");
        db.check_runtime_role().await.expect("app role");
        Some(AppState::new(db, SECRET, ISSUER, AUDIENCE, Arc::new(self.clock.clone())).expect("second state"))
    }
}

/// Sends `request` to the process serving `state`; returns status, headers and JSON body.
pub async fn send_to(state: &AppState, request: Request<Body>) -> Response {
    let res = coachgraph::http::router(state.clone()).oneshot(request).await.expect("router");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    Response { status, headers, body }
}

/// The GraphQL-over-HTTP response media type: the helpers accept it (a refused operation is
/// an HTTP 400 in it, a 200 in `application/json`; see `http_conformance`).
pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// A bearer-authenticated GraphQL POST (with the AI headers, like `TestApp::post`).
pub fn gql_request(token: &str, query: &str, variables: Value) -> Request<Body> {
    Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, GRAPHQL_RESPONSE)
        .header("x-ai-model", "test-model")
        .header("x-ai-purpose", "test-purpose")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(json!({ "query": query, "variables": variables }).to_string()))
        .expect("request")
}

fn db_conn(db: &Db) -> &DatabaseConnection {
    coachgraph::db::testing::connection(db)
}

pub enum Auth {
    None,
    Bearer(String),
    Cookie { token: String, csrf: Option<String> },
}

#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Response {
    pub fn error_code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub csrf: String,
    pub user_id: String,
    pub set_cookies: Vec<String>,
}

/// One demo account per role (acme, and the platform's system admin): (email, role).
pub const ROLE_ACCOUNTS: [(&str, &str); 6] = [
    ("coachee1@acme.test", "COACHEE"),
    ("coach1@acme.test", "COACH"),
    ("admin1@acme.test", "PROGRAM_ADMIN"),
    ("exec1@acme.test", "EXECUTIVE"),
    ("ai@acme.test", "AI_AGENT"),
    ("root@coachgraph.test", "SYSTEM_ADMIN"),
];

pub fn email(name: &str, tenant: &str) -> String {
    format!("{name}@{tenant}.test")
}

/// Runs an async test body against SQLite and PostgreSQL: `fn <name>_sqlite` and
/// `fn <name>_postgres`. The PostgreSQL variant skips (loudly) unless required.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::common::TestApp::start($crate::common::Backend::Sqlite).await.expect("sqlite app");
                $body(&app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::common::TestApp::start($crate::common::Backend::Postgres).await {
                    $body(&app).await;
                }
            }
        }
    };
}
