//! The error tracker (`Vigil`) against the real server in a real browser.

use std::time::Duration;

use serde_json::Value;
use vigil_e2e::{require_pkg, Browser, Page, Result, Server};

const WAIT: Duration = Duration::from_secs(20);

async fn admin_get(server: &Server, path: &str) -> Result<Value> {
    server.get_json(path).await
}

/// Waits until the server's issues of project 1 hold `events` events in all.
async fn wait_events(server: &Server, events: u64) -> Result<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let issues = admin_get(server, "/api/1/issues").await?;
        let total: u64 = issues
            .as_array()
            .map(|a| a.iter().filter_map(|i| i["count"].as_u64()).sum())
            .unwrap_or(0);
        if total >= events {
            return Ok(issues);
        }
        if std::time::Instant::now() > deadline {
            return Err(
                format!("waited for {events} events, the server has {total}: {issues}").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_vigil(page: &Page<'_>, server: &Server, extra: &str) -> Result<()> {
    let dsn = server.dsn();
    page.load_package().await?;
    page.eval(&format!(
        "(async () => {{
            const m = vigil;
            window.v = m.Vigil.start({{ dsn: '{dsn}', release: 'kiosk@1.0.0' {extra} }});
            return true;
        }})()"
    ))
    .await?;
    Ok(())
}

#[tokio::test]
async fn errors_rejections_and_messages_arrive_with_breadcrumbs() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    start_vigil(&page, &server, "").await?;
    page.eval(
        "v.addBreadcrumb({ category: 'ui.click', message: 'pressed buy' });
         console.warn('low stock', 3);
         v.setTag('kiosk', 'lobby');
         v.setUser({ id: 'k-7' });
         setTimeout(() => { throw new TypeError('price is undefined'); }, 0);
         Promise.reject(new RangeError('bad page', { cause: new Error('root cause') }));
         v.captureMessage('kiosk booted: café 😀', 'warning');
         true",
    )
    .await?;
    let issues = wait_events(&server, 3).await?;
    let titles: Vec<&str> = issues
        .as_array()
        .ok_or("issues")?
        .iter()
        .filter_map(|i| i["title"].as_str())
        .collect();
    for t in [
        "TypeError: price is undefined",
        "RangeError: bad page",
        "kiosk booted: café 😀", // the envelope's item length counts UTF-8 bytes
    ] {
        assert!(titles.contains(&t), "{t} missing from {titles:?}");
    }
    let by_title = |t: &str| -> Value {
        issues
            .as_array()
            .and_then(|a| a.iter().find(|i| i["title"] == t).cloned())
            .unwrap_or_default()
    };
    let id = by_title("TypeError: price is undefined")["lastEventId"]
        .as_str()
        .ok_or("id")?
        .to_owned();
    let event = admin_get(&server, &format!("/api/1/events/{id}")).await?;
    let ex = &event["exception"]["values"][0];
    assert_eq!(ex["type"], "TypeError");
    assert_eq!(ex["mechanism"]["handled"], false);
    assert_eq!(ex["mechanism"]["type"], "onerror");
    assert!(
        ex["stacktrace"]["frames"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{event}"
    );
    assert_eq!(event["platform"], "javascript");
    assert_eq!(event["release"], "kiosk@1.0.0");
    assert_eq!(event["environment"], "production");
    assert_eq!(event["tags"]["kiosk"], "lobby");
    assert_eq!(event["user"]["id"], "k-7");
    assert!(event["request"]["url"]
        .as_str()
        .is_some_and(|u| u.ends_with("/www/test/empty.html")));
    assert!(event["request"]["headers"]["User-Agent"]
        .as_str()
        .is_some_and(|u| u.contains("Chrome")));
    let crumbs = event["breadcrumbs"]["values"]
        .as_array()
        .ok_or("breadcrumbs")?;
    assert!(
        crumbs.iter().any(|b| b["message"] == "pressed buy"),
        "{crumbs:?}"
    );
    assert!(
        crumbs.iter().any(|b| b["category"] == "console"
            && b["message"] == "low stock 3"
            && b["level"] == "warning"),
        "{crumbs:?}"
    );

    let id = by_title("RangeError: bad page")["lastEventId"]
        .as_str()
        .ok_or("id")?
        .to_owned();
    let event = admin_get(&server, &format!("/api/1/events/{id}")).await?;
    let values = event["exception"]["values"].as_array().ok_or("values")?;
    assert_eq!(values.len(), 2, "the cause is linked: {event}");
    assert_eq!(values[0]["value"], "root cause");
    assert_eq!(values[1]["mechanism"]["type"], "onunhandledrejection");

    let stats = page.eval("v.stats()").await?;
    assert_eq!(stats["eventsCaptured"], 3, "{stats}");
    page.wait_for("v.stats().eventsSent === 3", WAIT).await?;

    // Dispose: every listener gone, console restored, all counts zero.
    page.eval("v.dispose(); v.dispose(); true").await?;
    page.assert_no_resources().await?;
    assert_eq!(
        page.eval("console.warn.toString().includes('[native code]')")
            .await?,
        true
    );
    Ok(())
}

