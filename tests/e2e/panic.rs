//! The package's own panic handler (the crate is `#![no_std]`), in a real page: a release build
//! with the error tracker and the test-only `panic-probe` feature (`./dev.sh test` builds it into
//! `target/panic-probe`), whose `panicProbe(formatted)` export panics.

use std::time::Duration;

use vigil_e2e::{workspace_root, Browser, Result, Server, StaticSite};

const WAIT: Duration = Duration::from_secs(20);

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>vigil panic probe</title>
<script type="module">
import init, { Vigil, panicProbe } from "./vigil.js";
await init();
window.sent = [];
const dsn = new URLSearchParams(location.search).get("dsn");
window.vigil = Vigil.start({ dsn, beforeSend: (e) => { window.sent.push(e.event_id); return e; } });
// What the page sees: the call throws (the wasm traps after the handler ran).
window.probe = (formatted) => {
  try { panicProbe(formatted); return "returned"; }
  catch (e) { return `${e.constructor.name}: ${e.message}`; }
};
window.ready = true;
</script>
"#;

/// Waits until the server holds `n` events of project 1; returns them, oldest first.
async fn events(
    server: &Server,
    page: &vigil_e2e::Page<'_>,
    n: usize,
) -> Result<Vec<serde_json::Value>> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let ids = page.eval("window.sent").await?;
        let ids: Vec<String> = ids
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut stored = Vec::new();
        for id in &ids {
            if let Ok(event) = server.get_json(&format!("/api/1/events/{id}")).await {
                if event["event_id"].is_string() {
                    stored.push(event);
                }
            }
        }
        if stored.len() >= n {
            return Ok(stored);
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("waited for {n} events, the server has {}", stored.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_panic_is_reported_to_the_tracker_then_traps() -> Result<()> {
    let dir = workspace_root().join("target/panic-probe");
    assert!(
        dir.join("vigil.js").exists(),
        "{} is missing: `./dev.sh test` builds it (build_panic_probe)",
        dir.display()
    );
    std::fs::write(dir.join("index.html"), PAGE)?;
    let site = StaticSite::serve(&dir).await?;
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser
        .open_app(&site, &server, "window.ready === true")
        .await?;

    // A plain message: kept, with the file and line of the panic.
    let seen = page.eval("window.probe(false)").await?;
    assert_eq!(seen, "RuntimeError: unreachable", "{:?}", browser.console());
    let first = events(&server, &page, 1).await?.remove(0);
    let exception = &first["exception"]["values"][0];
    assert_eq!(exception["type"], "VigilPanic", "{first}");
    let value = exception["value"].as_str().unwrap_or_default();
    assert!(
        value.starts_with("vigil panic probe at src/js/runtime.rs:"),
        "{first}"
    );
    assert_eq!(first["level"], "fatal", "{first}");
    assert_eq!(first["tags"]["vigil.context"], "panic", "{first}");
    assert!(
        browser
            .console()
            .iter()
            .any(|l| l.contains("[vigil] a panic: this is a bug in vigil")),
        "{:?}",
        browser.console()
    );

    // The page goes on: a formatted message is not formatted (no core::fmt in the package),
    // the place still is; the tracker still captures.
    let seen = page.eval("window.probe(true)").await?;
    assert_eq!(seen, "RuntimeError: unreachable", "{:?}", browser.console());
    let second = events(&server, &page, 2).await?.remove(1);
    let value = second["exception"]["values"][0]["value"]
        .as_str()
        .unwrap_or_default();
    assert!(
        value.starts_with("a panic at src/js/runtime.rs:"),
        "{second}"
    );
    page.eval("window.vigil.captureMessage('still here')")
        .await?;
    events(&server, &page, 3).await?;
    Ok(())
}
