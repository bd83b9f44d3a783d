//! The security review's worst requests against the real server binary, measured from outside:
//! its peak memory and its database's growth stay within stated bounds.

use vigil_e2e::{Result, Server};

/// Peak RSS the server may reach while taking the worst OTLP body the limits let through.
const MAX_PEAK_KIB: u64 = 96 * 1024;
/// Growth of `vigil.db` + WAL for three such bodies (a point stores its name in the table and
/// in the index, and the WAL holds the pages again until a checkpoint: about 880 bytes a point).
const MAX_DB_GROWTH: u64 = 40 << 20;

fn otlp(name: &str, points: usize) -> String {
    let point = r#"{"asDouble":1,"timeUnixNano":"0"}"#;
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[]}},"scopeMetrics":[{{"scope":{{"name":"t"}},"metrics":[{{"name":"{name}","unit":"ms","gauge":{{"dataPoints":[{}]}}}}]}}]}}]}}"#,
        vec![point; points].join(",")
    )
}

fn db_bytes(server: &Server) -> u64 {
    ["vigil.db", "vigil.db-wal", "vigil.db-shm"]
        .iter()
        .filter_map(|f| std::fs::metadata(server.data_dir().join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test]
async fn the_worst_otlp_bodies_cost_bounded_memory_and_disk() -> Result<()> {
    let server = Server::start(&[]).await?;
    let before_rss = server.memory_kib("VmRSS")?;
    let before_db = db_bytes(&server);
    let post = |body: String| {
        let server = &server;
        async move {
            server
                .raw_request(
                    "POST",
                    "/v1/metrics?key=dev",
                    "Content-Type: application/json\r\n",
                    &body,
                )
                .await
        }
    };
    // The review's body: a 50 KB name on 2,000 points (it cost 100 MB of memory, 200 MB of disk).
    let (status, _, body) = post(otlp(&"n".repeat(50_000), 2_000)).await?;
    assert_eq!(status, 400, "{body}");
    // The worst the limits allow: 10,000 points under a 255-byte name, sent three times.
    for _ in 0..3 {
        let (status, _, body) = post(otlp(&"n".repeat(255), 10_000)).await?;
        assert_eq!(status, 200, "{body}");
    }
    let peak = server.memory_kib("VmHWM")?;
    let after_rss = server.memory_kib("VmRSS")?;
    let grown = db_bytes(&server).saturating_sub(before_db);
    println!(
        "worst OTLP bodies: server RSS {before_rss} KiB before, {after_rss} KiB after, peak {peak} KiB; \
         database + WAL grew {} KiB for 30,000 points",
        grown / 1024
    );
    assert!(peak < MAX_PEAK_KIB, "peak RSS {peak} KiB");
    assert!(grown < MAX_DB_GROWTH, "database grew {grown} bytes");
    Ok(())
}
