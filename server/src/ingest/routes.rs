//! The telemetry routes: `POST /api/{project}/envelope/` (Sentry envelopes) and `POST /v1/metrics`
//! (OTLP/HTTP JSON), with the CORS that lets pages on other origins send them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{header, HeaderMap};
use axum::routing::post;
use axum::{Json, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::gate::{EnvelopeSender, MetricsSender};
use super::{decode_body, Ingest, MAX_BODY};
use crate::error::AppError;

/// The two telemetry routes, under the 1 MiB body limit and CORS (the allowed origins of
/// `ingest`), over any state that holds an `Arc<Ingest>`.
pub fn routes<S>(ingest: &Ingest) -> Router<S>
where
    Arc<Ingest>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    let origins = &ingest.senders().allowed_origins;
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
        .allow_origin(if origins.is_empty() {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(origins.clone())
        })
        .max_age(std::time::Duration::from_secs(3600));
    Router::new()
        .route("/api/{project}/envelope/", post(ingest_envelope))
        .route("/v1/metrics", post(ingest_metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(cors)
}

/// `POST /api/{project}/envelope/`: Sentry envelope ingestion. The origin and key are checked
/// (by [`EnvelopeSender`]) before the body is read.
async fn ingest_envelope(
    State(ingest): State<Arc<Ingest>>,
    EnvelopeSender(project): EnvelopeSender,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let body = decoded(&headers, body);
    let id = ingest.envelope(&project, body).await?;
    Ok(Json(serde_json::json!({ "id": id })))
}

/// `POST /v1/metrics`: OTLP/HTTP JSON; origin and key checked before the body is read.
async fn ingest_metrics(
    State(ingest): State<Arc<Ingest>>,
    MetricsSender(project): MetricsSender,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let body = decoded(&headers, body);
    ingest.metrics_export(&project, user_agent, body).await?;
    // OTLP/HTTP: an empty `partialSuccess` means everything was accepted.
    Ok(Json(serde_json::json!({ "partialSuccess": {} })))
}

/// The request body as read (a `413` naming [`MAX_BODY`] past it), decompressed as its
/// `Content-Encoding` says.
fn decoded(
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Bytes, AppError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    body.map_err(|e| AppError::from_body(e, MAX_BODY))
        .and_then(|b| decode_body(encoding, b))
}
