//! Read-API latency at scale (prints figures, asserts nothing): `./dev.sh bench`.
//!
//! Seeds a SQLite file with a million events in 10,000 issues (with their hourly counts) and
//! 1,000 instances × 1,440 health samples (a day at one a minute, interleaved in time as a fleet
//! sends them), then times the router
//! in-process: the first and the 100th page of `/api/1/issues?limit=100`, one issue whole, and
//! `/api/1/fleet`, next to the same routes on a database of ten events.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;
use vigil_server::store::Store;
use vigil_server::{app, AppState, Config};

async fn seed(url: &str, events: u64, issues: u64, instances: u64, samples: u64) -> Store {
    let store = Store::connect(url).await.unwrap();
    let now = vigil_server::store::now_ms();
    // Recursive CTEs: the rows are made inside SQLite, as fast as it writes.
    store.execute_sql(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {events})
         INSERT INTO events (project, event_id, fingerprint, level, title, received_at, payload)
         SELECT '1', printf('%032x', i), printf('fp%05d', i % {issues}), 'error',
                printf('TypeError: thing %d is undefined', i % {issues}),
                strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', ({events} - i) * 86400 / {events})),
                '{{\"exception\":{{\"values\":[{{\"type\":\"TypeError\",\"value\":\"x\"}}]}}}}'
         FROM n"
    ))
    .await
    .unwrap();
    store.execute_sql(
        "INSERT INTO issues (project, fingerprint, title, level, count, first_seen, last_seen, last_event_id)
         SELECT project, fingerprint, MAX(title), 'error', COUNT(*), MIN(received_at), MAX(received_at), MAX(event_id)
         FROM events GROUP BY project, fingerprint",
    )
    .await
    .unwrap();
    store
        .execute_sql(
            "INSERT INTO issue_hours (project, fingerprint, hour, count)
         SELECT project, fingerprint, substr(received_at, 1, 13), COUNT(*) FROM events
         GROUP BY project, fingerprint, substr(received_at, 1, 13)",
        )
        .await
        .unwrap();
    store.execute_sql(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {})
         INSERT INTO health_samples (project, instance_id, time_ms, heap, wasm, uptime, listeners,
           intervals, timeouts, observers, sockets, peer_connections, data_channels, media_tracks,
           console_patches, services)
         SELECT '1', printf('kiosk-%04d', i % {instances}), {now} - ({samples} - i / {instances}) * 60000,
                30e6 + (i % 7) * 1e6, 1179648, (i / {instances}) * 60.0,
                CASE WHEN i % {instances} % 50 = 0 THEN 10 + i / {instances} ELSE 10 END,
                3, 0, 1, 1, 0, 0, 0, 2, 5
         FROM n",
        instances * samples
    ))
    .await
    .unwrap();
    store
        .execute_sql(
            "INSERT INTO health_rollups
         SELECT project, instance_id, time_ms - time_ms % 900000, COUNT(*), MIN(time_ms),
                MIN(heap), MIN(wasm), MIN(listeners), MIN(intervals), MIN(timeouts),
                MIN(observers), MIN(sockets), MIN(peer_connections), MIN(data_channels),
                MIN(media_tracks), MIN(console_patches), MIN(services),
                MIN(listeners + intervals + timeouts + observers + sockets + peer_connections
                    + data_channels + media_tracks + console_patches + services)
         FROM health_samples GROUP BY project, instance_id, time_ms - time_ms % 900000",
        )
        .await
        .unwrap();
    store.execute_sql(
        "INSERT INTO instances (project, instance_id, release, user_agent, first_seen_ms, last_seen_ms, last)
         SELECT project, instance_id, 'kiosk@1', 'Chrome', MIN(time_ms), MAX(time_ms),
                '{\"resources\":{\"listeners\":10},\"heap\":30000000,\"wasm\":1179648}'
         FROM health_samples GROUP BY project, instance_id",
    )
    .await
    .unwrap();
    store
}

async fn time(router: &axum::Router, token: &str, path: &str, runs: u32) -> (Duration, String) {
    let mut times = Vec::new();
    let mut last = String::new();
    for _ in 0..runs {
        let started = Instant::now();
        let res = router
            .clone()
            .oneshot(
                Request::get(path)
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let next = res
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        times.push(started.elapsed());
        assert!(status.is_success(), "{path}: {status} {body:?}");
        last = next;
    }
    times.sort();
    (times[times.len() / 2], last)
}

async fn report(label: &str, events: u64, issues: u64, instances: u64, samples: u64) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let started = Instant::now();
    let store = seed(&url, events, issues, instances, samples).await;
    println!(
        "{label}: {events} events in {issues} issues, {instances} instances x {samples} samples (seeded in {:.1?})",
        started.elapsed()
    );
    let config = Config::for_tests(&url);
    let token = config.admin_token.clone().unwrap().expose().to_owned();
    let router = app(AppState::new(
        &config,
        store,
        vigil_server::Tuning::from_config(&config),
    ));
    let (first, mut cursor) = time(&router, &token, "/api/1/issues?limit=100", 20).await;
    println!("  GET /api/1/issues?limit=100               median {first:.2?}");
    let mut pages = 1;
    while pages < 50 && !cursor.is_empty() {
        cursor = time(
            &router,
            &token,
            &format!("/api/1/issues?limit=100&cursor={cursor}"),
            1,
        )
        .await
        .1;
        pages += 1;
    }
    if !cursor.is_empty() {
        let (deep, _) = time(
            &router,
            &token,
            &format!("/api/1/issues?limit=100&cursor={cursor}"),
            20,
        )
        .await;
        println!("  GET /api/1/issues, page {pages:>3} (cursor)      median {deep:.2?}");
    }
    let (one, _) = time(&router, &token, "/api/1/issues/fp00001?window=24h", 20).await;
    println!("  GET /api/1/issues/{{fingerprint}}          median {one:.2?}");
    let runs = if instances > 100 { 3 } else { 20 };
    let (fleet, _) = time(&router, &token, "/api/1/fleet?window=24h", runs).await;
    println!("  GET /api/1/fleet?window=24h                median {fleet:.2?}");
}

#[tokio::main]
async fn main() {
    report("small", 10, 10, 2, 20).await;
    report("large", 1_000_000, 10_000, 1_000, 1_440).await;
}
