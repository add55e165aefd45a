//! The `coachgraph` commands.

use std::path::Path;
use std::sync::Arc;

use migrations::{Migrator, MigratorTrait};
use tracing_subscriber::EnvFilter;

use crate::app::{self, AppState};
use crate::clock::{Clock, SystemClock};
use crate::config::{Cli, Command, Config, DEFAULT_DATABASE_URL, Mode, ScaleArgs};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::graphql::{self, Audience};
use crate::kinds::Role;
use crate::ops::audit as audit_tools;
use crate::seed;

pub fn init_tracing(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

pub async fn run(cli: Cli) -> AppResult<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(&config).await,
        Command::SeedDemo => {
            migrate(&config).await?;
            let db = Db::connect(config.migration_database_url.as_deref().unwrap_or(&config.database_url)).await?;
            let written = seed::seed_demo(&db, SystemClock.now()).await?;
            println!("{}", if written { "demo data loaded" } else { "demo data already present" });
            Ok(())
        }
        Command::SeedScale(args) => seed_scale(&config, args).await,
        Command::ExportSchema { out_dir } => export_schema(&out_dir),
        Command::VerifyAudit => verify_audit(&config).await,
        Command::Purge => purge(&config).await,
    }
}

/// Migrations run through the owner connection (PostgreSQL) or the database itself (SQLite).
pub async fn migrate(config: &Config) -> AppResult<()> {
    let url = config.migration_database_url.as_deref().unwrap_or(&config.database_url);
    let db = Db::connect(url).await?;
    Migrator::up(db.raw(), None).await?;
    Ok(())
}

async fn serve(config: Config) -> AppResult<()> {
    let fresh_default_sqlite =
        config.database_url == DEFAULT_DATABASE_URL && config.sqlite_path().is_some_and(|p| !p.exists());
    if !config.is_postgres() || config.migration_database_url.is_some() {
        migrate(&config).await?;
    }
    let statement_timeout = std::time::Duration::from_millis(config.statement_timeout_ms);
    let db = Db::connect_with_statement_timeout(&config.database_url, Some(statement_timeout)).await?;
    db.check_runtime_role().await?;
    if fresh_default_sqlite && config.auto_seed && config.mode == Mode::Development {
        tracing::info!("new database: loading demo data (password {:?})", seed::DEMO_PASSWORD);
        seed::seed_demo(&db, SystemClock.now()).await?;
    }
    if config.mode == Mode::Production && seed::demo_present(&db).await? {
        return Err(AppError::Internal(
            "production mode refuses to start on a database with the demo data (and its public password)".into(),
        ));
    }
    let key = app::signing_key(&config, &db).await?;
    let state = AppState::new(db, &key, &config.issuer, &config.audience, Arc::new(SystemClock))?
        .with_settings(app::HttpSettings::from_config(&config))?;
    crate::identity::password::warm_up();
    let router = crate::http::router(state);
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| AppError::Internal(format!("cannot listen on {}: {e}", config.bind)))?;
    tracing::info!("coachgraph listening on http://{} (playground at /, API at /graphql)", config.bind);
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(AppError::internal)
}

/// `seed-scale`: migrates, then loads benchmark data of the given size with a progress bar.
async fn seed_scale(config: &Config, args: ScaleArgs) -> AppResult<()> {
    migrate(config).await?;
    let db = Db::connect(config.migration_database_url.as_deref().unwrap_or(&config.database_url)).await?;
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
            .map_err(AppError::internal)?
            .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    match seed::scale::seed_scale(&db, shape, SystemClock.now(), &progress).await? {
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
pub fn export_schema(out_dir: &Path) -> AppResult<()> {
    let catalog = graphql::catalog();
    let write = |path: &Path, audience: Audience| -> AppResult<()> {
        let sdl = graphql::schema::sdl(&catalog, audience).map_err(AppError::internal)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(AppError::internal)?;
        }
        std::fs::write(path, sdl).map_err(|e| AppError::Internal(format!("{}: {e}", path.display())))
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
async fn verify_audit(config: &Config) -> AppResult<()> {
    let db = Db::connect(audit_tools::owner_url(config)?).await?;
    let report = audit_tools::verify(db.raw()).await?;
    if report.ok() {
        println!("OK: {} audit chains, {} events verified", report.chains, report.events);
        return Ok(());
    }
    for link in &report.broken {
        println!("{link}");
    }
    Err(AppError::Conflict(format!("{} of {} audit chains are broken", report.broken.len(), report.chains)))
}

/// `purge`: audit events past retention and ended sessions (see [`audit_tools::purge`]).
async fn purge(config: &Config) -> AppResult<()> {
    let db = Db::connect(audit_tools::owner_url(config)?).await?;
    let report = audit_tools::purge(db.raw(), SystemClock.now()).await?;
    for chain in &report.chains {
        let name = chain.tenant_id.map(|t| format!("tenant {t}")).unwrap_or_else(|| "platform".to_owned());
        println!("{name}: {} audit events, {} sessions purged", chain.events, chain.sessions);
    }
    println!("purged {} audit events and {} sessions", report.events(), report.sessions());
    Ok(())
}
