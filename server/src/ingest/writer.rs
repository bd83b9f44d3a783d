//! Group commit for everything ingestion stores: handlers hand validated events and OTLP exports
//! (metric points and fleet health samples) to one writer task over a bounded channel; the
//! writer commits them in batches (up to [`WriterConfig::max_batch`] rows, or what arrived within
//! [`WriterConfig::max_wait`] of the first) in one transaction, and answers each handler only
//! after its batch committed. A full queue is refused at once (`503` with `Retry-After`), never
//! queued without bound.
//!
//! Architecture Invariant: an event or an export is acknowledged only after the transaction
//! holding it committed; a failed commit fails everything in its batch (`503` when the database
//! is unavailable, else `500`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;
use crate::fleet::HealthBatch;
use crate::ingest::event::Summary;
use crate::ingest::otlp::Row;
use crate::store::{ExportRows, Store};

/// How the writer batches and how much may wait for it (part of [`crate::Tuning`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// Rows one transaction holds at most (an event is one row; an export its points and
    /// samples); the first job of a batch is always taken, however large.
    pub max_batch: usize,
    /// How long the writer waits for more after the first job of a batch.
    pub max_wait: Duration,
    /// Rows waiting for the writer at most; more are refused with `503`. A single export
    /// larger than this is taken only when nothing else waits.
    pub queue: usize,
}

impl Default for WriterConfig {
    /// Measured with `./dev.sh bench` (README, "Ingest figures"): 256 rows, and no wait: what
    /// queued while the previous batch committed is the next batch (a 2 ms wait capped 64
    /// senders at ~11,000 events/s on SQLite, 0 ms reached ~15,000).
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_wait: Duration::ZERO,
            queue: 8192,
        }
    }
}

/// What a job stores.
#[derive(Debug)]
enum Work {
    Event {
        project: String,
        summary: Summary,
        payload: String,
    },
    Export {
        project: String,
        export_id: Option<String>,
        rows: Vec<Row>,
        health: Option<HealthBatch>,
    },
}

/// Why a batch was not committed (the store error itself goes to the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The database is unreachable or out of connections: `503`.
    Unavailable,
    /// Any other storage failure: `500`.
    Storage,
}

/// One event or export for the writer, and where its answer goes: rows stored (an event: 1 new,
/// 0 a duplicate id; an export: its points and samples, 0 a retry of a stored one).
#[derive(Debug)]
struct Job {
    work: Work,
    weight: usize,
    done: oneshot::Sender<Result<usize, Failure>>,
}

/// The rows a job weighs in the queue and in a batch (at least 1).
fn weight(work: &Work) -> usize {
    match work {
        Work::Event { .. } => 1,
        Work::Export { rows, health, .. } => {
            let samples = health.as_ref().map_or(0, |h| h.samples.len());
            (rows.len() + samples).max(1)
        }
    }
}

/// Whether a job of `weight` rows may join `queued` waiting rows under `limit`.
fn admits(queued: usize, weight: usize, limit: usize) -> bool {
    queued == 0 || queued.saturating_add(weight) <= limit
}

/// The handlers' end of the writer.
#[derive(Debug, Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    queued: Arc<AtomicUsize>,
    limit: usize,
    stats: Arc<Stats>,
}

/// What the writer did, for tests and `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Jobs refused because the queue was full.
    pub refused: AtomicU64,
}

impl Writer {
    /// Starts the writer task on the current runtime; it ends when every `Writer` is dropped,
    /// after committing what it holds.
    pub fn start(store: Store, config: WriterConfig) -> Self {
        let config = WriterConfig {
            max_batch: config.max_batch.max(1),
            queue: config.queue.max(1),
            ..config
        };
        let (jobs, rx) = mpsc::channel(config.queue);
        let queued = Arc::new(AtomicUsize::new(0));
        let stats = Arc::new(Stats::default());
        tokio::spawn(run(store, rx, config, queued.clone(), stats.clone()));
        Self {
            jobs,
            queued,
            limit: config.queue,
            stats,
        }
    }

    /// Counters of batches committed and jobs refused.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Stores `summary` once its batch committed: `Ok(true)` new, `Ok(false)` a duplicate id.
    pub async fn insert(
        &self,
        project: &str,
        summary: Summary,
        payload: String,
    ) -> Result<bool, AppError> {
        let work = Work::Event {
            project: project.to_owned(),
            summary,
            payload,
        };
        Ok(self.submit(work).await? == 1)
    }

    /// Stores an OTLP export's points and health samples once its batch committed; returns how
    /// many (0 when its export id was stored already).
    pub async fn insert_export(
        &self,
        project: &str,
        export_id: Option<String>,
        rows: Vec<Row>,
        health: Option<HealthBatch>,
    ) -> Result<usize, AppError> {
        self.submit(Work::Export {
            project: project.to_owned(),
            export_id,
            rows,
            health,
        })
        .await
    }

