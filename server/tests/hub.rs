//! `/ws` with a real client (`tokio-tungstenite`): every exit path leaves no session.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vigil_server::hub::HubConfig;

use crate::util::LiveServer;

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &LiveServer) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .unwrap();
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    ws
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(3), ws.next())
            .await
            .expect("a message within 3 s")
            .expect("the socket is open")
            .expect("no protocol error");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// How many sessions ended for `reason` (`vigil_ws_sessions_ended_total`).
fn ended(server: &LiveServer, reason: &str) -> u64 {
    server
        .state
        .metrics()
        .ws_sessions_ended
        .with_label_values(&[reason])
        .get()
}

/// Reads until the server's close frame and returns its code.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return None,
            Err(_) => panic!("no close within 3 s"),
        }
    }
}

#[tokio::test]
async fn client_close_leaves_no_session() {
    let server = LiveServer::start(HubConfig::default()).await;
    let mut ws = connect(&server).await;
    server.wait_sessions(1).await;
    ws.close(None).await.unwrap();
    server.wait_sessions(0).await;
    assert_eq!(ended(&server, "client_closed"), 1);
    server.stop().await;
}

#[tokio::test]
async fn an_abrupt_drop_leaves_no_session() {
    let server = LiveServer::start(HubConfig::default()).await;
    let ws = connect(&server).await;
    server.wait_sessions(1).await;
    drop(ws); // TCP closed without a close frame
    server.wait_sessions(0).await;
    assert_eq!(ended(&server, "dropped") + ended(&server, "error"), 1);
}

#[tokio::test]
async fn a_protocol_error_leaves_no_session() {
    let server = LiveServer::start(HubConfig::default()).await;
    let mut ws = connect(&server).await;
    server.wait_sessions(1).await;
    // An unmasked frame with a reserved opcode: the server's protocol layer errors.
    if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
        tcp.write_all(&[0x83, 0x00]).await.unwrap();
    }
    server.wait_sessions(0).await;
    assert_eq!(ended(&server, "error"), 1);
}

#[tokio::test]
async fn an_oversize_frame_is_closed_with_1009() {
    let server = LiveServer::start(HubConfig::default()).await;
    let mut ws = connect(&server).await;
    ws.send(Message::Text("x".repeat(64 * 1024 + 1).into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1009));
    server.wait_sessions(0).await;
    assert_eq!(ended(&server, "frame_too_large"), 1);
}

