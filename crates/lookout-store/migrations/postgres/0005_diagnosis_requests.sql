-- Diagnoses the leader asks of the agent on whose machine a target's processes and error log are (the same schema
-- as SQLite's 0011_diagnosis_requests.sql). Runtime state: not copied; requests older than an hour are deleted as
-- new ones are written.
CREATE TABLE diagnosis_requests (
    id           BIGSERIAL PRIMARY KEY,
    agent        TEXT      NOT NULL,       -- who is asked
    target       TEXT      NOT NULL,
    since        BIGINT,                   -- when the target began failing, if known
    requested_at BIGINT    NOT NULL,       -- by the store's clock
    taken_at     BIGINT,                   -- when the agent took it (by the store's clock)
    answered_at  BIGINT,
    answer       TEXT                      -- JSON, opaque to the store ('null': nothing found)
);
-- An agent's requests not yet taken, looked for every half second.
CREATE INDEX diagnosis_requests_agent ON diagnosis_requests (agent, taken_at);
