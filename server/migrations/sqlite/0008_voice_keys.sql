-- Single-use voice keys shared by every instance on this database (PostgreSQL). One SQLite
-- server keeps its keys in memory; the table is here so both engines have the same schema.
CREATE TABLE voice_keys (
    key_hash   TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL -- milliseconds since the Unix epoch
);
CREATE INDEX voice_keys_expires_at ON voice_keys (expires_at);
