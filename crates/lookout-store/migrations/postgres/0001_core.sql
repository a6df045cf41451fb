-- Lookout's shared store on PostgreSQL: the same record as SQLite's (migrations/0001–0008), written as one
-- schema. Times are milliseconds since the Unix epoch (UTC) in BIGINT, as in SQLite, so both backends read and
-- copy the same numbers; documents the store does not look into (alert state, transitions, timeline entries)
-- are JSON text, byte for byte what SQLite keeps.

CREATE TABLE alert_state (
    target     TEXT    PRIMARY KEY,
    state      TEXT    NOT NULL,                  -- JSON AlertState
    updated_at BIGINT  NOT NULL
);

CREATE TABLE transitions (
    id       BIGSERIAL PRIMARY KEY,
    target   TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    at       BIGINT  NOT NULL,
    alert_id TEXT,
    detail   TEXT    NOT NULL                     -- JSON Transition
);
CREATE INDEX transitions_target_at ON transitions (target, at);

CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    channel         TEXT    NOT NULL,
    key             TEXT    NOT NULL,             -- idempotency key, sent with the message
    payload         TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT,
    abandoned_at    BIGINT,
    group_key       TEXT    NOT NULL DEFAULT '',
    suppressed_at   BIGINT,
    alert_id        TEXT,
    UNIQUE (channel, key)
);
CREATE INDEX outbox_pending ON outbox (channel, next_attempt_at, id)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL AND suppressed_at IS NULL;
CREATE INDEX outbox_group ON outbox (channel, group_key)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL AND suppressed_at IS NULL;
CREATE INDEX outbox_alert ON outbox (alert_id, id) WHERE alert_id IS NOT NULL;

CREATE TABLE silences (
    id         BIGSERIAL PRIMARY KEY,
    matchers   TEXT    NOT NULL,                  -- JSON array of matcher strings
    starts_at  BIGINT  NOT NULL,
    ends_at    BIGINT  NOT NULL,
    created_by TEXT    NOT NULL,
    comment    TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expired_at BIGINT
);

CREATE TABLE log_cursors (
    source     TEXT    NOT NULL,
    file       TEXT    NOT NULL,                  -- 'access' or 'error'
    cursor     TEXT    NOT NULL,                  -- JSON tail::Cursor
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (source, file)
);

CREATE TABLE log_counts (
    source    TEXT    NOT NULL,
    minute    BIGINT  NOT NULL,                   -- Unix seconds of the minute's start
    requests  BIGINT  NOT NULL DEFAULT 0,
    s1xx      BIGINT  NOT NULL DEFAULT 0,
    s2xx      BIGINT  NOT NULL DEFAULT 0,
    s3xx      BIGINT  NOT NULL DEFAULT 0,
    s4xx      BIGINT  NOT NULL DEFAULT 0,
    s5xx      BIGINT  NOT NULL DEFAULT 0,
    malformed BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (source, minute)
);

CREATE TABLE log_window (
    id     BIGSERIAL PRIMARY KEY,
    source TEXT    NOT NULL,
    sec    BIGINT  NOT NULL,
    entry  TEXT    NOT NULL
);
CREATE INDEX log_window_by_source ON log_window (source, sec);

CREATE TABLE incidents (
    id          TEXT    PRIMARY KEY,              -- e.g. 2026-11-25-site-1
    grp         TEXT    NOT NULL,
    day         TEXT    NOT NULL,                 -- UTC day it opened, YYYY-MM-DD
    seq         INTEGER NOT NULL,                 -- n-th incident of the group that day
    status      TEXT    NOT NULL,                 -- open | resolved
    live        BOOLEAN NOT NULL,                 -- open, or an alert of it still fires
    opened_at   BIGINT  NOT NULL,
    resolved_at BIGINT,
    revision    BIGINT  NOT NULL,                 -- optimistic concurrency: writers say which revision they changed
    detail      TEXT    NOT NULL,                 -- JSON incident head (alerts in incident_alerts)
    UNIQUE (grp, day, seq)
);
CREATE UNIQUE INDEX incidents_one_open_per_group ON incidents (grp) WHERE status = 'open';
CREATE INDEX incidents_opened ON incidents (opened_at);
CREATE INDEX incidents_live ON incidents (opened_at) WHERE live;

CREATE TABLE incident_alerts (
    incident    TEXT    NOT NULL REFERENCES incidents (id),
    alert_id    TEXT    NOT NULL,
    seq         INTEGER NOT NULL,                 -- the order it joined, from 1
    target      TEXT    NOT NULL,
    fired_at    BIGINT  NOT NULL,
    resolved_at BIGINT,
    detail      TEXT    NOT NULL,                 -- JSON IncidentAlert
    PRIMARY KEY (incident, alert_id),
    UNIQUE (incident, seq)
);
CREATE INDEX incident_alerts_firing ON incident_alerts (incident) WHERE resolved_at IS NULL;

CREATE TABLE incident_timeline (
    id       BIGSERIAL PRIMARY KEY,
    incident TEXT    NOT NULL REFERENCES incidents (id),
    at       BIGINT  NOT NULL,
    kind     TEXT    NOT NULL,
    detail   TEXT    NOT NULL                     -- JSON TimelineEntry
);
CREATE INDEX incident_timeline_incident ON incident_timeline (incident, at);
