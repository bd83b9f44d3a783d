//! The performance monitor against Google's `web-vitals` library in the same page, and its
//! exports against the real server.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_e2e::{require_pkg, tool_file, Browser, Page, Result, Server};

const WAIT: Duration = Duration::from_secs(20);
/// One frame at 60 Hz: INP may differ by this much (the libraries see the same entries, but may
/// read them at different times).
const FRAME_MS: f64 = 16.7;

/// The `web-vitals` IIFE build installed by `./dev.sh setup`.
fn web_vitals_source() -> Result<String> {
    let file = tool_file("node_modules/web-vitals/dist/web-vitals.iife.js")?;
    Ok(std::fs::read_to_string(file)?)
}

/// Polls `GET /api/1/metrics?name=…` until `done` accepts the points; returns them.
async fn wait_points(
    server: &Server,
    name: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    let deadline = Instant::now() + WAIT;
    loop {
        let points = server
            .get_json(&format!("/api/1/metrics?name={name}&window=1h"))
            .await?;
        let points = points.as_array().cloned().unwrap_or_default();
        if done(&points) {
            return Ok(points);
        }
        if Instant::now() > deadline {
            return Err(format!("waited for {name} points; the server has {points:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn view_ids(points: &[Value]) -> BTreeSet<String> {
    points
        .iter()
        .filter_map(|p| p["attributes"]["page.view_id"].as_str().map(str::to_owned))
        .collect()
}

async fn ours_and_theirs(page: &Page<'_>) -> Result<(Value, Value)> {
    let ours = page.eval("v.vitals()").await?;
    let theirs = page.eval("theirs").await?;
    Ok((ours, theirs))
}

#[tokio::test]
async fn vitals_equal_those_of_web_vitals_and_reach_the_server() -> Result<()> {
    require_pkg();
    let source = web_vitals_source()?;
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    page.add_init_script(&source).await?;
    page.goto(&format!("{}/www/test/vitals.html", server.url))
        .await?;
    page.wait_for("window.ready && window.webVitals", WAIT)
        .await?;
    // The banner shifts the image 300 ms after load; both libraries see it.
    page.wait_for(
        "theirs.lcp > 0 && theirs.fcp > 0 && theirs.ttfb >= 0 && theirs.cls > 0 \
         && v.vitals().cls.value > 0 && v.vitals().lcp && v.vitals().ttfb",
        WAIT,
    )
    .await?;
    // Two clicks with slow handlers (150 ms, then 210 ms): INP is the longer one.
    page.click("#slow").await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    page.click("#slow").await?;
    page.wait_for(
        "window.clicks === 2 && theirs.inp > 200 && v.vitals().inp?.value > 200",
        WAIT,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await; // both have seen every entry
    let (ours, theirs) = ours_and_theirs(&page).await?;
    eprintln!("vitals: ours {ours}\n        web-vitals {theirs}");
    for name in ["lcp", "fcp", "ttfb", "cls"] {
        assert_eq!(
            ours[name]["value"].as_f64(),
            theirs[name].as_f64(),
            "{name}: ours {ours} theirs {theirs}"
        );
    }
    let (inp, their_inp) = (
        ours["inp"]["value"].as_f64().ok_or("inp")?,
        theirs["inp"].as_f64().ok_or("their inp")?,
    );
    assert!(
        (inp - their_inp).abs() <= FRAME_MS,
        "INP within a frame: ours {inp}, theirs {their_inp}"
    );
    assert_eq!(ours["inp"]["rating"], "needs-improvement", "{ours}");
    assert_eq!(ours["lcp"]["rating"], "good", "{ours}");

    // Leaving the page exports the final values; the server stores what the page measured.
    page.goto(&format!("{}/www/test/empty.html", server.url))
        .await?;
    for name in ["lcp", "fcp", "ttfb", "cls", "inp"] {
        let points = wait_points(&server, &format!("web_vitals.{name}"), |p| !p.is_empty()).await?;
        assert_eq!(
            points.len(),
            1,
            "{name}: one point per page view: {points:?}"
        );
        assert_eq!(
            points[0]["value"].as_f64(),
            ours[name]["value"].as_f64(),
            "{name} stored as measured"
        );
        assert_eq!(
            points[0]["attributes"]["rating"], ours[name]["rating"],
            "{name}"
        );
    }
    let vitals = server.get_json("/api/1/vitals?window=1h").await?;
    assert_eq!(vitals["inp"]["count"], 1, "{vitals}");
    assert_eq!(vitals["inp"]["needsImprovement"], 1, "{vitals}");
    // Navigation and resource timing arrived with them.
    let load = wait_points(&server, "browser.navigation.load", |p| !p.is_empty()).await?;
    assert!(load[0]["value"].as_f64() > Some(0.0), "{load:?}");
    let res = wait_points(&server, "browser.resources.count", |p| !p.is_empty()).await?;
    assert!(res[0]["value"].as_f64() >= Some(2.0), "{res:?}");
    Ok(())
}

#[tokio::test]
async fn fifty_page_loads_closed_within_a_second_all_arrive() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    const LOADS: usize = 50;
    let mut stay = Vec::new();
    for i in 0..LOADS {
        let started = Instant::now();
        page.goto(&format!(
            "{}/www/test/vitals.html?flush=60000&load={i}",
            server.url
        ))
        .await?;
        // Loaded, started and painted (a page left before its first paint has no FCP or LCP,
        // in web-vitals as in ours): then away at once (the next iteration navigates).
        page.wait_for(
            "window.ready && performance.getEntriesByName('first-contentful-paint').length > 0",
            WAIT,
        )
        .await?;
        stay.push(started.elapsed());
    }
    page.goto(&format!("{}/www/test/empty.html", server.url))
        .await?;
    let slowest = stay.iter().max().copied().unwrap_or_default();
    eprintln!("page loads: slowest from navigate to leaving {slowest:?}");
    for name in ["ttfb", "fcp", "lcp", "cls"] {
        let points = wait_points(&server, &format!("web_vitals.{name}"), |p| {
            view_ids(p).len() >= LOADS
        })
        .await?;
        assert_eq!(
            view_ids(&points).len(),
            LOADS,
            "{name}: every page view arrived"
        );
        assert_eq!(points.len(), LOADS, "{name}: and each once");
    }
    Ok(())
}

#[tokio::test]
async fn dispose_stops_the_observer_and_the_export_interval() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    page.goto(&format!("{}/www/test/vitals.html?flush=200", server.url))
        .await?;
    page.wait_for("window.ready", WAIT).await?;
    let counts = page.eval("vigil.resources()").await?;
    assert_eq!(counts["observers"], 1, "{counts}");
    assert_eq!(
        counts["intervals"], 2,
        "the export and the health sampler: {counts}"
    );
    page.eval("v.recordMetric('kiosk.queue', 3, '1', { lane: 'a' })")
        .await?;
    page.wait_for("v.stats().metricsSent >= 1", WAIT).await?;
    let custom = wait_points(&server, "kiosk.queue", |p| !p.is_empty()).await?;
    assert_eq!(custom[0]["value"], 3.0);
    assert_eq!(custom[0]["attributes"]["lane"], "a");
    // Count every request the page makes from now on.
    page.eval(
        "window.requests = [];
         const original = window.fetch;
         window.fetch = (...args) => { requests.push(String(args[0])); return original(...args); };
         v.dispose(); true",
    )
    .await?;
    page.assert_no_resources().await?;
    page.eval("performance.mark('after-dispose'); dispatchEvent(new Event('resize')); true")
        .await?;
    tokio::time::sleep(Duration::from_millis(1000)).await; // five export intervals
    let requests = page.eval("requests").await?;
    assert_eq!(requests, serde_json::json!([]), "no request after dispose");
    let err = page
        .eval("v.vitals()")
        .await
        .expect_err("a disposed runtime throws");
    assert!(err.to_string().contains("disposed"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_back_forward_cache_restore_starts_new_measurements() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    let url = format!("{}/www/test/vitals.html?flush=60000", server.url);
    page.goto(&url).await?;
    page.wait_for(
        "window.ready && v.vitals().cls.value > 0 && v.vitals().lcp",
        WAIT,
    )
    .await?;
    let before = page.eval("v.vitals()").await?;
    page.goto(&format!("{}/www/test/empty.html", server.url))
        .await?;
    page.eval("history.back(); true").await?;
    page.wait_for("window.restores === 1", WAIT).await?;
    // Two frames after the restore: LCP and FCP are the time to the next paint, TTFB 0, CLS 0.
    page.wait_for("v.vitals().ttfb.value === 0", WAIT).await?;
    let after = page.eval("v.vitals()").await?;
    let since_restore = page
        .eval("performance.now() - window.restoredAt")
        .await?
        .as_f64()
        .ok_or("time since the restore")?;
    assert_eq!(after["cls"]["value"], 0.0, "{after}");
    // Measured from the restore: within the time since it, and not the first visit's value.
    // (Not "smaller than the first visit's": on a loaded machine the restore's first paint can
    // take longer than the first load's did.)
    let lcp = after["lcp"]["value"].as_f64().ok_or("lcp")?;
    assert!(
        (0.0..=since_restore).contains(&lcp) && after["lcp"] != before["lcp"],
        "{before} {after}, {since_restore} ms since the restore"
    );
    assert_eq!(after["lcp"], after["fcp"], "{after}");
    assert_eq!(page.eval("vigil.resources().observers").await?, 1);
    // The first visit's values were exported when it went into the cache; the restored
    // measurements go when this one is left.
    page.goto(&format!("{}/www/test/empty.html?again", server.url))
        .await?;
    let ttfb = wait_points(&server, "web_vitals.ttfb", |p| p.len() >= 2).await?;
    let views = view_ids(&ttfb);
    assert_eq!(views.len(), 1, "the same page view: {ttfb:?}");
    assert!(ttfb.iter().any(|p| p["value"] == 0.0), "{ttfb:?}");
    Ok(())
}
