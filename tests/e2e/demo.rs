//! The demo page and the lifecycle core in a real browser.

use std::time::Duration;

use serde_json::Value;
use vigil_e2e::{require_pkg, Browser, Result, Server};

const WAIT: Duration = Duration::from_secs(15);

/// The demo page shows the version and live counts; after "Dispose all" every count reads 0.
#[tokio::test]
async fn demo_shows_version_and_live_counts_then_zeros_after_dispose() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open(&format!("{}/", server.url)).await?;
    page.wait_for("window.vigilDemo && window.vigilDemo.ready", WAIT)
        .await?;

    let version = page
        .eval("document.getElementById('version').textContent")
        .await?;
    assert_eq!(version, Value::from(env!("CARGO_PKG_VERSION")));

    let live = |name: &str| {
        format!("Number(document.querySelector('tr[data-name={name}] td.n').textContent)")
    };
    // resize, visibilitychange, online, offline (the WebSocket service), pagehide, pageshow,
    // the tracker's 10 (error, unhandledrejection, visibilitychange, popstate, focus, blur,
    // online, offline, and its transport's online/offline), and the performance monitor's 3
    // (keydown and click until the first input, visibilitychange; `load` is gone once read).
    page.wait_for(&format!("{} === 19", live("listeners")), WAIT)
        .await?;
    // uptime, the orders stats, the tracker stats, the vitals display, the metrics export, the
    // fleet health sampler.
    assert_eq!(page.eval(&live("intervals")).await?, Value::from(6));
    assert_eq!(page.eval(&live("observers")).await?, Value::from(1));
    assert_eq!(page.eval(&live("services")).await?, Value::from(12));
    assert_eq!(page.eval(&live("consolePatches")).await?, Value::from(2));
    // The tracker's buttons: a thrown error arrives on the server.
    page.eval("document.getElementById('throw').click()")
        .await?;
    let sent = "(() => { const r = [...document.querySelectorAll('#tracker-stats tr')]
        .find(r => r.cells[0].textContent === 'eventsSent');
        return r !== undefined && Number(r.cells[1].textContent) >= 1; })()";
    page.wait_for(sent, WAIT).await?;
    // The live orders feed: the socket opens, and a posted order shows up.
    page.wait_for(
        "document.getElementById('ws-state').textContent === 'open'",
        WAIT,
    )
    .await?;
    assert_eq!(page.eval(&live("sockets")).await?, Value::from(1));
    page.eval("document.getElementById('post-order').click()")
        .await?;
    page.wait_for(
        "document.querySelectorAll('#orders li.new').length === 1",
        WAIT,
    )
    .await?;
    page.wait_for(
        "document.getElementById('ws-rtt').textContent.endsWith('ms')",
        WAIT,
    )
    .await?;
    // The vitals panel: FCP and TTFB are measured and rated by now.
    page.wait_for(
        "['fcp', 'ttfb'].every(k => ['good', 'needs-improvement', 'poor']
            .includes(document.querySelector(`tr[data-vital=${k}] td.rating`)?.textContent))",
        WAIT,
    )
    .await?;
    page.screenshot("demo-running").await?;

    page.eval("document.getElementById('dispose').click()")
        .await?;
    page.wait_for(
        "[...document.querySelectorAll('#resources td.n')].every(td => td.textContent === '0')",
        WAIT,
    )
    .await?;
    let summary = page
        .eval("document.getElementById('summary').textContent")
        .await?;
    assert_eq!(
        summary,
        Value::from("nothing live: every resource released")
    );
    let rows = page
        .eval("document.querySelectorAll('#resources tr').length")
        .await?;
    assert_eq!(rows, Value::from(11), "every resource kind is shown");
    page.screenshot("demo-disposed").await?;

    // "Start again" brings the services back: the runtime is reusable after disposeAll.
    page.eval("document.getElementById('restart').click()")
        .await?;
    page.wait_for(&format!("{} === 19", live("listeners")), WAIT)
        .await?;
    Ok(())
}

/// After `disposeAll()`, DevTools counts as many JS event listeners as before the runtime
/// started (after a forced GC), and `resources()` is all zeros.
#[tokio::test]
async fn dispose_all_returns_js_event_listeners_to_the_baseline() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    let baseline = page.dom_counters().await?;

    page.load_package().await?;
    page.eval(
        "(async () => {
            const m = vigil;
            const noop = () => {};
            for (let i = 0; i < 10; i++) {
                m.listen(window, 'resize', noop);
                m.listen(document, 'click', noop);
                m.every(60000, noop);
                m.after(60000, noop);
            }
            m.onDispose(noop, 5);
            return true;
        })()",
    )
    .await?;
    let running = page.dom_counters().await?;
    // 20 listeners of ours, plus the cleanup manager's pagehide and pageshow.
    assert_eq!(
        running.js_event_listeners,
        baseline.js_event_listeners + 22,
        "baseline {baseline:?}, running {running:?}"
    );
    let counts = page.eval("vigil.resources()").await?;
    assert_eq!(counts["listeners"], 22);
    assert_eq!(counts["intervals"], 10);
    assert_eq!(counts["timeouts"], 10);
    assert_eq!(counts["services"], 41);

    page.eval("vigil.disposeAll(); vigil.disposeAll(); true")
        .await?;
    let after = page.dom_counters().await?;
    assert_eq!(
        after.js_event_listeners, baseline.js_event_listeners,
        "listeners leaked: baseline {baseline:?}, after dispose {after:?}"
    );
    page.assert_no_resources().await?;
    Ok(())
}

/// A real (synthetic) `pagehide` that is not persisted disposes everything, as `disposeAll` does.
#[tokio::test]
async fn a_final_pagehide_disposes_everything() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    page.load_package().await?;
    let total = page
        .eval(
            "(async () => {
                const m = vigil;
                let disposed = 0;
                m.onDispose(() => { disposed++; });
                m.every(1000, () => {});
                const before = Object.values(m.resources()).reduce((a, b) => a + b, 0);
                dispatchEvent(new PageTransitionEvent('pageshow', { persisted: false }));
                dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true }));
                const cached = m.resources().services;
                dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true }));
                dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false }));
                const after = Object.values(m.resources()).reduce((a, b) => a + b, 0);
                return { before, cached, after, disposed };
            })()",
        )
        .await?;
    assert_eq!(total["before"], 5, "{total}"); // interval + 2 services + pagehide/pageshow
    assert_eq!(total["cached"], 2, "the bfcache keeps services: {total}");
    assert_eq!(total["after"], 0, "{total}");
    assert_eq!(total["disposed"], 1, "{total}");
    Ok(())
}
