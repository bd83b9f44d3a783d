//! WebSocket figures, printed, not asserted (`./dev.sh bench`):
//!
//! 1. Messages per second a page receives and dispatches to a subscriber through
//!    `WebSocketService`, next to a plain `WebSocket` + `JSON.parse` + callback, same page, same
//!    sender, same run.
//! 2. Idle connections the hub holds, its resident memory per connection, and broadcast latency
//!    to all of them (p50/p99).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use vigil_e2e::{require_pkg, Browser, Result, Server};

const FRAMES: usize = 50_000;
const IDLE_CONNECTIONS: usize = 10_000;

#[tokio::main]
async fn main() -> Result<()> {
    require_pkg();
    if std::env::var_os("VIGIL_BENCH_HUB_ONLY").is_none() {
        throughput().await?;
    }
    hub_capacity().await?;
    Ok(())
}

/// A sender that writes `FRAMES` envelopes to every connection as fast as it can.
async fn blaster() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                for i in 0..FRAMES {
                    let frame = format!(
                        r#"{{"type":"tick","payload":{{"i":{i},"price":12.5,"symbol":"VGL"}},"timestamp":1700000000000}}"#
                    );
                    if ws.feed(Message::Text(frame.into())).await.is_err() {
                        return;
                    }
                }
                let _ = ws.flush().await;
                // Keep the socket open until the page closes it.
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    Ok(url)
}

async fn throughput() -> Result<()> {
    let server = Server::start(&[]).await?;
    let url = blaster().await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    page.load_package().await?;
    let plain = format!(
        "new Promise((resolve) => {{
            let n = 0, sum = 0; const start = performance.now();
            const ws = new WebSocket('{url}');
            const onTick = (payload) => {{ sum += payload.i; }};
            ws.onmessage = (e) => {{
                const m = JSON.parse(e.data);
                if (m.type === 'tick') onTick(m.payload, m);
                if (++n === {FRAMES}) {{ ws.close(); resolve({{ ms: performance.now() - start, sum }}); }}
            }};
        }})"
    );
    let ours = format!(
        "new Promise((resolve) => {{
            let n = 0, sum = 0; const start = performance.now();
            const ws = new vigil.WebSocketService({{ url: '{url}', reconnect: false }});
            ws.subscribe('tick', (payload) => {{
                sum += payload.i;
                if (++n === {FRAMES}) {{ const ms = performance.now() - start; ws.dispose(); resolve({{ ms, sum }}); }}
            }});
            ws.connect();
        }})"
    );
    println!("WebSocket receive + dispatch, {FRAMES} frames per run, headless Chromium:");
    let mut rates = (Vec::new(), Vec::new());
    // Five rounds, each pair run back to back: the server's send rate follows the load of this
    // shared machine, so a pair's ratio is steadier than either rate.
    for round in 0..5 {
        for (name, script, into) in [
            ("plain WebSocket + JSON.parse", &plain, &mut rates.0),
            ("vigil WebSocketService      ", &ours, &mut rates.1),
        ] {
            let r = page.eval(script).await?;
            let ms = r["ms"].as_f64().unwrap_or(f64::NAN);
            let rate = FRAMES as f64 / (ms / 1000.0);
            into.push(rate);
            println!("  round {round}: {name} {rate:>10.0} msg/s ({ms:.0} ms)");
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut paired: Vec<f64> = rates.1.iter().zip(&rates.0).map(|(o, p)| o / p).collect();
    let (p, o) = (median(&mut rates.0), median(&mut rates.1));
    println!(
        "  median: plain {p:.0} msg/s, WebSocketService {o:.0} msg/s, ratio {:.2}; median of the rounds' ratios {:.2} (bar: >= 0.9)",
        o / p,
        median(&mut paired)
    );
    Ok(())
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
}

/// The server's connection caps, raised past the bench's connections: they all come from
/// 127.0.0.1, and the default of 64 WebSocket sessions per IP would close the rest with 1013.
const HUB_CAPS: [&str; 8] = [
    "--max-connections",
    "11000",
    "--max-connections-per-ip",
    "11000",
    "--ws-max-connections",
    "11000",
    "--ws-max-connections-per-ip",
    "11000",
];

async fn hub_capacity() -> Result<()> {
    let server = Server::start(&HUB_CAPS).await?;
    let addr = server.url.trim_start_matches("http://").to_owned();
    let ws_url = format!("ws://{addr}/ws");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(server.pid())?;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut ready = Vec::with_capacity(IDLE_CONNECTIONS);
    let started = Instant::now();
    for _ in 0..IDLE_CONNECTIONS {
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str()).await?;
        ws.send(Message::Text(
            r#"{"type":"subscribe","payload":{"topics":["orders"]},"timestamp":0}"#.into(),
        ))
        .await?;
        let tx = tx.clone();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        ready.push(go);
        tokio::spawn(async move {
            let _ = wait.await;
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    if t.as_str().contains("order:created") {
                        let _ = tx.send(Instant::now());
                    }
                }
            }
        });
    }
    drop(tx);
    for go in ready {
        let _ = go.send(());
    }
    let connect_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(server.pid())?;
    println!("\nHub: {IDLE_CONNECTIONS} idle connections (subscribed to `orders`, heartbeats on):");
    println!("  opened in {:.1} s", connect_time.as_secs_f64());
    println!(
        "  server RSS {} MiB -> {} MiB: {:.1} KiB per connection",
        before / 1024,
        after / 1024,
        (after.saturating_sub(before)) as f64 / IDLE_CONNECTIONS as f64
    );

    for round in 0..3 {
        let sent = Instant::now();
        let body = r#"{"items":[{"name":"bench","quantity":1}]}"#;
        server.request("POST", "/api/orders", Some(body)).await?;
        let mut latencies = Vec::with_capacity(IDLE_CONNECTIONS);
        while latencies.len() < IDLE_CONNECTIONS {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(at)) => latencies.push(at.duration_since(sent)),
                _ => break,
            }
        }
        if latencies.is_empty() {
            return Err("no subscriber received the order".into());
        }
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "  broadcast round {round}: {} of {IDLE_CONNECTIONS} received; POST-to-receive p50 {:.1} ms, p99 {:.1} ms",
            latencies.len(),
            pct(0.50).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0
        );
        if latencies.len() < IDLE_CONNECTIONS {
            return Err(format!(
                "only {} of {IDLE_CONNECTIONS} subscribers received the order",
                latencies.len()
            )
            .into());
        }
    }
    Ok(())
}
