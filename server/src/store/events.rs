//! Writing a batch of events with a handful of statements instead of three per event. SQLite:
//! one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` for the events, then one upsert row
//! per issue and one per issue-hour, each counting how many of the batch's new events it got,
//! in the caller's transaction ([`insert_events_in`]). PostgreSQL: the same three steps as one
//! statement over arrays, one round trip ([`insert_events_postgres`]).
//!
//! [`Tally`] and [`first_in_batch`] are the pure part (which events are first in their batch,
//! what each issue and hour adds up to).

use std::collections::{BTreeMap, HashSet};

use super::engine::{each, Tx, POSTGRES_INSERT_EVENTS};
use super::{now_ms, stored_time, StoreError};
use crate::ingest::event::Summary;

/// Rows per multi-row statement: 7 binds per event row stays far below both engines' limits
/// (SQLite 32,766, PostgreSQL 65,535).
const ROWS_PER_INSERT: usize = 1_000;

/// One event of a batch: its project, summary and stored JSON.
pub type EventRow<'a> = (&'a str, &'a Summary, &'a str);

/// What one issue gets from the new events of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueTally<'a> {
    /// New events.
    pub count: i64,
    /// Title, level and id of the last of them (arrival order).
    pub title: &'a str,
    pub level: &'a str,
    pub last_event_id: &'a str,
}

/// The batch's events reduced to the rows the issue tables need.
#[derive(Debug, Default)]
pub struct Tally<'a> {
    /// `(project, fingerprint)` in sorted order (the order rows are locked in).
    pub issues: BTreeMap<(&'a str, &'a str), IssueTally<'a>>,
}

