//! The hub's routes: `GET /ws` (the WebSocket upgrade) and `POST /api/orders` (the demo feed).

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use vigil_protocol::orders::{NewOrder, Order};

use crate::access::{AllowedOrigin, ClientIp, OrderGate};
use crate::error::AppError;
use crate::hub::{self, Hub};
use crate::AppState;

/// `/ws` and `/api/orders`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/ws", get(ws_upgrade)).route(
        "/api/orders",
        post(create_order).layer(DefaultBodyLimit::max(hub::orders::MAX_ORDER_BYTES)),
    )
}

/// `GET /ws`: the hub (server-api.md, `/ws`); a page whose origin is off a set
/// `--allowed-origin` list gets `403`.
async fn ws_upgrade(
    _: AllowedOrigin,
    State(hub): State<Hub>,
    ClientIp(ip): ClientIp,
    upgrade: WebSocketUpgrade,
) -> Response {
    if hub.is_full() {
        return AppError::Unavailable("the hub holds its maximum of connections").into_response();
    }
    // Frames past the hub's 64 KiB limit still arrive (and get 1009); past 1 MiB the protocol
    // layer refuses them before buffering more.
    // Small buffers: tungstenite's defaults (128 KiB read + 128 KiB write per socket) would cost
    // an idle kiosk connection ~130 KiB; the hub's own queue already bounds what waits.
    upgrade
        .max_message_size(1 << 20)
        .max_frame_size(1 << 20)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            // Past --ws-max-connections-per-ip from this address: closed at once with 1013.
            hub::session::run_from(hub, Some(ip), sink, stream).await;
        })
}

/// `POST /api/orders`: store an order and broadcast `order:created` (the operator, or any page
/// under `--demo`, limited per IP).
async fn create_order(
    _: OrderGate,
    State(state): State<AppState>,
    body: Result<Json<NewOrder>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Order>), AppError> {
    let Json(new) = body.map_err(|e| AppError::from_json(e, hub::orders::MAX_ORDER_BYTES))?;
    let order = hub::orders::create(state.store(), state.hub(), new).await?;
    if let Some(cluster) = state.cluster() {
        cluster.publish(&order).await;
    }
    Ok((StatusCode::CREATED, Json(order)))
}
