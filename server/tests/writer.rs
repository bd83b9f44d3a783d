//! The group-commit writer through the HTTP routes: events, metric points and health samples go
//! through one writer task, are committed together, and are acknowledged only after the commit;
//! a full queue is answered `503` with `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use sqlx::Connection;

use crate::util::{on_both_engines, Engine, TestApp};

/// An envelope holding one event.
fn envelope(event_id: &str) -> String {
    let payload = json!({ "event_id": event_id, "message": format!("writer {event_id}") });
    format!("{{}}\n{{\"type\":\"event\"}}\n{payload}\n")
}

/// An OTLP export as the runtime sends it: a vital and one health sample of `instance`
/// (listeners, intervals, heap, wasm, uptime), under `export_id`.
fn export(instance: &str, export_id: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string();
    let point = |v: f64, kind: Option<&str>| {
        let attrs: Vec<Value> = kind
            .map(|k| vec![json!({ "key": "kind", "value": { "stringValue": k } })])
            .unwrap_or_default();
        json!({ "asDouble": v, "timeUnixNano": now, "attributes": attrs })
    };
    json!({ "resourceMetrics": [{ "resource": { "attributes": [
        { "key": "service.instance.id", "value": { "stringValue": instance } },
        { "key": "vigil.export_id", "value": { "stringValue": export_id } }
      ] }, "scopeMetrics": [{ "scope": { "name": "vigil" }, "metrics": [
        { "name": "web_vitals.lcp", "unit": "ms", "gauge": { "dataPoints": [point(900.0, None)] } },
        { "name": "vigil.resources", "unit": "1", "gauge": { "dataPoints": [
            point(12.0, Some("listeners")), point(2.0, Some("intervals")) ] } },
        { "name": "vigil.memory.js_heap", "unit": "By", "gauge": { "dataPoints": [point(4e6, None)] } },
        { "name": "vigil.memory.wasm", "unit": "By", "gauge": { "dataPoints": [point(1_179_648.0, None)] } },
        { "name": "vigil.uptime", "unit": "s", "gauge": { "dataPoints": [point(1.0, None)] } }
    ] }] }] })
    .to_string()
}

/// Rows one [`export`] stores: the vital and five health points.
const EXPORT_POINTS: u64 = 6;

fn post_envelope(event_id: &str) -> Request<Body> {
    Request::post("/api/1/envelope/?sentry_key=dev")
        .body(Body::from(envelope(event_id)))
        .unwrap()
}

fn post_export(instance: &str, export_id: &str) -> Request<Body> {
    Request::post("/v1/metrics")
        .header("authorization", "Bearer dev")
        .body(Body::from(export(instance, export_id)))
        .unwrap()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    app.state
        .store()
        .query_i64(&format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap()
}

/// A SQLite file the test can lock from a second connection, in `dir`.
fn sqlite_file(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}/writer.db", dir.path().display())
}

