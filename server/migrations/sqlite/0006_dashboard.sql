-- The dashboard (server-api.md, "Dashboard" and "Fleet health").

-- Events per issue per hour, counted as events are stored: sparklines and the issue chart read
-- a few rows per issue, however many events it holds.
CREATE TABLE issue_hours (
    project     TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    hour        TEXT    NOT NULL, -- 'YYYY-MM-DDTHH', UTC
    count       INTEGER NOT NULL,
    PRIMARY KEY (project, fingerprint, hour)
);

INSERT INTO issue_hours (project, fingerprint, hour, count)
SELECT project, fingerprint, substr(received_at, 1, 13), COUNT(*)
FROM events GROUP BY project, fingerprint, substr(received_at, 1, 13);

-- Keyset pagination of the issue list: newest first, the fingerprint breaks ties.
DROP INDEX issues_by_last_seen;
CREATE INDEX issues_page ON issues (project, last_seen DESC, fingerprint DESC);

-- One row per runtime instance (`service.instance.id`), its latest facts.
CREATE TABLE instances (
    project       TEXT    NOT NULL,
    instance_id   TEXT    NOT NULL,
    release       TEXT    NOT NULL,
    user_agent    TEXT    NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    last          TEXT    NOT NULL, -- JSON of the latest sample
    PRIMARY KEY (project, instance_id)
);

CREATE INDEX instances_by_last_seen ON instances (project, last_seen_ms);

-- Health samples, one row each (the known resource kinds as columns: no JSON to parse when the
-- fleet route reads a million of them). NULL: the runtime did not report it. Clustered by
-- instance and time (WITHOUT ROWID): the fleet route reads each instance's samples as one run of
-- pages (measured 3x faster than a secondary index over a rowid table at 1.44 million samples).
CREATE TABLE health_samples (
    project          TEXT    NOT NULL,
    instance_id      TEXT    NOT NULL,
    time_ms          INTEGER NOT NULL,
    heap             REAL,
    wasm             REAL,
    uptime           REAL,
    listeners        REAL,
    intervals        REAL,
    timeouts         REAL,
    observers        REAL,
    sockets          REAL,
    peer_connections REAL,
    data_channels    REAL,
    media_tracks     REAL,
    console_patches  REAL,
    services         REAL,
    PRIMARY KEY (project, instance_id, time_ms)
) WITHOUT ROWID;

CREATE INDEX health_by_time ON health_samples (time_ms);

-- The same samples rolled up per instance and 15-minute slot (count, first time, each series'
-- minimum, the minimum of the resource total), kept as samples arrive: the fleet route reads
-- these for windows over 6 hours (96 rows an instance a day instead of 1,440).
CREATE TABLE health_rollups (
    project          TEXT    NOT NULL,
    instance_id      TEXT    NOT NULL,
    slot_ms          INTEGER NOT NULL,
    samples          INTEGER NOT NULL,
    first_ms         INTEGER NOT NULL,
    heap             REAL,
    wasm             REAL,
    listeners        REAL,
    intervals        REAL,
    timeouts         REAL,
    observers        REAL,
    sockets          REAL,
    peer_connections REAL,
    data_channels    REAL,
    media_tracks     REAL,
    console_patches  REAL,
    services         REAL,
    total            REAL,
    PRIMARY KEY (project, instance_id, slot_ms)
) WITHOUT ROWID;

CREATE INDEX health_rollups_by_slot ON health_rollups (slot_ms);

-- Dashboard sign-in sessions. Only hashes are stored: of the cookie's secret, and of the admin
-- token it was issued under (a restart with another token refuses old sessions).
CREATE TABLE dashboard_sessions (
    id_hash    TEXT    PRIMARY KEY,
    token_hash TEXT    NOT NULL,
    expires_ms INTEGER NOT NULL
);

CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_ms);
