//! The router in-process.

use axum::http::StatusCode;

use crate::util::{json, text, TestApp};

#[tokio::test]
async fn healthz_answers_ok_once_the_database_is_reachable() {
    let app = TestApp::new().await;
    let res = app.get("/healthz", false).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(text(res).await, "ok");
}

#[tokio::test]
async fn healthz_answers_503_with_a_reason_while_the_database_is_unreachable() {
    let app = TestApp::new().await;
    app.state.store().close().await;
    let res = app.get("/healthz", false).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(res).await;
    assert_eq!(body["error"], "not ready: the database is unreachable");
}

#[tokio::test]
async fn metrics_need_the_admin_token() {
    let app = TestApp::new().await;
    let res = app.get("/metrics", false).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body = json(res).await;
    assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");

    let res = app
        .send(
            axum::http::Request::get("/metrics")
                .header("authorization", "Bearer wrong")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_every_contract_name() {
    let app = TestApp::new().await;
    let _ = app.get("/healthz", false).await; // counted in vigil_http_requests_total
    let res = app.get("/metrics", true).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let body = text(res).await;
    for name in [
        "vigil_events_ingested_total",
        "vigil_events_rejected_total",
        "vigil_ws_connections 0",
        "vigil_ws_messages_total",
        "vigil_voice_sessions 0",
        "vigil_metric_points_ingested_total",
        "vigil_http_requests_total{class=\"2xx\"}",
    ] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }
}

#[tokio::test]
async fn serves_the_demo_and_the_package() {
    let app = TestApp::new().await;
    let res = app.get("/", false).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(text(res).await.contains("Vigil demo"));

    let res = app.get("/www/test/page.html", false).await;
    assert_eq!(res.status(), StatusCode::OK);

    let res = app.get("/pkg/vigil_bg.wasm", false).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/wasm");
    assert_eq!(res.headers()["cache-control"], "no-cache");

    let res = app.get("/pkg/vigil.js", false).await;
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let app = TestApp::new().await;
    assert_eq!(
        app.get("/www/nope.html", false).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/nope", false).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/pkg/../Cargo.toml", false).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_start_is_recorded_and_the_state_is_the_dev_setup() {
    let app = TestApp::new().await;
    assert_eq!(app.state.admin_token(), crate::util::ADMIN);
    assert_eq!(app.state.projects()[0].public_key, "dev");
    app.state.store().record_start("9.9.9").await.unwrap();
    assert_eq!(
        app.state.store().recent_starts(1).await.unwrap()[0].version,
        "9.9.9"
    );
}
