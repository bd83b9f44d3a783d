-- Single-use voice keys shared by every instance on this database (`POST /voice/session` on one,
-- `POST /voice/realtime` on any). Only a SHA-256 hash of each key is kept.
CREATE TABLE voice_keys (
    key_hash   TEXT   PRIMARY KEY,
    expires_at BIGINT NOT NULL -- milliseconds since the Unix epoch
);
CREATE INDEX voice_keys_expires_at ON voice_keys (expires_at);
