//! Command line and environment. Every flag is also an environment variable; each command
//! has its own flags (`coachgraph <command> --help`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://coachgraph.db?mode=rwc";

/// `coachgraph [serve flags]` runs the server; `coachgraph <command> --help` shows each
/// command's own flags (and the logging flags, which every command shares).
#[derive(Debug, Parser)]
#[command(name = "coachgraph", version, about = "GraphQL API for coaching platforms")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The server's flags, when no command is named (`coachgraph` alone is `coachgraph serve`).
    #[command(flatten)]
    pub serve: Config,
    #[command(flatten)]
    pub log: LogArgs,
}

impl Cli {
    /// The command to run: `serve` with the top-level flags when none is named.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(Box::new(self.serve)))
    }

    /// The server configuration this command line asks for (defaults when another command
    /// is named).
    pub fn serve_config(&self) -> Config {
        match &self.command {
            Some(Command::Serve(config)) => (**config).clone(),
            _ => self.serve.clone(),
        }
    }
}

/// Logging, shared by every command.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long = "log", env = "RUST_LOG", default_value = "info,sqlx=warn,sea_orm=warn", global = true)]
    pub filter: String,

    /// `text` (coloured only on a terminal) or `json` (one object per line, for log shippers).
    #[arg(long, env = "COACHGRAPH_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve(Box<Config>),
    /// Apply the database migrations and exit.
    Migrate(DbArgs),
    /// Load the demo tenants and accounts (idempotent: does nothing if present).
    SeedDemo(DbArgs),
    /// Load benchmark data: tenants `scale1`.. (T) with `coachN@tT.scale.test`,
    /// `coacheeN@tT.scale.test`, `adminN@..`, `execN@..` and `ai@..`, every account
    /// with the password `coachgraph-scale`, and every kind of coaching content. Migrates
    /// first (on PostgreSQL through MIGRATION_DATABASE_URL, which it also writes through).
    /// Deterministic ids; does nothing if present.
    SeedScale {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        scale: ScaleArgs,
    },
    /// Write the GraphQL SDL: the full contract to `schema.graphql` and each role's
    /// view to `tests/golden/schema/<role>.graphql`.
    ExportSchema {
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
    /// Verify every audit hash chain (each tenant's and the platform's): prints OK or each
    /// chain's first broken link (tenant, seq, event id) and exits 1. On PostgreSQL it reads
    /// through MIGRATION_DATABASE_URL.
    VerifyAudit(DbArgs),
    /// Remove audit events older than each tenant's retention (default 90 days) and ended
    /// auth sessions, keeping every chain verifiable; audited as PURGE events. On PostgreSQL
    /// it runs through MIGRATION_DATABASE_URL.
    Purge(DbArgs),
    /// Platform administrators (the operator's side of POLICY.md section 11).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Tenants: create one with its first program admin.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a SYSTEM_ADMIN (the first one of an installation, or another) and print its
    /// one-time invitation (valid 7 days; accept it with the `acceptInvitation` mutation).
    /// Migrates first; on PostgreSQL it writes through MIGRATION_DATABASE_URL.
    CreateSystemAdmin {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "System administrator")]
        display_name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and its first PROGRAM_ADMIN, and print the admin's one-time
    /// invitation (valid 7 days). Migrates first; on PostgreSQL it writes through
    /// MIGRATION_DATABASE_URL.
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// 3 to 40 of a-z, 0-9 and '-', starting with a letter (typed at login).
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long)]
        admin_name: String,
    },
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

/// Where the data is.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Database the server uses. `sqlite://...` (default) or `postgres://...`. On PostgreSQL
    /// this must be the application role (`coachgraph_app`), never a superuser or table owner.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// PostgreSQL only: the owner connection used to run migrations (e.g. as `postgres`).
    /// When set, `serve` migrates through it before starting.
    #[arg(long, env = "MIGRATION_DATABASE_URL")]
    pub migration_database_url: Option<String>,
}

