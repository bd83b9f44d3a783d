//! All SQL lives here. Handlers call these methods and never see a query. Two engines stand
//! behind them, chosen once by [`Store::connect`] from the URL's scheme: SQLite (the default)
//! and PostgreSQL. Each query is written once and compiled for both (`engine.rs`, `each!`);
//! the few per-engine words of SQL are in `engine.rs`, the schemas in
//! `server/migrations/{sqlite,postgres}/`, applied on connect.

use vigil_protocol::orders::{Order, OrderItem};

use crate::ingest::event::Summary;

pub mod cluster;
mod engine;
mod error;
mod events;
pub mod health;
mod issues;
mod sessions;
pub mod testdb;

pub use engine::Engine;
use engine::{each, Pool, Tx};
pub use error::StoreError;
pub use health::now_ms;
pub use issues::{decode_pair, encode_pair, IssueCursor, IssueDetail, IssuePage, IssueRow};

/// The database, with the migrations applied.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

/// One OTLP export for [`Store::insert_batch`].
#[derive(Debug, Clone, Copy)]
pub struct ExportRows<'a> {
    /// The project it was sent for.
    pub project: &'a str,
    /// Its `vigil.export_id` (a retry of a stored export stores nothing).
    pub export_id: Option<&'a str>,
    /// The points that are not health samples.
    pub rows: &'a [crate::ingest::otlp::Row],
    /// Its health samples.
    pub health: Option<&'a crate::fleet::HealthBatch>,
}

/// One row of `server_starts`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ServerStart {
    /// `CARGO_PKG_VERSION` of the server that started.
    pub version: String,
    /// RFC 3339, UTC.
    pub started_at: String,
}

/// Metric points one `INSERT` writes at most: 6 binds each, under SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters per statement.
const POINTS_PER_INSERT: usize = 1_000;

/// A time in the stored text form, RFC 3339 in UTC with milliseconds (what both engines'
/// column defaults write), `ms` after the epoch.
fn stored_time(ms: i64) -> String {
    crate::fleet::rfc3339(ms)
}

