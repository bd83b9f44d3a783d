-- The dashboard (server-api.md, "Dashboard" and "Fleet health").

-- Events per issue per hour, counted as events are stored: sparklines and the issue chart read
-- a few rows per issue, however many events it holds.
CREATE TABLE issue_hours (
    project     TEXT   NOT NULL,
    fingerprint TEXT   NOT NULL,
    hour        TEXT   COLLATE "C" NOT NULL, -- 'YYYY-MM-DDTHH', UTC
    count       BIGINT NOT NULL,
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
    project       TEXT   NOT NULL,
    instance_id   TEXT   NOT NULL,
    release       TEXT   NOT NULL,
    user_agent    TEXT   NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    last          TEXT   NOT NULL, -- JSON of the latest sample
    PRIMARY KEY (project, instance_id)
);

CREATE INDEX instances_by_last_seen ON instances (project, last_seen_ms);

-- Health samples, one row each (the known resource kinds as columns). NULL: the runtime did
-- not report it. SQLite clusters this table by its key (WITHOUT ROWID); PostgreSQL has no
-- clustered tables, so the fleet route reads each instance's samples through the primary key.
CREATE TABLE health_samples (
    project          TEXT   NOT NULL,
    instance_id      TEXT   COLLATE "C" NOT NULL,
    time_ms          BIGINT NOT NULL,
    heap             DOUBLE PRECISION,
    wasm             DOUBLE PRECISION,
    uptime           DOUBLE PRECISION,
    listeners        DOUBLE PRECISION,
    intervals        DOUBLE PRECISION,
    timeouts         DOUBLE PRECISION,
    observers        DOUBLE PRECISION,
    sockets          DOUBLE PRECISION,
    peer_connections DOUBLE PRECISION,
    data_channels    DOUBLE PRECISION,
    media_tracks     DOUBLE PRECISION,
    console_patches  DOUBLE PRECISION,
    services         DOUBLE PRECISION,
    PRIMARY KEY (project, instance_id, time_ms)
);

CREATE INDEX health_by_time ON health_samples (time_ms);

-- The same samples rolled up per instance and 15-minute slot (count, first time, each series'
-- minimum, the minimum of the resource total), kept as samples arrive: the fleet route reads
-- these for windows over 6 hours (96 rows an instance a day instead of 1,440).
CREATE TABLE health_rollups (
    project          TEXT   NOT NULL,
    instance_id      TEXT   COLLATE "C" NOT NULL,
    slot_ms          BIGINT NOT NULL,
    samples          BIGINT NOT NULL,
    first_ms         BIGINT NOT NULL,
    heap             DOUBLE PRECISION,
    wasm             DOUBLE PRECISION,
    listeners        DOUBLE PRECISION,
    intervals        DOUBLE PRECISION,
    timeouts         DOUBLE PRECISION,
    observers        DOUBLE PRECISION,
    sockets          DOUBLE PRECISION,
    peer_connections DOUBLE PRECISION,
    data_channels    DOUBLE PRECISION,
    media_tracks     DOUBLE PRECISION,
    console_patches  DOUBLE PRECISION,
    services         DOUBLE PRECISION,
    total            DOUBLE PRECISION,
    PRIMARY KEY (project, instance_id, slot_ms)
);

CREATE INDEX health_rollups_by_slot ON health_rollups (slot_ms);

-- Dashboard sign-in sessions. Only hashes are stored: of the cookie's secret, and of the admin
-- token it was issued under (a restart with another token refuses old sessions).
CREATE TABLE dashboard_sessions (
    id_hash    TEXT   PRIMARY KEY,
    token_hash TEXT   NOT NULL,
    expires_ms BIGINT NOT NULL
);

CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_ms);
