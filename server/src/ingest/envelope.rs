//! A robust parser for the Sentry envelope format: a header line, then items, each an item header
//! line and a payload of exactly `length` bytes (when given) or up to the next newline.
//!
//! It never panics on input: every malformed byte sequence is an [`EnvelopeError`] that says
//! where and what (a fuzz-style test feeds it truncated, oversized and non-UTF-8 input).

use serde_json::{Map, Value};

/// The most items one envelope may carry.
pub const MAX_ITEMS: usize = 100;

/// A parsed envelope; payloads borrow from the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<'a> {
    /// The header line's JSON object (`event_id`, `dsn`, `sdk`, `sent_at`, …).
    pub header: Map<String, Value>,
    /// The items in order.
    pub items: Vec<Item<'a>>,
}

/// One item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item<'a> {
    /// `type` of the item header (`event`, `attachment`, `client_report`, …).
    pub kind: String,
    /// The payload bytes.
    pub payload: &'a [u8],
}

/// What was wrong with an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Nothing was sent.
    #[error("the envelope is empty")]
    Empty,
    /// The first line is not a JSON object.
    #[error("the envelope header (line 1) is not a JSON object: {0}")]
    BadHeader(String),
    /// An item header is not a JSON object with a string `type`.
    #[error("item {index}: the item header is not a JSON object with a string \"type\": {reason}")]
    BadItemHeader {
        /// 0-based item index.
        index: usize,
        /// Why.
        reason: String,
    },
    /// An item says it has more bytes than the body holds.
    #[error("item {index}: \"length\" is {expected} bytes but only {available} follow")]
    Truncated {
        /// 0-based item index.
        index: usize,
        /// The declared length.
        expected: u64,
        /// What was left.
        available: usize,
    },
    /// An item over the size limit.
    #[error("item {index}: {size} bytes is over the {limit}-byte limit for one item")]
    ItemTooLarge {
        /// 0-based item index.
        index: usize,
        /// Its size (declared or measured).
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// More than [`MAX_ITEMS`] items.
    #[error("more than {MAX_ITEMS} items in one envelope")]
    TooManyItems,
}

/// Splits at the first `\n` (the newline is consumed), or takes everything.
fn line(rest: &[u8]) -> (&[u8], &[u8]) {
    match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[]),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 ({e})"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not an object".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses `body`; an item larger than `max_item` bytes is refused.
