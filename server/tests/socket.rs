//! The real server on a real socket.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use vigil_server::{Config, Server};

#[tokio::test]
async fn serves_on_port_zero_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(&format!("sqlite://{}/vigil.db", dir.path().display()));
    config.www = dir.path().to_path_buf();
    config.pkg = dir.path().to_path_buf();
    let server = Server::bind(&config, vigil_server::Tuning::from_config(&config))
        .await
        .unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0, "port 0 picks a real port");
    let lines = server.startup_lines();
    assert!(lines[0].contains(&format!("http://{addr}")), "{lines:?}");
    assert!(lines
        .iter()
        .any(|l| l.contains(&format!("DSN:          http://dev@{addr}/1"))));
    // A token the operator gave is not printed (only a generated one is).
    assert!(!lines.iter().any(|l| l.contains("test-admin")), "{lines:?}");
    assert!(lines
        .iter()
        .any(|l| l.contains("admin token:") && l.contains("not printed")));
    assert!(!format!("{:?} {:?}", server, server.state()).contains("test-admin"));

    let shutdown = CancellationToken::new();
    let app_shutdown = server.state().shutdown().clone();
    let serving = tokio::spawn(server.serve(shutdown.clone()));

    let client = reqwest::Client::new();
    let res = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    let metrics = client
        .get(format!("http://{addr}/metrics"))
        .bearer_auth("test-admin")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("vigil_http_requests_total{class=\"2xx\"} 1"),
        "{metrics}"
    );

    let started = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("graceful shutdown within 5 s")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        app_shutdown.is_cancelled(),
        "long-lived tasks are told to stop"
    );
    assert!(
        client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err(),
        "nothing listens after shutdown"
    );
}
