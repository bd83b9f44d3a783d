//! What the security review found (issue 14), each as a test that failed before its fix:
//! OTLP limits, timeouts and connection caps, rate limits per event, retention, origins that
//! are refused, database URLs never taken as file names, panics answered, static-file rules,
//! and the key checked before the body.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::{json, on_both_engines, Engine, LiveServer, TestApp};

/// Prints the RSS of this process (the in-process server and the test harness) when an abuse
/// test starts and when it ends (issue 13, item 3). Tests run on parallel threads, so a figure
/// includes what the others hold at that moment; the real binary's figures are in
/// `tests/e2e/hardening.rs`.
struct Rss {
    test: &'static str,
    before: u64,
}

impl Rss {
    fn print(test: &'static str) -> Self {
        Self {
            test,
            before: status_kib("VmRSS"),
        }
    }
}

impl Drop for Rss {
    fn drop(&mut self) {
        println!(
            "{}: RSS {} KiB before, {} KiB after (process peak {} KiB)",
            self.test,
            self.before,
            status_kib("VmRSS"),
            status_kib("VmHWM")
        );
    }
}

/// A `kB` field of `/proc/self/status` (0 where there is none).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::to_owned))
        })
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn otlp_body(name: &str, points: usize, attrs: usize) -> String {
    let attributes: Vec<Value> = (0..attrs)
        .map(|i| json!({ "key": format!("k{i}"), "value": { "stringValue": "v" } }))
        .collect();
    let point = json!({ "asDouble": 1.0, "timeUnixNano": "0", "attributes": attributes });
    json!({ "resourceMetrics": [{ "resource": { "attributes": [] }, "scopeMetrics": [{
        "scope": { "name": "t" },
        "metrics": [{ "name": name, "unit": "ms", "gauge": { "dataPoints": vec![point; points] } }]
    }] }] })
    .to_string()
}

fn post_metrics(body: String) -> Request<Body> {
    Request::post("/v1/metrics?key=dev")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn otlp_names_units_attributes_and_points_are_limited_before_anything_is_copied() {
    let _rss =
        Rss::print("otlp_names_units_attributes_and_points_are_limited_before_anything_is_copied");
    let app = TestApp::new().await;
    // The review's body: a 50 KB name on 2,000 points (100 MB once copied per point).
    let res = app
        .send(post_metrics(otlp_body(&"n".repeat(50_000), 2_000, 0)))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("metric name"));
    let res = app.send(post_metrics(otlp_body("ok", 1, 33))).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(json(res).await["error"]
        .as_str()
        .unwrap()
        .contains("attributes"));
    let long_value = json!({ "resourceMetrics": [{ "resource": { "attributes": [
        { "key": "k", "value": { "stringValue": "v".repeat(2_000) } }] }, "scopeMetrics": [] }] });
    let res = app.send(post_metrics(long_value.to_string())).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = app.send(post_metrics(otlp_body("ok", 10_001, 0))).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(json(res).await["error"].as_str().unwrap().contains("10000"));
    // The worst body the limits let through is stored, bounded: 10,000 points of a 255-byte name.
    let res = app
        .send(post_metrics(otlp_body(&"n".repeat(255), 10_000, 0)))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let stored = app.state.metrics().metric_points_ingested.get();
    assert_eq!(stored, 10_000);
}

