//! Envelope ingestion, printed, not asserted (`./dev.sh bench`): the release server on SQLite
//! and on the database URL in `VIGIL_BENCH_DATABASE_URL` (`./dev.sh bench` sets it to a database
//! on its throwaway PostgreSQL cluster), loopback, the load generator in its own process.
//!
//! - Full load: `wrk` (Debian's; `./dev.sh bench` installs it) with `ingest.lua`, which gives
//!   every request a new event id: events/s stored and wrk's p50/p99 latency.
//! - Fixed rates of 2,500 and 5,000 events/s: wrk2 is not in Debian, so an open-loop generator
//!   of our own in this process (requests on schedule, whatever the answers do; latency from
//!   each request's scheduled time, so a stall is not hidden by coordinated omission).
//! - The server's CPU time per event stored, which a busy shared machine changes less than
//!   events/s.
//!
//! `VIGIL_BENCH_SWEEP=1` also runs a short full-load round per writer setting (batch rows ×
//! wait), which is how the defaults were chosen.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Command;
use vigil_e2e::{Result, Server};

const FULL_LOAD_SECONDS: u64 = 10;
/// Fixed rates: the goal's 5,000 events/s, and half of it (latency below saturation on a
/// machine that cannot take 5,000).
const FIXED_RATES: [u64; 2] = [2_500, 5_000];
const FIXED_SECONDS: u64 = 10;
const WRK_THREADS: &str = "2";
/// Concurrent senders at full load: group commit batches what waits, so events/s grows with
/// them until the machine is busy (64: about the batch the writer takes at once; 256: what a
/// fleet's browsers easily are).
const WRK_CONNECTIONS: [&str; 2] = ["64", "256"];
/// The fixed-rate generator's requests in flight at most (each its own connection at worst).
const MAX_IN_FLIGHT: usize = 1024;

/// What every benchmark server runs with besides its writer settings: no rate limit in the way
/// (this measures the ingest path itself), and room for every generator connection, all of
/// which come from 127.0.0.1.
const SERVE_ARGS: [&str; 6] = [
    "--rate-limit",
    "1000000",
    "--rate-limit-burst",
    "1000000",
    "--max-connections-per-ip",
    "10000",
];

/// The release server (`./dev.sh bench` sets `VIGIL_SERVER_RELEASE`) on `database_url`, or on a
/// fresh SQLite file, with `writer`'s settings.
async fn serve(database_url: Option<&str>, writer: &[&str]) -> Result<Server> {
    let args: Vec<&str> = SERVE_ARGS.iter().chain(writer).copied().collect();
    match database_url {
        Some(url) => Server::start_on(url, &args).await,
        None => Server::start(&args).await,
    }
}

/// Writes the page cache back before a measured run, so that one run's writes (an earlier
/// database file, PostgreSQL's pages) are not flushed inside the next run, where SQLite's WAL
/// checkpoints `fsync`. (It does not make the disk quiet: on this shared machine SQLite's tail
/// latency still follows the disk's, see README "Ingest figures".)
async fn settle() {
    let _ = Command::new("sync").status().await;
}

/// CPU seconds `server` used so far (user + system, from `/proc/PID/stat`).
fn cpu_seconds(server: &Server) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.pid())).unwrap_or_default();
    // Fields after the `(comm)`: state is the 3rd field, utime the 14th, stime the 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn envelope_url(base: &str) -> String {
    format!("{base}/api/1/envelope/?sentry_key=dev")
}

