-- Error events (Sentry envelope ingestion) and the issues they group into.
CREATE TABLE events (
    project     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    level       TEXT NOT NULL,
    title       TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    payload     TEXT NOT NULL,
    PRIMARY KEY (project, event_id)
);

CREATE TABLE issues (
    project       TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    title         TEXT    NOT NULL,
    level         TEXT    NOT NULL,
    count         INTEGER NOT NULL,
    first_seen    TEXT    NOT NULL,
    last_seen     TEXT    NOT NULL,
    last_event_id TEXT    NOT NULL,
    PRIMARY KEY (project, fingerprint)
);

CREATE INDEX issues_by_last_seen ON issues (project, last_seen DESC);
