//! Issues for the read API and the dashboard: keyset pages, events per hour, one issue whole.

use serde::Serialize;
use sqlx::QueryBuilder;
use vigil_protocol::IssueSummary;

use super::engine::each;
use super::{Store, StoreError};

/// Where the next page of issues starts: after this `(last_seen, fingerprint)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueCursor {
    /// RFC 3339.
    pub last_seen: String,
    /// The grouping key.
    pub fingerprint: String,
}

impl IssueCursor {
    /// The opaque form a client passes back (`cursor=`).
    pub fn encode(&self) -> String {
        encode_pair(&self.last_seen, &self.fingerprint)
    }

    /// Reads [`IssueCursor::encode`]'s output; `None` when it is not one.
    pub fn decode(s: &str) -> Option<Self> {
        let (last_seen, fingerprint) = decode_pair(s)?;
        Some(Self {
            last_seen,
            fingerprint,
        })
    }
}

/// A keyset position of two parts (e.g. a time and a tie-breaking key) as an opaque cursor:
/// hex, so it needs no escaping in a query string.
pub fn encode_pair(first: &str, second: &str) -> String {
    format!("{first}\n{second}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads [`encode_pair`]'s output; `None` when it is not one.
pub fn decode_pair(s: &str) -> Option<(String, String)> {
    if !s.len().is_multiple_of(2) || s.len() > 2048 {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let text = String::from_utf8(bytes).ok()?;
    let (first, second) = text.split_once('\n')?;
    Some((first.to_owned(), second.to_owned()))
}

/// One row of the issue list: the contract's fields and, added, the last 24 hours' counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueRow {
    /// The contract's fields.
    #[serde(flatten)]
    pub summary: IssueSummary,
    /// Events per hour over the last 24 hours, oldest first (24 numbers).
    pub hourly: Vec<u64>,
}

/// A page of issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuePage {
    /// Newest first.
    pub rows: Vec<IssueRow>,
    /// Where the next page starts, when there is one.
    pub next: Option<IssueCursor>,
}

/// `GET /api/{project}/issues/{fingerprint}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueDetail {
    /// The issue's fields.
    #[serde(flatten)]
    pub summary: IssueSummary,
    /// `[{ hour: "YYYY-MM-DDTHH:00:00Z", count }]`, every hour of the window, oldest first.
    pub events_per_hour: Vec<HourCount>,
    /// The latest event, whole (as stored).
    pub latest_event: Option<serde_json::Value>,
}

/// Events in one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourCount {
    /// The hour's start, RFC 3339.
    pub hour: String,
    /// Events stored in it.
    pub count: u64,
}

type Summary = (String, String, String, i64, String, String, String);

fn summary(r: Summary) -> IssueSummary {
    let (fingerprint, title, level, count, first_seen, last_seen, last_event_id) = r;
    IssueSummary {
        fingerprint,
        title,
        level,
        count: u64::try_from(count).unwrap_or(0),
        first_seen,
        last_seen,
        last_event_id,
    }
}

/// The `hour` keys (`YYYY-MM-DDTHH`) of the `hours` hours up to `now_ms`, oldest first.
pub fn hour_keys(now_ms: i64, hours: usize) -> Vec<String> {
    let this_hour = now_ms.div_euclid(3_600_000) * 3_600_000;
    (0..hours)
        .rev()
        .map(|h| crate::fleet::rfc3339(this_hour - h as i64 * 3_600_000)[..13].to_owned())
        .collect()
}

