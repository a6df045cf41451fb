//! SQL written once for both backends: the outbox's columns and what "pending" means (each backend maps the rows
//! in this column order), and the statements about agents and leases (SQLite takes `$N` parameters too, so
//! `sqlite/agents.rs` and `postgres/agents.rs` differ only in how they run them and whose clock is `now`), and
//! those about shared checks (`sqlite/checks.rs`, `postgres/checks.rs`): location states, forwarded events, check
//! leases; and the diagnosis requests the leader writes for another agent (`sqlite/diagnosis.rs`,
//! `postgres/diagnosis.rs`).
//!
//! SQLite numbers `$N` parameters by where each first appears, not by N: every statement here names its
//! parameters in order (`$1` before `$2`), so both backends bind them by position alike.

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
/// A clean stop: `$1` a last_seen old enough that the name is free at once, `$2` name, `$3` started_at (numbered
/// in order of appearance: SQLite binds `$N` by first appearance, not by N).
pub(crate) const LEAVE: &str = "UPDATE agents SET last_seen = $1 WHERE name = $2 AND started_at = $3";
/// `$7`: the machine's mounts (JSON); `$8`: the store's now less [`AGENT_NAME_HELD_MS`]. The row is another
/// process's while it started at another time and beat since `$8`: then nothing is written (0 rows), and the
/// caller says the name is taken.
pub(crate) const HEARTBEAT: &str =
    "INSERT INTO agents (name, location, version, config_hash, started_at, last_seen, mounts)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (name) DO UPDATE SET location = excluded.location, version = excluded.version,
       config_hash = excluded.config_hash, started_at = excluded.started_at, last_seen = excluded.last_seen,
       mounts = excluded.mounts
     WHERE agents.started_at = excluded.started_at OR agents.last_seen <= $8";
/// How long an agent's name stays its own after its last heartbeat: a lease's time (10 s).
pub(crate) const AGENT_NAME_HELD_MS: i64 = 10_000;
/// `$1` the leader lease's name, `$2` the store's clock.
pub(crate) const AGENTS: &str = "SELECT a.name, a.location, a.version, a.config_hash, a.started_at, a.last_seen,
            l.holder IS NOT NULL, a.mounts
     FROM agents a LEFT JOIN leases l ON l.name = $1 AND l.holder = a.name AND l.expires_at > $2
     ORDER BY a.name";

/// A location's view of a target, `$1`…`$8` in the column order: the later write replaces the earlier one.
pub(crate) const UPSERT_LOCATION: &str =
    "INSERT INTO location_states (target, location, state, at, ok, latency_ms, status, reason)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (target, location) DO UPDATE SET state = excluded.state, at = excluded.at, ok = excluded.ok,
       latency_ms = excluded.latency_ms, status = excluded.status, reason = excluded.reason";
/// In the order both backends' row mappers read them.
pub(crate) const LOCATION_STATES: &str = "SELECT target, location, state, at, ok, latency_ms, status, reason
     FROM location_states ORDER BY target, location";
/// A target no longer configured: its location states and check leases go with its alert state.
pub(crate) const FORGET_LOCATIONS: &str = "DELETE FROM location_states WHERE target = $1";
pub(crate) const FORGET_CHECKS: &str = "DELETE FROM check_leases WHERE target = $1";

pub(crate) const FORWARDED: &str = "SELECT id, agent, body FROM forwarded ORDER BY id LIMIT $1";

/// Check leases: `$1` the new expiry (the store's now + ttl), `$2` the location, `$3` the agent; the rows renewed
/// are the leases it holds.
pub(crate) const RENEW_CHECKS: &str = "UPDATE check_leases SET expires_at = $1 WHERE location = $2 AND holder = $3";
/// `$3` how many of the agent's leases to give up: those of the greatest target names (deterministic, so repeated
/// heartbeats shed the same ones and the rest stay put).
///
/// The cut is one scalar sub-select (the `$3`-th greatest target held), computed once: an `IN (… LIMIT)` semi-join
/// was planned as a nested loop on a table not yet analysed and took 11 s for 6,666 of 10,000 leases
/// (bench/agents.sh), so that leases renewed at its start had run out by its end.
pub(crate) const RELEASE_SURPLUS: &str = "UPDATE check_leases SET holder = '', expires_at = 0
     WHERE location = $1 AND holder = $2 AND target >= (
       SELECT target FROM check_leases WHERE location = $1 AND holder = $2 ORDER BY target DESC LIMIT 1 OFFSET CAST($3 AS BIGINT) - 1)";
/// Gives up all of an agent's leases at a location.
pub(crate) const RELEASE_CHECKS: &str =
    "UPDATE check_leases SET holder = '', expires_at = 0 WHERE location = $1 AND holder = $2";
/// The leases an agent holds at a location, `$3` the store's now at the claim's end plus half a lease: a lease
/// that would run out before the agent's next claim is not counted as held (another may take it meanwhile).
pub(crate) const HELD_CHECKS: &str =
    "SELECT target FROM check_leases WHERE location = $1 AND holder = $2 AND expires_at > $3 ORDER BY target";
