//! Writing Sentry envelopes: a header line, then each item as a header with its byte `length` and
//! the payload. JSON strings are escaped here; payloads arrive already encoded (the browser's
//! `JSON.stringify` in the shell), so the wasm bundle carries no JSON serializer.

use crate::prelude::*;
/// One item to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    /// `event`, `client_report`, …
    pub kind: &'a str,
    /// Encoded payload.
    pub payload: &'a str,
}

/// Appends `s` as a JSON string literal (quotes included).
pub fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let n = c as usize;
                out.push_str("\\u00");
                out.push(HEX[n >> 4] as char);
                out.push(HEX[n & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The envelope header: `{"event_id":…,"sent_at":…,"dsn":…,"sdk":{"name":…,"version":…}}`.
pub fn header(event_id: Option<&str>, sent_at: &str, dsn: &str, sdk: (&str, &str)) -> String {
    let mut h = String::from("{");
    if let Some(id) = event_id {
        h.push_str("\"event_id\":");
        quote(id, &mut h);
        h.push(',');
    }
    h.push_str("\"sent_at\":");
    quote(sent_at, &mut h);
    h.push_str(",\"dsn\":");
    quote(dsn, &mut h);
    h.push_str(",\"sdk\":{\"name\":");
    quote(sdk.0, &mut h);
    h.push_str(",\"version\":");
    quote(sdk.1, &mut h);
    h.push_str("}}");
    h
}

/// The whole envelope.
pub fn encode(header: &str, items: &[Item<'_>]) -> String {
    let mut out = String::with_capacity(
        header.len() + items.iter().map(|i| i.payload.len() + 48).sum::<usize>() + 1,
    );
    out.push_str(header);
    out.push('\n');
    for item in items {
        out.push_str("{\"type\":");
        quote(item.kind, &mut out);
        out.push_str(",\"length\":");
        crate::text::push_uint(&mut out, item.payload.len() as u64);
        out.push_str("}\n");
        out.push_str(item.payload);
        out.push('\n');
    }
    out
}

// Native only: the independent parsers (serde_json, sentry-types) are not built for wasm.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_what_json_requires() {
        let mut s = String::new();
        quote("a\"b\\c\nd\u{1}é", &mut s);
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }

    /// Sentry's own Rust types read what we write: header, lengths and the event itself.
    #[test]
    fn sentry_types_reads_our_envelopes() {
        use sentry_types::protocol::v7 as sentry;
        let id = "9ec79c33ec9942ab8353589fcb2e04dc";
        let event = serde_json::json!({
            "event_id": id,
            "timestamp": 1_795_392_000.5,
            "platform": "javascript",
            "level": "error",
            "message": "line one\nline \"two\" é",
            "exception": { "values": [{ "type": "TypeError", "value": "x is undefined",
                "mechanism": { "type": "onerror", "handled": false },
                "stacktrace": { "frames": [{ "filename": "http://k/app.js", "function": "main", "lineno": 3, "colno": 9, "in_app": true }] } }] },
            "breadcrumbs": { "values": [{ "timestamp": 1_795_391_999.0, "category": "console", "message": "warn", "level": "warning" }] }
        })
        .to_string();
        let h = header(
            Some(id),
            "2026-11-23T00:00:00.500Z",
            "http://dev@127.0.0.1:8080/1",
            ("vigil.javascript", "0.1.0"),
        );
        let body = encode(
            &h,
            &[
                Item {
                    kind: "event",
                    payload: &event,
                },
                Item {
                    kind: "client_report",
                    payload: "{\"discarded_events\":[]}",
                },
            ],
        );
        let envelope =
            sentry::Envelope::from_slice(body.as_bytes()).expect("sentry-types parses it");
        assert_eq!(
            envelope.uuid().map(|u| u.simple().to_string()).as_deref(),
            Some(id)
        );
        let events: Vec<_> = envelope
            .items()
            .filter_map(|i| match i {
                sentry::EnvelopeItem::Event(e) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].message.as_deref(),
            Some("line one\nline \"two\" é")
        );
        assert_eq!(events[0].level, sentry::Level::Error);
        assert_eq!(events[0].exception.values[0].ty, "TypeError");
        assert_eq!(events[0].breadcrumbs.values.len(), 1);
    }
}