impl Store {
    /// Opens the database at `url` and applies the migrations: `sqlite://path/to/file.db`
    /// (created when missing, with its folder), `sqlite::memory:` (one connection, so every
    /// query sees the same database), or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` (the
    /// database must exist; `postgresql://` too).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let engine = Engine::of(url)
            .ok_or_else(|| StoreError::Unsupported(crate::config::redact_url(url)))?;
        Ok(Self {
            pool: engine::open(engine, url).await?,
        })
    }

    /// Which engine stores the data.
    pub fn engine(&self) -> Engine {
        self.pool.engine()
    }

    /// Succeeds when the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        each!(&self.pool, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Records that `version` started now.
    pub async fn record_start(&self, version: &str) -> Result<(), StoreError> {
        each!(&self.pool, |p| sqlx::query(
            "INSERT INTO server_starts (version) VALUES ($1)"
        )
        .bind(version)
        .execute(p)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The latest starts, newest first, at most `limit`.
    pub async fn recent_starts(&self, limit: u32) -> Result<Vec<ServerStart>, StoreError> {
        Ok(each!(&self.pool, |p| sqlx::query_as::<_, ServerStart>(
            "SELECT version, started_at FROM server_starts ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?)
    }

    /// Stores an order and deletes every order but the newest `keep` (at least the new one), in
    /// one transaction. Returns the order with its id and time, and how many were deleted.
    pub async fn insert_order(
        &self,
        items: &[OrderItem],
        keep: u32,
    ) -> Result<(Order, u64), StoreError> {
        let json = serde_json::to_string(items)?;
        let mut tx = self.pool.begin().await?;
        let (id, created_at, pruned) = each!(&mut tx, |t| {
            let (id, created_at): (i64, String) =
                sqlx::query_as("INSERT INTO orders (items) VALUES ($1) RETURNING id, created_at")
                    .bind(json)
                    .fetch_one(&mut **t)
                    .await?;
            // Ids only grow (AUTOINCREMENT, an identity), so "newest" is "highest id": find
            // the first id past the newest `keep` on the primary key, then one range delete.
            let pruned = sqlx::query(
                "DELETE FROM orders WHERE id <= \
                 (SELECT id FROM orders ORDER BY id DESC LIMIT 1 OFFSET $1)",
            )
            .bind(i64::from(keep.max(1)))
            .execute(&mut **t)
            .await?
            .rows_affected();
            Ok::<_, sqlx::Error>((id, created_at, pruned))
        })?;
        tx.commit().await?;
        Ok((
            Order {
                id,
                items: items.to_vec(),
                created_at,
            },
            pruned,
        ))
    }

    /// The newest orders, newest first, at most `limit`.
    pub async fn recent_orders(&self, limit: u32) -> Result<Vec<Order>, StoreError> {
        let rows: Vec<(i64, String, String)> = each!(&self.pool, |p| sqlx::query_as(
            "SELECT id, items, created_at FROM orders ORDER BY id DESC LIMIT $1"
        )
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, items, created_at)| Order {
                id,
                // Written by insert_order from the same type; a row that does not parse is shown
                // without items rather than failing the whole read.
                items: serde_json::from_str(&items).unwrap_or_default(),
                created_at,
            })
            .collect())
    }

    /// Stores an event and counts it into its issue, as a batch of one. Returns false (and
    /// changes nothing) when the project already has an event with this id.
    pub async fn insert_event(
        &self,
        project: &str,
        event: &Summary,
        payload: &str,
    ) -> Result<bool, StoreError> {
        let inserted = self.insert_events(&[(project, event, payload)]).await?;
        Ok(inserted.first().copied().unwrap_or(false))
    }

    /// Stores events as one batch ([`Store::insert_batch`] without exports) and says, for
    /// each, whether it was new (false: its id was stored already, maybe earlier in the same
    /// batch).
    pub async fn insert_events(
        &self,
        events: &[(&str, &Summary, &str)],
    ) -> Result<Vec<bool>, StoreError> {
        Ok(self.insert_batch(events, &[]).await?.0)
    }

    /// The stored JSON of one event.
    pub async fn event(&self, project: &str, event_id: &str) -> Result<Option<String>, StoreError> {
        Ok(each!(&self.pool, |p| sqlx::query_scalar(
            "SELECT payload FROM events WHERE project = $1 AND event_id = $2"
        )
        .bind(project)
        .bind(event_id)
        .fetch_optional(p)
        .await)?)
    }

    /// Stores metric points and an export's health samples in one transaction and returns how
    /// many points. An export whose id is already stored stores nothing (a retry of an export
    /// that arrived: at least once on the wire, once in the database). Export ids are kept for
    /// 7 days.
    pub async fn insert_points(
        &self,
        project: &str,
        export_id: Option<&str>,
        rows: &[crate::ingest::otlp::Row],
        health: Option<&crate::fleet::HealthBatch>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let stored = insert_points_in(&mut tx, project, export_id, rows, health).await?;
        let Some(stored) = stored else {
            return Ok(0); // stored already; the transaction rolls back on drop
        };
        tx.commit().await?;
        Ok(stored)
    }

    /// Stores events and OTLP exports (the group commit): says for each event whether it was
    /// new (false: its id was stored already, maybe earlier in the same batch) and for each
    /// export how many points it stored (0: its export id was stored already). On SQLite one
    /// transaction holds everything and a failure stores none of it; on PostgreSQL the events
    /// are one statement committed before the exports' transaction, so a failed export may
    /// leave the events stored (their retry is a duplicate, stored once). Rows are locked in
    /// key order, so concurrent batches (several connections or instances) cannot deadlock.
    pub async fn insert_batch(
        &self,
        events: &[(&str, &Summary, &str)],
        exports: &[ExportRows<'_>],
    ) -> Result<(Vec<bool>, Vec<usize>), StoreError> {
        // PostgreSQL: the events in one statement committed on its own, then the exports in
        // their transaction. SQLite: both in one transaction.
        let (inserted, mut tx) = match &self.pool {
            engine::Db::Postgres(pool) => {
                let inserted = events::insert_events_postgres(pool, events).await?;
                if exports.is_empty() {
                    return Ok((inserted, Vec::new()));
                }
                (inserted, self.pool.begin().await?)
            }
            engine::Db::Sqlite(_) => {
                let mut tx = self.pool.begin().await?;
                (events::insert_events_in(&mut tx, events).await?, tx)
            }
        };
        let mut stored = Vec::with_capacity(exports.len());
        for e in exports {
            let n = insert_points_in(&mut tx, e.project, e.export_id, e.rows, e.health).await?;
            stored.push(n.unwrap_or(0));
        }
        tx.commit().await?;
        Ok((inserted, stored))
    }

    /// Values of metric `name` from the last `window_secs` seconds (at most 100,000).
    pub async fn metric_values(
        &self,
        project: &str,
        name: &str,
        window_secs: u64,
    ) -> Result<Vec<f64>, StoreError> {
        Ok(each!(&self.pool, |p| sqlx::query_scalar(
            "SELECT value FROM metric_points
             WHERE project = $1 AND name = $2 AND time >= $3
             LIMIT 100000",
        )
        .bind(project)
        .bind(name)
        .bind(window_start(window_secs))
        .fetch_all(p)
        .await)?)
    }

    /// Times and values of metric `name` from the last `window_secs` seconds, oldest first (at
    /// most 100,000).
    pub async fn metric_series(
        &self,
        project: &str,
        name: &str,
        window_secs: u64,
    ) -> Result<Vec<(String, f64)>, StoreError> {
        Ok(each!(&self.pool, |p| sqlx::query_as(
            "SELECT time, value FROM metric_points
             WHERE project = $1 AND name = $2 AND time >= $3
             ORDER BY time LIMIT 100000",
        )
        .bind(project)
        .bind(name)
        .bind(window_start(window_secs))
        .fetch_all(p)
        .await)?)
    }

    /// Points of metric `name` from the last `window_secs` seconds, newest first, at most
    /// `limit`, after `cursor` (the `(time, id)` of the previous page's last point). Returns the
    /// points and the next page's cursor.
    pub async fn metric_points(
        &self,
        project: &str,
        name: &str,
        window_secs: u64,
        limit: u32,
        cursor: Option<(String, i64)>,
    ) -> Result<(Vec<vigil_protocol::MetricPoint>, Option<(String, i64)>), StoreError> {
        let (after_time, after_id) = cursor.unwrap_or_else(|| ("9999".into(), i64::MAX));
        let mut rows: Vec<(i64, String, f64, String)> = each!(&self.pool, |p| sqlx::query_as(
            "SELECT id, time, value, attributes FROM metric_points
             WHERE project = $1 AND name = $2 AND time >= $3
               AND (time < $4 OR (time = $4 AND id < $5))
             ORDER BY time DESC, id DESC LIMIT $6",
        )
        .bind(project)
        .bind(name)
        .bind(window_start(window_secs))
        .bind(&after_time)
        .bind(after_id)
        .bind(i64::from(limit) + 1)
        .fetch_all(p)
        .await)?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| (r.1.clone(), r.0))
        } else {
            None
        };
        Ok((
            rows.into_iter()
                .map(|(_, time, value, attributes)| vigil_protocol::MetricPoint {
                    time,
                    value,
                    attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                })
                .collect(),
            next,
        ))
    }

    /// Deletes events, issues and metric points older than `before` (RFC 3339); returns how many
    /// events and points went. An issue keeps its count of events ever seen while it has any.
    pub async fn prune_telemetry(&self, before: &str) -> Result<(u64, u64), StoreError> {
        let mut tx = self.pool.begin().await?;
        let gone = each!(&mut tx, |t| {
            let events = sqlx::query("DELETE FROM events WHERE received_at < $1")
                .bind(before)
                .execute(&mut **t)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM issues WHERE last_seen < $1")
                .bind(before)
                .execute(&mut **t)
                .await?;
            sqlx::query("DELETE FROM issue_hours WHERE hour < $1")
                .bind(before.get(..13).unwrap_or(before))
                .execute(&mut **t)
                .await?;
            let points = sqlx::query("DELETE FROM metric_points WHERE time < $1")
                .bind(before)
                .execute(&mut **t)
                .await?
                .rows_affected();
            Ok::<_, sqlx::Error>((events, points))
        })?;
        tx.commit().await?;
        Ok(gone)
    }

    /// Runs one statement of raw SQL, written for [`Store::engine`]'s dialect; returns the rows
    /// it changed. For tests and benchmarks that seed or age data; the server never calls it.
    pub async fn execute_sql(&self, sql: &str) -> Result<u64, StoreError> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        Ok(each!(&self.pool, |p| sqlx::raw_sql(sql)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?)
    }

    /// The first column of the first row of `sql` (raw, as [`Store::execute_sql`]), as an
    /// integer: counts for tests.
    pub async fn query_i64(&self, sql: &str) -> Result<i64, StoreError> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        Ok(each!(&self.pool, |p| sqlx::query_scalar(sql)
            .fetch_one(p)
            .await)?)
    }

    /// Waits for in-flight writes and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The stored time `window_secs` seconds ago: the start of a window.
fn window_start(window_secs: u64) -> String {
    let ms = i64::try_from(window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    stored_time(now_ms().saturating_sub(ms))
}

/// One OTLP export's points and health samples, inside the caller's transaction: how many were
/// stored, or `None` (nothing stored) when its export id was stored already. Export ids are kept
/// for 7 days.
async fn insert_points_in(
    tx: &mut Tx,
    project: &str,
    export_id: Option<&str>,
    rows: &[crate::ingest::otlp::Row],
    health: Option<&crate::fleet::HealthBatch>,
) -> Result<Option<usize>, StoreError> {
    let now = now_ms();
    let received = stored_time(now);
    if let Some(id) = export_id {
        let new = each!(tx, |t| {
            sqlx::query("DELETE FROM metric_exports WHERE received < $1")
                .bind(stored_time(now - 7 * 86_400_000))
                .execute(&mut **t)
                .await?;
            sqlx::query(
                "INSERT INTO metric_exports (project, export_id, received)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (project, export_id) DO NOTHING",
            )
            .bind(project)
            .bind(id)
            .bind(&received)
            .execute(&mut **t)
            .await
            .map(|r| r.rows_affected())
        })?;
        if new == 0 {
            return Ok(None); // stored already
        }
    }
    // Multi-row inserts: one statement per chunk instead of one round trip per point.
    for chunk in rows.chunks(POINTS_PER_INSERT) {
        let mut values = Vec::with_capacity(chunk.len());
        for r in chunk {
            // Nanoseconds to the stored RFC 3339 form; 0 (unknown) means now.
            let time = match r.time_unix_nano / 1_000_000 {
                0 => received.clone(),
                ms => stored_time(i64::try_from(ms).unwrap_or(i64::MAX)),
            };
            values.push((r, time, serde_json::to_string(&r.attributes)?));
        }
        each!(tx, |t, DB| {
            let mut q = sqlx::QueryBuilder::<DB>::new(
                "INSERT INTO metric_points (project, name, unit, value, time, attributes) ",
            );
            q.push_values(&values, |mut row, (r, time, attributes)| {
                row.push_bind(project)
                    .push_bind(&*r.name)
                    .push_bind(&*r.unit)
                    .push_bind(r.value)
                    .push_bind(time)
                    .push_bind(attributes);
            });
            q.build().execute(&mut **t).await.map(drop)
        })?;
    }
    let mut stored = rows.len();
    if let Some(batch) = health {
        stored += health::insert(tx, project, batch).await?;
    }
    Ok(Some(stored))
}

#[cfg(test)]
mod tests;
