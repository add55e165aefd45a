use clap::Parser;

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
