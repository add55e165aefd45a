//! The `coachgraph` commands.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use migrations::{Migrator, MigratorTrait};
use tracing_subscriber::EnvFilter;

use crate::app::{self, AppState};
use crate::clock::{Clock, SystemClock};
use crate::config::{
    AdminCommand, Cli, Command, Config, DEFAULT_DATABASE_URL, DbArgs, LogArgs, LogFormat, Mode, ScaleArgs,
    TenantCommand,
};
use crate::db::Db;
use crate::error::AppError;
use crate::graphql::{self, Audience};
use crate::kinds::Role;
use crate::ops::audit as audit_tools;
use crate::seed;

/// Logs to stdout: text (coloured only on a terminal, so log files get no escape codes) or
/// one JSON object per line.
pub fn init_tracing(log: &LogArgs) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_new(&log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = match log.log_format {
        LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
    };
}

/// An application error on the command-line path: its detail is the operator's to read
/// (the client boundary, which masks it, is not involved here).
fn startup(e: AppError) -> anyhow::Error {
    match e {
        AppError::Internal(detail) => anyhow!(detail),
        other => anyhow!(other.to_string()),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.into_command() {
        Command::Serve(config) => serve(*config).await,
        Command::Migrate(db) => migrate(&db).await,
        Command::SeedDemo(db) => {
            migrate(&db).await?;
            let conn = connect(db.migration_database_url.as_deref().unwrap_or(&db.database_url), None, None).await?;
            let written = seed::seed_demo(&conn, SystemClock.now()).await.map_err(startup)?;
            println!("{}", if written { "demo data loaded" } else { "demo data already present" });
            Ok(())
        }
        Command::SeedScale { db, scale } => seed_scale(&db, scale).await,
        Command::ExportSchema { out_dir } => export_schema(&out_dir),
        Command::VerifyAudit(db) => verify_audit(&db).await,
        Command::Purge(db) => purge(&db).await,
        Command::Admin { command: AdminCommand::CreateSystemAdmin { db, email, display_name } } => {
            let conn = operator_connection(&db).await?;
            let tx = conn.begin(operator_scope());
            let now = SystemClock.now();
            let invitation = crate::domain::onboarding::create_system_admin(&tx, &email, &display_name, now)
                .await
                .map_err(startup)?;
            let record = operator_record("CREATE_SYSTEM_ADMIN", "users", None)
                .reason(format!("SYSTEM_ADMIN {} invited from the command line", invitation.user_id));
            crate::domain::audit::write(&tx, vec![record], now).await.map_err(startup)?;
            tx.commit().await.map_err(startup)?;
            print_invitation(&invitation);
            Ok(())
        }
        Command::Tenant { command: TenantCommand::Create { db, slug, name, admin_email, admin_name } } => {
            let conn = operator_connection(&db).await?;
            let tx = conn.begin(operator_scope());
            let now = SystemClock.now();
            let new = crate::domain::onboarding::NewTenant { slug, name, admin_email, admin_display_name: admin_name };
            let provisioned = crate::domain::onboarding::provision_tenant(&tx, new, now).await.map_err(startup)?;
            let record = operator_record("CREATE_TENANT", "tenants", None).reason(format!(
                "tenant {} ({}) created from the command line; its first PROGRAM_ADMIN {} invited",
                provisioned.tenant_id, provisioned.slug, provisioned.invitation.user_id
            ));
            crate::domain::audit::write(&tx, vec![record], now).await.map_err(startup)?;
            tx.commit().await.map_err(startup)?;
            println!("tenant {} created (id {})", provisioned.slug, provisioned.tenant_id);
            print_invitation(&provisioned.invitation);
            Ok(())
        }
    }
}

/// The operator's connection for provisioning: migrated first, and on PostgreSQL the owner
/// connection (MIGRATION_DATABASE_URL), as for `seed-demo`.
async fn operator_connection(db: &DbArgs) -> anyhow::Result<Db> {
    migrate(db).await?;
    connect(db.migration_database_url.as_deref().unwrap_or(&db.database_url), None, None).await
}

/// The operator acts as the platform (SYSTEM_ADMIN without an account).
fn operator_scope() -> crate::db::DbScope {
    crate::db::DbScope { tenant_id: None, principal_id: None, role: Some(Role::SystemAdmin) }
}

/// A platform audit event by the operator's command line (no actor account).
fn operator_record(action: &str, resource: &str, tenant: Option<uuid::Uuid>) -> crate::ctx::AuditRecord {
    crate::ctx::AuditRecord {
        tenant_id: tenant,
        actor_id: None,
        actor_role: None,
        action: action.to_owned(),
        resource: resource.to_owned(),
        outcome: crate::kinds::AuditOutcome::Allowed,
        reason: None,
        ip_address: None,
        grant_id: None,
        code: None,
    }
}

fn print_invitation(invitation: &crate::domain::onboarding::IssuedInvitation) {
    println!("invitation for {} (user {})", invitation.email, invitation.user_id);
    println!("  token:   {}", invitation.token);
    println!("  expires: {}", invitation.expires_at.to_rfc3339());
    println!(
        "  accept:  mutation {{ acceptInvitation(token: \"<token>\", password: \"<12 to 128 characters>\") {{ token }} }}"
    );
    println!("This token is shown once; only its hash is stored.");
}

/// A database URL fit for a log line: its password replaced.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}{}{}", &url[..scheme + 3], if userinfo.contains(':') { ":***" } else { "" }, &url[at..])
        }
        _ => url.to_owned(),
    }
}

