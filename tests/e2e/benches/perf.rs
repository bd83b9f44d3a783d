//! What the performance monitor costs a page load, and how big its exports are.
//!
//! Main-thread time: the same test page (`www/test/vitals.html`) loaded 20 times without the
//! monitor (`?monitor=off`: the package is still imported and initialized) and 20 times with it,
//! each time measured 1.5 s after navigation with the DevTools `Performance.getMetrics` counters
//! of the document (`TaskDuration`, `ScriptDuration`: what the Performance panel sums), plus
//! `performance.now()` around `Vigil.start()`. Medians are printed; nothing is asserted.

use std::time::Duration;

use serde_json::{json, Value};
use vigil_e2e::{require_pkg, Browser, Page, Result, Server};

const LOADS: usize = 20;

async fn counters(page: &Page<'_>) -> Result<(f64, f64)> {
    let m = page.call("Performance.getMetrics", json!({})).await?;
    let get = |name: &str| {
        m["metrics"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == name))
            .and_then(|x| x["value"].as_f64())
            .unwrap_or(f64::NAN)
    };
    Ok((get("TaskDuration"), get("ScriptDuration")))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    page.call("Performance.enable", json!({})).await?;
    println!("performance monitor, {LOADS} loads each of www/test/vitals.html (1.5 s per load):");
    let mut results = Vec::new();
    for mode in ["off", "on"] {
        let (mut task, mut script, mut start) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..LOADS {
            page.goto(&format!(
                "{}/www/test/vitals.html?monitor={mode}&flush=1000&i={i}",
                server.url
            ))
            .await?;
            page.wait_for("window.ready", Duration::from_secs(20))
                .await?;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let after = counters(&page).await?;
            // The counters start over with each document.
            task.push(after.0 * 1000.0);
            script.push(after.1 * 1000.0);
            if mode == "on" {
                start.push(
                    page.eval("window.startMs")
                        .await?
                        .as_f64()
                        .unwrap_or(f64::NAN),
                );
            }
        }
        let (t, s) = (median(task), median(script));
        println!(
            "  monitor {mode:>3}: main-thread tasks {t:>6.1} ms, script {s:>6.1} ms (medians)"
        );
        results.push((t, s));
        if mode == "on" {
            println!(
                "  Vigil.start() itself:          {:>6.2} ms (median)",
                median(start)
            );
        }
    }
    println!(
        "  added by the monitor:            tasks {:>+6.1} ms, script {:>+6.1} ms",
        results[1].0 - results[0].0,
        results[1].1 - results[0].1
    );

    // Bytes per export: the first export (FCP, TTFB, navigation and resource timing, memory),
    // then an interval export with a custom metric and memory only.
    page.goto(&format!("{}/www/test/vitals.html?flush=1000", server.url))
        .await?;
    page.wait_for(
        "window.ready && v.stats().metricExports >= 1",
        Duration::from_secs(20),
    )
    .await?;
    let first: Value = page.eval("v.stats().lastExportBytes").await?;
    page.eval("v.recordMetric('kiosk.queue', 4); true").await?;
    page.wait_for("v.stats().metricExports >= 2", Duration::from_secs(20))
        .await?;
    let later: Value = page.eval("v.stats().lastExportBytes").await?;
    println!("bytes per export (OTLP/HTTP JSON, uncompressed):");
    println!("  first export after load:        {first:>6} bytes");
    println!("  an interval export (1 custom metric + memory): {later:>6} bytes");
    Ok(())
}
