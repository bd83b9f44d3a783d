-- Retention (--retention, default 30 days): events and metric points older than it are deleted,
-- oldest first, through these indexes.
CREATE INDEX events_by_received ON events (received_at);
CREATE INDEX metric_points_by_time ON metric_points (time);
