//! `AppState`: everything a handler may need, built once from the config and cheap to clone;
//! features take their own part of it through `FromRef`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::HeaderValue;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config};
use crate::hub::Hub;
use crate::ingest::{Ingest, Senders};
use crate::metrics::Metrics;
use crate::serve;
use crate::store::Store;
use crate::tuning::Tuning;
use crate::voice::VoiceHub;

/// Everything a handler may need, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    metrics: Metrics,
    hub: Hub,
    voice: VoiceHub,
    ingest: Arc<Ingest>,
    admin_token: config::Secret,
    /// Whether the token was generated here (then it is printed at start; a given one is not).
    token_generated: bool,
    /// Who may mint voice keys besides the operator (`--voice-mint-token`).
    voice_mint_token: Option<config::Secret>,
    demo: bool,
    www: PathBuf,
    pkg: PathBuf,
    tuning: Tuning,
    shutdown: CancellationToken,
    /// Set on PostgreSQL: the other instances sharing the database.
    cluster: std::sync::OnceLock<crate::cluster::Cluster>,
}

impl AppState {
    /// Builds the state from `config` (who: projects, tokens, origins, folders), an open `store`
    /// and `tuning` (how much: limits, timings, batches). Generates the admin token when the
    /// config has none. Starts the ingest writer task, so it runs inside a Tokio runtime.
    pub fn new(config: &Config, store: Store, tuning: Tuning) -> Self {
        let token_generated = config.admin_token.is_none();
        let admin_token = config
            .admin_token
            .clone()
            .unwrap_or_else(config::Secret::generate);
        let metrics = Metrics::new();
        let shutdown = CancellationToken::new();
        let hub = Hub::new(
            tuning.hub.clone(),
            store.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        let voice = VoiceHub::new(tuning.voice.clone(), metrics.clone(), shutdown.clone());
        let senders = Senders {
            projects: config.projects.clone(),
            allowed_origins: config
                .allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
                .collect(),
        };
        let ingest = Ingest::start(tuning.ingest, senders, store.clone(), metrics.clone());
        Self {
            inner: Arc::new(Inner {
                store,
                metrics,
                hub,
                voice,
                ingest: Arc::new(ingest),
                admin_token,
                token_generated,
                voice_mint_token: config.voice_mint_token.clone(),
                demo: config.demo,
                www: config.www.clone(),
                pkg: config.pkg.clone(),
                tuning,
                shutdown,
                cluster: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The WebSocket hub.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The voice peer.
    pub fn voice(&self) -> &VoiceHub {
        &self.inner.voice
    }

    /// Ingestion (its senders, rate limiter and group-commit writer).
    pub fn ingest(&self) -> &Ingest {
        &self.inner.ingest
    }

    /// The Prometheus metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The bearer token of the read API and `/metrics`.
    pub fn admin_token(&self) -> &str {
        self.inner.admin_token.expose()
    }

    /// Origins allowed to send telemetry (empty: any).
    pub fn allowed_origins(&self) -> &[HeaderValue] {
        &self.inner.ingest.senders().allowed_origins
    }

    /// The bearer token that may mint voice keys besides the admin token (`--voice-mint-token`).
    pub fn voice_mint_token(&self) -> Option<&str> {
        self.inner
            .voice_mint_token
            .as_ref()
            .map(config::Secret::expose)
    }

    /// Whether `--demo` opens `POST /api/orders` and `POST /voice/session` to any page.
    pub fn demo(&self) -> bool {
        self.inner.demo
    }

    /// The configured projects.
    pub fn projects(&self) -> &[config::ProjectKey] {
        &self.inner.ingest.senders().projects
    }

    /// The demo pages' folder (the dashboard's files are in its `dashboard/`).
    pub fn www(&self) -> &std::path::Path {
        &self.inner.www
    }

    /// The limits, timings and batch sizes the server runs with.
    pub fn tuning(&self) -> &Tuning {
        &self.inner.tuning
    }

    /// Cancelled when the server shuts down: long-lived tasks (sockets, peers, reapers) watch it.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Shares orders and voice keys with the other instances of `cluster` (PostgreSQL). Once.
    pub fn join_cluster(&self, cluster: crate::cluster::Cluster) {
        self.voice().share_keys(cluster.clone());
        let _ = self.inner.cluster.set(cluster);
    }

    /// The cluster this instance joined, if any.
    pub fn cluster(&self) -> Option<&crate::cluster::Cluster> {
        self.inner.cluster.get()
    }
}

impl AppState {
    /// Whether the admin token was generated here (then it is printed at start).
    pub fn token_generated(&self) -> bool {
        self.inner.token_generated
    }

    /// The package's folder (`/pkg/*`).
    pub fn pkg(&self) -> &std::path::Path {
        &self.inner.pkg
    }

    /// The connection limits of the accept loop.
    pub fn limits(&self) -> serve::Limits {
        self.inner.tuning.limits
    }

    /// How long a request's body may take to arrive.
    pub fn body_timeout(&self) -> std::time::Duration {
        self.inner.tuning.body_timeout
    }
}

impl FromRef<AppState> for Hub {
    fn from_ref(state: &AppState) -> Self {
        state.inner.hub.clone()
    }
}

impl FromRef<AppState> for VoiceHub {
    fn from_ref(state: &AppState) -> Self {
        state.inner.voice.clone()
    }
}

impl FromRef<AppState> for Store {
    fn from_ref(state: &AppState) -> Self {
        state.inner.store.clone()
    }
}

impl FromRef<AppState> for Arc<Ingest> {
    fn from_ref(state: &AppState) -> Self {
        state.inner.ingest.clone()
    }
}
