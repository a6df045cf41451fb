-- A message a channel refused for good (HTTP 4xx, SMTP 5xx) is abandoned: kept, with why, and never retried.
ALTER TABLE outbox ADD COLUMN abandoned_at INTEGER;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (channel, id) WHERE delivered_at IS NULL AND abandoned_at IS NULL;
