use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = coachgraph::config::Cli::parse();
    coachgraph::cli::init_tracing(&cli.config.log);
    match coachgraph::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coachgraph: {}", e);
            std::process::ExitCode::FAILURE
        }
    }
}
