//! The layers every response passes besides the security headers (`files`): a panicking handler
//! answered `500` and counted, and every response counted by its status class.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::AppState;

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
/// Counts every response by its status class (`vigil_http_requests_total{class}`).
pub async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
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
