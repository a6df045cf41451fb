-- Several agents sharing checks (the same schema as PostgreSQL's 0004_checks.sql; SQLite is a cluster of one, but
-- both backends answer alike and `lookout store copy` moves location_states between them).

-- Each location's view of a target: its alert state there (JSON, like alert_state) and its latest check.
CREATE TABLE location_states (
    target     TEXT    NOT NULL,
    location   TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    ok         INTEGER NOT NULL,
    latency_ms REAL    NOT NULL,
    status     INTEGER,
    reason     TEXT,
    PRIMARY KEY (target, location)
);

-- Events agents handed to the leader, until the record that handles them deletes them. AUTOINCREMENT: an id is
-- never reused after its row is deleted (as with PostgreSQL's sequence), so ids order events for good.
-- Runtime state: not copied.
CREATE TABLE forwarded (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT    NOT NULL,
    at    INTEGER NOT NULL,                    -- by the store's clock
    body  TEXT    NOT NULL
);

-- Which agent probes a target at a location: holder '' and expires_at 0 when free. Runtime state: not copied.
CREATE TABLE check_leases (
    target     TEXT    NOT NULL,
    location   TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,               -- by the store's clock
    PRIMARY KEY (target, location)
);
-- An agent's own leases, renewed every heartbeat (a location's leases by target: the primary key).
CREATE INDEX check_leases_holder ON check_leases (location, holder, target);
