//! *Pure.* What one instance tells the others through PostgreSQL `NOTIFY`: an order it stored.
//!
//! A `NOTIFY` payload must be shorter than 8,000 bytes, and an order may be larger (its body is
//! bounded by `MAX_ORDER_BYTES`, 64 KiB). So the order travels inline when it fits, else only its
//! id does and the listener reads the order from the table. Every notice names the instance that
//! sent it, so that instance (which delivered the order to its own subscribers already) skips it.
//!
//! The payload is read from the database, which any client with access may write into: a payload
//! that does not parse is an error value (counted by the caller), never a panic.

use serde::{Deserialize, Serialize};
use vigil_protocol::orders::Order;

/// The `LISTEN`/`NOTIFY` channel of the orders feed.
pub const ORDERS_CHANNEL: &str = "vigil_orders";

/// The largest payload sent (PostgreSQL refuses 8,000 bytes and more).
pub const MAX_PAYLOAD: usize = 7_999;

/// The format version in every payload.
const VERSION: u8 = 1;

/// One order stored by instance `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The instance that stored it.
    pub from: String,
    /// The order, or only its id when it did not fit.
    pub order: Carried,
}

/// How the order travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    /// The whole order.
    Inline(Order),
    /// Too large for a payload: the listener reads it by id.
    ById(i64),
}

impl Carried {
    /// The order's id.
    pub fn id(&self) -> i64 {
        match self {
            Self::Inline(order) => order.id,
            Self::ById(id) => *id,
        }
    }
}

/// Why a payload was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    /// Not JSON of the expected shape.
    #[error("malformed notice: {0}")]
    Malformed(String),
    /// Written by a newer (or unknown) version.
    #[error("notice version {0} is not understood")]
    Version(u8),
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u8,
    from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order: Option<Order>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
}

/// The payload announcing `order` from instance `from`: inline when it fits [`MAX_PAYLOAD`],
/// else by id. Always at most [`MAX_PAYLOAD`] bytes (instance ids are short).
pub fn encode(from: &str, order: &Order) -> String {
    let inline = Wire {
        v: VERSION,
        from: from.to_owned(),
        order: Some(order.clone()),
        id: None,
    };
    match serde_json::to_string(&inline) {
        Ok(text) if text.len() <= MAX_PAYLOAD => text,
        _ => by_id(from, order.id),
    }
}

fn by_id(from: &str, id: i64) -> String {
    let wire = Wire {
        v: VERSION,
        from: from.to_owned(),
        order: None,
        id: Some(id),
    };
    // A struct of strings and integers always serializes.
    serde_json::to_string(&wire).unwrap_or_default()
}

/// Reads a payload written by [`encode`].
pub fn decode(payload: &str) -> Result<Notice, NoticeError> {
    let wire: Wire = serde_json::from_str(payload).map_err(|e| {
        let mut reason = e.to_string();
        reason.truncate(200);
        NoticeError::Malformed(reason)
    })?;
    if wire.v != VERSION {
        return Err(NoticeError::Version(wire.v));
    }
    let order = match (wire.order, wire.id) {
        (Some(order), None) => Carried::Inline(order),
        (None, Some(id)) => Carried::ById(id),
        _ => {
            return Err(NoticeError::Malformed(
                "expected exactly one of order and id".into(),
            ))
        }
    };
    Ok(Notice {
        from: wire.from,
        order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_protocol::orders::OrderItem;

    fn order(id: i64, items: usize, name_len: usize) -> Order {
        Order {
            id,
            items: (0..items)
                .map(|i| OrderItem {
                    name: format!("{i}{}", "é".repeat(name_len)),
                    quantity: 3,
                })
                .collect(),
            created_at: "2026-12-01T21:00:00.000Z".into(),
        }
    }

    #[test]
    fn a_small_order_travels_inline_and_reads_back() {
        let o = order(7, 2, 5);
        let text = encode("inst-a", &o);
        assert!(text.len() <= MAX_PAYLOAD);
        assert_eq!(
            decode(&text),
            Ok(Notice {
                from: "inst-a".into(),
                order: Carried::Inline(o),
            })
        );
    }

    #[test]
    fn an_order_too_large_for_a_payload_travels_by_id() {
        // 100 items of 200 two-byte characters: ~40 KB of JSON.
        let o = order(9, 100, 200);
        assert!(serde_json::to_string(&o).unwrap().len() > MAX_PAYLOAD);
        let text = encode("inst-b", &o);
        assert!(text.len() <= MAX_PAYLOAD, "{}", text.len());
        let notice = decode(&text).unwrap();
        assert_eq!(notice.order, Carried::ById(9));
        assert_eq!(notice.order.id(), 9);
        assert_eq!(notice.from, "inst-b");
    }

    #[test]
    fn the_boundary_is_the_payload_limit() {
        // Grow one item's name until the inline payload passes the limit: the last inline
        // payload is within it, the first by-id one is what follows.
        let mut last_inline = 0;
        let mut went_by_id = false;
        for len in 3_900..4_100 {
            let o = order(1, 1, len);
            let text = encode("i", &o);
            match decode(&text).unwrap().order {
                Carried::Inline(back) => {
                    assert_eq!(back, o);
                    last_inline = text.len();
                }
                Carried::ById(1) => went_by_id = true,
                other => panic!("{other:?}"),
            }
        }
        assert!(went_by_id && last_inline > MAX_PAYLOAD - 4 && last_inline <= MAX_PAYLOAD);
    }

    #[test]
    fn foreign_payloads_are_errors_not_panics() {
        for bad in [
            "",
            "hello",
            "{}",
            "{\"v\":1}",
            "{\"v\":1,\"from\":\"x\"}",
            "{\"v\":1,\"from\":\"x\",\"id\":1,\"order\":{\"id\":1,\"items\":[],\"created_at\":\"\"}}",
            "{\"v\":1,\"from\":\"x\",\"id\":\"1\"}",
            "[1,2,3]",
            "\u{0}\u{ffff}",
        ] {
            assert!(
                matches!(decode(bad), Err(NoticeError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            decode("{\"v\":2,\"from\":\"x\",\"id\":1}"),
            Err(NoticeError::Version(2))
        );
    }
}