/// Every unexpired lease, `$1` the store's now.
pub(crate) const CHECK_HOLDERS: &str = "SELECT target, location, holder FROM check_leases
     WHERE holder <> '' AND expires_at > $1 ORDER BY target, location";

/// The check-lease statements that read the agent's list of targets, which each dialect passes its own way (an
/// array or a JSON text); built once per backend by [`check_sql`].
pub(crate) struct CheckSql {
    /// A free row (holder '', expires_at 0) for each target at the location (`$1`) that has none; `$2` the
    /// targets. A lease held or expired is left as it is. `NOT EXISTS` first: the rows are there nearly always,
    /// and one anti-join finds the few new ones faster than ten thousand conflicting inserts would (`ON CONFLICT`
    /// still settles a race with another agent seeding the same row). In target order whatever the join's plan:
    /// two agents seeding the same new targets at once then wait for each other at worst, never deadlock.
    pub seed: String,
    /// Gives up the agent's leases at the location of targets it no longer knows (`$1` location, `$2` agent,
    /// `$3` targets): it would not probe them, and holding them would keep everyone else from doing so.
    pub drop_unknown: String,
    /// Takes up to `$4` leases for agent `$5` until `$6`: at location `$1`, expired by the store's now `$2` (free
    /// ones have expired at 0), of targets in `$3`, by target name. The choice is MATERIALIZED: made once, before
    /// the update. As a plain `IN (subquery)` the planner may run it again for each row it updates, and with
    /// `SKIP LOCKED` each run skips the rows the previous ones locked — taking more than the limit.
    pub take: String,
}

/// The statements of [`CheckSql`] for a dialect: `targets(n)` is a query of one column `target` listing the targets
/// passed as parameter `$n`; `lock` what the selection of leases to take ends with (PostgreSQL: `FOR UPDATE SKIP
/// LOCKED`, so two agents taking at once neither get the same lease nor wait for each other; SQLite has a single
/// writer and needs nothing).
pub(crate) fn check_sql(targets: fn(u8) -> String, lock: &str) -> CheckSql {
    CheckSql {
        seed: format!(
            "INSERT INTO check_leases (target, location, holder, expires_at)
             SELECT t.target, CAST($1 AS TEXT), '', 0 FROM ({}) AS t
             WHERE NOT EXISTS (SELECT 1 FROM check_leases c WHERE c.location = $1 AND c.target = t.target)
             ORDER BY t.target
             ON CONFLICT (target, location) DO NOTHING",
            targets(2)
        ),
        drop_unknown: format!(
            "UPDATE check_leases SET holder = '', expires_at = 0
             WHERE location = $1 AND holder = $2 AND target NOT IN ({})",
            targets(3)
        ),
        take: format!(
            "WITH picked AS MATERIALIZED (
               SELECT target FROM check_leases
               WHERE location = $1 AND expires_at <= $2 AND target IN ({})
               ORDER BY target LIMIT $4 {lock})
             UPDATE check_leases SET holder = $5, expires_at = $6
             WHERE location = $1 AND expires_at <= $2 AND target IN (SELECT target FROM picked)",
            targets(3)
        ),
    }
}

/// How long a diagnosis request waits for its agent to take it: the leader waits a few seconds for an answer, so
/// a request still untaken after a minute (its agent was down) is one nobody wants answered any more.
pub(crate) const DIAGNOSIS_TAKE_WITHIN_MS: i64 = 60_000;
/// How long a diagnosis request is kept at all: far longer than anyone waits for one, and the table stays small.
pub(crate) const DIAGNOSIS_KEEP_MS: i64 = 3_600_000;

/// Deletes the diagnosis requests written before `$1` (the store's now − [`DIAGNOSIS_KEEP_MS`]).
pub(crate) const PRUNE_DIAGNOSES: &str = "DELETE FROM diagnosis_requests WHERE requested_at < $1";
/// `$4` the store's now.
pub(crate) const REQUEST_DIAGNOSIS: &str =
    "INSERT INTO diagnosis_requests (agent, target, since, requested_at) VALUES ($1, $2, $3, $4) RETURNING id";
/// `$2` the store's now.
pub(crate) const ANSWER_DIAGNOSIS: &str = "UPDATE diagnosis_requests SET answer = $1, answered_at = $2 WHERE id = $3";
pub(crate) const DIAGNOSIS_ANSWER: &str = "SELECT answer FROM diagnosis_requests WHERE id = $1";

/// Takes agent `$2`'s requests not yet taken and written since `$3` (the store's now −
/// [`DIAGNOSIS_TAKE_WITHIN_MS`]), marking them taken at `$1`, in one statement; `lock` ends the selection
/// (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so two polls at once neither get the same request nor wait for each
/// other; SQLite has a single writer and needs nothing). `RETURNING` gives no order: the caller sorts by id.
pub(crate) fn take_diagnoses(lock: &str) -> String {
    format!(
        "UPDATE diagnosis_requests SET taken_at = $1
         WHERE taken_at IS NULL AND id IN (
           SELECT id FROM diagnosis_requests WHERE agent = $2 AND taken_at IS NULL AND requested_at >= $3
           ORDER BY id {lock})
         RETURNING id, target, since"
    )
}
