-- Agents sharing this store and the leases they hold (the leader's among them). Runtime state, not history:
-- `lookout store copy` leaves both behind.
CREATE TABLE agents (
    name        TEXT    PRIMARY KEY,
    location    TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    config_hash TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL               -- by the store's clock
);

CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,            -- 'leader', …
    holder     TEXT    NOT NULL,               -- an agent's name
    expires_at INTEGER NOT NULL,               -- by the store's clock
    since      INTEGER NOT NULL                -- when this holder took it
);
