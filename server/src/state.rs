//! `AppState`: everything a handler may need, built once from the config and cheap to clone;
//! features take their own part of it through `FromRef`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::HeaderValue;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config};
use crate::hub::{Hub, HubConfig};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::voice::{VoiceConfig, VoiceHub};
use crate::{ingest, serve};

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
    ingest: ingest::Ingest,
    allowed_origins: Vec<HeaderValue>,
    admin_token: config::Secret,
    /// Whether the token was generated here (then it is printed at start; a given one is not).
    token_generated: bool,
    /// Who may mint voice keys besides the operator (`--voice-mint-token`).
    voice_mint_token: Option<config::Secret>,
    demo: bool,
    projects: Vec<config::ProjectKey>,
    www: PathBuf,
    pkg: PathBuf,
    health_retention: std::time::Duration,
    retention: std::time::Duration,
    limits: serve::Limits,
    body_timeout: std::time::Duration,
    shutdown: CancellationToken,
}

impl AppState {
    /// Builds the state from `config` and an open `store`. Generates the admin token when the
    /// config has none.
    pub fn new(config: &Config, store: Store) -> Self {
        Self::with_hub_config(config, store, HubConfig::from_config(config))
    }

    /// As [`AppState::new`], with the hub's limits and timings given (tests shorten them).
    pub fn with_hub_config(config: &Config, store: Store, hub: HubConfig) -> Self {
        Self::with_configs(config, store, hub, VoiceConfig::from_config(config))
    }

    /// As [`AppState::with_hub_config`], with the voice peer's limits and timings given too.
    pub fn with_configs(config: &Config, store: Store, hub: HubConfig, voice: VoiceConfig) -> Self {
        let token_generated = config.admin_token.is_none();
        let admin_token = config
            .admin_token
            .clone()
            .unwrap_or_else(config::Secret::generate);
        let metrics = Metrics::new();
        let shutdown = CancellationToken::new();
        let hub = Hub::new(hub, store.clone(), metrics.clone(), shutdown.clone());
        let voice = VoiceHub::new(voice, metrics.clone(), shutdown.clone());
        let rate = ingest::ratelimit::Rate {
            per_sec: config.rate_limit.max(0.001),
            burst: config.rate_limit_burst.max(1.0),
        };
        let allowed_origins = config
            .allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
            .collect();
        let ingest = ingest::Ingest::new(rate, store.clone());
        Self {
            inner: Arc::new(Inner {
                store,
                metrics,
                hub,
                voice,
                ingest,
                allowed_origins,
                admin_token,
                token_generated,
                voice_mint_token: config.voice_mint_token.clone(),
                demo: config.demo,
                projects: config.projects.clone(),
                www: config.www.clone(),
                pkg: config.pkg.clone(),
                health_retention: config.health_retention,
                retention: config.retention,
                limits: serve::Limits {
                    max_connections: config.max_connections,
                    max_per_ip: config.max_connections_per_ip,
                    header_timeout: config.header_timeout,
                },
                body_timeout: config.body_timeout,
                shutdown,
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

    /// Ingestion state (the rate limiter).
    pub fn ingest(&self) -> &ingest::Ingest {
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
        &self.inner.allowed_origins
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
        &self.inner.projects
    }

    /// The demo pages' folder (the dashboard's files are in its `dashboard/`).
    pub fn www(&self) -> &std::path::Path {
        &self.inner.www
    }

    /// How long fleet health samples are kept.
    pub fn health_retention(&self) -> std::time::Duration {
        self.inner.health_retention
    }

    /// How long events and metric points are kept.
    pub fn retention(&self) -> std::time::Duration {
        self.inner.retention
    }

    /// Cancelled when the server shuts down: long-lived tasks (sockets, peers, reapers) watch it.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
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
        self.inner.limits
    }

    /// How long a request's body may take to arrive.
    pub fn body_timeout(&self) -> std::time::Duration {
        self.inner.body_timeout
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
