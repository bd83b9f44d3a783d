//! The cluster shell against a real PostgreSQL (`VIGIL_TEST_POSTGRES`, a server URL such as
//! `postgres://vigil@127.0.0.1:5432`; each test creates its own database on it).

use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes};
use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};

use crate::store::testdb::TestDatabase;
use crate::store::Engine;
use tokio_util::sync::CancellationToken;
use vigil_protocol::orders::{Order, OrderItem};

use super::*;
use crate::hub::{session, HubConfig};
use crate::voice::keys::KeyError;

/// A fresh database on the test server, migrated (voice keys, orders …), with a store on it.
async fn fresh_database() -> (TestDatabase, Store) {
    let db = TestDatabase::new(Engine::Postgres)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = db.store().await.unwrap();
    (db, store)
}

fn order(id: i64) -> Order {
    Order {
        id,
        items: vec![OrderItem {
            name: format!("tea {id}"),
            quantity: 2,
        }],
        created_at: "2026-12-01T21:00:00.000Z".into(),
    }
}

/// One instance: a cluster member with its own hub.
struct Instance {
    cluster: Cluster,
    hub: Hub,
    metrics: Metrics,
    stop: CancellationToken,
}

impl Instance {
    async fn start(url: &str, store: &Store) -> Self {
        let store = store.clone();
        let metrics = Metrics::new();
        let stop = CancellationToken::new();
        let hub = Hub::new(
            HubConfig::default(),
            store.clone(),
            metrics.clone(),
            stop.clone(),
        );
        let cluster = Cluster::new(url, metrics.clone()).unwrap();
        cluster
            .start(store, hub.clone(), stop.clone(), Duration::from_secs(5))
            .await;
        assert!(cluster.listening(), "listening within 5 s");
        Self {
            cluster,
            hub,
            metrics,
            stop,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.cluster.stop().await;
    }
}

type ToServer = mpsc::UnboundedSender<Result<Message, std::io::Error>>;

/// A session on `hub` subscribed to `orders`: the client's sending end (the session lives while
/// it is held) and the frames the session sends.
async fn subscriber(hub: &Hub) -> (ToServer, mpsc::UnboundedReceiver<Message>) {
    let (mut to_server, server_in) = mpsc::unbounded::<Result<Message, std::io::Error>>();
    let (server_out, mut from_server) = mpsc::unbounded();
    tokio::spawn(session::run(hub.clone(), server_out, server_in));
    let welcome = next_json(&mut from_server).await;
    assert_eq!(welcome["type"], "welcome");
    let subscribe = r#"{"type":"subscribe","payload":{"topics":["orders"]},"timestamp":0}"#;
    to_server
        .send(Ok(Message::Text(Utf8Bytes::from(subscribe))))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while hub.topic_size("orders") == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(hub.topic_size("orders"), 1);
    (to_server, from_server)
}

async fn next_json(rx: &mut mpsc::UnboundedReceiver<Message>) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(3), rx.next())
            .await
            .expect("a frame within 3 s")
            .expect("the session is open");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

