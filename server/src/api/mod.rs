//! The read API (server-api.md, "Routes"): issues, events, vitals, metric points and the fleet,
//! all behind [`Admin`] (the admin token or a dashboard session). Handlers extract and delegate;
//! the SQL is in `store`, the fleet logic in `fleet`.

pub mod page;

use std::collections::BTreeMap;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::access::Admin;
use crate::error::AppError;
use crate::ingest::{self, parse_window};
use crate::store::{decode_pair, encode_pair, IssueCursor, Store};
use crate::{fleet, AppState};

/// The read routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/projects", get(projects))
        .route("/api/{project}/issues", get(issues))
        .route("/api/{project}/issues/{fingerprint}", get(issue))
        .route("/api/{project}/events/{event_id}", get(event))
        .route("/api/{project}/vitals", get(vitals))
        .route("/api/{project}/vitals/history", get(vitals_history))
        .route("/api/{project}/metrics", get(metric))
        .route("/api/{project}/fleet", get(fleet_rows))
}

/// The query parameters of the read routes.
#[derive(Debug, serde::Deserialize)]
struct ReadQuery {
    window: Option<String>,
    name: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl ReadQuery {
    fn window(&self, default: &str) -> Result<u64, AppError> {
        parse_window(Some(self.window.as_deref().unwrap_or(default)))
    }
}

fn bad_cursor() -> AppError {
    AppError::BadRequest("cursor: not a cursor this route gave".into())
}

/// `GET /api/projects`: the configured project ids (the dashboard's project picker).
async fn projects(_: Admin, State(state): State<AppState>) -> Json<Vec<String>> {
    Json(state.projects().iter().map(|p| p.id.clone()).collect())
}

/// `GET /api/{project}/issues?limit=&cursor=`: newest first, a page at a time.
async fn issues(
    _: Admin,
    State(store): State<Store>,
    Path(project): Path<String>,
    Query(q): Query<ReadQuery>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, AppError> {
    let limit = page::limit(q.limit)?;
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| IssueCursor::decode(c).ok_or_else(bad_cursor))
        .transpose()?;
    let page = store.issues(&project, limit, cursor.as_ref()).await?;
    Ok(page::respond(
        page.rows,
        page.next.map(|c| c.encode()),
        &page::without_cursor(uri.path(), uri.query()),
    ))
}

/// `GET /api/{project}/issues/{fingerprint}?window=24h`: one issue, events per hour, its
/// latest event.
async fn issue(
    _: Admin,
    State(store): State<Store>,
    Path((project, fingerprint)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
) -> Result<Response, AppError> {
    let hours = q.window("24h")?.div_ceil(3600).clamp(1, 24 * 30) as usize;
    let detail = store
        .issue(&project, &fingerprint, hours)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no issue {fingerprint}")))?;
    Ok(Json(detail).into_response())
}

/// `GET /api/{project}/events/{eventId}`: one stored event.
async fn event(
    _: Admin,
    State(store): State<Store>,
    Path((project, event_id)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let id = ingest::event::normalize_event_id(&event_id)
        .ok_or_else(|| AppError::NotFound(format!("no event {event_id}")))?;
    let payload = store
        .event(&project, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no event {id}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        payload,
    )
        .into_response())
}

/// `GET /api/{project}/vitals?window=1h`: p75, count and ratings per vital.
async fn vitals(
    _: Admin,
    State(state): State<AppState>,
    Path(project): Path<String>,
    Query(q): Query<ReadQuery>,
) -> Result<Response, AppError> {
    let window = q.window("1h")?;
    Ok(Json(ingest::vitals(state.store(), &project, window).await?).into_response())
}

/// One bucket of `GET /api/{project}/vitals/history`.
#[derive(Debug, Serialize)]
struct VitalBucket {
    /// The bucket's start, RFC 3339 (a minute for windows up to 3 h, else an hour).
    time: String,
    p75: f64,
    count: usize,
}

/// `GET /api/{project}/vitals/history?window=24h`: per vital, p75 and count per minute (windows
/// up to 3 h) or per hour (an addition to the contract, for the dashboard's charts).
async fn vitals_history(
    _: Admin,
    State(store): State<Store>,
    Path(project): Path<String>,
    Query(q): Query<ReadQuery>,
) -> Result<Response, AppError> {
    let window = q.window("24h")?;
    let key_len = if window <= 3 * 3600 { 16 } else { 13 };
    let mut out: BTreeMap<&str, Vec<VitalBucket>> = BTreeMap::new();
    for vital in vigil_protocol::vitals::Vital::ALL {
        let points = store
            .metric_series(&project, vital.metric_name(), window)
            .await?;
        let mut buckets: Vec<VitalBucket> = Vec::new();
        let mut values: Vec<f64> = Vec::new();
        let mut current: Option<&str> = None;
        let mut flush = |key: Option<&str>, values: &mut Vec<f64>| {
            if let (Some(key), Some(p75)) = (key, ingest::p75(values)) {
                let pad = if key.len() == 13 { ":00:00Z" } else { ":00Z" };
                buckets.push(VitalBucket {
                    time: format!("{key}{pad}"),
                    p75,
                    count: values.len(),
                });
            }
            values.clear();
        };
        for (time, value) in &points {
            let key = time.get(..key_len).unwrap_or(time);
            if current != Some(key) {
                flush(current, &mut values);
                current = Some(key);
            }
            values.push(*value);
        }
        flush(current, &mut values);
        out.insert(vital.name(), buckets);
    }
    Ok(Json(out).into_response())
}

/// `GET /api/{project}/metrics?name=…&window=1h&limit=&cursor=`: points of one metric, newest
/// first.
async fn metric(
    _: Admin,
    State(store): State<Store>,
    Path(project): Path<String>,
    Query(q): Query<ReadQuery>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, AppError> {
    let window = q.window("1h")?;
    let limit = page::limit(q.limit)?;
    let name = q
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| AppError::BadRequest("name: the metric name is required".into()))?;
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            decode_pair(c)
                .and_then(|(time, id)| Some((time, id.parse::<i64>().ok()?)))
                .ok_or_else(bad_cursor)
        })
        .transpose()?;
    let (points, next) = store
        .metric_points(&project, name, window, limit, cursor)
        .await?;
    let next = next.map(|(time, id)| encode_pair(&time, &id.to_string()));
    Ok(page::respond(
        points,
        next,
        &page::without_cursor(uri.path(), uri.query()),
    ))
}

/// `GET /api/{project}/fleet?window=24h&limit=&cursor=`: one row per instance, leaking first.
async fn fleet_rows(
    _: Admin,
    State(store): State<Store>,
    Path(project): Path<String>,
    Query(q): Query<ReadQuery>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, AppError> {
    let window = q.window("24h")?;
    let limit = page::limit(q.limit)? as usize;
    let from = page::offset(q.cursor.as_deref())?;
    let rows = fleet::fleet(&store, &project, window).await?;
    let to = from.saturating_add(limit).min(rows.len());
    let next = (to < rows.len()).then(|| to.to_string());
    let page = rows.get(from.min(to)..to).unwrap_or_default();
    Ok(page::respond(
        page,
        next,
        &page::without_cursor(uri.path(), uri.query()),
    ))
}
