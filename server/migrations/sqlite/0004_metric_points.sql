-- OTLP metric points (POST /v1/metrics): web vitals, timings, custom gauges.
CREATE TABLE metric_points (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project    TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    unit       TEXT    NOT NULL,
    value      REAL    NOT NULL,
    time       TEXT    NOT NULL,  -- RFC 3339, UTC
    attributes TEXT    NOT NULL   -- JSON object of strings
);

CREATE INDEX metric_points_by_name_time ON metric_points (project, name, time);
