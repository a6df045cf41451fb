-- Grouping: messages of one group on one channel are sent together; a message waits until next_attempt_at
-- (its group_wait) before it is first tried.
ALTER TABLE outbox ADD COLUMN group_key TEXT NOT NULL DEFAULT '';
-- Recorded but deliberately not sent (silence, maintenance, a parent that is down, a flap): when, and why in
-- last_error.
ALTER TABLE outbox ADD COLUMN suppressed_at INTEGER;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (channel, next_attempt_at, id)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL AND suppressed_at IS NULL;
CREATE INDEX outbox_group ON outbox (channel, group_key)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL AND suppressed_at IS NULL;

-- Silences: alerts matching every matcher between starts_at and ends_at are recorded, not sent.
CREATE TABLE silences (
    id         INTEGER PRIMARY KEY,
    matchers   TEXT    NOT NULL,                  -- JSON array of matcher strings
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    comment    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expired_at INTEGER                            -- set when expired by hand before ends_at
);
