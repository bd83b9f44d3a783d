//! `vigil-server`: parse the config, bind, print what a user needs, serve until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use vigil_server::{Config, Server, Tuning};

/// mimalloc instead of glibc's malloc: under envelope ingest at full load, `malloc`/`free` and
/// their consolidation took a fifth of the server's CPU (`perf`, see README "Ingest figures").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long a graceful shutdown may take before the process exits anyway (the contract says 5 s).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(4_500);

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                EnvFilter::new("info,tower_http=warn,sqlx::postgres::notice=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::parse();
    let server = match Server::bind(&config, Tuning::from_config(&config)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigil-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Handlers first: a SIGTERM sent as soon as the start-up lines appear must stop us gracefully,
    // not kill us with the default action.
    let signalled = wait_for_signal();
    for line in server.startup_lines() {
        println!("{line}");
    }
    let shutdown = CancellationToken::new();
    let state = server.state().clone();
    let serving = tokio::spawn(server.serve(shutdown.clone()));
    signalled.await;
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
            // Not a clean stop: say what was still running, and exit non-zero so a supervisor
            // knows that in-flight work may have been cut.
            tracing::error!(
                websocket_sessions = state.hub().session_count(),
                voice_calls = state.voice().session_count(),
                "requests still in flight after the {SHUTDOWN_GRACE:?} grace period; exiting anyway"
            );
            ExitCode::FAILURE
        }
    }
}

/// Installs the SIGINT and SIGTERM handlers now (before anything is printed); the returned future
/// completes on the first of them.
fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let install = |kind: SignalKind, name: &'static str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for {name}");
                None
            }
        };
        let mut int = install(SignalKind::interrupt(), "SIGINT");
        let mut term = install(SignalKind::terminate(), "SIGTERM");
        async move {
            tokio::select! {
                () = next(&mut int) => {},
                () = next(&mut term) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}

/// The next delivery of `signal`; never, when it could not be installed.
#[cfg(unix)]
async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => drop(s.recv().await),
        None => std::future::pending::<()>().await,
    }
}
