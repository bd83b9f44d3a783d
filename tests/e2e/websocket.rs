//! `WebSocketService` against the real hub, in a real browser: orders arrive, a crashed server is
//! survived (queued messages arrive after it is back), and connect/dispose cycles leak nothing.

use std::time::Duration;

use serde_json::Value;
use vigil_e2e::{require_pkg, Browser, Result, Server};

const WAIT: Duration = Duration::from_secs(15);

async fn post_order(server: &Server, name: &str) -> Result<Value> {
    // The page is the client under test; the order comes from outside, as from a till.
    let body = format!(r#"{{"items":[{{"name":"{name}","quantity":1}}]}}"#);
    let (status, response) = server.request("POST", "/api/orders", Some(&body)).await?;
    assert_eq!(status, 201, "{response}");
    Ok(serde_json::from_str(&response)?)
}

#[tokio::test]
async fn orders_arrive_and_a_crashed_server_is_survived() -> Result<()> {
    require_pkg();
    let mut server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    page.load_package().await?;
    page.eval(
        "(async () => {
            const m = vigil;
            const log = window.log = { states: [], orders: [], pongs: [] };
            const ws = window.ws = new m.WebSocketService({
                url: '/ws',
                heartbeatIntervalMs: 1000,
                heartbeatTimeoutMs: 1000,
                reconnect: { initialDelayMs: 100, maxDelayMs: 400 },
            });
            ws.onState((state) => {
                log.states.push(state);
                if (state === 'open') ws.send('subscribe', { topics: ['orders'] });
            });
            ws.subscribe('order:created', (order) => log.orders.push(order));
            ws.subscribe('pong', (p) => log.pongs.push(p.timestamp));
            await ws.connect();
            ws.send('ping', { timestamp: 0 });
            return true;
        })()",
    )
    .await?;
    // A pong after our subscribe means the hub has handled the subscribe.
    page.wait_for("log.pongs.includes(0)", WAIT).await?;
    let order = post_order(&server, "espresso").await?;
    page.wait_for("log.orders.length === 1", WAIT).await?;
    assert_eq!(page.eval("log.orders[0]").await?, order);

    // The server crashes: the page notices and keeps trying.
    server.kill().await?;
    page.wait_for("ws.state === 'reconnecting'", WAIT).await?;
    page.eval("for (let i = 1; i <= 5; i++) ws.send('ping', { timestamp: i }); true")
        .await?;
    let stats = page.eval("ws.stats()").await?;
    assert!(stats["queued"].as_u64() >= Some(5), "{stats}");

    // It comes back on the same port: the page reopens by itself and the queue drains in order.
    server.start_again().await?;
    page.wait_for("ws.state === 'open'", WAIT).await?;
    page.wait_for("[1,2,3,4,5].every(t => log.pongs.includes(t))", WAIT)
        .await?;
    let pongs = page.eval("log.pongs").await?;
    assert_eq!(
        pongs,
        serde_json::json!([0, 1, 2, 3, 4, 5]),
        "in order, once each"
    );

    // Subscriptions work again (the page re-joined its topic on open).
    page.eval("ws.send('ping', { timestamp: 99 }); true")
        .await?;
    page.wait_for("log.pongs.includes(99)", WAIT).await?;
    let second = post_order(&server, "cortado").await?;
    page.wait_for("log.orders.length === 2", WAIT).await?;
    assert_eq!(page.eval("log.orders[1]").await?, second);
    let states = page.eval("log.states").await?;
    assert_eq!(
        states,
        serde_json::json!(["connecting", "open", "reconnecting", "open"]),
        "{states}"
    );
    let stats = page.eval("ws.stats()").await?;
    assert!(stats["lastRttMs"].as_f64().is_some(), "{stats}");
    assert_eq!(stats["dropped"], 0, "{stats}");
    Ok(())
}

#[tokio::test]
async fn two_hundred_connect_dispose_cycles_leak_nothing() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    let baseline = page.dom_counters().await?;
    page.load_package().await?;
    page.eval(
        "(async () => {
                const m = vigil;
                for (let i = 0; i < 200; i++) {
                    const ws = new m.WebSocketService({ url: '/ws' });
                    ws.subscribe('*', () => {});
                    await ws.connect();
                    ws.send('ping', { timestamp: i });
                    if (i % 2) ws.dispose(); else m.disposeAll();
                }
                return true;
            })()",
    )
    .await?;
    page.assert_no_resources().await?;
    let after = page.dom_counters().await?;
    assert_eq!(
        after.js_event_listeners, baseline.js_event_listeners,
        "baseline {baseline:?}, after {after:?}"
    );
    // The hub saw every session end (they end asynchronously after the browser closes them).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut metrics = server.get("/metrics").await?;
    while !metrics.contains("vigil_ws_connections 0") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        metrics = server.get("/metrics").await?;
    }
    assert!(metrics.contains("vigil_ws_connections 0"), "{metrics}");
    Ok(())
}

