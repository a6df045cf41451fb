//! How big the store grows (issue 13, "a store that stays small"): writes a simulated stretch of `TARGETS` targets
//! probed every `INTERVAL_S` seconds (~1 % failing) through the `Store` trait, runs the roll-up, and measures the
//! SQLite file's pages in use after each step. Prints bytes per result for each form and the extrapolated size
//! of 90 days against the 5 GB goal, next to the raw row of the schema before migration 0007.
//!
//! `bench/store_size.sh` runs it on a release build. Environment: `TARGETS` (10000), `HOURS` (24), `INTERVAL_S`
//! (10), `RAW_HOURS` (24), `DETAIL_DAYS` (7), `HOURLY_DAYS` (90), `DIR` (a temporary directory).

use std::path::Path;
use std::time::Instant;

use lookout_core::{Timestamp, Timings};
use lookout_store::{Horizons, Record, ResultRow, Store};

const DAY_MS: i64 = 86_400_000;
const GOAL: f64 = 5e9;

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64*: reproducible and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One probe result as lookout's HTTP probe makes it: phase timings measured to the µs, a name like a real one;
/// ~1 % fail, half as a 500 with a failed condition and a body excerpt, half as a timeout.
fn result(rng: &mut Rng, target: &str, at: i64, tls: bool) -> ResultRow {
    let connect = 0.2 + rng.unit() * 2.0;
    let tls_ms = tls.then(|| 3.0 + rng.unit() * 6.0);
    let first_byte = 5.0 + (-rng.unit().max(1e-9).ln()) * 25.0;
    let total = connect + tls_ms.unwrap_or(0.0) + first_byte + rng.unit();
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let timings = Timings {
        dns_ms: None,
        connect_ms: Some(round(connect)),
        tls_ms: tls_ms.map(round),
        first_byte_ms: Some(round(first_byte)),
        total_ms: round(total),
    };
    let mut r = ResultRow {
        target: target.to_owned(),
        at: Timestamp(at),
        ok: true,
        status: Some(200),
        latency_ms: round(total),
        error: None,
        failed_conditions: Vec::new(),
        timings,
        body_excerpt: None,
    };
    let f = rng.unit();
    if f < 0.005 {
        r.ok = false;
        r.status = Some(500);
        r.failed_conditions = vec!["[STATUS] (500) == 200".into()];
        r.body_excerpt = Some("<html><body><h1>500 Internal Server Error</h1></body></html>".into());
    } else if f < 0.01 {
        r.ok = false;
        r.status = None;
        r.latency_ms = 10_000.0;
        r.timings = Timings { connect_ms: Some(round(connect)), total_ms: 10_000.0, ..Timings::default() };
        r.error = Some("timeout: no response within 10s".into());
        r.failed_conditions = vec!["[CONNECTED] (false) == true".into()];
    }
    r
}

/// Per table or index (dbstat): bytes in its pages, and bytes of its data (pages less their unused space).
struct Tables(std::collections::HashMap<String, (f64, f64)>);

impl Tables {
    fn pages(&self, name: &str) -> f64 {
        self.0.get(name).map_or(0.0, |t| t.0)
    }
    fn data(&self, name: &str) -> f64 {
        self.0.get(name).map_or(0.0, |t| t.1)
    }
}

fn tables(path: &Path) -> Tables {
    let conn = rusqlite::Connection::open(path).expect("open the database to measure it");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").expect("checkpoint");
    let mut stmt =
        conn.prepare("SELECT name, SUM(pgsize), SUM(pgsize - unused) FROM dbstat GROUP BY name").expect("dbstat");
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get::<_, f64>(1)?, r.get::<_, f64>(2)?))))
        .expect("dbstat");
    Tables(rows.filter_map(Result::ok).collect())
}

fn gb(b: f64) -> String {
    format!("{:.2} GB", b / 1e9)
}

