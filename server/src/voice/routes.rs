//! The voice routes (`/voice/*`): mint a key, post an offer, hang up; CORS only for the
//! `--allowed-origin` list.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::access::{ClientIp, MintGate};
use crate::error::AppError;
use crate::voice::{self, VoiceHub};
use crate::AppState;

/// `POST /voice/session`, `POST /voice/realtime`, `DELETE /voice/calls/{id}`.
pub fn routes(state: &AppState) -> Router<AppState> {
    // Voice is opt-in across origins: a page elsewhere may mint keys and open calls only when its
    // origin is on the `--allowed-origin` list (an empty list allows none: same origin only).
    let voice_cors = CorsLayer::new()
        .allow_methods([axum::http::Method::POST, axum::http::Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([header::LOCATION, header::RETRY_AFTER])
        .allow_origin(AllowOrigin::list(state.allowed_origins().to_vec()))
        .max_age(std::time::Duration::from_secs(3600));
    Router::new()
        .route("/voice/session", post(voice_session))
        .route(
            voice::REALTIME_PATH,
            post(voice_realtime).layer(DefaultBodyLimit::max(voice::MAX_OFFER_BYTES)),
        )
        .route("/voice/calls/{id}", axum::routing::delete(voice_hang_up))
        .layer(voice_cors)
}

/// `POST /voice/session`: a single-use key for one call (the operator, or any page under
/// `--demo`, limited per IP).
async fn voice_session(
    _: MintGate,
    State(voice): State<VoiceHub>,
) -> Result<Json<vigil_protocol::VoiceSession>, AppError> {
    Ok(Json(voice.mint().await?))
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
            crate::access::bearer(&headers),
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
