//! Group commit for events: handlers hand validated events to one writer task over a bounded
//! channel; the writer commits them in batches (up to [`MAX_BATCH`] events, or what arrived
//! within [`MAX_WAIT`] of the first) and answers each handler only after its batch committed.
//! A full channel is refused at once (`503` with `Retry-After`), never queued without bound.
//!
//! Architecture Invariant: an event is acknowledged only after the transaction holding it
//! committed; a failed commit fails every event of its batch.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;
use crate::ingest::event::Summary;
use crate::store::Store;

/// Events one transaction holds at most.
pub const MAX_BATCH: usize = 256;

/// How long the writer waits for more events after the first of a batch.
pub const MAX_WAIT: Duration = Duration::from_millis(2);

/// Events waiting for the writer at most; more are refused with `503`.
pub const QUEUE: usize = 8192;

/// One event for the writer, and where its answer goes.
#[derive(Debug)]
struct Job {
    project: String,
    summary: Summary,
    payload: String,
    done: oneshot::Sender<Result<bool, String>>,
}

/// The handlers' end of the writer.
#[derive(Debug, Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on the current runtime; it ends when every `Writer` is dropped,
    /// after committing what it holds.
    pub fn start(store: Store) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx));
        Self { jobs }
    }

    /// Stores `summary` once its batch committed: `Ok(true)` new, `Ok(false)` a duplicate id.
    pub async fn insert(
        &self,
        project: &str,
        summary: Summary,
        payload: String,
    ) -> Result<bool, AppError> {
        let (done, answer) = oneshot::channel();
        let job = Job {
            project: project.to_owned(),
            summary,
            payload,
            done,
        };
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                AppError::Busy("the event writer's queue is full", 1)
            }
            mpsc::error::TrySendError::Closed(_) => {
                AppError::Unavailable("the server is shutting down")
            }
        })?;
        match answer.await {
            Ok(Ok(inserted)) => Ok(inserted),
            // Nothing of the batch was stored: the sender may retry (the database may be back
            // by then; the writer keeps running).
            Ok(Err(_)) => Err(AppError::Unavailable(
                "the database did not store the event; retry later",
            )),
            Err(_) => Err(AppError::Internal("the event writer stopped".into())),
        }
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => batch.push(job),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        commit(&store, &mut batch).await;
    }
}

async fn commit(store: &Store, batch: &mut Vec<Job>) {
    let rows: Vec<(&str, &Summary, &str)> = batch
        .iter()
        .map(|j| (j.project.as_str(), &j.summary, j.payload.as_str()))
        .collect();
    let result = store.insert_events(&rows).await;
    drop(rows);
    match result {
        Ok(inserted) => {
            for (job, new) in batch.drain(..).zip(inserted) {
                let _ = job.done.send(Ok(new)); // a handler that went away needs no answer
            }
        }
        Err(e) => {
            tracing::error!(error = ?e, events = batch.len(), "committing a batch of events failed");
            for job in batch.drain(..) {
                let _ = job.done.send(Err("storage error".into()));
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
        let writer = Writer::start(store.clone());
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
}