/// A scripted peer: the first connection gets a non-JSON frame and a `tick`, then silence (no
/// pong: a dead socket the browser never reports); later ones answer pings, and close when asked.
async fn scripted_server() -> Result<String> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((tcp, _)) = listener.accept().await {
            n += 1;
            let first = n == 1;
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                if first {
                    let _ = ws.send(Message::Text("not json".into())).await;
                    let _ = ws
                        .send(Message::Text(
                            r#"{"type":"tick","payload":{"n":1},"timestamp":0}"#.into(),
                        ))
                        .await;
                    while let Some(Ok(_)) = ws.next().await {} // read, never answer
                    return;
                }
                while let Some(Ok(m)) = ws.next().await {
                    let Message::Text(t) = m else { continue };
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                    match v["type"].as_str() {
                        Some("ping") => {
                            let pong = serde_json::json!({"type":"pong","payload":v["payload"],"timestamp":0});
                            let _ = ws.send(Message::Text(pong.to_string().into())).await;
                        }
                        Some("close-me") => {
                            let _ = ws.close(None).await;
                            return;
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    Ok(url)
}

#[tokio::test]
async fn dead_sockets_bad_frames_throwing_subscribers_bfcache_and_offline() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let peer = scripted_server().await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    page.load_package().await?;
    page.eval(&format!(
        "(async () => {{
            const m = vigil;
            const log = window.log = {{ ticks: [], states: [] }};
            // With a tracker running, a throwing subscriber becomes an event on the server.
            window.v = m.Vigil.start({{ dsn: 'http://dev@' + location.host + '/1' }});
            const ws = window.ws = new m.WebSocketService({{
                url: '{peer}', heartbeatIntervalMs: 300, heartbeatTimeoutMs: 300,
                reconnect: {{ initialDelayMs: 50, maxDelayMs: 100 }},
            }});
            ws.subscribe('tick', () => {{ throw new Error('a subscriber failed on purpose'); }});
            ws.subscribe('tick', (p) => log.ticks.push(p.n));
            ws.onState((s) => log.states.push(s));
            await ws.connect();
            return true;
        }})()"
    ))
    .await?;
    // A frame that is not JSON is counted and ignored; a throwing subscriber is reported and the
    // next one still runs.
    page.wait_for("log.ticks.length === 1", WAIT).await?;
    assert_eq!(page.eval("ws.stats().invalidFrames").await?, 1);
    page.wait_for("v.stats().eventsSent === 1", WAIT).await?;
    let issues = server.get("/api/1/issues").await?;
    assert!(
        issues.contains("Error: a subscriber failed on purpose"),
        "reported to the error tracker: {issues}"
    );
    // The first peer never answers a ping: the socket is declared dead without any close event,
    // and a new one opens (to the answering peer).
    page.wait_for("ws.stats().reconnects >= 1 && ws.state === 'open'", WAIT)
        .await?;
    page.wait_for("ws.stats().lastRttMs !== null", WAIT).await?;

    // Back/forward cache: the socket closes on pagehide (persisted) and reopens on pageshow.
    page.eval("dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true })); true")
        .await?;
    assert_eq!(page.eval("ws.state").await?, "reconnecting");
    assert_eq!(page.eval("vigil.resources().sockets").await?, 0);
    page.eval("dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true })); true")
        .await?;
    page.wait_for("ws.state === 'open'", WAIT).await?;
    page.eval("ws.dispose(); true").await?;

    // Offline: no attempt is made; `online` triggers one at once (not after the 10 s backoff).
    page.eval(&format!(
        "(async () => {{
            const ws = window.ws2 = new vigil.WebSocketService({{
                url: '{peer}', reconnect: {{ initialDelayMs: 10000, jitter: 0 }},
            }});
            await ws.connect();
            dispatchEvent(new Event('offline'));
            ws.send('close-me', {{}});
            return true;
        }})()"
    ))
    .await?;
    page.wait_for("ws2.state === 'reconnecting'", WAIT).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(page.eval("vigil.resources().sockets").await?, 0);
    assert_eq!(
        page.eval("vigil.resources().timeouts").await?,
        0,
        "no attempt armed while offline"
    );
    let started = std::time::Instant::now();
    page.eval("dispatchEvent(new Event('online')); true")
        .await?;
    page.wait_for("ws2.state === 'open'", WAIT).await?;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    page.eval("vigil.disposeAll(); true").await?;
    page.assert_no_resources().await?;
    Ok(())
}
