//! SQLite's WAL checkpoints, off the commit path. By default SQLite checkpoints inside the
//! commit that grows the WAL past 1,000 pages: that commit copies the WAL into the database
//! and syncs it, and the ingest writer (one connection, one batch at a time) waits for it with
//! every batch queued behind. Here the pool's connection checkpoints only as a safety net
//! ([`WRITER_AUTOCHECKPOINT_PAGES`]), and a task with a connection of its own runs a `PASSIVE`
//! checkpoint every [`PERIOD`], which never waits for the writer and never makes it wait.
//!
//! Measured with the ingest bench's load (README, "Ingest figures"): p99 12 → 6 ms and about
//! a tenth more events/s on SQLite.
//!
//! Architecture Invariant: only the file-backed SQLite store has a checkpointer; it holds one
//! connection outside the pool and stops when the last [`super::Store`] clone is dropped or
//! closed.

use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use tokio_util::sync::CancellationToken;

/// How often the WAL is copied into the database. At 20,000 events/s the WAL grows by about
/// 5 MB in this time; an idle database costs one cheap statement.
pub const PERIOD: Duration = Duration::from_millis(100);

/// WAL pages at which a committing connection checkpoints anyway (SQLite's default is 1,000):
/// reached only when the checkpointer falls behind, it bounds the WAL at about 40 MB.
pub const WRITER_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// The running checkpoint task; dropping it stops the task.
#[derive(Debug)]
pub struct Checkpointer {
    stop: CancellationToken,
}

impl Checkpointer {
    /// Starts the task on the current runtime: every `period`, a `PASSIVE` checkpoint on a
    /// connection opened with `options` (opened again after a failure).
    pub fn start(options: SqliteConnectOptions, period: Duration) -> Self {
        let stop = CancellationToken::new();
        tokio::spawn(run(options, period, stop.clone()));
        Self { stop }
    }

    /// Stops the task (it closes its connection).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn run(options: SqliteConnectOptions, period: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<SqliteConnection> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match options.connect().await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::warn!(error = %e, "the WAL checkpointer cannot connect");
                    continue;
                }
            },
        };
        // (busy, frames in the WAL, frames copied): busy only means a reader held some back.
        let done = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut *c)
            .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "a WAL checkpoint failed");
            if let Some(c) = conn.take() {
                let _ = c.close().await;
            }
        }
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Store, Summary};

    /// The database file grows only when a checkpoint copies the WAL into it: with the
    /// committing connection's threshold far away, that is the checkpointer's doing.
    #[tokio::test]
    async fn the_checkpointer_copies_the_wal_into_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("v.db");
        let store = Store::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        let len = || std::fs::metadata(&file).map_or(0, |m| m.len());
        let wal = || std::fs::metadata(file.with_extension("db-wal")).map_or(0, |m| m.len());
        let before = len();
        let payload = "x".repeat(4_000);
        let summaries: Vec<Summary> = (0..200)
            .map(|n| Summary {
                event_id: format!("{n:032x}"),
                level: "error".into(),
                title: "t".into(),
                fingerprint: "f".into(),
            })
            .collect();
        let rows: Vec<_> = summaries
            .iter()
            .map(|s| ("1", s, payload.as_str()))
            .collect();
        store.insert_events(&rows).await.unwrap();
        assert!(wal() > 800_000, "the events are in the WAL ({} B)", wal());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while len() < before + 800_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint copied the WAL: {} B, {} B before",
                len(),
                before
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        store.close().await;
    }
}
