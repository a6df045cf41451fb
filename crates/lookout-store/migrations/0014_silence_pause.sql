-- A target paused from the dashboard (issue 18) is a silence on that target that also stops its probes: the same
-- lifecycle (who, when, why, expired by hand on resume) and the same hold on its messages, marked as a pause.
ALTER TABLE silences ADD COLUMN pause INTEGER NOT NULL DEFAULT 0;
