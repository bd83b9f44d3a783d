//! The dashboard's first paint with 10,000 issues stored (prints figures, asserts nothing):
//! `./dev.sh bench`. The issues arrive as real envelopes through the real server binary; the
//! dashboard is signed into through its form and loaded again for each measurement.

use std::time::Instant;

use vigil_e2e::{require_pkg, Browser, Result, Server};

const ISSUES: usize = 10_000;

fn envelope(i: usize) -> String {
    let event = format!(
        r#"{{"event_id":"{i:032x}","level":"error","exception":{{"values":[{{"type":"TypeError","value":"thing {i} is undefined"}}]}},"fingerprint":["bench-{i}"]}}"#
    );
    format!(
        "{{}}\n{{\"type\":\"event\",\"length\":{}}}\n{event}\n",
        event.len()
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    require_pkg();
    let server =
        Server::start(&["--rate-limit", "1000000", "--rate-limit-burst", "1000000"]).await?;
    let started = Instant::now();
    for i in 0..ISSUES {
        let (status, _, body) = server
            .raw_request("POST", "/api/1/envelope/?sentry_key=dev", "", &envelope(i))
            .await?;
        assert_eq!(status, 200, "{body}");
    }
    println!(
        "dashboard: {ISSUES} issues stored in {:.1?}",
        started.elapsed()
    );
    let browser = Browser::launch().await?;
    let page = browser.open(&format!("{}/dashboard", server.url)).await?;
    let token = serde_json::to_string(&server.admin_token)?;
    page.eval(&format!(
        "document.querySelector('#token').value = {token}; document.querySelector('form').submit(); true"
    ))
    .await?;
    page.wait_for(
        "document.body.dataset.ready === 'true'",
        std::time::Duration::from_secs(30),
    )
    .await?;
    let mut paints = Vec::new();
    let mut ready = Vec::new();
    for _ in 0..5 {
        page.goto(&format!("{}/dashboard#/issues", server.url))
            .await?;
        page.wait_for(
            "document.body.dataset.ready === 'true' && document.querySelectorAll('td .title').length === 100",
            std::time::Duration::from_secs(30),
        )
        .await?;
        let fcp = page
            .eval("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1")
            .await?;
        let table = page.eval("performance.now()").await?;
        paints.push(fcp.as_f64().unwrap_or(-1.0));
        ready.push(table.as_f64().unwrap_or(-1.0));
    }
    paints.sort_by(f64::total_cmp);
    ready.sort_by(f64::total_cmp);
    println!(
        "dashboard with {ISSUES} issues: first contentful paint median {:.0} ms; the first 100 issues with sparklines on screen by {:.0} ms (median of 5 loads)",
        paints[2], ready[2]
    );
    Ok(())
}
