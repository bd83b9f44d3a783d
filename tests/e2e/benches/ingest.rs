//! Envelope ingestion throughput, printed, not asserted (`./dev.sh bench`): events/s and latency
//! percentiles at a steady load from this (second) process over loopback, every event unique
//! and committed to SQLite before its `200`.

use std::time::{Duration, Instant};

use vigil_e2e::{Result, Server};

const CLIENTS: usize = 16;
const SECONDS: u64 = 10;

#[tokio::main]
async fn main() -> Result<()> {
    // No rate limit in the way: this measures the ingest path itself.
    let server =
        Server::start(&["--rate-limit", "1000000", "--rate-limit-burst", "1000000"]).await?;
    let url = format!("{}/api/1/envelope/?sentry_key=dev", server.url);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let id = format!("{c:08x}{n:024x}");
                let payload = format!(
                    r#"{{"event_id":"{id}","platform":"javascript","level":"error","exception":{{"values":[{{"type":"TypeError","value":"x is undefined ({n})","stacktrace":{{"frames":[{{"function":"main","filename":"http://k/app.js","lineno":1,"colno":1,"in_app":true}},{{"function":"render","filename":"http://k/app.js","lineno":9,"colno":3,"in_app":true}}]}}}}]}},"breadcrumbs":{{"values":[{{"timestamp":1700000000,"category":"ui.click","message":"button#buy"}}]}}}}"#
                );
                let body = format!(
                    "{{\"event_id\":\"{id}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{payload}\n",
                    payload.len()
                );
                let t = Instant::now();
                match client.post(&url).body(body).send().await {
                    Ok(r) if r.status() == 200 => latencies.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    println!("Envelope ingestion, {CLIENTS} concurrent clients for {SECONDS} s, SQLite (WAL), release build:");
    println!(
        "  {} events stored ({} errors): {:.0} events/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        errors,
        all.len() as f64 / SECONDS as f64,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
