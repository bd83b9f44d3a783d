//! Writing a batch of events in one round trip whatever its size: the events, then one upsert
//! per issue and per issue-hour counting the batch's new events, in one transaction. The SQL
//! is one script per engine ([`SQLITE_INSERT_EVENTS`], [`POSTGRES_INSERT_EVENTS`] in
//! `engine.rs`); here the rows are shaped for it. Before, a batch cost `BEGIN`, three
//! statements and `COMMIT`, each a round trip (about 0.2 ms each to SQLite's thread under load).
//!
//! [`first_in_batch`] is the pure part: a repeat within one batch is never new.

use std::collections::HashSet;

use super::engine::{POSTGRES_INSERT_EVENTS, SQLITE_INSERT_EVENTS};
use super::{now_ms, stored_time, StoreError};
use crate::ingest::event::Summary;

/// Payload bytes one script carries at most: a batch past it (only when events are large) is
/// written in several, each its own transaction, so that a batch's rows are never copied into
/// one unbounded buffer.
const BYTES_PER_SCRIPT: usize = 4 << 20;

/// One event of a batch: its project, summary and stored JSON.
pub type EventRow<'a> = (&'a str, &'a Summary, &'a str);

/// For each event, whether it is the first in `events` with its `(project, event_id)`: a
/// repeat within one batch is never new, whatever the database holds.
pub fn first_in_batch(events: &[EventRow<'_>]) -> Vec<bool> {
    let mut seen = HashSet::with_capacity(events.len());
    events
        .iter()
        .map(|&(project, summary, _)| seen.insert((project, summary.event_id.as_str())))
        .collect()
}

/// The first of each `(project, event_id)` in `events`, in arrival order, cut into runs of at
/// most [`BYTES_PER_SCRIPT`] payload bytes (a run holds at least one event).
fn runs<'e, 'a>(events: &'e [EventRow<'a>], first: &[bool]) -> Vec<Vec<&'e EventRow<'a>>> {
    let mut runs: Vec<Vec<&EventRow>> = Vec::new();
    let mut bytes = 0;
    for (event, _) in events.iter().zip(first).filter(|(_, first)| **first) {
        match runs.last_mut() {
            Some(run) if bytes + event.2.len() <= BYTES_PER_SCRIPT => run.push(event),
            _ => {
                bytes = 0;
                runs.push(vec![event]);
            }
        }
        bytes += event.2.len();
    }
    runs
}

/// For each event, whether it was new: first in the batch and among the `stored` ids.
fn answers(
    events: &[EventRow<'_>],
    first: Vec<bool>,
    stored: &HashSet<(String, String)>,
) -> Vec<bool> {
    events
        .iter()
        .zip(first)
        .map(|((project, summary, _), first)| {
            first && stored.contains(&((*project).to_owned(), summary.event_id.clone()))
        })
        .collect()
}

/// Stores `events` and counts the new ones into their issues and hours on SQLite, one
/// [`SQLITE_INSERT_EVENTS`] script per run; says for each whether it was new (false: its id
/// was stored already, earlier or in this batch).
pub async fn insert_events_sqlite(
    pool: &sqlx::SqlitePool,
    events: &[EventRow<'_>],
) -> Result<Vec<bool>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let received = stored_time(now_ms());
    let hour = received.get(..13).unwrap_or(&received);
    let first = first_in_batch(events);
    let mut stored = HashSet::with_capacity(events.len());
    let mut conn = pool.acquire().await?;
    for run in runs(events, &first) {
        let rows: Vec<[&str; 6]> = run
            .iter()
            .map(|(project, summary, payload)| {
                [
                    project,
                    summary.event_id.as_str(),
                    summary.fingerprint.as_str(),
                    summary.level.as_str(),
                    summary.title.as_str(),
                    payload,
                ]
            })
            .collect();
        let done = sqlx::query_as::<_, (String, String)>(SQLITE_INSERT_EVENTS)
            .bind(serde_json::to_string(&rows)?)
            .bind(&received)
            .bind(hour)
            .fetch_all(&mut *conn)
            .await;
        match done {
            Ok(rows) => stored.extend(rows),
            Err(e) => {
                // The script stopped part-way, maybe inside its transaction: end that, or
                // let the pool replace the connection.
                if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                    conn.close_on_drop();
                }
                return Err(e.into());
            }
        }
    }
    Ok(answers(events, first, &stored))
}

