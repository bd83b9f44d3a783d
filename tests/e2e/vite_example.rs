//! `examples/vite/`: a Vite + TypeScript app built against the package (`vigil/telemetry` as an
//! npm `file:` dependency), served from its own origin, reporting to the real server.

use std::time::Duration;

use vigil_e2e::{workspace_root, Browser, Result, Server, StaticSite};

const WAIT: Duration = Duration::from_secs(20);

/// Waits until the server's issues of project 1 hold `events` events in all; returns the issues.
async fn wait_events(server: &Server, events: u64) -> Result<serde_json::Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let issues = server.get_json("/api/1/issues").await?;
        let total: u64 = issues
            .as_array()
            .map(|a| a.iter().filter_map(|i| i["count"].as_u64()).sum())
            .unwrap_or(0);
        if total == events {
            return Ok(issues);
        }
        if total > events || std::time::Instant::now() > deadline {
            return Err(
                format!("waited for {events} events, the server has {total}: {issues}").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_vite_app_reports_a_thrown_error_and_leaves_nothing_behind() -> Result<()> {
    let dist = workspace_root().join("examples/vite/dist");
    assert!(
        dist.join("index.html").exists(),
        "{} is missing: build the example with `./dev.sh test` (npm ci, tsc --noEmit, vite build in examples/vite)",
        dist.display()
    );
    let site = StaticSite::serve(&dist).await?;
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser
        .open_app(&site, &server, "window.vigilExample !== undefined")
        .await?;

    // Bundled by Vite: the wasm is an asset of the app's own origin, not the server's /pkg/.
    let wasm: String = page
        .eval("performance.getEntriesByType('resource').map(e => e.name).find(n => n.endsWith('.wasm')) || ''")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(wasm.starts_with(&site.url), "wasm loaded from {wasm:?}");

    page.click("#throw").await?;
    let issues = wait_events(&server, 1).await?;
    assert!(
        issues[0]["title"]
            .as_str()
            .is_some_and(|t| t.contains("thrown from the Vite example")),
        "{issues}"
    );

    page.click("#capture").await?;
    wait_events(&server, 2).await?;
    let id = page.eval("window.vigilExample.lastEventId").await?;
    let event = server
        .get_json(&format!(
            "/api/1/events/{}",
            id.as_str().ok_or("no lastEventId")?
        ))
        .await?;
    assert!(
        event["exception"]["values"][0]["value"] == "captured from the Vite example",
        "{event}"
    );
    // Typed options reached the runtime: release, environment, the tag beforeSend added, the
    // hint's level and tags, the breadcrumb from start-up.
    assert_eq!(event["release"], "vite-example@0.1.0", "{event}");
    assert_eq!(event["environment"], "example", "{event}");
    assert_eq!(event["level"], "warning", "{event}");
    assert_eq!(event["tags"]["bundler"], "vite", "{event}");
    assert_eq!(event["tags"]["button"], "capture", "{event}");
    assert_eq!(event["tags"]["example"], "vite", "{event}");
    assert!(
        event["breadcrumbs"]["values"]
            .as_array()
            .is_some_and(|b| b.iter().any(|c| c["message"] == "the app started")),
        "{event}"
    );
    let stats = page.eval("window.vigilExample.vigil.stats()").await?;
    assert_eq!(stats["eventsSent"], 2, "{stats}");
    page.screenshot("vite-example").await?;

    page.click("#dispose").await?;
    page.assert_no_resources_in("window.vigilExample.resources()")
        .await?;
    Ok(())
}
