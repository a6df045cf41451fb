-- Several agents sharing checks (the same schema as SQLite's 0010_checks.sql).

-- Each location's view of a target: its alert state there (JSON text, like alert_state) and its latest check.
CREATE TABLE location_states (
    target     TEXT             NOT NULL,
    location   TEXT             NOT NULL,
    state      TEXT             NOT NULL,
    at         BIGINT           NOT NULL,
    ok         BOOLEAN          NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    status     INTEGER,
    reason     TEXT,
    PRIMARY KEY (target, location)
);

-- Events agents handed to the leader, until the record that handles them deletes them. Runtime state: not copied.
CREATE TABLE forwarded (
    id    BIGSERIAL PRIMARY KEY,
    agent TEXT      NOT NULL,
    at    BIGINT    NOT NULL,                  -- by the store's clock
    body  TEXT      NOT NULL
);

-- Which agent probes a target at a location: holder '' and expires_at 0 when free. Runtime state: not copied.
-- Every heartbeat renews all of an agent's leases: fillfactor 50 leaves room in each page, so a renewal (of
-- expires_at, in no index) is a HOT update in place, not a new row version in every index: for 5,000 leases a few
-- milliseconds instead of tens.
CREATE TABLE check_leases (
    target     TEXT   NOT NULL,
    location   TEXT   NOT NULL,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,                -- by the store's clock
    PRIMARY KEY (target, location)
) WITH (fillfactor = 50);
-- An agent's own leases, renewed every heartbeat (a location's leases by target: the primary key).
CREATE INDEX check_leases_holder ON check_leases (location, holder, target);
