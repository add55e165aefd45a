//! Application state and start-up: configuration in, a router out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;

use crate::clock::SharedClock;
use crate::config::{Config, Mode};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::graphql::perimeter::Limits;
use crate::graphql::persisted::PersistedOperations;
use crate::graphql::{self, SchemaOptions, Schemas};
use crate::identity::token::TokenKeys;

#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub keys: Arc<TokenKeys>,
    pub clock: SharedClock,
    pub schemas: Arc<Schemas>,
    pub settings: Arc<HttpSettings>,
    /// The AI principal's rate-limit buckets, one per tenant: shared by every server on a
    /// PostgreSQL database, this server's own on SQLite.
    pub ai_limiter: Arc<crate::domain::rate_limit::Buckets>,
    /// Credential work: the bounded hashing pool and the per-source limits.
    pub credentials: Arc<crate::identity::credential::CredentialGuard>,
    /// Automatic persisted queries' cache, or the safelist.
    pub persisted: Arc<PersistedOperations>,
    /// This server's Prometheus metrics.
    pub metrics: Arc<crate::telemetry::metrics::Metrics>,
    /// Documents parsed before, by their text.
    pub documents: Arc<crate::graphql::parsed::ParsedDocuments>,
}

/// HTTP behaviour that differs by deployment.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Rows of coaching data one AI_AGENT request may read in all (POLICY.md section 5).
    pub ai_rows_per_request: u64,
    /// What a GraphQL document may ask for (checked before any SQL).
    pub limits: Limits,
    /// Largest response body, in bytes.
    pub max_response_bytes: usize,
    /// Longest a GraphQL request may run.
    pub request_timeout: Duration,
    /// Serve the playground page.
    pub playground: bool,
    /// Documents kept for automatic persisted queries (0: off).
    pub apq_capacity: usize,
    /// Safelist mode: only the operations of this folder's `.graphql` files run.
    pub safelist_dir: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Other origins whose browser applications may call the API with credentials.
    pub cors_origins: Vec<String>,
    /// Serve `/metrics` on the API's router (unless it has a listener of its own).
    pub metrics_on_api: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            ai_rows_per_request: crate::domain::rate_limit::AI_ROWS_PER_REQUEST,
            limits: Limits::default(),
            max_response_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            playground: true,
            apq_capacity: 1_000,
            safelist_dir: None,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            metrics_on_api: true,
        }
    }
}

impl HttpSettings {
    /// The settings the configuration asks for (production mode: introspection and the
    /// playground off unless turned on).
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_body_bytes: config.max_body_bytes,
            cors_origins: config.cors_origins.clone(),
            // Production: only on its own listener (like introspection, off unless asked for).
            metrics_on_api: config.metrics_bind.is_none() && config.mode == Mode::Development,
            limits: Limits {
                max_document_bytes: config.max_document_bytes,
                max_tokens: config.max_tokens,
                max_depth: config.max_depth,
                max_aliases: config.max_aliases,
                max_directives: config.max_directives,
                max_first: config.max_first.min(crate::graphql::paging::MAX_PAGE),
                max_cost: config.max_cost,
                introspection: config.introspection_enabled(),
            },
            max_response_bytes: config.max_response_bytes,
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            playground: config.playground_enabled(),
            apq_capacity: config.apq_capacity,
            safelist_dir: config.safelist_dir.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            ..Self::default()
        }
    }
}

