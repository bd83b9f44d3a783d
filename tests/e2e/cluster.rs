//! Two `vigil-server` processes on one PostgreSQL (server-api.md, "Running more than one
//! instance"): a page on instance A gets the orders posted to B; an event ingested by A is read
//! from B; a voice key minted by A opens a call on B once; and PostgreSQL stopped and started
//! again under load loses no event that was acknowledged with `200`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_e2e::postgres::{self, fresh_database, test_server};
use vigil_e2e::{require_pkg, Browser, Result, Server};

const WAIT: Duration = Duration::from_secs(15);

/// Ingest limits out of the way: the load below is one key's.
const NO_RATE_LIMIT: &[&str] = &["--rate-limit", "1000000", "--rate-limit-burst", "1000000"];

async fn two_instances(database: &str) -> Result<(Server, Server)> {
    let a = Server::start_on(database, NO_RATE_LIMIT).await?;
    let b = Server::start_on(database, NO_RATE_LIMIT).await?;
    Ok((a, b))
}

fn envelope(event_id: &str, message: &str) -> String {
    format!(
        "{{\"event_id\":\"{event_id}\"}}\n{{\"type\":\"event\"}}\n{{\"event_id\":\"{event_id}\",\"message\":\"{message}\",\"level\":\"error\"}}\n"
    )
}

/// `POST /api/1/envelope/` on `server`: the status.
async fn ingest(server: &Server, event_id: &str, message: &str) -> Result<u16> {
    let (status, _, _) = server
        .raw_request(
            "POST",
            "/api/1/envelope/?sentry_key=dev",
            "Content-Type: text/plain\r\n",
            &envelope(event_id, message),
        )
        .await?;
    Ok(status)
}

async fn healthz(server: &Server) -> u16 {
    match tokio::time::timeout(
        Duration::from_secs(5),
        server.request("GET", "/healthz", None),
    )
    .await
    {
        Ok(Ok((status, _))) => status,
        _ => 0,
    }
}

