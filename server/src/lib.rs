//! `vigil-server`: serves the demo pages and the npm package, and (as the later parts land)
//! ingests errors and metrics, runs the WebSocket hub and answers voice sessions.
//!
//! [`app`] builds the whole router from an [`AppState`]; `main` and the tests share it.
//! Handlers only extract and delegate; the SQL lives in [`store`], the errors in [`error`].

pub mod access;
pub mod api;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod files;
pub mod fleet;
pub mod hub;
pub mod ingest;
pub mod metrics;
pub mod perip;
pub mod serve;
pub mod store;
pub mod voice;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, FromRef, Path, Request, State};
use axum::http::HeaderMap;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use access::Admin;
use access::{AllowedOrigin, ClientIp, MintGate, OrderGate};
pub use config::Config;
pub use error::AppError;
use hub::{Hub, HubConfig};
use metrics::Metrics;
use store::Store;
use vigil_protocol::orders::{NewOrder, Order};
use voice::{VoiceConfig, VoiceHub};

/// The crate version, printed at start and recorded in the database.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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

/// The whole HTTP surface (server-api.md, "Routes").
pub fn app(state: AppState) -> Router {
    let www = state.inner.www.clone();
    let pkg = state.inner.pkg.clone();
    let headers = files::security_headers();
    let no_cache = SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    // Browsers send telemetry from other origins: answer the preflight and expose the headers a
    // client needs to back off.
    let cors = CorsLayer::new()
        .allow_methods([axum::http::Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::HeaderName::from_static("x-sentry-auth"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-sentry-rate-limits"),
        ])
        .allow_origin(if state.inner.allowed_origins.is_empty() {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(state.inner.allowed_origins.clone())
        })
        .max_age(std::time::Duration::from_secs(3600));
    // Voice is opt-in across origins: a page elsewhere may mint keys and open calls only when its
    // origin is on the `--allowed-origin` list (an empty list allows none: same origin only).
    let voice_cors = CorsLayer::new()
        .allow_methods([axum::http::Method::POST, axum::http::Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([header::LOCATION, header::RETRY_AFTER])
        .allow_origin(AllowOrigin::list(state.inner.allowed_origins.clone()))
        .max_age(std::time::Duration::from_secs(3600));
    let voice = Router::new()
        .route("/voice/session", post(voice_session))
        .route(
            voice::REALTIME_PATH,
            post(voice_realtime).layer(DefaultBodyLimit::max(voice::MAX_OFFER_BYTES)),
        )
        .route("/voice/calls/{id}", axum::routing::delete(voice_hang_up))
        .layer(voice_cors);
    let telemetry = Router::new()
        .route("/api/{project}/envelope/", post(ingest_envelope))
        .route("/v1/metrics", post(ingest_metrics))
        .layer(DefaultBodyLimit::max(ingest::MAX_BODY))
        .layer(cors);
    Router::new()
        .merge(telemetry)
        .merge(voice)
        .merge(api::routes())
        .merge(dashboard::routes(&state))
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus_metrics))
        .route("/ws", get(ws_upgrade))
        .route(
            "/api/orders",
            post(create_order).layer(DefaultBodyLimit::max(hub::orders::MAX_ORDER_BYTES)),
        )
        .route_service("/", ServeFile::new(www.join("index.html")))
        .nest_service("/www", ServeDir::new(&www))
        .nest_service("/pkg", ServeDir::new(&pkg))
        .layer(middleware::from_fn_with_state(
            std::sync::Arc::new(files::Roots {
                served: vec![
                    ("/www/", www.clone()),
                    ("/pkg/", pkg.clone()),
                    ("/dashboard/static/", www.join("dashboard")),
                ],
            }),
            files::guard,
        ))
        .layer(no_cache)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.inner.body_timeout,
        ))
        .layer(catch_panics(state.metrics().clone()))
        .layer(headers[0].clone())
        .layer(headers[1].clone())
        .layer(headers[2].clone())
        .layer(headers[3].clone())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Answers a request whose handler panicked with `500` and a JSON reason, and counts it: no
/// future bug drops a connection silently.
pub fn catch_panics(
    metrics: Metrics,
) -> tower_http::catch_panic::CatchPanicLayer<
    impl Fn(Box<dyn std::any::Any + Send + 'static>) -> Response + Clone,
> {
    tower_http::catch_panic::CatchPanicLayer::custom(move |_: Box<dyn std::any::Any + Send>| {
        metrics.panics.inc();
        AppError::Internal("a handler panicked".into()).into_response()
    })
}

/// `GET /healthz`: `200 ok` once the database answers.
async fn healthz(State(store): State<Store>) -> Result<&'static str, AppError> {
    store.ping().await?;
    Ok("ok")
}

/// `GET /metrics`: Prometheus text, admin only.
async fn prometheus_metrics(_: Admin, State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics().render(),
    )
}

/// `POST /api/{project}/envelope/`: Sentry envelope ingestion. The origin and key are checked
/// (by [`ingest::gate::EnvelopeSender`]) before the body is read.
async fn ingest_envelope(
    State(state): State<AppState>,
    ingest::gate::EnvelopeSender(project): ingest::gate::EnvelopeSender,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let body = body
        .map_err(|e| AppError::from_body(e, ingest::MAX_BODY))
        .and_then(|b| ingest::decode_body(encoding, b));
    let id = ingest::envelope(&state, &project, body).await?;
    Ok(Json(serde_json::json!({ "id": id })))
}

