//! Pagination of list routes: `limit` (default 100, at most 1000) and an opaque `cursor`. A
//! list answers with its JSON array as before; the next page's cursor comes in `X-Next-Cursor`
//! and a `Link: <…>; rel="next"` header (no header: the last page).

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::AppError;

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;

/// The most rows one page holds.
pub const MAX_LIMIT: u32 = 1000;

/// The header naming the next page's cursor.
pub const NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");

/// `limit` checked: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn limit(given: Option<u32>) -> Result<u32, AppError> {
    match given {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(AppError::BadRequest(format!(
            "limit: from 1 to {MAX_LIMIT}, got {n}"
        ))),
    }
}

/// The rows as a JSON array, with the next page's cursor in the headers when there is one.
/// `path_and_query` is the request's, without its `cursor` (the `Link` adds it).
pub fn respond<T: Serialize>(rows: T, next: Option<String>, path_and_query: &str) -> Response {
    let mut response = Json(rows).into_response();
    if let Some(cursor) = next {
        let sep = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let link = format!("<{path_and_query}{sep}cursor={cursor}>; rel=\"next\"");
        if let (Ok(c), Ok(l)) = (HeaderValue::from_str(&cursor), HeaderValue::from_str(&link)) {
            response.headers_mut().insert(NEXT_CURSOR, c);
            response.headers_mut().insert(header::LINK, l);
            response.headers_mut().insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("x-next-cursor, link"),
            );
        }
    }
    response
}

/// The request's path and query without any `cursor` parameter.
pub fn without_cursor(path: &str, query: Option<&str>) -> String {
    let kept: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("cursor="))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// A cursor that is a plain offset (lists computed whole, like the fleet).
pub fn offset(cursor: Option<&str>) -> Result<usize, AppError> {
    cursor
        .map(|c| {
            c.parse::<usize>()
                .map_err(|_| AppError::BadRequest("cursor: not a cursor this route gave".into()))
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_refuse_out_of_range() {
        assert_eq!(limit(None).unwrap(), 100);
        assert_eq!(limit(Some(1)).unwrap(), 1);
        assert_eq!(limit(Some(1000)).unwrap(), 1000);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(1001)).is_err());
    }

    #[test]
    fn the_next_link_replaces_the_cursor() {
        assert_eq!(
            without_cursor("/api/1/issues", Some("limit=5&cursor=ab&x=1")),
            "/api/1/issues?limit=5&x=1"
        );
        assert_eq!(without_cursor("/a", Some("cursor=1")), "/a");
        let r = respond(vec![1], Some("abc".into()), "/a?limit=1");
        assert_eq!(r.headers()[NEXT_CURSOR], "abc");
        assert_eq!(
            r.headers()[header::LINK],
            "</a?limit=1&cursor=abc>; rel=\"next\""
        );
        let last = respond(vec![1], None, "/a");
        assert!(last.headers().get(NEXT_CURSOR).is_none());
    }

    #[test]
    fn offsets_parse_or_refuse() {
        assert_eq!(offset(None).unwrap(), 0);
        assert_eq!(offset(Some("200")).unwrap(), 200);
        assert!(offset(Some("-1")).is_err());
        assert!(offset(Some("x")).is_err());
    }
}