impl AppState {
    /// What turning a request into a `Ctx` needs of this server.
    pub fn server(&self) -> crate::identity::Server<'_> {
        crate::identity::Server { db: &self.db, keys: &self.keys, clock: &self.clock }
    }

    pub fn new(db: Db, secret: &[u8], issuer: &str, audience: &str, clock: SharedClock) -> AppResult<Self> {
        let schemas = Schemas::build(&graphql::catalog()).map_err(AppError::internal)?;
        let ai_limiter = crate::domain::rate_limit::Buckets::for_db(&db, crate::domain::rate_limit::AI_SCOPE);
        let credentials = crate::identity::credential::CredentialGuard::default().on(&db);
        Ok(Self {
            db,
            keys: Arc::new(TokenKeys::new(secret, issuer, audience)?),
            clock,
            schemas: Arc::new(schemas),
            settings: Arc::new(HttpSettings::default()),
            ai_limiter: Arc::new(ai_limiter),
            credentials: Arc::new(credentials),
            persisted: Arc::new(PersistedOperations::default()),
            metrics: Arc::new(crate::telemetry::metrics::Metrics::new()),
            documents: Arc::default(),
        })
    }

    /// The same server with other settings: the schemas are rebuilt (introspection and
    /// depth are theirs to enforce) and the persisted operations start afresh.
    pub fn with_settings(mut self, settings: HttpSettings) -> AppResult<Self> {
        let options =
            SchemaOptions { introspection: settings.limits.introspection, max_depth: settings.limits.max_depth };
        self.schemas = Arc::new(Schemas::build_with(&graphql::catalog(), options).map_err(AppError::internal)?);
        self.persisted = Arc::new(match &settings.safelist_dir {
            Some(dir) => {
                let list = PersistedOperations::safelist(dir)
                    .map_err(|e| AppError::Internal(format!("safelist {}: {e}", dir.display())))?;
                tracing::info!(dir = %dir.display(), operations = list.safelisted(), "safelist mode");
                list
            }
            None => PersistedOperations::apq(settings.apq_capacity),
        });
        self.settings = Arc::new(settings);
        Ok(self)
    }
}

/// The signing key, and says at start-up which one it is (never the key itself):
/// - `COACHGRAPH_JWT_SECRET` when set (required in production);
/// - else, on PostgreSQL, a development key generated once and kept in the database
///   (`app_development_key`), so every replica on it signs and verifies alike;
/// - else (SQLite) a development key generated once and kept beside the database file (or
///   in the working directory), readable by the owner only: replicas must share that file.
///
/// Cursors are sealed with a key derived from this one, so they follow it.
pub async fn signing_key(config: &Config, db: &Db) -> AppResult<Vec<u8>> {
    if let Some(secret) = &config.jwt_secret {
        if secret.len() < crate::identity::token::MIN_SECRET_LEN {
            return Err(AppError::Internal(format!(
                "COACHGRAPH_JWT_SECRET is {} bytes; it must be at least {} bytes of random data \
                 (e.g. the output of `openssl rand -hex 32`)",
                secret.len(),
                crate::identity::token::MIN_SECRET_LEN
            )));
        }
        tracing::info!("signing key: COACHGRAPH_JWT_SECRET (explicit)");
        return Ok(secret.as_bytes().to_vec());
    }
    if config.mode == Mode::Production {
        return Err(AppError::Internal(
            "production mode requires COACHGRAPH_JWT_SECRET: set it to at least 32 bytes of random data \
             (e.g. `openssl rand -hex 32`), the same on every replica"
                .into(),
        ));
    }
    if db.shares_state() {
        let key = db.development_key(&random_key()).await?;
        tracing::info!("signing key: development key kept in the database (shared by every replica on it)");
        return Ok(key);
    }
    let path =
        config.db.sqlite_path().map(|p| p.with_extension("key")).unwrap_or_else(|| PathBuf::from("coachgraph.key"));
    let key = load_or_create_key(&path)?;
    tracing::info!(
        "signing key: development key in {} (replicas must run on this file or set COACHGRAPH_JWT_SECRET)",
        path.display()
    );
    Ok(key)
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    key
}

fn load_or_create_key(path: &Path) -> AppResult<Vec<u8>> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return hex::decode(existing.trim())
            .map_err(|_| AppError::Internal(format!("{} is not a hex key", path.display())));
    }
    let key = random_key();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file =
        options.open(path).map_err(|e| AppError::Internal(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(hex::encode(key).as_bytes()).map_err(AppError::internal)?;
    tracing::info!(path = %path.display(), "generated a development signing key");
    Ok(key.to_vec())
}
