//! SQL written once for both backends: the outbox's columns and what "pending" means (each backend maps the rows
//! in this column order), and the statements about agents and leases (SQLite takes `$N` parameters too, so
//! `sqlite/agents.rs` and `postgres/agents.rs` differ only in how they run them and whose clock is `now`).

/// The outbox columns every message read selects, in the order both backends' row mappers read them.
pub(crate) const MESSAGE_COLUMNS: &str = "id, channel, key, payload, created_at, attempts, next_attempt_at, delivered_at, last_error, \
     abandoned_at, group_key, suppressed_at";

/// A message still to send.
pub(crate) const PENDING: &str = "delivered_at IS NULL AND abandoned_at IS NULL AND suppressed_at IS NULL";

/// Both backends' statements, with the store's clock as `?3`/`$3` (SQLite: this process's; PostgreSQL: the
/// server's). A lease is granted when free, expired or already the holder's; `since` keeps when it changed hands.
pub(crate) const TAKE_LEASE: &str = "INSERT INTO leases AS l (name, holder, expires_at, since) VALUES ($1, $2, CAST($3 AS BIGINT) + CAST($4 AS BIGINT), CAST($3 AS BIGINT))
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
       since = CASE WHEN l.holder = excluded.holder THEN l.since ELSE excluded.since END
     WHERE l.holder = excluded.holder OR l.expires_at <= excluded.since";
pub(crate) const LEASE: &str = "SELECT holder, expires_at FROM leases WHERE name = $1";
pub(crate) const RELEASE_LEASE: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";
pub(crate) const HEARTBEAT: &str = "INSERT INTO agents (name, location, version, config_hash, started_at, last_seen)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (name) DO UPDATE SET location = excluded.location, version = excluded.version,
       config_hash = excluded.config_hash, started_at = excluded.started_at, last_seen = excluded.last_seen";
/// `$1` the leader lease's name, `$2` the store's clock.
pub(crate) const AGENTS: &str = "SELECT a.name, a.location, a.version, a.config_hash, a.started_at, a.last_seen,
            l.holder IS NOT NULL
     FROM agents a LEFT JOIN leases l ON l.name = $1 AND l.holder = a.name AND l.expires_at > $2
     ORDER BY a.name";
