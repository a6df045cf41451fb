-- Probe results on PostgreSQL: SQLite's compact form (migrations/0007_compact_results.sql, issue 13) with
-- PostgreSQL's types. Raw rows for the short window, their successes packed into 10-minute blocks after an hour,
-- then 5-minute and per-hour aggregates; failures and the first success after them stay raw for the long
-- retention. The blocks' and histograms' bytes are the ones SQLite keeps (src/codec.rs), so `lookout store copy`
-- moves them as they are. Reads and the roll-up are in src/postgres/results.rs.

-- Each target's name once; results carry its integer id. Ids are assigned by each store on its own, so a copy
-- between stores maps them by name.
CREATE TABLE targets (
    id   BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
);

-- Raw results; a target's range is one range of the primary key (no second index: every read names a target).
-- No foreign key to targets: the id is looked up in the same transaction that writes the row, and a check per
-- row would cost the hot path of thousands of results per commit.
CREATE TABLE results (
    target            BIGINT   NOT NULL,          -- targets.id
    at                BIGINT   NOT NULL,          -- ms since epoch, UTC
    seq               INTEGER  NOT NULL,          -- 0 unless a target has two results in one millisecond
    ok                BOOLEAN  NOT NULL,
    status            INTEGER,
    latency_us        BIGINT   NOT NULL,          -- microseconds
    rolled            BOOLEAN  NOT NULL DEFAULT FALSE, -- counted in result_rollups, kept raw (a failure or recovery)
    timings           BYTEA,                      -- varints (src/codec.rs), NULL when only the total is known
    error             TEXT,
    failed_conditions TEXT,                       -- JSON array of strings, NULL when none failed
    body_excerpt      TEXT,
    PRIMARY KEY (target, at, seq)
);

-- Raw successes older than an hour, packed per target and 10 minutes, each result a few varints
-- (src/codec.rs, `encode_block`). Failures, the first success after them and anything with text (error, failed
-- conditions, body) stay rows.
CREATE TABLE result_blocks (
    target BIGINT  NOT NULL,                      -- targets.id
    start  BIGINT  NOT NULL,                      -- ms since epoch, UTC, a multiple of 10 minutes
    n      INTEGER NOT NULL,                      -- results in it (all passed)
    data   BYTEA   NOT NULL,
    PRIMARY KEY (target, start)
);

-- 5-minute (level 0) and per-hour (level 1) aggregates of rolled-up results: what uptime, charts and
-- percentiles read once the raw rows are gone. The histogram has fixed log-spaced buckets (2^(1/4) apart from
-- 100 µs), so aggregates merge and percentiles are estimated across any roll-ups.
CREATE TABLE result_rollups (
    target         BIGINT   NOT NULL,             -- targets.id
    level          SMALLINT NOT NULL,             -- 0: 5 minutes, 1: hour
    start          BIGINT   NOT NULL,             -- ms since epoch, UTC, aligned to the level
    total          BIGINT   NOT NULL,
    failures       BIGINT   NOT NULL,
    latency_sum_us BIGINT   NOT NULL,
    latency_min_us BIGINT   NOT NULL,
    latency_max_us BIGINT   NOT NULL,
    histogram      BYTEA    NOT NULL,             -- (bucket, count) varint pairs, buckets ascending
    PRIMARY KEY (target, level, start)
);
