//! What the server reads out of an event payload: its id, level, title and grouping fingerprint.

use serde_json::Value;

/// Frames that make the default fingerprint of an exception.
pub const FINGERPRINT_FRAMES: usize = 5;

/// The parts of an event the issues list is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// 32 lowercase hex characters.
    pub event_id: String,
    /// `fatal`, `error`, `warning`, `info` or `debug`.
    pub level: String,
    /// `Type: value` of the exception, or the message.
    pub title: String,
    /// The grouping key (16 hex characters).
    pub fingerprint: String,
}

/// Why an event payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not a JSON object.
    #[error("the event payload is not a JSON object: {0}")]
    NotAnObject(String),
    /// No usable `event_id`.
    #[error("event_id: expected 32 hex characters (a UUID without dashes)")]
    BadEventId,
}

/// Normalizes an event id: 32 hex digits, dashes removed, lowercased.
pub fn normalize_event_id(id: &str) -> Option<String> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    (hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// Reads `payload` (the JSON of an `event` item); `header_id` is the envelope header's `event_id`.
/// Returns the summary and the payload as text, to be stored as sent.
pub fn summarize<'a>(
    payload: &'a [u8],
    header_id: Option<&str>,
) -> Result<(Summary, &'a str), EventError> {
    let text = std::str::from_utf8(payload).map_err(|e| EventError::NotAnObject(e.to_string()))?;
    let event: Value =
        serde_json::from_str(text).map_err(|e| EventError::NotAnObject(e.to_string()))?;
    if !event.is_object() {
        return Err(EventError::NotAnObject("another JSON value".into()));
    }
    let event_id = event["event_id"]
        .as_str()
        .or(header_id)
        .and_then(normalize_event_id)
        .ok_or(EventError::BadEventId)?;
    let level = match event["level"].as_str() {
        Some(l @ ("fatal" | "error" | "warning" | "info" | "debug")) => l.to_owned(),
        Some("warn") => "warning".to_owned(),
        _ => "error".to_owned(),
    };
    let exception = event["exception"]["values"]
        .as_array()
        .and_then(|v| v.last())
        .or_else(|| event["exception"].as_array().and_then(|v| v.last()));
    let message = event["message"]
        .as_str()
        .or_else(|| event["message"]["formatted"].as_str())
        .or_else(|| event["message"]["message"].as_str())
        .or_else(|| event["logentry"]["formatted"].as_str())
        .or_else(|| event["logentry"]["message"].as_str());
    let title = match (exception, message) {
        (Some(ex), _) => {
            let ty = ex["type"].as_str().unwrap_or("Error");
            match ex["value"].as_str() {
                Some(v) if !v.is_empty() => format!("{ty}: {v}"),
                _ => ty.to_owned(),
            }
        }
        (None, Some(m)) => m.to_owned(),
        (None, None) => "<no message>".to_owned(),
    };
    let title: String = title.chars().take(200).collect();
    let fingerprint = hash(&grouping_key(&event, exception, message));
    Ok((
        Summary {
            event_id,
            level,
            title,
            fingerprint,
        },
        text,
    ))
}