async fn connect(url: &str, statement_timeout: Option<std::time::Duration>, pool: Option<u32>) -> anyhow::Result<Db> {
    Db::connect_with(url, statement_timeout, pool).await.map_err(startup).with_context(|| {
        format!("cannot connect to the database at {}: check DATABASE_URL and that the server is up", redacted(url))
    })
}

/// Migrations run through the owner connection (PostgreSQL) or the database itself (SQLite).
pub async fn migrate(db: &DbArgs) -> anyhow::Result<()> {
    let url = db.migration_database_url.as_deref().unwrap_or(&db.database_url);
    let conn = connect(url, None, None).await?;
    Migrator::up(conn.raw(), None)
        .await
        .with_context(|| format!("migrating {} failed (it needs the owner role on PostgreSQL)", redacted(url)))?;
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let fresh_default_sqlite =
        config.db.database_url == DEFAULT_DATABASE_URL && config.db.sqlite_path().is_some_and(|p| !p.exists());
    if config.cors_origins.is_empty() {
        tracing::debug!("CORS: same origin only");
    }
    if !config.db.is_postgres() || config.db.migration_database_url.is_some() {
        migrate(&config.db).await?;
    }
    let statement_timeout = std::time::Duration::from_millis(config.statement_timeout_ms);
    let db = connect(&config.db.database_url, Some(statement_timeout), Some(config.pool_size)).await?;
    db.check_runtime_role().await.map_err(startup)?;
    if fresh_default_sqlite && config.auto_seed && config.mode == Mode::Development {
        tracing::info!("new database: loading demo data (password {:?})", seed::DEMO_PASSWORD);
        seed::seed_demo(&db, SystemClock.now()).await.map_err(startup)?;
    }
    if config.mode == Mode::Production && seed::demo_present(&db).await.map_err(startup)? {
        bail!(
            "production mode refuses to start on a database with the demo data (its accounts share a published \
             password). Use a new database for production, or run with COACHGRAPH_MODE=development to try the demo"
        );
    }
    let key = app::signing_key(&config, &db).await.map_err(startup)?;
    let state = AppState::new(db, &key, &config.issuer, &config.audience, Arc::new(SystemClock))
        .map_err(startup)?
        .with_settings(app::HttpSettings::from_config(&config))
        .map_err(startup)?;
    crate::identity::password::warm_up();
    let listener = tokio::net::TcpListener::bind(config.bind).await.map_err(|e| {
        let fix = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "another process listens there: stop it, or set COACHGRAPH_BIND to a free address"
            }
            std::io::ErrorKind::PermissionDenied => {
                "ports below 1024 need privileges: use a higher port behind a reverse proxy"
            }
            _ => "set COACHGRAPH_BIND to an address of this machine",
        };
        anyhow!("cannot listen on {}: {e}; {fix}", config.bind)
    })?;
    let metrics_listener = match config.metrics_bind {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for /metrics (COACHGRAPH_METRICS_BIND)"))?,
        ),
        None => None,
    };
    if config.mode == Mode::Production && metrics_listener.is_none() {
        tracing::warn!(
            "/metrics is off: in production it is served only on COACHGRAPH_METRICS_BIND (a private address)"
        );
    }
    let router = crate::http::router(state.clone());
    tracing::info!(
        mode = ?config.mode,
        database = %redacted(&config.db.database_url),
        "coachgraph {} listening on http://{} (API at /graphql{}{})",
        env!("CARGO_PKG_VERSION"),
        config.bind,
        if state.settings.playground { ", playground at /" } else { "" },
        if state.settings.metrics_on_api { ", metrics at /metrics" } else { "" },
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics_server = metrics_listener.map(|listener| {
        tracing::info!(
            "metrics at http://{}/metrics",
            listener.local_addr().map(|a| a.to_string()).unwrap_or_default()
        );
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let router = crate::http::metrics_router(state);
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        })
    });
    let grace = std::time::Duration::from_secs(config.shutdown_grace_secs);
    let mut stopping = stop_rx.clone();
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async move {
            let signal = shutdown_signal().await;
            tracing::info!(
                signal,
                grace_secs = grace.as_secs(),
                "shutting down: no new connections; draining requests in flight"
            );
            let _ = stop_tx.send(true);
        });
    let drained = async {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::select! {
            () = tokio::time::sleep(grace) => {}
            // A second signal (Ctrl-C twice) does not wait for the grace period.
            signal = shutdown_signal() => tracing::warn!(signal, "second signal: stopping without waiting"),
        }
    };
    tokio::select! {
        served = server => served.context("the HTTP server failed")?,
        () = drained => {
            tracing::warn!(grace_secs = grace.as_secs(), "grace period over: requests still in flight were cut");
        }
    }
    if let Some(metrics) = metrics_server {
        metrics.abort();
    }
    tracing::info!("coachgraph stopped");
    Ok(())
}

