//! The host, read for real: a tmpfs filled at a steady 2 MB/s fires the critical filesystem alert on its time
//! until full, within 20 % of the truth, and resolves once emptied; filled to 99 % it fires on its use; a named
//! process that dies fires and resolves when it is back. `lookout run` watches the host with no `[host]` at all.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use lookout_store::Store;

use crate::support::{Receiver, Running, Tmpfs, missing_package, spawn_run, write_config};

const WAIT: Duration = Duration::from_secs(30);
const MB: u64 = 1024 * 1024;

fn alerts(r: &crate::support::Received) -> Vec<serde_json::Value> {
    r.body["alerts"].as_array().cloned().unwrap_or_else(|| vec![r.body.clone()])
}

/// Bytes available to users on the filesystem at `path`.
fn available(path: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(path).unwrap();
    s.blocks_available() * s.fragment_size()
}

/// Milliseconds in a reason such as `[TIME_TO_FULL] (29s) < 2h` → 29,000 (durations as lookout prints them).
fn reason_duration_ms(reasons: &str) -> f64 {
    let start = reasons.find("[TIME_TO_FULL] (").map(|i| i + "[TIME_TO_FULL] (".len()).expect(reasons);
    let text = &reasons[start..start + reasons[start..].find(')').unwrap()];
    lookout_core::parse_duration(text).unwrap_or_else(|e| panic!("{text:?}: {e}")).as_millis() as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filling_filesystem_fires_on_its_time_to_full_and_its_use_and_resolves_when_emptied() {
    if !nix::unistd::geteuid().is_root() {
        missing_package("mounting a tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    let _tmpfs = Tmpfs::mount(&disk, "96m");
    let name = lookout_config::filesystem_name(&disk);
    let critical = format!("{name}-critical");
    let hook = Receiver::start().await;
    let config = write_config(
        dir.path(),
        &format!(
            "[store]\npath = \"{}/lookout.sqlite\"\n\n[web]\nenabled = false\n\n\
             [host]\ninterval = \"250ms\"\ntrend = \"8s\"\nmounts = [\"{}\"]\ncpu = false\nmemory = false\ndescriptors = false\n\n\
             [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            dir.path().display(),
            disk.display(),
            hook.url()
        ),
    );
    let _lookout = Running(spawn_run(&config));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(hook.received().is_empty(), "an idle filesystem fired: {:?}", hook.received().first().map(|r| &r.body));

    // 2 MB/s for 16 s, written on a schedule.
    let free_at_start = available(&disk) as f64;
    let rate = 2.0 * MB as f64;
    let filler = disk.join("filler");
    let started = Instant::now();
    let started_at = lookout_core::Timestamp::now();
    let fill = std::thread::spawn({
        let filler = filler.clone();
        move || {
            let mut f = std::fs::File::create(&filler).unwrap();
            let chunk = vec![7u8; (MB / 8) as usize];
            for i in 1..=256u32 {
                f.write_all(&chunk).unwrap();
                f.sync_data().unwrap();
                // 128 KB every 62.5 ms.
                let due = started + Duration::from_micros(62_500 * u64::from(i));
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
    });
    let firing = hook.wait_for_target(&critical, "firing", WAIT).await;
    let alert = alerts(&firing).into_iter().find(|a| a["target"] == critical.as_str()).unwrap();
    assert!(alert["reasons"].to_string().contains("[TIME_TO_FULL] ("), "{alert}");
    assert_eq!(alert["labels"]["mountpoint"], disk.display().to_string(), "{alert}");
    assert_eq!(alert["severity"], "critical");
    // Once the trend window (8 s) has only the steady filling in it, the figure is the truth: what was free at
    // the start, less what 2 MB/s wrote since, at 2 MB/s.
    tokio::time::sleep(Duration::from_secs(13).saturating_sub(started.elapsed())).await;
    let store = crate::support::open_store(&dir.path().join("lookout.sqlite"));
    let row = crate::support::wait_for_some("a reading 12 s into the filling", WAIT, || async {
        let rows = store.recent_results(critical.clone(), 20).await?;
        Ok(rows.into_iter().find(|r| {
            r.at.since(started_at) >= Duration::from_secs(12)
                && r.failed_conditions.iter().any(|c| c.contains("[TIME_TO_FULL] ("))
        }))
    })
    .await;
    let reasons = row.failed_conditions.join("; ");
    let elapsed = row.at.since(started_at).as_secs_f64();
    let truth_ms = (free_at_start - rate * elapsed) / rate * 1000.0;
    let predicted_ms = reason_duration_ms(&reasons);
    let error = (predicted_ms - truth_ms).abs() / truth_ms;
    assert!(error < 0.2, "predicted {predicted_ms} ms, truth {truth_ms} ms ({:.0} % off): {reasons}", error * 100.0);
    eprintln!("time to full {elapsed:.1} s into the filling: predicted {predicted_ms} ms, truth {truth_ms:.0} ms");
    fill.join().unwrap();
    // The warning level holds too, but is not sent while the critical one fires (it depends on it).
    assert!(
        !hook.received().iter().flat_map(alerts).any(|a| a["target"] == name.as_str() && a["state"] == "firing"),
        "the warning went out beside the critical alert"
    );
    std::fs::remove_file(&filler).unwrap();
    hook.wait_for_target(&critical, "resolved", WAIT).await;

    // Full at once: 99 % is the critical level of use.
    let mut f = std::fs::File::create(&filler).unwrap();
    let target = (available(&disk) as f64 * 0.99) as usize;
    f.write_all(&vec![1u8; target]).unwrap();
    f.sync_all().unwrap();
    let full = hook
        .wait_for_message("the filesystem's use firing", WAIT, |r| {
            alerts(r).iter().any(|a| {
                a["target"] == critical.as_str()
                    && a["state"] == "firing"
                    && a["reasons"].to_string().contains("[FS_USED_RATIO] (")
            })
        })
        .await;
    assert!(alerts(&full).iter().any(|a| a["reasons"].to_string().contains(">= 98%")), "{:?}", full.body);
    drop(f);
    std::fs::remove_file(&filler).unwrap();
    hook.wait_for_message("the filesystem's use resolved", WAIT, |r| {
        r.key.ends_with("/resolved")
            && alerts(r).iter().any(|a| a["target"] == critical.as_str())
            && r.key != firing_resolved_key(&firing)
    })
    .await;
    assert!(hook.problems().is_empty(), "{:?}", hook.problems());
}

/// The key of the resolve of the alert `firing` is about (to tell a second resolve from the first).
fn firing_resolved_key(firing: &crate::support::Received) -> String {
    firing.key.replace("/firing", "/resolved")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_process_that_dies_fires_and_resolves_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    // A process name no other test or daemon has.
    let sleeper = dir.path().join("lkt-sleeper");
    // A symlink: the command name is its name (a fresh copy could not be run while another test forks: ETXTBSY).
    std::os::unix::fs::symlink("/bin/sleep", &sleeper).unwrap();
    let start = || std::process::Command::new(&sleeper).arg("300").spawn().unwrap();
    let mut first = start();
    let hook = Receiver::start().await;
    let config = write_config(
        dir.path(),
        &format!(
            "[store]\npath = \"{}/lookout.sqlite\"\n\n[web]\nenabled = false\n\n[host]\nenabled = false\n\n\
             [[process]]\nname = \"lkt-sleeper\"\ninterval = \"250ms\"\n\n\
             [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            dir.path().display(),
            hook.url()
        ),
    );
    let _lookout = Running(spawn_run(&config));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(hook.received().is_empty(), "a running process fired: {:?}", hook.received().first().map(|r| &r.body));
    first.kill().unwrap();
    first.wait().unwrap();
    let firing = hook.wait_for_target("lkt-sleeper", "firing", WAIT).await;
    let reasons = alerts(&firing)[0]["reasons"].to_string();
    assert!(reasons.contains("[PROCESS_COUNT] (0) < 1"), "{reasons}");
    let mut again = start();
    hook.wait_for_target("lkt-sleeper", "resolved", WAIT).await;
    let _ = again.kill();
    let _ = again.wait();
}
