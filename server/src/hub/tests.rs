//! The hub's session logic driven over channels: no sockets, no sleeps longer than a heartbeat.

use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes};
use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{session, Hub, HubConfig};
use crate::metrics::Metrics;
use crate::store::Store;

struct Client {
    to_server: mpsc::UnboundedSender<Result<Message, std::io::Error>>,
    from_server: mpsc::UnboundedReceiver<Message>,
    task: JoinHandle<Option<u16>>,
}

impl Client {
    async fn send(&mut self, text: &str) {
        self.to_server
            .send(Ok(Message::Text(Utf8Bytes::from(text.to_owned()))))
            .await
            .unwrap();
    }

    /// The next text frame as JSON (skipping Ping frames).
    async fn next_json(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(2), self.from_server.next())
                .await
                .expect("a frame within 2 s")
                .expect("the session is still sending");
            match m {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Ping(_) => continue,
                other => panic!("expected text, got {other:?}"),
            }
        }
    }

    /// Waits for the session to end and returns the close code it sent.
    async fn ended(self) -> Option<u16> {
        tokio::time::timeout(Duration::from_secs(3), self.task)
            .await
            .expect("the session ends")
            .unwrap()
    }
}

async fn hub(config: HubConfig) -> (Hub, CancellationToken, Metrics) {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let metrics = Metrics::new();
    let shutdown = CancellationToken::new();
    (
        Hub::new(config, store, metrics.clone(), shutdown.clone()),
        shutdown,
        metrics,
    )
}

async fn connect(hub: &Hub) -> Client {
    let (to_server, server_in) = mpsc::unbounded();
    let (server_out, from_server) = mpsc::unbounded();
    let task = tokio::spawn(session::run(hub.clone(), server_out, server_in));
    let mut c = Client {
        to_server,
        from_server,
        task,
    };
    let welcome = c.next_json().await;
    assert_eq!(welcome["type"], "welcome");
    assert!(welcome["payload"]["sessionId"].is_string());
    c
}