/// The first SIGTERM (service managers, orchestrators) or SIGINT (Ctrl-C).
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// `seed-scale`: migrates, then loads benchmark data of the given size with a progress bar.
async fn seed_scale(config: &DbArgs, args: ScaleArgs) -> anyhow::Result<()> {
    migrate(config).await?;
    let db = connect(config.migration_database_url.as_deref().unwrap_or(&config.database_url), None, None).await?;
    let shape = seed::scale::Shape {
        tenants: args.tenants,
        coaches: args.coaches,
        coachees_per_coach: args.coachees_per_coach,
        sessions_per_coachee: args.sessions_per_coachee,
        admins: args.admins,
        executives: args.executives,
    };
    let progress = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{msg:<22} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta})")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    match seed::scale::seed_scale(&db, shape, SystemClock.now(), &progress).await.map_err(startup)? {
        None => println!("scale data already present (tenant {})", seed::scale::tenant_slug(1)),
        Some(report) => {
            for t in &report.tables {
                println!("{:<22} {:>9} rows {:>7.2} s", t.table, t.rows, t.seconds);
            }
            println!(
                "scale data loaded: {} tenant(s) x {} coachees, {} rows in {:.1} s; password {:?} for every account \
             (coach1@t1.scale.test, coachee1@t1.scale.test, admin1@t1.scale.test, exec1@t1.scale.test, ...)",
                shape.tenants,
                shape.coachees(),
                report.total(),
                started.elapsed().as_secs_f64(),
                seed::scale::SCALE_PASSWORD
            )
        }
    }
    Ok(())
}

/// Writes `schema.graphql` (the contract) and `tests/golden/schema/<role>.graphql`.
pub fn export_schema(out_dir: &Path) -> anyhow::Result<()> {
    let catalog = graphql::catalog();
    let write = |path: &Path, audience: Audience| -> anyhow::Result<()> {
        let sdl = graphql::schema::sdl(&catalog, audience).map_err(|e| anyhow!("{e}"))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(path, sdl).with_context(|| format!("cannot write {}", path.display()))
    };
    write(&out_dir.join("schema.graphql"), Audience::Contract)?;
    let golden = out_dir.join("tests/golden/schema");
    write(&golden.join("anonymous.graphql"), Audience::Anonymous)?;
    for role in Role::ALL {
        write(&golden.join(format!("{}.graphql", role.slug())), Audience::Role(role))?;
    }
    write(&golden.join("program_admin_break_glass.graphql"), Audience::BreakGlass)?;
    println!("wrote schema.graphql and tests/golden/schema/*.graphql");
    Ok(())
}

/// `verify-audit`: OK, or every broken chain's first broken link and exit code 1.
async fn verify_audit(config: &DbArgs) -> anyhow::Result<()> {
    let db = connect(audit_tools::owner_url(config).map_err(startup)?, None, None).await?;
    let report = audit_tools::verify(db.raw()).await.map_err(startup)?;
    if report.ok() {
        println!("OK: {} audit chains, {} events verified", report.chains, report.events);
        return Ok(());
    }
    for link in &report.broken {
        println!("{link}");
    }
    bail!("{} of {} audit chains are broken", report.broken.len(), report.chains)
}

/// `purge`: audit events past retention and ended sessions (see [`audit_tools::purge`]).
async fn purge(config: &DbArgs) -> anyhow::Result<()> {
    let db = connect(audit_tools::owner_url(config).map_err(startup)?, None, None).await?;
    let report = audit_tools::purge(db.raw(), SystemClock.now()).await.map_err(startup)?;
    for chain in &report.chains {
        let name = chain.tenant_id.map(|t| format!("tenant {t}")).unwrap_or_else(|| "platform".to_owned());
        println!("{name}: {} audit events, {} sessions purged", chain.events, chain.sessions);
    }
    println!("purged {} audit events and {} sessions", report.events(), report.sessions());
    Ok(())
}