#[tokio::test]
async fn a_wrong_key_is_refused_before_a_big_body_is_read() {
    let _rss = Rss::print("a_wrong_key_is_refused_before_a_big_body_is_read");
    let app = TestApp::new().await;
    let big = vec![b'x'; 2 << 20];
    let res = app
        .send(
            Request::post("/api/1/envelope/?sentry_key=wrong")
                .body(Body::from(big.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .send(
            Request::post("/v1/metrics?key=wrong")
                .body(Body::from(big.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .send(
            Request::post("/api/1/envelope/?sentry_key=dev")
                .body(Body::from(big))
                .unwrap(),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "a right key: the size"
    );
}

fn envelope(events: usize) -> String {
    let mut out = String::from("{}\n");
    for i in 0..events {
        let event = json!({ "event_id": format!("{:032x}", i + 1), "message": format!("m{i}") })
            .to_string();
        out.push_str(&format!(
            "{{\"type\":\"event\",\"length\":{}}}\n{event}\n",
            event.len()
        ));
    }
    out
}

#[tokio::test]
async fn the_rate_limit_counts_events_not_requests() {
    let _rss = Rss::print("the_rate_limit_counts_events_not_requests");
    let app = TestApp::with_config(|c| {
        c.rate_limit = 1.0;
        c.rate_limit_burst = 2.0;
    })
    .await;
    let send = |events: usize| {
        Request::post("/api/1/envelope/?sentry_key=dev")
            .body(Body::from(envelope(events)))
            .unwrap()
    };
    let res = app.send(send(100)).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "100 events > burst 2"
    );
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    assert!(res.headers().contains_key("x-sentry-rate-limits"));
    assert_eq!(
        app.state.metrics().events_ingested.get(),
        0,
        "nothing stored"
    );
    assert_eq!(app.send(send(2)).await.status(), StatusCode::OK);
    assert_eq!(app.state.metrics().events_ingested.get(), 2);
    let res = app.send(send(1)).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the budget is spent"
    );
}

async fn events_and_points_past_the_retention_are_pruned_and_counted(engine: Engine) {
    let _rss = Rss::print("events_and_points_past_the_retention_are_pruned_and_counted");
    let app = TestApp::on(engine).await;
    let post = || {
        Request::post("/api/1/envelope/?sentry_key=dev")
            .body(Body::from(envelope(1)))
            .unwrap()
    };
    // Age what a first request stored, then let a fresh server's first ingest prune.
    assert_eq!(app.send(post()).await.status(), StatusCode::OK);
    let store = app.state.store();
    store
        .execute_sql("UPDATE events SET received_at = '2000-01-01T00:00:00.000Z'")
        .await
        .unwrap();
    store
        .execute_sql("UPDATE issues SET last_seen = '2000-01-01T00:00:00.000Z'")
        .await
        .unwrap();
    let again = vigil_server::app(vigil_server::AppState::new(
        &vigil_server::Config::for_tests("sqlite::memory:"),
        app.state.store().clone(),
        vigil_server::Tuning::default(),
    ));
    let other = Request::post("/api/1/envelope/?sentry_key=dev")
        .body(Body::from(
            "{}\n{\"type\":\"event\"}\n{\"event_id\":\"ffffffffffffffffffffffffffffffff\",\"message\":\"new\"}\n",
        ))
        .unwrap();
    let res = tower::ServiceExt::oneshot(again, other).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let events = store
        .query_i64("SELECT COUNT(*) FROM events")
        .await
        .unwrap();
    assert_eq!(events, 1, "the old event went, the new one stays");
    let issues = store
        .query_i64("SELECT COUNT(*) FROM issues")
        .await
        .unwrap();
    assert_eq!(issues, 1);
}

#[tokio::test]
async fn an_origin_off_the_list_is_refused_not_just_left_without_cors() {
    let _rss = Rss::print("an_origin_off_the_list_is_refused_not_just_left_without_cors");
    let app =
        TestApp::with_config(|c| c.allowed_origins = vec!["https://good.example".into()]).await;
    let send = |origin: Option<&str>, id: u8| {
        let mut r = Request::post("/api/1/envelope/?sentry_key=dev");
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        let event = format!("{{\"event_id\":\"{:032x}\",\"message\":\"m\"}}", id);
        r.body(Body::from(format!(
            "{{}}\n{{\"type\":\"event\"}}\n{event}\n"
        )))
        .unwrap()
    };
    let res = app.send(send(Some("https://evil.example"), 1)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.state.metrics().events_ingested.get(), 0);
    assert_eq!(
        app.send(send(Some("https://good.example"), 2))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.send(send(None, 3)).await.status(),
        StatusCode::OK,
        "server-side SDKs send none"
    );
    let res = app
        .send(
            Request::post("/v1/metrics?key=dev")
                .header(header::ORIGIN, "https://evil.example")
                .body(Body::from(otlp_body("x", 1, 0)))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_database_url_the_build_does_not_support_is_refused_without_its_password() {
    let _rss =
        Rss::print("a_database_url_the_build_does_not_support_is_refused_without_its_password");
    let dir = tempfile::tempdir().unwrap();
    let url = "mysql://vigil:Hunter2Pass@db.internal:3306/vigil";
    let mut config = vigil_server::Config::for_tests(url);
    config.www = dir.path().to_path_buf();
    let err = vigil_server::Server::bind(&config, vigil_server::Tuning::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sqlite://") && err.contains("postgres://"),
        "{err}"
    );
    assert!(!err.contains("Hunter2Pass"), "{err}");
    assert!(!std::path::Path::new("mysql:").exists(), "nothing created");
}

#[tokio::test]
async fn a_postgres_server_that_does_not_answer_is_reported_without_its_password() {
    // Port 1 on loopback: nothing listens; the pool retries until its 5 s acquire timeout, so
    // both URLs are tried at once.
    let tries: Vec<_> = [
        "postgres://vigil:Hunter2Pass@127.0.0.1:1/vigil",
        "postgresql://vigil@127.0.0.1:1/vigil?password=Hunter2Pass",
    ]
    .into_iter()
    .map(|url| {
        tokio::spawn(async move {
            let config = vigil_server::Config::for_tests(url);
            vigil_server::Server::bind(&config, vigil_server::Tuning::default())
                .await
                .unwrap_err()
                .to_string()
        })
    })
    .collect();
    for t in tries {
        let err = t.await.unwrap();
        assert!(err.contains("cannot open the database"), "{err}");
        assert!(err.contains("127.0.0.1:1"), "{err}");
        assert!(!err.contains("Hunter2Pass"), "{err}");
    }
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_is_counted_and_windows_never_panic() {
    let _rss = Rss::print("a_panicking_handler_answers_500_and_is_counted_and_windows_never_panic");
    let app = TestApp::new().await;
    for path in [
        "/api/1/vitals?window=%C3%A9",
        "/api/1/metrics?name=x&window=%C3%A9",
        "/api/1/vitals?window=1%C3%A9",
    ] {
        let res = app.get(path, true).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    let metrics = app.state.metrics().clone();
    let router = axum::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async {
                let v: Vec<u8> = Vec::new();
                v[1].to_string()
            }),
        )
        .layer(vigil_server::catch_panics(metrics.clone()));
    let res =
        tower::ServiceExt::oneshot(router, Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(json(res).await["error"].is_string());
    assert_eq!(metrics.panics.get(), 1);
}

#[tokio::test]
async fn static_files_refuse_dotfiles_and_links_out_and_carry_security_headers() {
    let _rss = Rss::print("static_files_refuse_dotfiles_and_links_out_and_carry_security_headers");
    let app = TestApp::new().await;
    let pkg = app.state_dir().join("pkg");
    std::fs::write(pkg.join(".gitignore"), "*").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/hostname", pkg.join("host.txt")).unwrap();
    for path in [
        "/pkg/.gitignore",
        "/pkg/%2egitignore",
        "/pkg/host.txt",
        "/www/.hidden",
    ] {
        let res = app.get(path, false).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for path in ["/", "/www/test/page.html", "/pkg/vigil.js"] {
        let res = app.get(path, false).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = res.headers();
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert!(h.contains_key(header::REFERRER_POLICY), "{path}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert!(h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
    }
}

/// Reads until the server closes the connection (or `limit` passes); returns how long it took.
async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), tcp.read(&mut buf))
            .await
        {
            Err(_) => return None,
            Ok(Ok(0)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => return Some(started.elapsed()),
            Ok(Err(_)) => return Some(started.elapsed()),
        }
    }
}

#[tokio::test]
async fn idle_slow_and_stalled_connections_end_and_caps_hold() {
    let _rss = Rss::print("idle_slow_and_stalled_connections_end_and_caps_hold");
    let server = LiveServer::start_with_config(|c| {
        c.header_timeout = Duration::from_millis(800);
        c.body_timeout = Duration::from_millis(800);
        c.max_connections_per_ip = 3;
    })
    .await;
    let addr = server.addr;
    // Idle: connects and sends nothing.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    // Slow headers: a byte every 300 ms.
    let slow = TcpStream::connect(addr).await.unwrap();
    let slow_writer = {
        let (mut r, mut w) = slow.into_split();
        let task = tokio::spawn(async move {
            for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " {
                if w.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        let closed = closed_within_read(&mut r, Duration::from_secs(5)).await;
        task.abort();
        closed
    };
    assert!(slow_writer.is_some(), "a slow header is cut off");
    assert!(
        closed_within(&mut idle, Duration::from_secs(5))
            .await
            .is_some(),
        "idle ends"
    );
    // A body that stops: Content-Length 1,000,000, ten bytes sent.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"POST /api/1/envelope/?sentry_key=dev HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n0123456789")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let took = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut answer)).await;
    assert!(took.is_ok(), "a stalled body is answered and closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    // At most 3 connections from one address: the fourth is closed on arrival.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let _ = c.read(&mut buf).await;
        held.push(c);
    }
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    let _ = fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let closed = closed_within(&mut fourth, Duration::from_millis(500)).await;
    assert!(
        closed.is_some(),
        "the fourth connection from one IP is closed"
    );
    let refused = server
        .state
        .metrics()
        .connections_refused
        .with_label_values(&["max_per_ip"])
        .get();
    assert!(refused >= 1);
    drop(held);
    server.stop().await;
}

async fn closed_within_read(
    r: &mut tokio::net::tcp::OwnedReadHalf,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), r.read(&mut buf)).await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn every_413_names_the_limit_of_the_route_that_refused_it() {
    let _rss = Rss::print("every_413_names_the_limit_of_the_route_that_refused_it");
    let app = TestApp::with_config(|c| c.demo = true).await;
    for (path, size, limit) in [
        ("/voice/realtime", 70 * 1024, "64 KiB"),
        ("/api/orders", 70 * 1024, "64 KiB"),
        ("/api/1/envelope/?sentry_key=dev", (1 << 20) + 10, "1 MiB"),
        ("/v1/metrics?key=dev", (1 << 20) + 10, "1 MiB"),
    ] {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        if path.starts_with("/voice") {
            request = request.header(header::AUTHORIZATION, "Bearer ek_x");
        }
        let res = app
            .send(request.body(Body::from(vec![b'{'; size])).unwrap())
            .await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let reason = json(res).await["error"].as_str().unwrap().to_owned();
        assert!(reason.contains(limit), "{path}: {reason}");
    }
}

#[tokio::test]
async fn gzip_envelopes_are_taken_and_a_decompression_bomb_gets_413() {
    let _rss = Rss::print("gzip_envelopes_are_taken_and_a_decompression_bomb_gets_413");
    use std::io::Write;
    let gzip = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let app = TestApp::new().await;
    let send = |body: Vec<u8>| {
        Request::post("/api/1/envelope/?sentry_key=dev")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(body))
            .unwrap()
    };
    let res = app.send(send(gzip(envelope(1).as_bytes()))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.state.metrics().events_ingested.get(), 1);
    let bomb = gzip(&vec![b' '; 256 << 20]);
    assert!(
        bomb.len() < 1 << 20,
        "the bomb itself is under the request limit"
    );
    let res = app.send(send(bomb)).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

on_both_engines!(events_and_points_past_the_retention_are_pruned_and_counted,);
