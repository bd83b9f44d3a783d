//! Sends that fail in the browser itself (issue 13, item 5): a request that cannot be made (a
//! malformed URL) and one a Content-Security-Policy blocks. Each is counted in `stats()`,
//! reported once through the error tracker, and not retried forever.

use std::time::Duration;

use serde_json::Value;
use vigil_e2e::{require_pkg, Browser, Page, Result, Server};

const WAIT: Duration = Duration::from_secs(20);

async fn start(page: &Page<'_>, server: &Server, extra: &str) -> Result<()> {
    let dsn = server.dsn();
    page.load_package().await?;
    page.eval(&format!(
        "window.reports = [];
         window.v = vigil.Vigil.start({{ dsn: '{dsn}', release: 'kiosk@1.0.0',
             health: false,
             beforeSend: (e) => {{ reports.push(e.tags?.['vigil.context'] ?? null); return e; }}
             {extra} }});
         true"
    ))
    .await?;
    Ok(())
}

async fn issues(server: &Server) -> Result<Vec<Value>> {
    Ok(server
        .get_json("/api/1/issues")
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[tokio::test]
async fn a_request_that_cannot_be_made_is_counted_reported_once_and_dropped() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    // Metrics to a malformed URL; errors to the server, which receives the report.
    start(
        &page,
        &server,
        ", metricsUrl: 'http://[bad/v1/metrics', flushIntervalMs: 200",
    )
    .await?;
    page.eval("v.recordMetric('kiosk.queue', 1); true").await?;
    page.wait_for("v.stats().sendFailures >= 1", WAIT).await?;
    let deadline = std::time::Instant::now() + WAIT;
    let list = loop {
        let list = issues(&server).await?;
        if !list.is_empty() || std::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(list.len(), 1, "{list:?}");
    let title = list[0]["title"].as_str().unwrap_or_default();
    assert!(title.contains("Failed to parse URL"), "{title}");
    // Later exports fail too: counted and dropped, not reported again, nothing waits to be
    // retried.
    let before = page.eval("v.stats().sendFailures").await?;
    page.eval("v.recordMetric('kiosk.queue', 2); true").await?;
    page.wait_for(&format!("v.stats().sendFailures > {before}"), WAIT)
        .await?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stats = page.eval("v.stats()").await?;
    assert_eq!(
        stats["sendFailures"], stats["eventsDropped"],
        "each failure dropped its export: {stats}"
    );
    assert_eq!(stats["metricsQueued"], 0, "nothing retried: {stats}");
    assert_eq!(
        page.eval("reports").await?,
        serde_json::json!(["transport"])
    );
    let list = issues(&server).await?;
    assert_eq!(list.len(), 1, "reported once: {list:?}");
    assert_eq!(list[0]["count"], 1, "reported once: {list:?}");
    Ok(())
}

#[tokio::test]
async fn a_send_blocked_by_csp_is_counted_reported_once_and_not_retried_forever() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    page.load_package().await?; // the .wasm is fetched before the policy arrives
    page.eval(
        "const m = document.createElement('meta');
         m.httpEquiv = 'Content-Security-Policy';
         m.content = \"connect-src 'none'\";
         document.head.append(m);
         window.calls = 0;
         const original = window.fetch;
         window.fetch = (...args) => { calls++; return original(...args); };
         true",
    )
    .await?;
    start(&page, &server, ", flushIntervalMs: 600000").await?;
    page.eval("v.captureException(new Error('kiosk broke')); true")
        .await?;
    // Backoff 1 s, 2 s, 4 s (±25 %), then the transport stops by itself and reports; the report's
    // own envelope tries once more.
    page.wait_for("v.stats().sendFailures === 5", WAIT).await?;
    tokio::time::sleep(Duration::from_secs(5)).await; // past the next backoff step
    let stats = page.eval("v.stats()").await?;
    assert_eq!(stats["sendFailures"], 5, "not retried forever: {stats}");
    assert_eq!(page.eval("calls").await?, 5, "{stats}");
    assert_eq!(
        stats["eventsQueued"], 2,
        "kept for later, not lost: {stats}"
    );
    assert_eq!(
        page.eval("reports").await?,
        serde_json::json!([null, "transport"])
    );
    // The page says the network is back: everything is tried again (and still blocked).
    page.eval("dispatchEvent(new Event('online')); true")
        .await?;
    page.wait_for("calls > 5", WAIT).await?;
    Ok(())
}
