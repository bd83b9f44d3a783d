//! The store's tests. Those in `on_both_engines!` run once per engine (`name::sqlite`,
//! `name::postgres`), each on a fresh database.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::fleet::{HealthBatch, Sample};
use crate::ingest::otlp::Row;
use crate::ingest::writer::Writer;
use testdb::on_both_engines;

fn item(name: &str, quantity: u32) -> OrderItem {
    OrderItem {
        name: name.into(),
        quantity,
    }
}

fn ev(id: &str, fp: &str) -> Summary {
    Summary {
        event_id: id.into(),
        level: "error".into(),
        title: format!("TypeError {id}"),
        fingerprint: fp.into(),
    }
}

on_both_engines! {
    async fn store_migrates_and_answers(store: Store) {
        store.ping().await.unwrap();
        store.record_start("1.0.0").await.unwrap();
        store.record_start("1.0.1").await.unwrap();
        let starts = store.recent_starts(10).await.unwrap();
        assert_eq!(starts.len(), 2);
        assert_eq!(starts[0].version, "1.0.1");
        assert!(starts[0].started_at.ends_with('Z'));
        assert_eq!(starts[0].started_at.len(), "2026-12-01T10:00:00.000Z".len());
    }

    async fn orders_round_trip_newest_first(store: Store) {
        let (a, _) = store.insert_order(&[item("tea", 2)], 10).await.unwrap();
        let (b, _) = store
            .insert_order(&[item("cake", 2), item("jam", 2)], 10)
            .await
            .unwrap();
        assert!(b.id > a.id);
        let recent = store.recent_orders(10).await.unwrap();
        assert_eq!(recent, [b, a]);
        assert_eq!(store.recent_orders(1).await.unwrap().len(), 1);
    }

    async fn only_the_newest_orders_are_kept(store: Store) {
        let mut pruned = 0;
        let mut ids = Vec::new();
        for _ in 0..12 {
            let (order, gone) = store.insert_order(&[item("tea", 1)], 5).await.unwrap();
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

    async fn events_are_stored_once_and_grouped(store: Store) {
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
}

#[tokio::test]
async fn file_store_creates_its_folder_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/vigil.db", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.engine(), Engine::Sqlite);
    store.record_start("x").await.unwrap();
    store.close().await;
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.recent_starts(1).await.unwrap()[0].version, "x");
}

#[tokio::test]
async fn an_unknown_scheme_is_refused_without_its_password() {
    let err = Store::connect("mysql://root:Hunter2@db/vigil")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unsupported(_)), "{err}");
    assert!(!err.to_string().contains("Hunter2"), "{err}");
}

fn point(name: &str, value: f64, ms: i64) -> Row {
    Row {
        name: Arc::from(name),
        unit: Arc::from("ms"),
        value,
        time_unix_nano: u64::try_from(ms).unwrap() * 1_000_000,
        attributes: BTreeMap::from([("page".to_owned(), "/".to_owned())]),
    }
}

fn health(instance: &str, times: &[i64]) -> HealthBatch {
    HealthBatch {
        instance_id: instance.into(),
        release: "r".into(),
        user_agent: "ua".into(),
        samples: times
            .iter()
            .map(|&t| Sample {
                time_ms: t,
                heap: Some(1e6),
                ..Sample::default()
            })
            .collect(),
    }
}