async fn wait_ready(server: &Server, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while healthz(server).await != 200 {
        if Instant::now() > deadline {
            return Err(format!("{} not ready within {within:?}", server.url).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn an_order_posted_to_b_reaches_a_page_on_a_and_a_voice_key_from_a_works_on_b_once(
) -> Result<()> {
    require_pkg();
    let database = fresh_database(&test_server())?;
    let (a, b) = two_instances(&database).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&a).await?;
    page.load_package().await?;
    page.eval(
        "(async () => {
            const log = window.log = { orders: [], pongs: [] };
            const ws = window.ws = new vigil.WebSocketService({ url: '/ws' });
            ws.onState((state) => {
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
    page.wait_for("log.pongs.includes(0)", WAIT).await?;

    // Posted to B, received by the page on A, exactly once, as B answered it.
    let (status, body) = b
        .request(
            "POST",
            "/api/orders",
            Some(r#"{"items":[{"name":"flat white","quantity":2}]}"#),
        )
        .await?;
    assert_eq!(status, 201, "{body}");
    let order: Value = serde_json::from_str(&body)?;
    page.wait_for("log.orders.length === 1", WAIT).await?;
    assert_eq!(page.eval("log.orders[0]").await?, order);
    // And one posted to A reaches it once too (not also through the listener).
    let (status, body) = a
        .request(
            "POST",
            "/api/orders",
            Some(r#"{"items":[{"name":"tea","quantity":1}]}"#),
        )
        .await?;
    assert_eq!(status, 201, "{body}");
    page.wait_for("log.orders.length === 2", WAIT).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(page.eval("log.orders.length").await?, 2);

    // A voice key minted on A (by the page, as a kiosk would) opens a call on B, once.
    let minted = page
        .eval(
            "(async () => {
                const session = await (await fetch('/voice/session', { method: 'POST' })).json();
                const pc = new RTCPeerConnection();
                pc.addTransceiver('audio', { direction: 'sendrecv' });
                pc.createDataChannel('oai-events');
                const offer = await pc.createOffer();
                pc.close();
                return { key: session.client_secret.value, sdp: offer.sdp };
            })()",
        )
        .await?;
    let key = minted["key"].as_str().ok_or("no key")?;
    let sdp = minted["sdp"].as_str().ok_or("no offer")?;
    let headers = format!("Content-Type: application/sdp\r\nAuthorization: Bearer {key}\r\n");
    let (status, head, answer) = b
        .raw_request("POST", "/voice/realtime", &headers, sdp)
        .await?;
    assert_eq!(status, 201, "{head}\n{answer}");
    assert!(answer.starts_with("v=0"), "{answer}");
    assert!(head.contains("location: /voice/calls/rtc_"), "{head}");
    // Spent: refused on B, and on A.
    for server in [&b, &a] {
        let (status, _, body) = server
            .raw_request("POST", "/voice/realtime", &headers, sdp)
            .await?;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("unknown or already used"), "{body}");
    }
    Ok(())
}

#[tokio::test]
async fn an_event_ingested_by_a_is_listed_by_b() -> Result<()> {
    let database = fresh_database(&test_server())?;
    let (a, b) = two_instances(&database).await?;
    let id = "5f0c7a8e2b1d4c3e9a6b8d7c6e5f4a3b";
    assert_eq!(ingest(&a, id, "checkout failed on A").await?, 200);
    let event = b.get_json(&format!("/api/1/events/{id}")).await?;
    assert_eq!(event["message"], "checkout failed on A", "{event}");
    let issues = b.get_json("/api/1/issues").await?;
    let issues = issues.as_array().ok_or("issues is an array")?;
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0]["title"], "checkout failed on A");
    assert_eq!(issues[0]["count"], 1);
    // The same event sent to B is a duplicate there too.
    assert_eq!(ingest(&b, id, "checkout failed on A").await?, 200);
    assert_eq!(a.get_json("/api/1/issues").await?[0]["count"], 1);
    // An instance in a cluster still stops within 5 s of SIGTERM (its listener task included),
    // and the other goes on.
    let (exit, took) = a.terminate(Duration::from_secs(5)).await?;
    assert!(exit.success(), "{exit:?} after {took:?}");
    assert_eq!(healthz(&b).await, 200);
    Ok(())
}

#[tokio::test]
async fn postgres_stopped_and_started_under_load_loses_no_acknowledged_event() -> Result<()> {
    let pg = postgres::Cluster::start()?;
    let database = fresh_database(&pg.url)?;
    let (a, b) = two_instances(&database).await?;
    let servers = Arc::new([a, b]);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<u16>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for worker in 0..4u64 {
        let (servers, acknowledged, refused, stop) = (
            servers.clone(),
            acknowledged.clone(),
            refused.clone(),
            stop.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let id = format!("{worker:08x}{n:024x}");
                let server = &servers[(n % 2) as usize];
                let answer =
                    tokio::time::timeout(Duration::from_secs(10), ingest(server, &id, "load"))
                        .await;
                match answer {
                    Ok(Ok(200)) => acknowledged.lock().unwrap().push(id),
                    Ok(Ok(status)) => refused.lock().unwrap().push(status),
                    // No answer at all (refused connection, timeout): not acknowledged either.
                    _ => refused.lock().unwrap().push(0),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = acknowledged.lock().unwrap().len();
    assert!(before > 0, "events were stored before the stop");

    pg.stop()?;
    let stopped = Instant::now();
    // While it is down: not ready, and events are refused (503), not acknowledged.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for server in servers.iter() {
        assert_eq!(
            healthz(server).await,
            503,
            "{} ready without its database",
            server.url
        );
    }
    let (status, body) = servers[0].request("GET", "/healthz", None).await?;
    assert!(
        status == 503 && body.contains("not ready"),
        "{status} {body}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = acknowledged.lock().unwrap().len();
    pg.start_again()?;
    let down_for = stopped.elapsed();

    for server in servers.iter() {
        wait_ready(server, Duration::from_secs(20)).await?;
    }
    let back = acknowledged.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        task.await?;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let refused = refused.lock().unwrap().clone();
    assert!(
        acknowledged.len() > back,
        "events are stored again after the restart"
    );
    assert!(
        !refused.is_empty(),
        "events were refused while the database was down"
    );
    assert!(
        refused.iter().all(|s| *s == 503),
        "refusals are 503 (retry later), never 500: {:?}",
        refused
            .iter()
            .filter(|s| **s != 503)
            .take(10)
            .collect::<Vec<_>>()
    );
    eprintln!(
        "outage of {down_for:?}: {} events acknowledged ({before} before the stop, {} while stopping, \
         {} after), {} refused with 503",
        acknowledged.len(),
        during - before,
        acknowledged.len() - back,
        refused.len()
    );

    // Every acknowledged event is there, whichever instance took it.
    let stored: HashSet<String> = postgres::query(&database, "SELECT event_id FROM events")?
        .lines()
        .map(str::to_owned)
        .collect();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events are missing, e.g. {:?}",
        missing.len(),
        acknowledged.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    // And the read API of each instance answers for one of them.
    let last = acknowledged.last().ok_or("no event")?;
    for server in servers.iter() {
        let event = server.get_json(&format!("/api/1/events/{last}")).await?;
        assert_eq!(event["message"], "load", "{event}");
    }
    Ok(())
}
