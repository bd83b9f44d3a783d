//! Operations: `GET /healthz` (ready: the database answers, and on PostgreSQL the cluster
//! listener is connected) and `GET /metrics` (Prometheus text, admin
//! only).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::access::Admin;
use crate::error::AppError;
use crate::AppState;

/// `/healthz` and `/metrics`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus_metrics))
}

/// `GET /healthz`: `200 ok` when the database answers within a second and, on PostgreSQL, the
/// cluster listener is connected; else `503` with the reason.
async fn healthz(State(state): State<AppState>) -> Result<&'static str, AppError> {
    let ping = tokio::time::timeout(std::time::Duration::from_secs(1), state.store().ping());
    if !matches!(ping.await, Ok(Ok(()))) {
        return Err(AppError::Unavailable(
            "not ready: the database is unreachable",
        ));
    }
    if state.cluster().is_some_and(|c| !c.listening()) {
        return Err(AppError::Unavailable(
            "not ready: reconnecting to the other instances' broadcasts",
        ));
    }
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