#[tokio::main]
async fn main() {
    let targets = env("TARGETS", 10_000);
    let hours = env("HOURS", 24);
    let interval_ms = env("INTERVAL_S", 10) * 1000;
    let raw_days = env("RAW_HOURS", 24) as f64 / 24.0;
    let detail_days = env("DETAIL_DAYS", 7) as f64;
    let hourly_days = env("HOURLY_DAYS", 90) as f64;
    let dir = std::env::var("DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| std::env::temp_dir());
    let path = dir.join(format!("store_size-{}.sqlite", std::process::id()));
    let old_path = dir.join(format!("store_size-old-{}.sqlite", std::process::id()));
    let names: Vec<String> = (0..targets).map(|i| format!("shop-{:03}/api-{i:05}", i % 200)).collect();
    let start = 20_000 * DAY_MS;
    let end = start + hours * 3_600_000;
    let results = (end - start) / interval_ms * targets;
    println!("simulated: {targets} targets every {} s for {hours} h = {results} results", interval_ms / 1000);

    // Before: the schema up to migration 0006 (`results` with the name and JSON per row), one hour of the same data.
    let before = {
        let conn = rusqlite::Connection::open(&old_path).expect("open");
        conn.execute_batch(include_str!("../migrations/0001_init.sql")).expect("schema");
        let mut rng = Rng(7);
        let tx = conn.unchecked_transaction().expect("tx");
        let hour_end = start + 3_600_000.min(end - start);
        let mut n = 0;
        for at in (start..hour_end).step_by(interval_ms as usize) {
            for (i, name) in names.iter().enumerate() {
                let r = result(&mut rng, name, at + (i as i64 * 997) % interval_ms, i % 2 == 0);
                tx.execute(
                    "INSERT INTO results (target, at, ok, status, latency_ms, error, failed_conditions, timings, body_excerpt)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    rusqlite::params![
                        r.target,
                        r.at.0,
                        r.ok,
                        r.status,
                        r.latency_ms,
                        r.error,
                        serde_json::to_string(&r.failed_conditions).unwrap_or_default(),
                        serde_json::to_string(&r.timings).unwrap_or_default(),
                        r.body_excerpt
                    ],
                )
                .expect("insert");
                n += 1;
            }
        }
        tx.commit().expect("commit");
        drop(conn);
        let t = tables(&old_path);
        let b = (t.data("results") + t.data("results_target_at") + t.data("results_at"))
            / (t.data("results") / t.pages("results"))
            / n as f64;
        let _ = std::fs::remove_file(&old_path);
        b
    };

    let store = lookout_store::open(&lookout_config::StoreConfig::sqlite(path.clone())).await.expect("open the store");
    let mut rng = Rng(7);
    let clock = Instant::now();
    let mut batch = Vec::with_capacity(targets as usize);
    for at in (start..end).step_by(interval_ms as usize) {
        // Each target at its own phase of the interval, as `lookout run` probes them.
        for (i, name) in names.iter().enumerate() {
            let r = result(&mut rng, name, at + (i as i64 * 997) % interval_ms, i % 2 == 0);
            batch.push(Record { result: Some(r), ..Record::default() });
            if batch.len() == 1000 {
                store.record_all(std::mem::take(&mut batch)).await.expect("record");
            }
        }
    }
    store.record_all(batch).await.expect("record");
    let write_s = clock.elapsed().as_secs_f64();
    println!("written in {write_s:.0} s ({:.0} results/s)", results as f64 / write_s);
    let written = tables(&path);
    // Rows inserted per target, all targets interleaved in time, as `lookout run` writes them: the page fill
    // this gives is what every table (all clustered by target) has in a steady state.
    let fill = written.data("results") / written.pages("results");
    let per = |bytes: f64| bytes / fill / results as f64;
    let raw_row = per(written.data("results"));

    // Pack the raw window's successes (as after its first hour), then roll everything up keeping failures and
    // 5-minute aggregates (detail), then drop those too to see the hourly part alone.
    let far = Timestamp(start - 1000 * DAY_MS);
    let clock = Instant::now();
    let packed =
        store.roll_up(Horizons { pack: Timestamp(end), raw: far, detail: far, hourly: far }).await.expect("pack");
    let pack_s = clock.elapsed().as_secs_f64();
    let after_pack = tables(&path);
    let packed_per = after_pack.data("result_blocks") / fill / packed.packed.max(1) as f64;
    let clock = Instant::now();
    let all = Horizons { pack: Timestamp(end), raw: Timestamp(end), detail: far, hourly: far };
    let done = store.roll_up(all).await.expect("roll up");
    let roll_s = clock.elapsed().as_secs_f64();
    let rolled = tables(&path);
    store.roll_up(Horizons { detail: Timestamp(end + DAY_MS), ..all }).await.expect("roll up");
    let hourly_only = tables(&path);
    let kept = per(rolled.data("results"));
    let minutes = per(rolled.data("result_rollups") - hourly_only.data("result_rollups"));
    let hours = per(hourly_only.data("result_rollups"));
    println!("packed {} results in {pack_s:.1} s; rolled up {} in {roll_s:.1} s", packed.packed, done.rolled);
    println!("page fill of rows written by time across targets: {:.0} %", fill * 100.0);
    println!();
    println!("bytes per result (data / page fill)");
    println!("  before (schema 0006, name + JSON per row, 2 indexes) {before:>6.1}");
    println!("  after: a raw row (the last hour)                     {raw_row:>6.1}");
    println!("         a packed success (the rest of the raw window) {packed_per:>6.1}");
    println!("         failures + the success after each, kept raw   {kept:>6.1}");
    println!("         5-minute aggregates                           {minutes:>6.1}");
    println!("         per-hour aggregates                           {hours:>6.1}");
    // At the load: 10,000 targets every 10 s = 86.4 M results a day.
    let day = 86_400_000.0;
    let raw_hours = raw_days * 24.0;
    let raw_window = (raw_row + (raw_hours - 1.0).max(0.0) * packed_per) / raw_hours.max(1.0) * day * raw_days;
    let past_raw = |days: f64| (days.min(90.0) - raw_days).max(0.0);
    let (failures, minute_aggs, hour_aggs) = (
        kept * day * past_raw(detail_days),
        minutes * day * past_raw(detail_days),
        hours * day * past_raw(hourly_days),
    );
    let total = raw_window + failures + minute_aggs + hour_aggs;
    let total_before = before * day * 90.0;
    println!();
    println!("90 days at 10,000 targets every 10 s (86.4 M results a day):");
    println!(
        "  before: {} (every result raw; the old default retention of 7 d: {})",
        gb(total_before),
        gb(before * day * 7.0)
    );
    println!(
        "  after:  {} = raw window {raw_days} d {} + failures {} and 5-minute aggregates {} to {detail_days} d + hours to {hourly_days} d {}",
        gb(total),
        gb(raw_window),
        gb(failures),
        gb(minute_aggs),
        gb(hour_aggs)
    );
    println!(
        "  goal < 5 GB: {} ({:.0} % of it); {:.0}x smaller than before",
        if total < GOAL { "met" } else { "NOT met" },
        total / GOAL * 100.0,
        total_before / total
    );
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
