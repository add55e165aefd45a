use clap::Parser;

/// mimalloc rather than glibc's allocator: a GraphQL answer is thousands of small
/// allocations, and under glibc malloc/free were a quarter of the server's CPU on the coach
/// dashboard (perf, `cargo bench --bench http_load`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = coachgraph::config::Cli::parse();
    coachgraph::cli::init_tracing(&cli.log);
    match coachgraph::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The cause and its context, one line each: what failed and how to fix it.
            tracing::error!("{e:#}");
            eprintln!("coachgraph: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