#[tokio::test]
async fn a_flood_is_closed_with_1008() {
    let server = LiveServer::start(HubConfig::default()).await;
    let mut ws = connect(&server).await;
    for _ in 0..150 {
        if ws
            .send(Message::Text(
                r#"{"type":"pong","payload":null,"timestamp":0}"#.into(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(close_code(&mut ws).await, Some(1008));
    server.wait_sessions(0).await;
    assert_eq!(ended(&server, "too_many_messages"), 1);
}

/// A thousand pings written at once: the close frame must still reach the client (the server
/// keeps reading after it, so its socket is not reset under the client's unread frames).
#[tokio::test]
async fn a_thousand_pings_at_once_still_read_1008_and_a_big_frame_among_many_1009() {
    let server = LiveServer::start(HubConfig::default()).await;
    for round in 0..3 {
        let mut ws = connect(&server).await;
        for _ in 0..1000 {
            ws.feed(Message::Text(
                r#"{"type":"ping","payload":{"timestamp":1},"timestamp":0}"#.into(),
            ))
            .await
            .unwrap();
        }
        let _ = ws.flush().await;
        assert_eq!(close_code(&mut ws).await, Some(1008), "round {round}");
    }
    let mut ws = connect(&server).await;
    ws.feed(Message::Text("x".repeat(64 * 1024 + 1).into()))
        .await
        .unwrap();
    for _ in 0..200 {
        ws.feed(Message::Text("y".repeat(1024).into()))
            .await
            .unwrap();
    }
    let _ = ws.flush().await;
    assert_eq!(close_code(&mut ws).await, Some(1009));
    server.wait_sessions(0).await;
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_closed_after_two_heartbeats() {
    let server = LiveServer::start(HubConfig {
        heartbeat: Duration::from_millis(100),
        ..HubConfig::default()
    })
    .await;
    let ws = connect(&server).await;
    server.wait_sessions(1).await;
    // The client never reads, so it never answers the server's Ping frames.
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.wait_sessions(0).await;
    assert_eq!(ended(&server, "no_heartbeat"), 1);
    drop(ws);
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1001() {
    let server = LiveServer::start(HubConfig::default()).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    server.wait_sessions(2).await;
    let state = server.state.clone();
    let stopping = tokio::spawn(server.stop());
    assert_eq!(close_code(&mut a).await, Some(1001));
    assert_eq!(close_code(&mut b).await, Some(1001));
    stopping.await.unwrap();
    assert_eq!(state.hub().session_count(), 0);
    assert_eq!(state.metrics().ws_connections.get(), 0);
    let shut = state
        .metrics()
        .ws_sessions_ended
        .with_label_values(&["server_shutdown"])
        .get();
    assert_eq!(shut, 2);
}

#[tokio::test]
async fn a_thousand_connect_disconnect_cycles_leave_the_map_empty() {
    let server = LiveServer::start(HubConfig::default()).await;
    for i in 0..1000 {
        let mut ws = connect(&server).await;
        if i % 2 == 0 {
            ws.send(Message::Text(
                r#"{"type":"subscribe","payload":{"topics":["orders"]},"timestamp":0}"#.into(),
            ))
            .await
            .unwrap();
            ws.close(None).await.unwrap();
        } else {
            drop(ws);
        }
    }
    server.wait_sessions(0).await;
    assert_eq!(server.state.hub().topic_count(), 0);
    let metrics = server.state.metrics().render();
    assert!(metrics.contains("vigil_ws_connections 0"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn a_posted_order_reaches_subscribers() {
    let server = LiveServer::start(HubConfig::default()).await;
    let mut ws = connect(&server).await;
    ws.send(Message::Text(
        r#"{"type":"subscribe","payload":{"topics":["orders"]},"timestamp":0}"#.into(),
    ))
    .await
    .unwrap();
    ws.send(Message::Text(
        r#"{"type":"ping","payload":{"timestamp":1},"timestamp":0}"#.into(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "pong");

    let client = reqwest::Client::new();
    let res = client
        .post(format!("http://{}/api/orders", server.addr))
        .bearer_auth(crate::util::ADMIN)
        .json(&serde_json::json!({ "items": [{ "name": "espresso", "quantity": 2 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let stored: Value = res.json().await.unwrap();
    let got = next_json(&mut ws).await;
    assert_eq!(got["type"], "order:created");
    assert_eq!(got["payload"], stored);

    let bad = client
        .post(format!("http://{}/api/orders", server.addr))
        .bearer_auth(crate::util::ADMIN)
        .json(&serde_json::json!({ "items": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().starts_with("items:"));
    let not_json = client
        .post(format!("http://{}/api/orders", server.addr))
        .bearer_auth(crate::util::ADMIN)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);

    ws.send(Message::Text(
        r#"{"type":"orders:sync","payload":{},"timestamp":0}"#.into(),
    ))
    .await
    .unwrap();
    let snap = next_json(&mut ws).await;
    assert_eq!(snap["payload"]["orders"][0], stored);
}

#[tokio::test]
async fn a_slow_reader_gets_1013_and_is_counted_as_slow_reader() {
    let server = LiveServer::start(HubConfig {
        outgoing_queue: 4,
        ..HubConfig::default()
    })
    .await;
    let mut ws = connect(&server).await;
    ws.send(Message::Text(
        r#"{"type":"subscribe","payload":{"topics":["orders"]},"timestamp":0}"#.into(),
    ))
    .await
    .unwrap();
    ws.send(Message::Text(
        r#"{"type":"ping","payload":{"timestamp":1},"timestamp":0}"#.into(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    // The client stops reading: the socket's buffers fill, the server's send blocks, its queue
    // overflows.
    let big = "x".repeat(60_000);
    let started = std::time::Instant::now();
    while server.state.hub().session_count() > 0 {
        server.state.hub().broadcast(
            "orders",
            "order:created",
            &serde_json::json!({ "pad": big }),
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the slow reader was never closed"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Reading again, it finds the close frame after what was queued.
    assert_eq!(close_code(&mut ws).await, Some(1013));
    server.wait_sessions(0).await;
    assert_eq!(ended(&server, "slow_reader"), 1);
    assert_eq!(ended(&server, "dropped"), 0);
    server.stop().await;
}

/// `GET /ws` with `Origin: origin` (when given); the HTTP status of the answer (101 when it
/// upgraded).
async fn upgrade_status(server: &LiveServer, origin: Option<&'static str>) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error;
    let mut request = server.ws_url().into_client_request().unwrap();
    if let Some(o) = origin {
        request.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, response)) => {
            drop(ws);
            response.status().as_u16()
        }
        Err(Error::Http(response)) => {
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("error"), "{body}");
            response.status().as_u16()
        }
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn an_origin_off_the_allowed_list_gets_403_not_a_websocket() {
    let server = LiveServer::start_with(
        HubConfig::default(),
        vigil_server::voice::VoiceConfig::default(),
        |c| c.allowed_origins = vec!["https://good.example".into()],
    )
    .await;
    assert_eq!(
        upgrade_status(&server, Some("https://evil.example")).await,
        403
    );
    assert_eq!(
        upgrade_status(&server, Some("https://good.example")).await,
        101
    );
    // Not from a browser page (no Origin): a till, a test, a server.
    assert_eq!(upgrade_status(&server, None).await, 101);
    server.wait_sessions(0).await;
    server.stop().await;

    // Without a list, any origin may open the hub (the development setup).
    let server = LiveServer::start(HubConfig::default()).await;
    assert_eq!(
        upgrade_status(&server, Some("https://evil.example")).await,
        101
    );
    server.stop().await;
}

#[tokio::test]
async fn connections_past_the_per_ip_cap_are_closed_with_1013() {
    let server = LiveServer::start(HubConfig {
        max_sessions_per_ip: 2,
        ..HubConfig::default()
    })
    .await;
    let mut first = connect(&server).await;
    let _second = connect(&server).await;
    server.wait_sessions(2).await;
    let (mut third, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .unwrap();
    assert_eq!(
        close_code(&mut third).await,
        Some(1013),
        "no welcome, a close"
    );
    assert_eq!(ended(&server, "hub_full"), 1);
    // A place freed is a place taken again.
    first.close(None).await.unwrap();
    server.wait_sessions(1).await;
    let _again = connect(&server).await;
    server.wait_sessions(2).await;
    server.stop().await;
}
