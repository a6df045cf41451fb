-- A store that stays small (issue 13): probe results in a compact raw form for a short window, then rolled up
-- into 5-minute and per-hour aggregates; failures (and the first success after them) stay raw for the long
-- retention. The arithmetic is in ARCHITECTURE.md, "Storage budget".

-- Each target's name once; results carry its integer id (1-2 bytes instead of the name in every row).
CREATE TABLE targets (
    id   INTEGER PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
);
INSERT INTO targets (name) SELECT DISTINCT target FROM results ORDER BY target;

-- Raw results, clustered by (target, at): no rowid, no second index; a target's range is one B-tree range.
-- Columns that are usually empty come last and are NULL then (a NULL costs one header byte).
CREATE TABLE results_compact (
    target            INTEGER NOT NULL,           -- targets.id
    at                INTEGER NOT NULL,           -- ms since epoch, UTC
    seq               INTEGER NOT NULL,           -- 0 unless a target has two results in one millisecond
    ok                INTEGER NOT NULL,
    status            INTEGER,
    latency_us        INTEGER NOT NULL,           -- microseconds
    rolled            INTEGER NOT NULL DEFAULT 0, -- 1: counted in result_rollups, kept raw (a failure or recovery)
    timings           BLOB,                       -- varints (sqlite/results.rs), NULL when only the total is known
    error             TEXT,
    failed_conditions TEXT,                       -- JSON array of strings, NULL when none failed
    body_excerpt      TEXT,
    PRIMARY KEY (target, at, seq)
) WITHOUT ROWID;

INSERT INTO results_compact
    (target, at, seq, ok, status, latency_us, timings, error, failed_conditions, body_excerpt)
SELECT t.id, r.at, ROW_NUMBER() OVER (PARTITION BY r.target, r.at ORDER BY r.id) - 1, r.ok, r.status,
       CAST(round(r.latency_ms * 1000) AS INTEGER), r.timings, r.error, NULLIF(r.failed_conditions, '[]'),
       r.body_excerpt
FROM results r JOIN targets t ON t.name = r.target;

DROP TABLE results;
ALTER TABLE results_compact RENAME TO results;

-- Raw successes older than an hour, packed per target and 10 minutes: one row per 60 results at a 10 s interval
-- (under the ~1 KB a row keeps in its page), each result a few varints (sqlite/results.rs, `Block`). Failures, the first success after them and anything with
-- text (error, failed conditions, body) stay rows.
CREATE TABLE result_blocks (
    target INTEGER NOT NULL,                      -- targets.id
    start  INTEGER NOT NULL,                      -- ms since epoch, UTC, a multiple of 10 minutes
    n      INTEGER NOT NULL,                      -- results in it (all passed)
    data   BLOB    NOT NULL,
    PRIMARY KEY (target, start)
) WITHOUT ROWID;

-- 5-minute (level 0) and per-hour (level 1) aggregates of rolled-up results: what uptime, charts and
-- percentiles read once the raw rows are gone. The histogram has fixed log-spaced buckets (2^(1/4) apart from
-- 100 µs), so aggregates merge and percentiles are estimated across any roll-ups.
CREATE TABLE result_rollups (
    target         INTEGER NOT NULL,              -- targets.id
    level          INTEGER NOT NULL,              -- 0: 5 minutes, 1: hour
    start          INTEGER NOT NULL,              -- ms since epoch, UTC, aligned to the level
    total          INTEGER NOT NULL,
    failures       INTEGER NOT NULL,
    latency_sum_us INTEGER NOT NULL,
    latency_min_us INTEGER NOT NULL,
    latency_max_us INTEGER NOT NULL,
    histogram      BLOB    NOT NULL,              -- (bucket, count) varint pairs, buckets ascending
    PRIMARY KEY (target, level, start)
) WITHOUT ROWID;