/// `POST /v1/metrics`: OTLP/HTTP JSON; origin and key checked before the body is read.
async fn ingest_metrics(
    State(state): State<AppState>,
    ingest::gate::MetricsSender(project): ingest::gate::MetricsSender,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let body = body
        .map_err(|e| AppError::from_body(e, ingest::MAX_BODY))
        .and_then(|b| ingest::decode_body(encoding, b));
    // Stored in a task of its own: a page closed right after sending (its connection reset
    // while the insert runs) must not cancel the insert with the handler (issue 13, item 4).
    let user_agent = user_agent.to_owned();
    tokio::spawn(async move { ingest::metrics(&state, &project, &user_agent, body).await })
        .await
        .map_err(|_| AppError::Internal("ingest task failed".into()))??;
    // OTLP/HTTP: an empty `partialSuccess` means everything was accepted.
    Ok(Json(serde_json::json!({ "partialSuccess": {} })))
}

/// `GET /ws`: the hub (server-api.md, `/ws`); a page whose origin is off a set
/// `--allowed-origin` list gets `403`.
async fn ws_upgrade(
    _: AllowedOrigin,
    State(hub): State<Hub>,
    ClientIp(ip): ClientIp,
    upgrade: WebSocketUpgrade,
) -> Response {
    if hub.is_full() {
        return AppError::Unavailable("the hub holds its maximum of connections").into_response();
    }
    // Frames past the hub's 64 KiB limit still arrive (and get 1009); past 1 MiB the protocol
    // layer refuses them before buffering more.
    // Small buffers: tungstenite's defaults (128 KiB read + 128 KiB write per socket) would cost
    // an idle kiosk connection ~130 KiB; the hub's own queue already bounds what waits.
    upgrade
        .max_message_size(1 << 20)
        .max_frame_size(1 << 20)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            // Past --ws-max-connections-per-ip from this address: closed at once with 1013.
            hub::session::run_from(hub, Some(ip), sink, stream).await;
        })
}

/// `POST /voice/session`: a single-use key for one call (the operator, or any page under
/// `--demo`, limited per IP).
async fn voice_session(
    _: MintGate,
    State(voice): State<VoiceHub>,
) -> Result<Json<vigil_protocol::VoiceSession>, AppError> {
    Ok(Json(voice.mint()?))
}

/// `POST /voice/realtime`: the SDP offer in, `201` with the SDP answer and `Location` out.
async fn voice_realtime(
    State(voice): State<VoiceHub>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, AppError> {
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let body = body.map_err(|e| AppError::from_body(e, voice::MAX_OFFER_BYTES))?;
    let call = voice
        .open_call(
            ip,
            header(header::AUTHORIZATION),
            header(header::CONTENT_TYPE),
            &body,
        )
        .await?;
    let location = format!("{}/{}", voice::CALLS_PATH, call.id);
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_owned()),
            (header::LOCATION, location),
        ],
        call.answer,
    )
        .into_response())
}

/// `DELETE /voice/calls/{id}`: hang up (`204`), `404` when no such call is live.
async fn voice_hang_up(
    State(voice): State<VoiceHub>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    if voice.hang_up(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound(format!("no live call {id}")))
    }
}

/// `POST /api/orders`: store an order and broadcast `order:created` (the operator, or any page
/// under `--demo`, limited per IP).
async fn create_order(
    _: OrderGate,
    State(state): State<AppState>,
    body: Result<Json<NewOrder>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Order>), AppError> {
    let Json(new) = body.map_err(|e| AppError::from_json(e, hub::orders::MAX_ORDER_BYTES))?;
    let order = hub::orders::create(state.store(), state.hub(), new).await?;
    Ok((StatusCode::CREATED, Json(order)))
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let class = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    state
        .metrics()
        .http_requests
        .with_label_values(&[class])
        .inc();
    response
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

/// A server bound to its port, ready to serve.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
    addr: SocketAddr,
}

impl Server {
    /// Opens the database, applies migrations, records the start and binds `config.addr`.
    pub async fn bind(config: &Config) -> Result<Self, StartError> {
        Self::bind_with_hub(config, HubConfig::from_config(config)).await
    }

    /// As [`Server::bind`], with the hub's limits and timings given (tests shorten them).
    pub async fn bind_with_hub(config: &Config, hub: HubConfig) -> Result<Self, StartError> {
        Self::bind_with_configs(config, hub, VoiceConfig::from_config(config)).await
    }

    /// As [`Server::bind_with_hub`], with the voice peer's limits and timings given too.
    pub async fn bind_with_configs(
        config: &Config,
        hub: HubConfig,
        voice: VoiceConfig,
    ) -> Result<Self, StartError> {
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
            state: AppState::with_configs(config, store, hub, voice),
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
        if self.state.inner.token_generated {
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
            state.inner.limits,
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
    Database(String, #[source] AppError),
    /// A database URL this build does not store into (never taken as a file name).
    #[error("unsupported database URL {0}: this build supports {supported}", supported = config::SUPPORTED_DATABASES)]
    UnsupportedDatabase(String),
    /// The address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
}
