//! Abrupt page closes (issue 13, item 4): a page navigates away and its browser context is closed
//! at once, before the requests it sent while leaving can finish. The final export (CLS is only
//! sent when the page is hidden) must arrive as often as the anchor's: Google's `web-vitals`
//! reporting with `navigator.sendBeacon` on `visibilitychange`, the pattern its README
//! recommends, measured in the same pages.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use vigil_e2e::{require_pkg, tool_file, Browser, Result, Server};

const WAIT: Duration = Duration::from_secs(20);
/// Closes measured (the issue asks for at least 50).
const CLOSES: usize = 50;
/// What Vigil must deliver at least (the goal is 99 %; measured 100 % in every run since the
/// server stopped cancelling inserts of closed connections: one loss in 50 is allowed so a busy
/// machine does not fail the suite), and at least the anchor's count minus `SLACK`.
const FLOOR: f64 = 0.98;
const SLACK: usize = 1;

/// The anchor, run before the page's own scripts: web-vitals' `onCLS` with `sendBeacon`, as an
/// OTLP gauge `anchor.cls` with the page's `load` number, to the same endpoint and key.
const ANCHOR: &str = r#"
if (location.pathname.endsWith("/vitals.html")) {
  const load = new URLSearchParams(location.search).get("load");
  webVitals.onCLS((m) => {
    const body = JSON.stringify({ resourceMetrics: [{ resource: { attributes: [] }, scopeMetrics: [{
      scope: { name: "anchor" },
      metrics: [{ name: "anchor.cls", unit: "1", gauge: { dataPoints: [{
        asDouble: m.value, timeUnixNano: String(Date.now() * 1e6),
        attributes: [{ key: "load", value: { stringValue: load } }] }] } }] }] }] });
    (navigator.sendBeacon && navigator.sendBeacon("/v1/metrics?key=dev", body)) ||
      fetch("/v1/metrics?key=dev", { method: "POST", body, keepalive: true });
  });
}
"#;

/// The distinct values of attribute `key` among the stored points of `name`.
async fn arrived(server: &Server, name: &str, key: &str) -> Result<BTreeSet<String>> {
    let points = server
        .get_json(&format!("/api/1/metrics?name={name}&window=1h&limit=1000"))
        .await?;
    Ok(points
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["attributes"][key].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Opens `CLOSES` pages, each in its own browser context, and closes each context right after
/// its page navigated away; returns (Vigil's final exports arrived, the anchor's arrived).
async fn close_pages(server: &Server, browser: &Browser) -> Result<(usize, usize)> {
    let init = std::fs::read_to_string(tool_file(
        "node_modules/web-vitals/dist/web-vitals.iife.js",
    )?)? + ANCHOR;
    for i in 0..CLOSES {
        let context = browser.create_context().await?;
        let page = browser.open_blank(Some(&context)).await?;
        page.add_init_script(&init).await?;
        page.goto(&format!(
            "{}/www/test/vitals.html?flush=60000&load={i}",
            server.url
        ))
        .await?;
        // Painted, the banner's shift seen by both: the page has a CLS to report when left.
        page.wait_for(
            "window.ready && theirs.cls > 0 && v.vitals().cls.value > 0",
            WAIT,
        )
        .await?;
        // Away, and the window closed as soon as the navigation committed.
        page.call(
            "Page.navigate",
            serde_json::json!({ "url": format!("{}/www/test/empty.html", server.url) }),
        )
        .await?;
        browser.close_context(&context).await?;
    }
    // What was sent arrives within a moment; wait until both stop growing.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = (usize::MAX, usize::MAX);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = (
            arrived(server, "web_vitals.cls", "page.view_id")
                .await?
                .len(),
            arrived(server, "anchor.cls", "load").await?.len(),
        );
        if now == last || Instant::now() > deadline {
            return Ok(now);
        }
        last = now;
    }
}

fn rate(n: usize) -> f64 {
    n as f64 / CLOSES as f64
}

#[tokio::test]
async fn final_exports_survive_an_abrupt_close_as_often_as_send_beacon() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let (ours, anchor) = close_pages(&server, &browser).await?;
    println!(
        "abrupt closes: Vigil {ours} of {CLOSES} final exports arrived ({:.1} %), \
         web-vitals + sendBeacon {anchor} of {CLOSES} ({:.1} %)",
        100.0 * rate(ours),
        100.0 * rate(anchor)
    );
    assert!(
        rate(ours) >= FLOOR,
        "Vigil delivered {ours} of {CLOSES} final exports"
    );
    assert!(
        ours + SLACK >= anchor,
        "Vigil {ours} of {CLOSES}, the anchor {anchor}"
    );
    Ok(())
}
