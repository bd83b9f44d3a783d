//! Health samples and runtime instances (the fleet view).

use std::sync::LazyLock;

use futures_util::TryStreamExt;
use sqlx::Row;

use super::engine::{each, Engine, Tx};
use super::{Store, StoreError};
use crate::fleet::verdict::BUCKETS;
use crate::fleet::{Bucket, HealthBatch, InstanceRow, Sample, MAX_INSTANCES};

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
    tx: &mut Tx,
    project: &str,
    batch: &HealthBatch,
) -> Result<usize, StoreError> {
    insert_at(tx, project, batch, now_ms()).await
}

/// As [`insert`], with the server's clock given (samples far from it are stored at it).
pub(super) async fn insert_at(
    tx: &mut Tx,
    project: &str,
    batch: &HealthBatch,
    now: i64,
) -> Result<usize, StoreError> {
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
        let stored = each!(&mut *tx, |c| sqlx::query(
            "INSERT INTO health_samples (project, instance_id, time_ms, heap, wasm, uptime,
               listeners, intervals, timeouts, observers, sockets, peer_connections,
               data_channels, media_tracks, console_patches, services)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (project, instance_id, time_ms) DO NOTHING",
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
        .execute(&mut **c)
        .await
        .map(|r| r.rows_affected()))?;
        if stored == 1 {
            rollup(tx, project, &batch.instance_id, t, s).await?;
        }
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
    let sql = match tx.engine() {
        Engine::Sqlite => &*INSTANCE_UPSERT[0],
        Engine::Postgres => &*INSTANCE_UPSERT[1],
    };
    let last = last.to_json().to_string();
    each!(&mut *tx, |t| sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(project)
        .bind(&batch.instance_id)
        .bind(&batch.release)
        .bind(&batch.user_agent)
        .bind(oldest)
        .bind(newest_t)
        .bind(&last)
        .execute(&mut **t)
        .await
        .map(drop))?;
    Ok(points)
}

/// The instance upsert, per engine: the earliest first sighting, the latest last one.
static INSTANCE_UPSERT: LazyLock<[String; 2]> = LazyLock::new(|| {
    [Engine::Sqlite, Engine::Postgres].map(|e| {
        format!(
            "INSERT INTO instances (project, instance_id, release, user_agent, first_seen_ms,
               last_seen_ms, last)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (project, instance_id) DO UPDATE SET
               release = excluded.release,
               user_agent = excluded.user_agent,
               first_seen_ms = {},
               last = CASE WHEN excluded.last_seen_ms >= instances.last_seen_ms
                           THEN excluded.last ELSE instances.last END,
               last_seen_ms = {}",
            e.least("instances.first_seen_ms", "excluded.first_seen_ms"),
            e.greatest("instances.last_seen_ms", "excluded.last_seen_ms"),
        )
    })
});

/// The series a rollup keeps the minimum of, as columns (the total last).
const ROLLUP_SERIES: [&str; 13] = [
    "heap",
    "wasm",
    "listeners",
    "intervals",
    "timeouts",
    "observers",
    "sockets",
    "peer_connections",
    "data_channels",
    "media_tracks",
    "console_patches",
    "services",
    "total",
];

/// The rollup upsert, per engine: one more sample, the earliest time, each series' minimum
/// over the samples that reported it.
static ROLLUP_UPSERT: LazyLock<[String; 2]> = LazyLock::new(|| {
    [Engine::Sqlite, Engine::Postgres].map(|e| {
        let minima: Vec<String> = ROLLUP_SERIES
            .iter()
            .map(|c| {
                format!(
                    "{c} = {}",
                    e.least_present(&format!("health_rollups.{c}"), &format!("excluded.{c}"))
                )
            })
            .collect();
        format!(
            "INSERT INTO health_rollups (project, instance_id, slot_ms, samples, first_ms, {})
             VALUES ($1, $2, $3, 1, $4, {})
             ON CONFLICT (project, instance_id, slot_ms) DO UPDATE SET
               samples = health_rollups.samples + 1,
               first_ms = {},
               {}",
            ROLLUP_SERIES.join(", "),
            (5..5 + ROLLUP_SERIES.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", "),
            e.least("health_rollups.first_ms", "excluded.first_ms"),
            minima.join(",\n               "),
        )
    })
});