#[tokio::test]
async fn twenty_errors_captured_offline_arrive_exactly_once() -> Result<()> {
    require_pkg();
    let mut server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    start_vigil(&page, &server, "").await?;
    server.kill().await?;
    page.eval("for (let i = 0; i < 20; i++) v.captureException(new Error('offline ' + i)); true")
        .await?;
    let flushed = page.eval("v.flush(300)").await?;
    assert_eq!(
        flushed, false,
        "nothing can be acknowledged while the server is down"
    );
    let stats = page.eval("v.stats()").await?;
    assert_eq!(stats["eventsQueued"], 20, "{stats}");
    assert_eq!(
        page.eval(
            "JSON.parse(localStorage.getItem(Object.keys(localStorage).find(k => k !== 'vigil.instance')))
                .filter(([category]) => category === 'error').length"
        )
        .await?,
        20,
        "a persistent copy survives the page (next to the metrics export flush() queued)"
    );
    server.start_again().await?;
    // The page reloads: the next page load sends what the last one left.
    let url = format!("{}/www/test/empty.html", server.url);
    page.goto(&url).await?;
    start_vigil(&page, &server, "").await?;
    wait_events(&server, 20).await?;
    page.wait_for("v.stats().eventsQueued === 0", WAIT).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let issues = admin_get(&server, "/api/1/issues").await?;
    // Same place, different values: one issue, and each event stored exactly once.
    let list = issues.as_array().ok_or("issues")?;
    assert_eq!(list.len(), 1, "{issues}");
    assert_eq!(list[0]["count"], 20, "exactly once each: {issues}");
    assert_eq!(
        page.eval("Object.keys(localStorage).filter(k => k !== 'vigil.instance').length")
            .await?,
        0,
        "the copy is cleared (the instance id stays)"
    );
    Ok(())
}

#[tokio::test]
async fn an_error_right_before_navigating_away_arrives() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    start_vigil(&page, &server, "").await?;
    page.eval(
        "v.captureException(new Error('last words'));
         location.href = '/www/test/empty.html?next';
         true",
    )
    .await?;
    let issues = wait_events(&server, 1).await?;
    assert_eq!(issues[0]["title"], "Error: last words");
    Ok(())
}

#[tokio::test]
async fn a_429_stops_sending_for_the_time_it_says() -> Result<()> {
    require_pkg();
    let server = Server::start(&["--rate-limit", "0.01", "--rate-limit-burst", "1"]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    start_vigil(&page, &server, "").await?;
    page.eval("v.captureMessage('first'); true").await?;
    wait_events(&server, 1).await?;
    page.eval("v.captureMessage('second'); true").await?;
    page.wait_for("v.stats().rateLimitedUntil !== null", WAIT)
        .await?;
    let until = page.eval("v.stats().rateLimitedUntil - Date.now()").await?;
    assert!(
        until.as_f64().is_some_and(|ms| ms > 50_000.0),
        "held ~100 s: {until}"
    );
    // More events while limited: queued, and not one more request reaches the server.
    page.eval("v.captureMessage('third'); v.captureMessage('fourth'); true")
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = server.get("/metrics").await?;
    assert!(
        metrics.contains("vigil_events_rejected_total{reason=\"rate_limited\"} 1\n"),
        "exactly one request was refused: {metrics}"
    );
    assert_eq!(page.eval("v.stats().eventsQueued").await?, 3);
    Ok(())
}

#[tokio::test]
async fn two_starts_then_one_thrown_error_is_one_event_and_before_send_is_safe() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    start_vigil(&page, &server, "").await?;
    start_vigil(
        &page,
        &server,
        ", beforeSend: (e) => {
            if (e.message === 'drop me') return null;
            if (e.message === 'hook bug') throw new Error('oops in beforeSend');
            e.tags.checked = 'yes';
            return e;
        }",
    )
    .await?;
    page.eval("setTimeout(() => { throw new Error('thrown once'); }, 0); true")
        .await?;
    page.eval("v.captureMessage('drop me'); v.captureMessage('hook bug'); true")
        .await?;
    let issues = wait_events(&server, 2).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let issues_now = admin_get(&server, "/api/1/issues").await?;
    assert_eq!(issues, issues_now, "nothing more arrives");
    let list = issues.as_array().ok_or("issues")?;
    let thrown: Vec<_> = list
        .iter()
        .filter(|i| i["title"] == "Error: thrown once")
        .collect();
    assert_eq!(thrown.len(), 1);
    assert_eq!(thrown[0]["count"], 1, "one event, not one per start");
    assert!(
        list.iter().all(|i| i["title"] != "drop me"),
        "beforeSend dropped it"
    );
    let hook = list
        .iter()
        .find(|i| i["title"] == "hook bug")
        .ok_or("hook bug arrives")?;
    let event = admin_get(
        &server,
        &format!(
            "/api/1/events/{}",
            hook["lastEventId"].as_str().unwrap_or("")
        ),
    )
    .await?;
    assert!(
        event["tags"]["checked"].is_null(),
        "sent unchanged: {event}"
    );
    let crumbs = page.eval("v.breadcrumbs().map(b => b.message)").await?;
    assert!(
        crumbs.as_array().is_some_and(|c| c
            .iter()
            .any(|m| m.as_str().is_some_and(|m| m.contains("beforeSend threw")))),
        "{crumbs}"
    );
    let thrown_event = admin_get(
        &server,
        &format!(
            "/api/1/events/{}",
            thrown[0]["lastEventId"].as_str().unwrap_or("")
        ),
    )
    .await?;
    assert_eq!(thrown_event["tags"]["checked"], "yes");
    Ok(())
}
