//! The operator's view against the real server: fleet health from real pages (one leaking on
//! purpose), and the dashboard signed into, looked at and signed out of in headless Chromium.

use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_e2e::{output_dir, require_pkg, Browser, Page, Result, Server};

const WAIT: Duration = Duration::from_secs(40);

/// Loads the package in `page` and starts a runtime that sends a health sample every 200 ms.
async fn start_with_health(page: &Page<'_>, server: &Server) -> Result<String> {
    let dsn = server.dsn();
    page.load_package().await?;
    page.eval(&format!(
        "window.v = vigil.Vigil.start({{ dsn: '{dsn}', release: 'kiosk@2.0.0',
           health: {{ intervalMs: 200 }} }}); true"
    ))
    .await?;
    let id = page.eval("localStorage.getItem('vigil.instance')").await?;
    Ok(id
        .as_str()
        .ok_or("no instance id in localStorage")?
        .to_owned())
}

/// Polls `/api/1/fleet` until `done` holds for it.
async fn wait_fleet(server: &Server, done: impl Fn(&[Value]) -> bool) -> Result<Vec<Value>> {
    let deadline = Instant::now() + WAIT;
    loop {
        let fleet = server.get_json("/api/1/fleet?window=1h").await?;
        let rows = fleet.as_array().cloned().unwrap_or_default();
        if done(&rows) {
            return Ok(rows);
        }
        if Instant::now() > deadline {
            return Err(format!("the fleet never settled: {fleet}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn row<'a>(rows: &'a [Value], id: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["instanceId"] == id)
}

#[tokio::test]
async fn the_fleet_marks_a_page_that_leaks_listeners_and_not_one_that_does_not() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    // Two browsers: two profiles, so two `service.instance.id`s.
    let (leaky_browser, steady_browser) = (Browser::launch().await?, Browser::launch().await?);
    let leaky = leaky_browser.open_empty(&server).await?;
    let steady = steady_browser.open_empty(&server).await?;
    let leaky_id = start_with_health(&leaky, &server).await?;
    let steady_id = start_with_health(&steady, &server).await?;
    assert_ne!(leaky_id, steady_id);
    // The leak: subscriptions made in a loop and never ended (the runtime keeps them: a
    // dropped JS handle never ends a subscription). The steady page ends each one.
    leaky
        .eval(
            "window.leak = setInterval(() => {
               for (let i = 0; i < 5; i++) vigil.listen(window, 'resize', () => {});
             }, 200); true",
        )
        .await?;
    steady
        .eval(
            "window.work = setInterval(() => {
               const s = vigil.listen(window, 'resize', () => {}); s.unsubscribe();
             }, 200); true",
        )
        .await?;
    let started = Instant::now();
    let rows = wait_fleet(&server, |rows| {
        let judged = |id: &str| row(rows, id).is_some_and(|r| r["judged"] == true);
        judged(&leaky_id) && judged(&steady_id) && row(rows, &leaky_id).unwrap()["leaking"] == true
    })
    .await?;
    let leaking = row(&rows, &leaky_id).ok_or("leaky row")?;
    let reasons: Vec<&str> = leaking["reasons"]
        .as_array()
        .ok_or("reasons")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("listeners +")),
        "{reasons:?}"
    );
    let steady_row = row(&rows, &steady_id).ok_or("steady row")?;
    assert_eq!(steady_row["leaking"], false, "{steady_row}");
    assert_eq!(
        rows[0]["instanceId"], leaky_id,
        "leaking instances come first"
    );
    assert_eq!(leaking["release"], "kiosk@2.0.0");
    assert!(leaking["userAgent"]
        .as_str()
        .unwrap_or("")
        .contains("Chrome"));
    assert!(
        leaking["resources"]["listeners"]["last"]
            .as_f64()
            .unwrap_or(0.0)
            > 10.0
    );
    assert!(leaking["wasm"]["last"].as_f64().unwrap_or(0.0) >= 65_536.0);
    println!(
        "fleet verdict after {:?}: leaking {reasons:?}, steady {}",
        started.elapsed(),
        steady_row["reasons"]
    );
    // The sampler is a resource like any other, and it ends with the runtime.
    steady
        .eval("clearInterval(window.work); v.dispose(); true")
        .await?;
    steady.assert_no_resources().await?;
    Ok(())
}