/// Folds one stored sample into its instance's 15-minute slot.
async fn rollup(
    tx: &mut Tx,
    project: &str,
    instance: &str,
    t: i64,
    s: &Sample,
) -> Result<(), StoreError> {
    let total: Option<f64> = s.resources.iter().flatten().copied().reduce(|a, b| a + b);
    let sql = match tx.engine() {
        Engine::Sqlite => &*ROLLUP_UPSERT[0],
        Engine::Postgres => &*ROLLUP_UPSERT[1],
    };
    each!(tx, |tx| {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(instance)
            .bind(t - t.rem_euclid(SLOT_MS))
            .bind(t)
            .bind(s.heap)
            .bind(s.wasm);
        for v in s.resources {
            q = q.bind(v);
        }
        q.bind(total).execute(&mut **tx).await.map(drop)
    })?;
    Ok(())
}

/// The width of one rollup slot.
pub const SLOT_MS: i64 = 15 * 60 * 1000;

/// Instances whose samples in the window span longer than this are read from the rollups.
pub const ROLLUP_ABOVE_MS: i64 = 6 * 3600 * 1000;

/// The bucketing query of `engine` over the raw samples or the rollups: built once each.
fn bucket_query(engine: Engine, rollups: bool) -> &'static str {
    static QUERIES: LazyLock<[String; 4]> = LazyLock::new(|| {
        [
            build_bucket_query(Engine::Sqlite, false),
            build_bucket_query(Engine::Sqlite, true),
            build_bucket_query(Engine::Postgres, false),
            build_bucket_query(Engine::Postgres, true),
        ]
    });
    let i = match engine {
        Engine::Sqlite => 0,
        Engine::Postgres => 2,
    } + usize::from(rollups);
    &QUERIES[i]
}

/// Binds: `$1` since (ms), `$2` project, `$3` at most this many instances, `$4` buckets, `$5`
/// the span above which an instance is read from the rollups.
fn build_bucket_query(engine: Engine, rollups: bool) -> String {
    let (table, time, count, total) = if rollups {
        (
            "health_rollups",
            "s.first_ms",
            // PostgreSQL sums BIGINT into NUMERIC: back to BIGINT, as SQLite's is.
            "CAST(SUM(s.samples) AS BIGINT)",
            "MIN(s.total)",
        )
    } else {
        (
            "health_samples",
            "s.time_ms",
            "COUNT(*)",
            "MIN(COALESCE(s.listeners, 0) + COALESCE(s.intervals, 0) + COALESCE(s.timeouts, 0)
               + COALESCE(s.observers, 0) + COALESCE(s.sockets, 0)
               + COALESCE(s.peer_connections, 0) + COALESCE(s.data_channels, 0)
               + COALESCE(s.media_tracks, 0) + COALESCE(s.console_patches, 0)
               + COALESCE(s.services, 0))",
        )
    };
    let since = if rollups { "s.slot_ms" } else { "s.time_ms" };
    let long = if rollups { ">" } else { "<=" };
    let t0 = engine.greatest("first_seen_ms", "$1");
    let offset = engine.least(
        &engine.greatest(&format!("{time} - span.t0"), "0"),
        "span.t1 - span.t0",
    );
    format!(
        "WITH span AS (
           SELECT instance_id, {t0} AS t0, last_seen_ms AS t1
           FROM instances WHERE project = $2 AND last_seen_ms >= $1
             AND last_seen_ms - {t0} {long} $5
           ORDER BY last_seen_ms DESC LIMIT $3
         )
         SELECT s.instance_id,
           CASE WHEN span.t1 <= span.t0 THEN 0
                ELSE ({offset} * ($4 - 1)) / (span.t1 - span.t0) END AS b,
           MIN({time}), {count}, MIN(s.heap), MIN(s.wasm),
           MIN(s.listeners), MIN(s.intervals), MIN(s.timeouts), MIN(s.observers),
           MIN(s.sockets), MIN(s.peer_connections), MIN(s.data_channels),
           MIN(s.media_tracks), MIN(s.console_patches), MIN(s.services), {total}
         FROM {table} s JOIN span ON span.instance_id = s.instance_id
         WHERE s.project = $2 AND {since} >= $1
         GROUP BY s.instance_id, b
         ORDER BY s.instance_id, b"
    )
}