    async fn submit(&self, work: Work) -> Result<usize, AppError> {
        let weight = weight(&work);
        let queued = self.queued.fetch_add(weight, Ordering::AcqRel);
        if !admits(queued, weight, self.limit) {
            self.queued.fetch_sub(weight, Ordering::AcqRel);
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(busy());
        }
        let (done, answer) = oneshot::channel();
        let job = Job { work, weight, done };
        if let Err(e) = self.jobs.try_send(job) {
            self.queued.fetch_sub(weight, Ordering::AcqRel);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    busy()
                }
                mpsc::error::TrySendError::Closed(_) => {
                    AppError::Unavailable("the server is shutting down")
                }
            });
        }
        match answer.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(Failure::Unavailable)) => {
                Err(AppError::Unavailable("the database is unavailable"))
            }
            Ok(Err(Failure::Storage)) => Err(AppError::Internal("storage error".into())),
            Err(_) => Err(AppError::Internal("the writer stopped".into())),
        }
    }
}

fn busy() -> AppError {
    AppError::Busy("the writer's queue is full", 1)
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    config: WriterConfig,
    queued: Arc<AtomicUsize>,
    stats: Arc<Stats>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(config.max_batch.min(1024));
    let take = |job: Job, batch: &mut Vec<Job>, rows: &mut usize| {
        queued.fetch_sub(job.weight, Ordering::AcqRel);
        *rows += job.weight;
        batch.push(job);
    };
    while let Some(first) = rx.recv().await {
        let mut rows = 0;
        take(first, &mut batch, &mut rows);
        let deadline = tokio::time::Instant::now() + config.max_wait;
        while rows < config.max_batch {
            match rx.try_recv() {
                Ok(job) => take(job, &mut batch, &mut rows),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => take(job, &mut batch, &mut rows),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        commit(&store, &mut batch).await;
        stats.batches.fetch_add(1, Ordering::Relaxed);
    }
}

async fn commit(store: &Store, batch: &mut Vec<Job>) {
    let mut events = Vec::new();
    let mut exports = Vec::new();
    for job in batch.iter() {
        match &job.work {
            Work::Event {
                project,
                summary,
                payload,
            } => events.push((project.as_str(), summary, payload.as_str())),
            Work::Export {
                project,
                export_id,
                rows,
                health,
            } => exports.push(ExportRows {
                project,
                export_id: export_id.as_deref(),
                rows,
                health: health.as_ref(),
            }),
        }
    }
    let result = store.insert_batch(&events, &exports).await;
    drop((events, exports));
    match result {
        Ok((inserted, stored)) => {
            let (mut inserted, mut stored) = (inserted.into_iter(), stored.into_iter());
            for job in batch.drain(..) {
                let answer = match job.work {
                    Work::Event { .. } => usize::from(inserted.next().unwrap_or(false)),
                    Work::Export { .. } => stored.next().unwrap_or(0),
                };
                let _ = job.done.send(Ok(answer)); // a handler that went away needs no answer
            }
        }
        Err(e) => {
            tracing::error!(error = ?e, jobs = batch.len(), "committing a batch failed");
            let failure = if e.is_unavailable() {
                Failure::Unavailable
            } else {
                Failure::Storage
            };
            for job in batch.drain(..) {
                let _ = job.done.send(Err(failure));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(n: u32) -> Summary {
        Summary {
            event_id: format!("{n:032x}"),
            level: "error".into(),
            title: "boom".into(),
            fingerprint: format!("{n:016x}"),
        }
    }

    #[tokio::test]
    async fn a_failed_commit_answers_503_and_the_writer_keeps_running() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let writer = Writer::start(store.clone(), WriterConfig::default());
        assert!(writer.insert("1", summary(1), "{}".into()).await.unwrap());
        // The database goes away: every event of a batch is refused with 503, never 200, and
        // the writer answers the next batch too instead of stopping.
        store.close().await;
        for n in 2..5 {
            let e = writer
                .insert("1", summary(n), "{}".into())
                .await
                .unwrap_err();
            assert_eq!(
                e.status(),
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "{e}"
            );
        }
    }

    #[test]
    fn a_job_joins_the_queue_only_within_its_limit() {
        assert!(admits(0, 1, 10));
        assert!(admits(9, 1, 10));
        assert!(!admits(10, 1, 10));
        assert!(!admits(5, 6, 10));
        // One export larger than the whole queue still goes through when nothing waits.
        assert!(admits(0, 50, 10));
        assert!(!admits(1, 50, 10));
        assert!(!admits(usize::MAX, 1, 10));
    }

    #[test]
    fn an_export_weighs_its_points_and_samples() {
        let event = Work::Event {
            project: "1".into(),
            summary: Summary {
                event_id: "0".repeat(32),
                level: "error".into(),
                title: "t".into(),
                fingerprint: "f".repeat(16),
            },
            payload: String::new(),
        };
        assert_eq!(weight(&event), 1);
        let row = Row {
            name: "m".into(),
            unit: "1".into(),
            value: 1.0,
            time_unix_nano: 0,
            attributes: Default::default(),
        };
        let export = |rows: usize, samples: usize| Work::Export {
            project: "1".into(),
            export_id: None,
            rows: vec![row.clone(); rows],
            health: (samples > 0).then(|| HealthBatch {
                samples: vec![Default::default(); samples],
                ..Default::default()
            }),
        };
        assert_eq!(
            weight(&export(0, 0)),
            1,
            "an empty export still takes a place"
        );
        assert_eq!(weight(&export(7, 0)), 7);
        assert_eq!(weight(&export(7, 2)), 9);
    }
}
