-- Readings of status pages and of the host (issue 17), for charts: raw (level 0, n = 1) for `raw_retention`, then
-- per minute (level 1) until `retention`, then per hour (level 2) for the hourly retention. Each moment is in one
-- level only (the roll-up moves rows up), so a query adds up whatever levels its range holds.
CREATE TABLE readings (
    target INTEGER NOT NULL,   -- targets.id
    name   TEXT    NOT NULL,   -- BUSY_WORKERS, FS_USED_RATIO, ...
    level  INTEGER NOT NULL,
    start  INTEGER NOT NULL,   -- ms since epoch, UTC; a roll-up's is aligned to its minute or hour
    n      INTEGER NOT NULL,
    sum    REAL    NOT NULL,
    min    REAL    NOT NULL,
    max    REAL    NOT NULL,
    PRIMARY KEY (target, name, level, start)
) WITHOUT ROWID;