impl Store {
    /// The instances of `project` seen since `since_ms`, most recently seen first (at most
    /// [`MAX_INSTANCES`]).
    pub async fn instances(
        &self,
        project: &str,
        since_ms: i64,
    ) -> Result<Vec<InstanceRow>, StoreError> {
        let rows: Vec<(String, String, String, i64, i64, String)> =
            each!(&self.pool, |p| sqlx::query_as(
                "SELECT instance_id, release, user_agent, first_seen_ms, last_seen_ms, last
                 FROM instances WHERE project = $1 AND last_seen_ms >= $2
                 ORDER BY last_seen_ms DESC LIMIT $3",
            )
            .bind(project)
            .bind(since_ms)
            .bind(i64::from(MAX_INSTANCES))
            .fetch_all(p)
            .await)?;
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

    /// Every instance's samples since `since_ms`, reduced in SQL to [`BUCKETS`] time buckets
    /// per instance over its own span (the same rule as [`crate::fleet::verdict::Buckets`]):
    /// per bucket the first time, the count and each series' minimum. A million samples come
    /// back as at most 48 rows per instance, ordered by instance and bucket.
    pub async fn each_health_bucket(
        &self,
        project: &str,
        since_ms: i64,
        mut each: impl FnMut(&str, &Bucket),
    ) -> Result<(), StoreError> {
        // Instances seen over more than 6 hours of the window are read from the 15-minute
        // rollups (their buckets are made of slots: a bucket keeps the minimum either way);
        // the others from their samples.
        for rollups in [false, true] {
            let sql = bucket_query(self.engine(), rollups);
            each!(&self.pool, |p| {
                let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(since_ms)
                    .bind(project)
                    .bind(i64::from(MAX_INSTANCES))
                    .bind(BUCKETS as i64)
                    .bind(ROLLUP_ABOVE_MS)
                    .fetch(p);
                while let Some(r) = rows.try_next().await? {
                    let id: String = r.try_get(0)?;
                    let mut resources = [None; 10];
                    for (i, slot) in resources.iter_mut().enumerate() {
                        *slot = r.try_get(6 + i)?;
                    }
                    let bucket = Bucket {
                        index: usize::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0),
                        time_ms: r.try_get(2)?,
                        samples: u64::try_from(r.try_get::<i64, _>(3)?).unwrap_or(0),
                        heap: r.try_get(4)?,
                        wasm: r.try_get(5)?,
                        resources,
                        total: r.try_get(16)?,
                    };
                    each(&id, &bucket);
                }
                Ok::<_, sqlx::Error>(())
            })?;
        }
        Ok(())
    }

