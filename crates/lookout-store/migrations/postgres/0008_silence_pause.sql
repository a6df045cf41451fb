-- A paused target's silence: as SQLite's migration 0014.
ALTER TABLE silences ADD COLUMN pause BOOLEAN NOT NULL DEFAULT false;