pub fn parse(body: &[u8], max_item: usize) -> Result<Envelope<'_>, EnvelopeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(EnvelopeError::Empty);
    }
    let (first, mut rest) = line(body);
    let header = object(trim_cr(first)).map_err(EnvelopeError::BadHeader)?;
    let mut items = Vec::new();
    loop {
        // Blank lines between items are tolerated (some clients end with an extra newline).
        while let Some(r) = rest
            .strip_prefix(b"\n")
            .or_else(|| rest.strip_prefix(b"\r\n"))
        {
            rest = r;
        }
        if rest.is_empty() {
            break;
        }
        let index = items.len();
        if index >= MAX_ITEMS {
            return Err(EnvelopeError::TooManyItems);
        }
        let (head, after) = line(rest);
        let head = object(trim_cr(head))
            .map_err(|reason| EnvelopeError::BadItemHeader { index, reason })?;
        let kind = match head.get("type") {
            Some(Value::String(t)) if !t.is_empty() => t.clone(),
            _ => {
                return Err(EnvelopeError::BadItemHeader {
                    index,
                    reason: "\"type\" is missing".into(),
                })
            }
        };
        let (payload, next) = match head.get("length") {
            Some(Value::Number(n)) => {
                let expected = n.as_u64().ok_or_else(|| EnvelopeError::BadItemHeader {
                    index,
                    reason: "\"length\" is not a whole number of bytes".into(),
                })?;
                if expected > max_item as u64 {
                    return Err(EnvelopeError::ItemTooLarge {
                        index,
                        size: expected,
                        limit: max_item,
                    });
                }
                // `expected <= max_item`, so it fits in usize.
                let len = expected as usize;
                if len > after.len() {
                    return Err(EnvelopeError::Truncated {
                        index,
                        expected,
                        available: after.len(),
                    });
                }
                let (payload, next) = after.split_at(len);
                (payload, next.strip_prefix(b"\n").unwrap_or(next))
            }
            Some(Value::Null) | None => {
                let (payload, next) = line(after);
                (trim_cr(payload), next)
            }
            Some(_) => {
                return Err(EnvelopeError::BadItemHeader {
                    index,
                    reason: "\"length\" is not a number".into(),
                })
            }
        };
        if payload.len() > max_item {
            return Err(EnvelopeError::ItemTooLarge {
                index,
                size: payload.len() as u64,
                limit: max_item,
            });
        }
        items.push(Item { kind, payload });
        rest = next;
    }
    Ok(Envelope { header, items })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: usize = 1 << 20;

    #[test]
    fn length_prefixed_and_newline_terminated_items() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n\
            {\"type\":\"attachment\",\"length\":10}\n\
            \xef\xbb\xbfHello\r\n\n\
            {\"type\":\"event\"}\n\
            {\"message\":\"hello\"}\n";
        let e = parse(body, MB).unwrap();
        assert_eq!(e.header["event_id"], "9ec79c33ec9942ab8353589fcb2e04dc");
        assert_eq!(e.items.len(), 2);
        assert_eq!(e.items[0].kind, "attachment");
        assert_eq!(e.items[0].payload, b"\xef\xbb\xbfHello\r\n");
        assert_eq!(e.items[1].kind, "event");
        assert_eq!(e.items[1].payload, b"{\"message\":\"hello\"}");
    }

    #[test]
    fn a_payload_may_contain_newlines_when_length_is_given() {
        let body = b"{}\n{\"type\":\"event\",\"length\":8}\n{\n\"a\":1}";
        let e = parse(body, MB).unwrap();
        assert_eq!(e.items[0].payload, b"{\n\"a\":1}");
    }

    #[test]
    fn header_only_and_empty_payloads() {
        assert!(parse(b"{}", MB).unwrap().items.is_empty());
        assert!(parse(b"{}\n", MB).unwrap().items.is_empty());
        let e = parse(b"{}\n{\"type\":\"session\",\"length\":0}\n", MB).unwrap();
        assert_eq!(e.items[0].payload, b"");
        let e = parse(b"{}\n{\"type\":\"client_report\"}", MB).unwrap();
        assert_eq!(e.items[0].payload, b"");
    }

    #[test]
    fn errors_say_what_and_where() {
        assert_eq!(parse(b"", MB), Err(EnvelopeError::Empty));
        assert_eq!(parse(b"  \n", MB), Err(EnvelopeError::Empty));
        assert!(matches!(
            parse(b"[]\n", MB),
            Err(EnvelopeError::BadHeader(_))
        ));
        assert!(matches!(
            parse(b"{\n", MB),
            Err(EnvelopeError::BadHeader(_))
        ));
        assert!(matches!(
            parse(b"{}\n{\"length\":2}\nab", MB),
            Err(EnvelopeError::BadItemHeader { index: 0, .. })
        ));
        assert!(matches!(
            parse(b"{}\n{\"type\":\"event\",\"length\":-1}\nab", MB),
            Err(EnvelopeError::BadItemHeader { index: 0, .. })
        ));
        assert!(matches!(
            parse(b"{}\n{\"type\":\"event\",\"length\":\"2\"}\nab", MB),
            Err(EnvelopeError::BadItemHeader { index: 0, .. })
        ));
        assert_eq!(
            parse(b"{}\n{\"type\":\"event\",\"length\":50}\nshort", MB),
            Err(EnvelopeError::Truncated {
                index: 0,
                expected: 50,
                available: 5
            })
        );
        assert_eq!(
            parse(b"{}\n{\"type\":\"event\",\"length\":2000}\n", 1000),
            Err(EnvelopeError::ItemTooLarge {
                index: 0,
                size: 2000,
                limit: 1000
            })
        );
        let long = [b"{}\n{\"type\":\"event\"}\n".as_slice(), &[b'x'; 1001]].concat();
        assert!(matches!(
            parse(&long, 1000),
            Err(EnvelopeError::ItemTooLarge { size: 1001, .. })
        ));
        let many = format!(
            "{{}}\n{}",
            "{\"type\":\"x\",\"length\":0}\n\n".repeat(MAX_ITEMS + 1)
        );
        assert_eq!(parse(many.as_bytes(), MB), Err(EnvelopeError::TooManyItems));
        let e = parse(
            b"{}\n{\"type\":\"event\",\"length\":99999999999999999999}\n",
            MB,
        );
        assert!(e.is_err());
        assert!(e.unwrap_err().to_string().starts_with("item 0:"));
    }

    #[test]
    fn non_utf8_headers_are_errors_not_panics() {
        assert!(matches!(
            parse(b"\xff\xfe\n", MB),
            Err(EnvelopeError::BadHeader(_))
        ));
        assert!(matches!(
            parse(b"{}\n\xff{\"type\":\"event\"}\n{}", MB),
            Err(EnvelopeError::BadItemHeader { .. })
        ));
        // Non-UTF-8 payloads are bytes, and fine to the parser.
        let e = parse(b"{}\n{\"type\":\"attachment\",\"length\":2}\n\xff\xfe", MB).unwrap();
        assert_eq!(e.items[0].payload, b"\xff\xfe");
    }

    /// Every prefix of a valid envelope, and a sweep of byte flips, parses or errors: no panic.
    #[test]
    fn truncations_and_corruptions_never_panic() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"sent_at\":\"2026-11-22T00:00:00Z\"}\n\
            {\"type\":\"event\",\"length\":41}\n\
            {\"message\":\"hello\",\"level\":\"error\",\"x\":1}\n\
            {\"type\":\"attachment\"}\nabc\n";
        assert!(parse(body, MB).is_ok());
        for end in 0..body.len() {
            let _ = parse(&body[..end], MB);
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut copy = body.to_vec();
            let at = (seed % copy.len() as u64) as usize;
            copy[at] = (seed >> 32) as u8;
            let _ = parse(&copy, 64);
        }
    }
}

/// Envelopes written by Sentry's own Rust types (`sentry-types`) parse, and their events read.
#[cfg(test)]
mod independent_writer {
    use sentry_types::protocol::v7 as sentry;

    #[test]
    fn an_envelope_written_by_sentry_types_parses() {
        let event = sentry::Event {
            message: Some("written by sentry-types".into()),
            level: sentry::Level::Warning,
            fingerprint: vec!["checkout".into()].into(),
            ..Default::default()
        };
        let id = event.event_id;
        let envelope: sentry::Envelope = event.into();
        let mut body = Vec::new();
        envelope.to_writer(&mut body).unwrap();

        let parsed = super::parse(&body, 1 << 20).unwrap();
        let events: Vec<_> = parsed.items.iter().filter(|i| i.kind == "event").collect();
        assert_eq!(events.len(), 1);
        let (summary, _) = crate::ingest::event::summarize(events[0].payload, None).unwrap();
        assert_eq!(summary.event_id, id.simple().to_string());
        assert_eq!(summary.level, "warning");
        assert_eq!(summary.title, "written by sentry-types");
    }
}
