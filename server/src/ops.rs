//! Operations: `GET /healthz` (the database answers) and `GET /metrics` (Prometheus text, admin
//! only).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::access::Admin;
use crate::error::AppError;
use crate::store::Store;
use crate::AppState;

/// `/healthz` and `/metrics`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus_metrics))
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