/// The explicit fingerprint, else the exception type plus its top in-app frames, else the message.
fn grouping_key(event: &Value, exception: Option<&Value>, message: Option<&str>) -> String {
    if let Some(parts) = event["fingerprint"].as_array() {
        let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
        if !parts.is_empty() && parts != ["{{ default }}"] {
            return format!("custom\n{}", parts.join("\n"));
        }
    }
    if let Some(ex) = exception {
        let frames = ex["stacktrace"]["frames"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let in_app: Vec<&Value> = frames.iter().filter(|f| f["in_app"] == true).collect();
        let chosen: Vec<&Value> = if in_app.is_empty() {
            frames.iter().collect()
        } else {
            in_app
        };
        // Frames are oldest first: the top of the stack is at the end.
        let top: Vec<String> = chosen
            .iter()
            .rev()
            .take(FINGERPRINT_FRAMES)
            .map(|f| {
                format!(
                    "{}@{}",
                    f["function"].as_str().unwrap_or("?"),
                    f["filename"]
                        .as_str()
                        .or(f["module"].as_str())
                        .unwrap_or("?")
                )
            })
            .collect();
        let ty = ex["type"].as_str().unwrap_or("Error");
        if top.is_empty() {
            // No stack: the value is all that tells two errors apart.
            return format!("exception\n{ty}\n{}", ex["value"].as_str().unwrap_or(""));
        }
        return format!("exception\n{ty}\n{}", top.join("\n"));
    }
    format!("message\n{}", message.unwrap_or(""))
}

/// FNV-1a, 64 bits, as 16 hex characters: stable across runs and versions.
fn hash(key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sum(v: Value) -> Summary {
        summarize(v.to_string().as_bytes(), None).unwrap().0
    }

    fn exception(ty: &str, value: &str, frames: Value) -> Value {
        json!({
            "event_id": "9EC79C33-EC99-42AB-8353-589FCB2E04DC",
            "exception": { "values": [{ "type": ty, "value": value, "stacktrace": { "frames": frames } }] }
        })
    }

    #[test]
    fn ids_levels_and_titles() {
        let s = sum(exception("TypeError", "x is undefined", json!([])));
        assert_eq!(s.event_id, "9ec79c33ec9942ab8353589fcb2e04dc");
        assert_eq!(s.level, "error");
        assert_eq!(s.title, "TypeError: x is undefined");
        let m = sum(
            json!({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "message": "hi", "level": "info"}),
        );
        assert_eq!((m.title.as_str(), m.level.as_str()), ("hi", "info"));
        let f = sum(
            json!({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "logentry": {"formatted": "x"}, "level": "bogus"}),
        );
        assert_eq!((f.title.as_str(), f.level.as_str()), ("x", "error"));
    }

    #[test]
    fn the_event_id_may_come_from_the_envelope_header() {
        let (s, _) = summarize(
            b"{\"message\":\"m\"}",
            Some("9ec79c33ec9942ab8353589fcb2e04dc"),
        )
        .unwrap();
        assert_eq!(s.event_id, "9ec79c33ec9942ab8353589fcb2e04dc");
        assert_eq!(
            summarize(b"{\"message\":\"m\"}", None),
            Err(EventError::BadEventId)
        );
        assert_eq!(
            summarize(b"{\"event_id\":\"nothex\"}", None),
            Err(EventError::BadEventId)
        );
        assert!(matches!(
            summarize(b"[1]", None),
            Err(EventError::NotAnObject(_))
        ));
        assert!(matches!(
            summarize(b"\xff", None),
            Err(EventError::NotAnObject(_))
        ));
    }

    #[test]
    fn grouping_uses_type_and_top_in_app_frames_not_the_value() {
        let frames = json!([
            {"function": "main", "filename": "app.js", "in_app": true},
            {"function": "lib", "filename": "vendor.js", "in_app": false},
            {"function": "render", "filename": "app.js", "in_app": true}
        ]);
        let a = sum(exception("TypeError", "id 1 missing", frames.clone()));
        let b = sum(exception("TypeError", "id 2 missing", frames.clone()));
        assert_eq!(
            a.fingerprint, b.fingerprint,
            "same place, different value: one issue"
        );
        let c = sum(exception("RangeError", "id 1 missing", frames));
        assert_ne!(a.fingerprint, c.fingerprint);
        let other = json!([{"function": "save", "filename": "app.js", "in_app": true}]);
        assert_ne!(
            a.fingerprint,
            sum(exception("TypeError", "x", other)).fingerprint
        );
        assert_eq!(a.fingerprint.len(), 16);
    }

    #[test]
    fn an_explicit_fingerprint_wins() {
        let mut e = exception("TypeError", "a", json!([]));
        e["fingerprint"] = json!(["checkout", "payment"]);
        let mut f = exception("RangeError", "b", json!([]));
        f["fingerprint"] = json!(["checkout", "payment"]);
        assert_eq!(sum(e).fingerprint, sum(f).fingerprint);
    }

    #[test]
    fn messages_group_by_text() {
        let m =
            |t: &str| sum(json!({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "message": t}));
        assert_eq!(m("a").fingerprint, m("a").fingerprint);
        assert_ne!(m("a").fingerprint, m("b").fingerprint);
    }
}
