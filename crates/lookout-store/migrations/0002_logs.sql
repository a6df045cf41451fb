-- Where each log file of a [[log]] source stands; written in the same transaction as the counts it produced.
CREATE TABLE log_cursors (
    source     TEXT    NOT NULL,
    file       TEXT    NOT NULL,                  -- 'access' or 'error'
    cursor     TEXT    NOT NULL,                  -- JSON tail::Cursor
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source, file)
);

-- Requests per source and minute, by status class.
CREATE TABLE log_counts (
    source    TEXT    NOT NULL,
    minute    INTEGER NOT NULL,                   -- Unix seconds of the minute's start
    requests  INTEGER NOT NULL DEFAULT 0,
    s1xx      INTEGER NOT NULL DEFAULT 0,
    s2xx      INTEGER NOT NULL DEFAULT 0,
    s3xx      INTEGER NOT NULL DEFAULT 0,
    s4xx      INTEGER NOT NULL DEFAULT 0,
    s5xx      INTEGER NOT NULL DEFAULT 0,
    malformed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, minute)
);
