//! The demo orders feed: validate, store, broadcast `order:created` to the `orders` topic.

use vigil_protocol::orders::{self, NewOrder, Order};

use super::Hub;
use crate::error::AppError;
use crate::store::Store;

/// The most items one order may hold.
pub const MAX_ITEMS: usize = 100;

/// Stores `new` and tells every session in the `orders` topic. The broadcast happens only after
/// the order is committed.
pub async fn create(store: &Store, hub: &Hub, new: NewOrder) -> Result<Order, AppError> {
    validate(&new)?;
    let order = store.insert_order(&new.items).await?;
    hub.broadcast(orders::TOPIC, orders::CREATED, &order);
    Ok(order)
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
