//! The operator's dashboard (server-api.md, "Dashboard"): `/dashboard`, sign-in and sign-out.
//! The page and its scripts are files in `www/dashboard/`; they read the API with the session
//! cookie this module issues.
//!
//! Architecture Invariant: every response under `/dashboard` carries [`CSP`]: no inline script,
//! no framing; what a page sent reaches the dashboard only as JSON that its script renders as
//! text.

pub mod session;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::access;
use crate::error::AppError;
use crate::store::now_ms;
use crate::AppState;

/// The dashboard's Content-Security-Policy: scripts and styles from this origin only (the
/// runtime's wasm needs `'wasm-unsafe-eval'`), no inline script, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// `/dashboard`, `/dashboard/login`, `/dashboard/logout` and the page's files.
pub fn routes(state: &AppState) -> Router<AppState> {
    let files = ServeDir::new(state.www().join("dashboard"));
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/", get(page))
        .route("/dashboard/login", post(login))
        .route("/dashboard/logout", post(logout))
        .nest_service("/dashboard/static", files)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

/// `GET /dashboard`: the dashboard with a session, else the sign-in form.
async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    if access::has_session(&state, &headers).await? {
        Ok(file(&state, "index.html").await?.into_response())
    } else {
        Ok(sign_in(&state, None).await?.into_response())
    }
}

/// The sign-in form.
#[derive(Debug, serde::Deserialize)]
struct Credentials {
    token: String,
}

/// `POST /dashboard/login`: a right token sets the session cookie and goes to `/dashboard`; a
/// wrong one answers `401` with the form again.
async fn login(
    State(state): State<AppState>,
    form: Result<Form<Credentials>, axum::extract::rejection::FormRejection>,
) -> Result<Response, AppError> {
    let token = form.map(|Form(c)| c.token).unwrap_or_default();
    if !session::constant_time_eq(token.trim().as_bytes(), state.admin_token().as_bytes()) {
        let form = sign_in(&state, Some("That is not the admin token.")).await?;
        return Ok((StatusCode::UNAUTHORIZED, form).into_response());
    }
    let secret = session::new_secret();
    let now = now_ms();
    state
        .store()
        .create_session(
            &session::hash(&secret),
            &session::hash(state.admin_token()),
            now,
            now + session::TTL_SECS * 1000,
        )
        .await?;
    Ok((
        [(header::SET_COOKIE, session::set_cookie(&secret))],
        Redirect::to("/dashboard"),
    )
        .into_response())
}

/// `POST /dashboard/logout`: ends the session and clears the cookie.
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(secret) = access::session_secret(&headers) {
        state.store().delete_session(&session::hash(secret)).await?;
    }
    Ok((
        [(header::SET_COOKIE, session::clear_cookie())],
        Redirect::to("/dashboard"),
    )
        .into_response())
}

async fn file(state: &AppState, name: &str) -> Result<Html<String>, AppError> {
    let path = state.www().join("dashboard").join(name);
    tokio::fs::read_to_string(&path)
        .await
        .map(Html)
        .map_err(|e| AppError::Internal(format!("{}: {e}", path.display())))
}

/// The sign-in page, with a fixed message in its `<!--message-->` slot (never anything a
/// request sent).
async fn sign_in(
    state: &AppState,
    message: Option<&'static str>,
) -> Result<Html<String>, AppError> {
    let Html(page) = file(state, "login.html").await?;
    let slot = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{m}</p>"))
        .unwrap_or_default();
    Ok(Html(page.replace("<!--message-->", &slot)))
}