impl<'a> Tally<'a> {
    /// Tallies the events the database stored (`stored(project, event_id)`), in arrival order.
    pub fn of(events: &[EventRow<'a>], stored: impl Fn(&str, &str) -> bool) -> Self {
        let mut issues: BTreeMap<(&str, &str), IssueTally> = BTreeMap::new();
        for &(project, summary, _) in events {
            if !stored(project, &summary.event_id) {
                continue;
            }
            let key = (project, summary.fingerprint.as_str());
            let tally = issues.entry(key).or_insert(IssueTally {
                count: 0,
                title: "",
                level: "",
                last_event_id: "",
            });
            tally.count += 1;
            tally.title = &summary.title;
            tally.level = &summary.level;
            tally.last_event_id = &summary.event_id;
        }
        Self { issues }
    }
}

/// For each event, whether it is the first in `events` with its `(project, event_id)`: a
/// repeat within one batch is never new, whatever the database holds.
pub fn first_in_batch(events: &[EventRow<'_>]) -> Vec<bool> {
    let mut seen = HashSet::with_capacity(events.len());
    events
        .iter()
        .map(|&(project, summary, _)| seen.insert((project, summary.event_id.as_str())))
        .collect()
}

/// For each event, whether it was new: the first of its `(project, event_id)` in the batch,
/// and among the ids the database says it `stored`.
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

/// Stores `events` and counts the new ones into their issues and hours on PostgreSQL, in one
/// statement committed on its own ([`POSTGRES_INSERT_EVENTS`]); says for each whether it was
/// new, as [`insert_events_in`] does.
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
    let candidates = events.iter().zip(&first).filter(|(_, first)| **first);
    let n = events.len();
    let mut columns: [Vec<&str>; 6] = std::array::from_fn(|_| Vec::with_capacity(n));
    for ((project, summary, payload), _) in candidates {
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
    let stored: HashSet<(String, String)> =
        sqlx::query_as::<_, (String, String)>(POSTGRES_INSERT_EVENTS)
            .bind(projects)
            .bind(ids)
            .bind(fingerprints)
            .bind(levels)
            .bind(titles)
            .bind(payloads)
            .bind(&received)
            .bind(hour)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    Ok(answers(events, first, &stored))
}

/// Stores `events` and counts the new ones into their issues and hours, inside the caller's
/// transaction (SQLite's way; PostgreSQL's is [`insert_events_postgres`]); says for each
/// whether it was new (false: its id was stored already, earlier or in this batch). Issue rows
/// are written in `(project, fingerprint)` order, so concurrent batches on PostgreSQL would
/// lock them in one order and could not deadlock.
pub async fn insert_events_in(
    tx: &mut Tx,
    events: &[EventRow<'_>],
) -> Result<Vec<bool>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let received = stored_time(now_ms());
    let first = first_in_batch(events);
    let candidates: Vec<EventRow> = events
        .iter()
        .zip(&first)
        .filter(|(_, first)| **first)
        .map(|(e, _)| *e)
        .collect();
    // Inserted in key order: two transactions holding some of the same new ids lock them in
    // one order (PostgreSQL waits on an uncommitted duplicate key) and cannot deadlock.
    let mut by_key = candidates.clone();
    by_key.sort_by_key(|(project, summary, _)| (*project, summary.event_id.as_str()));
    let mut stored: HashSet<(String, String)> = HashSet::with_capacity(candidates.len());
    for chunk in by_key.chunks(ROWS_PER_INSERT) {
        let rows: Vec<(String, String)> = each!(&mut *tx, |t, DB| {
            let mut q = sqlx::QueryBuilder::<DB>::new(
                "INSERT INTO events (project, event_id, fingerprint, level, title, payload, received_at) ",
            );
            q.push_values(chunk, |mut row, (project, summary, payload)| {
                row.push_bind(*project)
                    .push_bind(&summary.event_id)
                    .push_bind(&summary.fingerprint)
                    .push_bind(&summary.level)
                    .push_bind(&summary.title)
                    .push_bind(*payload)
                    .push_bind(&received);
            });
            q.push(" ON CONFLICT (project, event_id) DO NOTHING RETURNING project, event_id");
            q.build_query_as::<(String, String)>()
                .fetch_all(&mut **t)
                .await
        })?;
        stored.extend(rows);
    }
    let tally = Tally::of(&candidates, |project, id| {
        stored.contains(&(project.to_owned(), id.to_owned()))
    });
    let hour = received.get(..13).unwrap_or(&received).to_owned();
    let issues: Vec<_> = tally.issues.iter().collect();
    for chunk in issues.chunks(ROWS_PER_INSERT) {
        each!(&mut *tx, |t, DB| {
            let mut q = sqlx::QueryBuilder::<DB>::new(
                "INSERT INTO issues (project, fingerprint, title, level, count, first_seen, last_seen, last_event_id) ",
            );
            q.push_values(chunk, |mut row, ((project, fingerprint), t)| {
                row.push_bind(*project)
                    .push_bind(*fingerprint)
                    .push_bind(t.title)
                    .push_bind(t.level)
                    .push_bind(t.count)
                    .push_bind(&received)
                    .push_bind(&received)
                    .push_bind(t.last_event_id);
            });
            q.push(
                " ON CONFLICT (project, fingerprint) DO UPDATE SET
                   count = issues.count + excluded.count,
                   title = excluded.title,
                   level = excluded.level,
                   last_seen = excluded.last_seen,
                   last_event_id = excluded.last_event_id",
            );
            q.build().execute(&mut **t).await.map(drop)
        })?;
        each!(&mut *tx, |t, DB| {
            let mut q = sqlx::QueryBuilder::<DB>::new(
                "INSERT INTO issue_hours (project, fingerprint, hour, count) ",
            );
            q.push_values(chunk, |mut row, ((project, fingerprint), t)| {
                row.push_bind(*project)
                    .push_bind(*fingerprint)
                    .push_bind(&hour)
                    .push_bind(t.count);
            });
            q.push(
                " ON CONFLICT (project, fingerprint, hour) DO UPDATE SET
                   count = issue_hours.count + excluded.count",
            );
            q.build().execute(&mut **t).await.map(drop)
        })?;
    }
    Ok(answers(events, first, &stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, fingerprint: &str, title: &str) -> Summary {
        Summary {
            event_id: id.into(),
            level: "error".into(),
            title: title.into(),
            fingerprint: fingerprint.into(),
        }
    }

    #[test]
    fn a_repeat_within_the_batch_is_not_first() {
        let (a, b) = (summary("a", "f", "A"), summary("b", "f", "B"));
        let events = [("1", &a, ""), ("1", &b, ""), ("1", &a, ""), ("2", &a, "")];
        assert_eq!(first_in_batch(&events), [true, true, false, true]);
    }

    #[test]
    fn each_issue_counts_its_stored_events_and_keeps_the_last() {
        let a = summary("a", "f1", "first");
        let b = summary("b", "f2", "other");
        let c = summary("c", "f1", "last");
        let d = summary("d", "f1", "not stored");
        let events = [("1", &a, ""), ("1", &b, ""), ("1", &c, ""), ("1", &d, "")];
        let tally = Tally::of(&events, |_, id| id != "d");
        let keys: Vec<_> = tally.issues.keys().copied().collect();
        assert_eq!(keys, [("1", "f1"), ("1", "f2")], "sorted: the lock order");
        let f1 = &tally.issues[&("1", "f1")];
        assert_eq!((f1.count, f1.title, f1.last_event_id), (2, "last", "c"));
        assert_eq!(tally.issues[&("1", "f2")].count, 1);
    }

    #[test]
    fn nothing_stored_tallies_nothing() {
        let a = summary("a", "f1", "t");
        assert!(Tally::of(&[("1", &a, "")], |_, _| false).issues.is_empty());
    }
}