on_both_engines! {
    /// Idempotency under concurrency: the same event id from 50 tasks at once is stored once
    /// and counted once (PostgreSQL runs them on several connections at once).
    async fn the_same_event_from_fifty_tasks_is_stored_and_counted_once(store: Store) {
        let id = "c".repeat(32);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let store = store.clone();
                let id = id.clone();
                tokio::spawn(async move { store.insert_event("1", &ev(&id, "f"), "{}").await })
            })
            .collect();
        let mut new = 0;
        for t in tasks {
            new += usize::from(t.await.unwrap().unwrap());
        }
        assert_eq!(new, 1, "one task stored it");
        let page = store.issues("1", 10, None).await.unwrap();
        assert_eq!(page.rows.len(), 1);
        assert_eq!(page.rows[0].summary.count, 1);
        assert_eq!(page.rows[0].hourly.iter().sum::<u64>(), 1);
        assert_eq!(store.query_i64("SELECT COUNT(*) FROM events").await.unwrap(), 1);
    }

    /// The group-commit writer: the same id from 50 tasks at once is new for one of them and
    /// counted once; 200 distinct events in the same batches are counted 200 times.
    async fn the_writer_stores_a_duplicate_once_and_counts_exactly(store: Store) {
        let writer = Writer::start(store.clone(), Default::default());
        let id = "d".repeat(32);
        let same: Vec<_> = (0..50)
            .map(|_| {
                let writer = writer.clone();
                let id = id.clone();
                tokio::spawn(async move { writer.insert("1", ev(&id, "once"), "{}".into()).await })
            })
            .collect();
        let many: Vec<_> = (0..200)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    writer.insert("1", ev(&format!("{i:032x}"), "many"), "{}".into()).await
                })
            })
            .collect();
        let mut new = 0;
        for t in same {
            new += usize::from(t.await.unwrap().unwrap());
        }
        assert_eq!(new, 1, "one answer says new, 49 say duplicate");
        for t in many {
            assert!(t.await.unwrap().unwrap());
        }
        let count = |fp: &str| {
            let store = store.clone();
            let fp = fp.to_owned();
            async move { store.issue("1", &fp, 1).await.unwrap().unwrap().summary.count }
        };
        assert_eq!(count("once").await, 1);
        assert_eq!(count("many").await, 200);
        assert_eq!(store.query_i64("SELECT COUNT(*) FROM events").await.unwrap(), 201);
    }

    /// A batch answers in its own order though it is written issue by issue: the first of two
    /// equal ids is the new one, whatever issues come between.
    async fn a_batch_answers_each_event_in_order(store: Store) {
        let (a, b, c) = ("a".repeat(32), "b".repeat(32), "c".repeat(32));
        let (ea, eb, ec) = (ev(&a, "zz"), ev(&b, "aa"), ev(&c, "zz"));
        let answers = store
            .insert_events(&[("1", &ea, "{}"), ("1", &eb, "{}"), ("1", &ea, "{}"), ("2", &ec, "{}")])
            .await
            .unwrap();
        assert_eq!(answers, [true, true, false, true]);
        let again = store.insert_events(&[("1", &eb, "{}"), ("1", &ec, "{}")]).await.unwrap();
        assert_eq!(again, [false, true]);
        assert_eq!(store.issue("1", "zz", 1).await.unwrap().unwrap().summary.count, 2);
    }

    /// Within a batch an issue counts only its new events (not a repeat, not an id stored
    /// before) and takes the title, level and id of the last of them in arrival order; its
    /// hour counts the same. (PostgreSQL does this in one statement, SQLite in three.)
    async fn an_issue_counts_its_new_events_and_keeps_the_last_to_arrive(store: Store) {
        let ids: Vec<String> = ["3", "1", "2", "0"].iter().map(|c| c.repeat(32)).collect();
        let old = ev(&ids[3], "f");
        assert!(store.insert_event("1", &old, "{}").await.unwrap());
        let mut events: Vec<Summary> = ids[..3].iter().map(|id| ev(id, "f")).collect();
        events[1].level = "warning".into();
        events.push(Summary { title: "stored before".into(), ..old.clone() });
        let rows: Vec<_> = events.iter().map(|e| ("1", e, "{}")).collect();
        let mut batch = rows.clone();
        batch.insert(2, rows[1]); // a repeat within the batch
        let answers = store.insert_events(&batch).await.unwrap();
        assert_eq!(answers, [true, true, false, true, false]);
        let issue = store.issue("1", "f", 1).await.unwrap().unwrap();
        // Arrival order (3, 1, 2), not key order (1, 2, 3): the last is "2", at error level.
        let last = &events[2];
        assert_eq!(issue.summary.count, 4);
        assert_eq!(issue.summary.title, last.title);
        assert_eq!(issue.summary.last_event_id, last.event_id);
        assert_eq!(issue.summary.level, "error");
        assert_eq!(issue.events_per_hour.iter().map(|h| h.count).sum::<u64>(), 4);
    }

    /// Events and an export in one batch: each answered, both stored, and the export's retry
    /// with its id is stored once, like a repeated event.
    async fn a_batch_of_events_and_an_export_stores_both(store: Store) {
        let (a, b) = ("a".repeat(32), "b".repeat(32));
        let (ea, eb) = (ev(&a, "f"), ev(&b, "f"));
        let points = [point("lcp", 1.0, now_ms())];
        let export = ExportRows {
            project: "1",
            export_id: Some("e1"),
            rows: &points,
            health: None,
        };
        let (events, exports) = store
            .insert_batch(&[("1", &ea, "{}"), ("1", &eb, "{}")], &[export])
            .await
            .unwrap();
        assert_eq!((events, exports), (vec![true, true], vec![1]));
        let (events, exports) = store.insert_batch(&[("1", &ea, "{}")], &[export]).await.unwrap();
        assert_eq!((events, exports), (vec![false], vec![0]));
        assert_eq!(store.issue("1", "f", 1).await.unwrap().unwrap().summary.count, 2);
        assert_eq!(store.query_i64("SELECT COUNT(*) FROM metric_points").await.unwrap(), 1);
    }

    /// Retention: events, issues, their hours and metric points older than the bound go,
    /// newer ones stay, and the counts say how many went.
    async fn telemetry_past_the_retention_is_pruned(store: Store) {
        for (i, fp) in ["old", "old", "new"].iter().enumerate() {
            store.insert_event("1", &ev(&format!("{i:032x}"), fp), "{}").await.unwrap();
        }
        let now = now_ms();
        let points = [point("lcp", 1.0, now - 86_400_000), point("lcp", 2.0, now)];
        store.insert_points("1", None, &points, None).await.unwrap();
        store
            .execute_sql(
                "UPDATE events SET received_at = '2000-01-01T00:00:00.000Z' WHERE fingerprint = 'old'",
            )
            .await
            .unwrap();
        store
            .execute_sql("UPDATE issues SET last_seen = '2000-01-01T00:00:00.000Z' WHERE fingerprint = 'old'")
            .await
            .unwrap();
        store
            .execute_sql("UPDATE issue_hours SET hour = '2000-01-01T00' WHERE fingerprint = 'old'")
            .await
            .unwrap();
        let before = crate::fleet::rfc3339(now - 3_600_000);
        assert_eq!(store.prune_telemetry(&before).await.unwrap(), (2, 1));
        assert_eq!(store.prune_telemetry(&before).await.unwrap(), (0, 0), "nothing twice");
        let issues = store.issues("1", 10, None).await.unwrap().rows;
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].summary.fingerprint, "new");
        assert_eq!(store.query_i64("SELECT COUNT(*) FROM issue_hours").await.unwrap(), 1);
        assert_eq!(store.metric_values("1", "lcp", 7 * 86_400).await.unwrap(), [2.0]);
    }

    /// Health retention: samples and instances older than the bound go, with their rollups
    /// a slot later.
    async fn health_past_the_retention_is_pruned(store: Store) {
        let now = now_ms();
        let old = now - 10 * 86_400_000;
        let mut tx = store.pool.begin().await.unwrap();
        health::insert_at(&mut tx, "1", &health("gone", &[old, old + 60_000]), old + 60_000)
            .await
            .unwrap();
        health::insert_at(&mut tx, "1", &health("kept", &[old]), old).await.unwrap();
        health::insert_at(&mut tx, "1", &health("kept", &[now]), now).await.unwrap();
        tx.commit().await.unwrap();
        let gone = store.prune_health(now - 7 * 86_400_000).await.unwrap();
        assert_eq!(gone, 3, "both of `gone`'s samples and `kept`'s old one");
        let ids: Vec<String> = store
            .instances("1", 0)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.instance_id)
            .collect();
        assert_eq!(ids, ["kept"]);
        assert_eq!(store.query_i64("SELECT COUNT(*) FROM health_samples").await.unwrap(), 1);
        assert_eq!(store.query_i64("SELECT COUNT(*) FROM health_rollups").await.unwrap(), 1);
    }

    /// An instance keeps its first sighting and its latest sample, whatever order batches
    /// arrive in; a sample stored twice is stored (and rolled up) once.
    async fn instances_keep_first_and_latest(store: Store) {
        let now = now_ms();
        for times in [&[now - 60_000][..], &[now - 120_000], &[now - 60_000]] {
            store.insert_points("1", None, &[], Some(&health("k", times))).await.unwrap();
        }
        let row = store.instances("1", 0).await.unwrap().remove(0);
        assert_eq!(row.first_seen_ms, now - 120_000);
        assert_eq!(row.last_seen_ms, now - 60_000);
        assert_eq!(store.query_i64("SELECT COUNT(*) FROM health_samples").await.unwrap(), 2);
        let rolled = store
            .query_i64("SELECT CAST(SUM(samples) AS BIGINT) FROM health_rollups")
            .await
            .unwrap();
        assert_eq!(rolled, 2);
    }

    /// OTLP points: an export id is stored once (a retry stores nothing), a window reads what
    /// is in it, the series is oldest first, and keyset pages walk every point once, newest
    /// first, ties on time broken by id.
    async fn metric_points_store_once_and_page_by_keyset(store: Store) {
        let now = now_ms();
        let mut rows: Vec<Row> = (0..25)
            .map(|i| point("inp", f64::from(i), now - 1_000 * i64::from(i / 2)))
            .collect();
        rows.push(point("inp", 99.0, now - 7_200_000));
        assert_eq!(store.insert_points("1", Some("exp-1"), &rows, None).await.unwrap(), 26);
        assert_eq!(store.insert_points("1", Some("exp-1"), &rows, None).await.unwrap(), 0);
        assert_eq!(store.insert_points("2", Some("exp-1"), &rows[..1], None).await.unwrap(), 1);
        let unknown_time = Row { time_unix_nano: 0, ..point("fcp", 5.0, 0) };
        store.insert_points("1", None, &[unknown_time], None).await.unwrap();
        let fcp = store.metric_series("1", "fcp", 60).await.unwrap();
        assert_eq!(fcp.len(), 1, "time 0 is stored as now");
        assert_eq!(fcp[0].0.len(), "2026-12-01T10:00:00.000Z".len());
        let mut values = store.metric_values("1", "inp", 3_600).await.unwrap();
        values.sort_by(f64::total_cmp);
        assert_eq!(values.len(), 25, "the point two hours old is outside the window");
        let series = store.metric_series("1", "inp", 3 * 3_600).await.unwrap();
        assert_eq!(series.len(), 26);
        assert!(series.windows(2).all(|w| w[0].0 <= w[1].0), "oldest first");
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = store.metric_points("1", "inp", 3_600, 4, cursor).await.unwrap();
            assert!(page.len() <= 4);
            seen.extend(page.iter().map(|p| (p.time.clone(), p.value)));
            assert_eq!(page[0].attributes.get("page").map(String::as_str), Some("/"));
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25, "every point once");
        assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
        let mut got: Vec<f64> = seen.iter().map(|s| s.1).collect();
        got.sort_by(f64::total_cmp);
        assert_eq!(got, values);
    }

    /// An export bigger than one INSERT's worth of points is stored whole, each point once.
    async fn points_over_several_inserts_are_stored_whole(store: Store) {
        let now = now_ms();
        let n = POINTS_PER_INSERT * 2 + 500;
        let rows: Vec<Row> = (0..n)
            .map(|i| point("cls", i as f64, now - i as i64))
            .collect();
        assert_eq!(store.insert_points("1", Some("big"), &rows, None).await.unwrap(), n);
        let stored = store
            .query_i64("SELECT COUNT(DISTINCT value) FROM metric_points WHERE name = 'cls'")
            .await
            .unwrap();
        assert_eq!(stored, n as i64);
    }
}

/// A store failure is a 500 at the HTTP boundary, or a 503 when the database is unreachable or
/// out of connections; neither shows the cause to the caller.
#[test]
fn store_errors_become_500_or_503() {
    use crate::error::AppError;
    use axum::http::StatusCode;
    let unavailable = AppError::from(StoreError::Database(sqlx::Error::PoolTimedOut));
    assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unavailable.to_string(), "the database is unavailable");
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        AppError::from(StoreError::Database(sqlx::Error::Io(refused))).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let failed = AppError::from(StoreError::Database(sqlx::Error::RowNotFound));
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed.to_string(), "storage error");
}
