//! Command line and environment. Every flag is also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://coachgraph.db?mode=rwc";

#[derive(Debug, Parser)]
#[command(name = "coachgraph", version, about = "GraphQL API for coaching platforms")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Load the demo tenants and accounts (idempotent: does nothing if present).
    SeedDemo,
    /// Load benchmark data: tenants `scale1`.. (T) with `coachN@tT.scale.test`,
    /// `coacheeN@tT.scale.test`, `adminN@..`, `execN@..` and `ai@..`, every account
    /// with the password `coachgraph-scale`, and every kind of coaching content. Migrates
    /// first (on PostgreSQL through MIGRATION_DATABASE_URL, which it also writes through).
    /// Deterministic ids; does nothing if present.
    SeedScale(ScaleArgs),
    /// Write the GraphQL SDL: the full contract to `schema.graphql` and each role's
    /// view to `tests/golden/schema/<role>.graphql`.
    ExportSchema {
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
    /// Verify every audit hash chain (each tenant's and the platform's): prints OK or each
    /// chain's first broken link (tenant, seq, event id) and exits 1. On PostgreSQL it reads
    /// through MIGRATION_DATABASE_URL.
    VerifyAudit,
    /// Remove audit events older than each tenant's retention (default 90 days) and ended
    /// auth sessions, keeping every chain verifiable; audited as PURGE events. On PostgreSQL
    /// it runs through MIGRATION_DATABASE_URL.
    Purge,
}

/// The size of `seed-scale`'s data (the defaults: 10,000 coachees, 200,000 sessions).
#[derive(Debug, Clone, Copy, Args)]
pub struct ScaleArgs {
    /// Tenants (`scale1`, `scale2`, ...), each of the size below.
    #[arg(long, default_value_t = 1)]
    pub tenants: usize,
    /// Coaches per tenant.
    #[arg(long, default_value_t = 400)]
    pub coaches: usize,
    /// Coachees assigned to each coach.
    #[arg(long, default_value_t = 25)]
    pub coachees_per_coach: usize,
    /// Sessions per coachee, spread over about twelve months (the last one ahead).
    #[arg(long, default_value_t = 20)]
    pub sessions_per_coachee: usize,
    /// Program admins per tenant.
    #[arg(long, default_value_t = 8)]
    pub admins: usize,
    /// Executives per tenant.
    #[arg(long, default_value_t = 8)]
    pub executives: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Keeps a generated signing key beside the SQLite file; demo data allowed.
    Development,
    /// Requires an explicit signing key; refuses to run with demo data present.
    Production,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Database the server uses. `sqlite://...` (default) or `postgres://...`. On PostgreSQL
    /// this must be the application role (`coachgraph_app`), never a superuser or table owner.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,

    /// PostgreSQL only: the owner connection used to run migrations (e.g. as `postgres`).
    /// When set, `serve` migrates through it before starting.
    #[arg(long, env = "MIGRATION_DATABASE_URL", global = true)]
    pub migration_database_url: Option<String>,

    /// Address to listen on.
    #[arg(long, env = "COACHGRAPH_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: SocketAddr,

    #[arg(long, env = "COACHGRAPH_MODE", value_enum, default_value = "development", global = true)]
    pub mode: Mode,

    /// HMAC key for tokens (at least 32 bytes). Required in production. In development a key
    /// is generated and kept beside the SQLite file (mode 0600).
    #[arg(long, env = "COACHGRAPH_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,

    /// Token issuer (`iss`).
    #[arg(long, env = "COACHGRAPH_ISSUER", default_value = "coachgraph", global = true)]
    pub issuer: String,

    /// Token audience (`aud`).
    #[arg(long, env = "COACHGRAPH_AUDIENCE", default_value = "coachgraph-api", global = true)]
    pub audience: String,

    /// Seed demo data when `serve` starts on a new default SQLite file.
    #[arg(long, env = "COACHGRAPH_AUTO_SEED", default_value_t = true, global = true, action = clap::ArgAction::Set)]
    pub auto_seed: bool,

    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info,sqlx=warn,sea_orm=warn", global = true)]
    pub log: String,
}

impl Config {
    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://") || self.database_url.starts_with("postgresql://")
    }

    /// The SQLite file behind the URL, if it is a file-backed SQLite database.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.database_url.strip_prefix("sqlite://").or_else(|| self.database_url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        if path.is_empty() || path == ":memory:" {
            return None;
        }
        Some(PathBuf::from(path))
    }
}
