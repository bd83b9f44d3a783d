//! `vigil-server`: serves the demo pages and the npm package, ingests errors and metrics, runs
//! the WebSocket hub and answers voice sessions.
//!
//! [`app`] composes the whole router from each feature's `routes()` over an [`AppState`]; `main`
//! and the tests share it. Handlers live beside their routes, extract and delegate; the SQL
//! lives in [`store`], the errors in [`error`].

pub mod access;
pub mod api;
pub mod cluster;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod files;
pub mod fleet;
pub mod hub;
pub mod ingest;
pub mod layers;
pub mod metrics;
pub mod ops;
pub mod perip;
pub mod serve;
pub mod server;
pub mod state;
pub mod store;
pub mod tuning;
pub mod voice;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutBody;
use tower_http::trace::TraceLayer;

pub use access::Admin;
pub use config::Config;
pub use error::AppError;
pub use layers::catch_panics;
pub use server::{Server, StartError};
pub use state::AppState;
pub use tuning::Tuning;

/// The crate version, printed at start and recorded in the database.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The whole HTTP surface (server-api.md, "Routes"): every feature's routes, then the layers
/// every response passes.
pub fn app(state: AppState) -> Router {
    let www = state.www().to_path_buf();
    let pkg = state.pkg().to_path_buf();
    let headers = files::security_headers();
    let no_cache = SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    // One `ServiceBuilder`, outermost first: a single service around each route instead of a
    // boxed, cloned-per-request service per `Router::layer` call (the ingest profile spent about
    // a tenth of the server's CPU in those clones).
    let layers = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .layer(headers[3].clone())
        .layer(headers[2].clone())
        .layer(headers[1].clone())
        .layer(headers[0].clone())
        .layer(catch_panics(state.metrics().clone()))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.body_timeout(),
        ))
        // Back to axum's body type for the middleware inside.
        .map_request(|request: axum::http::Request<TimeoutBody<Body>>| request.map(Body::new))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            layers::count_requests,
        ))
        .layer(no_cache)
        .layer(middleware::from_fn_with_state(
            std::sync::Arc::new(files::Roots {
                served: vec![
                    ("/www/", www.clone()),
                    ("/pkg/", pkg),
                    ("/dashboard/static/", www.join("dashboard")),
                ],
            }),
            files::guard,
        ));
    Router::new()
        .merge(ingest::routes(state.ingest()))
        .merge(voice::routes(&state))
        .merge(api::routes())
        .merge(dashboard::routes(&state))
        .merge(ops::routes())
        .merge(hub::routes())
        .merge(files::routes(&state))
        .layer(layers)
        .with_state(state)
}
