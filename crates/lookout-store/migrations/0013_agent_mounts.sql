-- What each agent's machine has to watch (issue 17, several agents): its mounted data filesystems as a JSON array
-- of paths, so that whichever agent leads can judge every machine's disks and not only its own.
ALTER TABLE agents ADD COLUMN mounts TEXT NOT NULL DEFAULT '[]';
