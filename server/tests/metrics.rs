//! OTLP/HTTP JSON ingestion, `GET /api/{project}/vitals` and `GET /api/{project}/metrics`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use crate::util::{json, on_both_engines, Engine, TestApp};

fn otlp(points: &[(&str, f64)]) -> String {
    let metrics: Vec<Value> = points
        .iter()
        .map(|(name, v)| {
            json!({ "name": name, "unit": "ms", "gauge": { "dataPoints": [{
                "asDouble": v, "timeUnixNano": "0",
                "attributes": [{ "key": "page", "value": { "stringValue": "/lobby" } }]
            }] } })
        })
        .collect();
    json!({ "resourceMetrics": [{ "resource": { "attributes": [] },
        "scopeMetrics": [{ "scope": { "name": "vigil", "version": "0.1.0" }, "metrics": metrics }] }] })
    .to_string()
}

fn post(path: &str, auth: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut r = Request::post(path).header("content-type", "text/plain;charset=UTF-8");
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.body(body.into()).unwrap()
}

async fn points_are_stored_and_vitals_answer_p75_and_ratings(engine: Engine) {
    let app = TestApp::on(engine).await;
    let lcp = [1000.0, 2000.0, 3000.0, 5000.0];
    let points: Vec<(&str, f64)> = lcp.iter().map(|v| ("web_vitals.lcp", *v)).collect();
    let res = app
        .send(post("/v1/metrics", Some("Bearer dev"), otlp(&points)))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await, json!({ "partialSuccess": {} }));
    // The key in the query works too (beacons cannot set headers).
    let res = app
        .send(post(
            "/v1/metrics?key=dev",
            None,
            otlp(&[("web_vitals.cls", 0.3), ("checkout", 42.0)]),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.state.metrics().metric_points_ingested.get(), 6);

    let vitals = json(app.get("/api/1/vitals?window=1h", true).await).await;
    assert_eq!(
        vitals["lcp"],
        json!({ "p75": 3000.0, "count": 4, "good": 2, "needsImprovement": 1, "poor": 1 })
    );
    assert_eq!(vitals["cls"]["poor"], 1);
    assert_eq!(
        vitals["inp"],
        json!({ "p75": null, "count": 0, "good": 0, "needsImprovement": 0, "poor": 0 })
    );

    let points = json(
        app.get("/api/1/metrics?name=checkout&window=30m", true)
            .await,
    )
    .await;
    assert_eq!(points.as_array().unwrap().len(), 1);
    assert_eq!(points[0]["value"], 42.0);
    assert_eq!(points[0]["attributes"]["page"], "/lobby");
    assert!(points[0]["time"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn bad_requests_are_refused_with_reasons() {
    let app = TestApp::new().await;
    let res = app.send(post("/v1/metrics", None, otlp(&[]))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .send(post("/v1/metrics", Some("Bearer nope"), otlp(&[])))
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .send(post("/v1/metrics", Some("Bearer dev"), "[1,2]"))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(json(res).await["error"].as_str().unwrap().contains("OTLP"));
    let res = app
        .send(post(
            "/v1/metrics",
            Some("Bearer dev"),
            "x".repeat((1 << 20) + 1),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let rejected = |r: &str| {
        app.state
            .metrics()
            .metric_requests_rejected
            .with_label_values(&[r])
            .get()
    };
    assert_eq!(
        (
            rejected("unauthorized"),
            rejected("malformed"),
            rejected("too_large")
        ),
        (2, 1, 1)
    );

    assert_eq!(
        app.get("/api/1/vitals", false).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = app.get("/api/1/vitals?window=forever", true).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .starts_with("window:"));
    let res = app.get("/api/1/metrics?window=1h", true).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_metrics_preflight_is_answered() {
    let app = TestApp::new().await;
    let res = app
        .send(
            Request::options("/v1/metrics")
                .header("origin", "http://kiosk.example")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization, content-type",
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(res.status().is_success());
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
}

async fn a_retried_export_is_stored_once(engine: Engine) {
    let app = TestApp::on(engine).await;
    let mut body: Value = serde_json::from_str(&otlp(&[("web_vitals.lcp", 1200.0)])).unwrap();
    body["resourceMetrics"][0]["resource"]["attributes"] =
        json!([{ "key": "vigil.export_id", "value": { "stringValue": "view-1.1" } }]);
    for _ in 0..3 {
        let res = app
            .send(post("/v1/metrics?key=dev", None, body.to_string()))
            .await;
        assert_eq!(res.status(), StatusCode::OK, "a retry is acknowledged");
    }
    body["resourceMetrics"][0]["resource"]["attributes"][0]["value"]["stringValue"] =
        json!("view-1.2");
    let res = app
        .send(post("/v1/metrics?key=dev", None, body.to_string()))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let vitals = json(app.get("/api/1/vitals?window=1h", true).await).await;
    assert_eq!(vitals["lcp"]["count"], 2, "one point per distinct export");
    assert_eq!(app.state.metrics().metric_points_ingested.get(), 2);
}

on_both_engines!(
    points_are_stored_and_vitals_answer_p75_and_ratings,
    a_retried_export_is_stored_once,
);
