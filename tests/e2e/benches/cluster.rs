//! Cross-instance broadcast latency, printed, not asserted (`./dev.sh bench`): two servers on one
//! throwaway PostgreSQL, a page connected to A subscribed to `orders`; each order is posted to B
//! (and, for comparison, to A) and timed from just before the `POST` leaves this process to the
//! page's `order:created` callback. Both ends read the same wall clock (this machine's):
//! `SystemTime` here, `performance.timeOrigin + performance.now()` in the page.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vigil_e2e::postgres::{fresh_database, Cluster};
use vigil_e2e::{require_pkg, Browser, Result, Server};

const ORDERS: usize = 300;

#[tokio::main]
async fn main() -> Result<()> {
    require_pkg();
    let pg = Cluster::start()?;
    let database = fresh_database(&pg.url)?;
    let a = Server::start_on(&database, &[]).await?;
    let b = Server::start_on(&database, &[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&a).await?;
    page.load_package().await?;
    page.eval(
        "(async () => {
            const log = window.log = { at: {}, pongs: [] };
            const ws = window.ws = new vigil.WebSocketService({ url: '/ws' });
            ws.onState((state) => {
                if (state === 'open') ws.send('subscribe', { topics: ['orders'] });
            });
            ws.subscribe('order:created', (order) => {
                log.at[order.items[0].name] = performance.timeOrigin + performance.now();
            });
            ws.subscribe('pong', (p) => log.pongs.push(p.timestamp));
            await ws.connect();
            ws.send('ping', { timestamp: 0 });
            return true;
        })()",
    )
    .await?;
    page.wait_for("log.pongs.includes(0)", Duration::from_secs(15))
        .await?;

    // Warm up both paths (connections, prepared statements) before measuring.
    for i in 0..20 {
        measure(&b, &page, &format!("warm-b-{i}")).await?;
        measure(&a, &page, &format!("warm-a-{i}")).await?;
    }
    let mut across = Vec::with_capacity(ORDERS);
    let mut local = Vec::with_capacity(ORDERS);
    for i in 0..ORDERS {
        across.push(measure(&b, &page, &format!("b-{i}")).await?);
        local.push(measure(&a, &page, &format!("a-{i}")).await?);
    }
    let release = if std::env::var_os("VIGIL_SERVER_RELEASE").is_some() {
        "release"
    } else {
        "debug"
    };
    println!("cluster broadcast latency ({ORDERS} orders each, {release} server, one PostgreSQL on this machine):");
    print_row("POST on B -> page on A (LISTEN/NOTIFY)", &mut across);
    print_row("POST on A -> page on A (same instance)", &mut local);
    Ok(())
}

/// Posts one order named `name` to `server` and returns the milliseconds until the page had it.
async fn measure(server: &Server, page: &vigil_e2e::Page<'_>, name: &str) -> Result<f64> {
    let body = format!(r#"{{"items":[{{"name":"{name}","quantity":1}}]}}"#);
    let sent = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64() * 1000.0;
    let (status, response) = server.request("POST", "/api/orders", Some(&body)).await?;
    if status != 201 {
        return Err(format!("POST /api/orders: {status} {response}").into());
    }
    let key = serde_json::to_string(name)?;
    page.wait_for(
        &format!("log.at[{key}] !== undefined"),
        Duration::from_secs(10),
    )
    .await?;
    let at = page
        .eval(&format!("log.at[{key}]"))
        .await?
        .as_f64()
        .ok_or("no receive time")?;
    Ok(at - sent)
}

fn print_row(label: &str, ms: &mut [f64]) {
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "  {label:<42} p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>6.2} ms",
        pick(0.50),
        pick(0.99),
        pick(1.0)
    );
}
