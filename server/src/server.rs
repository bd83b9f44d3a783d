//! `Server`: opens the database, binds the port, prints the start-up lines and serves with a
//! graceful shutdown (the accept loop itself is in `serve`).

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::tuning::Tuning;
use crate::{app, config, serve, AppState, Config, VERSION};

/// A server bound to its port, ready to serve.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
    addr: SocketAddr,
}

impl Server {
    /// Opens the database, applies migrations, records the start and binds `config.addr`; the
    /// server runs with `tuning` (`Tuning::from_config(config)` for the flags' values).
    pub async fn bind(config: &Config, tuning: Tuning) -> Result<Self, StartError> {
        let shown = config::redact_url(&config.database_url);
        if !config::database_supported(&config.database_url) {
            return Err(StartError::UnsupportedDatabase(shown));
        }
        let store = Store::connect(&config.database_url)
            .await
            .map_err(|e| StartError::Database(shown.clone(), e))?;
        store
            .record_start(VERSION)
            .await
            .map_err(|e| StartError::Database(shown.clone(), e))?;
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|e| StartError::Bind(config.addr, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(config.addr, e))?;
        Ok(Self {
            listener,
            state: AppState::new(config, store, tuning),
            addr,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The state the router runs on.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The lines printed at start: what a user needs to open the demo and point a page at us.
    pub fn startup_lines(&self) -> Vec<String> {
        let base = format!("http://{}", self.addr);
        let mut lines = vec![
            format!("vigil-server {VERSION} listening on {base}"),
            format!("  demo page:    {base}/"),
            format!("  dashboard:    {base}/dashboard"),
        ];
        for p in self.state.projects() {
            lines.push(format!(
                "  DSN:          http://{}@{}/{}",
                p.public_key, self.addr, p.id
            ));
        }
        if self.state.token_generated() {
            lines.push(format!("  admin token:  {}", self.state.admin_token()));
        } else {
            lines.push("  admin token:  (the one given by --admin-token or VIGIL_ADMIN_TOKEN; not printed)".into());
        }
        lines
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets in-flight requests end,
    /// tells long-lived tasks to stop, and closes the database.
    pub async fn serve(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let state = self.state.clone();
        let app_shutdown = state.shutdown().clone();
        let signal = shutdown.clone();
        state.hub().start_reaper();
        let stop = CancellationToken::new();
        let stopping = stop.clone();
        tokio::spawn(async move {
            signal.cancelled().await;
            // Sockets and peers see this and close themselves (1001 for WebSockets).
            app_shutdown.cancel();
            stopping.cancel();
        });
        let result = serve::serve(
            self.listener,
            app(state.clone()),
            state.limits(),
            state.metrics().clone(),
            stop,
        )
        .await;
        app_shutdown_done(&state).await;
        result
    }
}

/// After the listener stops: make sure long-lived tasks were told (serve may end on an error),
/// wait for the reaper, end every voice peer, let sessions send their 1001 close, then close the
/// database.
async fn app_shutdown_done(state: &AppState) {
    state.shutdown().cancel();
    state.hub().stop_reaper().await;
    state.voice().shutdown().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while state.hub().session_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    state.store().close().await;
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated (the URL without its password).
    #[error("cannot open the database {0}: {1}")]
    Database(String, #[source] crate::store::StoreError),
    /// A database URL this build does not store into (never taken as a file name).
    #[error("unsupported database URL {0}: this build supports {supported}", supported = config::SUPPORTED_DATABASES)]
    UnsupportedDatabase(String),
    /// The address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
}
