//! The checks a telemetry request passes before its body is read: its `Origin` (when the server
//! has an allow-list) and its public key. A wrong key gets `401` even for a body over the limit.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};

use super::auth::{key_from_sentry_auth, query_param};
use super::Ingest;
use crate::config::ProjectKey;
use crate::error::AppError;

/// Refuses a request whose `Origin` is present and not on a non-empty allow-list.
pub fn check_origin(allowed: &[HeaderValue], parts: &Parts) -> Result<(), AppError> {
    match parts.headers.get(header::ORIGIN) {
        Some(origin) if !allowed.is_empty() && !allowed.contains(origin) => Err(
            AppError::Forbidden("this origin is not on the server's --allowed-origin list"),
        ),
        _ => Ok(()),
    }
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

fn rejected(ingest: &Ingest, e: AppError, metrics: bool) -> AppError {
    if let Some(reason) = e.reject_reason() {
        let counter = if metrics {
            &ingest.metrics().metric_requests_rejected
        } else {
            &ingest.metrics().events_rejected
        };
        counter.with_label_values(&[reason]).inc();
    }
    e
}

/// An envelope request for a project whose key it holds (`sentry_key` or `X-Sentry-Auth`).
#[derive(Debug, Clone)]
pub struct EnvelopeSender(pub ProjectKey);

impl<S> FromRequestParts<S> for EnvelopeSender
where
    Arc<Ingest>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let ingest = Arc::<Ingest>::from_ref(state);
        let senders = ingest.senders();
        let check = async {
            check_origin(&senders.allowed_origins, parts)?;
            let Path(project) = Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| AppError::BadRequest(e.body_text()))?;
            let key = query_param(parts.uri.query(), "sentry_key")
                .or_else(|| header(parts, "x-sentry-auth").and_then(key_from_sentry_auth))
                .ok_or(AppError::Unauthorized(
                    "no public key: send sentry_key in the query or an X-Sentry-Auth header",
                ))?;
            senders
                .projects
                .iter()
                .find(|p| p.id == project && p.public_key == key)
                .cloned()
                .map(EnvelopeSender)
                .ok_or(AppError::Unauthorized("unknown project or public key"))
        };
        check.await.map_err(|e| rejected(&ingest, e, false))
    }
}

/// An OTLP request with a project's key (`Authorization: Bearer`, `?key=`, `?sentry_key=` or
/// `X-Sentry-Auth`).
#[derive(Debug, Clone)]
pub struct MetricsSender(pub ProjectKey);

impl<S> FromRequestParts<S> for MetricsSender
where
    Arc<Ingest>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let ingest = Arc::<Ingest>::from_ref(state);
        let senders = ingest.senders();
        let check = || {
            check_origin(&senders.allowed_origins, parts)?;
            let query = parts.uri.query();
            let key = crate::access::bearer(&parts.headers)
                .or_else(|| query_param(query, "key"))
                .or_else(|| query_param(query, "sentry_key"))
                .or_else(|| header(parts, "x-sentry-auth").and_then(key_from_sentry_auth))
                .ok_or(AppError::Unauthorized(
                    "no public key: send Authorization: Bearer <key>, X-Sentry-Auth, or ?key=",
                ))?;
            senders
                .projects
                .iter()
                .find(|p| p.public_key == key)
                .cloned()
                .map(MetricsSender)
                .ok_or(AppError::Unauthorized("unknown public key"))
        };
        check().map_err(|e| rejected(&ingest, e, true))
    }
}
