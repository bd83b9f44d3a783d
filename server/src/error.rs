//! One error type for every handler: it answers with a status and `{ "error": "…" }`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use vigil_protocol::ErrorBody;

/// What a handler can fail with. Input problems are 4xx with a reason; storage problems are a
/// 500 whose details go to the log, not to the caller.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed input.
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Not allowed from here (an origin off the allow-list).
    #[error("{0}")]
    Forbidden(&'static str),
    /// Nothing there.
    #[error("{0}")]
    NotFound(String),
    /// The body is over the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Over the rate limit; retry after this many seconds.
    #[error("rate limited: retry after {0} s")]
    RateLimited(u64),
    /// At capacity (sessions, peers).
    #[error("{0}")]
    Unavailable(&'static str),
    /// At capacity until something expires; retry after this many seconds (`Retry-After`).
    #[error("{0}; retry after {1} s")]
    Busy(&'static str, u64),
    /// A server-side failure other than storage (details go to the log).
    #[error("internal error")]
    Internal(String),
    /// The database failed (a `503` when it is unreachable or out of connections, else a
    /// `500`; details go to the log).
    #[error("{}", if .0.is_unavailable() { "the database is unavailable" } else { "storage error" })]
    Storage(#[from] crate::store::StoreError),
}

impl AppError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) | Self::Busy(..) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Storage(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) | Self::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl AppError {
    /// The `reason` label of `vigil_events_rejected_total` for an ingestion error.
    pub fn reject_reason(&self) -> Option<&'static str> {
        match self {
            Self::BadRequest(_) => Some("malformed"),
            Self::Unauthorized(_) => Some("unauthorized"),
            Self::Forbidden(_) => Some("origin"),
            Self::PayloadTooLarge(_) => Some("too_large"),
            Self::RateLimited(_) => Some("rate_limited"),
            Self::Busy(..) => Some("busy"),
            _ => None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        let body = Json(ErrorBody {
            error: self.to_string(),
        });
        match self {
            // Both headers: Retry-After for HTTP clients, X-Sentry-Rate-Limits for Sentry SDKs
            // (`retry_after:categories:scope`, empty categories = all).
            Self::RateLimited(secs) => (
                status,
                [
                    ("retry-after", secs.to_string()),
                    ("x-sentry-rate-limits", format!("{secs}::key")),
                ],
                body,
            )
                .into_response(),
            Self::Busy(_, secs) => {
                (status, [("retry-after", secs.to_string())], body).into_response()
            }
            _ => (status, body).into_response(),
        }
    }
}

impl AppError {
    /// A JSON body that could not be read: `413` naming `limit` (the route's), else `400`.
    pub fn from_json(rejection: axum::extract::rejection::JsonRejection, limit: usize) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::too_large(limit),
            _ => Self::BadRequest(rejection.body_text()),
        }
    }

    /// A body that could not be read: `413` naming `limit` (the route's), else `400`.
    pub fn from_body(rejection: axum::extract::rejection::BytesRejection, limit: usize) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::too_large(limit),
            _ => Self::BadRequest(rejection.body_text()),
        }
    }

    /// `413` saying the limit, in KiB or MiB.
    pub fn too_large(limit: usize) -> Self {
        let size = if limit >= 1 << 20 && limit.is_multiple_of(1 << 20) {
            format!("{} MiB", limit >> 20)
        } else {
            format!("{} KiB", limit.div_ceil(1024))
        };
        Self::PayloadTooLarge(format!(
            "the request body is over this route's {size} limit"
        ))
    }
}

impl From<crate::voice::VoiceError> for AppError {
    fn from(e: crate::voice::VoiceError) -> Self {
        use crate::voice::keys::KeyError;
        use crate::voice::VoiceError as V;
        match e {
            V::MissingKey => Self::Unauthorized(
                "missing Authorization: Bearer ek_… (mint one with POST /voice/session)",
            ),
            V::Key(KeyError::Unknown) => Self::Unauthorized("unknown or already used key"),
            V::Key(KeyError::Expired) => Self::Unauthorized("the key expired"),
            V::BadOffer(reason) => Self::BadRequest(reason),
            V::Full(_) => Self::Unavailable("the voice peer holds its maximum of sessions"),
            V::KeysFull(wait) => Self::Busy(
                "the voice key store is full of unspent keys",
                wait.as_secs_f64().ceil().max(1.0) as u64,
            ),
            V::RateLimited(secs) | V::TooManyCalls(_, secs) => Self::RateLimited(secs),
            V::ShuttingDown => Self::Unavailable("the server is shutting down"),
            e @ V::Socket(..) => Self::Internal(e.to_string()),
        }
    }
}