#[tokio::test]
async fn ping_is_answered_with_the_same_timestamp() {
    let (hub, _, metrics) = hub(HubConfig::default()).await;
    let mut c = connect(&hub).await;
    assert_eq!(metrics.ws_connections.get(), 1);
    c.send(r#"{"type":"ping","payload":{"timestamp":1234.5},"timestamp":1}"#)
        .await;
    let pong = c.next_json().await;
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["payload"]["timestamp"], 1234.5);
    assert!(pong["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    drop(c.to_server); // the client goes away
    assert_eq!(c.task.await.unwrap(), None);
    assert_eq!(hub.session_count(), 0);
    assert_eq!(metrics.ws_connections.get(), 0);
}

#[tokio::test]
async fn topics_route_broadcasts_and_leave_with_the_session() {
    let (hub, _, _) = hub(HubConfig::default()).await;
    let mut a = connect(&hub).await;
    let mut b = connect(&hub).await;
    a.send(r#"{"type":"subscribe","payload":{"topics":["orders"]},"timestamp":0}"#)
        .await;
    b.send(r#"{"type":"subscribe","payload":{"topics":["orders","other"]},"timestamp":0}"#)
        .await;
    // A round trip makes sure both subscriptions were handled.
    for c in [&mut a, &mut b] {
        c.send(r#"{"type":"ping","payload":{"timestamp":1},"timestamp":0}"#)
            .await;
        c.next_json().await;
    }
    assert_eq!(hub.topic_size("orders"), 2);
    assert_eq!(
        hub.broadcast("orders", "order:created", &json!({"id": 1})),
        2
    );
    assert_eq!(a.next_json().await["payload"]["id"], 1);
    assert_eq!(b.next_json().await["type"], "order:created");

    a.send(r#"{"type":"unsubscribe","payload":{"topics":["orders"]},"timestamp":0}"#)
        .await;
    a.send(r#"{"type":"ping","payload":{"timestamp":2},"timestamp":0}"#)
        .await;
    assert_eq!(a.next_json().await["type"], "pong");
    assert_eq!(
        hub.broadcast("orders", "order:created", &json!({"id": 2})),
        1
    );

    drop(b.to_server);
    b.task.await.unwrap();
    assert_eq!(hub.topic_size("orders"), 0);
    assert_eq!(hub.topic_count(), 0, "empty topics are removed");
    drop(a.to_server);
    a.task.await.unwrap();
    assert_eq!(hub.session_count(), 0);
}

#[tokio::test]
async fn malformed_frames_get_an_error_and_the_connection_stays() {
    let (hub, _, _) = hub(HubConfig::default()).await;
    let mut c = connect(&hub).await;
    for (frame, code) in [
        ("not json", "bad_frame"),
        (
            r#"{"type":"subscribe","payload":{"topics":"orders"},"timestamp":0}"#,
            "bad_payload",
        ),
        (
            r#"{"type":"subscribe","payload":{"topics":[""]},"timestamp":0}"#,
            "bad_topics",
        ),
        (
            r#"{"type":"launch","payload":null,"timestamp":0}"#,
            "unknown_type",
        ),
    ] {
        c.send(frame).await;
        let e = c.next_json().await;
        assert_eq!(e["type"], "error", "{frame}");
        assert_eq!(e["payload"]["code"], code, "{frame}");
        assert!(e["payload"]["message"].as_str().unwrap().len() > 3);
    }
    c.to_server
        .send(Ok(Message::Binary(vec![1, 2, 3].into())))
        .await
        .unwrap();
    assert_eq!(c.next_json().await["payload"]["code"], "binary_frame");
    c.send(r#"{"type":"ping","payload":{"timestamp":7},"timestamp":0}"#)
        .await;
    assert_eq!(c.next_json().await["payload"]["timestamp"], 7);
    assert_eq!(hub.session_count(), 1);
}

#[tokio::test]
async fn topic_count_per_session_is_bounded() {
    let (hub, _, _) = hub(HubConfig {
        max_topics_per_session: 2,
        ..HubConfig::default()
    })
    .await;
    let mut c = connect(&hub).await;
    c.send(r#"{"type":"subscribe","payload":{"topics":["a","b","c"]},"timestamp":0}"#)
        .await;
    let e = c.next_json().await;
    assert_eq!(e["payload"]["code"], "bad_topics");
    assert_eq!(hub.topic_count(), 0);
}

#[tokio::test]
async fn oversize_frame_closes_with_1009() {
    let (hub, _, metrics) = hub(HubConfig::default()).await;
    let mut c = connect(&hub).await;
    c.send(&"x".repeat(64 * 1024 + 1)).await;
    assert_eq!(c.ended().await, Some(1009));
    assert_eq!(hub.session_count(), 0);
    assert_eq!(metrics.ws_connections.get(), 0);
}

#[tokio::test]
async fn a_flood_closes_with_1008() {
    let (hub, _, _) = hub(HubConfig::default()).await;
    let mut c = connect(&hub).await;
    for _ in 0..150 {
        let _ = c
            .to_server
            .send(Ok(Message::Text(Utf8Bytes::from_static(
                r#"{"type":"pong","payload":null,"timestamp":0}"#,
            ))))
            .await;
    }
    assert_eq!(c.ended().await, Some(1008));
    assert_eq!(hub.session_count(), 0);
}

#[tokio::test]
async fn shutdown_closes_every_session_with_1001() {
    let (hub, shutdown, metrics) = hub(HubConfig::default()).await;
    let a = connect(&hub).await;
    let b = connect(&hub).await;
    assert_eq!(metrics.ws_connections.get(), 2);
    shutdown.cancel();
    assert_eq!(a.ended().await, Some(1001));
    assert_eq!(b.ended().await, Some(1001));
    assert_eq!(metrics.ws_connections.get(), 0);
}

#[tokio::test]
async fn a_silent_peer_is_closed_after_two_intervals() {
    let (hub, _, _) = hub(HubConfig {
        heartbeat: Duration::from_millis(40),
        ..HubConfig::default()
    })
    .await;
    let mut c = connect(&hub).await;
    // The server pings; the channel "client" never answers.
    let ping = tokio::time::timeout(Duration::from_secs(1), c.from_server.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ping, Message::Ping(_)));
    assert_eq!(c.ended().await, Some(1001));
    assert_eq!(hub.session_count(), 0);
}

#[tokio::test]
async fn the_reaper_closes_sessions_stuck_on_a_dead_peer() {
    let (hub, shutdown, _) = hub(HubConfig {
        heartbeat: Duration::from_millis(30),
        ..HubConfig::default()
    })
    .await;
    // A sink that never accepts anything after the welcome: the session task is stuck sending.
    let (to_server, server_in) = mpsc::unbounded::<Result<Message, std::io::Error>>();
    let (server_out, _from_server) = mpsc::channel::<Message>(0);
    let task = tokio::spawn(session::run(hub.clone(), server_out, server_in));
    hub.start_reaper();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(hub.session_count(), 1);
    // Reaped: the task ends (no close frame can reach a peer that reads nothing).
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("reaped")
        .unwrap();
    assert_eq!(hub.session_count(), 0);
    drop(to_server);
    shutdown.cancel();
    hub.stop_reaper().await;
}

#[tokio::test]
async fn a_slow_reader_is_closed_instead_of_growing_memory() {
    let (hub, _, _) = hub(HubConfig {
        outgoing_queue: 4,
        ..HubConfig::default()
    })
    .await;
    let mut c = connect(&hub).await;
    c.send(r#"{"type":"subscribe","payload":{"topics":["orders"]},"timestamp":0}"#)
        .await;
    c.send(r#"{"type":"ping","payload":{"timestamp":1},"timestamp":0}"#)
        .await;
    c.next_json().await;
    // Stop reading: the unbounded test channel would hold everything, so make the session's
    // queue fill faster than it drains by broadcasting in one go.
    let mut refused = false;
    for i in 0..10_000 {
        hub.broadcast("orders", "order:created", &json!({ "id": i }));
        if hub.session_count() == 0 || c.task.is_finished() {
            refused = true;
            break;
        }
    }
    let code = c.ended().await;
    assert!(refused || code == Some(1013), "closed with {code:?}");
    assert_eq!(code, Some(1013));
    assert_eq!(hub.session_count(), 0);
}

#[tokio::test]
async fn a_slow_reader_stuck_writing_is_counted_as_slow_reader_with_1013() {
    // A socket that stopped taking bytes: the session's send is pending when its queue overflows.
    let (hub, _, metrics) = hub(HubConfig {
        outgoing_queue: 4,
        ..HubConfig::default()
    })
    .await;
    let (mut to_server, server_in) = mpsc::unbounded::<Result<Message, std::io::Error>>();
    let (server_out, mut from_server) = mpsc::channel::<Message>(0);
    let task = tokio::spawn(session::run(hub.clone(), server_out, server_in));
    let welcome = from_server.next().await.unwrap();
    assert!(matches!(welcome, Message::Text(_)));
    to_server
        .send(Ok(Message::Text(Utf8Bytes::from_static(
            r#"{"type":"subscribe","payload":{"topics":["orders"]},"timestamp":0}"#,
        ))))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while hub.topic_size("orders") == 0 {
        assert!(std::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The reader reads nothing more; the session blocks on its socket, then its queue fills.
    for i in 0..100 {
        hub.broadcast("orders", "order:created", &json!({ "id": i }));
        if task.is_finished() || hub.session_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let code = tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .expect("the session ends")
        .unwrap();
    assert_eq!(code, Some(1013));
    assert_eq!(hub.session_count(), 0);
    let reason = |r: &str| metrics.ws_sessions_ended.with_label_values(&[r]).get();
    assert_eq!(reason("slow_reader"), 1);
    assert_eq!(reason("dropped"), 0);
    drop(from_server);
}

#[tokio::test]
async fn the_hub_refuses_sessions_beyond_its_maximum() {
    let (hub, _, _) = hub(HubConfig {
        max_sessions: 1,
        ..HubConfig::default()
    })
    .await;
    let _a = connect(&hub).await;
    assert!(hub.is_full());
    let (_to_server, server_in) = mpsc::unbounded::<Result<Message, std::io::Error>>();
    let (server_out, _from) = mpsc::unbounded();
    assert_eq!(
        session::run(hub.clone(), server_out, server_in).await,
        Some(1013)
    );
    assert_eq!(hub.session_count(), 1);
}

#[tokio::test]
async fn orders_sync_answers_a_snapshot() {
    let (hub, _, _) = hub(HubConfig::default()).await;
    let order = vigil_protocol::orders::NewOrder {
        items: vec![vigil_protocol::orders::OrderItem {
            name: "tea".into(),
            quantity: 2,
        }],
    };
    super::orders::create(&hub.inner.store, &hub, order)
        .await
        .unwrap();
    let mut c = connect(&hub).await;
    c.send(r#"{"type":"orders:sync","payload":{"full":true},"timestamp":0}"#)
        .await;
    let snap = c.next_json().await;
    assert_eq!(snap["type"], "orders:snapshot");
    assert_eq!(snap["payload"]["orders"][0]["items"][0]["name"], "tea");
}
