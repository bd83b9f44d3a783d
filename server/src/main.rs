//! `vigil-server`: parse the config, bind, print what a user needs, serve until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use vigil_server::{Config, Server};

/// How long a graceful shutdown may take before the process exits anyway (the contract says 5 s).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(4_500);

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::parse();
    let server = match Server::bind(&config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigil-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    for line in server.startup_lines() {
        println!("{line}");
    }
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(server.serve(shutdown.clone()));
    wait_for_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    match tokio::time::timeout(SHUTDOWN_GRACE, serving).await {
        Ok(Ok(Ok(()))) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Ok(Ok(Err(e))) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "server task failed");
            ExitCode::FAILURE
        }
        Err(_) => {
            tracing::warn!("connections still open after the grace period; exiting anyway");
            ExitCode::SUCCESS
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