/// The server's flags.
#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub db: DbArgs,

    /// PostgreSQL: connections in the server's pool. Every replica opens up to this many:
    /// keep `replicas x pool size` under the server's `max_connections` (SQLite: fixed).
    #[arg(long, env = "COACHGRAPH_DB_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,

    /// Largest request body accepted, in bytes (refused: PAYLOAD_TOO_LARGE, HTTP 413).
    #[arg(long, env = "COACHGRAPH_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,

    /// On SIGTERM or SIGINT the server stops accepting and lets requests in flight finish for
    /// up to this many seconds, then exits.
    #[arg(long, env = "COACHGRAPH_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Origins of browser applications allowed to call the API from another origin, with
    /// their cookies (comma-separated, e.g. `https://dashboard.example.com`). Exact origins
    /// only: a wildcard is refused, since credentials are allowed. Empty: same origin only.
    #[arg(long, env = "COACHGRAPH_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<String>,

    /// Serve `/metrics` (Prometheus) on this address only, instead of on the API's address.
    #[arg(long, env = "COACHGRAPH_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Address to listen on.
    #[arg(long, env = "COACHGRAPH_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    #[arg(long, env = "COACHGRAPH_MODE", value_enum, default_value = "development")]
    pub mode: Mode,

    /// HMAC key for tokens (at least 32 bytes). Required in production. In development a key
    /// is generated and kept beside the SQLite file (mode 0600).
    #[arg(long, env = "COACHGRAPH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Token issuer (`iss`).
    #[arg(long, env = "COACHGRAPH_ISSUER", default_value = "coachgraph")]
    pub issuer: String,

    /// Token audience (`aud`).
    #[arg(long, env = "COACHGRAPH_AUDIENCE", default_value = "coachgraph-api")]
    pub audience: String,

    /// Seed demo data when `serve` starts on a new default SQLite file.
    #[arg(long, env = "COACHGRAPH_AUTO_SEED", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_seed: bool,

    /// Longest GraphQL document accepted, in bytes (refused: DOCUMENT_TOO_LARGE).
    #[arg(long, env = "COACHGRAPH_MAX_DOCUMENT_BYTES", default_value_t = 32 * 1024)]
    pub max_document_bytes: usize,

    /// Most lexical tokens in a GraphQL document (refused: TOO_MANY_TOKENS).
    #[arg(long, env = "COACHGRAPH_MAX_TOKENS", default_value_t = 5_000)]
    pub max_tokens: usize,

    /// Deepest field nesting of an operation (refused: QUERY_TOO_DEEP).
    #[arg(long, env = "COACHGRAPH_MAX_DEPTH", default_value_t = 16)]
    pub max_depth: usize,

    /// Most aliased fields in an operation (refused: TOO_MANY_ALIASES).
    #[arg(long, env = "COACHGRAPH_MAX_ALIASES", default_value_t = 15)]
    pub max_aliases: u64,

    /// Most directives in an operation (refused: TOO_MANY_DIRECTIVES).
    #[arg(long, env = "COACHGRAPH_MAX_DIRECTIVES", default_value_t = 50)]
    pub max_directives: u64,

    /// Largest `first` of a connection (refused: PAGE_TOO_LARGE). It can lower the
    /// built-in maximum of 100, not raise it.
    #[arg(long, env = "COACHGRAPH_MAX_FIRST", default_value_t = 100)]
    pub max_first: u64,

    /// Highest cost of an operation: each field counts 1, times the `first` of every
    /// connection and the declared maximum of every unpaged list above it (refused:
    /// QUERY_TOO_COMPLEX).
    #[arg(long, env = "COACHGRAPH_MAX_COST", default_value_t = 100_000)]
    pub max_cost: u64,

    /// Largest response body, in bytes; a larger one is replaced by a RESPONSE_TOO_LARGE error.
    #[arg(long, env = "COACHGRAPH_MAX_RESPONSE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_response_bytes: usize,

    /// Longest a GraphQL request may run, in milliseconds, before it is rolled back and
    /// answered REQUEST_TIMEOUT (HTTP 503).
    #[arg(long, env = "COACHGRAPH_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,

    /// PostgreSQL `statement_timeout` of the server's connections, in milliseconds (0: none).
    #[arg(long, env = "COACHGRAPH_STATEMENT_TIMEOUT_MS", default_value_t = 5_000)]
    pub statement_timeout_ms: u64,

    /// Answer introspection (`__schema`, `__type`). Default: on in development, off in production.
    #[arg(long, env = "COACHGRAPH_INTROSPECTION", action = clap::ArgAction::Set)]
    pub introspection: Option<bool>,

    /// Serve the playground page at `/`. Default: on in development, off in production.
    #[arg(long, env = "COACHGRAPH_PLAYGROUND", action = clap::ArgAction::Set)]
    pub playground: Option<bool>,

    /// Documents kept for automatic persisted queries (0: APQ off).
    #[arg(long, env = "COACHGRAPH_APQ_CAPACITY", default_value_t = 1_000)]
    pub apq_capacity: usize,

    /// Safelist mode: a folder of `.graphql` files; only operations whose SHA-256 is that of
    /// one of them run (refused: OPERATION_NOT_SAFELISTED). APQ registration is then off.
    #[arg(long, env = "COACHGRAPH_SAFELIST_DIR")]
    pub safelist_dir: Option<PathBuf>,

    /// Reverse proxies whose `X-Forwarded-For` names the client (comma-separated addresses
    /// or networks, e.g. `127.0.0.1,10.0.0.0/8`). From any other peer the header is
    /// ignored: the audit trail and the per-source limits use the peer's address.
    #[arg(long, env = "COACHGRAPH_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Parses one trusted proxy: an address or a network (`10.0.0.0/8`).
pub fn parse_proxy(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is neither an IP address nor a network (e.g. 10.0.0.0/8)"))
}

/// Parses one CORS origin: `scheme://host[:port]`, nothing else (no path, no wildcard).
pub fn parse_origin(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('/');
    let (scheme, rest) = s.split_once("://").ok_or_else(|| format!("{s:?} is not an origin (https://host[:port])"))?;
    let well_formed = matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !well_formed {
        return Err(format!(
            "{s:?} is not an origin: use scheme://host[:port] exactly (no path, no wildcard: credentials are allowed)"
        ));
    }
    Ok(s.to_ascii_lowercase())
}

impl Config {
    /// Introspection, as configured or by mode.
    pub fn introspection_enabled(&self) -> bool {
        self.introspection.unwrap_or(self.mode == Mode::Development)
    }

    /// The playground, as configured or by mode.
    pub fn playground_enabled(&self) -> bool {
        self.playground.unwrap_or(self.mode == Mode::Development)
    }
}

impl DbArgs {
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
