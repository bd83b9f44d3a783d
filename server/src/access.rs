//! Who may read: the admin token as `Authorization: Bearer`, or a dashboard session cookie.
//! The one place that parses a bearer token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use crate::dashboard::session;
use crate::error::AppError;
use crate::AppState;

/// The token of an `Authorization: Bearer <token>` header, trimmed.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The dashboard session secret in the request's cookies.
pub fn session_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::from_cookie_header)
}

/// Whether the request holds a live dashboard session issued under the current admin token.
pub async fn has_session(state: &AppState, headers: &HeaderMap) -> Result<bool, AppError> {
    let Some(secret) = session_secret(headers) else {
        return Ok(false);
    };
    state
        .store()
        .session_valid(
            &session::hash(secret),
            &session::hash(state.admin_token()),
            crate::store::now_ms(),
        )
        .await
}

/// Proof that the request carries the admin token (`Authorization: Bearer`) or a dashboard
/// session cookie.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(given) = bearer(&parts.headers) {
            return if session::constant_time_eq(given.as_bytes(), state.admin_token().as_bytes()) {
                Ok(Admin)
            } else {
                Err(AppError::Unauthorized("the admin token is wrong"))
            };
        }
        if has_session(state, &parts.headers).await? {
            return Ok(Admin);
        }
        Err(AppError::Unauthorized(
            "this route needs Authorization: Bearer <admin token> or a dashboard session",
        ))
    }
}