/// Takes SQLite's write lock from another connection (`BEGIN IMMEDIATE`): the writer's next
/// statement waits (within the store's 5 s busy timeout) until [`release`].
async fn hold_writes(url: &str) -> sqlx::SqliteConnection {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

async fn release(mut conn: sqlx::SqliteConnection) {
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

fn id(n: usize) -> String {
    format!("{:032x}", n + 1)
}

/// Events and OTLP exports that arrive within one batch window are committed in one
/// transaction, and every sender is answered `200` with what it sent stored.
async fn events_metrics_and_health_samples_are_committed_together(engine: Engine) {
    let app = Arc::new(
        TestApp::on_tuned(engine, |t| {
            t.ingest.writer.max_batch = 10_000;
            t.ingest.writer.max_wait = Duration::from_millis(500);
        })
        .await,
    );
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let request = if i % 2 == 0 {
                    post_envelope(&id(i))
                } else {
                    post_export(&format!("{:032x}", i), &format!("export-{i}"))
                };
                app.send(request).await.status()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let stats = app.state.ingest().writer().stats();
    assert_eq!(
        stats.batches.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "10 events and 10 exports in one transaction"
    );
    assert_eq!(count(&app, "events").await, 10);
    assert_eq!(count(&app, "metric_points").await, 10);
    assert_eq!(count(&app, "health_samples").await, 10);
    assert_eq!(app.state.metrics().events_ingested.get(), 10);
    assert_eq!(
        app.state.metrics().metric_points_ingested.get(),
        10 * EXPORT_POINTS
    );
}

/// A sender hears back only once its batch committed: while another connection holds SQLite's
/// write lock, the request waits, and nothing of it is visible.
#[tokio::test]
async fn an_export_is_acknowledged_only_after_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_file(&dir);
    let app = Arc::new(TestApp::with_config(|c| c.database_url = url.clone().into()).await);
    let held = hold_writes(&url).await;
    let sending = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { app.send(post_export(&"a".repeat(32), "held")).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !sending.is_finished(),
        "no answer before the batch is committed"
    );
    // Read from the other connection: the store's only one is the writer's, waiting.
    let mut held = held;
    let visible: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM metric_points")
        .fetch_one(&mut held)
        .await
        .unwrap();
    assert_eq!(visible, 0, "nothing of it is stored yet");
    release(held).await;
    let res = tokio::time::timeout(Duration::from_secs(5), sending)
        .await
        .expect("answered once the commit went through")
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(count(&app, "metric_points").await, 1);
    assert_eq!(count(&app, "health_samples").await, 1);
}

/// A commit that fails answers every event and export of its batch with the failure (`503`:
/// the database is closed, so unavailable), never `200`.
#[tokio::test]
async fn a_failed_commit_fails_its_whole_batch() {
    let app = Arc::new(
        TestApp::with_tuning(
            |_| {},
            |t| t.ingest.writer.max_wait = Duration::from_millis(300),
        )
        .await,
    );
    app.state.store().close().await;
    let event = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { app.send(post_envelope(&id(1))).await.status() })
    };
    let export = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { app.send(post_export(&"b".repeat(32), "x")).await.status() })
    };
    assert_eq!(event.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(export.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.state.metrics().events_ingested.get(), 0);
    assert_eq!(app.state.metrics().metric_points_ingested.get(), 0);
}

/// The same export (one export id) sent from 50 tasks at once is stored once and counted once;
/// every sender is answered `200` (a retry is acknowledged).
async fn the_same_export_from_fifty_tasks_at_once_is_stored_and_counted_once(engine: Engine) {
    let app = Arc::new(TestApp::on(engine).await);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                app.send(post_export(&"c".repeat(32), "the-one"))
                    .await
                    .status()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(count(&app, "metric_points").await, 1);
    assert_eq!(count(&app, "health_samples").await, 1);
    assert_eq!(
        app.state.metrics().metric_points_ingested.get(),
        EXPORT_POINTS
    );
}

/// With the writer held and its queue full, the next event and the next export are refused
/// with `503` and `Retry-After` (and counted), and what was queued is still stored.
#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_file(&dir);
    let app = Arc::new(
        TestApp::with_tuning(
            |c| c.database_url = url.clone().into(),
            |t| {
                t.ingest.writer.max_batch = 1;
                t.ingest.writer.queue = 1;
            },
        )
        .await,
    );
    let held = hold_writes(&url).await;
    let spawn = |request: Request<Body>| {
        let app = Arc::clone(&app);
        tokio::spawn(async move { app.send(request).await.status() })
    };
    // The first is taken by the writer (which waits for the database), the second waits in
    // the queue: the queue is full.
    let first = spawn(post_envelope(&id(1)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = spawn(post_envelope(&id(2)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    for request in [post_envelope(&id(3)), post_export(&"d".repeat(32), "busy")] {
        let res = app.send(request).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "1");
        let body = crate::util::json(res).await;
        assert!(
            body["error"].as_str().unwrap().contains("queue is full"),
            "{body}"
        );
    }
    release(held).await;
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    assert_eq!(second.await.unwrap(), StatusCode::OK);
    assert_eq!(count(&app, "events").await, 2);
    let m = app.state.metrics();
    assert_eq!(m.events_rejected.with_label_values(&["busy"]).get(), 1);
    assert_eq!(
        m.metric_requests_rejected
            .with_label_values(&["busy"])
            .get(),
        1
    );
    let refused = app
        .state
        .ingest()
        .writer()
        .stats()
        .refused
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(refused, 2);
}

on_both_engines!(
    events_metrics_and_health_samples_are_committed_together,
    the_same_export_from_fifty_tasks_at_once_is_stored_and_counted_once,
);