async fn nothing_within(rx: &mut mpsc::UnboundedReceiver<Message>, wait: Duration) {
    let got = tokio::time::timeout(wait, async {
        loop {
            match rx.next().await {
                Some(Message::Text(t)) => return t,
                Some(_) => continue,
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    assert!(got.is_err(), "unexpected frame {got:?}");
}

fn counted(m: &Metrics, outcome: &str) -> u64 {
    m.cluster_orders.with_label_values(&[outcome]).get()
}

#[tokio::test]
async fn an_order_published_on_one_instance_reaches_the_others_once() {
    let (db, store) = fresh_database().await;
    let url = db.url.clone();
    let a = Instance::start(&url, &store).await;
    let b = Instance::start(&url, &store).await;
    let (_a, mut on_a) = subscriber(&a.hub).await;
    let (_b, mut on_b) = subscriber(&b.hub).await;

    // B stored order 1 and delivered it to its own subscribers (the handler does); the
    // listener brings it to A's, and B skips its own notice.
    b.cluster.publish(&order(1)).await;
    let got = next_json(&mut on_a).await;
    assert_eq!(got["type"], "order:created");
    assert_eq!(got["payload"]["id"], 1);
    assert_eq!(got["payload"]["items"][0]["name"], "tea 1");
    nothing_within(&mut on_b, Duration::from_millis(300)).await;
    assert_eq!(counted(&b.metrics, "own"), 1);
    assert_eq!(counted(&a.metrics, "delivered"), 1);

    // A stranger's NOTIFY on the channel is counted, and the listener goes on.
    let mut conn = PgConnection::connect(&url).await.unwrap();
    conn.execute("NOTIFY vigil_orders, 'not a notice'")
        .await
        .unwrap();
    a.cluster.publish(&order(2)).await;
    assert_eq!(next_json(&mut on_b).await["payload"]["id"], 2);
    assert_eq!(counted(&b.metrics, "malformed"), 1);
    nothing_within(&mut on_a, Duration::from_millis(200)).await;
    assert!(a.cluster.listening() && b.cluster.listening());
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_listener_cut_off_by_the_server_reconnects_and_hears_again() {
    let (db, store) = fresh_database().await;
    let url = db.url.clone();
    let a = Instance::start(&url, &store).await;
    let b = Instance::start(&url, &store).await;
    let (_a, mut on_a) = subscriber(&a.hub).await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    // End A's listening session from the server side, as a restart or a network cut would.
    let ended: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(ended.len(), 2, "both instances' listeners were found");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while a.metrics.cluster_reconnects.get() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(a.metrics.cluster_reconnects.get(), 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !(a.cluster.listening() && b.cluster.listening())
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(a.cluster.listening() && b.cluster.listening());
    assert_eq!(a.metrics.cluster_listening.get(), 1);
    // And it hears again.
    b.cluster.publish(&order(7)).await;
    assert_eq!(next_json(&mut on_a).await["payload"]["id"], 7);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_voice_key_minted_on_one_instance_works_once_on_any() {
    let (db, _store) = fresh_database().await;
    let url = db.url.clone();
    let a = Cluster::new(&url, Metrics::new()).unwrap();
    let b = Cluster::new(&url, Metrics::new()).unwrap();
    let ttl = Duration::from_secs(60);
    let before = store::now_ms();
    let expires = a.mint_key("ek_one", ttl, 8).await.unwrap().unwrap();
    assert!(expires >= before + 60_000 && expires <= store::now_ms() + 60_000);
    assert_eq!(a.key_count().await.unwrap(), 1);
    // Only the hash is stored.
    let stored: (String,) = sqlx::query_as("SELECT key_hash FROM voice_keys")
        .fetch_one(&a.inner.pool)
        .await
        .unwrap();
    assert_eq!(stored.0, keys::hash("ek_one"));
    assert_eq!(b.redeem_key("ek_one").await.unwrap(), Ok(()));
    assert_eq!(
        b.redeem_key("ek_one").await.unwrap(),
        Err(KeyError::Unknown)
    );
    assert_eq!(
        a.redeem_key("ek_one").await.unwrap(),
        Err(KeyError::Unknown)
    );
    assert_eq!(
        a.redeem_key("ek_never").await.unwrap(),
        Err(KeyError::Unknown)
    );

    // Presented to both instances at once, 20 times: exactly one wins each time.
    for i in 0..20 {
        let key = format!("ek_race_{i}");
        a.mint_key(&key, ttl, 8).await.unwrap().unwrap();
        let (x, y) = tokio::join!(a.redeem_key(&key), b.redeem_key(&key));
        let wins = [x.unwrap(), y.unwrap()]
            .iter()
            .filter(|r| r.is_ok())
            .count();
        assert_eq!(wins, 1, "round {i}");
    }

    // An expired key is refused as expired (and counted), then unknown.
    a.mint_key("ek_short", Duration::from_millis(1), 8)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        b.redeem_key("ek_short").await.unwrap(),
        Err(KeyError::Expired)
    );
    assert_eq!(
        b.inner
            .metrics
            .voice_keys_dropped
            .with_label_values(&["expired"])
            .get(),
        1
    );
    assert_eq!(
        b.redeem_key("ek_short").await.unwrap(),
        Err(KeyError::Unknown)
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_cap_holds_across_instances_and_expired_keys_make_room() {
    let (db, _store) = fresh_database().await;
    let url = db.url.clone();
    let a = Cluster::new(&url, Metrics::new()).unwrap();
    let b = Cluster::new(&url, Metrics::new()).unwrap();
    let ttl = Duration::from_secs(60);
    // 40 mints from two instances at once into a cap of 10: exactly 10 stored.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let key = format!("ek_cap_{i}");
            let minted = c.mint_key(&key, ttl, 10).await.unwrap();
            (key, minted)
        }));
    }
    let mut stored = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (key, Ok(_)) => stored.push(key),
            (_, Err(full)) => assert!(full.retry_after <= ttl && full.retry_after > ttl / 2),
        }
    }
    assert_eq!(stored.len(), 10);
    assert_eq!(a.key_count().await.unwrap(), 10);
    // A spent key frees its place at once. (Which ten were stored depends on the race: redeem
    // one of them, not a fixed one.)
    assert_eq!(b.redeem_key(&stored[0]).await.unwrap(), Ok(()));
    assert!(a.mint_key("ek_after", ttl, 10).await.unwrap().is_ok());
    assert!(a.mint_key("ek_over", ttl, 10).await.unwrap().is_err());
    // Keys that expired are purged to make room (counted), live ones never pushed out.
    let c = Cluster::new(&url, Metrics::new()).unwrap();
    sqlx::query("UPDATE voice_keys SET expires_at = 0 WHERE key_hash <> $1")
        .bind(keys::hash("ek_after"))
        .execute(&c.inner.pool)
        .await
        .unwrap();
    assert!(c.mint_key("ek_new", ttl, 10).await.unwrap().is_ok());
    assert_eq!(
        c.inner
            .metrics
            .voice_keys_dropped
            .with_label_values(&["expired"])
            .get(),
        9
    );
    assert_eq!(c.key_count().await.unwrap(), 2);
    assert_eq!(a.redeem_key("ek_after").await.unwrap(), Ok(()));
    for x in [a, b, c] {
        x.stop().await;
    }
}

#[tokio::test]
async fn orders_missed_while_the_listener_was_down_are_caught_up_once() {
    let (db, store) = fresh_database().await;
    let a = Instance::start(&db.url, &store).await;
    let b = Instance::start(&db.url, &store).await;
    let (_a, mut on_a) = subscriber(&a.hub).await;
    let items = |name: &str| {
        vec![OrderItem {
            name: name.into(),
            quantity: 1,
        }]
    };
    // A has seen order 1.
    let (first, _) = store.insert_order(&items("first"), 1000).await.unwrap();
    b.cluster.publish(&first).await;
    assert_eq!(next_json(&mut on_a).await["payload"]["id"], first.id);
    // Order 2 is stored but its notice never reaches A (as when A's listener is down when it is
    // sent); then A's listener loses its connection and comes back.
    let (second, _) = store.insert_order(&items("second"), 1000).await.unwrap();
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let ended: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(listener_name(a.cluster.instance()))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(ended, [(true,)]);
    let got = next_json(&mut on_a).await;
    assert_eq!(got["type"], "order:created");
    assert_eq!(got["payload"]["id"], second.id);
    assert_eq!(got["payload"]["items"][0]["name"], "second");
    assert_eq!(counted(&a.metrics, "caught_up"), 1);
    // Its notice arriving late now changes nothing; B's listener was never cut.
    b.cluster.publish(&second).await;
    nothing_within(&mut on_a, Duration::from_millis(300)).await;
    assert_eq!(counted(&a.metrics, "duplicate"), 1);
    assert_eq!(b.metrics.cluster_reconnects.get(), 0);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn an_order_too_large_for_a_notice_is_read_from_the_table() {
    let (db, store) = fresh_database().await;
    let a = Instance::start(&db.url, &store).await;
    let b = Instance::start(&db.url, &store).await;
    let (_a, mut on_a) = subscriber(&a.hub).await;
    let items: Vec<OrderItem> = (0..100)
        .map(|i| OrderItem {
            name: format!("{i} {}", "ü".repeat(150)),
            quantity: 1,
        })
        .collect();
    let (big, _) = store.insert_order(&items, 1000).await.unwrap();
    assert!(serde_json::to_string(&big).unwrap().len() > notice::MAX_PAYLOAD);
    b.cluster.publish(&big).await;
    let got = next_json(&mut on_a).await;
    let back: Order = serde_json::from_value(got["payload"].clone()).unwrap();
    assert_eq!(back, big);
    assert_eq!(counted(&a.metrics, "delivered"), 1);
    a.stop().await;
    b.stop().await;
}
