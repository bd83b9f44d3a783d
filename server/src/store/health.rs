//! Health samples and runtime instances (the fleet view).

use futures_util::TryStreamExt;
use sqlx::{Sqlite, Transaction};

use super::Store;
use crate::error::AppError;
use crate::fleet::{HealthBatch, InstanceRow, Sample, MAX_INSTANCES};

/// Samples more than this far from the server's clock are stored at the server's time (a kiosk
/// whose clock is off still lands in the window).
const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// Ms since the epoch, from the system clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Stores a batch's samples and updates its instance; returns the points stored.
pub(super) async fn insert(
    tx: &mut Transaction<'static, Sqlite>,
    project: &str,
    batch: &HealthBatch,
) -> Result<usize, AppError> {
    let now = now_ms();
    let mut points = 0;
    let mut newest: Option<(i64, &Sample)> = None;
    let mut oldest = i64::MAX;
    for s in &batch.samples {
        let t = if s.time_ms == 0 || (s.time_ms - now).abs() > MAX_SKEW_MS {
            now
        } else {
            s.time_ms
        };
        let r = &s.resources;
        sqlx::query(
            "INSERT INTO health_samples (project, instance_id, time_ms, heap, wasm, uptime,
               listeners, intervals, timeouts, observers, sockets, peer_connections,
               data_channels, media_tracks, console_patches, services)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(project)
        .bind(&batch.instance_id)
        .bind(t)
        .bind(s.heap)
        .bind(s.wasm)
        .bind(s.uptime)
        .bind(r[0])
        .bind(r[1])
        .bind(r[2])
        .bind(r[3])
        .bind(r[4])
        .bind(r[5])
        .bind(r[6])
        .bind(r[7])
        .bind(r[8])
        .bind(r[9])
        .execute(&mut **tx)
        .await?;
        points += [s.heap, s.wasm, s.uptime]
            .iter()
            .chain(r)
            .filter(|v| v.is_some())
            .count();
        oldest = oldest.min(t);
        if newest.is_none_or(|(nt, _)| t >= nt) {
            newest = Some((t, s));
        }
    }
    let Some((newest_t, last)) = newest else {
        return Ok(0);
    };
    let mut last = last.clone();
    last.time_ms = newest_t;
    sqlx::query(
        "INSERT INTO instances (project, instance_id, release, user_agent, first_seen_ms,
           last_seen_ms, last)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (project, instance_id) DO UPDATE SET
           release = excluded.release,
           user_agent = excluded.user_agent,
           first_seen_ms = MIN(first_seen_ms, excluded.first_seen_ms),
           last = CASE WHEN excluded.last_seen_ms >= last_seen_ms THEN excluded.last ELSE last END,
           last_seen_ms = MAX(last_seen_ms, excluded.last_seen_ms)",
    )
    .bind(project)
    .bind(&batch.instance_id)
    .bind(&batch.release)
    .bind(&batch.user_agent)
    .bind(oldest)
    .bind(newest_t)
    .bind(last.to_json().to_string())
    .execute(&mut **tx)
    .await?;
    Ok(points)
}

type SampleRow = (
    String,
    i64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

impl Store {
    /// The instances of `project` seen since `since_ms`, most recently seen first (at most
    /// [`MAX_INSTANCES`]).
    pub async fn instances(
        &self,
        project: &str,
        since_ms: i64,
    ) -> Result<Vec<InstanceRow>, AppError> {
        let rows: Vec<(String, String, String, i64, i64, String)> = sqlx::query_as(
            "SELECT instance_id, release, user_agent, first_seen_ms, last_seen_ms, last
             FROM instances WHERE project = ? AND last_seen_ms >= ?
             ORDER BY last_seen_ms DESC LIMIT ?",
        )
        .bind(project)
        .bind(since_ms)
        .bind(MAX_INSTANCES)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(instance_id, release, user_agent, first_seen_ms, last_seen_ms, last)| {
                    InstanceRow {
                        instance_id,
                        release,
                        user_agent,
                        first_seen_ms,
                        last_seen_ms,
                        last,
                    }
                },
            )
            .collect())
    }

    /// Streams every sample of `project` since `since_ms` to `each`, ordered by instance and
    /// time (the index's order: no sort, nothing buffered).
    pub async fn each_health_sample(
        &self,
        project: &str,
        since_ms: i64,
        mut each: impl FnMut(&str, &Sample),
    ) -> Result<(), AppError> {
        let mut rows = sqlx::query_as::<_, SampleRow>(
            "SELECT instance_id, time_ms, heap, wasm, uptime, listeners, intervals, timeouts,
               observers, sockets, peer_connections, data_channels, media_tracks,
               console_patches, services
             FROM health_samples WHERE project = ? AND time_ms >= ?
             ORDER BY instance_id, time_ms",
        )
        .bind(project)
        .bind(since_ms)
        .fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            let sample = Sample {
                time_ms: r.1,
                heap: r.2,
                wasm: r.3,
                uptime: r.4,
                resources: [r.5, r.6, r.7, r.8, r.9, r.10, r.11, r.12, r.13, r.14],
            };
            each(&r.0, &sample);
        }
        Ok(())
    }

    /// Deletes samples older than `before_ms` and instances not seen since; returns how many
    /// samples went.
    pub async fn prune_health(&self, before_ms: i64) -> Result<u64, AppError> {
        let gone = sqlx::query("DELETE FROM health_samples WHERE time_ms < ?")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM instances WHERE last_seen_ms < ?")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(gone)
    }
}
