//! Accepting connections, with the limits a public server needs: at most `max_connections` at
//! once and `max_per_ip` from one address (more are closed at once and counted), a deadline for
//! each request head (idle and slow-header connections end), and a graceful stop that lets
//! in-flight requests finish.
//!
//! Architecture Invariant: every accepted connection holds a global permit and a per-IP permit
//! until its task ends, so the per-IP table has at most `max_connections` entries.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::metrics::Metrics;

/// Connection limits and deadlines (server-api.md: defaults that serve a real fleet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once, over all addresses.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_per_ip: usize,
    /// From a connection being ready for a request to its head having arrived whole.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_per_ip: 256,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Open connections per IP address, bounded by the global cap.
#[derive(Debug)]
struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`PerIp`]; dropping it gives the place back.
#[derive(Debug)]
struct IpPermit {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn acquire(table: &Arc<PerIp>, ip: IpAddr) -> Option<IpPermit> {
        let mut open = table.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= table.max {
            return None;
        }
        *n += 1;
        Some(IpPermit {
            table: Arc::clone(table),
            ip,
        })
    }
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `stop` is cancelled, then stops accepting and waits for
/// the connections' in-flight requests (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Metrics,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let global = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_ip = Arc::new(PerIp {
        max: limits.max_per_ip.max(1),
        open: Mutex::new(HashMap::new()),
    });
    let connections = TaskTracker::new();
    // HTTP/1.1 only (browsers speak HTTP/2 over TLS, which a proxy in front terminates): the
    // header deadline then runs from the first byte the connection waits for, where the
    // version-sniffing auto builder would wait for a preface without one.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let Ok(permit) = Arc::clone(&global).try_acquire_owned() else {
            metrics
                .connections_refused
                .with_label_values(&["max_connections"])
                .inc();
            continue; // dropping the stream closes it
        };
        let Some(ip_permit) = PerIp::acquire(&per_ip, remote.ip()) else {
            metrics
                .connections_refused
                .with_label_values(&["max_per_ip"])
                .inc();
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut request: axum::extract::Request<_>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request
            });
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let stopping = stop.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stopping.cancelled() => {
                    // Finish the request in flight, then close (an idle connection closes now).
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop((permit, ip_permit));
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_places_are_counted_and_given_back() {
        let table = Arc::new(PerIp {
            max: 2,
            open: Mutex::new(HashMap::new()),
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let p1 = PerIp::acquire(&table, a).unwrap();
        let _p2 = PerIp::acquire(&table, a).unwrap();
        assert!(PerIp::acquire(&table, a).is_none(), "a third from one IP");
        let _q = PerIp::acquire(&table, b).unwrap();
        drop(p1);
        assert!(PerIp::acquire(&table, a).is_some());
        drop(_q);
        assert!(
            !table.open.lock().unwrap().contains_key(&b),
            "empty entries go"
        );
    }
}