/// wrk's figures from the `VIGIL …` line `ingest.lua` prints.
#[derive(Debug, Default)]
struct WrkRun {
    requests: u64,
    duration_us: u64,
    non2xx: u64,
    errors: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

impl WrkRun {
    fn stored_per_sec(&self) -> f64 {
        let ok = self.requests.saturating_sub(self.non2xx + self.errors);
        ok as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }
}

async fn wrk(url: &str, connections: &str, seconds: u64, nonce: u32) -> Result<WrkRun> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/ingest.lua");
    let out = Command::new("wrk")
        .args(["-t", WRK_THREADS, "-c", connections])
        .arg("-d")
        .arg(format!("{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(envelope_url(url))
        .arg("--")
        .arg(nonce.to_string())
        .output()
        .await
        .map_err(|e| format!("wrk: {e} (`./dev.sh bench` installs it: apt-get install wrk)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("VIGIL "))
        .ok_or_else(|| format!("wrk printed no VIGIL line:\n{text}"))?;
    let mut run = WrkRun::default();
    for field in line.split_whitespace().skip(1) {
        let (key, value) = field.split_once('=').ok_or("a field without =")?;
        let value: u64 = value.parse()?;
        match key {
            "requests" => run.requests = value,
            "duration_us" => run.duration_us = value,
            "non2xx" => run.non2xx = value,
            "errors" => run.errors = value,
            "p50_us" => run.p50_us = value,
            "p99_us" => run.p99_us = value,
            "max_us" => run.max_us = value,
            _ => {}
        }
    }
    Ok(run)
}

/// What the fixed-rate generator saw.
struct FixedRun {
    latencies: Vec<Duration>,
    failed: u64,
    /// Requests not sent because [`MAX_IN_FLIGHT`] were already in flight.
    shed: u64,
}

fn envelope(id: &str, n: u64) -> String {
    let payload = format!(
        r#"{{"event_id":"{id}","platform":"javascript","level":"error","exception":{{"values":[{{"type":"TypeError","value":"x is undefined ({n})","stacktrace":{{"frames":[{{"function":"main","filename":"http://k/app.js","lineno":1,"colno":1,"in_app":true}},{{"function":"render","filename":"http://k/app.js","lineno":9,"colno":3,"in_app":true}}]}}}}]}},"breadcrumbs":{{"values":[{{"timestamp":1700000000,"category":"ui.click","message":"button#buy"}}]}}}}"#
    );
    format!(
        "{{\"event_id\":\"{id}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{payload}\n",
        payload.len()
    )
}

/// Sends `rate` envelopes a second for `seconds`, each at its scheduled time (open loop).
async fn fixed_rate(base: &str, rate: u64, seconds: u64, nonce: u32) -> Result<FixedRun> {
    let url = envelope_url(base);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build()?;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let failed = Arc::new(AtomicU64::new(0));
    let total = rate * seconds;
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::with_capacity(total as usize);
    let mut shed = 0;
    for i in 0..total {
        let at = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(at).await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            shed += 1;
            continue;
        };
        let body = envelope(&format!("{nonce:08x}{:024x}", i + 1), i);
        let (client, url, failed) = (client.clone(), url.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let ok =
                matches!(client.post(&url).body(body).send().await, Ok(r) if r.status() == 200);
            drop(permit);
            if ok {
                Some(at.elapsed())
            } else {
                failed.fetch_add(1, Ordering::Relaxed);
                None
            }
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Some(l) = t.await? {
            latencies.push(l);
        }
    }
    latencies.sort();
    Ok(FixedRun {
        latencies,
        failed: failed.load(Ordering::Relaxed),
        shed,
    })
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

async fn round(name: &str, database_url: Option<&str>) -> Result<()> {
    println!(
        "Envelope ingest on {name}, release build, loopback, one event per request, every event id new:"
    );
    for (n, connections) in (1..).zip(WRK_CONNECTIONS) {
        settle().await;
        let server = serve(database_url, &[]).await?;
        let cpu = cpu_seconds(&server);
        let full = wrk(&server.url, connections, FULL_LOAD_SECONDS, n).await?;
        let cpu = cpu_seconds(&server) - cpu;
        println!(
            "  full load (wrk, {WRK_THREADS} threads, {connections} connections, {FULL_LOAD_SECONDS} s): {:.0} events/s stored ({} requests, {} non-2xx, {} socket errors); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            full.stored_per_sec(),
            full.requests,
            full.non2xx,
            full.errors,
            ms(full.p50_us),
            ms(full.p99_us),
            ms(full.max_us),
        );
        let stored = full
            .requests
            .saturating_sub(full.non2xx + full.errors)
            .max(1);
        println!(
            "  server CPU at full load: {:.0} µs per event stored ({:.2} of {} CPUs busy in the server; what the machine's load leaves is the ceiling)",
            cpu * 1e6 / stored as f64,
            cpu / (full.duration_us.max(1) as f64 / 1e6),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
    }
    for rate in FIXED_RATES {
        settle().await;
        let server = serve(database_url, &[]).await?;
        let nonce = 2 + u32::try_from(rate).unwrap_or(0);
        let fixed = fixed_rate(&server.url, rate, FIXED_SECONDS, nonce).await?;
        println!(
            "  fixed {rate} events/s for {FIXED_SECONDS} s (open loop, latency from the scheduled time): {} stored, {} failed, {} shed; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            fixed.latencies.len(),
            fixed.failed,
            fixed.shed,
            pct(&fixed.latencies, 0.50),
            pct(&fixed.latencies, 0.99),
            pct(&fixed.latencies, 1.0),
        );
    }
    Ok(())
}

/// Short full-load rounds over writer settings (`VIGIL_BENCH_SWEEP=1`).
async fn sweep() -> Result<()> {
    println!(
        "Writer settings at full load on SQLite (wrk, {} connections, 5 s each):",
        WRK_CONNECTIONS[0]
    );
    let mut nonce = 100;
    for batch in ["32", "256", "1024"] {
        for wait in ["0ms", "2ms", "5ms"] {
            nonce += 1;
            let server = serve(
                None,
                &["--ingest-batch", batch, "--ingest-batch-wait", wait],
            )
            .await?;
            let run = wrk(&server.url, WRK_CONNECTIONS[0], 5, nonce).await?;
            println!(
                "  batch {batch:>4} rows, wait {wait:>3}: {:>6.0} events/s, p50 {:>6.2} ms, p99 {:>6.2} ms ({} non-2xx)",
                run.stored_per_sec(),
                ms(run.p50_us),
                ms(run.p99_us),
                run.non2xx,
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let started = Instant::now();
    // Figures from a shared machine mean little without its load: say it.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "(load average before the ingest benchmark: {}; {} CPUs)",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    round("SQLite (WAL)", None).await?;
    // PostgreSQL: `./dev.sh bench` sets this to a database on its throwaway cluster.
    if let Ok(url) = std::env::var("VIGIL_BENCH_DATABASE_URL") {
        let engine = if url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "VIGIL_BENCH_DATABASE_URL"
        };
        // Host and database only: never a password.
        let shown = url.rsplit('@').next().unwrap_or_default();
        round(&format!("{engine} ({shown})"), Some(&url)).await?;
    }
    if std::env::var_os("VIGIL_BENCH_SWEEP").is_some() {
        sweep().await?;
    }
    println!(
        "  (ingest benchmark took {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
