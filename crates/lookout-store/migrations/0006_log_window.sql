-- What each log batch added to its source's sliding window (JSON lookout_engine::WindowEntry), at the engine's
-- second: written with the batch's counts and cursors, read back at start so a restart keeps the window (a firing
-- log alert neither resolves nor re-opens). Entries that slid out of the window are deleted as new ones come.
CREATE TABLE log_window (
    id     INTEGER PRIMARY KEY,
    source TEXT    NOT NULL,
    sec    INTEGER NOT NULL,
    entry  TEXT    NOT NULL
);
CREATE INDEX log_window_by_source ON log_window (source, sec);
