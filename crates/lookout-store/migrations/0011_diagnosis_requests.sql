-- Diagnoses the leader asks of the agent on whose machine a target's processes and error log are (the same schema
-- as PostgreSQL's 0005_diagnosis_requests.sql). AUTOINCREMENT: an id is never reused after its row is deleted (as
-- with PostgreSQL's sequence), so a leader waiting on an id never reads another request's answer.
-- Runtime state: not copied; requests older than an hour are deleted as new ones are written.
CREATE TABLE diagnosis_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    agent        TEXT    NOT NULL,         -- who is asked
    target       TEXT    NOT NULL,
    since        INTEGER,                  -- when the target began failing, if known
    requested_at INTEGER NOT NULL,         -- by the store's clock
    taken_at     INTEGER,                  -- when the agent took it (by the store's clock)
    answered_at  INTEGER,
    answer       TEXT                      -- JSON, opaque to the store ("null": nothing found)
);
-- An agent's requests not yet taken, looked for every half second.
CREATE INDEX diagnosis_requests_agent ON diagnosis_requests (agent, taken_at);