/// A web vital point per value, as the runtime exports them.
fn vitals_export(values: &[(&str, f64)]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let metrics: Vec<String> = values
        .iter()
        .map(|(name, v)| {
            format!(
                r#"{{"name":"web_vitals.{name}","unit":"ms","gauge":{{"dataPoints":[{{"asDouble":{v},"timeUnixNano":"{now}"}}]}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[]}},"scopeMetrics":[{{"scope":{{"name":"t"}},"metrics":[{}]}}]}}]}}"#,
        metrics.join(",")
    )
}

#[tokio::test]
async fn the_dashboard_signs_in_shows_errors_vitals_and_fleet_as_text_and_signs_out() -> Result<()>
{
    require_pkg();
    let server = Server::start(&[]).await?;
    assert!(
        server
            .startup_lines
            .iter()
            .any(|l| l.contains("/dashboard")),
        "{:?}",
        server.startup_lines
    );

    // Refused without a session or token, and with a wrong token.
    let (status, _, _) = server.raw_request("GET", "/api/1/issues", "", "").await?;
    assert_eq!(status, 401);
    let (status, _, _) = server
        .raw_request("GET", "/api/1/fleet", "Authorization: Bearer wrong\r\n", "")
        .await?;
    assert_eq!(status, 401);
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let (status, head, body) = server
        .raw_request("POST", "/dashboard/login", form, "token=wrong")
        .await?;
    assert_eq!(status, 401);
    assert!(body.contains("not the admin token") && !head.contains("set-cookie"));
    let (status, head, body) = server.raw_request("GET", "/dashboard", "", "").await?;
    assert_eq!(status, 200);
    assert!(body.contains("name=\"token\""), "the sign-in form: {body}");
    assert!(head.contains(
        "content-security-policy: default-src 'none'; script-src 'self' 'wasm-unsafe-eval'"
    ));

    // A page reports: an error whose message and tags are HTML, with breadcrumbs; vitals; health.
    let browser = Browser::launch().await?;
    let reporter = browser.open_empty(&server).await?;
    let instance = start_with_health(&reporter, &server).await?;
    reporter
        .eval(
            "v.addBreadcrumb({ category: 'ui.click', message: 'pressed <b>pay</b>' });
             v.setTag('<script>', '<script>window.__xss = 2</script>');
             v.captureException(new TypeError('<img src=x onerror=\"window.__xss=1\">'));
             v.flush(5000)",
        )
        .await?;
    // Vitals as the runtime exports them (the key in the query, as sendBeacon sends it).
    let vitals = vitals_export(&[
        ("lcp", 1800.0),
        ("cls", 0.02),
        ("inp", 350.0),
        ("fcp", 900.0),
        ("ttfb", 120.0),
    ]);
    let (status, _, body) = server
        .raw_request(
            "POST",
            "/v1/metrics?key=dev",
            "Content-Type: application/json\r\n",
            &vitals,
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let fleet = wait_fleet(&server, |rows| row(rows, &instance).is_some()).await?;
    assert!(row(&fleet, &instance).is_some());

    // Sign in through the form, as a person would.
    let page = browser.open(&format!("{}/dashboard", server.url)).await?;
    page.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({ "width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false }),
    )
    .await?;
    let token = serde_json::to_string(&server.admin_token)?;
    page.eval(&format!(
        "document.querySelector('#token').value = {token}; document.querySelector('form').submit(); true"
    ))
    .await?;
    page.wait_for(
        "document.body.dataset.ready === 'true' && document.querySelector('td .title')",
        WAIT,
    )
    .await?;
    let title = page
        .eval("document.querySelector('td .title').textContent")
        .await?;
    assert_eq!(title, "TypeError: <img src=x onerror=\"window.__xss=1\">");
    assert_eq!(
        page.eval("document.querySelectorAll('#view img').length")
            .await?,
        0
    );
    assert_eq!(
        page.eval("document.querySelectorAll('svg.spark polyline').length > 0")
            .await?,
        true
    );
    let cookie_visible = page
        .eval("document.cookie.includes('vigil_session')")
        .await?;
    assert_eq!(cookie_visible, false, "the session cookie is HttpOnly");
    page.screenshot("dashboard-issues").await?;

    // One issue, whole.
    page.click("td .title").await?;
    page.wait_for(
        "document.querySelector('ol.frames li') && document.querySelector('table.crumbs tbody tr')",
        WAIT,
    )
    .await?;
    let crumbs = page
        .eval("document.querySelector('table.crumbs').textContent")
        .await?;
    assert!(
        crumbs.as_str().unwrap_or("").contains("pressed <b>pay</b>"),
        "{crumbs}"
    );
    let tags = page
        .eval("[...document.querySelectorAll('dl.kv')].map(d => d.textContent).join(' ')")
        .await?;
    assert!(
        tags.as_str()
            .unwrap_or("")
            .contains("<script>window.__xss = 2</script>"),
        "{tags}"
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#view script, #view b, #view img').length")
            .await?,
        0
    );
    assert_eq!(
        page.eval("document.querySelectorAll('.chart canvas').length > 0")
            .await?,
        true
    );
    page.screenshot("dashboard-issue").await?;

    // Vitals and the fleet.
    page.eval("location.hash = '#/vitals'; true").await?;
    page.wait_for("document.querySelectorAll('.vital .chart canvas').length === 5 && document.querySelector('.vital .value.good')", WAIT)
        .await?;
    let inp = page.eval("[...document.querySelectorAll('.vital')].find(v => v.textContent.startsWith('INP')).querySelector('.value').className").await?;
    assert_eq!(inp, "value needs-improvement");
    page.screenshot("dashboard-vitals").await?;
    page.eval("location.hash = '#/fleet'; true").await?;
    page.wait_for("document.querySelector('.instance .id')", WAIT)
        .await?;
    let ids = page
        .eval("[...document.querySelectorAll('.instance .id')].map(e => e.textContent)")
        .await?;
    assert!(
        ids.as_array()
            .is_some_and(|a| a.iter().any(|i| i == instance.as_str())),
        "{ids}"
    );
    page.screenshot("dashboard-fleet").await?;
    page.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({ "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true }),
    )
    .await?;
    page.eval("location.hash = '#/issues'; true").await?;
    page.wait_for("document.querySelector('td .title')", WAIT)
        .await?;
    page.screenshot("dashboard-phone").await?;

    // Nothing ran, nothing failed.
    assert_eq!(page.eval("window.__xss === undefined").await?, true);
    assert_eq!(reporter.eval("window.__xss === undefined").await?, true);
    let bad: Vec<String> = browser
        .console()
        .into_iter()
        .filter(|l| l.starts_with("uncaught") || l.starts_with("console.error"))
        .collect();
    assert!(bad.is_empty(), "console errors: {bad:?}");

    // Sign out: the session is gone, the API refuses the page.
    page.eval("document.querySelector('header form').submit(); true")
        .await?;
    page.wait_for("document.querySelector('#token')", WAIT)
        .await?;
    let status = page
        .eval("fetch('/api/1/issues').then(r => r.status)")
        .await?;
    assert_eq!(status, 401);
    println!("screenshots in {}", output_dir().display());
    Ok(())
}