/// Stores `events` and counts the new ones into their issues and hours on PostgreSQL, one
/// [`POSTGRES_INSERT_EVENTS`] statement per run, each committed on its own; says for each
/// whether it was new, as [`insert_events_sqlite`] does.
pub async fn insert_events_postgres(
    pool: &sqlx::PgPool,
    events: &[EventRow<'_>],
) -> Result<Vec<bool>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let received = stored_time(now_ms());
    let hour = received.get(..13).unwrap_or(&received);
    let first = first_in_batch(events);
    let mut stored = HashSet::with_capacity(events.len());
    for run in runs(events, &first) {
        let mut columns: [Vec<&str>; 6] = std::array::from_fn(|_| Vec::with_capacity(run.len()));
        for (project, summary, payload) in run {
            let row = [
                *project,
                summary.event_id.as_str(),
                summary.fingerprint.as_str(),
                summary.level.as_str(),
                summary.title.as_str(),
                *payload,
            ];
            for (column, value) in columns.iter_mut().zip(row) {
                column.push(value);
            }
        }
        let [projects, ids, fingerprints, levels, titles, payloads] = columns;
        let rows = sqlx::query_as::<_, (String, String)>(POSTGRES_INSERT_EVENTS)
            .bind(projects)
            .bind(ids)
            .bind(fingerprints)
            .bind(levels)
            .bind(titles)
            .bind(payloads)
            .bind(&received)
            .bind(hour)
            .fetch_all(pool)
            .await?;
        stored.extend(rows);
    }
    Ok(answers(events, first, &stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str) -> Summary {
        Summary {
            event_id: id.into(),
            level: "error".into(),
            title: "t".into(),
            fingerprint: "f".into(),
        }
    }

    #[test]
    fn a_repeat_within_the_batch_is_not_first() {
        let (a, b) = (summary("a"), summary("b"));
        let events = [("1", &a, ""), ("1", &b, ""), ("1", &a, ""), ("2", &a, "")];
        assert_eq!(first_in_batch(&events), [true, true, false, true]);
    }

    #[test]
    fn runs_hold_the_first_of_each_id_and_a_bounded_payload() {
        let (a, b, c) = (summary("a"), summary("b"), summary("c"));
        let big = "x".repeat(BYTES_PER_SCRIPT - 2);
        let events = [
            ("1", &a, "small"),
            ("1", &a, "repeat"),
            ("1", &b, big.as_str()),
            ("1", &c, big.as_str()),
        ];
        let first = first_in_batch(&events);
        let ids: Vec<Vec<&str>> = runs(&events, &first)
            .iter()
            .map(|r| r.iter().map(|e| e.1.event_id.as_str()).collect())
            .collect();
        assert_eq!(ids, [vec!["a"], vec!["b"], vec!["c"]]);
        // Small events share one run.
        let small = [("1", &a, "{}"), ("1", &b, "{}"), ("1", &c, "{}")];
        assert_eq!(runs(&small, &first_in_batch(&small)).len(), 1);
        assert!(super::runs(&[], &[]).is_empty());
    }

    #[test]
    fn an_event_is_new_when_first_and_stored() {
        let (a, b) = (summary("a"), summary("b"));
        let events = [("1", &a, ""), ("1", &a, ""), ("1", &b, "")];
        let stored = HashSet::from([("1".to_owned(), "a".to_owned())]);
        assert_eq!(
            answers(&events, first_in_batch(&events), &stored),
            [true, false, false]
        );
    }
}