impl Store {
    /// A page of `project`'s issues, most recently seen first: at most `limit`, after `cursor`.
    /// A keyset page on the `(project, last_seen, fingerprint)` index: as fast on page 1,000 as
    /// on page 1.
    pub async fn issues(
        &self,
        project: &str,
        limit: u32,
        cursor: Option<&IssueCursor>,
    ) -> Result<IssuePage, StoreError> {
        let rows: Vec<Summary> = each!(&self.pool, |p, DB| {
            let mut q = QueryBuilder::<DB>::new(
                "SELECT fingerprint, title, level, count, first_seen, last_seen, last_event_id
                 FROM issues WHERE project = ",
            );
            q.push_bind(project);
            if let Some(c) = cursor {
                q.push(" AND (last_seen < ")
                    .push_bind(&c.last_seen)
                    .push(" OR (last_seen = ")
                    .push_bind(&c.last_seen)
                    .push(" AND fingerprint < ")
                    .push_bind(&c.fingerprint)
                    .push("))");
            }
            q.push(" ORDER BY last_seen DESC, fingerprint DESC LIMIT ")
                .push_bind(i64::from(limit) + 1);
            q.build_query_as::<Summary>().fetch_all(p).await
        })?;
        let mut rows: Vec<IssueSummary> = rows.into_iter().map(summary).collect();
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| IssueCursor {
                last_seen: r.last_seen.clone(),
                fingerprint: r.fingerprint.clone(),
            })
        } else {
            None
        };
        let hourly = self
            .hourly(
                project,
                &rows
                    .iter()
                    .map(|r| r.fingerprint.as_str())
                    .collect::<Vec<_>>(),
            )
            .await?;
        let rows = rows
            .into_iter()
            .zip(hourly)
            .map(|(summary, hourly)| IssueRow { summary, hourly })
            .collect();
        Ok(IssuePage { rows, next })
    }

    /// The last 24 hours' counts of each fingerprint, in the order given.
    async fn hourly(
        &self,
        project: &str,
        fingerprints: &[&str],
    ) -> Result<Vec<Vec<u64>>, StoreError> {
        let keys = hour_keys(super::health::now_ms(), 24);
        let mut out = vec![vec![0u64; keys.len()]; fingerprints.len()];
        if fingerprints.is_empty() {
            return Ok(out);
        }
        // One row per issue (its hours joined in SQL): the driver's cost is per row.
        // `string_agg` is PostgreSQL's and SQLite's (3.44+) name for it.
        let rows: Vec<(String, String)> = each!(&self.pool, |p, DB| {
            let mut q = QueryBuilder::<DB>::new(
                "SELECT fingerprint, string_agg(hour || '=' || count, ',') FROM issue_hours WHERE project = ",
            );
            q.push_bind(project).push(" AND hour >= ");
            q.push_bind(&keys[0]).push(" AND fingerprint IN (");
            let mut list = q.separated(", ");
            for f in fingerprints {
                list.push_bind(*f);
            }
            q.push(") GROUP BY fingerprint");
            q.build_query_as().fetch_all(p).await
        })?;
        for (fingerprint, hours) in rows {
            let Some(i) = fingerprints.iter().position(|f| *f == fingerprint) else {
                continue;
            };
            for pair in hours.split(',') {
                let Some((hour, count)) = pair.split_once('=') else {
                    continue;
                };
                if let Some(h) = keys.iter().position(|k| k == hour) {
                    out[i][h] = count.parse().unwrap_or(0);
                }
            }
        }
        Ok(out)
    }

    /// One issue with its events per hour over the last `hours` hours and its latest event.
    pub async fn issue(
        &self,
        project: &str,
        fingerprint: &str,
        hours: usize,
    ) -> Result<Option<IssueDetail>, StoreError> {
        let row: Option<Summary> = each!(&self.pool, |p| sqlx::query_as(
            "SELECT fingerprint, title, level, count, first_seen, last_seen, last_event_id
             FROM issues WHERE project = $1 AND fingerprint = $2",
        )
        .bind(project)
        .bind(fingerprint)
        .fetch_optional(p)
        .await)?;
        let Some(summary) = row.map(summary) else {
            return Ok(None);
        };
        let keys = hour_keys(super::health::now_ms(), hours.max(1));
        let counts: Vec<(String, i64)> = each!(&self.pool, |p| sqlx::query_as(
            "SELECT hour, count FROM issue_hours
             WHERE project = $1 AND fingerprint = $2 AND hour >= $3 ORDER BY hour",
        )
        .bind(project)
        .bind(fingerprint)
        .bind(&keys[0])
        .fetch_all(p)
        .await)?;
        let events_per_hour = keys
            .iter()
            .map(|k| HourCount {
                hour: format!("{k}:00:00Z"),
                count: counts
                    .iter()
                    .find(|(h, _)| h == k)
                    .map(|(_, c)| u64::try_from(*c).unwrap_or(0))
                    .unwrap_or(0),
            })
            .collect();
        let latest_event = self
            .event(project, &summary.last_event_id)
            .await?
            .and_then(|p| serde_json::from_str(&p).ok());
        Ok(Some(IssueDetail {
            summary,
            events_per_hour,
            latest_event,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::Summary as EventSummary;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = IssueCursor {
            last_seen: "2026-12-01T10:00:00.000Z".into(),
            fingerprint: "ab\u{e9}".into(),
        };
        assert_eq!(IssueCursor::decode(&c.encode()), Some(c));
        for bad in ["", "zz", "abc", "e9", "00", &"a".repeat(4096)] {
            assert_eq!(IssueCursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn hour_keys_end_at_the_current_hour() {
        let keys = hour_keys(1_796_157_296_789, 3);
        assert_eq!(keys, ["2026-12-01T18", "2026-12-01T19", "2026-12-01T20"]);
    }

    crate::store::testdb::on_both_engines! {
    async fn pages_walk_every_issue_once_newest_first(store: Store) {
        for i in 0..25 {
            let ev = EventSummary {
                event_id: format!("{i:032x}"),
                level: "error".into(),
                title: format!("E{i}"),
                fingerprint: format!("f{i:02}"),
            };
            store.insert_event("1", &ev, "{}").await.unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.issues("1", 10, cursor.as_ref()).await.unwrap();
            assert!(page.rows.len() <= 10);
            for r in &page.rows {
                assert_eq!(r.hourly.len(), 24);
                assert_eq!(r.hourly.iter().sum::<u64>(), 1);
                seen.push(r.summary.fingerprint.clone());
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25);
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 25, "no issue twice");
        assert_eq!(seen[0], "f24", "newest first");
        let detail = store.issue("1", "f03", 24).await.unwrap().unwrap();
        assert_eq!(detail.events_per_hour.len(), 24);
        assert_eq!(detail.events_per_hour[23].count, 1);
        assert_eq!(detail.latest_event, Some(serde_json::json!({})));
        assert_eq!(store.issue("1", "nope", 24).await.unwrap(), None);
    }
    }
}
