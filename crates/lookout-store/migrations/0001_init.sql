-- Probe results, kept for the retention period.
CREATE TABLE results (
    id                INTEGER PRIMARY KEY,
    target            TEXT    NOT NULL,
    at                INTEGER NOT NULL,           -- ms since epoch, UTC
    ok                INTEGER NOT NULL,
    status            INTEGER,
    latency_ms        REAL    NOT NULL,
    error             TEXT,
    failed_conditions TEXT    NOT NULL,           -- JSON array of strings
    timings           TEXT    NOT NULL,           -- JSON object
    body_excerpt      TEXT
);
CREATE INDEX results_target_at ON results (target, at);
CREATE INDEX results_at ON results (at);

-- The engine's memory of each target; a restart resumes from here.
CREATE TABLE alert_state (
    target     TEXT PRIMARY KEY,
    state      TEXT    NOT NULL,                  -- JSON AlertState
    updated_at INTEGER NOT NULL
);

-- Every transition the engine emitted: the raw material of incident timelines.
CREATE TABLE transitions (
    id       INTEGER PRIMARY KEY,
    target   TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    alert_id TEXT,
    detail   TEXT    NOT NULL                     -- JSON Transition
);
CREATE INDEX transitions_target_at ON transitions (target, at);

-- Notifications are written here in the same transaction as the transition that caused them, then sent.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    channel         TEXT    NOT NULL,
    key             TEXT    NOT NULL,             -- idempotency key, sent with the message
    payload         TEXT    NOT NULL,             -- JSON body
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT,
    UNIQUE (channel, key)
);
CREATE INDEX outbox_pending ON outbox (channel, id) WHERE delivered_at IS NULL;
