-- The demo orders feed behind POST /api/orders and the `orders` WebSocket topic.
CREATE TABLE orders (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    items      TEXT    NOT NULL, -- JSON array of { name, quantity }
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
