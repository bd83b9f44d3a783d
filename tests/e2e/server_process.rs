//! The real server binary as a process.

use std::time::Duration;

use vigil_e2e::{Result, Server};

#[tokio::test]
async fn prints_what_a_user_needs_and_exits_0_on_sigterm_within_5_s() -> Result<()> {
    let server = Server::start(&[]).await?;
    let text = server.startup_lines.join("\n");
    assert!(server.url.starts_with("http://127.0.0.1:"), "{text}");
    assert!(text.contains("demo page:"), "{text}");
    let port = server.url.rsplit(':').next().unwrap_or_default();
    assert!(
        text.contains(&format!("DSN:          http://dev@127.0.0.1:{port}/1")),
        "{text}"
    );
    assert_eq!(server.admin_token.len(), 32, "a generated token: {text}");

    let health = tokio::net::TcpStream::connect(server.url.trim_start_matches("http://")).await;
    assert!(health.is_ok(), "the server accepts connections");

    let (status, took) = server.terminate(Duration::from_secs(5)).await?;
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    Ok(())
}

#[tokio::test]
async fn a_shutdown_whose_grace_period_runs_out_exits_non_zero() -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let server = Server::start(&[]).await?;
    // A request whose body stops arriving: in flight until the body timeout (15 s), past the
    // 4.5 s grace.
    let mut stalled =
        tokio::net::TcpStream::connect(server.url.trim_start_matches("http://")).await?;
    stalled
        .write_all(b"POST /api/1/envelope/?sentry_key=dev HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{}")
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, took) = server.terminate(Duration::from_secs(8)).await?;
    assert!(!status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(6), "took {took:?}");
    drop(stalled);
    Ok(())
}
