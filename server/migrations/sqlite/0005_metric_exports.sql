-- Export ids already stored (the runtime's `vigil.export_id` resource attribute): a retried
-- export is acknowledged without storing its points twice. Rows older than 7 days are pruned.
CREATE TABLE metric_exports (
    project   TEXT NOT NULL,
    export_id TEXT NOT NULL,
    received  TEXT NOT NULL,  -- RFC 3339, UTC
    PRIMARY KEY (project, export_id)
);

CREATE INDEX metric_exports_by_received ON metric_exports (received);
