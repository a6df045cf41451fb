-- Incidents: the alerts of one group from the first firing to the last resolve. `detail` is the JSON Incident;
-- the columns beside it are what queries and constraints need.
CREATE TABLE incidents (
    id          TEXT    PRIMARY KEY,              -- e.g. 2026-11-25-site-1
    grp         TEXT    NOT NULL,
    day         TEXT    NOT NULL,                 -- UTC day it opened, YYYY-MM-DD
    seq         INTEGER NOT NULL,                 -- n-th incident of the group that day
    status      TEXT    NOT NULL,                 -- open | resolved
    live        INTEGER NOT NULL,                 -- open, or an alert of it still fires
    opened_at   INTEGER NOT NULL,
    resolved_at INTEGER,
    revision    INTEGER NOT NULL,                 -- optimistic concurrency: writers say which revision they changed
    detail      TEXT    NOT NULL,
    UNIQUE (grp, day, seq)
);
-- Two writers (lookout run and the CLI, or two agents) can never open a second incident for a group.
CREATE UNIQUE INDEX incidents_one_open_per_group ON incidents (grp) WHERE status = 'open';
CREATE INDEX incidents_opened ON incidents (opened_at);

CREATE TABLE incident_timeline (
    id       INTEGER PRIMARY KEY,
    incident TEXT    NOT NULL REFERENCES incidents (id),
    at       INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    detail   TEXT    NOT NULL                     -- JSON TimelineEntry
);
CREATE INDEX incident_timeline_incident ON incident_timeline (incident, at);
