//! Sentry envelope ingestion and the read API, through the router.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use crate::util::{json, on_both_engines, Engine, TestApp, ADMIN};

fn event_envelope(event_id: &str, event: Value) -> String {
    let payload = event.to_string();
    format!(
        "{{\"event_id\":\"{event_id}\",\"sent_at\":\"2026-11-22T00:00:00Z\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{payload}\n",
        payload.len()
    )
}

fn exception(ty: &str, value: &str) -> Value {
    json!({
        "platform": "javascript",
        "level": "error",
        "exception": { "values": [{
            "type": ty, "value": value,
            "mechanism": { "type": "onerror", "handled": false },
            "stacktrace": { "frames": [
                { "function": "main", "filename": "http://x/app.js", "lineno": 1, "colno": 2, "in_app": true },
                { "function": "render", "filename": "http://x/app.js", "lineno": 9, "colno": 4, "in_app": true }
            ] }
        }] }
    })
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body.into())
        .unwrap()
}

const ID_A: &str = "9ec79c33ec9942ab8353589fcb2e04dc";
const ID_B: &str = "0123456789abcdef0123456789abcdef";

async fn an_event_is_stored_grouped_and_readable(engine: Engine) {
    let app = TestApp::on(engine).await;
    let res = app
        .send(post(
            "/api/1/envelope/?sentry_version=7&sentry_key=dev",
            event_envelope(ID_A, exception("TypeError", "a is undefined")),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await, json!({ "id": ID_A }));

    // Same place, another value, key in the X-Sentry-Auth header: the same issue.
    let res = app
        .send(
            Request::post("/api/1/envelope/")
                .header("x-sentry-auth", "Sentry sentry_version=7, sentry_key=dev")
                .header("content-type", "application/x-sentry-envelope")
                .body(Body::from(event_envelope(
                    ID_B,
                    exception("TypeError", "b is undefined"),
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let issues = json(app.get("/api/1/issues", true).await).await;
    assert_eq!(issues.as_array().unwrap().len(), 1, "{issues}");
    assert_eq!(issues[0]["count"], 2);
    assert_eq!(issues[0]["title"], "TypeError: b is undefined");
    assert_eq!(issues[0]["lastEventId"], ID_B);
    assert_eq!(issues[0]["level"], "error");

    let event = json(app.get(&format!("/api/1/events/{ID_A}"), true).await).await;
    assert_eq!(event["exception"]["values"][0]["value"], "a is undefined");
    assert_eq!(
        app.get("/api/1/events/ffffffffffffffffffffffffffffffff", true)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.state.metrics().events_ingested.get(), 2);
}

async fn the_same_event_id_is_acknowledged_and_stored_once(engine: Engine) {
    let app = TestApp::on(engine).await;
    for _ in 0..3 {
        let res = app
            .send(post(
                "/api/1/envelope/?sentry_key=dev",
                event_envelope(ID_A, json!({ "message": "hello", "level": "info" })),
            ))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let issues = json(app.get("/api/1/issues", true).await).await;
    assert_eq!(issues[0]["count"], 1);
    assert_eq!(app.state.metrics().events_ingested.get(), 1);
    let dup = app
        .state
        .metrics()
        .events_rejected
        .with_label_values(&["duplicate"])
        .get();
    assert_eq!(dup, 2);
}

/// The payload is stored as sent (it parsed as a JSON object; it is not re-serialized).
async fn an_event_payload_is_stored_byte_for_byte(engine: Engine) {
    let app = TestApp::on(engine).await;
    let payload = r#"{ "z": [1, 2.50],  "message" : "kept as sent \u00e9", "level":"info" }"#;
    let body = format!(
        "{{\"event_id\":\"{ID_A}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{payload}\n",
        payload.len()
    );
    let res = app
        .send(post("/api/1/envelope/?sentry_key=dev", body))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let stored = app.state.store().event("1", ID_A).await.unwrap();
    assert_eq!(stored.as_deref(), Some(payload));
    let event = json(app.get(&format!("/api/1/events/{ID_A}"), true).await).await;
    assert_eq!(event["message"], "kept as sent \u{e9}");
}

#[tokio::test]
async fn bad_keys_are_401_with_a_reason() {
    let app = TestApp::new().await;
    for path in [
        "/api/1/envelope/",
        "/api/1/envelope/?sentry_key=wrong",
        "/api/2/envelope/?sentry_key=dev",
    ] {
        let res = app
            .send(post(path, event_envelope(ID_A, json!({"message": "x"}))))
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(json(res).await["error"].as_str().unwrap().len() > 5);
    }
    let rejected = app
        .state
        .metrics()
        .events_rejected
        .with_label_values(&["unauthorized"])
        .get();
    assert_eq!(rejected, 3);
}

#[tokio::test]
async fn malformed_envelopes_are_400_with_a_reason() {
    let app = TestApp::new().await;
    for (body, says) in [
        ("", "empty"),
        ("not json\n", "header"),
        ("{}\n{\"type\":\"event\",\"length\":500}\n{}", "length"),
        ("{}\n{\"type\":\"event\"}\n[1,2]\n", "not a JSON object"),
        (
            "{}\n{\"type\":\"event\"}\n{\"message\":\"no id\"}\n",
            "event_id",
        ),
    ] {
        let res = app
            .send(post("/api/1/envelope/?sentry_key=dev", body))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body:?}");
        let reason = json(res).await["error"].as_str().unwrap().to_owned();
        assert!(reason.contains(says), "{body:?}: {reason}");
    }
    // Unknown item types are skipped; the envelope is accepted.
    let res = app
        .send(post(
            "/api/1/envelope/?sentry_key=dev",
            format!("{{\"event_id\":\"{ID_A}\"}}\n{{\"type\":\"client_report\"}}\n{{}}\n"),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await["id"], ID_A);
}

#[tokio::test]
async fn a_body_over_1_mib_is_413() {
    let app = TestApp::new().await;
    let big = "x".repeat((1 << 20) + 1);
    let res = app.send(post("/api/1/envelope/?sentry_key=dev", big)).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(json(res).await["error"].as_str().unwrap().contains("1 MiB"));
    // An item that claims more than the limit is refused the same way.
    let claim = "{}\n{\"type\":\"event\",\"length\":2000000}\n{}";
    let res = app
        .send(post("/api/1/envelope/?sentry_key=dev", claim))
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn over_the_rate_the_answer_is_429_with_both_headers() {
    let app = TestApp::with_config(|c| {
        c.rate_limit = 0.5;
        c.rate_limit_burst = 2.0;
    })
    .await;
    let send = || {
        app.send(post(
            "/api/1/envelope/?sentry_key=dev",
            event_envelope(ID_A, json!({"message": "m"})),
        ))
    };
    assert_eq!(send().await.status(), StatusCode::OK);
    assert_eq!(send().await.status(), StatusCode::OK);
    let res = send().await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "2");
    assert_eq!(res.headers()["x-sentry-rate-limits"], "2::key");
    assert!(json(res).await["error"].as_str().unwrap().contains("retry"));
}

#[tokio::test]
async fn the_cors_preflight_is_answered() {
    let app = TestApp::new().await;
    let res = app
        .send(
            Request::options("/api/1/envelope/")
                .header("origin", "http://kiosk.example")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "content-type, x-sentry-auth",
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("x-sentry-auth"), "{allowed}");

    let res = app
        .send(
            Request::post("/api/1/envelope/?sentry_key=dev")
                .header("origin", "http://kiosk.example")
                .body(Body::from(event_envelope(ID_A, json!({"message": "m"}))))
                .unwrap(),
        )
        .await;
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("retry-after") && exposed.contains("x-sentry-rate-limits"));
}

#[tokio::test]
async fn an_allow_list_limits_origins() {
    let app =
        TestApp::with_config(|c| c.allowed_origins = vec!["http://kiosk.example".into()]).await;
    let preflight = |origin: &'static str| {
        Request::options("/api/1/envelope/")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap()
    };
    let ok = app.send(preflight("http://kiosk.example")).await;
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://kiosk.example"
    );
    let other = app.send(preflight("http://evil.example")).await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_read_api_needs_the_admin_token() {
    let app = TestApp::new().await;
    assert_eq!(
        app.get("/api/1/issues", false).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get(&format!("/api/1/events/{ID_A}"), false)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let res = app
        .send(
            Request::get("/api/1/issues")
                .header("authorization", format!("Bearer {ADMIN}x"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(app.get("/api/1/issues", true).await).await, json!([]));
}

/// Group commit keeps idempotency and counts exact under concurrency: the same event id from 50
/// tasks at once is stored once and counted once; 200 distinct events are counted 200 times.
async fn the_same_event_from_fifty_tasks_at_once_is_stored_and_counted_once(engine: Engine) {
    let app = std::sync::Arc::new(TestApp::on(engine).await);
    let body = event_envelope(ID_A, exception("TypeError", "once"));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let app = std::sync::Arc::clone(&app);
            let body = body.clone();
            tokio::spawn(async move {
                app.send(post("/api/1/envelope/?sentry_key=dev", body))
                    .await
                    .status()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(
            t.await.unwrap(),
            StatusCode::OK,
            "a duplicate is acknowledged"
        );
    }
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let app = std::sync::Arc::clone(&app);
            tokio::spawn(async move {
                let body =
                    event_envelope(&format!("{:032x}", i + 1), exception("RangeError", "many"));
                app.send(post("/api/1/envelope/?sentry_key=dev", body))
                    .await
                    .status()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let issues = json(app.get("/api/1/issues", true).await).await;
    let count = |title: &str| {
        issues
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["title"].as_str().unwrap_or("").contains(title))
            .map(|i| i["count"].clone())
    };
    assert_eq!(count("once"), Some(json!(1)), "{issues}");
    assert_eq!(count("many"), Some(json!(200)), "{issues}");
    assert_eq!(app.state.metrics().events_ingested.get(), 201);
}

on_both_engines!(
    an_event_is_stored_grouped_and_readable,
    an_event_payload_is_stored_byte_for_byte,
    the_same_event_id_is_acknowledged_and_stored_once,
    the_same_event_from_fifty_tasks_at_once_is_stored_and_counted_once,
);
