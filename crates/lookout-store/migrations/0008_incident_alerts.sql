-- An incident's alerts in their own table (issue 13): an alert joining an incident of thousands writes one row,
-- not the whole incident document again. `incidents.detail` keeps everything else (its `alerts` is empty); the
-- rows of existing incidents are moved here by sqlite/incidents.rs right after this script, in its transaction.
CREATE TABLE incident_alerts (
    incident    TEXT    NOT NULL REFERENCES incidents (id),
    alert_id    TEXT    NOT NULL,
    seq         INTEGER NOT NULL,                 -- the order it joined, from 1
    target      TEXT    NOT NULL,
    fired_at    INTEGER NOT NULL,
    resolved_at INTEGER,
    detail      TEXT    NOT NULL,                 -- JSON IncidentAlert
    PRIMARY KEY (incident, alert_id)
);
CREATE UNIQUE INDEX incident_alerts_order ON incident_alerts (incident, seq);
-- Whether an incident still has a firing alert, without reading all of them.
CREATE INDEX incident_alerts_firing ON incident_alerts (incident) WHERE resolved_at IS NULL;

-- Each message's alert (from its key), so an incident's notifications are one indexed query, not a scan per alert.
ALTER TABLE outbox ADD COLUMN alert_id TEXT;
CREATE INDEX outbox_alert ON outbox (alert_id, id) WHERE alert_id IS NOT NULL;
