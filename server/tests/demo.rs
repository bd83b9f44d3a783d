//! The routes a demo page calls itself (`POST /api/orders`, `POST /voice/session`): the operator's
//! without `--demo`, any page's with it, limited per IP; and only the newest orders kept.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use vigil_server::hub::HubConfig;
use vigil_server::ingest::ratelimit::Rate;
use vigil_server::voice::VoiceConfig;

use crate::util::{json, LiveServer, TestApp, ADMIN};

/// A rate that does not refill within a test.
const BURST_3: Rate = Rate {
    per_sec: 0.01,
    burst: 3.0,
};

fn order(token: Option<&str>) -> Request<Body> {
    let mut r = Request::post("/api/orders").header("content-type", "application/json");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::from(r#"{"items":[{"name":"tea","quantity":1}]}"#))
        .unwrap()
}

fn mint(token: Option<&str>) -> Request<Body> {
    let mut r = Request::post("/voice/session");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::empty()).unwrap()
}

/// Asserts `status` with a JSON `{ error }` body; returns the reason.
async fn refused(res: axum::http::Response<Body>, status: StatusCode) -> String {
    assert_eq!(res.status(), status);
    json(res).await["error"]
        .as_str()
        .expect("an error reason")
        .to_owned()
}

fn refusals(app: &TestApp, route: &str, reason: &str) -> u64 {
    app.state
        .metrics()
        .requests_refused
        .with_label_values(&[route, reason])
        .get()
}

#[tokio::test]
async fn without_demo_orders_and_mints_need_the_admin_token() {
    let app = TestApp::new().await;
    let reason = refused(app.send(order(None)).await, StatusCode::UNAUTHORIZED).await;
    assert!(reason.contains("--demo"), "{reason}");
    refused(
        app.send(order(Some("wrong"))).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let reason = refused(app.send(mint(None)).await, StatusCode::UNAUTHORIZED).await;
    assert!(reason.contains("Bearer"), "{reason}");
    refused(
        app.send(mint(Some("wrong"))).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(app.state.voice().key_count(), 0);
    assert!(app
        .state
        .store()
        .recent_orders(10)
        .await
        .unwrap()
        .is_empty());

    assert_eq!(
        app.send(order(Some(ADMIN))).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.send(mint(Some(ADMIN))).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_voice_mint_token_may_mint_and_nothing_else() {
    let app =
        TestApp::with_config(|c| c.voice_mint_token = Some("backend-secret".parse().unwrap()))
            .await;
    assert_eq!(
        app.send(mint(Some("backend-secret"))).await.status(),
        StatusCode::OK
    );
    refused(
        app.send(order(Some("backend-secret"))).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let metrics = Request::get("/metrics")
        .header("authorization", "Bearer backend-secret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(metrics).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn demo_opens_orders_to_any_page_with_429_past_the_per_ip_limit() {
    let app = TestApp::with_configs(
        |c| c.demo = true,
        HubConfig {
            orders_per_ip: BURST_3,
            ..HubConfig::default()
        },
        VoiceConfig::default(),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(app.send(order(None)).await.status(), StatusCode::CREATED);
    }
    let res = app.send(order(None)).await;
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=100).contains(&wait), "{wait}");
    refused(res, StatusCode::TOO_MANY_REQUESTS).await;
    // A wrong token under --demo is any page: limited too.
    refused(
        app.send(order(Some("wrong"))).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    assert_eq!(refusals(&app, "orders", "rate_limited"), 2);
    // The operator is not limited.
    assert_eq!(
        app.send(order(Some(ADMIN))).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.state.store().recent_orders(10).await.unwrap().len(), 4);
}

#[tokio::test]
async fn demo_opens_minting_to_any_page_with_429_past_the_per_ip_limit() {
    let app = TestApp::with_configs(
        |c| c.demo = true,
        HubConfig::default(),
        VoiceConfig {
            mint_per_ip: BURST_3,
            ..VoiceConfig::default()
        },
    )
    .await;
    for _ in 0..3 {
        assert_eq!(app.send(mint(None)).await.status(), StatusCode::OK);
    }
    let res = app.send(mint(None)).await;
    assert!(res.headers().contains_key("retry-after"));
    refused(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(refusals(&app, "voice_session", "rate_limited"), 1);
    assert_eq!(app.send(mint(Some(ADMIN))).await.status(), StatusCode::OK);
    assert_eq!(app.state.voice().key_count(), 4);
}

#[tokio::test]
async fn only_the_newest_orders_are_kept_and_the_pruned_counted() {
    let app = TestApp::with_configs(
        |_| {},
        HubConfig {
            max_orders: 5,
            ..HubConfig::default()
        },
        VoiceConfig::default(),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        let res = app.send(order(Some(ADMIN))).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        ids.push(json(res).await["id"].as_i64().unwrap());
    }
    let kept: Vec<i64> = app
        .state
        .store()
        .recent_orders(100)
        .await
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    let newest: Vec<i64> = ids.iter().rev().take(5).copied().collect();
    assert_eq!(kept, newest);
    let metrics = app.state.metrics().render();
    assert!(metrics.contains("vigil_orders_pruned_total 3"), "{metrics}");
}

/// Over a real socket each client is its connection's IP (`ConnectInfo`): the limit holds for
/// the real server, not only in-process.
#[tokio::test]
async fn the_real_server_limits_by_the_connection_ip() {
    let server = LiveServer::start_with(
        HubConfig {
            orders_per_ip: BURST_3,
            ..HubConfig::default()
        },
        VoiceConfig {
            mint_per_ip: BURST_3,
            ..VoiceConfig::default()
        },
        |c| c.demo = true,
    )
    .await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = http
            .post(server.url("/api/orders"))
            .json(&serde_json::json!({ "items": [{ "name": "tea", "quantity": 1 }] }))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    for _ in 0..4 {
        let res = http
            .post(server.url("/voice/session"))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 201, 429, 200, 200, 200, 429]);
    server.stop().await;
}

#[tokio::test]
async fn a_full_key_store_answers_503_with_retry_after() {
    let app = TestApp::with_voice(VoiceConfig {
        max_keys: 2,
        key_ttl: Duration::from_secs(60),
        ..VoiceConfig::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(app.send(mint(Some(ADMIN))).await.status(), StatusCode::OK);
    }
    let res = app.send(mint(Some(ADMIN))).await;
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let reason = refused(res, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(reason.contains("full"), "{reason}");
    assert_eq!(refusals(&app, "voice_session", "keys_full"), 1);
    assert_eq!(app.state.voice().key_count(), 2);
}
