//! The dashboard's routes in-process: sign-in and its cookie, what needs a session, pagination,
//! the issue view and the fleet from real OTLP health exports.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};
use vigil_server::dashboard::CSP;

use crate::util::{json, on_both_engines, text, Engine, TestApp, ADMIN};

fn login(token: &str) -> Request<Body> {
    Request::post("/dashboard/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={token}")))
        .unwrap()
}

fn with_cookie(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

/// Signs in and returns the `name=value` of the session cookie.
async fn sign_in(app: &TestApp) -> String {
    let res = app.send(login(ADMIN)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/dashboard");
    let set = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    set.split(';').next().unwrap().to_owned()
}

async fn sign_in_sets_a_strict_http_only_cookie_that_opens_the_read_api(engine: Engine) {
    let app = TestApp::on(engine).await;
    let res = app.get("/dashboard", false).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_SECURITY_POLICY], CSP);
    assert_eq!(res.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(text(res).await.contains("name=token"), "the sign-in form");
    let cookie = sign_in(&app).await;
    let res = app.send(with_cookie("/dashboard", &cookie)).await;
    assert_eq!(
        text(res).await,
        "<main id=view></main>",
        "the dashboard itself"
    );
    for path in [
        "/api/1/issues",
        "/api/1/fleet",
        "/api/1/vitals",
        "/api/projects",
    ] {
        let res = app.send(with_cookie(path, &cookie)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    let static_file = app.get("/dashboard/static/app.js", false).await;
    assert_eq!(static_file.status(), StatusCode::OK);
    assert_eq!(static_file.headers()[header::CONTENT_SECURITY_POLICY], CSP);
}

#[tokio::test]
async fn wrong_missing_forged_and_ended_sessions_are_refused() {
    let app = TestApp::new().await;
    let res = app.send(login("not-the-token")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    assert!(text(res).await.contains("not the admin token"));
    let res = app
        .send(
            Request::post("/dashboard/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("other=1"))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "no token field");
    for path in [
        "/api/1/issues",
        "/api/1/issues/abc",
        "/api/1/fleet",
        "/metrics",
    ] {
        assert_eq!(
            app.get(path, false).await.status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let forged = format!("vigil_session={}", "a".repeat(64));
    let res = app.send(with_cookie("/api/1/issues", &forged)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.send(with_cookie("/dashboard", &forged)).await;
    assert!(
        text(res).await.contains("name=token"),
        "forged: the form again"
    );
    // Logout ends the session for good.
    let cookie = sign_in(&app).await;
    let res = app
        .send(
            Request::post("/dashboard/logout")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let res = app.send(with_cookie("/api/1/issues", &cookie)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_session_from_another_admin_token_is_refused() {
    let app = TestApp::new().await;
    let cookie = sign_in(&app).await;
    // The same database, a server restarted with another token.
    let config = {
        let mut c = vigil_server::Config::for_tests("sqlite::memory:");
        c.admin_token = Some("another-token".parse().unwrap());
        c
    };
    let other = vigil_server::AppState::new(
        &config,
        app.state.store().clone(),
        vigil_server::Tuning::default(),
    );
    let router = vigil_server::app(other);
    let res = tower::ServiceExt::oneshot(router, with_cookie("/api/1/issues", &cookie))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

fn envelope(id: usize, title: &str) -> String {
    let event = json!({ "event_id": format!("{id:032x}"), "level": "error",
        "exception": { "values": [{ "type": "TypeError", "value": title }] },
        "fingerprint": [format!("group-{id}")] })
    .to_string();
    format!(
        "{{}}\n{{\"type\":\"event\",\"length\":{}}}\n{event}\n",
        event.len()
    )
}

async fn issues_page_through_with_a_cursor_and_one_issue_opens_whole(engine: Engine) {
    let app = TestApp::on(engine).await;
    for i in 0..7 {
        let res = app
            .send(
                Request::post("/api/1/envelope/?sentry_key=dev")
                    .body(Body::from(envelope(i, &format!("e{i}"))))
                    .unwrap(),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let mut seen = Vec::new();
    let mut path = "/api/1/issues?limit=3".to_owned();
    loop {
        let res = app.get(&path, true).await;
        assert_eq!(res.status(), StatusCode::OK);
        let next = res
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        if let Some(link) = res.headers().get(header::LINK) {
            assert!(link.to_str().unwrap().ends_with("; rel=\"next\""));
        }
        let page = json(res).await;
        let rows = page.as_array().unwrap();
        assert!(rows.len() <= 3);
        for r in rows {
            assert_eq!(r["hourly"].as_array().unwrap().len(), 24);
            seen.push(r["fingerprint"].as_str().unwrap().to_owned());
        }
        match next {
            Some(c) => path = format!("/api/1/issues?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7, "every issue once");
    for bad in ["limit=0", "limit=1001", "cursor=zz", "cursor=abc"] {
        let res = app.get(&format!("/api/1/issues?{bad}"), true).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(json(res).await["error"].is_string());
    }
    let fp = &seen[0];
    let issue = json(
        app.get(&format!("/api/1/issues/{fp}?window=6h"), true)
            .await,
    )
    .await;
    assert_eq!(issue["count"], 1);
    assert_eq!(issue["eventsPerHour"].as_array().unwrap().len(), 6);
    assert_eq!(issue["eventsPerHour"][5]["count"], 1);
    assert_eq!(
        issue["latestEvent"]["exception"]["values"][0]["type"],
        "TypeError"
    );
    assert_eq!(
        app.get("/api/1/issues/nope", true).await.status(),
        StatusCode::NOT_FOUND
    );
}

/// One health export as the runtime sends it: `listeners` and the memory of one sample.
fn health(instance: &str, t_ms: u64, listeners: f64, heap: f64) -> String {
    let t = (t_ms * 1_000_000).to_string();
    let point = |v: f64, kind: Option<&str>| {
        let attrs: Vec<Value> = kind
            .map(|k| vec![json!({ "key": "kind", "value": { "stringValue": k } })])
            .unwrap_or_default();
        json!({ "asDouble": v, "timeUnixNano": t, "attributes": attrs })
    };
    json!({ "resourceMetrics": [{ "resource": { "attributes": [
        { "key": "service.instance.id", "value": { "stringValue": instance } },
        { "key": "service.version", "value": { "stringValue": "kiosk@3" } },
        { "key": "vigil.export_id", "value": { "stringValue": format!("{instance}-{t_ms}") } }
      ] }, "scopeMetrics": [{ "scope": { "name": "vigil" }, "metrics": [
        { "name": "vigil.resources", "unit": "1", "gauge": { "dataPoints": [
            point(listeners, Some("listeners")), point(2.0, Some("intervals")) ] } },
        { "name": "vigil.memory.js_heap", "unit": "By", "gauge": { "dataPoints": [point(heap, None)] } },
        { "name": "vigil.memory.wasm", "unit": "By", "gauge": { "dataPoints": [point(1_179_648.0, None)] } },
        { "name": "vigil.uptime", "unit": "s", "gauge": { "dataPoints": [point(1.0, None)] } }
    ] }] }] })
    .to_string()
}

async fn the_fleet_judges_instances_from_their_health_exports(engine: Engine) {
    let app = TestApp::on(engine).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for i in 0..12u64 {
        let t = now - 2_400 + i * 200;
        for (id, listeners) in [("leaky", 4.0 + 5.0 * i as f64), ("steady", 4.0)] {
            let res = app
                .send(
                    Request::post("/v1/metrics?key=dev")
                        .header(header::USER_AGENT, "Kiosk/1.0 <b>")
                        .body(Body::from(health(id, t, listeners, 2e6)))
                        .unwrap(),
                )
                .await;
            assert_eq!(res.status(), StatusCode::OK);
        }
    }
    // A retried export is stored once.
    let res = app
        .send(
            Request::post("/v1/metrics?key=dev")
                .body(Body::from(health("steady", now - 2_400, 4.0, 2e6)))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let fleet = json(app.get("/api/1/fleet?window=1h", true).await).await;
    let rows = fleet.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["instanceId"], "leaky", "leaking first");
    assert_eq!(rows[0]["leaking"], true);
    assert_eq!(
        rows[0]["reasons"][0].as_str().unwrap().split(' ').next(),
        Some("listeners")
    );
    assert_eq!(rows[0]["resources"]["listeners"]["last"], 59.0);
    assert_eq!(rows[0]["release"], "kiosk@3");
    assert_eq!(
        rows[0]["userAgent"], "Kiosk/1.0 <b>",
        "kept as given: the page renders text"
    );
    assert_eq!(rows[1]["leaking"], false);
    assert_eq!(rows[1]["samples"], 12, "the retry was not stored twice");
    assert_eq!(rows[1]["heap"]["last"], 2e6);
    assert_eq!(rows[1]["trend"]["time"].as_array().unwrap().len(), 12);
    // Pages of one.
    let res = app.get("/api/1/fleet?window=1h&limit=1", true).await;
    assert_eq!(res.headers()["x-next-cursor"], "1");
    let second = json(
        app.get("/api/1/fleet?window=1h&limit=1&cursor=1", true)
            .await,
    )
    .await;
    assert_eq!(second[0]["instanceId"], "steady");
    // Health points are not web-vital or custom metric points.
    let points = json(app.get("/api/1/metrics?name=vigil.uptime", true).await).await;
    assert_eq!(points, json!([]));
    for bad in ["window=%C3%A9", "window=0s", "cursor=x"] {
        let res = app.get(&format!("/api/1/fleet?{bad}"), true).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

on_both_engines!(
    sign_in_sets_a_strict_http_only_cookie_that_opens_the_read_api,
    issues_page_through_with_a_cursor_and_one_issue_opens_whole,
    the_fleet_judges_instances_from_their_health_exports,
);
