//! The demo orders feed: validate, store (keeping only the newest `max_orders`), broadcast
//! `order:created` to the `orders` topic. Who may post is decided before: the operator, or under
//! `--demo` any page, [`admit`]ted per IP.

use std::net::IpAddr;

use vigil_protocol::orders::{self, NewOrder, Order};

use super::Hub;
use crate::error::AppError;
use crate::store::Store;

/// The most items one order may hold.
pub const MAX_ITEMS: usize = 100;

/// The largest order body taken (`POST /api/orders`).
pub const MAX_ORDER_BYTES: usize = 64 * 1024;

/// Stores `new`, prunes the orders past the newest `max_orders` (counted), and tells every
/// session in the `orders` topic. The broadcast happens only after the order is committed.
pub async fn create(store: &Store, hub: &Hub, new: NewOrder) -> Result<Order, AppError> {
    validate(&new)?;
    let (order, pruned) = store
        .insert_order(&new.items, hub.config().max_orders)
        .await?;
    hub.inner.metrics.orders_pruned.inc_by(pruned);
    hub.broadcast(orders::TOPIC, orders::CREATED, &order);
    Ok(order)
}

/// Takes one of `ip`'s tokens for an order posted by a page under `--demo`; past the limit, `429`
/// with `Retry-After` (counted in `vigil_requests_refused_total{route="orders"}`).
pub fn admit(hub: &Hub, ip: IpAddr) -> Result<(), AppError> {
    hub.inner.orders_per_ip.check(ip).map_err(|secs| {
        hub.inner
            .metrics
            .requests_refused
            .with_label_values(&["orders", "rate_limited"])
            .inc();
        AppError::RateLimited(secs)
    })
}

fn validate(new: &NewOrder) -> Result<(), AppError> {
    if new.items.is_empty() || new.items.len() > MAX_ITEMS {
        return Err(AppError::BadRequest(format!(
            "items: expected 1 to {MAX_ITEMS} items, got {}",
            new.items.len()
        )));
    }
    for (i, item) in new.items.iter().enumerate() {
        if item.name.trim().is_empty() || item.name.chars().count() > 200 {
            return Err(AppError::BadRequest(format!(
                "items[{i}].name: expected 1 to 200 characters"
            )));
        }
        if !(1..=10_000).contains(&item.quantity) {
            return Err(AppError::BadRequest(format!(
                "items[{i}].quantity: expected 1 to 10000, got {}",
                item.quantity
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_protocol::orders::OrderItem;

    fn order(items: Vec<(&str, u32)>) -> NewOrder {
        NewOrder {
            items: items
                .into_iter()
                .map(|(n, q)| OrderItem {
                    name: n.into(),
                    quantity: q,
                })
                .collect(),
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert!(validate(&order(vec![("tea", 1)])).is_ok());
        let e = validate(&order(vec![])).unwrap_err().to_string();
        assert!(e.starts_with("items:"), "{e}");
        let e = validate(&order(vec![("tea", 1), (" ", 1)]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("items[1].name"), "{e}");
        let e = validate(&order(vec![("tea", 0)])).unwrap_err().to_string();
        assert!(e.starts_with("items[0].quantity"), "{e}");
        let many = order((0..=MAX_ITEMS).map(|_| ("x", 1)).collect());
        assert!(validate(&many).is_err());
    }
}
