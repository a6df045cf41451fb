-- Agents sharing this store and the leases they hold (the leader's among them). Runtime state, not history:
-- `lookout store copy` leaves both behind.
CREATE TABLE agents (
    name        TEXT    PRIMARY KEY,
    location    TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    config_hash TEXT    NOT NULL,
    started_at  BIGINT  NOT NULL,
    last_seen   BIGINT  NOT NULL               -- by the store's clock
);

CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,            -- 'leader', …
    holder     TEXT    NOT NULL,               -- an agent's name
    expires_at BIGINT  NOT NULL,               -- by the store's clock
    since      BIGINT  NOT NULL                -- when this holder took it
);
