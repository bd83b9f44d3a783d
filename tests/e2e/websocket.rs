//! `WebSocketService` against the real hub, in a real browser: orders arrive, a crashed server is
//! survived (queued messages arrive after it is back), and connect/dispose cycles leak nothing.

use std::time::Duration;

use serde_json::Value;
use vigil_e2e::{require_pkg, Browser, Result, Server};

const WAIT: Duration = Duration::from_secs(15);

async fn post_order(server: &Server, name: &str) -> Result<Value> {
    // The page is the client under test; the order comes from outside, as from a till.
    let addr = server.url.trim_start_matches("http://");
    let body = format!(r#"{{"items":[{{"name":"{name}","quantity":1}}]}}"#);
    let request = format!(
        "POST /api/orders HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tcp.read_to_string(&mut response).await?;
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let json = response.split("\r\n\r\n").nth(1).ok_or("no body")?;
    Ok(serde_json::from_str(json)?)
}

#[tokio::test]
async fn orders_arrive_and_a_crashed_server_is_survived() -> Result<()> {
    require_pkg();
    let mut server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser
        .open(&format!("{}/www/test/empty.html", server.url))
        .await?;
    page.eval(
        "(async () => {
            const m = await import('/pkg/vigil.js');
            await m.default();
            window.vigil = m;
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
    let page = browser
        .open(&format!("{}/www/test/empty.html", server.url))
        .await?;
    let baseline = page.dom_counters().await?;
    let result = page
        .eval(
            "(async () => {
                const m = await import('/pkg/vigil.js');
                await m.default();
                window.vigil = m;
                for (let i = 0; i < 200; i++) {
                    const ws = new m.WebSocketService({ url: '/ws' });
                    ws.subscribe('*', () => {});
                    await ws.connect();
                    ws.send('ping', { timestamp: i });
                    if (i % 2) ws.dispose(); else m.disposeAll();
                }
                return m.resources();
            })()",
        )
        .await?;
    for (name, n) in result.as_object().ok_or("resources() is an object")? {
        assert_eq!(n, &Value::from(0), "resources().{name} after 200 cycles");
    }
    let after = page.dom_counters().await?;
    assert_eq!(
        after.js_event_listeners, baseline.js_event_listeners,
        "baseline {baseline:?}, after {after:?}"
    );
    // The hub saw every session end.
    let metrics = http_get(&server, "/metrics").await?;
    assert!(metrics.contains("vigil_ws_connections 0"), "{metrics}");
    Ok(())
}

async fn http_get(server: &Server, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.url.trim_start_matches("http://");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            server.admin_token
        );
        tcp.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        tcp.read_to_string(&mut response).await?;
        // Sessions end asynchronously after the browser closes them: poll briefly.
        if response.contains("vigil_ws_connections 0") || std::time::Instant::now() > deadline {
            return Ok(response);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
