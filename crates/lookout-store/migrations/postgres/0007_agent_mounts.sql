-- Each agent's mounted data filesystems (a JSON array of paths): as SQLite's migration 0013.
ALTER TABLE agents ADD COLUMN mounts TEXT NOT NULL DEFAULT '[]';
