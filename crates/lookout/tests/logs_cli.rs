//! `lookout logs` against generated logs with known answers and an independent count (awk).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;

use crate::support::lookout_bin;

/// A deterministic combined log: 4 hours of traffic with a 2-minute outage (every request 500) from 300 clients.
pub fn generate(path: &std::path::Path) -> usize {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut n = 0;
    for minute in 0..240u32 {
        for i in 0..50u32 {
            let client = (minute * 7 + i * 13) % 1000;
            let outage = (100..102).contains(&minute);
            let status = if outage {
                500
            } else if i % 10 == 0 {
                404
            } else {
                200
            };
            let path = if outage {
                "/index.php"
            } else if i == 7 {
                "/a|b`c`<img>"
            } else {
                "/"
            };
            writeln!(
                f,
                "10.0.{}.{} - - [25/Nov/2026:{:02}:{:02}:{:02} +0000] \"GET {path} HTTP/1.1\" {status} 512 \"-\" \"<script>alert(1)</script>\"",
                client / 256,
                client % 256,
                12 + minute / 60,
                minute % 60,
                i % 60
            )
            .unwrap();
            n += 1;
        }
    }
    n
}

fn awk_status_counts(path: &std::path::Path) -> BTreeMap<u16, u64> {
    let out = Command::new("awk").arg("{print $9}").arg(path).output().unwrap();
    let mut counts = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        *counts.entry(line.parse().unwrap()).or_insert(0) += 1;
    }
    counts
}

fn logs(args: &[&str]) -> std::process::Output {
    Command::new(lookout_bin()).arg("logs").args(args).output().unwrap()
}

#[test]
fn totals_match_an_independent_count_and_the_outage_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let n = generate(&path);
    let out = logs(&[path.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["requests"], n as u64);
    assert_eq!(r["malformed"], 0);
    let ours: BTreeMap<u16, u64> = r["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["status"].as_u64().unwrap() as u16, s["requests"].as_u64().unwrap()))
        .collect();
    assert_eq!(ours, awk_status_counts(&path));

    let windows = r["error_windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "{windows:?}");
    let w = &windows[0];
    // Milliseconds, as everywhere in lookout's JSON.
    assert_eq!(w["start_ms"], (1_795_608_000_i64 + 100 * 60) * 1000);
    assert_eq!(w["end_ms"], (1_795_608_000_i64 + 102 * 60) * 1000);
    assert_eq!(w["failed"], 100);
    assert_eq!(w["requests"], 100);
    assert_eq!(w["clients_affected"], 100, "50 distinct clients in each of the two minutes");
    assert_eq!(w["clients_precision"], "exact");
    assert_eq!(r["failing_paths"][0]["path"], "/index.php");
    assert_eq!(r["bucket_ms"], 60_000);
    let first = r["first_ms"].as_i64().unwrap();
    assert_eq!(r["timeline"][0]["start_ms"], first - first % 60_000, "the first bucket holds the first request");
    assert!(r.get("bucket_secs").is_none() && r.get("first").is_none(), "no field in seconds is left: {r}");
}

#[test]
fn human_report_gzip_and_time_filters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    generate(&path);
    let gz = dir.path().join("access.log.1.gz");
    let status =
        Command::new("sh").arg("-c").arg(format!("gzip -c {} > {}", path.display(), gz.display())).status().unwrap();
    assert!(status.success());
    let out = logs(&[gz.to_str().unwrap(), "--since", "2026-11-25T13:30", "--until", "2026-11-25T14:00"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("12,000 lines: 1,500 requests, 0 malformed, 10,500 outside --since/--until"), "{text}");
    assert!(
        text.contains("2026-11-25T13:40:00Z → 2026-11-25T13:42:00Z (2m): 100 of 100 requests failed (peak 100%), 100 distinct clients affected (exact"),
        "{text}"
    );
    assert!(text.contains("5xx over time"), "{text}");
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    std::fs::write(&path, b"\xff\xfe binary \x00 garbage\nnot a log line\n").unwrap();
    // Not one line fits: the report is printed, and the exit code and stderr say the format is wrong.
    let out = logs(&[path.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((r["lines"].as_u64(), r["malformed"].as_u64()), (Some(2), Some(2)));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("none of the 2 lines fits the format \"combined\": name the right one with --format"),
        "{err}"
    );
    let out = logs(&[path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("  no request read\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = logs(&[path.to_str().unwrap(), "--format", "%h %Z"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: log format \"%h %Z\": unknown directive %Z at column 4"
    );
    let out = logs(&["/nonexistent/access.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: cannot open /nonexistent/access.log"));
    let out = logs(&[path.to_str().unwrap(), "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since \"yesterday\" is not a time"));
}
