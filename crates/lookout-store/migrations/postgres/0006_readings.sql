-- Readings of status pages and of the host: as SQLite's migration 0012 (raw, per minute, per hour).
CREATE TABLE readings (
    target BIGINT           NOT NULL,
    name   TEXT             NOT NULL,
    level  SMALLINT         NOT NULL,
    start  BIGINT           NOT NULL,
    n      BIGINT           NOT NULL,
    sum    DOUBLE PRECISION NOT NULL,
    min    DOUBLE PRECISION NOT NULL,
    max    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (target, name, level, start)
);
