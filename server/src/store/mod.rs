//! All SQL lives here. Handlers call these methods and never see a query, so a PostgreSQL backend
//! can be added behind the same methods without touching them.
//!
//! Migrations are in `server/migrations/` and run on [`Store::connect`].

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use vigil_protocol::orders::{Order, OrderItem};

use crate::ingest::event::Summary;

use crate::error::AppError;

pub mod health;
mod issues;
mod sessions;

pub use health::now_ms;
pub use issues::{decode_pair, encode_pair, IssueCursor, IssueDetail, IssuePage, IssueRow};

/// The database, with the migrations applied.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
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

impl Store {
    /// Opens (creating when missing) the database at `url` and applies the migrations.
    ///
    /// `sqlite://path/to/file.db` creates the parent folder; `sqlite::memory:` keeps one
    /// connection so that every query sees the same database.
    pub async fn connect(url: &str) -> Result<Self, AppError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:");
        if !in_memory {
            if let Some(dir) = Path::new(options.get_filename()).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| AppError::Storage(sqlx::Error::Io(e)))?;
                }
            }
        }
        // One connection: SQLite serializes writers anyway, and a pool of writers waits in
        // SQLite's sleep-based busy handler, which measured worse at p99 and max (ingest bench).
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The connection pool (benchmarks seed it directly).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Succeeds when the database answers.
    pub async fn ping(&self) -> Result<(), AppError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Records that `version` started now.
    pub async fn record_start(&self, version: &str) -> Result<(), AppError> {
        sqlx::query("INSERT INTO server_starts (version) VALUES (?)")
            .bind(version)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The latest starts, newest first, at most `limit`.
    pub async fn recent_starts(&self, limit: u32) -> Result<Vec<ServerStart>, AppError> {
        Ok(sqlx::query_as::<_, ServerStart>(
            "SELECT version, started_at FROM server_starts ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Stores an order and deletes every order but the newest `keep` (at least the new one), in
    /// one transaction. Returns the order with its id and time, and how many were deleted.
    pub async fn insert_order(
        &self,
        items: &[OrderItem],
        keep: u32,
    ) -> Result<(Order, u64), AppError> {
        let json = serde_json::to_string(items).map_err(|e| AppError::BadRequest(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        let (id, created_at): (i64, String) =
            sqlx::query_as("INSERT INTO orders (items) VALUES (?) RETURNING id, created_at")
                .bind(json)
                .fetch_one(&mut *tx)
                .await?;
        // Ids only grow (AUTOINCREMENT), so "newest" is "highest id": find the first id past
        // the newest `keep` on the primary key, then one range delete.
        let pruned = sqlx::query(
            "DELETE FROM orders WHERE id <= \
             (SELECT id FROM orders ORDER BY id DESC LIMIT 1 OFFSET ?)",
        )
        .bind(i64::from(keep.max(1)))
        .execute(&mut *tx)
        .await?
        .rows_affected();
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
    pub async fn recent_orders(&self, limit: u32) -> Result<Vec<Order>, AppError> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, items, created_at FROM orders ORDER BY id DESC LIMIT ?")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
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

    /// Stores an event and counts it into its issue, in one transaction. Returns false (and
    /// changes nothing) when the project already has an event with this id.
    pub async fn insert_event(
        &self,
        project: &str,
        event: &Summary,
        payload: &str,
    ) -> Result<bool, AppError> {
        let mut tx = self.pool.begin().await?;
        let inserted = insert_event_in(&mut tx, project, event, payload).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Stores events in one transaction (a group commit) and says, for each, whether it was new
    /// (false: its id was stored already, maybe earlier in the same batch).
    pub async fn insert_events(
        &self,
        events: &[(&str, &Summary, &str)],
    ) -> Result<Vec<bool>, AppError> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = Vec::with_capacity(events.len());
        for (project, event, payload) in events {
            inserted.push(insert_event_in(&mut tx, project, event, payload).await?);
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// The stored JSON of one event.
    pub async fn event(&self, project: &str, event_id: &str) -> Result<Option<String>, AppError> {
        Ok(
            sqlx::query_scalar("SELECT payload FROM events WHERE project = ? AND event_id = ?")
                .bind(project)
                .bind(event_id)
                .fetch_optional(&self.pool)
                .await?,
        )
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
    ) -> Result<usize, AppError> {
        let mut tx = self.pool.begin().await?;
        let stored = insert_points_in(&mut tx, project, export_id, rows, health).await?;
        if stored.is_none() {
            return Ok(0); // stored already; the transaction rolls back on drop
        }
        tx.commit().await?;
        Ok(stored.unwrap_or(0))
    }

    /// Stores events and OTLP exports in one transaction (the group commit): says for each
    /// event whether it was new (false: its id was stored already, maybe earlier in the same
    /// batch) and for each export how many points it stored (0: its export id was stored
    /// already). A failure stores none of them.
    pub async fn insert_batch(
        &self,
        events: &[(&str, &Summary, &str)],
        exports: &[ExportRows<'_>],
    ) -> Result<(Vec<bool>, Vec<usize>), AppError> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = Vec::with_capacity(events.len());
        for (project, event, payload) in events {
            inserted.push(insert_event_in(&mut tx, project, event, payload).await?);
        }
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
    ) -> Result<Vec<f64>, AppError> {
        Ok(sqlx::query_scalar(
            "SELECT value FROM metric_points
             WHERE project = ? AND name = ?
               AND time >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', ?))
             LIMIT 100000",
        )
        .bind(project)
        .bind(name)
        .bind(i64::try_from(window_secs).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Times and values of metric `name` from the last `window_secs` seconds, oldest first (at
    /// most 100,000).
    pub async fn metric_series(
        &self,
        project: &str,
        name: &str,
        window_secs: u64,
    ) -> Result<Vec<(String, f64)>, AppError> {
        Ok(sqlx::query_as(
            "SELECT time, value FROM metric_points
             WHERE project = ? AND name = ?
               AND time >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', ?))
             ORDER BY time LIMIT 100000",
        )
        .bind(project)
        .bind(name)
        .bind(i64::try_from(window_secs).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?)
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
    ) -> Result<(Vec<vigil_protocol::MetricPoint>, Option<(String, i64)>), AppError> {
        let (after_time, after_id) = cursor.unwrap_or_else(|| ("9999".into(), i64::MAX));
        let mut rows: Vec<(i64, String, f64, String)> = sqlx::query_as(
            "SELECT id, time, value, attributes FROM metric_points
             WHERE project = ? AND name = ?
               AND time >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', ?))
               AND (time < ? OR (time = ? AND id < ?))
             ORDER BY time DESC, id DESC LIMIT ?",
        )
        .bind(project)
        .bind(name)
        .bind(i64::try_from(window_secs).unwrap_or(i64::MAX))
        .bind(&after_time)
        .bind(&after_time)
        .bind(after_id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
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
    pub async fn prune_telemetry(&self, before: &str) -> Result<(u64, u64), AppError> {
        let mut tx = self.pool.begin().await?;
        let events = sqlx::query("DELETE FROM events WHERE received_at < ?")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM issues WHERE last_seen < ?")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM issue_hours WHERE hour < ?")
            .bind(before.get(..13).unwrap_or(before))
            .execute(&mut *tx)
            .await?;
        let points = sqlx::query("DELETE FROM metric_points WHERE time < ?")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok((events, points))
    }

    /// Waits for in-flight writes and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One OTLP export's points and health samples, inside the caller's transaction: how many were
/// stored, or `None` (nothing stored) when its export id was stored already.
async fn insert_points_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    project: &str,
    export_id: Option<&str>,
    rows: &[crate::ingest::otlp::Row],
    health: Option<&crate::fleet::HealthBatch>,
) -> Result<Option<usize>, AppError> {
    if let Some(id) = export_id {
        sqlx::query(
            "DELETE FROM metric_exports
                 WHERE received < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days')",
        )
        .execute(&mut **tx)
        .await?;
        let new = sqlx::query(
            "INSERT INTO metric_exports (project, export_id, received)
                 VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                 ON CONFLICT (project, export_id) DO NOTHING",
        )
        .bind(project)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if new == 0 {
            return Ok(None); // stored already
        }
    }
    for r in rows {
        let attributes = serde_json::to_string(&r.attributes)
            .map_err(|e| AppError::BadRequest(e.to_string()))?;
        // SQLite turns the nanoseconds into RFC 3339; 0 (unknown) means now.
        sqlx::query(
            "INSERT INTO metric_points (project, name, unit, value, time, attributes)
                 VALUES (?, ?, ?, ?,
                   CASE WHEN ? = 0 THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                        ELSE strftime('%Y-%m-%dT%H:%M:%fZ', ? / 1000000000.0, 'unixepoch') END,
                   ?)",
        )
        .bind(project)
        .bind(&*r.name)
        .bind(&*r.unit)
        .bind(r.value)
        .bind(i64::try_from(r.time_unix_nano).unwrap_or(0))
        .bind(i64::try_from(r.time_unix_nano).unwrap_or(0))
        .bind(attributes)
        .execute(&mut **tx)
        .await?;
    }
    let mut stored = rows.len();
    if let Some(batch) = health {
        stored += health::insert(tx, project, batch).await?;
    }
    Ok(Some(stored))
}

/// One event and its issue counts, inside the caller's transaction.
async fn insert_event_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    project: &str,
    event: &Summary,
    payload: &str,
) -> Result<bool, AppError> {
    let inserted = sqlx::query(
        "INSERT OR IGNORE INTO events (project, event_id, fingerprint, level, title, payload)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(project)
    .bind(&event.event_id)
    .bind(&event.fingerprint)
    .bind(&event.level)
    .bind(&event.title)
    .bind(payload)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        sqlx::query(
            "INSERT INTO issues (project, fingerprint, title, level, count, first_seen, last_seen, last_event_id)
             SELECT project, fingerprint, title, level, 1, received_at, received_at, event_id
             FROM events WHERE project = ? AND event_id = ?
             ON CONFLICT (project, fingerprint) DO UPDATE SET
               count = count + 1,
               title = excluded.title,
               level = excluded.level,
               last_seen = excluded.last_seen,
               last_event_id = excluded.last_event_id",
        )
        .bind(project)
        .bind(&event.event_id)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO issue_hours (project, fingerprint, hour, count)
             SELECT project, fingerprint, substr(received_at, 1, 13), 1
             FROM events WHERE project = ? AND event_id = ?
             ON CONFLICT (project, fingerprint, hour) DO UPDATE SET count = count + 1",
        )
        .bind(project)
        .bind(&event.event_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_migrates_and_answers() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.ping().await.unwrap();
        store.record_start("1.0.0").await.unwrap();
        store.record_start("1.0.1").await.unwrap();
        let starts = store.recent_starts(10).await.unwrap();
        assert_eq!(starts.len(), 2);
        assert_eq!(starts[0].version, "1.0.1");
        assert!(starts[0].started_at.ends_with('Z'));
    }

    #[tokio::test]
    async fn orders_round_trip_newest_first() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let item = |n: &str| OrderItem {
            name: n.into(),
            quantity: 2,
        };
        let (a, _) = store.insert_order(&[item("tea")], 10).await.unwrap();
        let (b, _) = store
            .insert_order(&[item("cake"), item("jam")], 10)
            .await
            .unwrap();
        assert!(b.id > a.id);
        let recent = store.recent_orders(10).await.unwrap();
        assert_eq!(recent, [b, a]);
        assert_eq!(store.recent_orders(1).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn only_the_newest_orders_are_kept() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let item = [OrderItem {
            name: "tea".into(),
            quantity: 1,
        }];
        let mut pruned = 0;
        let mut ids = Vec::new();
        for _ in 0..12 {
            let (order, gone) = store.insert_order(&item, 5).await.unwrap();
            ids.push(order.id);
            pruned += gone;
        }
        assert_eq!(pruned, 7);
        let kept: Vec<i64> = store
            .recent_orders(100)
            .await
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect();
        let newest: Vec<i64> = ids.iter().rev().take(5).copied().collect();
        assert_eq!(kept, newest);
    }

    #[tokio::test]
    async fn events_are_stored_once_and_grouped() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let ev = |id: &str, fp: &str| Summary {
            event_id: id.into(),
            level: "error".into(),
            title: format!("TypeError {id}"),
            fingerprint: fp.into(),
        };
        let a = "a".repeat(32);
        let b = "b".repeat(32);
        assert!(store.insert_event("1", &ev(&a, "f1"), "{}").await.unwrap());
        assert!(
            !store.insert_event("1", &ev(&a, "f1"), "{}").await.unwrap(),
            "duplicate"
        );
        assert!(store
            .insert_event("1", &ev(&b, "f1"), "{\"x\":1}")
            .await
            .unwrap());
        assert!(
            store.insert_event("2", &ev(&a, "f1"), "{}").await.unwrap(),
            "per project"
        );
        let issues: Vec<_> = store
            .issues("1", 10, None)
            .await
            .unwrap()
            .rows
            .into_iter()
            .map(|r| r.summary)
            .collect();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].count, 2);
        assert_eq!(issues[0].last_event_id, b);
        assert_eq!(issues[0].title, format!("TypeError {b}"));
        assert_eq!(
            store.event("1", &b).await.unwrap().as_deref(),
            Some("{\"x\":1}")
        );
        assert_eq!(store.event("1", "nope").await.unwrap(), None);
    }

    #[tokio::test]
    async fn file_store_creates_its_folder_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/vigil.db", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        store.record_start("x").await.unwrap();
        store.close().await;
        let again = Store::connect(&url).await.unwrap();
        assert_eq!(again.recent_starts(1).await.unwrap()[0].version, "x");
    }
}
