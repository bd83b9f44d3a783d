//! The soak (issue 13 item 6, issue 11's kiosk soak): one page (`www/test/soak.html`) stays open
//! in headless Chromium against the real server while rounds of work run in it; after each
//! round a forced GC, then the JS heap, the wasm linear memory, DevTools' `jsEventListeners`,
//! DOM nodes and documents, and the server's RSS. `./dev.sh soak [ROUNDS]` prints a long run
//! (`soak_main.rs`); the test suite runs a short one and asserts on it (`soak.rs`).

use std::time::Duration;

use serde_json::json;

use crate::{Browser, Page, Result, Server};

/// What one measurement reads (after a forced GC).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// 0 for the baseline before the first round.
    pub round: usize,
    /// `Runtime.getHeapUsage().usedSize`, bytes.
    pub js_heap: f64,
    /// The package's `WebAssembly.Memory` size, bytes.
    pub wasm: f64,
    /// `Memory.getDOMCounters().jsEventListeners`.
    pub listeners: f64,
    /// `Memory.getDOMCounters().nodes`.
    pub nodes: f64,
    /// `Memory.getDOMCounters().documents`.
    pub documents: f64,
    /// The server's `VmRSS`, KiB.
    pub server_rss_kib: f64,
    /// How long the round took in the page, ms (0 for the baseline).
    pub round_ms: f64,
}

impl Sample {
    /// One line of the report.
    pub fn line(&self) -> String {
        format!(
            "round {:>3}: JS heap {:>8.1} KiB, wasm {:>6.0} KiB, listeners {:>4}, DOM nodes {:>5}, documents {:>2}, server RSS {:>6} KiB ({:.0} ms)",
            self.round,
            self.js_heap / 1024.0,
            self.wasm / 1024.0,
            self.listeners,
            self.nodes,
            self.documents,
            self.server_rss_kib,
            self.round_ms
        )
    }
}

/// Rounds not counted in the growth: the first fifth, at least 2 (caches, JIT, allocator pools).
pub fn warm_up(rounds: usize) -> usize {
    (rounds / 5).max(2).min(rounds.saturating_sub(2))
}

/// The least-squares slope of `values` against their index: growth per round.
pub fn slope(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if values.len() < 2 {
        return 0.0;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in values.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (y - mean_y);
        den += dx * dx;
    }
    num / den
}

/// Growth per round of each series over the rounds after the warm-up, as one line.
pub fn growth_line(samples: &[Sample]) -> String {
    let rounds = samples.iter().filter(|s| s.round > 0).count();
    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.round > warm_up(rounds))
        .collect();
    let per = |f: fn(&Sample) -> f64| slope(&after.iter().map(|s| f(s)).collect::<Vec<_>>());
    format!(
        "growth per round after {} warm-up rounds ({} rounds): JS heap {:+.1} KiB, wasm {:+.1} KiB, \
         listeners {:+.2}, DOM nodes {:+.2}, documents {:+.2}, server RSS {:+.1} KiB",
        warm_up(rounds),
        after.len(),
        per(|s| s.js_heap) / 1024.0,
        per(|s| s.wasm) / 1024.0,
        per(|s| s.listeners),
        per(|s| s.nodes),
        per(|s| s.documents),
        per(|s| s.server_rss_kib),
    )
}

/// Forces a GC (twice: what the first frees may hold more) and reads every figure.
pub async fn measure(
    page: &Page<'_>,
    server: &Server,
    round: usize,
    round_ms: f64,
) -> Result<Sample> {
    page.collect_garbage().await?;
    let dom = page.dom_counters().await?; // collects again
    let heap = page.call("Runtime.getHeapUsage", json!({})).await?;
    let wasm = page.eval("wasmMemory.buffer.byteLength").await?;
    Ok(Sample {
        round,
        js_heap: heap["usedSize"].as_f64().ok_or("no usedSize")?,
        wasm: wasm.as_f64().ok_or("no wasm memory")?,
        listeners: dom.js_event_listeners as f64,
        nodes: dom.nodes as f64,
        documents: dom.documents as f64,
        server_rss_kib: server.memory_kib("VmRSS")? as f64,
        round_ms,
    })
}

/// Opens the soak page on `server` (with `query`, e.g. `errors=100`) and runs `rounds` rounds,
/// handing each sample (the baseline first) to `each`; returns them all.
pub async fn run(
    server: &Server,
    browser: &Browser,
    rounds: usize,
    query: &str,
    mut each: impl FnMut(&Sample),
) -> Result<Vec<Sample>> {
    let page = browser.open_empty(server).await?;
    page.goto(&format!("{}/www/test/soak.html?{query}", server.url))
        .await?;
    page.wait_for("window.ready", Duration::from_secs(30))
        .await?;
    let mut samples = vec![measure(&page, server, 0, 0.0).await?];
    each(&samples[0]);
    for round in 1..=rounds {
        let ms = page
            .eval("soakRound()")
            .await?
            .as_f64()
            .ok_or("soakRound returns its duration")?;
        let sample = measure(&page, server, round, ms).await?;
        each(&sample);
        samples.push(sample);
    }
    let left = page.eval("vigil.resources()").await?;
    println!("resources() after {rounds} rounds (the long-lived runtime and socket): {left}");
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_is_growth_per_round() {
        assert_eq!(slope(&[5.0, 5.0, 5.0]), 0.0);
        assert!((slope(&[1.0, 3.0, 5.0, 7.0]) - 2.0).abs() < 1e-9);
        assert_eq!(slope(&[4.0]), 0.0);
        assert_eq!(warm_up(30), 6);
        assert_eq!(warm_up(6), 2);
        assert_eq!(warm_up(3), 1);
    }
}