    /// Deletes samples older than `before_ms` and instances not seen since; returns how many
    /// samples went.
    pub async fn prune_health(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(each!(&self.pool, |p| {
            let gone = sqlx::query("DELETE FROM health_samples WHERE time_ms < $1")
                .bind(before_ms)
                .execute(p)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM health_rollups WHERE slot_ms < $1")
                .bind(before_ms - SLOT_MS)
                .execute(p)
                .await?;
            sqlx::query("DELETE FROM instances WHERE last_seen_ms < $1")
                .bind(before_ms)
                .execute(p)
                .await?;
            Ok::<_, sqlx::Error>(gone)
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{Accumulator, HealthBatch};

    crate::store::testdb::on_both_engines! {
    /// The SQL buckets equal the pure rule's: the same fleet rows whichever reduces the samples.
    async fn sql_buckets_match_the_pure_buckets(store: Store) {
        let now = now_ms();
        let mut x: u64 = 7;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 40) as f64
        };
        let mut all = Vec::new();
        for (inst, n, step) in [("a", 200usize, 997i64), ("b", 30, 13), ("c", 1, 1)] {
            let samples: Vec<Sample> = (0..n)
                .map(|i| {
                    let mut s = Sample {
                        time_ms: now - 250_000 + i as i64 * step,
                        heap: Some(1e6 + next()),
                        wasm: Some(65_536.0 * (1.0 + (i / 50) as f64)),
                        uptime: Some(i as f64),
                        ..Sample::default()
                    };
                    s.resources[0] = Some((next() as u64 % 9) as f64);
                    s.resources[3] = Some(2.0);
                    s
                })
                .collect();
            let batch = HealthBatch {
                instance_id: inst.into(),
                release: "r".into(),
                user_agent: "ua".into(),
                samples: samples.clone(),
            };
            let mut tx = store.pool.begin().await.unwrap();
            insert(&mut tx, "1", &batch).await.unwrap();
            tx.commit().await.unwrap();
            all.push((inst, samples));
        }
        let since = now - 3_600_000;
        let rows = store.instances("1", since).await.unwrap();
        for (inst, samples) in &all {
            let row = rows.iter().find(|r| r.instance_id == *inst).unwrap();
            let mut pure = Accumulator::new(row.first_seen_ms.max(since), row.last_seen_ms);
            for s in samples {
                pure.push(s);
            }
            let mut sql = Accumulator::new(row.first_seen_ms.max(since), row.last_seen_ms);
            store
                .each_health_bucket("1", since, |id, b| {
                    if id == *inst {
                        sql.push_bucket(b);
                    }
                })
                .await
                .unwrap();
            assert_eq!(sql.finish(row), pure.finish(row), "instance {inst}");
        }
    }

    /// A day of samples a minute apart is read through the rollups and judged as the samples
    /// would be: the leaking instance leaks, the steady one does not.
    async fn a_day_is_judged_from_the_rollups(store: Store) {
        let start = now_ms() - 86_400_000;
        for (inst, climb) in [("leaky", 2.0), ("steady", 0.0)] {
            let mut tx = store.pool.begin().await.unwrap();
            for i in 0..1440i64 {
                let t = start + i * 60_000;
                let mut s = Sample {
                    time_ms: t,
                    heap: Some(30e6 + (i % 5) as f64 * 1e6),
                    wasm: Some(1_179_648.0),
                    ..Sample::default()
                };
                s.resources[0] = Some(10.0 + climb * i as f64 + (i % 3) as f64);
                let batch = HealthBatch {
                    instance_id: inst.into(),
                    samples: vec![s],
                    ..HealthBatch::default()
                };
                insert_at(&mut tx, "1", &batch, t).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
        let slots = store
            .query_i64("SELECT COUNT(*) FROM health_rollups")
            .await
            .unwrap();
        // 96 slots a day each, one more when the day does not start on a slot boundary.
        assert!((2 * 96..=2 * 97).contains(&slots), "{slots} slots");
        let rows = crate::fleet::fleet(&store, "1", 2 * 86_400).await.unwrap();
        let leaky = rows.iter().find(|r| r.instance_id == "leaky").unwrap();
        let steady = rows.iter().find(|r| r.instance_id == "steady").unwrap();
        assert_eq!(leaky.samples, 1440);
        assert!(leaky.leaking, "{:?}", leaky.reasons);
        assert!(
            leaky.reasons[0].starts_with("listeners +1"),
            "{:?}",
            leaky.reasons
        );
        assert!(!steady.leaking, "{:?}", steady.reasons);
        assert!(leaky.trend.time.len() > 40);
    }
    }
}
